/*
 * http/internal.h - what the HTTP layer's files share: the per-request state, the route
 * table's row, the handlers, and the helpers handlers answer with. Not for use outside http/.
 *
 * A request's life (server.c): on the first access-handler call the connection's identity is
 * settled (chain verified once per connection, admission), the route is matched, limits are
 * checked; body chunks then go to a JSON buffer or a route's stream callbacks; on the last call
 * the handler runs and sets either a JSON answer, a ready MHD response, or a problem, which
 * server.c queues. The request is freed in the completion callback.
 */
#ifndef OTA_HTTP_INTERNAL_H
#define OTA_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "auth/auth.h"
#include "http/http.h"
#include "http/problem.h"

enum ota_listener_kind { OTA_L_DEVICE = 1, OTA_L_MANAGEMENT = 2 };

enum ota_body { OTA_BODY_NONE, OTA_BODY_JSON, OTA_BODY_STREAM };

#define OTA_ROUTE_PARAMS 2

struct ota_req;

struct ota_route {
	const char *method;
	const char *pattern; /* "/device/v1/deployments/{id}/events": "{...}" matches a segment */
	enum ota_listener_kind listener;
	unsigned roles; /* enum ota_role bits allowed to call */
	enum ota_body body;
	void (*handle)(struct ota_req *r);
	/* OTA_BODY_STREAM only: called before the first chunk and per chunk; set a problem on
	 * the request to refuse (the rest of the body is then discarded). */
	void (*stream_begin)(struct ota_req *r);
	void (*stream_data)(struct ota_req *r, const char *data, size_t len);
	void (*stream_free)(struct ota_req *r); /* in the completion callback, always */
};

struct ota_req {
	struct MHD_Connection *conn;
	const struct ota_http_deps *deps;
	const struct ota_route *route;
	const struct ota_identity *who;
	struct ota_identity token_who; /* who, when an API token identified the request */
	struct ota_identity *conn_who; /* the connection's certificate identity (who), or NULL */
	const char *method;
	const char *url;
	char params[OTA_ROUTE_PARAMS][80];
	/* the body */
	uint64_t content_length; /* UINT64_MAX when not given (chunked) */
	char *body;
	size_t body_len;
	json_t *json; /* parsed JSON body (OTA_BODY_JSON) */
	void *stream; /* stream state of OTA_BODY_STREAM routes */
	/* the answer */
	enum ota_problem problem;
	char detail[256];
	const char *allow;      /* Allow header of a 405 */
	char allow_buf[48];     /* its storage (route matching lists methods per thread) */
	char content_range[64]; /* Content-Range header of a 416 */
	unsigned status;
	json_t *answer;                /* JSON answer (status), or */
	struct MHD_Response *response; /* a ready response (status) */
	bool queued;
	bool close; /* answer with "Connection: close": the caller's access ended */
	/* A handler that waits without holding its thread (ota_req_wait): */
	void (*resume)(struct ota_req *r);    /* sets the answer once woken, on a worker thread */
	void (*wait_free)(struct ota_req *r); /* frees `wait` when the request ends unanswered */
	void *wait;                           /* the handler's state meanwhile */
	bool suspended, woken;                /* guarded by server.c's wait lock */
	struct ota_http *http;
};

/* The route table (routes.c). */
extern const struct ota_route ota_routes[];
extern const size_t ota_routes_count;

/*
 * Match method and path on a listener. Returns the route and fills params; NULL when none,
 * then *path_known tells 405 from 404 and *allow lists the methods the path has.
 */
const struct ota_route *ota_route_match(enum ota_listener_kind l, const char *method,
                                        const char *path, char params[OTA_ROUTE_PARAMS][80],
                                        bool *path_known, const char **allow);

/* Set a problem with a printf detail (the first problem set wins). */
void ota_req_fail(struct ota_req *r, enum ota_problem p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * Admit (or pin) the requesting device now if its admission is still to write (auth.h,
 * ota_auth_device_admit): a handler calls it once the request is bound to succeed and before
 * it needs the device's row; otherwise any 2xx answer does it before it is sent. False (the
 * problem set, the refusal audited) when the device cannot be admitted after all.
 */
bool ota_req_admit(struct ota_req *r);
/*
 * Waiting without a thread (device reports in their group commit): a handler that has handed
 * work to another thread sets r->resume (and r->wait, r->wait_free) and calls ota_req_wait();
 * the other thread calls ota_req_wake(r) exactly once when the work is over. If the wake came
 * first, ota_req_wait() calls r->resume at once; otherwise the connection is suspended and
 * r->resume runs on a worker thread when the request is next handled. ota_req_wake() may run
 * on any thread, before or after ota_req_wait(); it does not touch r once it has resumed the
 * connection.
 */
void ota_req_wait(struct ota_req *r);
void ota_req_wake(void *r);
/* Answer JSON with status; takes ownership of `j`. */
void ota_req_json(struct ota_req *r, unsigned status, json_t *j);

/* JSON field readers: on failure they set an invalid-field problem and return false. */
bool ota_json_str(struct ota_req *r, json_t *obj, const char *key, bool required, size_t min,
                  size_t max, const char **out);
bool ota_json_uint(struct ota_req *r, json_t *obj, const char *key, bool required, uint64_t min,
                   uint64_t max, uint64_t *out);

/* Handlers (device_api.c, mgmt_api.c). */
void ota_h_checkin(struct ota_req *r);
void ota_h_image(struct ota_req *r);
void ota_h_event(struct ota_req *r);
void ota_h_device_certificate(struct ota_req *r);
void ota_h_health(struct ota_req *r);
void ota_h_image_upload(struct ota_req *r);
void ota_h_image_upload_begin(struct ota_req *r);
void ota_h_image_upload_data(struct ota_req *r, const char *data, size_t len);
void ota_h_image_upload_free(struct ota_req *r);
void ota_h_release_create(struct ota_req *r);
void ota_h_release_list(struct ota_req *r);
void ota_h_release_get(struct ota_req *r);
void ota_h_root_create(struct ota_req *r);
void ota_h_deployment_create(struct ota_req *r);
void ota_h_deployment_get(struct ota_req *r);
void ota_h_revocation_create(struct ota_req *r);

#endif
