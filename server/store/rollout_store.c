/*
 * store/rollout_store.c - the SQLite side of staged rollouts (rollout_store.h). Every change of
 * a member's state moves the counters (per stage and state, per budget scope, per failure
 * reason) in the same transaction, so progress and budgets are read from a few rows instead of
 * recounted, and a join checks and takes a budget slot atomically under BEGIN IMMEDIATE.
 */
#include "store/rollout_store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/log.h"
#include "store/internal.h"

enum {
	Q_RO_INSERT,
	Q_RO_GET,
	Q_RO_LIST,
	Q_RO_LIST_STATE,
	Q_RO_SET,
	Q_RO_ACK,
	Q_COUNT_ADD,
	Q_ACTIVE_ADD,
	Q_REASON_ADD,
	Q_MEM_GET,
	Q_MEM_BY_DEP,
	Q_MEM_INSERT,
	Q_MEM_SET,
	Q_MEM_RETRY,
	Q_MEM_LIST,
	Q_MEM_LIST_STATE,
	Q_COUNTS_STAGE,
	Q_COUNTS_ALL,
	Q_ACTIVE_GET,
	Q_REASONS,
	Q_DEV_BUSY,
	Q_DEP_INSERT,
	Q_DEP_CANCEL,
	Q_DEV_FLOOR,
	Q_TAGS,
	Q_TAGS_DEL,
	Q_TAG_INSERT,
	Q__COUNT
};

static const char *const q_sql[Q__COUNT] = {
    [Q_RO_INSERT] = "INSERT INTO rollouts (id, name, release_id, spec, hash_key, retry_attempts, "
                    "retry_backoff, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                    "?8, ?8)",
    [Q_RO_GET] = "SELECT id, name, release_id, hash_key, state, reason, stage, "
                 "coalesce(stage_started_at, 0), ack_failures, ack_finished, retry_attempts, "
                 "retry_backoff, created_at, updated_at, spec FROM rollouts WHERE id = ?1",
    [Q_RO_LIST] = "SELECT id FROM rollouts WHERE (?1 IS NULL OR state = ?1) AND (?3 IS NULL "
                  "OR (created_at, id) > (?2, ?3)) ORDER BY created_at, id LIMIT ?4",
    [Q_RO_LIST_STATE] = "SELECT id FROM rollouts WHERE state = ?1 ORDER BY created_at, id",
    [Q_RO_SET] = "UPDATE rollouts SET state = ?2, reason = ?3, updated_at = ?4, "
                 "stage = CASE WHEN ?5 >= 0 THEN ?5 ELSE stage END, "
                 "stage_started_at = CASE WHEN ?5 >= 0 THEN ?4 ELSE stage_started_at END, "
                 "ack_failures = CASE WHEN ?5 >= 0 THEN 0 ELSE ack_failures END, "
                 "ack_finished = CASE WHEN ?5 >= 0 THEN 0 ELSE ack_finished END WHERE id = ?1",
    [Q_RO_ACK] = "UPDATE rollouts SET ack_failures = ?2, ack_finished = ?3 WHERE id = ?1",
    [Q_COUNT_ADD] = "INSERT INTO rollout_counts (rollout_id, stage, state, n) "
                    "VALUES (?1, ?2, ?3, max(?4, 0)) ON CONFLICT DO UPDATE SET n = n + ?4",
    [Q_ACTIVE_ADD] =
        "INSERT INTO rollout_active (rollout_id, scope, n) VALUES (?1, ?2, max(?3, 0)) "
        "ON CONFLICT DO UPDATE SET n = n + ?3",
    [Q_REASON_ADD] = "INSERT INTO rollout_reasons (rollout_id, reason, n) VALUES (?1, ?2, 1) "
                     "ON CONFLICT DO UPDATE SET n = n + 1",
    [Q_MEM_GET] = "SELECT device_id, stage, state, reason, coalesce(deployment_id, ''), "
                  "attempts, next_attempt_at, updated_at, budget_scope FROM rollout_members "
                  "WHERE rollout_id = ?1 AND device_id = ?2",
    [Q_MEM_BY_DEP] = "SELECT rollout_id, device_id FROM rollout_members "
                     "WHERE deployment_id = ?1",
    [Q_MEM_INSERT] = "INSERT INTO rollout_members (rollout_id, device_id, stage, state, reason, "
                     "deployment_id, attempts, budget_scope, updated_at) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [Q_MEM_SET] = "UPDATE rollout_members SET state = ?3, reason = ?4, next_attempt_at = ?5, "
                  "updated_at = ?6 WHERE rollout_id = ?1 AND device_id = ?2",
    [Q_MEM_RETRY] = "UPDATE rollout_members SET deployment_id = ?3, attempts = attempts + 1 "
                    "WHERE rollout_id = ?1 AND device_id = ?2",
    [Q_MEM_LIST] = "SELECT device_id, stage, state, reason, coalesce(deployment_id, ''), "
                   "attempts, next_attempt_at, updated_at, budget_scope FROM rollout_members "
                   "WHERE rollout_id = ?1 AND device_id > ?2 ORDER BY device_id LIMIT ?3",
    [Q_MEM_LIST_STATE] = "SELECT device_id, stage, state, reason, coalesce(deployment_id, ''), "
                         "attempts, next_attempt_at, updated_at, budget_scope "
                         "FROM rollout_members WHERE rollout_id = ?1 AND state = ?4 "
                         "AND device_id > ?2 ORDER BY device_id LIMIT ?3",
    [Q_COUNTS_STAGE] = "SELECT state, n FROM rollout_counts WHERE rollout_id = ?1 "
                       "AND stage = ?2",
    [Q_COUNTS_ALL] = "SELECT stage, state, n FROM rollout_counts WHERE rollout_id = ?1 "
                     "AND n > 0 ORDER BY stage, state",
    [Q_ACTIVE_GET] = "SELECT n FROM rollout_active WHERE rollout_id = ?1 AND scope = ?2",
    [Q_REASONS] = "SELECT reason, n FROM rollout_reasons WHERE rollout_id = ?1 "
                  "ORDER BY n DESC, reason LIMIT ?2",
    [Q_DEV_BUSY] = "SELECT 1 FROM deployments WHERE device_id = ?1 AND status = 'active'",
    [Q_DEP_INSERT] = "INSERT INTO deployments (id, device_id, release_id, created_at, "
                     "updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
    [Q_DEP_CANCEL] = "UPDATE deployments SET status = 'cancelled', reason = ?2, "
                     "updated_at = ?3, finished_at = ?3 WHERE id = ?1 AND status = 'active'",
    [Q_DEV_FLOOR] = "SELECT coalesce(security_floor, 0) FROM devices WHERE id = ?1",
    [Q_TAGS] = "SELECT tag FROM device_tags WHERE device_id = ?1 ORDER BY tag",
    [Q_TAGS_DEL] = "DELETE FROM device_tags WHERE device_id = ?1",
    [Q_TAG_INSERT] = "INSERT OR IGNORE INTO device_tags (device_id, tag) VALUES (?1, ?2)",
};

