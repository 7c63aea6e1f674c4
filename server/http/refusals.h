/*
 * http/refusals.h - refused connections and requests counted per time window instead of
 * audited one by one (docs/operations.md, "Refusals and limits").
 *
 * A refusal has a kind: the listener, the audit action ("auth.refused", "request.refused",
 * "connection.refused"), a reason (a short stable slug: the problem type, or the limit that
 * refused a connection) and a subject (who: the presented certificate's issuer or fingerprint,
 * a token id, a source address). The first refusal of a kind not seen in this window or the
 * one before is "new": the caller logs it and audits it on its own at once. The others are
 * counted; when the window ends one audit entry per (listener, action, reason) lists the
 * subjects and their counts ("refusals.summary", actor "otad"). A window holds at most
 * `max_kinds` subjects; refusals past that are counted under the subject "(other)" of their
 * reason. Every refusal also counts in ota_refused_total{listener,reason} on /metrics.
 *
 * Threads: every call is safe from any thread (one mutex; no store call is made under it).
 */
#ifndef OTA_HTTP_REFUSALS_H
#define OTA_HTTP_REFUSALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "store/store.h"

struct ota_refusals;

/* One refusal; strings are borrowed for the call (reason should be a constant). */
struct ota_refusal {
	const char *listener; /* "device" or "management" */
	const char *action;   /* the audit action of the kind's own entry; NULL: counted on
	                       * /metrics only (not a security event: no window, no audit) */
	const char *reason;   /* a slug; also the metric label */
	const char *subject;  /* who, escaped by the caller; "" or NULL: "(unknown)" */
	const char *name;     /* a name the refused client presented, escaped; may be NULL */
};

/*
 * A counter for `window_s`-second windows (>= 1) holding at most `max_kinds` (>= 1) subjects,
 * whose summaries are appended to `st`'s audit log. OTA_ERR_NOMEM.
 */
OTA_WUR enum ota_err ota_refusals_new(struct ota_store *st, unsigned window_s, unsigned max_kinds,
                                      struct ota_refusals **out);
/* Writes the open window's summaries, then frees. NULL is fine. */
void ota_refusals_free(struct ota_refusals *rf);

/*
 * Count one refusal at `now` (Unix seconds). True when its kind is new (see above): the caller
 * then logs it at once and audits it with an entry of its own.
 */
bool ota_refusals_record(struct ota_refusals *rf, const struct ota_refusal *x, int64_t now);

/* Ends the window if `now` is past it: appends its summaries (outside the lock). */
void ota_refusals_tick(struct ota_refusals *rf, int64_t now);

/* Appends the Prometheus text of the counters to buf through `out` (printf-like). */
void ota_refusals_metrics(struct ota_refusals *rf,
                          void (*out)(void *ctx, const char *fmt, ...)
                              __attribute__((format(printf, 2, 3))),
                          void *ctx);

/* Summaries written so far (for tests and /metrics). */
unsigned long long ota_refusals_summaries(struct ota_refusals *rf);

#endif
