/*
 * test_sql_pg.c - the PostgreSQL driver of store/sql.h against a real private server
 * (tests/unit/sql_pg.sh starts it: OTA_PG_CONNINFO and OTA_PG_CONNINFO2 name two empty
 * databases, OTA_PG_DIR its folder for tests/pg_server.sh restart): the embedded schema
 * applies to both, parameters (numbered, reused, plain, beside quoted ? signs), integers,
 * text, NULL and booleans read back, rows changed, constraint failures mapped, transactions
 * seen through an error and a savepoint, passwords and unreachable servers refused at open,
 * and a server restart under an open connection survived by reconnecting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "store/migrations.h"
#include "store/sql.h"

static const char *env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v) {
		fprintf(stderr, "%s is not set: run through tests/unit/sql_pg.sh\n", name);
		exit(1);
	}
	return v;
}

static struct ota_sql *open_db(const char *var)
{
	struct ota_sql *db = NULL;
	char msg[512];

	if (ota_sql_open_pg(env(var), &db, msg, sizeof(msg)) != OTA_OK) {
		fprintf(stderr, "%s\n", msg);
		return NULL;
	}
	return db;
}

/* Applies every embedded PostgreSQL migration, each in its own transaction. */
static void migrate(struct ota_sql *db)
{
	for (unsigned i = 0; i < ota_migrations_pg_count; i++) {
		assert_int_equal(ota_sql_exec(db, "BEGIN"), OTA_SQL_DONE);
		if (ota_sql_exec(db, ota_migrations_pg[i].sql) != OTA_SQL_DONE)
			fail_msg("%s: %s", ota_migrations_pg[i].name, ota_sql_errmsg(db));
		assert_int_equal(ota_sql_exec(db, "COMMIT"), OTA_SQL_DONE);
	}
}

/* Runs one statement without parameters; returns its step result. */
static int run1(struct ota_sql *db, const char *sql)
{
	struct ota_sql_stmt *q = ota_sql_prepare(db, sql);
	int rc;

	assert_non_null(q);
	rc = ota_sql_step(q);
	ota_sql_finalize(q);
	return rc;
}

/* The single integer `sql` returns. */
static int64_t int1(struct ota_sql *db, const char *sql)
{
	struct ota_sql_stmt *q = ota_sql_prepare(db, sql);
	int64_t v;

	assert_non_null(q);
	if (ota_sql_step(q) != OTA_SQL_ROW)
		fail_msg("%s: %s", sql, ota_sql_errmsg(db));
	v = ota_sql_column_int64(q, 0);
	assert_int_equal(ota_sql_step(q), OTA_SQL_DONE);
	ota_sql_finalize(q);
	return v;
}

static int group_setup(void **state)
{
	struct ota_sql *db = open_db("OTA_PG_CONNINFO");

	if (!db)
		return -1;
	migrate(db);
	*state = db;
	return 0;
}

static int group_teardown(void **state)
{
	ota_sql_close(*state);
	return 0;
}

/* The schema applied whole at the group's setup; it applies to a second database too, and
 * ends at the SQLite set's number. */
static void test_schema_applies(void **state)
{
	struct ota_sql *db = *state, *db2 = open_db("OTA_PG_CONNINFO2");

	assert_true(ota_migrations_pg_count >= 1);
	assert_int_equal(ota_migrations_pg[ota_migrations_pg_count - 1].version,
	                 ota_migrations[ota_migrations_count - 1].version);
	assert_int_equal(int1(db, "SELECT count(*) FROM information_schema.tables "
	                          "WHERE table_schema = 'public'"),
	                 24);
	assert_non_null(db2);
	migrate(db2);
	assert_int_equal(int1(db2, "SELECT count(*) FROM information_schema.tables "
	                           "WHERE table_schema = 'public'"),
	                 int1(db, "SELECT count(*) FROM information_schema.tables "
	                          "WHERE table_schema = 'public'"));
	assert_int_equal(int1(db2, "SELECT count(*) FROM pg_indexes WHERE indexname IN "
	                           "('deployments_one_active', 'rollout_members_regressed', "
	                           "'audit_by_release', 'delta_offers_by_delta')"),
	                 4);
	/* Applying it again fails: the tables exist. */
	assert_int_equal(ota_sql_exec(db2, ota_migrations_pg[0].sql), OTA_SQL_ERROR);
	ota_sql_close(db2);
}

