/*
 * test_audit.c - the audit log on real temporary SQLite files: the hash chain, the database
 * refusing UPDATE and DELETE, a change and its entry committing together or not at all, signed
 * checkpoints, the verifier naming the first edited, deleted or reordered entry in a copy of
 * the database and in an export, and a 100,000-entry export read in constant memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store_fixture.h"
#include "audit/audit.h"
#include "store/store.h"

struct fx {
	char dir[OTA_TEST_DIR_MAX];
	char path[OTA_TEST_PATH_MAX];
	struct ota_store *st;
	struct ota_audit *a;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char msg[256];

	if (ota_test_store_open("audit", f->dir, f->path, &f->st) != 0)
		return -1;
	if (ota_audit_open(f->st, f->dir, &f->a, msg, sizeof(msg)) != OTA_OK) {
		fprintf(stderr, "%s\n", msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	ota_audit_free(f->a);
	if (ota_test_store_close(f->dir, f->st) != 0)
		return -1;
	free(f);
	return 0;
}

static void add(struct fx *f, unsigned n, int64_t at)
{
	char detail[64], dev[32];

	for (unsigned i = 0; i < n; i++) {
		snprintf(detail, sizeof(detail), "change %u", i);
		snprintf(dev, sizeof(dev), "device-%04u", i % 7);
		struct ota_audit_entry e = {.actor = "admin",
		                            .role = "admin",
		                            .action = "device.approve",
		                            .device_id = dev,
		                            .before = "{\"admission\":\"pending\"}",
		                            .after = "{\"admission\":\"approved\"}",
		                            .detail = detail};
		assert_int_equal(ota_audit_append(f->st, &e, at + i, NULL), OTA_OK);
	}
}

static int db_exec(const char *path, const char *sql)
{
	sqlite3 *db;
	int rc;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

static long db_count(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	long n = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

static void chain_verifies(void **state)
{
	struct fx *f = *state;
	struct ota_audit_verdict v;
	uint64_t seq = 0;

	add(f, 10, 1000);
	assert_int_equal(ota_audit_checkpoint(f->a, 2000, &seq), OTA_OK);
	assert_int_equal(seq, 10);
	add(f, 5, 3000);
	assert_int_equal(ota_audit_verify_db(f->a, &v), OTA_OK);
	assert_true(v.ok);
	assert_int_equal(v.entries, 15);
	assert_int_equal(v.checkpoints, 1);
	/* A second checkpoint of an unchanged head is not made. */
	assert_int_equal(ota_audit_checkpoint(f->a, 4000, &seq), OTA_OK);
	assert_int_equal(ota_audit_checkpoint(f->a, 4001, &seq), OTA_OK);
	assert_int_equal(seq, 15);
	assert_int_equal(db_count(f->path, "SELECT count(*) FROM audit_checkpoints"), 2);
}

static void bad_entries_refused(void **state)
{
	struct fx *f = *state;
	struct ota_audit_entry e = {.actor = "admin", .action = "x", .before = "{not json"};
	struct ota_audit_entry noact = {.actor = "admin"};

	assert_int_equal(ota_audit_append(f->st, &e, 1, NULL), OTA_ERR_INVALID);
	assert_int_equal(ota_audit_append(f->st, &noact, 1, NULL), OTA_ERR_INVALID);
	assert_int_equal(db_count(f->path, "SELECT count(*) FROM audit_log"), 0);
}

static void database_refuses_update_and_delete(void **state)
{
	struct fx *f = *state;

	add(f, 3, 1000);
	assert_int_equal(ota_audit_checkpoint(f->a, 2000, NULL), OTA_OK);
	assert_int_not_equal(db_exec(f->path, "UPDATE audit_log SET detail = 'x' WHERE seq = 2"),
	                     SQLITE_OK);
	assert_int_not_equal(db_exec(f->path, "DELETE FROM audit_log WHERE seq = 3"), SQLITE_OK);
	assert_int_not_equal(db_exec(f->path, "DELETE FROM audit_checkpoints"), SQLITE_OK);
	assert_int_not_equal(db_exec(f->path, "UPDATE audit_checkpoints SET sig = 'AAAA'"),
	                     SQLITE_OK);
	/* Out of order or off the chain head. */
	assert_int_not_equal(db_exec(f->path,
	                             "INSERT INTO audit_log (seq, at, actor, action, prev, hash) "
	                             "VALUES (9, 1, 'x', 'x', 'p', 'h')"),
	                     SQLITE_OK);
	assert_int_not_equal(db_exec(f->path,
	                             "INSERT INTO audit_log (seq, at, actor, action, prev, hash) "
	                             "VALUES (4, 1, 'x', 'x', 'p', 'h')"),
	                     SQLITE_OK);
	assert_int_equal(db_count(f->path, "SELECT count(*) FROM audit_log"), 3);
	assert_string_equal("ok", "ok");
}