/* The statements of the check-in and report paths (see ota_store_rollout_hot_sql()). */
static const unsigned hot[] = {Q_RO_GET,     Q_RO_LIST_STATE, Q_RO_SET,     Q_COUNT_ADD,
                               Q_ACTIVE_ADD, Q_REASON_ADD,    Q_MEM_GET,    Q_MEM_BY_DEP,
                               Q_MEM_INSERT, Q_MEM_SET,       Q_MEM_RETRY,  Q_COUNTS_STAGE,
                               Q_ACTIVE_GET, Q_DEV_BUSY,      Q_DEP_INSERT, Q_TAGS};

const char *ota_store_rollout_hot_sql(unsigned i)
{
	return i < sizeof(hot) / sizeof(hot[0]) ? q_sql[hot[i]] : NULL;
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

static bool is_final(enum ota_member_state s)
{
	return s >= OTA_MS_SUCCEEDED;
}

static sqlite3_stmt *Q(struct ota_store *st, unsigned q)
{
	return ota_store__stmt(st, q_sql[q]);
}

static void bind_text(sqlite3_stmt *q, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(q, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, i);
}

static void col_text(sqlite3_stmt *q, int col, char *out, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(q, col);
	snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static enum ota_err fail(struct ota_store *st, const char *what)
{
	log_err("store: %s: %s", what, sqlite3_errmsg(ota_store__db(st)));
	return OTA_ERR_DB;
}

/* Steps a statement without rows and resets it. */
static enum ota_err exec(struct ota_store *st, sqlite3_stmt *q, const char *what)
{
	if (!q)
		return OTA_ERR_DB;
	int s = sqlite3_step(q);
	ota_store__done(q);
	return s == SQLITE_DONE ? OTA_OK : fail(st, what);
}

static enum ota_err (*auditor)(struct ota_store *st, const struct ota_rollout_audit *a,
                               int64_t now);
static pthread_once_t auditor_once = PTHREAD_ONCE_INIT;
static enum ota_err (*auditor_wanted)(struct ota_store *, const struct ota_rollout_audit *,
                                      int64_t);

static void auditor_set(void)
{
	auditor = auditor_wanted;
}

void ota_store_rollout_set_auditor(enum ota_err (*fn)(struct ota_store *st,
                                                      const struct ota_rollout_audit *a,
                                                      int64_t now))
{
	auditor_wanted = fn;
	pthread_once(&auditor_once, auditor_set);
}

/* The one place rollout and deployment transitions are recorded, inside their transaction. */
static enum ota_err audit_note(struct ota_store *st, const char *actor, const char *role,
                               const char *action, const char *rollout_id, const char *device_id,
                               const char *object, const char *detail, int64_t now)
{
	struct ota_rollout_audit a = {
	    .actor = actor,
	    .role = role,
	    .action = action,
	    .rollout_id = rollout_id,
	    .device_id = device_id,
	    .object = object,
	    .detail = detail,
	};
	if (auditor)
		return auditor(st, &a, now);
	log_info("rollout %s: %s by %s%s%s %s", rollout_id ? rollout_id : "-", action,
	         actor ? actor : "otad", device_id ? " device " : "", device_id ? device_id : "",
	         detail ? detail : "");
	return OTA_OK;
}

static enum ota_err count_add(struct ota_store *st, const char *ro, unsigned stage,
                              enum ota_member_state s, int delta)
{
	sqlite3_stmt *q = Q(st, Q_COUNT_ADD);
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, ro);
	sqlite3_bind_int64(q, 2, stage);
	bind_text(q, 3, ms_names[s]);
	sqlite3_bind_int(q, 4, delta);
	return exec(st, q, "rollout counter");
}

static enum ota_err active_add(struct ota_store *st, const char *ro, const char *scope, int delta)
{
	sqlite3_stmt *q = Q(st, Q_ACTIVE_ADD);
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, ro);
	bind_text(q, 2, scope);
	sqlite3_bind_int(q, 3, delta);
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
		sqlite3_stmt *q = Q(st, Q_REASON_ADD);
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
	sqlite3_stmt *q = Q(st, Q_MEM_SET);
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, ro);
	bind_text(q, 2, dev);
	bind_text(q, 3, ms_names[s]);
	bind_text(q, 4, reason ? reason : "");
	sqlite3_bind_int64(q, 5, next_at);
	sqlite3_bind_int64(q, 6, now);
	return exec(st, q, "rollout member update");
}

