/*
 * store/rollout_store.c - the SQLite side of staged rollouts (rollout_store.h). Every change of
 * a member's state moves the counters (per stage and state, per budget scope, per failure
 * reason) in the same transaction, so progress and budgets are read from a few rows instead of
 * recounted, and a join checks and takes a budget slot atomically under BEGIN IMMEDIATE.
 */
#include "store/rollout_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/internal.h"

static const char SQL_RO_INSERT[] =
    "INSERT INTO rollouts (id, name, release_id, spec, hash_key, retry_attempts, "
    "retry_backoff, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
    "?8, ?8)";
static const char SQL_RO_GET[] =
    "SELECT id, name, release_id, hash_key, state, reason, stage, "
    "coalesce(stage_started_at, 0), ack_failures, ack_finished, retry_attempts, "
    "retry_backoff, created_at, updated_at, spec FROM rollouts WHERE id = ?1";
static const char SQL_RO_LIST[] =
    "SELECT id FROM rollouts WHERE (CAST(?1 AS TEXT) IS NULL OR state = ?1) AND (CAST(?3 AS TEXT) "
    "IS NULL "
    "OR (created_at, id) > (?2, ?3)) ORDER BY created_at, id LIMIT ?4";
static const char SQL_RO_LIST_STATE[] =
    "SELECT id FROM rollouts WHERE state = ?1 ORDER BY created_at, id";
static const char SQL_RO_SET[] =
    "UPDATE rollouts SET state = ?2, reason = ?3, updated_at = ?4, "
    "stage = CASE WHEN ?5 >= 0 THEN ?5 ELSE stage END, "
    "stage_started_at = CASE WHEN ?5 >= 0 THEN ?4 ELSE stage_started_at END, "
    "ack_failures = CASE WHEN ?5 = 0 THEN 0 ELSE ack_failures END, "
    "ack_finished = CASE WHEN ?5 = 0 THEN 0 ELSE ack_finished END WHERE id = ?1";
static const char SQL_RO_ACK[] =
    "UPDATE rollouts SET ack_failures = ?2, ack_finished = ?3 WHERE id = ?1";
static const char SQL_VERDICT_ADD[] =
    "INSERT INTO rollout_verdicts (rollout_id, at, stage, verdict, rule, numbers, reason) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_VERDICTS[] =
    "SELECT at, stage, verdict, rule, numbers, reason FROM rollout_verdicts "
    "WHERE rollout_id = ?1 ORDER BY id DESC LIMIT ?2";
static const char SQL_COUNT_ADD[] =
    "INSERT INTO rollout_counts (rollout_id, stage, state, n) "
    "VALUES (?1, ?2, ?3, CASE WHEN ?4 > 0 THEN ?4 ELSE 0 END) "
    "ON CONFLICT (rollout_id, stage, state) DO UPDATE SET n = rollout_counts.n + ?4";
static const char SQL_ACTIVE_ADD[] =
    "INSERT INTO rollout_active (rollout_id, scope, n) "
    "VALUES (?1, ?2, CASE WHEN ?3 > 0 THEN ?3 ELSE 0 END) "
    "ON CONFLICT (rollout_id, scope) DO UPDATE SET n = rollout_active.n + ?3";
static const char SQL_REASON_ADD[] =
    "INSERT INTO rollout_reasons (rollout_id, reason, n) VALUES (?1, ?2, 1) "
    "ON CONFLICT (rollout_id, reason) DO UPDATE SET n = rollout_reasons.n + 1";
static const char SQL_MEM_GET[] =
    "SELECT device_id, stage, state, reason, coalesce(deployment_id, ''), "
    "attempts, next_attempt_at, updated_at, budget_scope FROM rollout_members "
    "WHERE rollout_id = ?1 AND device_id = ?2";
/* The member rows of one device in several rollouts (?2: a JSON array of their ids), one read. */
#define MEM_OF_DEVICE(IDS)                                                                         \
	"SELECT device_id, stage, state, reason, coalesce(deployment_id, ''), "                    \
	"attempts, next_attempt_at, updated_at, budget_scope, rollout_id FROM rollout_members "    \
	"WHERE device_id = ?1 AND rollout_id IN (SELECT value FROM " IDS ")"
static const char *const SQL_MEM_OF_DEVICE[] = {
    MEM_OF_DEVICE("json_each(?2)"),
    MEM_OF_DEVICE("json_array_elements_text(?2::json) AS j(value)")};
static const char SQL_MEM_BY_DEP[] =
    "SELECT rollout_id, device_id FROM rollout_members WHERE deployment_id = ?1";
