/*
 * store/sql_pg.c - the PostgreSQL driver of store/sql.h, over libpq. A statement keeps its
 * text with the parameters written $1, $2, ... and runs at its first step after a bind or a
 * reset, in text format: its first run through PQexecParams, the later ones through a
 * server-side statement prepared at the second run for the parameter types bound (again when
 * they change, or on a new connection); a text of several statements without parameters
 * through PQexec. The steps then walk the rows of the result. Parameters are typed BIGINT or
 * TEXT as bound; a NULL is left for the server to infer, and a number the text skips is TEXT.
 *
 * Rules: a password in the connection string is refused (it belongs in a password file); a
 * server that does not answer a connection is out of reach after 10 s (connect_timeout, which
 * the string may set), an idle TCP peer that went silent within two minutes (keepalives). A
 * connection that went bad is reset once at the start of the next statement; a transaction
 * that was open is lost with it (ota_sql_in_tx() says false). A failure that means the
 * server is out of reach, shutting down, out of resources or failing its disk is
 * OTA_SQL_F_STORAGE and noted as a storage fault on the thread (common/err.h).
 */
#include "store/sql.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "store/sql_driver.h"

#define PG_OID_INT8 20
#define PG_OID_TEXT 25

struct pg_stmt;

struct pg_db {
	struct ota_sql base;
	PGconn *conn;
	struct pg_stmt *stmts; /* every statement of the connection, finalized with it */
	unsigned session; /* counts connections: statements prepared on an earlier one are gone */
	unsigned long names; /* names given to server-side statements */
	int64_t changes;
	enum ota_sql_failure failure;
	char errmsg[512];
};

struct pg_stmt {
	struct ota_sql_stmt base;
	struct pg_stmt *prev, *next;
	char *sql;           /* the text with $N parameters */
	bool multi;          /* several statements, no parameters: PQexec */
	int nparams;         /* the highest parameter number */
	bool *unused;        /* numbers below it that the text never names: sent as TEXT */
	char **values;       /* bound values (copies), NULL for SQL NULL; nparams of them */
	Oid *types;          /* their types: INT8, TEXT, or 0 (the server infers it) */
	char name[32];       /* its server-side statement, "" when none */
	unsigned session;    /* the connection it was prepared on */
	Oid *prepared_types; /* the parameter types it was prepared with */
	unsigned long runs;  /* executions: the first runs unprepared (one round trip) */
	bool bad_index;      /* a bind out of range since the last reset */
	bool executed;       /* ran since the last reset */
	PGresult *res;       /* its rows */
	int row, nrows;      /* the current row (-1 before the first) and how many */
};

static struct pg_db *pg_db(struct ota_sql *db)
{
	return (struct pg_db *)db;
}

static struct pg_stmt *pg_stmt(struct ota_sql_stmt *q)
{
	return (struct pg_stmt *)q;
}

__attribute__((format(printf, 3, 4))) static void set_error(struct pg_db *d, enum ota_sql_failure f,
                                                            const char *fmt, ...)
{
	va_list ap;
	size_t n;

	d->failure = f;
	va_start(ap, fmt);
	vsnprintf(d->errmsg, sizeof(d->errmsg), fmt, ap);
	va_end(ap);
	n = strlen(d->errmsg);
	while (n > 0 && (d->errmsg[n - 1] == '\n' || d->errmsg[n - 1] == ' '))
		d->errmsg[--n] = '\0';
	if (f == OTA_SQL_F_STORAGE)
		ota_storage_fault_note();
}

/* What a SQLSTATE means to the store. */
static enum ota_sql_failure failure_of(const char *state)
{
	if (!state || strlen(state) != 5)
		return OTA_SQL_F_OTHER;
	if (strcmp(state, "23505") == 0)
		return OTA_SQL_F_UNIQUE;
	if (strcmp(state, "23503") == 0)
		return OTA_SQL_F_FOREIGN_KEY;
	if (strcmp(state, "23514") == 0 || strcmp(state, "23502") == 0)
		return OTA_SQL_F_CONSTRAINT;
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
	    strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 ||
	    strcmp(state, "57P03") == 0 || strcmp(state, "58030") == 0)
		return OTA_SQL_F_STORAGE;
	return OTA_SQL_F_OTHER;
}

