/*
 * test_audit.c - the audit log on real temporary SQLite files: the hash chain, the database
 * refusing UPDATE and DELETE, a change and its entry committing together or not at all, signed
 * checkpoints, the verifier naming the first edited, deleted or reordered entry in a copy of
 * the database and in an export, known-answer hashes of a fixed entry sequence (the ones
 * docs/security.md lists for outside verifiers), tampering that recomputes hashes and relinks
 * (what a checkpoint catches and what it cannot), a 100,000-entry export read in constant
 * memory, and one audit key when several processes on one data folder start at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store_fixture.h"
#include "audit/audit.h"
#include "audit/chain.h"
#include "common/util.h"
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

/* ---- known answers: the fixed sequence of docs/security.md ("Audit log") ---- */

static const struct {
	int64_t at;
	struct ota_audit_entry e;
	const char *canonical;
	const char *hash;
} kat[] = {
    {1700000000,
     {.actor = "admin",
      .role = "admin",
      .action = "device.approve",
      .device_id = "device-0001",
      .before = "{\"admission\":\"pending\"}",
      .after = "{\"admission\":\"approved\"}"},
     "{\"action\":\"device.approve\",\"actor\":\"admin\",\"after\":\"{\\\"admission\\\":"
     "\\\"approved\\\"}\",\"at\":1700000000,\"before\":\"{\\\"admission\\\":\\\"pending\\\"}\","
     "\"detail\":null,\"device_id\":\"device-0001\",\"object\":null,\"prev\":"
     "\"0000000000000000000000000000000000000000000000000000000000000000\",\"release_id\":null,"
     "\"role\":\"admin\",\"rollout_id\":null,\"seq\":1}",
     "69aa0410135eb63badee9dc657c4498ed7589cecbdbc6d9f5784b8a70e10b57d"},
    {1700000060,
     {.actor = "ops",
      .role = "operator",
      .action = "deployment.create",
      .device_id = "device-0002",
      .release_id = "r-0123",
      .object = "d-0456",
      .detail = "caf\xc3\xa9 \"quoted\"\nline 2"},
     "{\"action\":\"deployment.create\",\"actor\":\"ops\",\"after\":null,\"at\":1700000060,"
     "\"before\":null,\"detail\":\"caf\\u00E9 \\\"quoted\\\"\\nline 2\",\"device_id\":"
     "\"device-0002\",\"object\":\"d-0456\",\"prev\":"
     "\"69aa0410135eb63badee9dc657c4498ed7589cecbdbc6d9f5784b8a70e10b57d\",\"release_id\":"
     "\"r-0123\",\"role\":\"operator\",\"rollout_id\":null,\"seq\":2}",
     "a37e2d380169e546a39139c73aacb534ba9da6afafb67cec9914a5dcf0a6ed18"},
    {1700000120,
     {.actor = "device-0002",
      .action = "deployment.outcome",
      .device_id = "device-0002",
      .object = "d-0456",
      .detail = "succeeded"},
     "{\"action\":\"deployment.outcome\",\"actor\":\"device-0002\",\"after\":null,\"at\":"
     "1700000120,\"before\":null,\"detail\":\"succeeded\",\"device_id\":\"device-0002\","
     "\"object\":\"d-0456\",\"prev\":"
     "\"a37e2d380169e546a39139c73aacb534ba9da6afafb67cec9914a5dcf0a6ed18\",\"release_id\":null,"
     "\"role\":null,\"rollout_id\":null,\"seq\":3}",
     "40edbc3243aa75a9f6bbe3f1e6a50e5a6fd428ab73a8c5dd28bee89b6a62e44d"},
};

static void db_text(const char *path, const char *sql, char *out, size_t cap)
{
	sqlite3 *db;
	sqlite3_stmt *q;

	out[0] = '\0';
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
		snprintf(out, cap, "%s", (const char *)sqlite3_column_text(q, 0));
	sqlite3_finalize(q);
	sqlite3_close(db);
}

/* The canonical text and hash of each entry, by the format code and through the log. */
static void known_answer_hashes(void **state)
{
	struct fx *f = *state;
	const char *prev = OTA_AUDIT_ZERO_HASH;
	char h[OTA_HEX256], sql[96], got[OTA_HEX256];

	for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
		json_t *o = ota_audit__entry_json(i + 1, kat[i].at, &kat[i].e, prev);
		char *text;

		assert_non_null(o);
		text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
		assert_non_null(text);
		assert_string_equal(text, kat[i].canonical);
		free(text);
		assert_true(ota_audit__hash(o, h));
		json_decref(o);
		assert_string_equal(h, kat[i].hash);
		prev = kat[i].hash;

		assert_int_equal(ota_audit_append(f->st, &kat[i].e, kat[i].at, NULL), OTA_OK);
		snprintf(sql, sizeof(sql), "SELECT hash FROM audit_log WHERE seq = %zu", i + 1);
		db_text(f->path, sql, got, sizeof(got));
		assert_string_equal(got, kat[i].hash);
	}
}

