/*
 * store/delta_store.c - the SQLite side of delta_store.h: deltas and their envelopes, the
 * delta each deployment was last offered, and the failures devices reported. Runs on store.c's
 * connection and lock (store/internal.h); each writing call is one transaction unless the
 * caller holds one open (a management transaction or a report's group commit).
 */
#include "store/delta_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/internal.h"

#define COLS                                                                                       \
	"d.id, d.release_id, d.base_sha256, d.base_size, d.image_sha256, d.size, d.head_sha256, "  \
	"d.created_at"

static const char SQL_D_ADD[] =
    "INSERT INTO deltas (id, release_id, base_sha256, base_size, image_sha256, size, "
    "head_sha256, envelope, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
static const char SQL_D_HAS[] = "SELECT release_id FROM deltas WHERE id = ?1";
static const char SQL_D_GET[] =
    "SELECT " COLS ", d.envelope, "
    "(SELECT coalesce(sum(count), 0) FROM delta_failures f WHERE f.delta_id = d.id "
    "AND f.kind = 'failed'), "
    "(SELECT coalesce(sum(count), 0) FROM delta_failures f WHERE f.delta_id = d.id "
    "AND f.kind = 'refused'), "
    "(SELECT count(DISTINCT device_id) FROM delta_failures f WHERE f.delta_id = d.id) "
    "FROM deltas d WHERE d.release_id = ?1 AND d.id = ?2";
static const char SQL_D_LIST[] =
    "SELECT " COLS ", NULL, "
    "(SELECT coalesce(sum(count), 0) FROM delta_failures f WHERE f.delta_id = d.id "
    "AND f.kind = 'failed'), "
    "(SELECT coalesce(sum(count), 0) FROM delta_failures f WHERE f.delta_id = d.id "
    "AND f.kind = 'refused'), "
    "(SELECT count(DISTINCT device_id) FROM delta_failures f WHERE f.delta_id = d.id) "
    "FROM deltas d WHERE d.release_id = ?1 AND d.id > coalesce(?2, '') ORDER BY d.id LIMIT ?3";
static const char SQL_D_DEL[] = "DELETE FROM deltas WHERE release_id = ?1 AND id = ?2";
static const char SQL_D_FOR_BASE[] =
    "SELECT " COLS ", d.envelope, "
    "EXISTS (SELECT 1 FROM delta_failures f WHERE f.delta_id = d.id AND f.device_id = ?3) "
    "FROM deltas d WHERE d.release_id = ?1 AND d.base_sha256 = ?2";
static const char SQL_O_GET[] = "SELECT delta_id FROM delta_offers WHERE deployment_id = ?1";
static const char SQL_O_SET[] =
    "INSERT INTO delta_offers (deployment_id, delta_id, offered_at) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (deployment_id) DO UPDATE SET delta_id = excluded.delta_id, "
    "offered_at = excluded.offered_at";
static const char SQL_O_DEL[] = "DELETE FROM delta_offers WHERE deployment_id = ?1";
static const char SQL_F_ADD[] =
    "INSERT INTO delta_failures (delta_id, device_id, kind, count, deployment_id, reason, at) "
    "VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6) ON CONFLICT (delta_id, device_id, kind) DO UPDATE SET "
    "count = delta_failures.count + 1, deployment_id = excluded.deployment_id, "
    "reason = excluded.reason, "
    "at = excluded.at";
static const char SQL_O_IMAGE[] =
    "SELECT 1 FROM deployments p JOIN delta_offers o ON o.deployment_id = p.id "
    "JOIN deltas d ON d.id = o.delta_id "
    "WHERE p.device_id = ?1 AND p.status = 'active' AND d.image_sha256 = ?2";

static void bind(struct ota_sql_stmt *q, int i, const char *s)
{
	if (s)
		ota_sql_bind_text(q, i, s);
	else
		ota_sql_bind_null(q, i);
}

static void text(struct ota_sql_stmt *q, int col, char *out, size_t cap)
{
	const char *t = ota_sql_column_text(q, col);
	snprintf(out, cap, "%s", t ? (const char *)t : "");
}

