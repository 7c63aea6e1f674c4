/*
 * store/copy.c - ota_store_copy_from_sqlite(): every row of a SQLite otad database into an
 * empty PostgreSQL store (otad --migrate-store, docs/scaling.md, "Moving from SQLite to
 * PostgreSQL").
 *
 * Rules: the source is opened read-only and only read, in one read transaction (a consistent
 * snapshot); its schema version must be this otad's. The target is written in one transaction
 * under the store's write lock (ota_store_tx_begin()), so a failure leaves it as it was. Tables
 * go in the source's creation order (sqlite_schema by rowid), which puts every table after the
 * tables its foreign keys name; rows of a table with a rowid in rowid order (the audit chain is
 * appended in order), every column by name, as text or NULL, cast to the target column's type.
 * A target column named rowid that the source table lacks takes the source's rowid (the
 * deployments' insertion order); identity columns then continue past the largest value copied.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "store/internal.h"
#include "store/sql.h"
#include "store/store.h"

#define COPY_TABLES 64 /* tables of the schema, at most */
#define COPY_COLS 64   /* columns of a table, at most */
#define COPY_NAME 64   /* a table or column name, with its NUL */
#define COPY_SQL (COPY_COLS * (COPY_NAME + 40) + 256)

struct copy_col {
	char name[COPY_NAME];
	char type[COPY_NAME]; /* the target's information_schema data_type */
	bool identity;        /* a target identity column */
	bool from_rowid;      /* the target's rowid column: the source's rowid */
};

struct copy_table {
	char name[COPY_NAME];
	bool has_rowid;
	int ncols;
	struct copy_col cols[COPY_COLS];
	int64_t rows;
};

/* Names are put into SQL text: only those the schema uses (lowercase, digits, underscores). */
static bool plain(const char *s, bool spaces)
{
	size_t n = strlen(s);

	if (n == 0 || n >= COPY_NAME)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      (spaces && *s == ' ')))
			return false;
	return true;
}

/* The one row of a query without parameters, as an integer; false when it failed. */
static bool one_int(struct ota_sql *db, const char *sql, int64_t *out)
{
	struct ota_sql_stmt *q = ota_sql_prepare(db, sql);
	bool ok = q && ota_sql_step(q) == OTA_SQL_ROW;

	if (ok)
		*out = ota_sql_column_int64(q, 0);
	ota_sql_finalize(q);
	return ok;
}

/* The source's schema version must be this otad's: an older file is migrated by starting
 * otad on it, a newer one is copied by the otad that knows it. */
static enum ota_err source_version(struct ota_sql *src, const char *path, char *msg, size_t msglen)
{
	int64_t v = 0;
	int latest = ota_store_schema_latest();

	if (!one_int(src, "PRAGMA user_version", &v)) {
		ota_say(msg, msglen, "%s is not a SQLite database: %s", path, ota_sql_errmsg(src));
		return OTA_ERR_DB;
	}
	if (v == 0) {
		ota_say(msg, msglen, "%s holds no otad schema (schema version 0)", path);
		return OTA_ERR_SCHEMA;
	}
	if (v < latest) {
		ota_say(
		    msg, msglen,
		    "%s has schema version %lld, older than this otad's (%d): start this otad on "
		    "it once (it migrates the file), stop it, then copy",
		    path, (long long)v, latest);
		return OTA_ERR_SCHEMA;
	}
	if (v > latest) {
		ota_say(msg, msglen,
		        "%s has schema version %lld, newer than this otad knows (%d): copy it with "
		        "the otad that matches it",
		        path, (long long)v, latest);
		return OTA_ERR_SCHEMA;
	}
	return OTA_OK;
}