/* Reads a member row; scope (may be NULL) gets its budget scope. */
static enum ota_err member_get(struct ota_store *st, const char *ro, const char *dev,
                               struct ota_rollout_member *m, char *scope, size_t scopelen)
{
	enum ota_err rc;
	sqlite3_stmt *q = Q(st, Q_MEM_GET);
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, ro);
	bind_text(q, 2, dev);
	int s = sqlite3_step(q);
	if (s == SQLITE_ROW) {
		memset(m, 0, sizeof(*m));
		col_text(q, 0, m->device_id, sizeof(m->device_id));
		m->stage = (unsigned)sqlite3_column_int64(q, 1);
		m->state = (enum ota_member_state)ota_member_state_parse(
		    (const char *)sqlite3_column_text(q, 2));
		col_text(q, 3, m->reason, sizeof(m->reason));
		col_text(q, 4, m->deployment_id, sizeof(m->deployment_id));
		m->attempts = (unsigned)sqlite3_column_int64(q, 5);
		m->next_attempt_at = sqlite3_column_int64(q, 6);
		m->updated_at = sqlite3_column_int64(q, 7);
		if (scope)
			col_text(q, 8, scope, scopelen);
		rc = OTA_OK;
	} else if (s == SQLITE_DONE) {
		rc = OTA_ERR_NOT_FOUND;
	} else {
		rc = fail(st, "rollout member lookup");
	}
	ota_store__done(q);
	return rc;
}

static enum ota_err rollout_get(struct ota_store *st, const char *id, struct ota_rollout_row *o,
                                char **spec)
{
	enum ota_err rc;
	sqlite3_stmt *q = Q(st, Q_RO_GET);
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, id);
	int s = sqlite3_step(q);
	if (s == SQLITE_ROW) {
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
		o->state = (enum ota_rollout_state)ota_rollout_state_parse(
		    (const char *)sqlite3_column_text(q, 4));
		col_text(q, 5, o->reason, sizeof(o->reason));
		o->stage = (unsigned)sqlite3_column_int64(q, 6);
		o->stage_started_at = sqlite3_column_int64(q, 7);
		o->ack_failures = (unsigned)sqlite3_column_int64(q, 8);
		o->ack_finished = (unsigned)sqlite3_column_int64(q, 9);
		o->retry_attempts = (unsigned)sqlite3_column_int64(q, 10);
		o->retry_backoff = (unsigned)sqlite3_column_int64(q, 11);
		o->created_at = sqlite3_column_int64(q, 12);
		o->updated_at = sqlite3_column_int64(q, 13);
		rc = OTA_OK;
		if (spec) {
			*spec = strdup((const char *)sqlite3_column_text(q, 14));
			if (!*spec)
				rc = OTA_ERR_NOMEM;
		}
	} else if (s == SQLITE_DONE) {
		rc = OTA_ERR_NOT_FOUND;
	} else {
		rc = fail(st, "rollout lookup");
	}
	ota_store__done(q);
	return rc;
}

