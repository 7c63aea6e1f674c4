/*
 * events/event.h - an event is a view of one committed audit entry (docs/events.md): its type
 * is the entry's action ("rollout.start", "deployment.outcome" ...), its id the entry's
 * sequence number. This header renders an entry as the event's JSON, says which roles may see
 * a type, matches type lists ("rollout.*,device.approve", "*"), and signs a webhook delivery.
 *
 * Pure functions, safe from any thread.
 */
#ifndef OTA_EVENTS_EVENT_H
#define OTA_EVENTS_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"
#include "common/err.h"

#define OTA_EVENT_TYPE_MAX 64 /* bytes of one type pattern in a list */

/* Who is looking: the auditor view (every event) or the operator view (docs/events.md). */
enum ota_event_view {
	OTA_EVENT_VIEW_ALL = 0,  /* admins, auditors */
	OTA_EVENT_VIEW_OPERATOR, /* rollouts, deployments, devices, releases and images */
};

/* Whether the view may see events of type `action`. */
bool ota_event_visible(enum ota_event_view v, const char *action);

/*
 * Whether `types` is a well-formed type list: 1..OTA_WEBHOOK_TYPES patterns separated by
 * commas, each "*", "prefix.*" or a type, of [a-z0-9._] and at most OTA_EVENT_TYPE_MAX bytes.
 * On false *why names the fault (a static string).
 */
bool ota_event_types_valid(const char *types, const char **why);

/* Whether `action` matches the type list (assumed valid). */
bool ota_event_types_match(const char *types, const char *action);

/*
 * The event's JSON text of audit row `row` (compact, one line, no newline): {"seq", "type",
 * "at", "actor", "role", "device_id", "rollout_id", "release_id", "object", "before", "after",
 * "detail", "hash"}. malloc'd (caller frees); NULL when out of memory.
 */
char *ota_event_json(const struct ota_audit_row *row);

/*
 * The signature of a webhook delivery: lowercase hex HMAC-SHA-256 under `secret` (the
 * webhook's secret, its 64 hex digits used as the key bytes as written) of
 * "<t>.<body>", t the Unix time in decimal. out gets 64 hex digits and a NUL.
 * OTA_ERR_NOMEM when OpenSSL fails.
 */
OTA_WUR enum ota_err ota_event_sign(const char *secret, int64_t t, const char *body, size_t len,
                                    char out[65]);

#endif
