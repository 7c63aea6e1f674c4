/*
 * store/mgmt_store.c - the SQLite side of mgmt_store.h: principals, API tokens, the device
 * life cycle and listing, deployment history, and deleting unused releases and images. Runs on
 * store.c's connection and lock (store/internal.h); each writing call is one transaction unless
 * the caller holds one open.
 */
#include "store/mgmt_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/internal.h"

/* ---- small helpers ---- */

static void text(struct ota_sql_stmt *q, int col, char *out, size_t cap)
{
	const char *t = ota_sql_column_text(q, col);
	snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static void bind(struct ota_sql_stmt *q, int i, const char *s)
{
	if (s)
		ota_sql_bind_text(q, i, s);
	else
		ota_sql_bind_null(q, i);
}

/* A transaction of our own unless the caller's is open. */
static enum ota_err tx_open(struct ota_store *st, bool *own)
{
	*own = !ota_store__in_tx(st);
	return *own ? ota_store_tx_begin(st) : OTA_OK;
}

static enum ota_err tx_close(struct ota_store *st, bool own, enum ota_err rc)
{
	if (!own)
		return rc;
	enum ota_err e = ota_store_tx_end(st, rc == OTA_OK);
	return rc == OTA_OK ? e : rc;
}

/* Runs one statement that changes rows; *changes gets the count. */
static enum ota_err exec1(struct ota_store *st, const char *sql, const char *a, const char *b,
                          int64_t n, int *changes)
{
	struct ota_sql_stmt *q = ota_store__stmt(st, sql);
	int s;

	if (!q)
		return OTA_ERR_DB;
	bind(q, 1, a);
	bind(q, 2, b);
	ota_sql_bind_int64(q, 3, n);
	s = ota_sql_step(q);
	ota_sql_reset(q);
	if (s != OTA_SQL_DONE) {
		enum ota_sql_failure ext = ota_sql_failure(ota_store__db(st));
		if (ext == OTA_SQL_F_UNIQUE)
			return OTA_ERR_CONFLICT;
		if (ext == OTA_SQL_F_FOREIGN_KEY)
			return OTA_ERR_NOT_FOUND;
		if (ext == OTA_SQL_F_CONSTRAINT)
			return OTA_ERR_INVALID;
		return ota_store__fail(st, sql);
	}
	if (changes)
		*changes = ota_sql_changes(ota_store__db(st));
	return OTA_OK;
}

/* ---- principals ---- */

static const char SQL_P_ADD[] = "INSERT INTO principals (name, role, created_by, created_at) "
                                "VALUES (?1, ?2, ?4, ?3)";
static const char SQL_P_GET[] = "SELECT name, role, disabled, created_at, created_by "
                                "FROM principals WHERE name = ?1";
static const char SQL_P_LIST[] = "SELECT name, role, disabled, created_at, created_by "
                                 "FROM principals WHERE name > coalesce(?1, '') "
                                 "ORDER BY name LIMIT ?2";
static const char SQL_P_DISABLE[] = "UPDATE principals SET disabled = ?3 WHERE name = ?1";

enum ota_err ota_store_principal_add(struct ota_store *st, const char *name, const char *role,
                                     const char *by, int64_t now)
{
	enum ota_err rc = OTA_ERR_DB;
	bool own;
	struct ota_sql_stmt *q;

	ota_store__lock(st);
	if (tx_open(st, &own) != OTA_OK)
		goto unlock;
	q = ota_store__stmt(st, SQL_P_ADD);
	if (q) {
		bind(q, 1, name);
		bind(q, 2, role);
		ota_sql_bind_int64(q, 3, now);
		bind(q, 4, by);
		int s = ota_sql_step(q);
		enum ota_sql_failure ext = ota_sql_failure(ota_store__db(st));
		ota_sql_reset(q);
		if (s == OTA_SQL_DONE) {
			rc = OTA_OK;
			/* a row now decides the certificate's role */
			ota_store__access_changed(st);
		} else if (ext == OTA_SQL_F_UNIQUE)
			rc = OTA_ERR_CONFLICT;
		else if (ext == OTA_SQL_F_CONSTRAINT)
			rc = OTA_ERR_INVALID;
		else
			rc = ota_store__fail(st, "principal insert");
	}
	rc = tx_close(st, own, rc);
unlock:
	ota_store__unlock(st);
	return rc;
}

static void principal_row(struct ota_sql_stmt *q, struct ota_principal *p)
{
	memset(p, 0, sizeof(*p));
	text(q, 0, p->name, sizeof(p->name));
	text(q, 1, p->role, sizeof(p->role));
	p->disabled = ota_sql_column_int64(q, 2) != 0;
	p->created_at = ota_sql_column_int64(q, 3);
	text(q, 4, p->created_by, sizeof(p->created_by));
}

enum ota_err ota_store_principal_get(struct ota_store *st, const char *name,
                                     struct ota_principal *out)
{
	enum ota_err rc = OTA_ERR_DB;
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_P_GET);
	if (q) {
		bind(q, 1, name);
		int s = ota_sql_step(q);
		if (s == OTA_SQL_ROW) {
			principal_row(q, out);
			rc = OTA_OK;
		} else {
			rc = s == OTA_SQL_DONE ? OTA_ERR_NOT_FOUND
			                       : ota_store__fail(st, "principal lookup");
		}
		ota_sql_reset(q);
	}
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_principal_set_disabled(struct ota_store *st, const char *name, bool disabled)
{
	enum ota_err rc;
	bool own;
	int n = 0;

	ota_store__lock(st);
	rc = tx_open(st, &own);
	if (rc == OTA_OK) {
		rc = exec1(st, SQL_P_DISABLE, name, NULL, disabled ? 1 : 0, &n);
		if (rc == OTA_OK && n == 0)
			rc = OTA_ERR_NOT_FOUND;
		if (rc == OTA_OK)
			ota_store__access_changed(st);
		rc = tx_close(st, own, rc);
	}
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_principal_list(struct ota_store *st, const char *after, unsigned limit,
                                      void (*fn)(void *ctx, const struct ota_principal *p),
                                      void *ctx, bool *more)
{
	enum ota_err rc = OTA_ERR_DB;
	unsigned n = 0;
	int s;

	*more = false;
	if (limit < 1 || limit > 1000)
		return OTA_ERR_INVALID;
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_P_LIST);
	if (q) {
		bind(q, 1, after);
		ota_sql_bind_int64(q, 2, (int64_t)limit + 1);
		while ((s = ota_sql_step(q)) == OTA_SQL_ROW) {
			struct ota_principal p;
			if (n++ == limit) {
				*more = true;
				s = OTA_SQL_DONE;
				break;
			}
			principal_row(q, &p);
			fn(ctx, &p);
		}
		rc = s == OTA_SQL_DONE ? OTA_OK : ota_store__fail(st, "principal list");
		ota_sql_reset(q);
	}
	ota_store__unlock(st);
	return rc;
}

/* ---- tokens ---- */

static const char SQL_T_ADD[] =
    "INSERT INTO api_tokens (id, principal, hash, created_at, expires_at, created_by) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
#define TOKEN_COLS                                                                                 \
	"SELECT t.id, t.principal, p.role, p.disabled, t.created_at, t.expires_at, "               \
	"coalesce(t.revoked_at, 0), t.created_by FROM api_tokens t "                               \
	"JOIN principals p ON p.name = t.principal "
static const char SQL_T_BY_HASH[] = TOKEN_COLS "WHERE t.hash = ?1";
static const char SQL_T_GET[] = TOKEN_COLS "WHERE t.id = ?1";
static const char SQL_T_LIST[] =
    TOKEN_COLS "WHERE CAST(?2 AS TEXT) IS NULL OR (t.created_at, t.id) > (?1, ?2) "
               "ORDER BY t.created_at, t.id LIMIT ?3";
static const char SQL_T_REVOKE[] =
    "UPDATE api_tokens SET revoked_at = ?3 WHERE id = ?1 AND revoked_at IS NULL";

enum ota_err ota_store_token_add(struct ota_store *st, const char *id, const char *principal,
                                 const char *hash, int64_t expires_at, const char *by, int64_t now)
{
	enum ota_err rc = OTA_ERR_DB;
	bool own;

	ota_store__lock(st);
	if (tx_open(st, &own) != OTA_OK)
		goto unlock;
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_T_ADD);
	if (q) {
		bind(q, 1, id);
		bind(q, 2, principal);
		bind(q, 3, hash);
		ota_sql_bind_int64(q, 4, now);
		ota_sql_bind_int64(q, 5, expires_at);
		bind(q, 6, by);
		int s = ota_sql_step(q);
		enum ota_sql_failure ext = ota_sql_failure(ota_store__db(st));
		ota_sql_reset(q);
		if (s == OTA_SQL_DONE)
			rc = OTA_OK;
		else if (ext == OTA_SQL_F_FOREIGN_KEY)
			rc = OTA_ERR_NOT_FOUND;
		else if (ext == OTA_SQL_F_UNIQUE)
			rc = OTA_ERR_CONFLICT;
		else
			rc = ota_store__fail(st, "token insert");
	}
	rc = tx_close(st, own, rc);
unlock:
	ota_store__unlock(st);
	return rc;
}