enum ota_err ota_store_rollout_insert(struct ota_store *st, const struct ota_rollout_row *row,
                                      const char *spec, const char *actor, const char *role)
{
	enum ota_err rc = OTA_ERR_DB;
	char hex[65];

	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", row->hash_key[i]);
	ota_store__lock(st);
	sqlite3_stmt *q = Q(st, Q_RO_INSERT);
	if (!q)
		goto out;
	bind_text(q, 1, row->id);
	bind_text(q, 2, row->name);
	bind_text(q, 3, row->release_id);
	bind_text(q, 4, spec);
	bind_text(q, 5, hex);
	sqlite3_bind_int64(q, 6, row->retry_attempts ? row->retry_attempts : 1);
	sqlite3_bind_int64(q, 7, row->retry_backoff);
	sqlite3_bind_int64(q, 8, row->created_at);
	int s = sqlite3_step(q);
	int x = sqlite3_extended_errcode(ota_store__db(st));
	ota_store__done(q);
	if (s == SQLITE_DONE)
		rc = audit_note(st, actor, role, "rollout.create", row->id, NULL, row->release_id,
		                row->name, row->created_at);
	else if (x == SQLITE_CONSTRAINT_FOREIGNKEY)
		rc = OTA_ERR_NOT_FOUND;
	else if (x == SQLITE_CONSTRAINT_PRIMARYKEY)
		rc = OTA_ERR_CONFLICT;
	else
		rc = fail(st, "rollout insert");
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
	sqlite3_stmt *q = Q(st, hot_walk ? Q_RO_LIST_STATE : Q_RO_LIST);
	if (!q)
		goto out;
	if (state >= 0)
		bind_text(q, 1, rs_names[state]);
	if (!hot_walk) {
		if (after) {
			sqlite3_bind_int64(q, 2, after->at);
			bind_text(q, 3, after->id);
		}
		/* One row past a page tells whether another page follows; -1: no limit. */
		sqlite3_bind_int64(q, 4, limit ? (sqlite3_int64)limit + 1 : -1);
	}
	while ((s = sqlite3_step(q)) == SQLITE_ROW) {
		if (limit && n == limit) {
			*more = true;
			s = SQLITE_DONE;
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
	if (s != SQLITE_DONE) {
		rc = fail(st, "rollout list");
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
	sqlite3_stmt *q = Q(st, Q_COUNTS_STAGE);
	if (!q)
		return OTA_ERR_DB;
	memset(out, 0, sizeof(*out));
	bind_text(q, 1, id);
	sqlite3_bind_int64(q, 2, stage);
	while ((s = sqlite3_step(q)) == SQLITE_ROW) {
		int m = ota_member_state_parse((const char *)sqlite3_column_text(q, 0));
		if (m >= 0)
			out->n[m] = (unsigned)sqlite3_column_int64(q, 1);
	}
	ota_store__done(q);
	return s == SQLITE_DONE ? OTA_OK : fail(st, "rollout counters");
}

/* Pending members of an ending rollout: their deployments are cancelled, they are skipped. */
static enum ota_err cancel_pending(struct ota_store *st, const char *id, const char *why,
                                   int64_t now)
{
	enum ota_err rc = OTA_OK;
	struct ota_rollout_member *ms = NULL;
	char(*scopes)[65] = NULL;
	size_t n = 0, cap = 0;
	int s;
	sqlite3_stmt *q = Q(st, Q_MEM_LIST_STATE);

	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, id);
	bind_text(q, 2, "");
	sqlite3_bind_int64(q, 3, INT64_MAX);
	bind_text(q, 4, "pending");
	while ((s = sqlite3_step(q)) == SQLITE_ROW) {
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			void *a = realloc(ms, nc * sizeof(*ms));
			if (a)
				ms = a;
			void *b = realloc(scopes, nc * sizeof(*scopes));
			if (b)
				scopes = b;
			if (!a || !b) {
				rc = OTA_ERR_NOMEM;
				break;
			}
			cap = nc;
		}
		memset(&ms[n], 0, sizeof(ms[n]));
		col_text(q, 0, ms[n].device_id, sizeof(ms[n].device_id));
		ms[n].stage = (unsigned)sqlite3_column_int64(q, 1);
		col_text(q, 4, ms[n].deployment_id, sizeof(ms[n].deployment_id));
		col_text(q, 8, scopes[n], sizeof(scopes[0]));
		n++;
	}
	ota_store__done(q);
	if (rc == OTA_OK && s != SQLITE_DONE && s != SQLITE_ROW)
		rc = fail(st, "pending members");
	for (size_t i = 0; rc == OTA_OK && i < n; i++) {
		q = Q(st, Q_DEP_CANCEL);
		if (!q) {
			rc = OTA_ERR_DB;
			break;
		}
		bind_text(q, 1, ms[i].deployment_id);
		bind_text(q, 2, why);
		sqlite3_bind_int64(q, 3, now);
		rc = exec(st, q, "deployment cancel");
		if (rc == OTA_OK)
			rc = member_set(st, id, ms[i].device_id, OTA_MS_SKIPPED, why, 0, now);
		if (rc == OTA_OK)
			rc = counters_move(st, id, ms[i].stage, OTA_MS_PENDING, OTA_MS_SKIPPED,
			                   scopes[i], NULL);
		if (rc == OTA_OK)
			rc = audit_note(st, NULL, "system", "deployment.cancel", id,
			                ms[i].device_id, ms[i].deployment_id, why, now);
	}
	free(ms);
	free(scopes);
	return rc;
}

static enum ota_err set_state(struct ota_store *st, const char *id, enum ota_rollout_state to,
                              const char *reason, int new_stage, int64_t now)
{
	sqlite3_stmt *q = Q(st, Q_RO_SET);
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, id);
	bind_text(q, 2, rs_names[to]);
	bind_text(q, 3, reason ? reason : "");
	sqlite3_bind_int64(q, 4, now);
	sqlite3_bind_int64(q, 5, new_stage);
	return exec(st, q, "rollout state");
}

enum ota_err ota_store_rollout_transition(struct ota_store *st, const char *id, unsigned from_mask,
                                          enum ota_rollout_state to, const char *reason,
                                          int new_stage, bool ack, const char *actor,
                                          const char *role, int64_t now,
                                          enum ota_rollout_state *was)
{
	enum ota_err rc;
	struct ota_rollout_row row;

