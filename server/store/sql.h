/*
 * store/sql.h - the store's one door to a database: a connection and its statements, in
 * SQLite's shape (prepare, bind, step, column, reset), with two drivers: SQLite
 * (store/sql_sqlite.c) and PostgreSQL through libpq (store/sql_pg.c). Nothing outside
 * server/store/ includes it, and the store's files include nothing else of either library.
 *
 * The SQL: one text for both where they agree, which is nearly everywhere. Parameters are
 * numbered (?1, ?2, ...; the PostgreSQL driver writes them $1, $2, ...) or plain (?), never
 * both in one statement. Where the dialects differ, the store keeps a pair of texts
 * (store/internal.h, OTA_SQL_PICK). Every integer is 64-bit; a boolean that PostgreSQL
 * returns reads as 1 or 0 through ota_sql_column_int64().
 *
 * Threads: a connection and its statements are used by one thread at a time (the store's
 * handle lock). A statement's results are read before the next statement of the same
 * connection runs unless the driver is SQLite; the store's code never interleaves them.
 */
#ifndef OTA_STORE_SQL_H
#define OTA_STORE_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct ota_sql;
struct ota_sql_stmt;

enum ota_sql_kind { OTA_SQL_SQLITE = 0, OTA_SQL_POSTGRESQL = 1 };

/* What ota_sql_step() returns. */
enum ota_sql_step { OTA_SQL_ROW = 1, OTA_SQL_DONE, OTA_SQL_ERROR };

/* Why the last statement of a connection failed (ota_sql_failure()). */
enum ota_sql_failure {
	OTA_SQL_F_NONE = 0,
	OTA_SQL_F_UNIQUE,      /* a primary key or unique index */
	OTA_SQL_F_FOREIGN_KEY, /* a foreign key */
	OTA_SQL_F_CONSTRAINT,  /* another constraint: CHECK, NOT NULL */
	OTA_SQL_F_STORAGE,     /* a full or failing disk, or the database server out of reach:
	                        * also noted as a storage fault on the thread (common/err.h) */
	OTA_SQL_F_OTHER,
};

/* Once per process, before the first connection (SQLite's error log is routed to otad's). */
void ota_sql_global_init(void);
/* Opens a SQLite file (created when missing) in WAL mode, synchronous=FULL, foreign keys on,
 * a 5 s busy timeout. */
enum ota_err ota_sql_open_sqlite(const char *path, struct ota_sql **out, char *msg, size_t msglen);
/* Connects to PostgreSQL with a libpq connection string. A password in it is refused: it
 * comes from a password file (passfile=, PGPASSFILE or ~/.pgpass). */
enum ota_err ota_sql_open_pg(const char *conninfo, struct ota_sql **out, char *msg, size_t msglen);
/* Finalizes the connection's statements too. NULL is allowed. */
void ota_sql_close(struct ota_sql *db);
enum ota_sql_kind ota_sql_kind(const struct ota_sql *db);

/* Runs a script of statements without parameters or results: OTA_SQL_DONE or OTA_SQL_ERROR. */
int ota_sql_exec(struct ota_sql *db, const char *script);
/* NULL when the text does not compile (ota_sql_errmsg() says why; PostgreSQL only finds out
 * at the first step). The statement belongs to db and is finalized with it. */
struct ota_sql_stmt *ota_sql_prepare(struct ota_sql *db, const char *sql);
void ota_sql_finalize(struct ota_sql_stmt *q);

/* Parameters count from 1. Text is copied. NULL text binds SQL NULL. */
void ota_sql_bind_int64(struct ota_sql_stmt *q, int i, int64_t v);
void ota_sql_bind_text(struct ota_sql_stmt *q, int i, const char *s);
void ota_sql_bind_textn(struct ota_sql_stmt *q, int i, const char *s, size_t len);
void ota_sql_bind_null(struct ota_sql_stmt *q, int i);

/* The next row, the end, or a failure (ota_sql_failure() of the connection). */
int ota_sql_step(struct ota_sql_stmt *q);
/* Columns count from 0, of the current row. NULL reads as 0 and as NULL text. */
int64_t ota_sql_column_int64(struct ota_sql_stmt *q, int col);
const char *ota_sql_column_text(struct ota_sql_stmt *q, int col);
bool ota_sql_column_is_null(struct ota_sql_stmt *q, int col);
/* Ready to run again, its parameters unbound. */
void ota_sql_reset(struct ota_sql_stmt *q);

/* Rows changed by the connection's last INSERT, UPDATE or DELETE. */
int64_t ota_sql_changes(struct ota_sql *db);
const char *ota_sql_errmsg(struct ota_sql *db);
enum ota_sql_failure ota_sql_failure(struct ota_sql *db);
/* Whether a transaction is open on the connection (also one that a failure aborted). */
bool ota_sql_in_tx(struct ota_sql *db);

/* PostgreSQL's notifications (SQLite has none: OTA_ERR_DB). ota_sql_listen() subscribes the
 * connection to a channel; ota_sql_notified() waits up to timeout_ms for a notification: 1
 * with its payload in buf (cut to cap), 0 when none came, -1 when the connection failed. */
enum ota_err ota_sql_listen(struct ota_sql *db, const char *channel);
int ota_sql_notified(struct ota_sql *db, int timeout_ms, char *buf, size_t cap);

#endif