/* Records the failure of `res` (NULL: none came back). */
static void result_error(struct pg_db *d, const PGresult *res)
{
	enum ota_sql_failure f;

	if (!res) {
		set_error(d, OTA_SQL_F_STORAGE, "%s", PQerrorMessage(d->conn));
		return;
	}
	f = failure_of(PQresultErrorField(res, PG_DIAG_SQLSTATE));
	if (PQstatus(d->conn) != CONNECTION_OK)
		f = OTA_SQL_F_STORAGE;
	set_error(d, f, "%s",
	          *PQresultErrorMessage(res) ? PQresultErrorMessage(res) : PQerrorMessage(d->conn));
}

/* Notices ("relation exists, skipping") are not the store's business. */
static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* The session's settings, after a connect or a reset. */
static bool session_setup(struct pg_db *d)
{
	PGresult *r;
	bool ok;

	PQsetNoticeProcessor(d->conn, quiet, NULL);
	r = PQexec(d->conn, "SET client_min_messages = warning");
	ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		result_error(d, r);
	PQclear(r);
	return ok;
}

/* The connection usable, reset once if it went bad; false (a storage failure) if not. */
static bool connection_ready(struct pg_db *d)
{
	if (PQstatus(d->conn) == CONNECTION_OK)
		return true;
	PQreset(d->conn);
	if (PQstatus(d->conn) != CONNECTION_OK) {
		set_error(d, OTA_SQL_F_STORAGE, "PostgreSQL out of reach: %s",
		          PQerrorMessage(d->conn));
		return false;
	}
	d->session++;
	return session_setup(d);
}

static const struct ota_sql_driver pg_driver;

enum ota_err ota_sql_open_pg(const char *conninfo, struct ota_sql **out, char *msg, size_t msglen)
{
	/* Defaults that the connection string overrides (it comes after them, expanded): a
	 * server that does not answer is out of reach after 10 s, at start and at a reset, and
	 * a silent peer of an idle TCP connection is found within two minutes. */
	static const char *const keywords[] = {
	    "connect_timeout",  "keepalives_idle", "keepalives_interval",
	    "keepalives_count", "dbname",          NULL};
	const char *values[] = {"10", "60", "10", "6", conninfo, NULL};
	PQconninfoOption *opts, *o;
	char *perr = NULL;
	struct pg_db *d;

	*out = NULL;
	opts = PQconninfoParse(conninfo, &perr);
	if (!opts) {
		snprintf(msg, msglen, "invalid PostgreSQL connection string: %s",
		         perr ? perr : "out of memory");
		PQfreemem(perr);
		return perr ? OTA_ERR_CONFIG : OTA_ERR_NOMEM;
	}
	for (o = opts; o->keyword; o++) {
		if (strcmp(o->keyword, "password") == 0 && o->val && *o->val) {
			PQconninfoFree(opts);
			snprintf(msg, msglen,
			         "the PostgreSQL connection string holds a password: put it in a "
			         "password file instead (passfile=..., PGPASSFILE or ~/.pgpass)");
			return OTA_ERR_CONFIG;
		}
	}
	PQconninfoFree(opts);

	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(msg, msglen, "out of memory");
		return OTA_ERR_NOMEM;
	}
	d->base.drv = &pg_driver;
	d->base.kind = OTA_SQL_POSTGRESQL;
	d->conn = PQconnectdbParams(keywords, values, 1);
	if (!d->conn || PQstatus(d->conn) != CONNECTION_OK) {
		char e[400];
		size_t n;

		snprintf(e, sizeof(e), "%s", d->conn ? PQerrorMessage(d->conn) : "out of memory");
		n = strlen(e);
		while (n > 0 && (e[n - 1] == '\n' || e[n - 1] == ' '))
			e[--n] = '\0';
		snprintf(msg, msglen, "cannot connect to PostgreSQL: %s", e);
		PQfinish(d->conn);
		free(d);
		return OTA_ERR_DB;
	}
	if (!session_setup(d)) {
		snprintf(msg, msglen, "cannot set up the PostgreSQL session: %s", d->errmsg);
		PQfinish(d->conn);
		free(d);
		return OTA_ERR_DB;
	}
	*out = &d->base;
	return OTA_OK;
}

