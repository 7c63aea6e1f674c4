/*
 * store/webhook_store.c - the SQLite side of webhook_store.h: the webhooks table
 * (schema/0080). Every write is one statement, so it is atomic on its own and joins the
 * caller's transaction when its thread has one open; the cursor moves only from the value the
 * deliverer read (a compare-and-set), so a redelivery or a deletion made meanwhile wins.
 */
#include "store/webhook_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/internal.h"

#define COLS                                                                                       \
	"id, url, types, secret, created_at, created_by, cursor, state, attempts, next_at, "       \
	"last_error, delivered"

static const char SQL_ADD[] = "INSERT INTO webhooks (" COLS ") "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL, ?11)";
static const char SQL_GET[] = "SELECT " COLS " FROM webhooks WHERE id = ?1";
static const char SQL_LIST[] = "SELECT " COLS " FROM webhooks WHERE id > ?1 ORDER BY id LIMIT ?2";
static const char SQL_DELETE[] = "DELETE FROM webhooks WHERE id = ?1";
static const char SQL_ADVANCE[] =
    "UPDATE webhooks SET cursor = ?3, delivered = delivered + ?4, attempts = 0, next_at = 0, "
    "last_error = NULL WHERE id = ?1 AND cursor = ?2";
static const char SQL_FAILED[] = "UPDATE webhooks SET attempts = ?3, next_at = ?4, state = ?5, "
                                 "last_error = ?6 WHERE id = ?1 AND cursor = ?2";
static const char SQL_REDELIVER[] =
    "UPDATE webhooks SET state = 'active', attempts = 0, next_at = 0, last_error = NULL, "
    "cursor = CASE WHEN ?2 <> 0 THEN ?3 ELSE cursor END WHERE id = ?1";
static const char SQL_EXISTS[] = "SELECT 1 FROM webhooks WHERE id = ?1";