static void token_row(struct ota_sql_stmt *q, struct ota_token *t)
{
	memset(t, 0, sizeof(*t));
	text(q, 0, t->id, sizeof(t->id));
	text(q, 1, t->principal, sizeof(t->principal));
	text(q, 2, t->role, sizeof(t->role));
	t->principal_disabled = ota_sql_column_int64(q, 3) != 0;
	t->created_at = ota_sql_column_int64(q, 4);
	t->expires_at = ota_sql_column_int64(q, 5);
	t->revoked_at = ota_sql_column_int64(q, 6);
	text(q, 7, t->created_by, sizeof(t->created_by));
}

static enum ota_err token_one(struct ota_store *st, const char *sql, const char *key,
                              struct ota_token *out)
{
	enum ota_err rc = OTA_ERR_DB;
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, sql);
	if (q) {
		bind(q, 1, key);
		int s = ota_sql_step(q);
		if (s == OTA_SQL_ROW) {
			token_row(q, out);
			rc = OTA_OK;
		} else {
			rc = s == OTA_SQL_DONE ? OTA_ERR_NOT_FOUND
			                       : ota_store__fail(st, "token lookup");
		}
		ota_sql_reset(q);
	}
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_token_by_hash(struct ota_store *st, const char *hash, struct ota_token *out)
{
	return token_one(st, SQL_T_BY_HASH, hash, out);
}