static void pg_finalize(struct ota_sql_stmt *q);

static void pg_close(struct ota_sql *db)
{
	struct pg_db *d = pg_db(db);

	while (d->stmts) {
		d->stmts->name[0] = '\0'; /* its server-side statement ends with the session */
		pg_finalize(&d->stmts->base);
	}
	PQfinish(d->conn);
	free(d);
}

/*
 * Whether `sql` commits when no transaction is open: PostgreSQL only warns, SQLite refuses, and
 * so does this driver, so that a transaction lost with its connection never reads as committed.
 */
static bool commit_outside_tx(struct pg_db *d, const char *sql)
{
	while (*sql == ' ' || *sql == '\t' || *sql == '\n')
		sql++;
	if (strncasecmp(sql, "COMMIT", 6) != 0 && strncasecmp(sql, "END", 3) != 0)
		return false;
	if (PQtransactionStatus(d->conn) != PQTRANS_IDLE)
		return false;
	set_error(d, OTA_SQL_F_OTHER,
	          "cannot commit: no transaction is open (lost with the "
	          "connection, or never begun)");
	return true;
}

static int pg_exec(struct ota_sql *db, const char *script)
{
	struct pg_db *d = pg_db(db);
	PGresult *r;
	int rc;

	d->failure = OTA_SQL_F_NONE;
	d->errmsg[0] = '\0';
	if (!connection_ready(d) || commit_outside_tx(d, script))
		return OTA_SQL_ERROR;
	r = PQexec(d->conn, script);
	if (r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)) {
		rc = OTA_SQL_DONE;
	} else {
		result_error(d, r);
		rc = OTA_SQL_ERROR;
	}
	PQclear(r);
	return rc;
}

/*
 * Writes `sql` with $N parameters into `out` (room for six times its length and some): ?N
 * becomes $N, a plain ? the next number; string literals, quoted identifiers and comments are
 * copied as they are. Returns the highest parameter number, -1 when both kinds are mixed or a
 * number is out of range; *multi says whether a statement follows a semicolon; used[N - 1] is
 * set for each number named when used is not NULL (room for the highest).
 */
static int translate(const char *sql, char *out, bool *multi, bool *used)
{
	int plain = 0, numbered = 0, max = 0;
	bool after_semicolon = false;
	const char *p = sql;

	*multi = false;
	while (*p) {
		char c = *p;

		if (c == '\'' || c == '"') {
			const char *end = strchr(p + 1, c);
			size_t n = end ? (size_t)(end - p) + 1 : strlen(p);

			memcpy(out, p, n);
			out += n;
			p += n;
			if (after_semicolon)
				*multi = true;
			continue;
		}
		if (c == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				*out++ = *p++;
			continue;
		}
		if (c == '/' && p[1] == '*') {
			const char *end = strstr(p + 2, "*/");
			size_t n = end ? (size_t)(end - p) + 2 : strlen(p);

			memcpy(out, p, n);
			out += n;
			p += n;
			continue;
		}
		if (c == ';') {
			after_semicolon = true;
		} else if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && after_semicolon) {
			*multi = true;
		}
		if (c == '?') {
			p++;
			if (*p >= '0' && *p <= '9') {
				long v = strtol(p, (char **)&p, 10);

				if (v < 1 || v > 65535)
					return -1;
				numbered = 1;
				if (v > max)
					max = (int)v;
				if (used)
					used[v - 1] = true;
				out += sprintf(out, "$%ld", v);
			} else {
				plain++;
				max = plain;
				if (used)
					used[plain - 1] = true;
				out += sprintf(out, "$%d", plain);
			}
			if (plain && numbered)
				return -1;
			continue;
		}
		*out++ = *p++;
	}
	*out = '\0';
	return max;
}