static void copy(struct ota_sql_stmt *q, int col, char *out, size_t cap)
{
	const char *t = ota_sql_column_text(q, col);
	snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static int64_t i64(uint64_t v)
{
	return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static void row_of(struct ota_sql_stmt *q, struct ota_store_webhook *w)
{
	char state[16];

	memset(w, 0, sizeof(*w));
	copy(q, 0, w->id, sizeof(w->id));
	copy(q, 1, w->url, sizeof(w->url));
	copy(q, 2, w->types, sizeof(w->types));
	copy(q, 3, w->secret, sizeof(w->secret));
	w->created_at = ota_sql_column_int64(q, 4);
	copy(q, 5, w->created_by, sizeof(w->created_by));
	w->cursor = (uint64_t)ota_sql_column_int64(q, 6);
	copy(q, 7, state, sizeof(state));
	w->dead = strcmp(state, "dead") == 0;
	w->attempts = (unsigned)ota_sql_column_int64(q, 8);
	w->next_at = ota_sql_column_int64(q, 9);
	copy(q, 10, w->last_error, sizeof(w->last_error));
	w->delivered = (uint64_t)ota_sql_column_int64(q, 11);
}

/* Runs a prepared write (the lock held); *changes gets the rows changed. */
static enum ota_err run(struct ota_store *st, struct ota_sql_stmt *q, const char *what,
                        int *changes)
{
	int s = ota_sql_step(q);
	enum ota_err rc = OTA_OK;

	if (s != OTA_SQL_DONE) {
		enum ota_sql_failure ext = ota_sql_failure(ota_store__db(st));
		if (ext == OTA_SQL_F_UNIQUE)
			rc = OTA_ERR_CONFLICT;
		else if (ext == OTA_SQL_F_CONSTRAINT || ext == OTA_SQL_F_FOREIGN_KEY)
			rc = OTA_ERR_INVALID;
		else
			rc = ota_store__fail(st, what);
	} else if (changes) {
		*changes = ota_sql_changes(ota_store__db(st));
	}
	ota_store__done(q);
	return rc;
}

/* Whether webhook id exists (the lock held): tells NOT_FOUND from CONFLICT. */
static enum ota_err exists(struct ota_store *st, const char *id)
{
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_EXISTS);
	int s;

	if (!q)
		return OTA_ERR_DB;
	ota_sql_bind_text(q, 1, id);
	s = ota_sql_step(q);
	ota_store__done(q);
	if (s == OTA_SQL_ROW)
		return OTA_OK;
	return s == OTA_SQL_DONE ? OTA_ERR_NOT_FOUND : ota_store__fail(st, "webhook lookup");
}

enum ota_err ota_store_webhook_add(struct ota_store *st, const struct ota_store_webhook *w)
{
	enum ota_err rc = OTA_ERR_DB;
	struct ota_sql_stmt *q;

	if (!w->id[0] || !w->url[0] || !w->types[0] || !w->secret[0] || !w->created_by[0])
		return OTA_ERR_INVALID;
	ota_store__lock(st);
	q = ota_store__stmt(st, SQL_ADD);
	if (q) {
		ota_sql_bind_text(q, 1, w->id);
		ota_sql_bind_text(q, 2, w->url);
		ota_sql_bind_text(q, 3, w->types);
		ota_sql_bind_text(q, 4, w->secret);
		ota_sql_bind_int64(q, 5, w->created_at);
		ota_sql_bind_text(q, 6, w->created_by);
		ota_sql_bind_int64(q, 7, i64(w->cursor));
		ota_sql_bind_text(q, 8, w->dead ? "dead" : "active");
		ota_sql_bind_int64(q, 9, w->attempts);
		ota_sql_bind_int64(q, 10, w->next_at);
		ota_sql_bind_int64(q, 11, i64(w->delivered));
		rc = run(st, q, "webhook add", NULL);
	}
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_webhook_get(struct ota_store *st, const char *id,
                                   struct ota_store_webhook *out)
{
	enum ota_err rc = OTA_ERR_DB;
	struct ota_sql_stmt *q;
	int s;

	ota_store__lock(st);
	q = ota_store__stmt(st, SQL_GET);
	if (q) {
		ota_sql_bind_text(q, 1, id);
		s = ota_sql_step(q);
		if (s == OTA_SQL_ROW) {
			row_of(q, out);
			rc = OTA_OK;
		} else {
			rc = s == OTA_SQL_DONE ? OTA_ERR_NOT_FOUND
			                       : ota_store__fail(st, "webhook get");
		}
		ota_store__done(q);
	}
	ota_store__unlock(st);
	return rc;
}

#define LIST_CHUNK 64

enum ota_err ota_store_webhook_list(struct ota_store *st, const char *after, unsigned limit,
                                    int (*fn)(void *ctx, const struct ota_store_webhook *w),
                                    void *ctx, bool *more)
{
	struct ota_store_webhook *rows;
	char from[OTA_WEBHOOK_ID_MAX];
	unsigned got = 0;
	enum ota_err rc = OTA_OK;

	if (more)
		*more = false;
	if (limit < 1)
		return OTA_ERR_INVALID;
	rows = calloc(LIST_CHUNK + 1, sizeof(*rows));
	if (!rows)
		return OTA_ERR_NOMEM;
	snprintf(from, sizeof(from), "%s", after ? after : "");
	/* Copy a chunk of rows out under the lock, then call fn without it. */
	while (rc == OTA_OK && got < limit) {
		unsigned want = limit - got < LIST_CHUNK ? limit - got : LIST_CHUNK, n = 0;
		struct ota_sql_stmt *q;
		int s = OTA_SQL_DONE;

		ota_store__lock(st);
		q = ota_store__stmt(st, SQL_LIST);
		if (!q) {
			rc = OTA_ERR_DB;
		} else {
			ota_sql_bind_text(q, 1, from);
			ota_sql_bind_int64(q, 2, want + 1);
			while ((s = ota_sql_step(q)) == OTA_SQL_ROW && n <= want)
				row_of(q, &rows[n++]);
			if (s != OTA_SQL_ROW && s != OTA_SQL_DONE)
				rc = ota_store__fail(st, "webhook list");
			ota_store__done(q);
		}
		ota_store__unlock(st);
		if (rc != OTA_OK)
			break;
		bool further = n > want, stop = false;
		if (further)
			n = want;
		for (unsigned i = 0; i < n && !stop; i++)
			stop = fn(ctx, &rows[i]) != 0;
		got += n;
		if (n)
			snprintf(from, sizeof(from), "%s", rows[n - 1].id);
		if (stop || !further)
			break;
		if (got >= limit && more)
			*more = true;
	}
	free(rows);
	return rc;
}

enum ota_err ota_store_webhook_delete(struct ota_store *st, const char *id)
{
	enum ota_err rc = OTA_ERR_DB;
	struct ota_sql_stmt *q;
	int n = 0;

	ota_store__lock(st);
	q = ota_store__stmt(st, SQL_DELETE);
	if (q) {
		ota_sql_bind_text(q, 1, id);
		rc = run(st, q, "webhook delete", &n);
		if (rc == OTA_OK && n == 0)
			rc = OTA_ERR_NOT_FOUND;
	}
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_webhook_advance(struct ota_store *st, const char *id, uint64_t from,
                                       uint64_t cursor, uint64_t delivered)
{
	enum ota_err rc = OTA_ERR_DB;
	struct ota_sql_stmt *q;
	int n = 0;

	ota_store__lock(st);
	q = ota_store__stmt(st, SQL_ADVANCE);
	if (q) {
		ota_sql_bind_text(q, 1, id);
		ota_sql_bind_int64(q, 2, i64(from));
		ota_sql_bind_int64(q, 3, i64(cursor));
		ota_sql_bind_int64(q, 4, i64(delivered));
		rc = run(st, q, "webhook advance", &n);
		if (rc == OTA_OK && n == 0)
			rc = exists(st, id) == OTA_OK ? OTA_ERR_CONFLICT : OTA_ERR_NOT_FOUND;
	}
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_webhook_failed(struct ota_store *st, const char *id, uint64_t at_cursor,
                                      unsigned attempts, int64_t next_at, bool dead,
                                      const char *error)
{
	enum ota_err rc = OTA_ERR_DB;
	struct ota_sql_stmt *q;
	int n = 0;

	ota_store__lock(st);
	q = ota_store__stmt(st, SQL_FAILED);
	if (q) {
		ota_sql_bind_text(q, 1, id);
		ota_sql_bind_int64(q, 2, i64(at_cursor));
		ota_sql_bind_int64(q, 3, attempts);
		ota_sql_bind_int64(q, 4, next_at);
		ota_sql_bind_text(q, 5, dead ? "dead" : "active");
		ota_sql_bind_text(q, 6, error ? error : "");
		rc = run(st, q, "webhook failure", &n);
		if (rc == OTA_OK && n == 0)
			rc = exists(st, id) == OTA_OK ? OTA_ERR_CONFLICT : OTA_ERR_NOT_FOUND;
	}
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_webhook_redeliver(struct ota_store *st, const char *id, bool set_cursor,
                                         uint64_t cursor)
{
	enum ota_err rc = OTA_ERR_DB;
	struct ota_sql_stmt *q;
	int n = 0;

	ota_store__lock(st);
	q = ota_store__stmt(st, SQL_REDELIVER);
	if (q) {
		ota_sql_bind_text(q, 1, id);
		ota_sql_bind_int64(q, 2, set_cursor ? 1 : 0);
		ota_sql_bind_int64(q, 3, i64(cursor));
		rc = run(st, q, "webhook redeliver", &n);
		if (rc == OTA_OK && n == 0)
			rc = OTA_ERR_NOT_FOUND;
	}
	ota_store__unlock(st);
	return rc;
}