/* A change (a revocation) and its entry: both or neither. */
static void change_and_entry_commit_together(void **state)
{
	struct fx *f = *state;
	struct ota_audit_entry e = {
	    .actor = "admin", .role = "admin", .action = "cert.revoke", .object = "aa"};
	struct ota_audit_entry bad = {.actor = "admin", .action = "cert.revoke", .after = "{"};
	bool revoked = true;

	/* Forced failure between them: the entry fails, so the caller rolls back. */
	assert_int_equal(ota_store_tx_begin(f->st), OTA_OK);
	assert_int_equal(ota_store_revoke(f->st, "aa", "test", 5), OTA_OK);
	assert_int_equal(ota_audit_append(f->st, &bad, 5, NULL), OTA_ERR_INVALID);
	assert_int_equal(ota_store_tx_end(f->st, false), OTA_OK);
	assert_int_equal(ota_store_is_revoked(f->st, "aa", &revoked), OTA_OK);
	assert_false(revoked);
	assert_int_equal(db_count(f->path, "SELECT count(*) FROM audit_log"), 0);

	/* Failure after the entry, before the commit: neither. */
	assert_int_equal(ota_store_tx_begin(f->st), OTA_OK);
	assert_int_equal(ota_store_revoke(f->st, "aa", "test", 5), OTA_OK);
	assert_int_equal(ota_audit_append(f->st, &e, 5, NULL), OTA_OK);
	assert_int_equal(ota_store_tx_end(f->st, false), OTA_OK);
	assert_int_equal(ota_store_is_revoked(f->st, "aa", &revoked), OTA_OK);
	assert_false(revoked);
	assert_int_equal(db_count(f->path, "SELECT count(*) FROM audit_log"), 0);

	/* Nested begin refused; end without begin refused. */
	assert_int_equal(ota_store_tx_begin(f->st), OTA_OK);
	assert_int_equal(ota_store_tx_begin(f->st), OTA_ERR_CONFLICT);
	assert_int_equal(ota_store_revoke(f->st, "aa", "test", 5), OTA_OK);
	assert_int_equal(ota_audit_append(f->st, &e, 5, NULL), OTA_OK);
	assert_int_equal(ota_store_tx_end(f->st, true), OTA_OK);
	assert_int_equal(ota_store_tx_end(f->st, true), OTA_ERR_CONFLICT);
	assert_int_equal(ota_store_is_revoked(f->st, "aa", &revoked), OTA_OK);
	assert_true(revoked);
	assert_int_equal(db_count(f->path, "SELECT count(*) FROM audit_log"), 1);
}

/* Copies the database, tampers with the copy (triggers dropped), verifies the copy. */
static void tamper_db(struct fx *f, const char *sql, uint64_t want_bad)
{
	char copy[160], cmd[600], msg[256];
	struct ota_store *st2;
	struct ota_audit *a2;
	struct ota_audit_verdict v;

	snprintf(copy, sizeof(copy), "%s/copy.db", f->dir);
	snprintf(cmd, sizeof(cmd), "rm -f %s*; sqlite3 %s \".backup %s\"", copy, f->path, copy);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(db_exec(copy, "DROP TRIGGER audit_log_no_update; "
	                               "DROP TRIGGER audit_log_no_delete; "
	                               "DROP TRIGGER audit_log_in_order;"),
	                 SQLITE_OK);
	assert_int_equal(db_exec(copy, sql), SQLITE_OK);
	assert_int_equal(ota_store_open(copy, &st2, msg, sizeof(msg)), OTA_OK);
	assert_int_equal(ota_audit_open(st2, f->dir, &a2, msg, sizeof(msg)), OTA_OK);
	assert_int_equal(ota_audit_verify_db(a2, &v), OTA_OK);
	if (v.ok || v.bad_seq != want_bad)
		fprintf(stderr, "after %s: ok=%d bad=%llu (%s)\n", sql, v.ok,
		        (unsigned long long)v.bad_seq, v.reason);
	assert_false(v.ok);
	assert_int_equal(v.bad_seq, want_bad);
	ota_audit_free(a2);
	ota_store_free(st2);
}

static void verifier_names_tampered_db_entry(void **state)
{
	struct fx *f = *state;

	add(f, 20, 1000);
	assert_int_equal(ota_audit_checkpoint(f->a, 2000, NULL), OTA_OK);
	tamper_db(f, "UPDATE audit_log SET detail = 'edited' WHERE seq = 5", 5);
	tamper_db(f, "UPDATE audit_log SET at = at + 1 WHERE seq = 12", 12);
	tamper_db(f, "DELETE FROM audit_log WHERE seq = 7", 7);
	/* Reorder: entries 3 and 4 swap places. */
	tamper_db(f,
	          "UPDATE audit_log SET seq = 1000003 WHERE seq = 3; "
	          "UPDATE audit_log SET seq = 3 WHERE seq = 4; "
	          "UPDATE audit_log SET seq = 4 WHERE seq = 1000003;",
	          3);
	/* Rewriting the whole chain without the key: the checkpoint signature fails. */
	tamper_db(f,
	          "DROP TRIGGER audit_checkpoints_no_update; "
	          "UPDATE audit_checkpoints SET at = at + 1",
	          20);
}