static void test_types_round_trip(void **state)
{
	struct ota_sql *db = *state;
	struct ota_sql_stmt *ins, *sel;
	const char *odd = "it's a ?1 \"quoted\" ? text; with ; semicolons";

	assert_int_equal(ota_sql_exec(db, "CREATE TEMP TABLE rt (k BIGINT PRIMARY KEY, s TEXT, "
	                                  "n BIGINT)"),
	                 OTA_SQL_DONE);
	ins = ota_sql_prepare(db, "INSERT INTO rt (k, s, n) VALUES (?1, ?2, ?3)");
	assert_non_null(ins);
	ota_sql_bind_int64(ins, 1, INT64_MIN);
	ota_sql_bind_text(ins, 2, odd);
	ota_sql_bind_int64(ins, 3, INT64_MAX);
	assert_int_equal(ota_sql_step(ins), OTA_SQL_DONE);
	ota_sql_reset(ins);
	ota_sql_bind_int64(ins, 1, 9007199254740993LL);
	ota_sql_bind_textn(ins, 2, "abcdef", 3);
	ota_sql_bind_null(ins, 3);
	assert_int_equal(ota_sql_step(ins), OTA_SQL_DONE);
	ota_sql_reset(ins);
	ota_sql_bind_int64(ins, 1, 3);
	ota_sql_bind_text(ins, 2, NULL); /* NULL text binds NULL; parameter 3 left unbound */
	assert_int_equal(ota_sql_step(ins), OTA_SQL_DONE);

	sel = ota_sql_prepare(db, "SELECT k, s, n FROM rt ORDER BY k");
	assert_non_null(sel);
	assert_int_equal(ota_sql_step(sel), OTA_SQL_ROW);
	assert_true(ota_sql_column_int64(sel, 0) == INT64_MIN);
	assert_string_equal(ota_sql_column_text(sel, 1), odd);
	assert_true(ota_sql_column_int64(sel, 2) == INT64_MAX);
	assert_false(ota_sql_column_is_null(sel, 2));
	assert_int_equal(ota_sql_step(sel), OTA_SQL_ROW);
	assert_int_equal(ota_sql_column_int64(sel, 0), 3);
	assert_true(ota_sql_column_is_null(sel, 1));
	assert_null(ota_sql_column_text(sel, 1));
	assert_true(ota_sql_column_is_null(sel, 2));
	assert_int_equal(ota_sql_column_int64(sel, 2), 0);
	assert_int_equal(ota_sql_step(sel), OTA_SQL_ROW);
	assert_true(ota_sql_column_int64(sel, 0) == 9007199254740993LL);
	assert_string_equal(ota_sql_column_text(sel, 1), "abc");
	assert_true(ota_sql_column_is_null(sel, 2));
	assert_null(ota_sql_column_text(sel, 7)); /* no such column */
	assert_int_equal(ota_sql_step(sel), OTA_SQL_DONE);
	/* Reset runs it again. */
	ota_sql_reset(sel);
	assert_int_equal(ota_sql_step(sel), OTA_SQL_ROW);
	assert_true(ota_sql_column_int64(sel, 0) == INT64_MIN);
	ota_sql_finalize(sel);
	ota_sql_finalize(ins);
	assert_int_equal(ota_sql_exec(db, "DROP TABLE rt"), OTA_SQL_DONE);
}

