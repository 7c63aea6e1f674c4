/*
 * store/sql_sqlite.c - the SQLite driver of store/sql.h: a thin layer over sqlite3 (a
 * statement is a sqlite3_stmt). A full or failing disk is noted as a storage fault on the
 * thread that met it (common/err.h), and logged through SQLite's error log.
 */
#include "store/sql.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/log.h"
#include "common/util.h"
#include "store/sql_driver.h"

struct conn {
	struct ota_sql base; /* first: store/sql_driver.h */
	sqlite3 *db;
};
struct stmt {
	struct ota_sql_stmt base; /* first */
	sqlite3_stmt *q;
};

static const struct ota_sql_driver driver;

static sqlite3 *D(struct ota_sql *db)
{
	return ((struct conn *)db)->db;
}

static sqlite3_stmt *S(struct ota_sql_stmt *q)
{
	return ((struct stmt *)q)->q;
}

/* SQLite reports every failed statement here, on the thread that ran it: a full or failing
 * disk is noted as a storage fault (common/err.h), whichever store call met it. */
static void sqlite_log(void *ctx, int code, const char *text)
{
	(void)ctx;
	if ((code & 0xff) == SQLITE_FULL || (code & 0xff) == SQLITE_IOERR) {
		ota_storage_fault_note();
		log_warn("store: storage fault (SQLite %d): %s", code, text);
	}
}

static void install_log(void)
{
	/* Only possible before SQLite initialises; later (a test that touched SQLite first
	 * without ota_store_global_init()) the store's own failures still answer errors. */
	if (sqlite3_config(SQLITE_CONFIG_LOG, sqlite_log, NULL) != SQLITE_OK)
		log_warn("store: SQLite was initialised before the store: its error log is not "
		         "routed to otad's");
}

void ota_sql_global_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, install_log);
}

enum ota_err ota_sql_open_sqlite(const char *path, struct ota_sql **out, char *msg, size_t msglen)
{
	struct conn *db = calloc(1, sizeof(*db));
	char *err = NULL;

	*out = NULL;
	if (!db)
		return OTA_ERR_NOMEM;
	db->base.drv = &driver;
	db->base.kind = OTA_SQL_SQLITE;
	if (sqlite3_open_v2(path, &db->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                    NULL) != SQLITE_OK) {
		ota_say(msg, msglen, "cannot open %s: %s", path,
		        db->db ? sqlite3_errmsg(db->db) : "out of memory");
		goto fail;
	}
	sqlite3_extended_result_codes(db->db, 1);
	sqlite3_busy_timeout(db->db, 5000);
	if (sqlite3_exec(db->db,
	                 "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
	                 "PRAGMA foreign_keys = ON;",
	                 NULL, NULL, &err) != SQLITE_OK) {
		ota_say(msg, msglen, "cannot configure %s: %s", path, err ? err : "?");
		goto fail;
	}
	*out = &db->base;
	return OTA_OK;
fail:
	sqlite3_free(err);
	ota_sql_close(&db->base);
	return OTA_ERR_DB;
}

static void sq_close(struct ota_sql *db)
{
	/* The store finalizes its statements first (ota_sql_finalize()). */
	sqlite3_close(D(db));
	free(db);
}

static int sq_exec(struct ota_sql *db, const char *script)
{
	return sqlite3_exec(D(db), script, NULL, NULL, NULL) == SQLITE_OK ? OTA_SQL_DONE
	                                                                  : OTA_SQL_ERROR;
}

static struct ota_sql_stmt *sq_prepare(struct ota_sql *db, const char *sql)
{
	struct stmt *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->base.db = db;
	if (sqlite3_prepare_v3(D(db), sql, -1, SQLITE_PREPARE_PERSISTENT, &s->q, NULL) !=
	    SQLITE_OK) {
		sqlite3_finalize(s->q);
		free(s);
		return NULL;
	}
	return &s->base;
}

static void sq_finalize(struct ota_sql_stmt *q)
{
	sqlite3_finalize(S(q));
	free(q);
}

static void sq_bind_int64(struct ota_sql_stmt *q, int i, int64_t v)
{
	sqlite3_bind_int64(S(q), i, v);
}

static void sq_bind_textn(struct ota_sql_stmt *q, int i, const char *s, size_t len)
{
	if (s)
		sqlite3_bind_text(S(q), i, s, (int)len, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(S(q), i);
}

static void sq_bind_null(struct ota_sql_stmt *q, int i)
{
	sqlite3_bind_null(S(q), i);
}

static int sq_step(struct ota_sql_stmt *q)
{
	int rc = sqlite3_step(S(q));

	if (rc == SQLITE_ROW)
		return OTA_SQL_ROW;
	if (rc == SQLITE_DONE)
		return OTA_SQL_DONE;
	if ((rc & 0xff) == SQLITE_FULL || (rc & 0xff) == SQLITE_IOERR)
		ota_storage_fault_note();
	return OTA_SQL_ERROR;
}

static int64_t sq_column_int64(struct ota_sql_stmt *q, int col)
{
	return sqlite3_column_int64(S(q), col);
}

static const char *sq_column_text(struct ota_sql_stmt *q, int col)
{
	return (const char *)sqlite3_column_text(S(q), col);
}

static bool sq_column_is_null(struct ota_sql_stmt *q, int col)
{
	return sqlite3_column_type(S(q), col) == SQLITE_NULL;
}

static void sq_reset(struct ota_sql_stmt *q)
{
	sqlite3_reset(S(q));
	sqlite3_clear_bindings(S(q));
}

static int64_t sq_changes(struct ota_sql *db)
{
	return sqlite3_changes64(D(db));
}

static const char *sq_errmsg(struct ota_sql *db)
{
	return sqlite3_errmsg(D(db));
}

static enum ota_sql_failure sq_failure(struct ota_sql *db)
{
	int e = sqlite3_extended_errcode(D(db));

	switch (e) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return OTA_SQL_F_NONE;
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return OTA_SQL_F_UNIQUE;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return OTA_SQL_F_FOREIGN_KEY;
	}
	switch (e & 0xff) {
	case SQLITE_CONSTRAINT:
		return OTA_SQL_F_CONSTRAINT;
	case SQLITE_FULL:
	case SQLITE_IOERR:
		return OTA_SQL_F_STORAGE;
	}
	return OTA_SQL_F_OTHER;
}

static bool sq_in_tx(struct ota_sql *db)
{
	return !sqlite3_get_autocommit(D(db));
}

static enum ota_err sq_listen(struct ota_sql *db, const char *channel)
{
	(void)db;
	(void)channel;
	return OTA_ERR_DB; /* one process per SQLite file: nobody to hear from */
}

static int sq_notified(struct ota_sql *db, int timeout_ms, char *buf, size_t cap)
{
	(void)db;
	(void)timeout_ms;
	(void)buf;
	(void)cap;
	return -1;
}

static const struct ota_sql_driver driver = {
    .close = sq_close,
    .exec = sq_exec,
    .prepare = sq_prepare,
    .finalize = sq_finalize,
    .bind_int64 = sq_bind_int64,
    .bind_textn = sq_bind_textn,
    .bind_null = sq_bind_null,
    .step = sq_step,
    .column_int64 = sq_column_int64,
    .column_text = sq_column_text,
    .column_is_null = sq_column_is_null,
    .reset = sq_reset,
    .changes = sq_changes,
    .errmsg = sq_errmsg,
    .failure = sq_failure,
    .in_tx = sq_in_tx,
    .listen = sq_listen,
    .notified = sq_notified,
};