static const char SQL_MEM_INSERT[] =
    "INSERT INTO rollout_members (rollout_id, device_id, stage, state, reason, "
    "deployment_id, attempts, budget_scope, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
static const char SQL_MEM_SET[] =
    "UPDATE rollout_members SET state = ?3, reason = ?4, next_attempt_at = ?5, "
    "updated_at = ?6 WHERE rollout_id = ?1 AND device_id = ?2";
static const char SQL_MEM_RETRY[] =
    "UPDATE rollout_members SET deployment_id = ?3, attempts = attempts + 1, "
    "state = 'pending', reason = '', next_attempt_at = 0, updated_at = ?4 "
    "WHERE rollout_id = ?1 AND device_id = ?2";
static const char SQL_MEM_LIST[] =
    "SELECT device_id, stage, state, reason, coalesce(deployment_id, ''), "
    "attempts, next_attempt_at, updated_at, budget_scope FROM rollout_members "
    "WHERE rollout_id = ?1 AND device_id > ?2 ORDER BY device_id LIMIT ?3";
static const char SQL_MEM_LIST_STATE[] =
    "SELECT device_id, stage, state, reason, coalesce(deployment_id, ''), "
    "attempts, next_attempt_at, updated_at, budget_scope "
    "FROM rollout_members WHERE rollout_id = ?1 AND state = ?4 "
    "AND device_id > ?2 ORDER BY device_id LIMIT ?3";
static const char SQL_COUNTS_STAGE[] = "SELECT state, n FROM rollout_counts WHERE rollout_id = ?1 "
                                       "AND stage = ?2";
static const char SQL_COUNTS_ALL[] =
    "SELECT stage, state, n FROM rollout_counts WHERE rollout_id = ?1 "
    "AND n > 0 ORDER BY stage, state";
static const char SQL_ACTIVE_GET[] =
    "SELECT n FROM rollout_active WHERE rollout_id = ?1 AND scope = ?2";
static const char SQL_REASONS[] = "SELECT reason, n FROM rollout_reasons WHERE rollout_id = ?1 "
                                  "ORDER BY n DESC, reason LIMIT ?2";

/* The statements of the check-in and report paths (see ota_store_rollout_hot_sql()). */
static const char *const hot[] = {
    SQL_RO_GET,     SQL_RO_LIST_STATE, SQL_RO_SET,     SQL_COUNT_ADD,       SQL_ACTIVE_ADD,
    SQL_REASON_ADD, SQL_MEM_GET,       SQL_MEM_BY_DEP, SQL_MEM_INSERT,      SQL_MEM_SET,
    SQL_MEM_RETRY,  SQL_COUNTS_STAGE,  SQL_ACTIVE_GET, SQL_MEM_OF_DEVICE[0]};

const char *ota_store_rollout_hot_sql(unsigned i)
{
	return i < sizeof(hot) / sizeof(hot[0]) ? hot[i] : NULL;
}

static const char *const rs_names[OTA_RS__COUNT] = {
    "draft", "running", "paused", "waiting_approval", "completed", "aborted",
};
static const char *const ms_names[OTA_MS__COUNT] = {
    "pending",   "downloading", "installing",  "trial",
    "succeeded", "failed",      "rolled_back", "skipped",
};

const char *ota_rollout_state_name(enum ota_rollout_state s)
{
	return (unsigned)s < OTA_RS__COUNT ? rs_names[s] : NULL;
}

const char *ota_member_state_name(enum ota_member_state s)
{
	return (unsigned)s < OTA_MS__COUNT ? ms_names[s] : NULL;
}

int ota_rollout_state_parse(const char *name)
{
	for (int i = 0; name && i < OTA_RS__COUNT; i++)
		if (strcmp(name, rs_names[i]) == 0)
			return i;
	return -1;
}

int ota_member_state_parse(const char *name)
{
	for (int i = 0; name && i < OTA_MS__COUNT; i++)
		if (strcmp(name, ms_names[i]) == 0)
			return i;
	return -1;
}

static bool is_active(enum ota_member_state s)
{
	return s <= OTA_MS_TRIAL;
}

static void bind_text(struct ota_sql_stmt *q, int i, const char *s)
{
	if (s)
		ota_sql_bind_text(q, i, s);
	else
		ota_sql_bind_null(q, i);
}

static void col_text(struct ota_sql_stmt *q, int col, char *out, size_t cap)
{
	const char *t = ota_sql_column_text(q, col);
	snprintf(out, cap, "%s", t ? (const char *)t : "");
}

/* Steps a statement without rows and resets it. */
static enum ota_err exec(struct ota_store *st, struct ota_sql_stmt *q, const char *what)
{
	if (!q)
		return OTA_ERR_DB;
	int s = ota_sql_step(q);
	ota_store__done(q);
	return s == OTA_SQL_DONE ? OTA_OK : ota_store__fail(st, what);
}