enum ota_err ota_store_token_get(struct ota_store *st, const char *id, struct ota_token *out)
{
	return token_one(st, SQL_T_GET, id, out);
}

enum ota_err ota_store_token_revoke(struct ota_store *st, const char *id, int64_t now)
{
	enum ota_err rc;
	bool own;
	int n = 0;
	struct ota_token t;

	ota_store__lock(st);
	rc = tx_open(st, &own);
	if (rc == OTA_OK) {
		rc = exec1(st, SQL_T_REVOKE, id, NULL, now, &n);
		if (rc == OTA_OK && n == 0)
			rc = token_one(st, SQL_T_GET, id, &t) == OTA_OK ? OTA_ERR_CONFLICT
			                                                : OTA_ERR_NOT_FOUND;
		if (rc == OTA_OK)
			ota_store__access_changed(st);
		rc = tx_close(st, own, rc);
	}
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_token_list(struct ota_store *st, const struct ota_store_key *after,
                                  unsigned limit, void (*fn)(void *ctx, const struct ota_token *t),
                                  void *ctx, bool *more)
{
	enum ota_err rc = OTA_ERR_DB;
	unsigned n = 0;
	int s;

	*more = false;
	if (limit < 1 || limit > 1000)
		return OTA_ERR_INVALID;
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_T_LIST);
	if (q) {
		if (after) {
			ota_sql_bind_int64(q, 1, after->at);
			bind(q, 2, after->id);
		}
		ota_sql_bind_int64(q, 3, (int64_t)limit + 1);
		while ((s = ota_sql_step(q)) == OTA_SQL_ROW) {
			struct ota_token t;
			if (n++ == limit) {
				*more = true;
				s = OTA_SQL_DONE;
				break;
			}
			token_row(q, &t);
			fn(ctx, &t);
		}
		rc = s == OTA_SQL_DONE ? OTA_OK : ota_store__fail(st, "token list");
		ota_sql_reset(q);
	}
	ota_store__unlock(st);
	return rc;
}