	ota_store__lock(st);
	rc = ota_store__begin(st);
	if (rc != OTA_OK)
		goto out;
	rc = rollout_get(st, id, &row, NULL);
	if (rc != OTA_OK)
		goto out;
	if (was)
		*was = row.state;
	if (!(from_mask & (1u << row.state))) {
		rc = OTA_ERR_CONFLICT;
		goto out;
	}
	rc = set_state(st, id, to, reason, new_stage, now);
	if (rc == OTA_OK && ack) {
		struct ota_stage_counts c;
		rc = stage_counts(st, id, row.stage, &c);
		if (rc == OTA_OK) {
			unsigned f = c.n[OTA_MS_FAILED] + c.n[OTA_MS_ROLLED_BACK];
			sqlite3_stmt *q = Q(st, Q_RO_ACK);
			if (!q) {
				rc = OTA_ERR_DB;
				goto out;
			}
			bind_text(q, 1, id);
			sqlite3_bind_int64(q, 2, f);
			sqlite3_bind_int64(q, 3, f + c.n[OTA_MS_SUCCEEDED]);
			rc = exec(st, q, "rollout acknowledgement");
		}
	}
	if (rc == OTA_OK && to == OTA_RS_ABORTED)
		rc = cancel_pending(st, id, "rollout aborted", now);
	if (rc == OTA_OK) {
		char detail[OTA_REASON_MAX + 64];
		snprintf(detail, sizeof(detail), "%s -> %s (stage %d) %s", rs_names[row.state],
		         rs_names[to], new_stage >= 0 ? new_stage : (int)row.stage,
		         reason ? reason : "");
		char action[48];
		snprintf(action, sizeof(action), "rollout.%s",
		         to == OTA_RS_RUNNING && new_stage > 0    ? "stage.advance"
		         : to == OTA_RS_RUNNING && new_stage == 0 ? "start"
		         : to == OTA_RS_RUNNING                   ? "resume"
		         : to == OTA_RS_PAUSED                    ? (actor ? "pause" : "halt")
		         : to == OTA_RS_WAITING_APPROVAL          ? "stage.wait_approval"
		         : to == OTA_RS_COMPLETED                 ? "complete"
		                                                  : "abort");
		rc = audit_note(st, actor, actor ? role : "system", action, id, NULL, NULL, detail,
		                now);
	}
	if (rc == OTA_OK)
		rc = ota_store__commit(st);
out:
	if (rc != OTA_OK)
		ota_store__rollback(st);
	ota_store__unlock(st);
	return rc;
}

static enum ota_err random_deployment_id(char id[OTA_DEPLOYMENT_ID_MAX])
{
	uint8_t rnd[16];
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return OTA_ERR_IO;
	memcpy(id, "d-", 2);
	for (unsigned i = 0; i < sizeof(rnd); i++)
		snprintf(id + 2 + 2 * i, 3, "%02x", rnd[i]);
	return OTA_OK;
}

/* *busy = the device has an active deployment. */
static enum ota_err device_busy(struct ota_store *st, const char *dev, bool *busy)
{
	sqlite3_stmt *q = Q(st, Q_DEV_BUSY);
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, dev);
	int s = sqlite3_step(q);
	ota_store__done(q);
	if (s != SQLITE_ROW && s != SQLITE_DONE)
		return fail(st, "active deployment lookup");
	*busy = s == SQLITE_ROW;
	return OTA_OK;
}

static enum ota_err active_get(struct ota_store *st, const char *id, const char *scope, unsigned *n)
{
	sqlite3_stmt *q = Q(st, Q_ACTIVE_GET);
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, id);
	bind_text(q, 2, scope);
	int s = sqlite3_step(q);
	*n = s == SQLITE_ROW ? (unsigned)sqlite3_column_int64(q, 0) : 0;
	ota_store__done(q);
	return s == SQLITE_ROW || s == SQLITE_DONE ? OTA_OK : fail(st, "budget lookup");
}

static enum ota_err deployment_insert(struct ota_store *st, const char *id, const char *dev,
                                      const char *release, int64_t now)
{
	sqlite3_stmt *q = Q(st, Q_DEP_INSERT);
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, id);
	bind_text(q, 2, dev);
	bind_text(q, 3, release);
	sqlite3_bind_int64(q, 4, now);
	int s = sqlite3_step(q);
	int x = sqlite3_extended_errcode(ota_store__db(st));
	ota_store__done(q);
	if (s == SQLITE_DONE)
		return OTA_OK;
	if (x == SQLITE_CONSTRAINT_UNIQUE || x == SQLITE_CONSTRAINT_PRIMARYKEY)
		return OTA_ERR_CONFLICT;
	return fail(st, "deployment insert");
}

enum ota_err ota_store_rollout_join(struct ota_store *st, const struct ota_rollout_join *j,
                                    enum ota_join_result *res)
{
	enum ota_err rc;
	struct ota_rollout_row row;
	struct ota_rollout_member m;
	char scope[65] = "";
	bool member = false, busy = false;