/* Columns COLS from 0, the envelope at 8 when wanted. */
static enum ota_err row(struct ota_sql_stmt *q, struct ota_delta *d, char **envelope)
{
	memset(d, 0, sizeof(*d));
	text(q, 0, d->id, sizeof(d->id));
	text(q, 1, d->release_id, sizeof(d->release_id));
	text(q, 2, d->base_sha256, sizeof(d->base_sha256));
	d->base_size = (uint64_t)ota_sql_column_int64(q, 3);
	text(q, 4, d->image_sha256, sizeof(d->image_sha256));
	d->size = (uint64_t)ota_sql_column_int64(q, 5);
	text(q, 6, d->head_sha256, sizeof(d->head_sha256));
	d->created_at = ota_sql_column_int64(q, 7);
	if (envelope) {
		const char *t = ota_sql_column_text(q, 8);
		*envelope = strdup(t ? (const char *)t : "");
		if (!*envelope)
			return OTA_ERR_NOMEM;
	}
	return OTA_OK;
}

static void counts(struct ota_sql_stmt *q, struct ota_delta *d)
{
	d->failed = (uint64_t)ota_sql_column_int64(q, 9);
	d->refused = (uint64_t)ota_sql_column_int64(q, 10);
	d->devices_failed = (uint64_t)ota_sql_column_int64(q, 11);
}

/* Runs one writing statement of up to six bound values in its own or the caller's
 * transaction; *changes gets the count. */
static enum ota_err write(struct ota_store *st, const char *sql, const char *const *s,
                          const int64_t *n, int nargs, int *changes)
{
	enum ota_err rc = OTA_ERR_DB;
	bool own = !ota_store__in_tx(st);

	if (own && ota_store__begin(st) != OTA_OK)
		return OTA_ERR_DB;
	struct ota_sql_stmt *q = ota_store__stmt(st, sql);
	if (q) {
		for (int i = 0; i < nargs; i++) {
			if (s[i])
				bind(q, i + 1, s[i]);
			else
				ota_sql_bind_int64(q, i + 1, n[i]);
		}
		int r = ota_sql_step(q);
		enum ota_sql_failure ext = ota_sql_failure(ota_store__db(st));
		if (r == OTA_SQL_DONE) {
			rc = OTA_OK;
			if (changes)
				*changes = ota_sql_changes(ota_store__db(st));
		} else if (ext == OTA_SQL_F_UNIQUE) {
			rc = OTA_ERR_CONFLICT;
		} else if (ext == OTA_SQL_F_FOREIGN_KEY) {
			rc = OTA_ERR_NOT_FOUND;
		} else {
			rc = ota_store__fail(st, sql);
		}
		ota_store__done(q);
	}
	if (own) {
		if (rc == OTA_OK)
			rc = ota_store__commit(st);
		else
			ota_store__rollback(st);
	}
	return rc;
}

enum ota_err ota_store_delta_add(struct ota_store *st, const struct ota_delta *d,
                                 const char *envelope, int64_t now, bool *existed)
{
	enum ota_err rc = OTA_ERR_DB;

	*existed = false;
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_D_HAS);
	if (!q)
		goto out;
	bind(q, 1, d->id);
	int s = ota_sql_step(q);
	if (s == OTA_SQL_ROW) {
		/* The same signed metadata again: the same delta, unless for another release. */
		bool same = strcmp(ota_sql_column_text(q, 0), d->release_id) == 0;
		ota_store__done(q);
		*existed = same;
		rc = same ? OTA_OK : OTA_ERR_CONFLICT;
		goto out;
	}
	ota_store__done(q);
	if (s != OTA_SQL_DONE) {
		rc = ota_store__fail(st, "delta lookup");
		goto out;
	}
	const char *sv[9] = {d->id, d->release_id,  d->base_sha256, NULL, d->image_sha256,
	                     NULL,  d->head_sha256, envelope,       NULL};
	const int64_t nv[9] = {0, 0, 0, (int64_t)d->base_size, 0, (int64_t)d->size, 0, 0, now};
	rc = write(st, SQL_D_ADD, sv, nv, 9, NULL);
out:
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_delta_get(struct ota_store *st, const char *release_id, const char *id,
                                 struct ota_delta *out, char **envelope)
{
	enum ota_err rc = OTA_ERR_DB;

	if (envelope)
		*envelope = NULL;
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_D_GET);
	if (!q)
		goto out;
	bind(q, 1, release_id);
	bind(q, 2, id);
	int s = ota_sql_step(q);
	if (s == OTA_SQL_ROW) {
		rc = row(q, out, envelope);
		counts(q, out);
	} else if (s == OTA_SQL_DONE) {
		rc = OTA_ERR_NOT_FOUND;
	} else {
		rc = ota_store__fail(st, "delta get");
	}
	ota_store__done(q);
