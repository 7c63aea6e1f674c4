/*
 * store/audit_store.c - the SQLite side of audit_store.h: the audit_log and audit_checkpoints
 * tables (schema/0010), whose triggers refuse UPDATE, DELETE and an entry off the chain head.
 * Runs on store.c's connection and lock (store/internal.h); an append reads the head and
 * inserts in one transaction, the caller's when its thread has one open. The walk steps two
 * statements side by side (entries, checkpoints) so that it holds one row of each at a time.
 */
#include "store/audit_store.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "store/internal.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

static const char SQL_HEAD[] = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
static const char SQL_INSERT[] =
    "INSERT INTO audit_log (seq, at, actor, role, action, device_id, rollout_id, release_id, "
    "object, before, after, detail, prev, hash) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
static const char SQL_CP_LATEST[] = "SELECT coalesce(max(seq), 0) FROM audit_checkpoints";
static const char SQL_CP_INSERT[] =
    "INSERT INTO audit_checkpoints (seq, hash, at, sig) VALUES (?1, ?2, ?3, ?4)";
static const char SQL_ROWS[] =
    "SELECT seq, at, actor, role, action, device_id, rollout_id, release_id, object, before, "
    "after, detail, prev, hash FROM audit_log WHERE seq > ?1 AND seq <= ?2 ORDER BY seq "
    "LIMIT ?3";
static const char SQL_CPS[] = "SELECT seq, hash, at, sig FROM audit_checkpoints "
                              "WHERE seq > ?1 AND seq <= ?2 ORDER BY seq";
static const char SQL_QUERY[] =
    "SELECT seq, at, actor, role, action, device_id, rollout_id, release_id, object, before, "
    "after, detail, prev, hash FROM audit_log WHERE seq > ?1 "
    "AND (?2 = 0 OR at >= ?2) AND (?3 = 0 OR at < ?3) AND (CAST(?4 AS TEXT) IS NULL OR actor = ?4) "
    "AND (CAST(?5 AS TEXT) IS NULL OR action = ?5) AND (CAST(?6 AS TEXT) IS NULL OR device_id = "
    "?6) "
    "AND (CAST(?7 AS TEXT) IS NULL OR rollout_id = ?7) AND (CAST(?8 AS TEXT) IS NULL OR release_id "
    "= ?8) "
    "ORDER BY seq LIMIT ?9";

/* ---- small helpers ---- */

static const char *col(struct ota_sql_stmt *q, int i)
{
	return ota_sql_column_text(q, i);
}

/* A text parameter borrowed for the statement's run (the caller keeps it alive). */
static void bind(struct ota_sql_stmt *q, int i, const char *s)
{
	if (s)
		ota_sql_bind_text(q, i, s);
	else
		ota_sql_bind_null(q, i);
}

/* Seq values go to SQLite's signed 64 bits; larger ones are clamped (no row has them). */
static void bind_seq(struct ota_sql_stmt *q, int i, uint64_t seq)
{
	ota_sql_bind_int64(q, i, seq > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)seq);
}

static void row_of(struct ota_sql_stmt *q, struct ota_store_audit_row *r)
{
	r->seq = (uint64_t)ota_sql_column_int64(q, 0);
	r->at = ota_sql_column_int64(q, 1);
	r->actor = col(q, 2);
	r->role = col(q, 3);
	r->action = col(q, 4);
	r->device_id = col(q, 5);
	r->rollout_id = col(q, 6);
	r->release_id = col(q, 7);
	r->object = col(q, 8);
	r->before = col(q, 9);
	r->after = col(q, 10);
	r->detail = col(q, 11);
	r->prev = col(q, 12);
	r->hash = col(q, 13);
}

static void checkpoint_of(struct ota_sql_stmt *q, struct ota_store_audit_checkpoint *c)
{
	c->seq = (uint64_t)ota_sql_column_int64(q, 0);
	c->hash = col(q, 1);
	c->at = ota_sql_column_int64(q, 2);
	c->sig = col(q, 3);
}