	ota_store__lock(st);
	rc = ota_store__begin(st);
	if (rc != OTA_OK)
		goto out;
	rc = rollout_get(st, j->rollout_id, &row, NULL);
	if (rc != OTA_OK)
		goto out;
	if (row.state != OTA_RS_RUNNING || row.stage != j->stage) {
		*res = OTA_JOIN_STALE;
		goto done;
	}
	rc = member_get(st, j->rollout_id, j->device_id, &m, scope, sizeof(scope));
	if (rc == OTA_OK) {
		member = true;
		bool retryable = (m.state == OTA_MS_FAILED || m.state == OTA_MS_ROLLED_BACK) &&
		                 m.attempts < row.retry_attempts;
		if (!retryable) {
			*res = OTA_JOIN_MEMBER;
			goto done;
		}
		if (m.next_attempt_at > j->now) {
			*res = OTA_JOIN_RETRY_LATER;
			goto done;
		}
	} else if (rc != OTA_ERR_NOT_FOUND) {
		goto out;
	}
	rc = OTA_OK;
	if (!member) {
		snprintf(scope, sizeof(scope), "%s", j->scope ? j->scope : "");
	}
	/* A device mid-update is left alone, and nothing is recorded for it yet. */
	rc = device_busy(st, j->device_id, &busy);
	if (rc != OTA_OK)
		goto out;
	if (busy) {
		*res = OTA_JOIN_BUSY;
		goto done;
	}
	if (j->skip_reason && !member) {
		sqlite3_stmt *q = Q(st, Q_MEM_INSERT);
		if (!q) {
			rc = OTA_ERR_DB;
			goto out;
		}
		bind_text(q, 1, j->rollout_id);
		bind_text(q, 2, j->device_id);
		sqlite3_bind_int64(q, 3, j->stage);
		bind_text(q, 4, "skipped");
		bind_text(q, 5, j->skip_reason);
		sqlite3_bind_null(q, 6);
		sqlite3_bind_int64(q, 7, 0);
		bind_text(q, 8, "");
		sqlite3_bind_int64(q, 9, j->now);
		rc = exec(st, q, "rollout member insert");
		if (rc == OTA_OK)
			rc = counters_move(st, j->rollout_id, j->stage, -1, OTA_MS_SKIPPED, NULL,
			                   NULL);
		if (rc == OTA_OK)
			rc = audit_note(st, NULL, "system", "rollout.device.skip", j->rollout_id,
			                j->device_id, NULL, j->skip_reason, j->now);
		if (rc != OTA_OK)
			goto out;
		*res = OTA_JOIN_SKIPPED;
		goto done;
	}
	/* The budgets, read and taken inside this transaction: never exceeded. */
	if (j->max_active) {
		unsigned n;
		rc = active_get(st, j->rollout_id, "", &n);
		if (rc != OTA_OK)
			goto out;
		if (n >= j->max_active) {
			*res = OTA_JOIN_BUDGET;
			goto done;
		}
	}
	if (scope[0] && j->max_active_per_tag) {
		unsigned n;
		rc = active_get(st, j->rollout_id, scope, &n);
		if (rc != OTA_OK)
			goto out;
		if (n >= j->max_active_per_tag) {
			*res = OTA_JOIN_BUDGET;
			goto done;
		}
	}
	rc = deployment_insert(st, j->deployment_id, j->device_id, j->release_id, j->now);
	if (rc != OTA_OK)
		goto out;
	if (member) {
		rc = member_set(st, j->rollout_id, j->device_id, OTA_MS_PENDING, "", 0, j->now);
		if (rc == OTA_OK)
			rc = counters_move(st, j->rollout_id, m.stage, (int)m.state, OTA_MS_PENDING,
			                   scope, NULL);
		if (rc == OTA_OK) {
			sqlite3_stmt *q = Q(st, Q_MEM_RETRY);
			if (!q) {
				rc = OTA_ERR_DB;
				goto out;
			}
			bind_text(q, 1, j->rollout_id);
			bind_text(q, 2, j->device_id);
			bind_text(q, 3, j->deployment_id);
			rc = exec(st, q, "rollout member retry");
		}
	} else {
		sqlite3_stmt *q = Q(st, Q_MEM_INSERT);
		if (!q) {
			rc = OTA_ERR_DB;
			goto out;
		}
		bind_text(q, 1, j->rollout_id);
		bind_text(q, 2, j->device_id);
		sqlite3_bind_int64(q, 3, j->stage);
		bind_text(q, 4, "pending");
		bind_text(q, 5, "");
		bind_text(q, 6, j->deployment_id);
		sqlite3_bind_int64(q, 7, 1);
		bind_text(q, 8, scope);
		sqlite3_bind_int64(q, 9, j->now);
		rc = exec(st, q, "rollout member insert");
		if (rc == OTA_OK)
			rc = counters_move(st, j->rollout_id, j->stage, -1, OTA_MS_PENDING, scope,
			                   NULL);
	}
	if (rc == OTA_OK)
		rc = audit_note(st, NULL, "system",
		                member ? "deployment.retry" : "deployment.create", j->rollout_id,
		                j->device_id, j->deployment_id, j->release_id, j->now);
	if (rc != OTA_OK)
		goto out;
	*res = OTA_JOIN_OFFERED;
done:
	rc = ota_store__commit(st);
out:
	if (rc != OTA_OK)
		ota_store__rollback(st);
	ota_store__unlock(st);
	return rc;
}

/* The member state a reported event means, or -1 for none. */
static int event_state(const char *status, const char *end_status)
{
	if (end_status) {
		if (strcmp(end_status, "succeeded") == 0)
			return OTA_MS_SUCCEEDED;
		if (strcmp(end_status, "cancelled") == 0)
			return OTA_MS_SKIPPED; /* the device can no longer take it (variant, floor)
			                        */
		if (strcmp(end_status, "rolled_back") == 0)
			return OTA_MS_ROLLED_BACK;
		return OTA_MS_FAILED;
	}
	if (strcmp(status, "downloading") == 0)
		return OTA_MS_DOWNLOADING;
	if (strcmp(status, "downloaded") == 0 || strcmp(status, "installing") == 0 ||
	    strcmp(status, "rebooting") == 0)
		return OTA_MS_INSTALLING;
	if (strcmp(status, "trial") == 0 || strcmp(status, "confirmed") == 0)
		return OTA_MS_TRIAL;
	return -1;
}