static enum ota_err count_add(struct ota_store *st, const char *ro, unsigned stage,
                              enum ota_member_state s, int delta)
{
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_COUNT_ADD);
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, ro);
	ota_sql_bind_int64(q, 2, stage);
	bind_text(q, 3, ms_names[s]);
	ota_sql_bind_int64(q, 4, delta);
	return exec(st, q, "rollout counter");
}

static enum ota_err active_add(struct ota_store *st, const char *ro, const char *scope, int delta)
{
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_ACTIVE_ADD);
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, ro);
	bind_text(q, 2, scope);
	ota_sql_bind_int64(q, 3, delta);
	return exec(st, q, "rollout budget counter");
}

/* Move the counters of a member from `from` (-1: new member) to `to`. */
static enum ota_err counters_move(struct ota_store *st, const char *ro, unsigned stage, int from,
                                  enum ota_member_state to, const char *scope, const char *reason)
{
	enum ota_err rc = OTA_OK;
	bool was_active = from >= 0 && is_active((enum ota_member_state)from);

	if (from >= 0)
		rc = count_add(st, ro, stage, (enum ota_member_state)from, -1);
	if (rc == OTA_OK)
		rc = count_add(st, ro, stage, to, 1);
	if (rc == OTA_OK && was_active != is_active(to)) {
		int d = is_active(to) ? 1 : -1;
		rc = active_add(st, ro, "", d);
		if (rc == OTA_OK && scope && scope[0])
			rc = active_add(st, ro, scope, d);
	}
	if (rc == OTA_OK && (to == OTA_MS_FAILED || to == OTA_MS_ROLLED_BACK)) {
		struct ota_sql_stmt *q = ota_store__stmt(st, SQL_REASON_ADD);
		if (!q)
			return OTA_ERR_DB;
		bind_text(q, 1, ro);
		bind_text(q, 2, reason && reason[0] ? reason : ms_names[to]);
		rc = exec(st, q, "rollout reason counter");
	}
	return rc;
}

static enum ota_err member_set(struct ota_store *st, const char *ro, const char *dev,
                               enum ota_member_state s, const char *reason, int64_t next_at,
                               int64_t now)
{
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_MEM_SET);
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, ro);
	bind_text(q, 2, dev);
	bind_text(q, 3, ms_names[s]);
	bind_text(q, 4, reason ? reason : "");
	ota_sql_bind_int64(q, 5, next_at);
	ota_sql_bind_int64(q, 6, now);
	return exec(st, q, "rollout member update");
}

/* Reads a member row; scope (may be NULL) gets its budget scope. */
/* A member from the columns of SQL_MEM_GET (and SQL_MEM_OF_DEVICE). */
static void member_row(struct ota_sql_stmt *q, struct ota_rollout_member *m)
{
	memset(m, 0, sizeof(*m));
	col_text(q, 0, m->device_id, sizeof(m->device_id));
	m->stage = (unsigned)ota_sql_column_int64(q, 1);
	m->state = (enum ota_member_state)ota_member_state_parse(ota_sql_column_text(q, 2));
	col_text(q, 3, m->reason, sizeof(m->reason));
	col_text(q, 4, m->deployment_id, sizeof(m->deployment_id));
	m->attempts = (unsigned)ota_sql_column_int64(q, 5);
	m->next_attempt_at = ota_sql_column_int64(q, 6);
	m->updated_at = ota_sql_column_int64(q, 7);
}

static enum ota_err member_get(struct ota_store *st, const char *ro, const char *dev,
                               struct ota_rollout_member *m, char *scope, size_t scopelen)
{
	enum ota_err rc;
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_MEM_GET);
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, ro);
	bind_text(q, 2, dev);
	int s = ota_sql_step(q);
	if (s == OTA_SQL_ROW) {
		member_row(q, m);
		if (scope)
			col_text(q, 8, scope, scopelen);
		rc = OTA_OK;
	} else if (s == OTA_SQL_DONE) {
		rc = OTA_ERR_NOT_FOUND;
	} else {
		rc = ota_store__fail(st, "rollout member lookup");
	}
	ota_store__done(q);
	return rc;
}