/* ---- devices ---- */

/* The device's tags, sorted and joined with commas: the aggregate is each dialect's own. */
#define DEVICE_TAGS_SQLITE                                                                         \
	"(SELECT group_concat(tag, ',') FROM (SELECT tag FROM device_tags t "                      \
	"WHERE t.device_id = d.id ORDER BY tag))"
#define DEVICE_TAGS_PG                                                                             \
	"(SELECT string_agg(tag, ',' ORDER BY tag) FROM device_tags t WHERE t.device_id = d.id)"
#define DEVICE_COLS(TAGS)                                                                          \
	"SELECT d.id, d.fingerprint, d.status, d.hw_variant, d.version, d.security_floor, "        \
	"d.root_version, coalesce(d.last_seen, 0), d.admission, d.admitted_at, " TAGS              \
	" FROM devices d "
#define D_LIST_WHERE                                                                               \
	"WHERE d.id > coalesce(?1, '') AND (CAST(?2 AS TEXT) IS NULL OR d.hw_variant = ?2) "       \
	"AND (CAST(?3 AS TEXT) IS NULL OR d.version = ?3) "                                        \
	"AND (CAST(?4 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM device_tags t "                    \
	"WHERE t.device_id = d.id AND t.tag = ?4)) "                                               \
	"AND (CAST(?5 AS TEXT) IS NULL OR d.admission = ?5) AND (CAST(?6 AS TEXT) IS NULL OR "     \
	"d.status = ?6) "                                                                          \
	"AND (?7 = 0 OR coalesce(d.last_seen, 0) < ?7) "                                           \
	"AND (?8 = 0 OR coalesce(d.last_seen, 0) >= ?8) "                                          \
	"AND (CAST(?9 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM rollout_members m "                \
	"WHERE m.rollout_id = ?9 AND m.device_id = d.id)) "                                        \
	"ORDER BY d.id LIMIT ?10"

static const char *const SQL_D_INFO[] = {DEVICE_COLS(DEVICE_TAGS_SQLITE) "WHERE d.id = ?1",
                                         DEVICE_COLS(DEVICE_TAGS_PG) "WHERE d.id = ?1"};
static const char *const SQL_D_LIST[] = {DEVICE_COLS(DEVICE_TAGS_SQLITE) D_LIST_WHERE,
                                         DEVICE_COLS(DEVICE_TAGS_PG) D_LIST_WHERE};
static const char SQL_D_REGISTER[] =
    "INSERT INTO devices (id, fingerprint, admission, admitted_at) VALUES (?1, ?2, "
    "?4, ?3)";
static const char SQL_D_PIN[] =
    "UPDATE devices SET fingerprint = ?2 WHERE id = ?1 AND fingerprint = ''";
static const char SQL_D_ADMISSION[] = "UPDATE devices SET admission = ?2 WHERE id = ?1";
static const char SQL_D_STATUS[] = "UPDATE devices SET status = ?2 WHERE id = ?1";
static const char SQL_D_FPR_TAKEN[] =
    "SELECT count(*) FROM devices WHERE fingerprint = ?2 AND fingerprint <> '' AND id <> ?1";
static const char SQL_D_FPR[] =
    "UPDATE devices SET fingerprint = ?2, status = 'admitted' WHERE id = ?1";
static const char SQL_D_TAGS_CLEAR[] = "DELETE FROM device_tags WHERE device_id = ?1";
static const char SQL_D_TAG_ADD[] =
    "INSERT INTO device_tags (device_id, tag) VALUES (?1, ?2) ON CONFLICT DO NOTHING";