enum ota_err ota_store__rollout_note_event(struct ota_store *st, const char *deployment_id,
                                           const char *status, const char *end_status,
                                           const char *end_reason, int64_t now)
{
	enum ota_err rc;
	char ro[OTA_RO_ID_MAX], dev[OTA_ID_MAX + 1], scope[65];
	struct ota_rollout_member m;
	struct ota_rollout_row row;
	int to = event_state(status, end_status);

	if (to < 0)
		return OTA_OK;
	sqlite3_stmt *q = Q(st, Q_MEM_BY_DEP);
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, deployment_id);
	int s = sqlite3_step(q);
	if (s == SQLITE_ROW) {
		col_text(q, 0, ro, sizeof(ro));
		col_text(q, 1, dev, sizeof(dev));
	}
	ota_store__done(q);
	if (s == SQLITE_DONE)
		return OTA_OK; /* not a rollout's deployment (or a replaced attempt) */
	if (s != SQLITE_ROW)
		return fail(st, "rollout member by deployment");
	rc = member_get(st, ro, dev, &m, scope, sizeof(scope));
	if (rc == OTA_OK)
		rc = rollout_get(st, ro, &row, NULL);
	if (rc != OTA_OK)
		return rc;
	/* States only move forward; a late or reordered report changes nothing. */
	if (is_final(m.state) || (enum ota_member_state)to <= m.state)
		return OTA_OK;
	int64_t next_at = 0;
	if (to == OTA_MS_FAILED || to == OTA_MS_ROLLED_BACK) {
		/* Retry after backoff doubling per failed attempt (capped at a week). */
		int64_t wait = row.retry_backoff;
		for (unsigned i = 1; i < m.attempts && wait < 7 * 86400; i++)
			wait *= 2;
		next_at = now + (wait > 7 * 86400 ? 7 * 86400 : wait);
	}
	rc = member_set(st, ro, dev, (enum ota_member_state)to, end_reason, next_at, now);
	if (rc == OTA_OK)
		rc = counters_move(st, ro, m.stage, (int)m.state, (enum ota_member_state)to, scope,
		                   end_reason);
	return rc;
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
	sqlite3_stmt *q = Q(st, Q_COUNTS_ALL);
	if (!q)
		goto out;
	bind_text(q, 1, id);
	while ((s = sqlite3_step(q)) == SQLITE_ROW) {
		int m = ota_member_state_parse((const char *)sqlite3_column_text(q, 1));
		if (m >= 0)
			fn(ctx, (unsigned)sqlite3_column_int64(q, 0), (enum ota_member_state)m,
			   (unsigned)sqlite3_column_int64(q, 2));
	}
	ota_store__done(q);
	rc = s == SQLITE_DONE ? OTA_OK : fail(st, "rollout counters");
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
	sqlite3_stmt *q = Q(st, Q_REASONS);
	if (!q)
		goto out;
	bind_text(q, 1, id);
	sqlite3_bind_int64(q, 2, limit);
	while ((s = sqlite3_step(q)) == SQLITE_ROW)
		fn(ctx, (const char *)sqlite3_column_text(q, 0),
		   (unsigned)sqlite3_column_int64(q, 1));
	ota_store__done(q);
	rc = s == SQLITE_DONE ? OTA_OK : fail(st, "rollout reasons");
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
	sqlite3_stmt *q = Q(st, state >= 0 ? Q_MEM_LIST_STATE : Q_MEM_LIST);
	if (!q)
		goto out;
	bind_text(q, 1, id);
	bind_text(q, 2, after ? after : "");
	/* One row past the page tells whether another page follows. */
	sqlite3_bind_int64(q, 3, (sqlite3_int64)limit + 1);
	if (state >= 0)
		bind_text(q, 4, ms_names[state]);
	while ((s = sqlite3_step(q)) == SQLITE_ROW) {
		struct ota_rollout_member m;
		if (n++ == limit) {
			*more = true;
			s = SQLITE_DONE;
			break;
		}
		memset(&m, 0, sizeof(m));
		col_text(q, 0, m.device_id, sizeof(m.device_id));
		m.stage = (unsigned)sqlite3_column_int64(q, 1);
		m.state = (enum ota_member_state)ota_member_state_parse(
		    (const char *)sqlite3_column_text(q, 2));
		col_text(q, 3, m.reason, sizeof(m.reason));
		col_text(q, 4, m.deployment_id, sizeof(m.deployment_id));
		m.attempts = (unsigned)sqlite3_column_int64(q, 5);
		m.next_attempt_at = sqlite3_column_int64(q, 6);
		m.updated_at = sqlite3_column_int64(q, 7);
		fn(ctx, &m);
	}
	ota_store__done(q);
	rc = s == SQLITE_DONE ? OTA_OK : fail(st, "rollout members");
out:
	ota_store__unlock(st);
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