/* The source's tables in creation order, each with its columns. */
static enum ota_err source_tables(struct ota_sql *src, struct copy_table *t, int *n, char *msg,
                                  size_t msglen)
{
	struct ota_sql_stmt *q = ota_sql_prepare(
	    src, "SELECT m.name, l.wr FROM sqlite_schema m "
	         "JOIN pragma_table_list l ON l.schema = 'main' AND l.name = m.name "
	         "WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
	         "ORDER BY m.rowid");
	struct ota_sql_stmt *c = ota_sql_prepare(src, "SELECT name FROM pragma_table_info(?1) "
	                                              "ORDER BY cid");
	enum ota_err rc = OTA_ERR_DB;
	int r;

	*n = 0;
	if (!q || !c) {
		ota_say(msg, msglen, "cannot list the tables of the SQLite database: %s",
		        ota_sql_errmsg(src));
		goto out;
	}
	while ((r = ota_sql_step(q)) == OTA_SQL_ROW) {
		const char *name = ota_sql_column_text(q, 0);
		struct copy_table *tb = &t[*n];

		if (*n == COPY_TABLES || !name || !plain(name, false)) {
			ota_say(msg, msglen,
			        "the SQLite database has a table otad does not know: %s",
			        name ? name : "?");
			rc = OTA_ERR_SCHEMA;
			goto out;
		}
		memset(tb, 0, sizeof(*tb));
		snprintf(tb->name, sizeof(tb->name), "%s", name);
		tb->has_rowid = ota_sql_column_int64(q, 1) == 0;
		ota_sql_bind_text(c, 1, tb->name);
		while ((r = ota_sql_step(c)) == OTA_SQL_ROW) {
			const char *col = ota_sql_column_text(c, 0);

			if (tb->ncols == COPY_COLS || !col || !plain(col, false)) {
				ota_say(msg, msglen, "table %s: a column otad does not know: %s",
				        tb->name, col ? col : "?");
				rc = OTA_ERR_SCHEMA;
				goto out;
			}
			snprintf(tb->cols[tb->ncols++].name, COPY_NAME, "%s", col);
		}
		ota_sql_reset(c);
		if (r != OTA_SQL_DONE)
			break;
		(*n)++;
	}
	if (r != OTA_SQL_DONE) {
		ota_say(msg, msglen, "cannot list the tables of the SQLite database: %s",
		        ota_sql_errmsg(src));
		goto out;
	}
	rc = OTA_OK;
out:
	ota_sql_finalize(c);
	ota_sql_finalize(q);
	return rc;
}

/* Pairs each source column with the target's column of the same name (its type), and adds the
 * target's rowid column; a column missing on either side refuses the copy. */
static enum ota_err match_columns(struct ota_sql *dst, struct copy_table *tb, char *msg,
                                  size_t msglen)
{
	struct ota_sql_stmt *q = ota_sql_prepare(
	    dst, "SELECT column_name, data_type, is_identity FROM information_schema.columns "
	         "WHERE table_schema = current_schema() AND table_name = ?1 "
	         "ORDER BY ordinal_position");
	enum ota_err rc = OTA_ERR_SCHEMA;
	int r, seen = 0, nsrc = tb->ncols;

	if (!q)
		goto fail;
	ota_sql_bind_text(q, 1, tb->name);
	while ((r = ota_sql_step(q)) == OTA_SQL_ROW) {
		const char *name = ota_sql_column_text(q, 0), *type = ota_sql_column_text(q, 1);
		const char *ident = ota_sql_column_text(q, 2);
		struct copy_col *col = NULL;

		for (int i = 0; i < nsrc && name; i++)
			if (strcmp(tb->cols[i].name, name) == 0)
				col = &tb->cols[i];
		if (!col && name && strcmp(name, "rowid") == 0 && tb->has_rowid &&
		    tb->ncols < COPY_COLS) {
			col = &tb->cols[tb->ncols++];
			snprintf(col->name, sizeof(col->name), "rowid");
			col->from_rowid = true;
		}
		if (!col) {
			ota_say(msg, msglen,
			        "table %s: column %s of the PostgreSQL database has no twin in the "
			        "SQLite database",
			        tb->name, name ? name : "?");
			goto out;
		}
		if (!type || !plain(type, true)) {
			ota_say(msg, msglen, "table %s: column %s has a type otad does not know",
			        tb->name, col->name);
			goto out;
		}
		snprintf(col->type, sizeof(col->type), "%s", type);
		col->identity = ident && strcmp(ident, "YES") == 0;
		seen++;
	}
	if (r != OTA_SQL_DONE)
		goto fail;
	if (seen == 0) {
		ota_say(msg, msglen, "table %s has no twin in the PostgreSQL database", tb->name);
		goto out;
	}
	for (int i = 0; i < nsrc; i++) {
		if (!tb->cols[i].type[0]) {
			ota_say(msg, msglen,
			        "table %s: column %s of the SQLite database has no twin in the "
			        "PostgreSQL database",
			        tb->name, tb->cols[i].name);
			goto out;
		}
	}
	rc = OTA_OK;
	goto out;
fail:
	ota_say(msg, msglen, "cannot read the columns of %s in PostgreSQL: %s", tb->name,
	        ota_sql_errmsg(dst));
	rc = OTA_ERR_DB;
out:
	ota_sql_finalize(q);
	return rc;
}