static struct ota_sql_stmt *pg_prepare(struct ota_sql *db, const char *sql)
{
	struct pg_db *d = pg_db(db);
	struct pg_stmt *s = calloc(1, sizeof(*s));
	size_t len = strlen(sql);

	if (!s || !(s->sql = malloc(len * 6 + 16))) {
		free(s);
		set_error(d, OTA_SQL_F_OTHER, "out of memory");
		return NULL;
	}
	s->nparams = translate(sql, s->sql, &s->multi, NULL);
	if (s->nparams < 0) {
		free(s->sql);
		free(s);
		set_error(d, OTA_SQL_F_OTHER,
		          "parameters both numbered and plain, or out of range: %s", sql);
		return NULL;
	}
	if (s->nparams > 0) {
		s->values = calloc((size_t)s->nparams, sizeof(*s->values));
		s->types = calloc((size_t)s->nparams, sizeof(*s->types));
		s->unused = calloc((size_t)s->nparams, sizeof(*s->unused));
		s->prepared_types = calloc((size_t)s->nparams, sizeof(*s->prepared_types));
		if (!s->values || !s->types || !s->unused || !s->prepared_types) {
			free(s->values);
			free(s->types);
			free(s->unused);
			free(s->prepared_types);
			free(s->sql);
			free(s);
			set_error(d, OTA_SQL_F_OTHER, "out of memory");
			return NULL;
		}
	}
	/* Again, to learn which numbers the text names: ?1 and ?3 leave 2 unnamed, a type the
	 * server cannot infer. */
	if (s->nparams > 0) {
		(void)translate(sql, s->sql, &s->multi, s->unused);
		for (int i = 0; i < s->nparams; i++) {
			s->unused[i] = !s->unused[i];
			s->types[i] = s->unused[i] ? PG_OID_TEXT : 0;
		}
	}
	s->base.db = db;
	s->row = -1;
	s->next = d->stmts;
	if (d->stmts)
		d->stmts->prev = s;
	d->stmts = s;
	return &s->base;
}

static void clear_result(struct pg_stmt *s)
{
	PQclear(s->res);
	s->res = NULL;
	s->row = -1;
	s->nrows = 0;
}

static void pg_reset(struct ota_sql_stmt *q)
{
	struct pg_stmt *s = pg_stmt(q);

	clear_result(s);
	s->executed = false;
	s->bad_index = false;
	for (int i = 0; i < s->nparams; i++) {
		free(s->values[i]);
		s->values[i] = NULL;
		s->types[i] = s->unused[i] ? PG_OID_TEXT : 0;
	}
}

/* Drops the statement's server-side statement, if it has one on this connection. */
static void forget(struct pg_stmt *s)
{
	struct pg_db *d = pg_db(s->base.db);
	char sql[48];

	if (!s->name[0])
		return;
	if (s->session == d->session && PQstatus(d->conn) == CONNECTION_OK &&
	    PQtransactionStatus(d->conn) != PQTRANS_INERROR) {
		snprintf(sql, sizeof(sql), "DEALLOCATE %s", s->name);
		PQclear(PQexec(d->conn, sql));
	}
	s->name[0] = '\0';
}

static void pg_finalize(struct ota_sql_stmt *q)
{
	struct pg_stmt *s = pg_stmt(q);
	struct pg_db *d = pg_db(q->db);

	pg_reset(q);
	if (s->prev)
		s->prev->next = s->next;
	else
		d->stmts = s->next;
	if (s->next)
		s->next->prev = s->prev;
	forget(s);
	free(s->values);
	free(s->types);
	free(s->unused);
	free(s->prepared_types);
	free(s->sql);
	free(s);
}