static const char SQL_D_EXISTS[] = "SELECT 1 FROM devices WHERE id = ?1";
static const char SQL_D_DEPS[] =
    "SELECT id, device_id, release_id, status, reason, created_at, updated_at, "
    "coalesce(finished_at, 0) FROM deployments WHERE device_id = ?1 "
    "ORDER BY created_at DESC, rowid DESC LIMIT ?2";

static void device_row(struct ota_sql_stmt *q, struct ota_device_info *o)
{
	memset(o, 0, sizeof(*o));
	text(q, 0, o->d.id, sizeof(o->d.id));
	text(q, 1, o->d.fingerprint, sizeof(o->d.fingerprint));
	text(q, 2, o->d.status, sizeof(o->d.status));
	o->d.known_state = !ota_sql_column_is_null(q, 3);
	text(q, 3, o->d.hw_variant, sizeof(o->d.hw_variant));
	text(q, 4, o->d.version, sizeof(o->d.version));
	o->d.security_floor = (uint32_t)ota_sql_column_int64(q, 5);
	o->d.root_version = (uint32_t)ota_sql_column_int64(q, 6);
	o->d.last_seen = ota_sql_column_int64(q, 7);
	text(q, 8, o->admission, sizeof(o->admission));
	o->admitted_at = ota_sql_column_int64(q, 9);
	text(q, 10, o->tags, sizeof(o->tags));
}

enum ota_err ota_store_device_info(struct ota_store *st, const char *id,
                                   struct ota_device_info *out)
{
	enum ota_err rc = OTA_ERR_DB;
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, OTA_SQL_PICK(st, SQL_D_INFO));
	if (q) {
		bind(q, 1, id);
		int s = ota_sql_step(q);
		if (s == OTA_SQL_ROW) {
			device_row(q, out);
			out->d.last_seen = ota_store__seen_latest(st, out->d.id, out->d.last_seen);
			rc = OTA_OK;
		} else {
			rc = s == OTA_SQL_DONE ? OTA_ERR_NOT_FOUND
			                       : ota_store__fail(st, "device lookup");
		}
		ota_sql_reset(q);
	}
	ota_store__unlock(st);
	return rc;
}

/* A one-statement write in its own transaction or the caller's; 0 rows is NOT_FOUND. */
static enum ota_err write_one(struct ota_store *st, const char *sql, const char *a, const char *b,
                              int64_t n, bool zero_is_not_found, bool access)
{
	enum ota_err rc;
	bool own;
	int changes = 0;

	ota_store__lock(st);
	rc = tx_open(st, &own);
	if (rc == OTA_OK) {
		rc = exec1(st, sql, a, b, n, &changes);
		if (rc == OTA_OK && changes == 0 && zero_is_not_found)
			rc = OTA_ERR_NOT_FOUND;
		if (rc == OTA_OK && access)
			ota_store__access_changed(st);
		rc = tx_close(st, own, rc);
	}
	ota_store__unlock(st);
	return rc;
}

static enum ota_err write1(struct ota_store *st, const char *sql, const char *a, const char *b,
                           int64_t n, bool zero_is_not_found)
{
	return write_one(st, sql, a, b, n, zero_is_not_found, false);
}

/* OTA_ERR_CONFLICT when fingerprint is pinned to a device other than id (one device per
 * certificate); the caller holds the lock and a transaction. */
static enum ota_err fingerprint_free(struct ota_store *st, const char *id, const char *fingerprint)
{
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_D_FPR_TAKEN);

	if (!fingerprint || !fingerprint[0])
		return OTA_OK;
	if (!q)
		return OTA_ERR_DB;
	bind(q, 1, id);
	bind(q, 2, fingerprint);
	int s = ota_sql_step(q);
	int64_t n = s == OTA_SQL_ROW ? ota_sql_column_int64(q, 0) : 0;
	ota_sql_reset(q);
	if (s != OTA_SQL_ROW)
		return ota_store__fail(st, "device fingerprint lookup");
	return n > 0 ? OTA_ERR_CONFLICT : OTA_OK;
}