/* ---- tampering that recomputes hashes ---- */

/* In the database at `path`, recomputes entry seq's hash from its row and the current hash of
 * entry seq - 1, and writes both (the triggers must be gone). */
static void rehash_row(const char *path, uint64_t seq)
{
	static const char *cols = "at, actor, role, action, device_id, rollout_id, release_id, "
	                          "object, before, after, detail";
	sqlite3 *db;
	sqlite3_stmt *q, *u;
	char sql[256], prev[OTA_HEX256] = OTA_AUDIT_ZERO_HASH, h[OTA_HEX256];
	const char *c[10];

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (seq > 1) {
		snprintf(sql, sizeof(sql), "SELECT hash FROM audit_log WHERE seq = %llu",
		         (unsigned long long)seq - 1);
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(q), SQLITE_ROW);
		snprintf(prev, sizeof(prev), "%s", (const char *)sqlite3_column_text(q, 0));
		sqlite3_finalize(q);
	}
	snprintf(sql, sizeof(sql), "SELECT %s FROM audit_log WHERE seq = %llu", cols,
	         (unsigned long long)seq);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	for (int i = 0; i < 10; i++)
		c[i] = (const char *)sqlite3_column_text(q, i + 1);
	struct ota_audit_entry e = {.actor = c[0],
	                            .role = c[1],
	                            .action = c[2],
	                            .device_id = c[3],
	                            .rollout_id = c[4],
	                            .release_id = c[5],
	                            .object = c[6],
	                            .before = c[7],
	                            .after = c[8],
	                            .detail = c[9]};
	json_t *o = ota_audit__entry_json(seq, sqlite3_column_int64(q, 0), &e, prev);
	assert_non_null(o);
	assert_true(ota_audit__hash(o, h));
	json_decref(o);
	sqlite3_finalize(q);
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "UPDATE audit_log SET prev = ?1, hash = ?2 "
	                                    "WHERE seq = ?3",
	                                    -1, &u, NULL),
	                 SQLITE_OK);
	sqlite3_bind_text(u, 1, prev, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(u, 2, h, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(u, 3, (sqlite3_int64)seq);
	assert_int_equal(sqlite3_step(u), SQLITE_DONE);
	sqlite3_finalize(u);
	sqlite3_close(db);
}

/* Edits entry `edit` of a copy of the database (detail), recomputes its hash, then either only
 * relinks the next entry's prev (relink_to == 0) or recomputes every entry up to relink_to,
 * after running the SQL `also` (or NULL) on the copy; returns the verdict on the copy. */
static struct ota_audit_verdict rewrite_copy(struct fx *f, uint64_t edit, uint64_t relink_to,
                                             const char *also)
{
	char copy[160], cmd[600], msg[256], sql[160];
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
	if (also)
		assert_int_equal(db_exec(copy, also), SQLITE_OK);
	snprintf(sql, sizeof(sql), "UPDATE audit_log SET detail = 'edited' WHERE seq = %llu",
	         (unsigned long long)edit);
	assert_int_equal(db_exec(copy, sql), SQLITE_OK);
	rehash_row(copy, edit);
	if (relink_to == 0) {
		snprintf(
		    sql, sizeof(sql),
		    "UPDATE audit_log SET prev = (SELECT hash FROM audit_log WHERE seq = %llu) "
		    "WHERE seq = %llu",
		    (unsigned long long)edit, (unsigned long long)edit + 1);
		assert_int_equal(db_exec(copy, sql), SQLITE_OK);
	}
	for (uint64_t s = edit + 1; s <= relink_to; s++)
		rehash_row(copy, s);
	assert_int_equal(ota_store_open(copy, &st2, msg, sizeof(msg)), OTA_OK);
	assert_int_equal(ota_audit_open(st2, f->dir, &a2, msg, sizeof(msg)), OTA_OK);
	assert_int_equal(ota_audit_verify_db(a2, &v), OTA_OK);
	ota_audit_free(a2);
	ota_store_free(st2);
	return v;
}

/* Entries 1-20, a checkpoint of 20, entries 21-30 (not yet signed). */
static void verifier_catches_recomputed_hashes(void **state)
{
	struct fx *f = *state;
	struct ota_audit_verdict v;

	add(f, 20, 1000);
	assert_int_equal(ota_audit_checkpoint(f->a, 2000, NULL), OTA_OK);
	add(f, 10, 3000);
	/* Entry 5 edited and rehashed, entry 6's prev relinked: entry 6's hash covers its prev. */
	v = rewrite_copy(f, 5, 0, NULL);
	assert_false(v.ok);
	assert_int_equal(v.bad_seq, 6);
	/* The same after the checkpoint: caught by the chain alone. */
	v = rewrite_copy(f, 25, 0, NULL);
	assert_false(v.ok);
	assert_int_equal(v.bad_seq, 26);
	/* Every entry from 5 to the head recomputed: the checkpoint of 20 no longer matches. */
	v = rewrite_copy(f, 5, 30, NULL);
	assert_false(v.ok);
	assert_int_equal(v.bad_seq, 20);
	/* Entries 5-20 recomputed (21 left as it was): the checkpoint of 20 fails first. */
	v = rewrite_copy(f, 5, 20, NULL);
	assert_false(v.ok);
	assert_int_equal(v.bad_seq, 20);
	/* The limit docs/security.md states: entries after the newest checkpoint, rewritten with
	 * every hash after them recomputed, verify. */
	v = rewrite_copy(f, 25, 30, NULL);
	assert_true(v.ok);
	assert_int_equal(v.entries, 30);
	/* And with every checkpoint deleted, the whole chain: only a checkpoint kept outside the
	 * server shows it. */
	v = rewrite_copy(f, 5, 30,
	                 "DROP TRIGGER audit_checkpoints_no_delete; DELETE FROM audit_checkpoints");
	assert_true(v.ok);
	assert_int_equal(v.checkpoints, 0);
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

/*
 * Instances sharing a data folder start at once on an empty one: each opens the audit log at
 * the same moment (released together from a pipe). One key is made, and every process signs
 * with the key of audit.key (its public key is audit.pub's); nothing else is left behind.
 */
#define RACERS 8

static void one_key_when_instances_start_at_once(void **state)
{
	struct fx *f = *state;
	char dir[OTA_TEST_PATH_MAX], path[OTA_TEST_PATH_MAX + 16], msg[256];

	for (int round = 0; round < 10; round++) {
		int go[2], status;
		pid_t pid[RACERS];
		char *pub, *mine;
		struct dirent *e;
		DIR *d;
		unsigned files = 0;

		snprintf(dir, sizeof(dir), "%s/shared-%d", f->dir, round);
		assert_int_equal(mkdir(dir, 0700), 0);
		assert_int_equal(pipe(go), 0);
		for (int i = 0; i < RACERS; i++) {
			pid[i] = fork();
			assert_true(pid[i] >= 0);
			if (pid[i] == 0) {
				struct ota_audit *a = NULL;
				char c, out[OTA_TEST_PATH_MAX + 16];
				FILE *o;
				bool ok;

				close(go[1]);
				(void)!read(go[0], &c, 1); /* EOF when the parent lets go */
				ok = ota_audit_open(f->st, dir, &a, msg, sizeof(msg)) == OTA_OK;
				snprintf(out, sizeof(out), "%s/pub-%d", dir, i);
				o = ok ? fopen(out, "w") : NULL;
				ok = o && fputs(ota_audit_pubkey_pem(a), o) >= 0;
				ok = o && fclose(o) == 0 && ok;
				if (!ok)
					fprintf(stderr, "racer %d: %s\n", i, msg);
				_exit(ok ? 0 : 1);
			}
		}
		close(go[0]);
		close(go[1]);
		for (int i = 0; i < RACERS; i++) {
			assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
			assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		}
		snprintf(path, sizeof(path), "%s/audit.pub", dir);
		pub = ota_file_read(path, 1 << 16, NULL);
		assert_non_null(pub);
		for (int i = 0; i < RACERS; i++) {
			snprintf(path, sizeof(path), "%s/pub-%d", dir, i);
			mine = ota_file_read(path, 1 << 16, NULL);
			assert_non_null(mine);
			if (strcmp(mine, pub) != 0)
				fprintf(stderr,
				        "round %d: process %d signs with a key not audit.key's\n",
				        round, i);
			assert_string_equal(mine, pub);
			free(mine);
		}
		free(pub);
		/* audit.key, audit.pub and the racers' pub-N: no temporary file left. */
		d = opendir(dir);
		assert_non_null(d);
		while ((e = readdir(d)) != NULL)
			if (e->d_name[0] != '.') {
				files++;
				if (strcmp(e->d_name, "audit.key") &&
				    strcmp(e->d_name, "audit.pub") && strncmp(e->d_name, "pub-", 4))
					fail_msg("left behind: %s", e->d_name);
			}
		closedir(d);
		assert_int_equal(files, 2 + RACERS);
	}
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
	    cmocka_unit_test_setup_teardown(known_answer_hashes, setup, teardown),
	    cmocka_unit_test_setup_teardown(verifier_catches_recomputed_hashes, setup, teardown),
	    cmocka_unit_test_setup_teardown(export_100k_in_constant_memory, setup, teardown),
	    cmocka_unit_test_setup_teardown(one_key_when_instances_start_at_once, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