enum ota_err ota_store_rollout_of_deployment(struct ota_store *st, const char *deployment_id,
                                             char rollout_id[OTA_RO_ID_MAX])
{
	enum ota_err rc = OTA_ERR_DB;
	ota_store__lock(st);
	sqlite3_stmt *q = Q(st, Q_MEM_BY_DEP);
	if (!q)
		goto out;
	bind_text(q, 1, deployment_id);
	int s = sqlite3_step(q);
	if (s == SQLITE_ROW) {
		col_text(q, 0, rollout_id, OTA_RO_ID_MAX);
		rc = OTA_OK;
	} else {
		rc = s == SQLITE_DONE ? OTA_ERR_NOT_FOUND : fail(st, "rollout by deployment");
	}
	ota_store__done(q);
out:
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_device_tags(struct ota_store *st, const char *device_id, char (*tags)[65],
                                   unsigned max, unsigned *n)
{
	enum ota_err rc = OTA_ERR_DB;
	int s;
	*n = 0;
	ota_store__lock(st);
	sqlite3_stmt *q = Q(st, Q_TAGS);
	if (!q)
		goto out;
	bind_text(q, 1, device_id);
	while ((s = sqlite3_step(q)) == SQLITE_ROW)
		if (*n < max)
			col_text(q, 0, tags[(*n)++], 65);
	ota_store__done(q);
	rc = s == SQLITE_DONE ? OTA_OK : fail(st, "device tags");
out:
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_device_tags_set(struct ota_store *st, const char *device_id,
                                       const char *const *tags, unsigned n)
{
	enum ota_err rc;
	ota_store__lock(st);
	rc = ota_store__begin(st);
	if (rc != OTA_OK)
		goto out;
	sqlite3_stmt *q = Q(st, Q_TAGS_DEL);
	if (!q) {
		rc = OTA_ERR_DB;
		goto out;
	}
	bind_text(q, 1, device_id);
	rc = exec(st, q, "device tags delete");
	for (unsigned i = 0; rc == OTA_OK && i < n; i++) {
		q = Q(st, Q_TAG_INSERT);
		if (!q) {
			rc = OTA_ERR_DB;
			goto out;
		}
		bind_text(q, 1, device_id);
		bind_text(q, 2, tags[i]);
		rc = exec(st, q, "device tag insert");
	}
	if (rc == OTA_OK)
		rc = ota_store__commit(st);
out:
	if (rc != OTA_OK)
		ota_store__rollback(st);
	ota_store__unlock(st);
	return rc;
}

enum ota_err
ota_store_rollout_rollback(struct ota_store *st, const char *id, const char *release_id,
                           uint32_t security_version, bool all, const char *reason,
                           const char *actor, const char *role, int64_t now, unsigned *ndeployed,
                           void (*refuse)(void *ctx, const char *device_id, const char *why),
                           void *ctx)
{
	enum ota_err rc;
	struct ota_rollout_row row;
	char(*devs)[OTA_ID_MAX + 1] = NULL;
	size_t n = 0, cap = 0;
	int s;

	*ndeployed = 0;
	ota_store__lock(st);
	rc = ota_store__begin(st);
	if (rc != OTA_OK)
		goto out;
	rc = rollout_get(st, id, &row, NULL);
	if (rc != OTA_OK)
		goto out;
	if (row.state == OTA_RS_DRAFT || row.state == OTA_RS_ABORTED) {
		rc = OTA_ERR_CONFLICT;
		goto out;
	}
	sqlite3_stmt *q = Q(st, Q_MEM_LIST);
	if (!q) {
		rc = OTA_ERR_DB;
		goto out;
	}
	bind_text(q, 1, id);
	bind_text(q, 2, "");
	sqlite3_bind_int64(q, 3, INT64_MAX);
	while ((s = sqlite3_step(q)) == SQLITE_ROW) {
		int m = ota_member_state_parse((const char *)sqlite3_column_text(q, 2));
		bool take =
		    m == OTA_MS_FAILED || m == OTA_MS_ROLLED_BACK || (all && m == OTA_MS_SUCCEEDED);
		if (!take &&
		    !(all && m >= 0 && is_active((enum ota_member_state)m) && m != OTA_MS_PENDING))
			continue;
		if (n == cap) {
			void *p = realloc(devs, (cap ? cap * 2 : 16) * sizeof(*devs));
			if (!p) {
				rc = OTA_ERR_NOMEM;
				ota_store__done(q);
				goto out;
			}
			devs = p;
			cap = cap ? cap * 2 : 16;
		}
		col_text(q, 0, devs[n++], sizeof(devs[0]));
	}
	ota_store__done(q);
	if (s != SQLITE_DONE) {
		rc = fail(st, "rollback members");
		goto out;
	}
	/* Pending members never started: cancelled with the rollout, nothing to roll back. */
	rc = cancel_pending(st, id, "rollout rolled back", now);
	for (size_t i = 0; rc == OTA_OK && i < n; i++) {
		char why[128], did[OTA_DEPLOYMENT_ID_MAX];
		bool busy = false;
		q = Q(st, Q_DEV_FLOOR);
		if (!q) {
			rc = OTA_ERR_DB;
			goto out;
		}
		bind_text(q, 1, devs[i]);
		s = sqlite3_step(q);
		uint32_t floor = s == SQLITE_ROW ? (uint32_t)sqlite3_column_int64(q, 0) : 0;
		ota_store__done(q);
		if (s != SQLITE_ROW) {
			rc = fail(st, "device floor");
			goto out;
		}
		if (floor > security_version) {
			snprintf(why, sizeof(why),
			         "security floor %u is above the release's security_version %u",
			         floor, security_version);
			refuse(ctx, devs[i], why);
			continue;
		}
		rc = device_busy(st, devs[i], &busy);
		if (rc != OTA_OK)
			goto out;
		if (busy) {
			refuse(ctx, devs[i], "mid-update: an active deployment is never preempted");
			continue;
		}
		rc = random_deployment_id(did);
		if (rc == OTA_OK)
			rc = deployment_insert(st, did, devs[i], release_id, now);
		if (rc == OTA_OK)
			rc = audit_note(st, actor, role, "deployment.create", id, devs[i], did,
			                release_id, now);
		if (rc == OTA_OK)
			(*ndeployed)++;
	}
	if (rc == OTA_OK)
		rc = set_state(st, id, OTA_RS_ABORTED, reason, -1, now);
	if (rc == OTA_OK)
		rc = audit_note(st, actor, role, "rollout.rollback", id, NULL, release_id, reason,
		                now);
	if (rc == OTA_OK)
		rc = ota_store__commit(st);
out:
	if (rc != OTA_OK) {
		ota_store__rollback(st);
		*ndeployed = 0;
	}
	ota_store__unlock(st);
	free(devs);
	return rc;
}