static enum ota_err rollout_get(struct ota_store *st, const char *id, struct ota_rollout_row *o,
                                char **spec)
{
	enum ota_err rc;
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_RO_GET);
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, id);
	int s = ota_sql_step(q);
	if (s == OTA_SQL_ROW) {
		char hex[65];
		memset(o, 0, sizeof(*o));
		col_text(q, 0, o->id, sizeof(o->id));
		col_text(q, 1, o->name, sizeof(o->name));
		col_text(q, 2, o->release_id, sizeof(o->release_id));
		col_text(q, 3, hex, sizeof(hex));
		for (unsigned i = 0; i < 32 && strlen(hex) == 64; i++) {
			unsigned b;
			sscanf(hex + 2 * i, "%2x", &b);
			o->hash_key[i] = (uint8_t)b;
		}
		o->state =
		    (enum ota_rollout_state)ota_rollout_state_parse(ota_sql_column_text(q, 4));
		col_text(q, 5, o->reason, sizeof(o->reason));
		o->stage = (unsigned)ota_sql_column_int64(q, 6);
		o->stage_started_at = ota_sql_column_int64(q, 7);
		o->ack_failures = (unsigned)ota_sql_column_int64(q, 8);
		o->ack_finished = (unsigned)ota_sql_column_int64(q, 9);
		o->retry_attempts = (unsigned)ota_sql_column_int64(q, 10);
		o->retry_backoff = (unsigned)ota_sql_column_int64(q, 11);
		o->created_at = ota_sql_column_int64(q, 12);
		o->updated_at = ota_sql_column_int64(q, 13);
		rc = OTA_OK;
		if (spec) {
			*spec = strdup(ota_sql_column_text(q, 14));
			if (!*spec)
				rc = OTA_ERR_NOMEM;
		}
	} else if (s == OTA_SQL_DONE) {
		rc = OTA_ERR_NOT_FOUND;
	} else {
		rc = ota_store__fail(st, "rollout lookup");
	}
	ota_store__done(q);
	return rc;
}

enum ota_err ota_store_rollout_insert(struct ota_store *st, const struct ota_rollout_row *row,
                                      const char *spec)
{
	enum ota_err rc = OTA_ERR_DB;
	char hex[65];

	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", row->hash_key[i]);
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_RO_INSERT);
	if (!q)
		goto out;
	bind_text(q, 1, row->id);
	bind_text(q, 2, row->name);
	bind_text(q, 3, row->release_id);
	bind_text(q, 4, spec);
	bind_text(q, 5, hex);
	ota_sql_bind_int64(q, 6, row->retry_attempts ? row->retry_attempts : 1);
	ota_sql_bind_int64(q, 7, row->retry_backoff);
	ota_sql_bind_int64(q, 8, row->created_at);
	int s = ota_sql_step(q);
	enum ota_sql_failure x = ota_sql_failure(ota_store__db(st));
	ota_store__done(q);
	if (s == OTA_SQL_DONE) {
		ota_store__rollouts_changed(st);
		rc = OTA_OK;
	} else if (x == OTA_SQL_F_FOREIGN_KEY)
		rc = OTA_ERR_NOT_FOUND;
	else if (x == OTA_SQL_F_UNIQUE)
		rc = OTA_ERR_CONFLICT;
	else
		rc = ota_store__fail(st, "rollout insert");
out:
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_rollout_get(struct ota_store *st, const char *id,
                                   struct ota_rollout_row *out, char **spec)
{
	if (spec)
		*spec = NULL;
	ota_store__lock(st);
	enum ota_err rc = rollout_get(st, id, out, spec);
	ota_store__unlock(st);
	if (rc != OTA_OK && spec) {
		free(*spec);
		*spec = NULL;
	}
	return rc;
}

/*
 * The rollouts in `state` (any when < 0) after `after` (NULL: from the oldest), at most `limit`
 * (0: all; *more is set only with a limit). The check-in path's walk (all of one state) keeps
 * its own statement.
 */