enum ota_err ota_store_device_register(struct ota_store *st, const char *id,
                                       const char *fingerprint, const char *admission, int64_t now)
{
	enum ota_err rc = OTA_ERR_DB;
	bool own;

	ota_store__lock(st);
	if (tx_open(st, &own) != OTA_OK)
		goto unlock;
	rc = fingerprint_free(st, id, fingerprint);
	if (rc != OTA_OK) {
		rc = tx_close(st, own, rc == OTA_ERR_CONFLICT ? OTA_ERR_FORBIDDEN : rc);
		goto unlock;
	}
	rc = OTA_ERR_DB;
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_D_REGISTER);
	if (q) {
		bind(q, 1, id);
		bind(q, 2, fingerprint ? fingerprint : "");
		ota_sql_bind_int64(q, 3, now);
		bind(q, 4, admission);
		int s = ota_sql_step(q);
		enum ota_sql_failure ext = ota_sql_failure(ota_store__db(st));
		ota_sql_reset(q);
		if (s == OTA_SQL_DONE)
			rc = OTA_OK;
		else if (ext == OTA_SQL_F_UNIQUE)
			rc = OTA_ERR_CONFLICT;
		else if (ext == OTA_SQL_F_CONSTRAINT)
			rc = OTA_ERR_INVALID;
		else
			rc = ota_store__fail(st, "device register");
	}
	rc = tx_close(st, own, rc);
unlock:
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_device_pin(struct ota_store *st, const char *id, const char *fingerprint)
{
	enum ota_err rc = write1(st, SQL_D_PIN, id, fingerprint, 0, true);
	return rc == OTA_ERR_NOT_FOUND ? OTA_ERR_CONFLICT : rc;
}

enum ota_err ota_store_device_set_admission(struct ota_store *st, const char *id,
                                            const char *admission)
{
	return write_one(st, SQL_D_ADMISSION, id, admission, 0, true, true);
}

enum ota_err ota_store_device_set_status(struct ota_store *st, const char *id, const char *status)
{
	enum ota_err rc;
	bool own;
	int n = 0;