/* Every table of the target but its schema version holds no row. */
static enum ota_err target_empty(struct ota_sql *dst, char *msg, size_t msglen)
{
	struct ota_sql_stmt *q = ota_sql_prepare(
	    dst, "SELECT table_name FROM information_schema.tables "
	         "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' "
	         "AND table_name <> 'schema_version' ORDER BY table_name");
	char names[COPY_TABLES][COPY_NAME], sql[COPY_NAME + 64];
	int n = 0, r;
	int64_t any;

	if (!q)
		goto fail;
	while ((r = ota_sql_step(q)) == OTA_SQL_ROW) {
		const char *name = ota_sql_column_text(q, 0);

		if (n == COPY_TABLES || !name || !plain(name, false)) {
			ota_sql_finalize(q);
			ota_say(msg, msglen,
			        "the PostgreSQL database has a table otad does not know (%s): copy "
			        "into an empty database",
			        name ? name : "?");
			return OTA_ERR_CONFLICT;
		}
		snprintf(names[n++], COPY_NAME, "%s", name);
	}
	ota_sql_finalize(q);
	if (r != OTA_SQL_DONE)
		goto fail;
	for (int i = 0; i < n; i++) {
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) > 0 FROM (SELECT 1 FROM \"%.*s\" LIMIT 1) x",
		         COPY_NAME - 1, names[i]);
		if (!one_int(dst, sql, &any))
			goto fail;
		if (any) {
			ota_say(
			    msg, msglen,
			    "the PostgreSQL database is not empty (table %s has rows): copy into a "
			    "database that holds no otad data",
			    names[i]);
			return OTA_ERR_CONFLICT;
		}
	}
	return OTA_OK;
fail:
	ota_say(msg, msglen, "cannot read the PostgreSQL database: %s", ota_sql_errmsg(dst));
	return OTA_ERR_DB;
}

/* Appends printf-style text to buf (cap bytes); false when it did not fit. */
static bool add(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool add(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap - *len)
		return false;
	*len += (size_t)n;
	return true;
}

/* Copies one table's rows, then moves its identity columns past the largest value. */
static enum ota_err copy_table(struct ota_sql *src, struct ota_sql *dst, struct copy_table *tb,
                               char *msg, size_t msglen)
{
	char sel[COPY_SQL], ins[COPY_SQL];
	size_t ls = 0, li = 0;
	bool fits = add(sel, sizeof(sel), &ls, "SELECT ") &&
	            add(ins, sizeof(ins), &li, "INSERT INTO \"%s\" (", tb->name);
	struct ota_sql_stmt *s = NULL, *q = NULL;
	enum ota_err rc = OTA_ERR_DB;
	int r;

	for (int i = 0; i < tb->ncols && fits; i++) {
		const char *sep = i ? ", " : "";
		fits = add(sel, sizeof(sel), &ls, "%s\"%s\"", sep, tb->cols[i].name) &&
		       add(ins, sizeof(ins), &li, "%s\"%s\"", sep, tb->cols[i].name);
	}
	fits = fits &&
	       add(sel, sizeof(sel), &ls, " FROM \"%s\"%s", tb->name,
	           tb->has_rowid ? " ORDER BY rowid" : "") &&
	       add(ins, sizeof(ins), &li, ") VALUES (");
	/* Text in, the column's type out: PostgreSQL casts "42" to bigint, SQLite's integers
	 * read as their decimal text. */
	for (int i = 0; i < tb->ncols && fits; i++) {
		const char *sep = i ? ", " : "";
		fits = strcmp(tb->cols[i].type, "text") == 0
		           ? add(ins, sizeof(ins), &li, "%s?%d", sep, i + 1)
		           : add(ins, sizeof(ins), &li, "%sCAST(?%d AS %s)", sep, i + 1,
		                 tb->cols[i].type);
	}
	if (!fits || !add(ins, sizeof(ins), &li, ")")) {
		ota_say(msg, msglen, "table %s: too many columns", tb->name);
		return OTA_ERR_SCHEMA;
	}
	s = ota_sql_prepare(src, sel);
	q = ota_sql_prepare(dst, ins);
	if (!s || !q) {
		ota_say(msg, msglen, "table %s: %s", tb->name,
		        !s ? ota_sql_errmsg(src) : ota_sql_errmsg(dst));
		goto out;
	}
	while ((r = ota_sql_step(s)) == OTA_SQL_ROW) {
		for (int i = 0; i < tb->ncols; i++)
			ota_sql_bind_text(q, i + 1, ota_sql_column_text(s, i));
		if (ota_sql_step(q) != OTA_SQL_DONE) {
			ota_say(msg, msglen, "table %s: row %lld refused by PostgreSQL: %s",
			        tb->name, (long long)tb->rows + 1, ota_sql_errmsg(dst));
			goto out;
		}
		ota_sql_reset(q);
		tb->rows++;
	}
	if (r != OTA_SQL_DONE) {
		ota_say(msg, msglen, "table %s: cannot read the SQLite database: %s", tb->name,
		        ota_sql_errmsg(src));
		goto out;
	}
	for (int i = 0; i < tb->ncols; i++) {
		char set[3 * COPY_NAME + 160];
		int64_t v;

		if (!tb->cols[i].identity)
			continue;
		snprintf(set, sizeof(set),
		         "SELECT setval(pg_get_serial_sequence('\"%s\"', '%s'), "
		         "coalesce(max(\"%s\"), 0) + 1, false) FROM \"%s\"",
		         tb->name, tb->cols[i].name, tb->cols[i].name, tb->name);
		if (!one_int(dst, set, &v)) {
			ota_say(msg, msglen, "table %s: cannot move the sequence of %s: %s",
			        tb->name, tb->cols[i].name, ota_sql_errmsg(dst));
			goto out;
		}
	}
	rc = OTA_OK;
out:
	ota_sql_finalize(q);
	ota_sql_finalize(s);
	return rc;
}

