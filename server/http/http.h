/*
 * http/http.h - otad's two HTTPS listeners (device API, management API) over libmicrohttpd
 * with GnuTLS: TLS 1.2/1.3 only, session tickets, poll mode with a thread pool, connection
 * timeout and limits from the configuration, and every client certificate chain verified once
 * per connection against that listener's own CA (validity, clientAuth purpose, CRL).
 */
#ifndef OTA_HTTP_H
#define OTA_HTTP_H

#include <stdint.h>
#include <stdio.h>

#include "artifact/artifact.h"
#include "audit/audit.h"
#include "common/err.h"
#include "config/config.h"
#include "events/hub.h"
#include "pki/pki.h"
#include "store/store.h"

struct ota_http;
struct ota_refusals;

/* What the handlers work on; owned by the caller, which keeps it alive until ota_http_stop(). */
struct ota_http_deps {
	const struct ota_config *cfg;
	struct ota_store *store;
	struct ota_images *images;
	struct ota_trust *trust;
	struct ota_audit *audit;           /* the audit key: checkpoints, export, verification */
	const struct ota_console *console; /* set by ota_http_start(): the console's files */
	struct ota_refusals *refusals;     /* set by ota_http_start(): counted refusals */
	struct ota_events_hub *events; /* the audit head watcher of the live stream; NULL: off */
	const struct ota_pki *pki;     /* the time key; may be NULL */
};

/*
 * Start both listeners. On error returns OTA_ERR_TLS (keys, certificates, CA, CRL),
 * OTA_ERR_CONFIG (listen address) or OTA_ERR_IO (cannot bind), with msg set; nothing runs.
 */
OTA_WUR enum ota_err ota_http_start(const struct ota_http_deps *deps, struct ota_http **out,
                                    char *msg, size_t msglen);
/* Print every route, one "METHOD PATH LISTENER" line each (otad --list-routes). */
void ota_http_list_routes(FILE *f);

/* The bound ports (useful with port 0 in the configuration). */
uint16_t ota_http_device_port(struct ota_http *h);
uint16_t ota_http_management_port(struct ota_http *h);
/*
 * Load the listeners' CRL files again (SIGHUP): both are read and checked first, then each
 * listener's trust list is replaced and its cache of verified chains emptied, and every open
 * connection settles its identity again at its next request. On error (OTA_ERR_TLS with msg
 * set, OTA_ERR_NOMEM) nothing changes. A listener without a CRL is left as it is.
 */
OTA_WUR enum ota_err ota_http_reload_crls(struct ota_http *h, char *msg, size_t msglen);
/*
 * Load [tls] ticket_key again (SIGHUP): connections that start afterwards issue and accept
 * tickets under the file's key; tickets under the old key then get a full handshake. On error
 * (OTA_ERR_TLS, msg set) the old key stays. Without [tls] ticket_key: OTA_OK, nothing done.
 */
OTA_WUR enum ota_err ota_http_reload_ticket_key(struct ota_http *h, char *msg, size_t msglen);
/*
 * Stop accepting connections, let requests in flight finish for up to grace_seconds, then
 * close everything and free h. NULL is fine.
 */
void ota_http_stop(struct ota_http *h, unsigned grace_seconds);

#endif
