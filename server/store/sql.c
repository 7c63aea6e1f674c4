/*
 * store/sql.c - store/sql.h's functions that are not opening: each calls the driver of its
 * connection (store/sql_driver.h). The open functions are the drivers' own.
 */
#include "store/sql.h"

#include <string.h>

#include "store/sql_driver.h"

void ota_sql_close(struct ota_sql *db)
{
	if (db)
		db->drv->close(db);
}

enum ota_sql_kind ota_sql_kind(const struct ota_sql *db)
{
	return db->kind;
}

int ota_sql_exec(struct ota_sql *db, const char *script)
{
	return db->drv->exec(db, script);
}

struct ota_sql_stmt *ota_sql_prepare(struct ota_sql *db, const char *sql)
{
	return db->drv->prepare(db, sql);
}

void ota_sql_finalize(struct ota_sql_stmt *q)
{
	if (q)
		q->db->drv->finalize(q);
}

void ota_sql_bind_int64(struct ota_sql_stmt *q, int i, int64_t v)
{
	q->db->drv->bind_int64(q, i, v);
}

void ota_sql_bind_text(struct ota_sql_stmt *q, int i, const char *s)
{
	q->db->drv->bind_textn(q, i, s, s ? strlen(s) : 0);
}

void ota_sql_bind_textn(struct ota_sql_stmt *q, int i, const char *s, size_t len)
{
	q->db->drv->bind_textn(q, i, s, len);
}

void ota_sql_bind_null(struct ota_sql_stmt *q, int i)
{
	q->db->drv->bind_null(q, i);
}

int ota_sql_step(struct ota_sql_stmt *q)
{
	return q->db->drv->step(q);
}

int64_t ota_sql_column_int64(struct ota_sql_stmt *q, int col)
{
	return q->db->drv->column_int64(q, col);
}

const char *ota_sql_column_text(struct ota_sql_stmt *q, int col)
{
	return q->db->drv->column_text(q, col);
}

bool ota_sql_column_is_null(struct ota_sql_stmt *q, int col)
{
	return q->db->drv->column_is_null(q, col);
}

void ota_sql_reset(struct ota_sql_stmt *q)
{
	q->db->drv->reset(q);
}

int64_t ota_sql_changes(struct ota_sql *db)
{
	return db->drv->changes(db);
}

const char *ota_sql_errmsg(struct ota_sql *db)
{
	return db->drv->errmsg(db);
}

enum ota_sql_failure ota_sql_failure(struct ota_sql *db)
{
	return db->drv->failure(db);
}

bool ota_sql_in_tx(struct ota_sql *db)
{
	return db->drv->in_tx(db);
}

enum ota_err ota_sql_listen(struct ota_sql *db, const char *channel)
{
	return db->drv->listen(db, channel);
}

int ota_sql_notified(struct ota_sql *db, int timeout_ms, char *buf, size_t cap)
{
	return db->drv->notified(db, timeout_ms, buf, cap);
}