/* Binds a copy of `v` (NULL: SQL NULL) of type `type` to parameter i. */
static void bind(struct pg_stmt *s, int i, const char *v, size_t len, Oid type)
{
	char *copy = NULL;

	if (i < 1 || i > s->nparams) {
		s->bad_index = true;
		return;
	}
	if (v) {
		copy = malloc(len + 1);
		if (!copy) {
			s->bad_index = true;
			return;
		}
		memcpy(copy, v, len);
		copy[len] = '\0';
	}
	free(s->values[i - 1]);
	s->values[i - 1] = copy;
	s->types[i - 1] = v ? type : s->unused[i - 1] ? PG_OID_TEXT : 0;
}

static void pg_bind_int64(struct ota_sql_stmt *q, int i, int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	bind(pg_stmt(q), i, buf, strlen(buf), PG_OID_INT8);
}

static void pg_bind_textn(struct ota_sql_stmt *q, int i, const char *s, size_t len)
{
	bind(pg_stmt(q), i, s, len, PG_OID_TEXT);
}

static void pg_bind_null(struct ota_sql_stmt *q, int i)
{
	bind(pg_stmt(q), i, NULL, 0, 0);
}

/* Whether a command tag reports rows changed ("INSERT 0 3", "UPDATE 2", "DELETE 1"). */
static bool changes_rows(const char *tag)
{
	return strncmp(tag, "INSERT", 6) == 0 || strncmp(tag, "UPDATE", 6) == 0 ||
	       strncmp(tag, "DELETE", 6) == 0 || strncmp(tag, "MERGE", 5) == 0;
}

/*
 * Whether the statement has a server-side statement for its parameter types on this
 * connection, prepared now if not (once per connection and types: a NULL bound where a value
 * was before changes them). False when preparing failed: then the text runs unprepared, and
 * reports its own error.
 */
static bool prepared(struct pg_stmt *s)
{
	struct pg_db *d = pg_db(s->base.db);
	size_t types = (size_t)s->nparams * sizeof(Oid);
	PGresult *r;

	if (s->name[0] && s->session == d->session &&
	    (types == 0 || memcmp(s->types, s->prepared_types, types) == 0))
		return true;
	if (s->session != d->session)
		s->name[0] = '\0'; /* gone with its connection */
	forget(s);
	snprintf(s->name, sizeof(s->name), "ota_%lu", ++d->names);
	r = PQprepare(d->conn, s->name, s->sql, s->nparams, s->types);
	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
		PQclear(r);
		s->name[0] = '\0';
		return false;
	}
	PQclear(r);
	s->session = d->session;
	if (types)
		memcpy(s->prepared_types, s->types, types);
	return true;
}

/* Runs the statement: its rows ready, or OTA_SQL_ERROR. */
static int run(struct pg_stmt *s)
{
	struct pg_db *d = pg_db(s->base.db);
	PGresult *r;
	ExecStatusType st;

	s->executed = true;
	if (s->bad_index) {
		set_error(d, OTA_SQL_F_OTHER, "a parameter number out of range, or out of memory");
		return OTA_SQL_ERROR;
	}
	if (!connection_ready(d) || commit_outside_tx(d, s->sql))
		return OTA_SQL_ERROR;
	if (s->nparams == 0 && s->multi)
		r = PQexec(d->conn, s->sql);
	else if (s->runs++ > 0 && prepared(s))
		r = PQexecPrepared(d->conn, s->name, s->nparams, (const char *const *)s->values,
		                   NULL, NULL, 0);
	else
		r = PQexecParams(d->conn, s->sql, s->nparams, s->types,
		                 (const char *const *)s->values, NULL, NULL, 0);
	st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		result_error(d, r);
		PQclear(r);
		return OTA_SQL_ERROR;
	}
	if (changes_rows(PQcmdStatus(r))) {
		const char *n = PQcmdTuples(r);

		d->changes = *n ? strtoll(n, NULL, 10) : 0;
	}
	s->res = r;
	s->row = -1;
	s->nrows = st == PGRES_TUPLES_OK ? PQntuples(r) : 0;
	return OTA_SQL_DONE;
}