static void test_parameters(void **state)
{
	struct ota_sql *db = *state;
	struct ota_sql_stmt *q;

	/* ?1 twice, ?2 twice, a ? inside a literal and a quoted identifier left alone. */
	q = ota_sql_prepare(db, "SELECT ?1 + ?1, ?2 || '?' || ?2, ?1 * 0 AS \"a?b\"");
	assert_non_null(q);
	ota_sql_bind_int64(q, 1, 21);
	ota_sql_bind_text(q, 2, "ab");
	assert_int_equal(ota_sql_step(q), OTA_SQL_ROW);
	assert_int_equal(ota_sql_column_int64(q, 0), 42);
	assert_string_equal(ota_sql_column_text(q, 1), "ab?ab");
	ota_sql_finalize(q);

	/* Plain ? numbered in order. */
	q = ota_sql_prepare(db, "SELECT ? - ?, ?");
	assert_non_null(q);
	ota_sql_bind_int64(q, 1, 10);
	ota_sql_bind_int64(q, 2, 3);
	ota_sql_bind_text(q, 3, "third");
	assert_int_equal(ota_sql_step(q), OTA_SQL_ROW);
	assert_int_equal(ota_sql_column_int64(q, 0), 7);
	assert_string_equal(ota_sql_column_text(q, 1), "third");
	assert_int_equal(ota_sql_step(q), OTA_SQL_DONE);
	ota_sql_finalize(q);

	/* A number the text skips may be bound or not, to NULL or a value. */
	q = ota_sql_prepare(db, "SELECT ?3 || 'x', ?1 + 1");
	assert_non_null(q);
	ota_sql_bind_int64(q, 1, 1);
	ota_sql_bind_null(q, 2);
	ota_sql_bind_text(q, 3, "y");
	assert_int_equal(ota_sql_step(q), OTA_SQL_ROW);
	assert_string_equal(ota_sql_column_text(q, 0), "yx");
	assert_int_equal(ota_sql_column_int64(q, 1), 2);
	ota_sql_reset(q);
	ota_sql_bind_int64(q, 1, 5);
	ota_sql_bind_text(q, 3, "z");
	assert_int_equal(ota_sql_step(q), OTA_SQL_ROW);
	assert_int_equal(ota_sql_column_int64(q, 1), 6);
	ota_sql_finalize(q);

	/* A parameter bound NULL has no type: where nothing else gives it one (?1 IS NULL), the
	 * store's SQL casts it, which both backends read the same way. */
	q = ota_sql_prepare(db, "SELECT CAST(?1 AS TEXT) IS NULL OR ?1 = 'a'");
	assert_non_null(q);
	ota_sql_bind_null(q, 1);
	assert_int_equal(ota_sql_step(q), OTA_SQL_ROW);
	assert_int_equal(ota_sql_column_int64(q, 0), 1);
	ota_sql_reset(q);
	ota_sql_bind_text(q, 1, "b");
	assert_int_equal(ota_sql_step(q), OTA_SQL_ROW);
	assert_int_equal(ota_sql_column_int64(q, 0), 0);
	ota_sql_finalize(q);

	/* A statement run with other types than before (prepared on the server for the first). */
	q = ota_sql_prepare(db, "SELECT CAST(?1 AS TEXT)");
	assert_non_null(q);
	for (int i = 0; i < 3; i++) {
		ota_sql_bind_int64(q, 1, 42);
		assert_int_equal(ota_sql_step(q), OTA_SQL_ROW);
		assert_string_equal(ota_sql_column_text(q, 0), "42");
		ota_sql_reset(q);
	}
	ota_sql_bind_text(q, 1, "forty-two");
	assert_int_equal(ota_sql_step(q), OTA_SQL_ROW);
	assert_string_equal(ota_sql_column_text(q, 0), "forty-two");
	ota_sql_finalize(q);

	/* Both kinds in one text are refused. */
	assert_null(ota_sql_prepare(db, "SELECT ?1, ?"));
	assert_true(strlen(ota_sql_errmsg(db)) > 0);

	/* A bind past the parameters fails the statement. */
	q = ota_sql_prepare(db, "SELECT ?1");
	assert_non_null(q);
	ota_sql_bind_int64(q, 2, 1);
	assert_int_equal(ota_sql_step(q), OTA_SQL_ERROR);
	ota_sql_finalize(q);
}

static void test_booleans(void **state)
{
	struct ota_sql *db = *state;
	struct ota_sql_stmt *q =
	    ota_sql_prepare(db, "SELECT ?1 > 5, EXISTS (SELECT 1 WHERE false)");

	assert_non_null(q);
	ota_sql_bind_int64(q, 1, 6);
	assert_int_equal(ota_sql_step(q), OTA_SQL_ROW);
	assert_int_equal(ota_sql_column_int64(q, 0), 1);
	assert_int_equal(ota_sql_column_int64(q, 1), 0);
	assert_string_equal(ota_sql_column_text(q, 0), "t");
	ota_sql_finalize(q);
}

