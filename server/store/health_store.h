/*
 * store/health_store.h - the health a rollout member's device reported after its confirm
 * (schema/0050_post_confirm_health.sql): counters that only grow, and when the member first
 * regressed. The rollout engine decides what counts as a regression and when a report is
 * inside the soak; these functions only apply and read.
 *
 * Errors as in store.h: OTA_ERR_NOT_FOUND, OTA_ERR_DB, OTA_ERR_NOMEM. A write joins the
 * caller's transaction or, outside one, is a transaction of its own.
 */
#ifndef OTA_STORE_HEALTH_H
#define OTA_STORE_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "store/rollout_store.h"

/* What a device reports in the check-in's `health` object (docs/device-api.md). */
struct ota_member_health {
	uint32_t reboots;         /* boots since the buy */
	uint32_t watchdog_resets; /* of those, started by the watchdog */
	uint32_t failed_checks;   /* health checks that failed since the buy */
	uint64_t uptime_s;        /* seconds since this boot */
};

/*
 * Raise member (rollout_id, device_id)'s counters to at least h (each the larger of the stored
 * and the given), with health_at = now and the uptime given; when `regressed` and the member had
 * not regressed yet, regressed_at = now and *first (optional) is set. Only a member in state
 * succeeded whose first report this is, or whose counters h raises, changes: OTA_ERR_NOT_FOUND
 * otherwise (nothing written).
 */
OTA_WUR enum ota_err ota_store_member_health_put(struct ota_store *st, const char *rollout_id,
                                                 const char *device_id,
                                                 const struct ota_member_health *h, bool regressed,
                                                 int64_t now, bool *first);

/* A member's stored health; regressed_at 0 when it has not regressed. */
OTA_WUR enum ota_err ota_store_member_health_get(struct ota_store *st, const char *rollout_id,
                                                 const char *device_id,
                                                 struct ota_member_health *out, int64_t *health_at,
                                                 int64_t *regressed_at);

/* Over the members of stages 1 to stage + 1 (stage counted from 0) of rollout id. */
struct ota_health_summary {
	unsigned reported;         /* succeeded members that reported health */
	unsigned regressed;        /* members that regressed after their confirm */
	int64_t last_confirmed_at; /* latest time a member moved to succeeded; 0: none */
	unsigned accepted;         /* regressions an operator accepted (rollouts.ack_regressed) */
};
/*
 * The summary, and fn (may be NULL) for the first `limit` regressed devices by time of the
 * regression (then id); the id is valid during the call.
 */
OTA_WUR enum ota_err ota_store_rollout_health(struct ota_store *st, const char *id, unsigned stage,
                                              struct ota_health_summary *out, unsigned limit,
                                              void (*fn)(void *ctx, const char *device_id),
                                              void *ctx);

/* Record that an operator accepted the rollout's `regressed` regressions (by resuming it). */
OTA_WUR enum ota_err ota_store_rollout_health_ack(struct ota_store *st, const char *id,
                                                  unsigned regressed);

#endif
