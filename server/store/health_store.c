/*
 * store/health_store.c - the SQLite side of health after the confirm (health_store.h): a
 * member's counters are raised with max(), never lowered, so a check-in that is retried,
 * repeated or arrives late changes nothing, and a report that raises nothing writes nothing (the
 * common case: a healthy device checking in); the summary a stage verdict reads is one indexed
 * pass over the rollout's members.
 */
#include "store/health_store.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "store/internal.h"

static const char SQL_HEALTH_PUT[] =
    "UPDATE rollout_members SET "
    "health_reboots = CASE WHEN ?3 > health_reboots THEN ?3 ELSE health_reboots END, "
    "health_watchdog_resets = CASE WHEN ?4 > health_watchdog_resets THEN ?4 "
    "ELSE health_watchdog_resets END, "
    "health_failed_checks = CASE WHEN ?5 > health_failed_checks THEN ?5 "
    "ELSE health_failed_checks END, "
    "health_uptime = ?6, health_at = ?7, "
    "regressed_at = CASE WHEN regressed_at = 0 AND ?8 <> 0 THEN ?7 ELSE regressed_at END "
    "WHERE rollout_id = ?1 AND device_id = ?2 AND state = 'succeeded' AND (health_at = 0 "
    "OR ?3 > health_reboots OR ?4 > health_watchdog_resets OR ?5 > health_failed_checks) "
    "RETURNING regressed_at";
static const char SQL_HEALTH_WAS[] =
    "SELECT regressed_at FROM rollout_members WHERE rollout_id = ?1 AND device_id = ?2";
static const char SQL_HEALTH_GET[] =
    "SELECT health_reboots, health_watchdog_resets, health_failed_checks, health_uptime, "
    "health_at, regressed_at FROM rollout_members WHERE rollout_id = ?1 AND device_id = ?2";
static const char SQL_HEALTH_SUM[] =
    "SELECT count(*) FILTER (WHERE health_at > 0 AND state = 'succeeded'), "
    "count(*) FILTER (WHERE regressed_at > 0), "
    "coalesce(max(updated_at) FILTER (WHERE state = 'succeeded'), 0), "
    "(SELECT ack_regressed FROM rollouts WHERE id = ?1) "
    "FROM rollout_members WHERE rollout_id = ?1 AND stage <= ?2";
static const char SQL_HEALTH_ACK[] = "UPDATE rollouts SET ack_regressed = ?2 WHERE id = ?1";
static const char SQL_HEALTH_REGRESSED[] =
    "SELECT device_id FROM rollout_members WHERE rollout_id = ?1 AND stage <= ?2 "
    "AND regressed_at > 0 ORDER BY regressed_at, device_id LIMIT ?3";

enum ota_err ota_store_member_health_put(struct ota_store *st, const char *rollout_id,
                                         const char *device_id, const struct ota_member_health *h,
                                         bool regressed, int64_t now, bool *first)
{
	enum ota_err rc;
	int s = OTA_SQL_ERROR;
	int64_t at = 0, was = 0;
	bool found = false;

	if (first)
		*first = false;
	ota_store__lock(st);
	rc = ota_store__begin(st);
	if (rc == OTA_OK) {
		/* Whether the member had regressed before this report (for *first). */
		struct ota_sql_stmt *q = ota_store__stmt(st, SQL_HEALTH_WAS);
		if (q) {
			ota_sql_bind_text(q, 1, rollout_id);
			ota_sql_bind_text(q, 2, device_id);
			if (ota_sql_step(q) == OTA_SQL_ROW)
				was = ota_sql_column_int64(q, 0);
			ota_store__done(q);
		}
		q = ota_store__stmt(st, SQL_HEALTH_PUT);
		if (q) {
			ota_sql_bind_text(q, 1, rollout_id);
			ota_sql_bind_text(q, 2, device_id);
			ota_sql_bind_int64(q, 3, h->reboots);
			ota_sql_bind_int64(q, 4, h->watchdog_resets);
			ota_sql_bind_int64(q, 5, h->failed_checks);
			ota_sql_bind_int64(
			    q, 6, (int64_t)(h->uptime_s > INT64_MAX ? INT64_MAX : h->uptime_s));
			ota_sql_bind_int64(q, 7, now);
			ota_sql_bind_int64(q, 8, regressed ? 1 : 0);
			s = ota_sql_step(q);
			if (s == OTA_SQL_ROW) {
				found = true;
				at = ota_sql_column_int64(q, 0);
				s = ota_sql_step(q);
			}
			ota_store__done(q);
		}
		if (s == OTA_SQL_DONE)
			rc = found ? OTA_OK : OTA_ERR_NOT_FOUND;
		else
			rc = ota_store__fail(st, "member health");
		/* Not found changed nothing: the caller's transaction goes on. */
		enum ota_err c = rc == OTA_ERR_DB ? rc : ota_store__commit(st);
		if (c != OTA_OK) {
			ota_store__rollback(st);
			rc = c;
		}
	}
	ota_store__unlock(st);
	if (rc == OTA_OK && first && regressed && was == 0 && at != 0)
		*first = true;
	return rc;
}