/* The head, the lock held. */
static enum ota_err head(struct ota_store *st, uint64_t *seq, char hash[OTA_HEX256])
{
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_HEAD);
	int s;

	*seq = 0;
	snprintf(hash, OTA_HEX256, "%s", ZERO_HASH);
	if (!q)
		return OTA_ERR_DB;
	s = ota_sql_step(q);
	if (s == OTA_SQL_ROW) {
		*seq = (uint64_t)ota_sql_column_int64(q, 0);
		snprintf(hash, OTA_HEX256, "%s", col(q, 1) ? col(q, 1) : "");
	}
	ota_store__done(q);
	return s == OTA_SQL_ROW || s == OTA_SQL_DONE ? OTA_OK : ota_store__fail(st, "audit head");
}

/* ---- writing ---- */

enum ota_err ota_store_audit_append(struct ota_store *st, const struct ota_store_audit_row *r,
                                    enum ota_err (*seal)(void *ctx, uint64_t seq, const char *prev,
                                                         char hash[OTA_HEX256]),
                                    void *ctx, uint64_t *seq_out)
{
	enum ota_err rc;
	char prev[OTA_HEX256], hash[OTA_HEX256] = "";
	uint64_t seq = 0;
	struct ota_sql_stmt *q;

	if (!r || !r->actor || !r->action || !seal)
		return OTA_ERR_INVALID;
	ota_store__lock(st);
	rc = ota_store__begin(st);
	if (rc != OTA_OK)
		goto unlock;
	rc = head(st, &seq, prev);
	if (rc != OTA_OK)
		goto out;
	seq++;
	rc = seal(ctx, seq, prev, hash);
	if (rc != OTA_OK)
		goto out;
	rc = OTA_ERR_DB;
	q = ota_store__stmt(st, SQL_INSERT);
	if (!q)
		goto out;
	bind_seq(q, 1, seq);
	ota_sql_bind_int64(q, 2, r->at);
	const char *v[] = {r->actor,      r->role,   r->action, r->device_id, r->rollout_id,
	                   r->release_id, r->object, r->before, r->after,     r->detail};
	for (int i = 0; i < 10; i++)
		bind(q, 3 + i, v[i]);
	bind(q, 13, prev);
	bind(q, 14, hash);
	if (ota_sql_step(q) == OTA_SQL_DONE)
		rc = OTA_OK;
	else
		(void)ota_store__fail(st, "audit append");
	ota_store__done(q);
out:
	if (rc == OTA_OK)
		rc = ota_store__commit(st);
	if (rc != OTA_OK)
		ota_store__rollback(st);
	else if (seq_out)
		*seq_out = seq;
unlock:
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_audit_checkpoint_add(struct ota_store *st,
                                            const struct ota_store_audit_checkpoint *c)
{
	enum ota_err rc;
	struct ota_sql_stmt *q;

	if (!c || c->seq < 1 || !c->hash || !c->sig)
		return OTA_ERR_INVALID;
	ota_store__lock(st);
	rc = ota_store__begin(st);
	if (rc != OTA_OK)
		goto unlock;
	rc = OTA_ERR_DB;
	q = ota_store__stmt(st, SQL_CP_INSERT);
	if (!q)
		goto out;
	bind_seq(q, 1, c->seq);
	bind(q, 2, c->hash);
	ota_sql_bind_int64(q, 3, c->at);
	bind(q, 4, c->sig);
	if (ota_sql_step(q) == OTA_SQL_DONE) {
		rc = OTA_OK;
	} else {
		enum ota_sql_failure ext = ota_sql_failure(ota_store__db(st));
		if (ext == OTA_SQL_F_UNIQUE)
			rc = OTA_ERR_CONFLICT;
		else if (ext == OTA_SQL_F_FOREIGN_KEY)
			rc = OTA_ERR_NOT_FOUND;
		else
			rc = ota_store__fail(st, "audit checkpoint");
	}
	ota_store__done(q);
out:
	if (rc == OTA_OK)
		rc = ota_store__commit(st);
	if (rc != OTA_OK)
		ota_store__rollback(st);
unlock:
	ota_store__unlock(st);
	return rc;
}

/* ---- reading ---- */

enum ota_err ota_store_audit_head(struct ota_store *st, uint64_t *seq, char hash[OTA_HEX256])
{
	enum ota_err rc;

	ota_store__lock(st);
	rc = head(st, seq, hash);
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_audit_checkpoint_latest(struct ota_store *st, uint64_t *seq)
{
	enum ota_err rc = OTA_ERR_DB;
	struct ota_sql_stmt *q;

	*seq = 0;
	ota_store__lock(st);
	q = ota_store__stmt(st, SQL_CP_LATEST);
	if (!q)
		goto out;
	if (ota_sql_step(q) == OTA_SQL_ROW) {
		*seq = (uint64_t)ota_sql_column_int64(q, 0);
		rc = OTA_OK;
	} else {
		rc = ota_store__fail(st, "audit latest checkpoint");
	}
	ota_store__done(q);
out:
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_audit_query(struct ota_store *st, const struct ota_store_audit_filter *f,
                                   int (*fn)(void *ctx, const struct ota_store_audit_row *r),
                                   void *ctx, bool *more)
{
	enum ota_err rc = OTA_ERR_DB;
	struct ota_sql_stmt *q;
	unsigned n = 0;
	int s;

	*more = false;
	if (f->limit < 1)
		return OTA_ERR_INVALID;
	ota_store__lock(st);
	q = ota_store__stmt(st, SQL_QUERY);
	if (!q)
		goto out;
	bind_seq(q, 1, f->after_seq);
	ota_sql_bind_int64(q, 2, f->since);
	ota_sql_bind_int64(q, 3, f->until);
	bind(q, 4, f->actor);
	bind(q, 5, f->action);
	bind(q, 6, f->device_id);
	bind(q, 7, f->rollout_id);
	bind(q, 8, f->release_id);
	ota_sql_bind_int64(q, 9, (int64_t)f->limit + 1); /* one more: is there a next page */
	while ((s = ota_sql_step(q)) == OTA_SQL_ROW) {
		struct ota_store_audit_row r;
		if (n == f->limit) {
			*more = true;
			break;
		}
		row_of(q, &r);
		n++;
		if (fn(ctx, &r)) {
			s = OTA_SQL_DONE;
			break;
		}
	}
	rc = s == OTA_SQL_DONE || s == OTA_SQL_ROW ? OTA_OK : ota_store__fail(st, "audit query");
	ota_store__done(q);
out:
	ota_store__unlock(st);
	return rc;
}

enum ota_err
ota_store_audit_walk(struct ota_store *st, uint64_t after, uint64_t upto, unsigned limit,
                     int (*entry)(void *ctx, const struct ota_store_audit_row *r),
                     int (*checkpoint)(void *ctx, const struct ota_store_audit_checkpoint *c),
                     void *ctx)
{
	enum ota_err rc = OTA_ERR_DB;
	struct ota_sql_stmt *rq, *cq = NULL;
	int s, cs = OTA_SQL_DONE;

	if (limit < 1)
		return OTA_ERR_INVALID;
	ota_store__lock(st);
	if (checkpoint) {
		cq = ota_store__stmt(st, SQL_CPS);
		if (!cq)
			goto out;
		bind_seq(cq, 1, after);
		bind_seq(cq, 2, upto);
		cs = ota_sql_step(cq);
	}
	rq = ota_store__stmt(st, SQL_ROWS);
	if (!rq)
		goto out;
	bind_seq(rq, 1, after);
	bind_seq(rq, 2, upto);
	ota_sql_bind_int64(rq, 3, limit);
	while ((s = ota_sql_step(rq)) == OTA_SQL_ROW) {
		struct ota_store_audit_row r;
		row_of(rq, &r);
		if (entry(ctx, &r))
			break;
		while (cs == OTA_SQL_ROW && (uint64_t)ota_sql_column_int64(cq, 0) <= r.seq) {
			struct ota_store_audit_checkpoint c;
			checkpoint_of(cq, &c);
			if (checkpoint(ctx, &c)) {
				s = OTA_SQL_DONE;
				break;
			}
			cs = ota_sql_step(cq);
		}
		if (s != OTA_SQL_ROW || (cs != OTA_SQL_ROW && cs != OTA_SQL_DONE))
			break;
	}
	if ((s == OTA_SQL_ROW || s == OTA_SQL_DONE) && (cs == OTA_SQL_ROW || cs == OTA_SQL_DONE))
		rc = OTA_OK;
	else
		(void)ota_store__fail(st, "audit walk");
	ota_store__done(rq);
out:
	ota_store__done(cq);
	ota_store__unlock(st);
	return rc;
}