	ota_store__lock(st);
	rc = tx_open(st, &own);
	if (rc == OTA_OK) {
		rc = exec1(st, SQL_D_STATUS, id, status, 0, &n);
		if (rc == OTA_OK && n == 0)
			rc = OTA_ERR_NOT_FOUND;
		if (rc == OTA_OK)
			ota_store__access_changed(st);
		rc = tx_close(st, own, rc);
	}
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_device_set_fingerprint(struct ota_store *st, const char *id,
                                              const char *fingerprint)
{
	enum ota_err rc;
	bool own;
	int changes = 0;

	ota_store__lock(st);
	rc = tx_open(st, &own);
	if (rc == OTA_OK) {
		rc = fingerprint_free(st, id, fingerprint);
		if (rc == OTA_OK)
			rc = exec1(st, SQL_D_FPR, id, fingerprint, 0, &changes);
		if (rc == OTA_OK && changes == 0)
			rc = OTA_ERR_NOT_FOUND;
		if (rc == OTA_OK)
			ota_store__access_changed(st);
		rc = tx_close(st, own, rc);
	}
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_device_set_tags(struct ota_store *st, const char *id,
                                       const char *const *tags, unsigned n)
{
	enum ota_err rc;
	bool own;

	ota_store__lock(st);
	rc = tx_open(st, &own);
	if (rc != OTA_OK)
		goto unlock;
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_D_EXISTS);
	if (!q) {
		rc = OTA_ERR_DB;
	} else {
		bind(q, 1, id);
		int s = ota_sql_step(q);
		ota_sql_reset(q);
		rc = s == OTA_SQL_ROW ? OTA_OK : s == OTA_SQL_DONE ? OTA_ERR_NOT_FOUND : OTA_ERR_DB;
	}
	if (rc == OTA_OK)
		rc = exec1(st, SQL_D_TAGS_CLEAR, id, NULL, 0, NULL);
	for (unsigned i = 0; rc == OTA_OK && i < n; i++)
		rc = exec1(st, SQL_D_TAG_ADD, id, tags[i], 0, NULL);
	/* Tags decide what the running rollouts cover: their check-in memory is read again. */
	if (rc == OTA_OK)
		ota_store__rollouts_changed(st);
	rc = tx_close(st, own, rc);
unlock:
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_device_list(struct ota_store *st, const struct ota_device_filter *f,
                                   void (*fn)(void *ctx, const struct ota_device_info *d),
                                   void *ctx, bool *more)
{
	enum ota_err rc = OTA_ERR_DB;
	unsigned n = 0;
	int s;

	*more = false;
	if (f->limit < 1 || f->limit > 1000)
		return OTA_ERR_INVALID;
	/* Filters on the check-in time read the rows: the times kept in memory first. */
	if ((f->seen_before || f->seen_after) && ota_store_seen_flush(st) != OTA_OK)
		return OTA_ERR_DB;
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, OTA_SQL_PICK(st, SQL_D_LIST));
	if (!q)
		goto out;
	bind(q, 1, f->after_id);
	bind(q, 2, f->hw_variant);
	bind(q, 3, f->version);
	bind(q, 4, f->tag);
	bind(q, 5, f->admission);
	bind(q, 6, f->status);
	ota_sql_bind_int64(q, 7, f->seen_before);
	ota_sql_bind_int64(q, 8, f->seen_after);
	bind(q, 9, f->rollout_id);
	ota_sql_bind_int64(q, 10, (int64_t)f->limit + 1);
	while ((s = ota_sql_step(q)) == OTA_SQL_ROW) {
		struct ota_device_info d;
		if (n == f->limit) {
			*more = true;
			s = OTA_SQL_DONE;
			break;
		}
		device_row(q, &d);
		d.d.last_seen = ota_store__seen_latest(st, d.d.id, d.d.last_seen);
		n++;
		fn(ctx, &d);
	}
	rc = s == OTA_SQL_DONE ? OTA_OK : ota_store__fail(st, "device list");
	ota_sql_reset(q);
out:
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_device_deployments(struct ota_store *st, const char *id, unsigned limit,
                                          void (*fn)(void *ctx, const struct ota_deployment *d),
                                          void *ctx)
{
	enum ota_err rc = OTA_ERR_DB;
	int s;
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_D_DEPS);
	if (q) {
		bind(q, 1, id);
		ota_sql_bind_int64(q, 2, limit);
		while ((s = ota_sql_step(q)) == OTA_SQL_ROW) {
			struct ota_deployment d;
			memset(&d, 0, sizeof(d));
			text(q, 0, d.id, sizeof(d.id));
			text(q, 1, d.device_id, sizeof(d.device_id));
			text(q, 2, d.release_id, sizeof(d.release_id));
			text(q, 3, d.status, sizeof(d.status));
			text(q, 4, d.reason, sizeof(d.reason));
			d.created_at = ota_sql_column_int64(q, 5);
			d.updated_at = ota_sql_column_int64(q, 6);
			d.finished_at = ota_sql_column_int64(q, 7);
			fn(ctx, &d);
		}
		rc = s == OTA_SQL_DONE ? OTA_OK : ota_store__fail(st, "deployment history");
		ota_sql_reset(q);
	}
	ota_store__unlock(st);
	return rc;
}

/* ---- releases and images ---- */

static const char SQL_R_EXISTS[] = "SELECT 1 FROM releases WHERE id = ?1";
static const char SQL_R_IN_DEPLOYMENTS[] = "SELECT 1 FROM deployments WHERE release_id = ?1";
static const char SQL_R_IN_ROLLOUTS[] = "SELECT 1 FROM rollouts WHERE release_id = ?1";
static const char SQL_R_DEL_HW[] = "DELETE FROM release_hw_variants WHERE release_id = ?1";
static const char SQL_R_DEL[] = "DELETE FROM releases WHERE id = ?1";
static const char SQL_I_IN_RELEASES[] = "SELECT 1 FROM releases WHERE image_sha256 = ?1 "
                                        "UNION ALL SELECT 1 FROM deltas WHERE image_sha256 = ?1";
static const char SQL_I_DEL[] = "DELETE FROM images WHERE sha256 = ?1";
static const char SQL_I_LIST[] =
    "SELECT sha256, size, created_at, (SELECT count(*) FROM releases r "
    "WHERE r.image_sha256 = i.sha256) FROM images i WHERE sha256 > coalesce(?1, '') "
    "ORDER BY sha256 LIMIT ?2";

/* *found = a row exists for the query with ?1 = key. */
static enum ota_err exists(struct ota_store *st, const char *sql, const char *key, bool *found)
{
	struct ota_sql_stmt *q = ota_store__stmt(st, sql);
	int s;