enum ota_err ota_store_member_health_get(struct ota_store *st, const char *rollout_id,
                                         const char *device_id, struct ota_member_health *out,
                                         int64_t *health_at, int64_t *regressed_at)
{
	enum ota_err rc = OTA_ERR_DB;

	memset(out, 0, sizeof(*out));
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_HEALTH_GET);
	if (q) {
		ota_sql_bind_text(q, 1, rollout_id);
		ota_sql_bind_text(q, 2, device_id);
		int s = ota_sql_step(q);
		if (s == OTA_SQL_ROW) {
			out->reboots = (uint32_t)ota_sql_column_int64(q, 0);
			out->watchdog_resets = (uint32_t)ota_sql_column_int64(q, 1);
			out->failed_checks = (uint32_t)ota_sql_column_int64(q, 2);
			out->uptime_s = (uint64_t)ota_sql_column_int64(q, 3);
			if (health_at)
				*health_at = ota_sql_column_int64(q, 4);
			if (regressed_at)
				*regressed_at = ota_sql_column_int64(q, 5);
		}
		ota_store__done(q);
		rc = s == OTA_SQL_ROW    ? OTA_OK
		     : s == OTA_SQL_DONE ? OTA_ERR_NOT_FOUND
		                         : ota_store__fail(st, "member health");
	}
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_rollout_health(struct ota_store *st, const char *id, unsigned stage,
                                      struct ota_health_summary *out, unsigned limit,
                                      void (*fn)(void *ctx, const char *device_id), void *ctx)
{
	enum ota_err rc = OTA_ERR_DB;
	int s = OTA_SQL_ERROR;

	memset(out, 0, sizeof(*out));
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_HEALTH_SUM);
	if (!q)
		goto out;
	ota_sql_bind_text(q, 1, id);
	ota_sql_bind_int64(q, 2, stage);
	s = ota_sql_step(q);
	if (s == OTA_SQL_ROW) {
		out->reported = (unsigned)ota_sql_column_int64(q, 0);
		out->regressed = (unsigned)ota_sql_column_int64(q, 1);
		out->last_confirmed_at = ota_sql_column_int64(q, 2);
		out->accepted = (unsigned)ota_sql_column_int64(q, 3);
	}
	ota_store__done(q);
	if (s != OTA_SQL_ROW) {
		rc = ota_store__fail(st, "rollout health");
		goto out;
	}
	rc = OTA_OK;
	if (!fn || !limit || !out->regressed)
		goto out;
	q = ota_store__stmt(st, SQL_HEALTH_REGRESSED);
	if (!q) {
		rc = OTA_ERR_DB;
		goto out;
	}
	ota_sql_bind_text(q, 1, id);
	ota_sql_bind_int64(q, 2, stage);
	ota_sql_bind_int64(q, 3, limit);
	while ((s = ota_sql_step(q)) == OTA_SQL_ROW)
		fn(ctx, ota_sql_column_text(q, 0));
	ota_store__done(q);
	if (s != OTA_SQL_DONE)
		rc = ota_store__fail(st, "rollout regressed members");
out:
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_rollout_health_ack(struct ota_store *st, const char *id, unsigned regressed)
{
	int s = OTA_SQL_ERROR;

	ota_store__lock(st);
	enum ota_err rc = ota_store__begin(st);
	if (rc == OTA_OK) {
		struct ota_sql_stmt *q = ota_store__stmt(st, SQL_HEALTH_ACK);
		if (q) {
			ota_sql_bind_text(q, 1, id);
			ota_sql_bind_int64(q, 2, regressed);
			s = ota_sql_step(q);
			ota_store__done(q);
		}
		rc = s == OTA_SQL_DONE ? ota_store__commit(st)
		                       : ota_store__fail(st, "rollout health ack");
		if (rc != OTA_OK)
			ota_store__rollback(st);
	}
	ota_store__unlock(st);
	return rc;
}
