/*
 * core/checkin.h - encoding of check-in requests and event reports, and decoding of check-in
 * answers, per docs/device-api.md. Freestanding; answers are tokenized into caller memory and
 * point into the caller's text.
 */
#ifndef FWA_CORE_CHECKIN_H
#define FWA_CORE_CHECKIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fwa/agent.h"

#define FWA_MAX_ROOTS 8        /* root envelopes accepted in one answer */
#define FWA_POLL_MAX_S 604800u /* poll_after above a week is refused */

/* The check-in's `health` object: counters since the buy of deployment_id. */
struct fwa_health_counts {
	const char *deployment_id;
	uint32_t reboots, watchdog_resets, failed_checks;
	uint64_t uptime_s;
};

struct fwa_checkin_req {
	const char *hw_variant;
	const char *version;
	uint32_t floor;
	uint32_t root_version;
	uint8_t active_slot; /* enum fwa_slot */
	bool trial;
	const char *deployment_id; /* NULL or "" when none */
	uint8_t outcome;           /* enum fwa_status of the last deployment, FWA_ST_NONE if none */
	const char *reason;        /* for the outcome; may be NULL */
	const uint8_t *active_sha256; /* SHA-256 of the running image, NULL when unknown */
	const struct fwa_health_counts *health; /* NULL outside the health window */
	const uint8_t *nonce;                   /* the signed-time nonce, NULL when none */
	size_t nonce_len;
};

/* JSON of a check-in request into buf; returns its length, or -1 when it does not fit. */
long fwa_checkin_encode(const struct fwa_checkin_req *r, char *buf, size_t cap);

/* JSON of an event report; `version` is the version running when it happened (may be NULL). */
long fwa_event_encode(const struct fwa_event *e, const char *version, char *buf, size_t cap);

struct fwa_span {
	const char *p;
	size_t len;
};

struct fwa_checkin_answer {
	bool update;         /* action "update" */
	uint32_t poll_after; /* seconds, 0 when absent */
	bool has_server_time;
	int64_t server_time;
	char deployment_id[FWA_DEP_ID_MAX + 1];
	struct fwa_span manifest; /* the manifest DSSE envelope, as JSON text */
	char image_url[FWA_URL_MAX + 1];
	uint64_t image_size; /* 0 when absent */
	/* An offered delta (update.delta); has_delta false when absent or malformed. */
	bool has_delta;
	struct fwa_span delta_meta; /* the signed delta metadata envelope, as JSON text */
	char delta_url[FWA_URL_MAX + 1];
	uint64_t delta_size;
	unsigned nroots;
	struct fwa_span roots[FWA_MAX_ROOTS];
	struct fwa_span time_token; /* the time token envelope as JSON text; p NULL when absent */
};

/*
 * Decode a check-in answer (JSON text of len bytes) with tok[0..cap) as token memory.
 * FWA_ERR_MALFORMED for bad JSON, a missing or mistyped field, an unknown action, a bad
 * deployment id (1-64 of [A-Za-z0-9._-]) or image path (starting with '/', printable, no
 * spaces); FWA_ERR_TOO_LARGE over a bound (tokens, roots, path length, poll_after). *why
 * (optional) names the rule. Unknown fields are ignored, as the device API says. A malformed
 * delta offer is ignored too (has_delta false): the full image stays available.
 */
FWA_WUR enum fwa_err fwa_checkin_decode(const char *json, size_t len, struct fwa_json_tok *tok,
                                        unsigned cap, struct fwa_checkin_answer *out,
                                        const char **why);

/* True when s is a valid deployment id. */
bool fwa_dep_id_valid(const char *s);

#endif