static void export_to(struct fx *f, const char *path, size_t bufsize)
{
	struct ota_audit_export *x;
	char *buf = malloc(bufsize);
	FILE *out = fopen(path, "w");
	long n;

	assert_non_null(buf);
	assert_non_null(out);
	assert_int_equal(ota_audit_export_begin(f->a, 5000, &x), OTA_OK);
	while ((n = ota_audit_export_read(x, buf, bufsize)) > 0)
		assert_int_equal(fwrite(buf, 1, (size_t)n, out), (size_t)n);
	assert_int_equal(n, 0);
	ota_audit_export_free(x);
	fclose(out);
	free(buf);
}

static struct ota_audit_verdict verify_file(struct fx *f, const char *path)
{
	struct ota_audit_verdict v;
	FILE *in = fopen(path, "r");

	assert_non_null(in);
	assert_int_equal(ota_audit_verify_export(in, ota_audit_pubkey_pem(f->a), &v), OTA_OK);
	fclose(in);
	return v;
}

/* Runs a sed script over a copy of the export, verifies the copy. */
static void tamper_export(struct fx *f, const char *exp, const char *script, uint64_t want_bad)
{
	char copy[160], cmd[600];
	struct ota_audit_verdict v;

	snprintf(copy, sizeof(copy), "%s/tampered.ndjson", f->dir);
	snprintf(cmd, sizeof(cmd), "sed -e '%s' %s > %s", script, exp, copy);
	assert_int_equal(system(cmd), 0);
	v = verify_file(f, copy);
	if (v.ok || v.bad_seq != want_bad)
		fprintf(stderr, "after %s: ok=%d bad=%llu (%s)\n", script, v.ok,
		        (unsigned long long)v.bad_seq, v.reason);
	assert_false(v.ok);
	assert_int_equal(v.bad_seq, want_bad);
}

static void verifier_names_tampered_export_entry(void **state)
{
	struct fx *f = *state;
	char exp[160];
	struct ota_audit_verdict v;

	add(f, 8, 1000);
	assert_int_equal(ota_audit_checkpoint(f->a, 2000, NULL), OTA_OK);
	add(f, 8, 3000);
	snprintf(exp, sizeof(exp), "%s/audit.ndjson", f->dir);
	export_to(f, exp, 100); /* small pieces: lines span reads */
	v = verify_file(f, exp);
	assert_true(v.ok);
	assert_int_equal(v.entries, 16);
	assert_int_equal(v.checkpoints, 2);
	/* Lines: entries 1-8, checkpoint 8 (line 9), entries 9-16 (lines 10-17), checkpoint. */
	tamper_export(f, exp, "3s/change 2/change 9/", 3);
	tamper_export(f, exp, "12d", 11);                       /* entry 11 deleted */
	tamper_export(f, exp, "5{h;d};6{G}", 5);                /* entries 5 and 6 swapped */
	tamper_export(f, exp, "$d", 0);                         /* the final checkpoint cut */
	tamper_export(f, exp, "17,18d", 0);                     /* the tail cut */
	tamper_export(f, exp, "9s/\"at\":[0-9]*/\"at\":1/", 8); /* checkpoint 8 edited */
	tamper_export(f, exp, "1s/\"actor\":\"admin\"/\"actor\":\"eve\"/", 1);
}

static long maxrss_kib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void export_100k_in_constant_memory(void **state)
{
	struct fx *f = *state;
	struct ota_audit_export *x;
	static char buf[64 * 1024];
	long n, before, after;
	unsigned long long total = 0;

	assert_int_equal(ota_store_tx_begin(f->st), OTA_OK);
	add(f, 100000, 1000);
	assert_int_equal(ota_store_tx_end(f->st, true), OTA_OK);
	before = maxrss_kib();
	assert_int_equal(ota_audit_export_begin(f->a, 5000, &x), OTA_OK);
	while ((n = ota_audit_export_read(x, buf, sizeof(buf))) > 0)
		total += (unsigned long long)n;
	assert_int_equal(n, 0);
	ota_audit_export_free(x);
	after = maxrss_kib();
	printf("export of 100000 entries: %llu bytes; peak RSS %ld KiB before, %ld KiB after\n",
	       total, before, after);
	assert_true(total > 100000ull * 200);
	/* The export is tens of MB; reading it may not grow the peak by more than 8 MiB. */
	assert_true(after - before < 8 * 1024);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(chain_verifies, setup, teardown),
	    cmocka_unit_test_setup_teardown(bad_entries_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(database_refuses_update_and_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(change_and_entry_commit_together, setup, teardown),
	    cmocka_unit_test_setup_teardown(verifier_names_tampered_db_entry, setup, teardown),
	    cmocka_unit_test_setup_teardown(verifier_names_tampered_export_entry, setup, teardown),
	    cmocka_unit_test_setup_teardown(export_100k_in_constant_memory, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
