/*
 * events/webhook.h - webhooks: the destination check run when an endpoint is registered and
 * before each delivery (scheme, and every address the host resolves to against the
 * server-side request forgery rule), and the deliverers: [webhooks] threads threads, each
 * owning the endpoints whose id hashes to it, that send every event after an endpoint's
 * durable cursor, in seq order, signed (docs/events.md, "Webhooks"), and move the cursor only
 * after a 2xx answer (at least once). A failed attempt is retried with exponential backoff
 * (1 s, 2 s, 4 s ... up to [webhooks] backoff_max); after [webhooks] max_attempts the endpoint
 * is dead until an admin redelivers. Delivery runs on its own threads with libcurl: a slow or
 * dead endpoint delays only the endpoints of its own deliverer, never a request.
 *
 * Threads: ota_webhook_check() from any thread. Ownership: the deliverers borrow the store,
 * the hub and the configuration until ota_webhooks_stop().
 */
#ifndef OTA_EVENTS_WEBHOOK_H
#define OTA_EVENTS_WEBHOOK_H

#include <stddef.h>

#include "common/err.h"
#include "config/config.h"
#include "events/hub.h"
#include "store/store.h"

#define OTA_WEBHOOK_ANSWER_MAX (64 * 1024) /* bytes of an endpoint's answer read, at most */

/*
 * Whether webhooks may be sent to `url` under cfg: an absolute http(s) URL without
 * credentials or fragment, of at most 2048 bytes; https, or http with [webhooks] allow_http;
 * every address its host resolves to public, or inside [webhooks] allow_networks
 * (loopback, private, link-local, multicast and reserved addresses are refused otherwise).
 * OTA_OK, with pin (may be NULL) set to "host:port:address" for CURLOPT_RESOLVE;
 * OTA_ERR_INVALID with why naming the reason; OTA_ERR_CONFIG when allow_networks is malformed.
 */
OTA_WUR enum ota_err ota_webhook_check(const struct ota_config *cfg, const char *url, char *pin,
                                       size_t pincap, char *why, size_t whycap);

/* Whether [webhooks] allow_networks is a valid list of CIDR blocks; msg says why not. */
OTA_WUR enum ota_err ota_webhook_config_check(const struct ota_config *cfg, char *msg,
                                              size_t msglen);

struct ota_webhooks;

/* Start the deliverers. OTA_ERR_CONFIG (allow_networks, msg set), OTA_ERR_NOMEM, OTA_ERR_IO. */
OTA_WUR enum ota_err ota_webhooks_start(const struct ota_config *cfg, struct ota_store *st,
                                        struct ota_events_hub *hub, struct ota_webhooks **out,
                                        char *msg, size_t msglen);

/* Stop the deliverers (a delivery in flight ends within [webhooks] timeout). NULL is fine. */
void ota_webhooks_stop(struct ota_webhooks *w);

#endif
