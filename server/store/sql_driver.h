/*
 * store/sql_driver.h - what a driver of store/sql.h provides: a table of its functions, and the
 * first member of its connection and statement structures, through which store/sql.c calls
 * the right driver. Only store/sql.c and the drivers (store/sql_sqlite.c, store/sql_pg.c)
 * include it.
 *
 * Rules: a driver's connection structure starts with a struct ota_sql (its driver and kind
 * set by the driver's open function), its statement structure with a struct ota_sql_stmt (the
 * connection it belongs to). bind_textn receives NULL for SQL NULL.
 */
#ifndef OTA_STORE_SQL_DRIVER_H
#define OTA_STORE_SQL_DRIVER_H

#include "store/sql.h"

struct ota_sql_driver {
	void (*close)(struct ota_sql *db);
	int (*exec)(struct ota_sql *db, const char *script);
	struct ota_sql_stmt *(*prepare)(struct ota_sql *db, const char *sql);
	void (*finalize)(struct ota_sql_stmt *q);
	void (*bind_int64)(struct ota_sql_stmt *q, int i, int64_t v);
	void (*bind_textn)(struct ota_sql_stmt *q, int i, const char *s, size_t len);
	void (*bind_null)(struct ota_sql_stmt *q, int i);
	int (*step)(struct ota_sql_stmt *q);
	int64_t (*column_int64)(struct ota_sql_stmt *q, int col);
	const char *(*column_text)(struct ota_sql_stmt *q, int col);
	bool (*column_is_null)(struct ota_sql_stmt *q, int col);
	void (*reset)(struct ota_sql_stmt *q);
	int64_t (*changes)(struct ota_sql *db);
	const char *(*errmsg)(struct ota_sql *db);
	enum ota_sql_failure (*failure)(struct ota_sql *db);
	bool (*in_tx)(struct ota_sql *db);
	enum ota_err (*listen)(struct ota_sql *db, const char *channel);
	int (*notified)(struct ota_sql *db, int timeout_ms, char *buf, size_t cap);
};

struct ota_sql {
	const struct ota_sql_driver *drv;
	enum ota_sql_kind kind;
};

struct ota_sql_stmt {
	struct ota_sql *db;
};

#endif