enum ota_err ota_store_copy_from_sqlite(struct ota_store *st, const char *sqlite_path,
                                        void (*each)(void *ctx, const char *table, int64_t rows),
                                        void *ctx, char *msg, size_t msglen)
{
	struct ota_sql *src = NULL, *dst = ota_store__db(st);
	struct copy_table *t = calloc(COPY_TABLES, sizeof(*t));
	enum ota_err rc = OTA_ERR_NOMEM;
	int n = 0;

	if (!t)
		goto out;
	if (ota_sql_kind(dst) != OTA_SQL_POSTGRESQL) {
		ota_say(msg, msglen, "the target store is not PostgreSQL");
		rc = OTA_ERR_CONFLICT;
		goto out;
	}
	rc = ota_sql_open_sqlite_readonly(sqlite_path, &src, msg, msglen);
	if (rc != OTA_OK)
		goto out;
	/* One read transaction: every table as of one moment. */
	if (ota_sql_exec(src, "BEGIN") != OTA_SQL_DONE) {
		ota_say(msg, msglen, "%s: %s", sqlite_path, ota_sql_errmsg(src));
		rc = OTA_ERR_DB;
		goto out;
	}
	rc = source_version(src, sqlite_path, msg, msglen);
	if (rc == OTA_OK)
		rc = source_tables(src, t, &n, msg, msglen);
	if (rc != OTA_OK)
		goto out;
	rc = ota_store_tx_begin(st); /* the store's write lock, held to the end */
	if (rc != OTA_OK) {
		ota_say(msg, msglen, "cannot begin a transaction in PostgreSQL: %s",
		        ota_sql_errmsg(dst));
		goto out;
	}
	rc = target_empty(dst, msg, msglen);
	for (int i = 0; i < n && rc == OTA_OK; i++)
		rc = match_columns(dst, &t[i], msg, msglen);
	for (int i = 0; i < n && rc == OTA_OK; i++)
		rc = copy_table(src, dst, &t[i], msg, msglen);
	if (rc != OTA_OK) {
		rc = ota_store_tx_finish(st, rc); /* rolled back */
		goto out;
	}
	rc = ota_store_tx_finish(st, rc);
	if (rc != OTA_OK) {
		ota_say(msg, msglen, "cannot commit in PostgreSQL: %s", ota_sql_errmsg(dst));
		goto out;
	}
	for (int i = 0; i < n && each; i++)
		each(ctx, t[i].name, t[i].rows);
out:
	ota_sql_close(src);
	free(t);
	return rc;
}