	if (!q)
		return OTA_ERR_DB;
	bind(q, 1, key);
	s = ota_sql_step(q);
	ota_sql_reset(q);
	if (s != OTA_SQL_ROW && s != OTA_SQL_DONE)
		return ota_store__fail(st, sql);
	*found = s == OTA_SQL_ROW;
	return OTA_OK;
}

enum ota_err ota_store_release_delete(struct ota_store *st, const char *id, const char **why)
{
	enum ota_err rc;
	bool own, found = false;

	*why = NULL;
	ota_store__lock(st);
	rc = tx_open(st, &own);
	if (rc != OTA_OK)
		goto unlock;
	rc = exists(st, SQL_R_EXISTS, id, &found);
	if (rc == OTA_OK && !found)
		rc = OTA_ERR_NOT_FOUND;
	if (rc == OTA_OK) {
		rc = exists(st, SQL_R_IN_ROLLOUTS, id, &found);
		if (rc == OTA_OK && found) {
			*why = "a rollout references it";
			rc = OTA_ERR_CONFLICT;
		}
	}
	if (rc == OTA_OK) {
		rc = exists(st, SQL_R_IN_DEPLOYMENTS, id, &found);
		if (rc == OTA_OK && found) {
			*why = "deployments reference it";
			rc = OTA_ERR_CONFLICT;
		}
	}
	if (rc == OTA_OK)
		rc = exec1(st, SQL_R_DEL_HW, id, NULL, 0, NULL);
	if (rc == OTA_OK)
		rc = exec1(st, SQL_R_DEL, id, NULL, 0, NULL);
	rc = tx_close(st, own, rc);
unlock:
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_image_delete(struct ota_store *st, const char *sha256)
{
	enum ota_err rc;
	bool own, found = false;
	int n = 0;

	ota_store__lock(st);
	rc = tx_open(st, &own);
	if (rc != OTA_OK)
		goto unlock;
	rc = exists(st, SQL_I_IN_RELEASES, sha256, &found);
	if (rc == OTA_OK && found)
		rc = OTA_ERR_CONFLICT;
	if (rc == OTA_OK)
		rc = exec1(st, SQL_I_DEL, sha256, NULL, 0, &n);
	if (rc == OTA_OK && n == 0)
		rc = OTA_ERR_NOT_FOUND;
	rc = tx_close(st, own, rc);
unlock:
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_image_list(struct ota_store *st, const char *after, unsigned limit,
                                  void (*fn)(void *ctx, const char *sha256, uint64_t size,
                                             int64_t created_at, unsigned releases),
                                  void *ctx, bool *more)
{
	enum ota_err rc = OTA_ERR_DB;
	unsigned n = 0;
	int s;

	*more = false;
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_I_LIST);
	if (q) {
		bind(q, 1, after);
		ota_sql_bind_int64(q, 2, (int64_t)limit + 1);
		while ((s = ota_sql_step(q)) == OTA_SQL_ROW) {
			if (n == limit) {
				*more = true;
				s = OTA_SQL_DONE;
				break;
			}
			n++;
			fn(ctx, ota_sql_column_text(q, 0), (uint64_t)ota_sql_column_int64(q, 1),
			   ota_sql_column_int64(q, 2), (unsigned)ota_sql_column_int64(q, 3));
		}
		rc = s == OTA_SQL_DONE ? OTA_OK : ota_store__fail(st, "image list");
		ota_sql_reset(q);
	}
	ota_store__unlock(st);
	return rc;
}