static void test_changes(void **state)
{
	struct ota_sql *db = *state;
	struct ota_sql_stmt *q;

	assert_int_equal(ota_sql_exec(db, "CREATE TEMP TABLE ch (k BIGINT)"), OTA_SQL_DONE);
	assert_int_equal(run1(db, "INSERT INTO ch VALUES (1), (2), (3)"), OTA_SQL_DONE);
	assert_int_equal(ota_sql_changes(db), 3);
	q = ota_sql_prepare(db, "UPDATE ch SET k = k + 10 WHERE k >= ?1");
	assert_non_null(q);
	ota_sql_bind_int64(q, 1, 2);
	assert_int_equal(ota_sql_step(q), OTA_SQL_DONE);
	assert_int_equal(ota_sql_changes(db), 2);
	ota_sql_finalize(q);
	/* A query changes nothing. */
	assert_int_equal(int1(db, "SELECT count(*) FROM ch"), 3);
	assert_int_equal(ota_sql_changes(db), 2);
	assert_int_equal(run1(db, "DELETE FROM ch WHERE k > 100"), OTA_SQL_DONE);
	assert_int_equal(ota_sql_changes(db), 0);
	assert_int_equal(run1(db, "DELETE FROM ch"), OTA_SQL_DONE);
	assert_int_equal(ota_sql_changes(db), 3);
	assert_int_equal(ota_sql_exec(db, "DROP TABLE ch"), OTA_SQL_DONE);
}

/* Runs `sql` expecting a failure of kind `f` and no storage fault. */
static void expect_failure(struct ota_sql *db, const char *sql, enum ota_sql_failure f)
{
	(void)ota_storage_fault_take();
	if (run1(db, sql) != OTA_SQL_ERROR)
		fail_msg("%s: succeeded", sql);
	if (ota_sql_failure(db) != f)
		fail_msg("%s: failure %d, not %d (%s)", sql, ota_sql_failure(db), f,
		         ota_sql_errmsg(db));
	assert_true(strlen(ota_sql_errmsg(db)) > 0);
	assert_false(ota_storage_fault_take());
}

static void test_failures_mapped(void **state)
{
	struct ota_sql *db = *state;

	assert_int_equal(
	    run1(db, "INSERT INTO images (sha256, size, created_at) VALUES ('aa', 1, 1)"),
	    OTA_SQL_DONE);
	assert_int_equal(ota_sql_failure(db), OTA_SQL_F_NONE);
	expect_failure(db, "INSERT INTO images (sha256, size, created_at) VALUES ('aa', 2, 2)",
	               OTA_SQL_F_UNIQUE);
	expect_failure(db,
	               "INSERT INTO releases (id, name, version, security_version, image_sha256, "
	               "image_size, image_format, manifest_created, envelope, created_at) VALUES "
	               "('r', 'n', '1', 0, 'nope', 1, 'raw', 1, '{}', 1)",
	               OTA_SQL_F_FOREIGN_KEY);
	expect_failure(db, "INSERT INTO images (sha256, size, created_at) VALUES ('bb', -1, 1)",
	               OTA_SQL_F_CONSTRAINT);
	expect_failure(db, "INSERT INTO images (sha256, size, created_at) VALUES ('cc', 1, NULL)",
	               OTA_SQL_F_CONSTRAINT);
	/* The audit log's triggers refuse as constraints, like SQLite's RAISE(ABORT). */
	expect_failure(db,
	               "INSERT INTO audit_log (seq, at, actor, action, prev, hash) "
	               "VALUES (5, 1, 'a', 'x', 'p', 'h')",
	               OTA_SQL_F_CONSTRAINT);
	expect_failure(db, "SELEC 1", OTA_SQL_F_OTHER);
	/* A success clears the failure. */
	assert_int_equal(int1(db, "SELECT 1"), 1);
	assert_int_equal(ota_sql_failure(db), OTA_SQL_F_NONE);
	assert_int_equal(run1(db, "DELETE FROM images WHERE sha256 = 'aa'"), OTA_SQL_DONE);
}