static int pg_step(struct ota_sql_stmt *q)
{
	struct pg_stmt *s = pg_stmt(q);
	struct pg_db *d = pg_db(q->db);

	if (!s->executed) {
		d->failure = OTA_SQL_F_NONE;
		d->errmsg[0] = '\0';
		if (run(s) == OTA_SQL_ERROR)
			return OTA_SQL_ERROR;
	}
	if (s->row < s->nrows)
		s->row++;
	return s->row < s->nrows ? OTA_SQL_ROW : OTA_SQL_DONE;
}

/* The current row's column, or NULL when NULL or out of range. */
static const char *value(struct pg_stmt *s, int col)
{
	if (!s->res || s->row < 0 || s->row >= s->nrows || col < 0 || col >= PQnfields(s->res) ||
	    PQgetisnull(s->res, s->row, col))
		return NULL;
	return PQgetvalue(s->res, s->row, col);
}

static int64_t pg_column_int64(struct ota_sql_stmt *q, int col)
{
	const char *v = value(pg_stmt(q), col);

	if (!v)
		return 0;
	if (strcmp(v, "t") == 0)
		return 1;
	if (strcmp(v, "f") == 0)
		return 0;
	return strtoll(v, NULL, 10);
}

static const char *pg_column_text(struct ota_sql_stmt *q, int col)
{
	return value(pg_stmt(q), col);
}

static bool pg_column_is_null(struct ota_sql_stmt *q, int col)
{
	return value(pg_stmt(q), col) == NULL;
}

static int64_t pg_changes(struct ota_sql *db)
{
	return pg_db(db)->changes;
}

static const char *pg_errmsg(struct ota_sql *db)
{
	return pg_db(db)->errmsg;
}

static enum ota_sql_failure pg_failure(struct ota_sql *db)
{
	return pg_db(db)->failure;
}

static bool pg_in_tx(struct ota_sql *db)
{
	struct pg_db *d = pg_db(db);

	if (PQstatus(d->conn) != CONNECTION_OK)
		return false;
	switch (PQtransactionStatus(d->conn)) {
	case PQTRANS_INTRANS:
	case PQTRANS_INERROR:
	case PQTRANS_ACTIVE:
		return true;
	default:
		return false;
	}
}

static enum ota_err pg_listen(struct ota_sql *db, const char *channel)
{
	struct pg_db *d = pg_db(db);
	char *id = PQescapeIdentifier(d->conn, channel, strlen(channel));
	char sql[128];

	if (!id)
		return OTA_ERR_NOMEM;
	snprintf(sql, sizeof(sql), "LISTEN %s", id);
	PQfreemem(id);
	return pg_exec(db, sql) == OTA_SQL_DONE ? OTA_OK : OTA_ERR_DB;
}

static int pg_notified(struct ota_sql *db, int timeout_ms, char *buf, size_t cap)
{
	struct pg_db *d = pg_db(db);
	PGnotify *n;

	for (int waited = 0;; waited = 1) {
		if (PQconsumeInput(d->conn) != 1 || PQstatus(d->conn) != CONNECTION_OK)
			return -1;
		if ((n = PQnotifies(d->conn)) != NULL) {
			snprintf(buf, cap, "%s", n->extra ? n->extra : "");
			PQfreemem(n);
			return 1;
		}
		if (waited)
			return 0;
		struct pollfd p = {.fd = PQsocket(d->conn), .events = POLLIN};
		if (p.fd < 0)
			return -1;
		if (poll(&p, 1, timeout_ms) < 0 && errno != EINTR)
			return -1;
	}
}

static const struct ota_sql_driver pg_driver = {
    .close = pg_close,
    .exec = pg_exec,
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .bind_int64 = pg_bind_int64,
    .bind_textn = pg_bind_textn,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .column_int64 = pg_column_int64,
    .column_text = pg_column_text,
    .column_is_null = pg_column_is_null,
    .reset = pg_reset,
    .changes = pg_changes,
    .errmsg = pg_errmsg,
    .failure = pg_failure,
    .in_tx = pg_in_tx,
    .listen = pg_listen,
    .notified = pg_notified,
};