static enum ota_err
rollout_walk(struct ota_store *st, int state, const struct ota_store_key *after, unsigned limit,
             int (*fn)(void *ctx, const struct ota_rollout_row *r, const char *spec), void *ctx,
             bool *more)
{
	enum ota_err rc = OTA_ERR_DB;
	char(*ids)[OTA_RO_ID_MAX] = NULL;
	size_t n = 0, cap = 0;
	bool hot_walk = limit == 0 && !after && state >= 0;
	int s;

	/* Ids first, then each row, so fn runs without a statement open. */
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, hot_walk ? SQL_RO_LIST_STATE : SQL_RO_LIST);
	if (!q)
		goto out;
	if (state >= 0)
		bind_text(q, 1, rs_names[state]);
	if (!hot_walk) {
		if (after) {
			ota_sql_bind_int64(q, 2, after->at);
			bind_text(q, 3, after->id);
		}
		/* One row past a page tells whether another page follows; no limit is the
		 * largest (PostgreSQL refuses a negative LIMIT, which SQLite reads as none). */
		ota_sql_bind_int64(q, 4, limit ? (int64_t)limit + 1 : INT64_MAX);
	}
	while ((s = ota_sql_step(q)) == OTA_SQL_ROW) {
		if (limit && n == limit) {
			*more = true;
			s = OTA_SQL_DONE;
			break;
		}
		if (n == cap) {
			void *p = realloc(ids, (cap ? cap * 2 : 16) * sizeof(*ids));
			if (!p) {
				rc = OTA_ERR_NOMEM;
				ota_store__done(q);
				goto out;
			}
			ids = p;
			cap = cap ? cap * 2 : 16;
		}
		col_text(q, 0, ids[n++], sizeof(ids[0]));
	}
	ota_store__done(q);
	if (s != OTA_SQL_DONE) {
		rc = ota_store__fail(st, "rollout list");
		goto out;
	}
	ota_store__unlock(st);
	for (size_t i = 0; i < n; i++) {
		struct ota_rollout_row row;
		char *spec = NULL;
		rc = ota_store_rollout_get(st, ids[i], &row, &spec);
		if (rc == OTA_ERR_NOT_FOUND)
			continue;
		if (rc != OTA_OK) {
			free(ids);
			return rc;
		}
		int stop = fn(ctx, &row, spec);
		free(spec);
		if (stop)
			break;
	}
	free(ids);
	return OTA_OK;
out:
	ota_store__unlock(st);
	free(ids);
	return rc;
}

enum ota_err ota_store_rollout_list(struct ota_store *st, int state,
                                    int (*fn)(void *ctx, const struct ota_rollout_row *r,
                                              const char *spec),
                                    void *ctx)
{
	return rollout_walk(st, state, NULL, 0, fn, ctx, NULL);
}

enum ota_err ota_store_rollout_page(
    struct ota_store *st, int state, const struct ota_store_key *after, unsigned limit,
    int (*fn)(void *ctx, const struct ota_rollout_row *r, const char *spec), void *ctx, bool *more)
{
	*more = false;
	if (limit < 1 || limit > 1000 || state >= OTA_RS__COUNT)
		return OTA_ERR_INVALID;
	return rollout_walk(st, state, after, limit, fn, ctx, more);
}

static enum ota_err stage_counts(struct ota_store *st, const char *id, unsigned stage,
                                 struct ota_stage_counts *out)
{
	int s;
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_COUNTS_STAGE);
	if (!q)
		return OTA_ERR_DB;
	memset(out, 0, sizeof(*out));
	bind_text(q, 1, id);
	ota_sql_bind_int64(q, 2, stage);
	while ((s = ota_sql_step(q)) == OTA_SQL_ROW) {
		int m = ota_member_state_parse(ota_sql_column_text(q, 0));
		if (m >= 0)
			out->n[m] = (unsigned)ota_sql_column_int64(q, 1);
	}
	ota_store__done(q);
	return s == OTA_SQL_DONE ? OTA_OK : ota_store__fail(st, "rollout counters");
}

static enum ota_err set_state(struct ota_store *st, const char *id, enum ota_rollout_state to,
                              const char *reason, int new_stage, int64_t now)
{
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_RO_SET);
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, id);
	bind_text(q, 2, rs_names[to]);
	bind_text(q, 3, reason ? reason : "");
	ota_sql_bind_int64(q, 4, now);
	ota_sql_bind_int64(q, 5, new_stage);
	enum ota_err rc = exec(st, q, "rollout state");
	ota_store__rollouts_changed(st); /* after the write, even a failed one */
	return rc;
}

static enum ota_err active_get(struct ota_store *st, const char *id, const char *scope, unsigned *n)
{
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_ACTIVE_GET);
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, id);
	bind_text(q, 2, scope);
	int s = ota_sql_step(q);
	*n = s == OTA_SQL_ROW ? (unsigned)ota_sql_column_int64(q, 0) : 0;
	ota_store__done(q);
	return s == OTA_SQL_ROW || s == OTA_SQL_DONE ? OTA_OK
	                                             : ota_store__fail(st, "budget lookup");
}

