/*
 * store/cert_store.c - rows of device certificate renewal (schema 0070): the pending
 * certificate of each device, and pinning it over the old one when the device first uses it.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "store/cert_store.h"
#include "store/internal.h"

static const char SQL_SET[] =
    "INSERT INTO device_cert_pending (device_id, fingerprint, issued_at, not_after) "
    "SELECT id, ?2, ?3, ?4 FROM devices WHERE id = ?1 "
    "ON CONFLICT (device_id) DO UPDATE SET fingerprint = excluded.fingerprint, "
    "issued_at = excluded.issued_at, not_after = excluded.not_after";
static const char SQL_GET[] = "SELECT fingerprint FROM device_cert_pending WHERE device_id = ?1";
static const char SQL_PIN[] =
    "UPDATE devices SET fingerprint = ?2 WHERE id = ?1 AND EXISTS (SELECT 1 FROM "
    "device_cert_pending WHERE device_id = ?1 AND fingerprint = ?2)";
static const char SQL_DROP[] = "DELETE FROM device_cert_pending WHERE device_id = ?1";

/* One statement that changes rows, bound to (a, b, n1, n2); *changes gets the count. */
static enum ota_err run(struct ota_store *st, const char *sql, const char *a, const char *b,
                        int64_t n1, int64_t n2, int *changes)
{
	struct ota_sql_stmt *q = ota_store__stmt(st, sql);
	int s;

	if (!q)
		return OTA_ERR_DB;
	ota_sql_bind_text(q, 1, a);
	if (b)
		ota_sql_bind_text(q, 2, b);
	ota_sql_bind_int64(q, 3, n1);
	ota_sql_bind_int64(q, 4, n2);
	s = ota_sql_step(q);
	*changes = ota_sql_changes(ota_store__db(st));
	ota_store__done(q);
	if (s == OTA_SQL_DONE)
		return OTA_OK;
	if (ota_sql_failure(ota_store__db(st)) == OTA_SQL_F_UNIQUE)
		return OTA_ERR_CONFLICT;
	return ota_store__fail(st, "device certificate");
}

enum ota_err ota_store_cert_pending_set(struct ota_store *st, const char *id,
                                        const char *fingerprint, int64_t issued_at,
                                        int64_t not_after)
{
	enum ota_err rc;
	int n = 0;

	ota_store__lock(st);
	rc = ota_store__begin(st);
	if (rc == OTA_OK) {
		rc = run(st, SQL_SET, id, fingerprint, issued_at, not_after, &n);
		if (rc == OTA_OK && n == 0)
			rc = OTA_ERR_NOT_FOUND;
		if (rc == OTA_OK)
			rc = ota_store__commit(st);
		else
			ota_store__rollback(st);
	}
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_cert_pending_get(struct ota_store *st, const char *id, char out[OTA_HEX256])
{
	enum ota_err rc = OTA_ERR_NOT_FOUND;
	struct ota_sql_stmt *q;

	ota_store__lock(st);
	q = ota_store__stmt(st, SQL_GET);
	if (!q) {
		ota_store__unlock(st);
		return OTA_ERR_DB;
	}
	ota_sql_bind_text(q, 1, id);
	int s = ota_sql_step(q);
	if (s == OTA_SQL_ROW) {
		snprintf(out, OTA_HEX256, "%s", ota_sql_column_text(q, 0));
		rc = OTA_OK;
	} else if (s != OTA_SQL_DONE) {
		rc = ota_store__fail(st, "device certificate lookup");
	}
	ota_store__done(q);
	ota_store__unlock(st);
	return rc;
}

enum ota_err ota_store_cert_promote(struct ota_store *st, const char *id, const char *fingerprint)
{
	enum ota_err rc;
	int n = 0;

	ota_store__lock(st);
	rc = ota_store__begin(st);
	if (rc == OTA_OK) {
		rc = run(st, SQL_PIN, id, fingerprint, 0, 0, &n);
		if (rc == OTA_OK && n == 0)
			rc = OTA_ERR_NOT_FOUND;
		if (rc == OTA_OK)
			rc = run(st, SQL_DROP, id, NULL, 0, 0, &n);
		if (rc == OTA_OK)
			ota_store__access_changed(st);
		if (rc == OTA_OK)
			rc = ota_store__commit(st);
		else
			ota_store__rollback(st);
	}
	ota_store__unlock(st);
	return rc;
}