static void test_transactions(void **state)
{
	struct ota_sql *db = *state;
	struct ota_sql_stmt *q;

	assert_false(ota_sql_in_tx(db));
	assert_int_equal(ota_sql_exec(db, "BEGIN"), OTA_SQL_DONE);
	assert_true(ota_sql_in_tx(db));
	assert_int_equal(ota_sql_exec(db, "COMMIT"), OTA_SQL_DONE);
	assert_false(ota_sql_in_tx(db));
	/* A commit with no transaction is an error, as in SQLite (PostgreSQL only warns). */
	assert_int_equal(ota_sql_exec(db, "COMMIT"), OTA_SQL_ERROR);
	assert_int_equal(run1(db, " commit"), OTA_SQL_ERROR);
	assert_non_null(strstr(ota_sql_errmsg(db), "no transaction"));

	/* A statement run (and so prepared on the server) inside a transaction rolled back runs
	 * again after it. */
	assert_int_equal(ota_sql_exec(db, "BEGIN"), OTA_SQL_DONE);
	q = ota_sql_prepare(db, "SELECT ?1 + 0");
	assert_non_null(q);
	for (int i = 0; i < 3; i++) {
		ota_sql_bind_int64(q, 1, i);
		assert_int_equal(ota_sql_step(q), OTA_SQL_ROW);
		assert_int_equal(ota_sql_column_int64(q, 0), i);
		ota_sql_reset(q);
	}
	assert_int_equal(ota_sql_exec(db, "ROLLBACK"), OTA_SQL_DONE);
	ota_sql_bind_int64(q, 1, 7);
	assert_int_equal(ota_sql_step(q), OTA_SQL_ROW);
	assert_int_equal(ota_sql_column_int64(q, 0), 7);
	ota_sql_finalize(q);

	/* Several statements in one text without parameters: the last one's rows. */
	q = ota_sql_prepare(db, "BEGIN; SELECT pg_advisory_xact_lock(1); SELECT 7");
	assert_non_null(q);
	assert_int_equal(ota_sql_step(q), OTA_SQL_ROW);
	assert_int_equal(ota_sql_column_int64(q, 0), 7);
	ota_sql_finalize(q);
	assert_true(ota_sql_in_tx(db));

	/* An error inside: the transaction stays (aborted) until a rollback to the savepoint. */
	assert_int_equal(ota_sql_exec(db, "SAVEPOINT s"), OTA_SQL_DONE);
	assert_int_equal(
	    run1(db, "INSERT INTO images (sha256, size, created_at) VALUES ('x', 1, 1)"),
	    OTA_SQL_DONE);
	assert_int_equal(
	    run1(db, "INSERT INTO images (sha256, size, created_at) VALUES ('x', 1, 1)"),
	    OTA_SQL_ERROR);
	assert_int_equal(ota_sql_failure(db), OTA_SQL_F_UNIQUE);
	assert_true(ota_sql_in_tx(db));
	assert_int_equal(run1(db, "SELECT 1"), OTA_SQL_ERROR); /* aborted */
	assert_int_equal(ota_sql_failure(db), OTA_SQL_F_OTHER);
	assert_int_equal(ota_sql_exec(db, "ROLLBACK TO SAVEPOINT s"), OTA_SQL_DONE);
	assert_true(ota_sql_in_tx(db));
	assert_int_equal(int1(db, "SELECT count(*) FROM images WHERE sha256 = 'x'"), 0);
	assert_int_equal(
	    run1(db, "INSERT INTO images (sha256, size, created_at) VALUES ('y', 1, 1)"),
	    OTA_SQL_DONE);
	assert_int_equal(ota_sql_exec(db, "COMMIT"), OTA_SQL_DONE);
	assert_false(ota_sql_in_tx(db));
	assert_int_equal(int1(db, "SELECT count(*) FROM images WHERE sha256 = 'y'"), 1);
	assert_int_equal(run1(db, "DELETE FROM images WHERE sha256 = 'y'"), OTA_SQL_DONE);
}

static void test_password_refused(void **state)
{
	static const char *const withpw[] = {
	    "host=/nonexistent user=ota password=secret dbname=x",
	    "postgresql://ota:secret@localhost/x",
	};
	struct ota_sql *db = (struct ota_sql *)1;
	char msg[512];

	(void)state;
	for (size_t i = 0; i < sizeof(withpw) / sizeof(withpw[0]); i++) {
		assert_int_equal(ota_sql_open_pg(withpw[i], &db, msg, sizeof(msg)), OTA_ERR_CONFIG);
		assert_null(db);
		assert_non_null(strstr(msg, "password file"));
		assert_null(strstr(msg, "secret"));
	}
	/* An empty password is no password: this one fails at connecting. */
	assert_int_equal(ota_sql_open_pg("host=/nonexistent password='' user=ota dbname=x", &db,
	                                 msg, sizeof(msg)),
	                 OTA_ERR_DB);
	/* A malformed string is refused as such. */
	assert_int_equal(ota_sql_open_pg("host='unterminated", &db, msg, sizeof(msg)),
	                 OTA_ERR_CONFIG);
	assert_non_null(strstr(msg, "connection string"));
}