enum ota_err ota_store_rollout_counts(struct ota_store *st, const char *id, unsigned stage,
                                      struct ota_stage_counts *out)
{
	ota_store__lock(st);
	enum ota_err rc = stage_counts(st, id, stage, out);
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_rollout_counts_all(struct ota_store *st, const char *id,
                                          void (*fn)(void *ctx, unsigned stage,
                                                     enum ota_member_state s, unsigned n),
                                          void *ctx)
{
	enum ota_err rc = OTA_ERR_DB;
	int s;
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_COUNTS_ALL);
	if (!q)
		goto out;
	bind_text(q, 1, id);
	while ((s = ota_sql_step(q)) == OTA_SQL_ROW) {
		int m = ota_member_state_parse(ota_sql_column_text(q, 1));
		if (m >= 0)
			fn(ctx, (unsigned)ota_sql_column_int64(q, 0), (enum ota_member_state)m,
			   (unsigned)ota_sql_column_int64(q, 2));
	}
	ota_store__done(q);
	rc = s == OTA_SQL_DONE ? OTA_OK : ota_store__fail(st, "rollout counters");
out:
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_rollout_active(struct ota_store *st, const char *id, const char *scope,
                                      unsigned *n)
{
	ota_store__lock(st);
	enum ota_err rc = active_get(st, id, scope, n);
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_rollout_reasons(struct ota_store *st, const char *id, unsigned limit,
                                       void (*fn)(void *ctx, const char *reason, unsigned n),
                                       void *ctx)
{
	enum ota_err rc = OTA_ERR_DB;
	int s;
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_REASONS);
	if (!q)
		goto out;
	bind_text(q, 1, id);
	ota_sql_bind_int64(q, 2, limit);
	while ((s = ota_sql_step(q)) == OTA_SQL_ROW)
		fn(ctx, ota_sql_column_text(q, 0), (unsigned)ota_sql_column_int64(q, 1));
	ota_store__done(q);
	rc = s == OTA_SQL_DONE ? OTA_OK : ota_store__fail(st, "rollout reasons");
out:
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_rollout_members(struct ota_store *st, const char *id, int state,
                                       const char *after, unsigned limit,
                                       void (*fn)(void *ctx, const struct ota_rollout_member *m),
                                       void *ctx, bool *more)
{
	enum ota_err rc = OTA_ERR_DB;
	unsigned n = 0;
	int s;

	*more = false;
	if (limit < 1 || limit > 1000 || state >= OTA_MS__COUNT)
		return OTA_ERR_INVALID;
	ota_store__lock(st);
	struct ota_sql_stmt *q =
	    ota_store__stmt(st, state >= 0 ? SQL_MEM_LIST_STATE : SQL_MEM_LIST);
	if (!q)
		goto out;
	bind_text(q, 1, id);
	bind_text(q, 2, after ? after : "");
	/* One row past the page tells whether another page follows. */
	ota_sql_bind_int64(q, 3, (int64_t)limit + 1);
	if (state >= 0)
		bind_text(q, 4, ms_names[state]);
	while ((s = ota_sql_step(q)) == OTA_SQL_ROW) {
		struct ota_rollout_member m;
		if (n++ == limit) {
			*more = true;
			s = OTA_SQL_DONE;
			break;
		}
		memset(&m, 0, sizeof(m));
		col_text(q, 0, m.device_id, sizeof(m.device_id));
		m.stage = (unsigned)ota_sql_column_int64(q, 1);
		m.state = (enum ota_member_state)ota_member_state_parse(ota_sql_column_text(q, 2));
		col_text(q, 3, m.reason, sizeof(m.reason));
		col_text(q, 4, m.deployment_id, sizeof(m.deployment_id));
		m.attempts = (unsigned)ota_sql_column_int64(q, 5);
		m.next_attempt_at = ota_sql_column_int64(q, 6);
		m.updated_at = ota_sql_column_int64(q, 7);
		fn(ctx, &m);
	}
	ota_store__done(q);
	rc = s == OTA_SQL_DONE ? OTA_OK : ota_store__fail(st, "rollout members");
out:
	ota_store__unlock(st);
	return rc;
}

struct each {
	void (*fn)(void *ctx, const struct ota_rollout_member *m);
	void *ctx;
	char last[OTA_ID_MAX + 1];
};

static void each_one(void *ctx, const struct ota_rollout_member *m)
{
	struct each *e = ctx;
	snprintf(e->last, sizeof(e->last), "%s", m->device_id);
	e->fn(e->ctx, m);
}

enum ota_err
ota_store_rollout_members_each(struct ota_store *st, const char *id, int state,
                               void (*fn)(void *ctx, const struct ota_rollout_member *m), void *ctx)
{
	struct each e = {.fn = fn, .ctx = ctx};
	bool more = true;
	enum ota_err rc = OTA_OK;

	while (rc == OTA_OK && more)
		rc = ota_store_rollout_members(st, id, state, e.last, 1000, each_one, &e, &more);
	return rc;
}

enum ota_err ota_store_rollout_member_get(struct ota_store *st, const char *id,
                                          const char *device_id, struct ota_rollout_member *out)
{
	ota_store__lock(st);
	enum ota_err rc = member_get(st, id, device_id, out, NULL, 0);
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_rollout_members_of(struct ota_store *st, const char *device_id,
                                          const char *const *ids, size_t n,
                                          struct ota_rollout_member *out, bool *found)
{
	/* Rollout ids are "r-" and hex (OTA_RO_ID_MAX): quoted as they are. */
	size_t cap = n * (OTA_RO_ID_MAX + 3) + 3, len = 0;
	char *list = malloc(cap);
	enum ota_err rc = OTA_OK;

	if (!list)
		return OTA_ERR_NOMEM;
	list[len++] = '[';
	for (size_t i = 0; i < n; i++) {
		found[i] = false;
		len += (size_t)snprintf(list + len, cap - len, "%s\"%.*s\"", i ? "," : "",
		                        OTA_RO_ID_MAX - 1, ids[i]);
	}
	snprintf(list + len, cap - len, "]");
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, OTA_SQL_PICK(st, SQL_MEM_OF_DEVICE));
	if (!q)
		rc = OTA_ERR_DB;
	else {
		bind_text(q, 1, device_id);
		bind_text(q, 2, list);
		int s;
		while ((s = ota_sql_step(q)) == OTA_SQL_ROW) {
			const char *ro = ota_sql_column_text(q, 9);
			for (size_t i = 0; ro && i < n; i++)
				if (!found[i] && strcmp(ids[i], ro) == 0) {
					member_row(q, &out[i]);
					found[i] = true;
					break;
				}
		}
		if (s != OTA_SQL_DONE)
			rc = ota_store__fail(st, "rollout members of a device");
		ota_store__done(q);
	}
	ota_store__unlock(st);
	free(list);
	return rc;
}

/* The writes below join the caller's transaction or make one of their own. */
static enum ota_err write_end(struct ota_store *st, enum ota_err rc)
{
	if (rc == OTA_OK)
		rc = ota_store__commit(st);
	if (rc != OTA_OK)
		ota_store__rollback(st);
	ota_store__unlock(st);
	return rc;
}

static enum ota_err write_begin(struct ota_store *st)
{
	ota_store__lock(st);
	return ota_store__begin(st);
}

enum ota_err ota_store_rollout_set_state(struct ota_store *st, const char *id,
                                         enum ota_rollout_state to, const char *reason,
                                         int new_stage, int64_t now)
{
	enum ota_err rc = write_begin(st);
	if (rc == OTA_OK)
		rc = set_state(st, id, to, reason, new_stage, now);
	if (rc == OTA_OK && ota_sql_changes(ota_store__db(st)) != 1)
		rc = OTA_ERR_NOT_FOUND;
	return write_end(st, rc);
}

enum ota_err ota_store_rollout_set_ack(struct ota_store *st, const char *id, unsigned failures,
                                       unsigned finished)
{
	enum ota_err rc = write_begin(st);
	if (rc == OTA_OK) {
		struct ota_sql_stmt *q = ota_store__stmt(st, SQL_RO_ACK);
		if (q) {
			bind_text(q, 1, id);
			ota_sql_bind_int64(q, 2, failures);
			ota_sql_bind_int64(q, 3, finished);
		}
		rc = exec(st, q, "rollout acknowledgement");
	}
	return write_end(st, rc);
}

enum ota_err ota_store_rollout_verdict_add(struct ota_store *st, const char *id,
                                           const struct ota_rollout_verdict *v)
{
	enum ota_err rc = write_begin(st);
	if (rc == OTA_OK) {
		struct ota_sql_stmt *q = ota_store__stmt(st, SQL_VERDICT_ADD);
		if (q) {
			bind_text(q, 1, id);
			ota_sql_bind_int64(q, 2, v->at);
			ota_sql_bind_int64(q, 3, v->stage);
			bind_text(q, 4, v->verdict);
			bind_text(q, 5, v->rule);
			bind_text(q, 6, v->numbers);
			bind_text(q, 7, v->reason);
		}
		rc = exec(st, q, "rollout verdict");
	}
	return write_end(st, rc);
}

enum ota_err ota_store_rollout_verdicts(struct ota_store *st, const char *id, unsigned limit,
                                        void (*fn)(void *ctx, const struct ota_rollout_verdict *v),
                                        void *ctx)
{
	enum ota_err rc = OTA_ERR_DB;
	int s;
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_VERDICTS);
	if (!q)
		goto out;
	bind_text(q, 1, id);
	ota_sql_bind_int64(q, 2, limit);
	while ((s = ota_sql_step(q)) == OTA_SQL_ROW) {
		struct ota_rollout_verdict v = {
		    .at = ota_sql_column_int64(q, 0),
		    .stage = (unsigned)ota_sql_column_int64(q, 1),
		    .verdict = ota_sql_column_text(q, 2),
		    .rule = ota_sql_column_text(q, 3),
		    .numbers = ota_sql_column_text(q, 4),
		    .reason = ota_sql_column_text(q, 5),
		};
		fn(ctx, &v);
	}
	ota_store__done(q);
	rc = s == OTA_SQL_DONE ? OTA_OK : ota_store__fail(st, "rollout verdicts");
out:
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_rollout_member_insert(struct ota_store *st, const struct ota_member_new *m)
{
	enum ota_err rc = write_begin(st);
	if (rc != OTA_OK)
		return write_end(st, rc);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_MEM_INSERT);
	if (q) {
		bind_text(q, 1, m->rollout_id);
		bind_text(q, 2, m->device_id);
		ota_sql_bind_int64(q, 3, m->stage);
		bind_text(q, 4, ms_names[m->state]);
		bind_text(q, 5, m->reason ? m->reason : "");
		bind_text(q, 6, m->deployment_id);
		ota_sql_bind_int64(q, 7, m->deployment_id ? 1 : 0);
		bind_text(q, 8, m->scope ? m->scope : "");
		ota_sql_bind_int64(q, 9, m->now);
	}
	rc = exec(st, q, "rollout member insert");
	if (rc == OTA_OK)
		rc = counters_move(st, m->rollout_id, m->stage, -1, m->state, m->scope, m->reason);
	return write_end(st, rc);
}

enum ota_err ota_store_rollout_member_move(struct ota_store *st, const char *rollout_id,
                                           const char *device_id, enum ota_member_state from,
                                           enum ota_member_state to, const char *reason,
                                           int64_t next_attempt_at, int64_t now)
{
	struct ota_rollout_member m;
	char scope[65] = "";
	enum ota_err rc = write_begin(st);

	if (rc == OTA_OK)
		rc = member_get(st, rollout_id, device_id, &m, scope, sizeof(scope));
	if (rc == OTA_OK)
		rc = member_set(st, rollout_id, device_id, to, reason, next_attempt_at, now);
	if (rc == OTA_OK)
		rc = counters_move(st, rollout_id, m.stage, (int)from, to, scope, reason);
	return write_end(st, rc);
}

enum ota_err ota_store_rollout_member_retry(struct ota_store *st, const char *rollout_id,
                                            const char *device_id, const char *deployment_id,
                                            int64_t now)
{
	struct ota_rollout_member m;
	char scope[65] = "";
	enum ota_err rc = write_begin(st);

	if (rc == OTA_OK)
		rc = member_get(st, rollout_id, device_id, &m, scope, sizeof(scope));
	if (rc == OTA_OK) {
		struct ota_sql_stmt *q = ota_store__stmt(st, SQL_MEM_RETRY);
		if (q) {
			bind_text(q, 1, rollout_id);
			bind_text(q, 2, device_id);
			bind_text(q, 3, deployment_id);
			ota_sql_bind_int64(q, 4, now);
		}
		rc = exec(st, q, "rollout member retry");
	}
	if (rc == OTA_OK)
		rc = counters_move(st, rollout_id, m.stage, (int)m.state, OTA_MS_PENDING, scope,
		                   NULL);
	return write_end(st, rc);
}

enum ota_err ota_store_rollout_member_scope(struct ota_store *st, const char *id,
                                            const char *device_id, struct ota_rollout_member *out,
                                            char *scope, size_t scopelen)
{
	ota_store__lock(st);
	enum ota_err rc = member_get(st, id, device_id, out, scope, scopelen);
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_rollout_member_of_deployment(struct ota_store *st, const char *deployment_id,
                                                    char rollout_id[OTA_RO_ID_MAX],
                                                    struct ota_rollout_member *out)
{
	char dev[OTA_ID_MAX + 1];
	enum ota_err rc = OTA_ERR_DB;

	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_MEM_BY_DEP);
	if (!q)
		goto out;
	bind_text(q, 1, deployment_id);
	int s = ota_sql_step(q);
	if (s == OTA_SQL_ROW) {
		col_text(q, 0, rollout_id, OTA_RO_ID_MAX);
		col_text(q, 1, dev, sizeof(dev));
	}
	ota_store__done(q);
	if (s == OTA_SQL_ROW)
		rc = member_get(st, rollout_id, dev, out, NULL, 0);
	else
		rc = s == OTA_SQL_DONE ? OTA_ERR_NOT_FOUND
		                       : ota_store__fail(st, "rollout member by deployment");
out:
	ota_store__unlock(st);
	return rc;
}