out:
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_delta_list(struct ota_store *st, const char *release_id, const char *after,
                                  unsigned limit, void (*fn)(void *ctx, const struct ota_delta *d),
                                  void *ctx, bool *more)
{
	enum ota_err rc = OTA_ERR_DB;
	unsigned n = 0;
	int s;

	*more = false;
	if (limit < 1 || limit > 1000)
		return OTA_ERR_INVALID;
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_D_LIST);
	if (!q)
		goto out;
	bind(q, 1, release_id);
	bind(q, 2, after);
	ota_sql_bind_int64(q, 3, (int64_t)limit + 1);
	while ((s = ota_sql_step(q)) == OTA_SQL_ROW) {
		struct ota_delta d;
		if (n == limit) {
			*more = true;
			break;
		}
		(void)row(q, &d, NULL);
		counts(q, &d);
		fn(ctx, &d);
		n++;
	}
	rc = s == OTA_SQL_ROW || s == OTA_SQL_DONE ? OTA_OK : ota_store__fail(st, "delta list");
	ota_store__done(q);
out:
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_delta_delete(struct ota_store *st, const char *release_id, const char *id)
{
	const char *sv[2] = {release_id, id};
	const int64_t nv[2] = {0, 0};
	int n = 0;

	ota_store__lock(st);
	enum ota_err rc = write(st, SQL_D_DEL, sv, nv, 2, &n);
	ota_store__unlock(st);
	return rc == OTA_OK && n == 0 ? OTA_ERR_NOT_FOUND : rc;
}

enum ota_err ota_store_delta_for_base(struct ota_store *st, const char *release_id,
                                      const char *base_sha256, const char *device_id,
                                      struct ota_delta *out, char **envelope, bool *failed_here)
{
	enum ota_err rc = OTA_ERR_DB;

	*envelope = NULL;
	*failed_here = false;
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_D_FOR_BASE);
	if (!q)
		goto out;
	bind(q, 1, release_id);
	bind(q, 2, base_sha256);
	bind(q, 3, device_id);
	int s = ota_sql_step(q);
	if (s == OTA_SQL_ROW) {
		rc = row(q, out, envelope);
		*failed_here = ota_sql_column_int64(q, 9) != 0;
	} else if (s == OTA_SQL_DONE) {
		rc = OTA_ERR_NOT_FOUND;
	} else {
		rc = ota_store__fail(st, "delta for base");
	}
	ota_store__done(q);
out:
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_delta_offered(struct ota_store *st, const char *deployment_id,
                                     char delta_id[OTA_HEX256])
{
	enum ota_err rc = OTA_ERR_DB;

	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_O_GET);
	if (!q)
		goto out;
	bind(q, 1, deployment_id);
	int s = ota_sql_step(q);
	if (s == OTA_SQL_ROW) {
		text(q, 0, delta_id, OTA_HEX256);
		rc = OTA_OK;
	} else {
		rc = s == OTA_SQL_DONE ? OTA_ERR_NOT_FOUND : ota_store__fail(st, "delta offer");
	}
	ota_store__done(q);
out:
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_delta_offer_set(struct ota_store *st, const char *deployment_id,
                                       const char *delta_id, int64_t now)
{
	const char *sv[3] = {deployment_id, delta_id, NULL};
	const int64_t nv[3] = {0, 0, now};

	ota_store__lock(st);
	enum ota_err rc = delta_id ? write(st, SQL_O_SET, sv, nv, 3, NULL)
	                           : write(st, SQL_O_DEL, sv, nv, 1, NULL);
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_delta_failure_add(struct ota_store *st, const char *delta_id,
                                         const char *device_id, const char *kind,
                                         const char *deployment_id, const char *reason, int64_t now)
{
	const char *sv[6] = {delta_id, device_id, kind, deployment_id, reason, NULL};
	const int64_t nv[6] = {0, 0, 0, 0, 0, now};

	ota_store__lock(st);
	enum ota_err rc = write(st, SQL_F_ADD, sv, nv, 6, NULL);
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_delta_image_allowed(struct ota_store *st, const char *device_id,
                                           const char *sha256, bool *allowed)
{
	enum ota_err rc = OTA_ERR_DB;

	*allowed = false;
	ota_store__lock(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_O_IMAGE);
	if (!q)
		goto out;
	bind(q, 1, device_id);
	bind(q, 2, sha256);
	int s = ota_sql_step(q);
	if (s == OTA_SQL_ROW || s == OTA_SQL_DONE) {
		*allowed = s == OTA_SQL_ROW;
		rc = OTA_OK;
	} else {
		rc = ota_store__fail(st, "delta image permission");
	}
	ota_store__done(q);
out:
	ota_store__unlock(st);
	return rc;
}