static void test_unreachable(void **state)
{
	struct ota_sql *db = (struct ota_sql *)1;
	char msg[512];

	(void)state;
	assert_int_equal(ota_sql_open_pg("host=/nonexistent port=1 user=ota dbname=x "
	                                 "connect_timeout=2",
	                                 &db, msg, sizeof(msg)),
	                 OTA_ERR_DB);
	assert_null(db);
	assert_non_null(strstr(msg, "cannot connect to PostgreSQL"));
	assert_non_null(strstr(msg, "/nonexistent"));
}

/* tests/pg_server.sh restart of the test's server. */
static void restart_server(void)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "'%s' restart '%s'", env("OTA_PG_SCRIPT"), env("OTA_PG_DIR"));
	assert_int_equal(system(cmd), 0);
}

static void test_reconnects(void **state)
{
	struct ota_sql *db = *state;
	struct ota_sql_stmt *q = ota_sql_prepare(db, "SELECT ?1 + 1");
	int rc;

	assert_non_null(q);
	for (int i = 0; i < 2; i++) { /* the second run prepares it on the server */
		ota_sql_bind_int64(q, 1, 1);
		assert_int_equal(ota_sql_step(q), OTA_SQL_ROW);
		ota_sql_reset(q);
	}

	/* Restarted inside a transaction: the statement after it fails as storage, the
	 * transaction is gone, and the next one runs on a new connection. */
	assert_int_equal(ota_sql_exec(db, "BEGIN"), OTA_SQL_DONE);
	assert_true(ota_sql_in_tx(db));
	restart_server();
	(void)ota_storage_fault_take();
	ota_sql_bind_int64(q, 1, 2);
	rc = ota_sql_step(q);
	print_message("after the restart: %s\n",
	              rc == OTA_SQL_ERROR ? ota_sql_errmsg(db) : "a row");
	if (rc == OTA_SQL_ERROR) {
		assert_int_equal(ota_sql_failure(db), OTA_SQL_F_STORAGE);
		assert_true(ota_storage_fault_take());
		assert_false(ota_sql_in_tx(db));
		/* The lost transaction never reads as committed. */
		assert_int_equal(ota_sql_exec(db, "COMMIT"), OTA_SQL_ERROR);
	} else {
		assert_int_equal(rc, OTA_SQL_ROW);
		assert_int_equal(ota_sql_column_int64(q, 0), 3);
	}
	ota_sql_reset(q);
	ota_sql_bind_int64(q, 1, 3);
	assert_int_equal(ota_sql_step(q), OTA_SQL_ROW);
	assert_int_equal(ota_sql_column_int64(q, 0), 4);
	assert_false(ota_sql_in_tx(db));
	ota_sql_reset(q);

	/* Restarted outside one, the same through ota_sql_exec. */
	restart_server();
	(void)ota_storage_fault_take();
	if (ota_sql_exec(db, "SELECT 1") == OTA_SQL_ERROR) {
		assert_int_equal(ota_sql_failure(db), OTA_SQL_F_STORAGE);
		assert_true(ota_storage_fault_take());
	}
	assert_int_equal(ota_sql_exec(db, "SELECT 1"), OTA_SQL_DONE);
	ota_sql_bind_int64(q, 1, 9);
	assert_int_equal(ota_sql_step(q), OTA_SQL_ROW);
	assert_int_equal(ota_sql_column_int64(q, 0), 10);
	/* Statements left open are finalized with the connection (the teardown). */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_schema_applies), cmocka_unit_test(test_types_round_trip),
	    cmocka_unit_test(test_parameters),     cmocka_unit_test(test_booleans),
	    cmocka_unit_test(test_changes),        cmocka_unit_test(test_failures_mapped),
	    cmocka_unit_test(test_transactions),   cmocka_unit_test(test_password_refused),
	    cmocka_unit_test(test_unreachable),    cmocka_unit_test(test_reconnects),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
