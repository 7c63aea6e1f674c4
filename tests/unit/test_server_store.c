/*
 * test_server_store.c - the SQLite store on real temporary database files: migrations applied
 * once, a newer schema refused untouched, admission and pinning, one active deployment per
 * device, idempotent event reports that end deployments in the same transaction, releases,
 * roots and revocations, and group commit (concurrent writers sharing one transaction, a
 * failing member rolled back alone).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pthread.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store_fixture.h"
#include "store/store.h"

struct fx {
	char dir[OTA_TEST_DIR_MAX];
	char path[OTA_TEST_PATH_MAX];
	struct ota_store *st;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (ota_test_store_open("store", f->dir, f->path, &f->st) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (ota_test_store_close(f->dir, f->st) != 0)
		return -1;
	free(f);
	return 0;
}

static int user_version(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	int v = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

static void migrations(void **state)
{
	struct fx *f = *state;
	struct ota_store *again = NULL;
	char msg[256] = "";
	sqlite3 *db;

	assert_true(ota_store_schema_latest() >= 1);
	assert_int_equal(ota_store_schema_version(f->st), ota_store_schema_latest());
	assert_int_equal(user_version(f->path), ota_store_schema_latest());
	/* Reopening applies nothing and keeps the data. */
	bool created;
	struct ota_device d;
	assert_int_equal(ota_store_device_admit(f->st, "dev-1", "aa", 1, &d, &created), OTA_OK);
	ota_store_free(f->st);
	f->st = NULL;
	assert_int_equal(ota_store_open(f->path, &f->st, msg, sizeof(msg)), OTA_OK);
	assert_int_equal(ota_store_device_get(f->st, "dev-1", &d), OTA_OK);

	/* A newer schema is refused, and the file is not changed. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(ota_store_open(f->path, &again, msg, sizeof(msg)), OTA_ERR_SCHEMA);
	assert_null(again);
	assert_non_null(strstr(msg, "schema version 999, newer than this otad knows"));
	assert_int_equal(user_version(f->path), 999);
}

/* One integer from the database file, read past the store (what a crash would leave). */
static int64_t raw_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	int64_t v = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

/* A check-in that repeats the row writes nothing until the flush; a change is written now. */
static void checkin_times(void **state)
{
	struct fx *f = *state;
	struct ota_device d;
	bool created;
	const char *seen = "SELECT last_seen FROM devices WHERE id = 'dev-1'";

	assert_int_equal(ota_store_device_admit(f->st, "dev-1", "f1", 10, &d, &created), OTA_OK);
	struct ota_device_report rep = {"dev-1", "pico2w", "1.0.0", 3, 1, "A", "normal", NULL};
	assert_int_equal(ota_store_device_report(f->st, &rep, 20), OTA_OK);
	assert_int_equal(raw_int(f->path, seen), 20);
	assert_int_equal(ota_store_device_report(f->st, &rep, 30), OTA_OK);
	assert_int_equal(raw_int(f->path, seen), 20);
	assert_int_equal(ota_store_device_get(f->st, "dev-1", &d), OTA_OK);
	assert_int_equal(d.last_seen, 30);
	assert_int_equal(ota_store_seen_flush(f->st), OTA_OK);
	assert_int_equal(raw_int(f->path, seen), 30);
	/* A new version is written at once, with its time. */
	rep.version = "1.1.0";
	assert_int_equal(ota_store_device_report(f->st, &rep, 40), OTA_OK);
	assert_int_equal(raw_int(f->path, seen), 40);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM devices WHERE version = '1.1.0'"),
	                 1);
	/* So is a new outcome; the same outcome again is not a change. */
	rep.last_outcome = "{\"status\":\"confirmed\"}";
	assert_int_equal(ota_store_device_report(f->st, &rep, 50), OTA_OK);
	assert_int_equal(raw_int(f->path, seen), 50);
	assert_int_equal(ota_store_device_report(f->st, &rep, 60), OTA_OK);
	assert_int_equal(raw_int(f->path, seen), 50);
	/* Closing the store writes what is kept. */
	ota_store_free(f->st);
	f->st = NULL;
	assert_int_equal(raw_int(f->path, seen), 60);
	char msg[256];
	assert_int_equal(ota_store_open(f->path, &f->st, msg, sizeof(msg)), OTA_OK);
	/* A reopened store reads the row first: the same state costs no write. */
	assert_int_equal(ota_store_device_report(f->st, &rep, 70), OTA_OK);
	assert_int_equal(raw_int(f->path, seen), 60);
	rep.id = "nobody";
	assert_int_equal(ota_store_device_report(f->st, &rep, 70), OTA_ERR_NOT_FOUND);
}

static void admission(void **state)
{
	struct fx *f = *state;
	struct ota_device d;
	bool created = false, revoked = true;

	assert_int_equal(ota_store_device_get(f->st, "dev-1", &d), OTA_ERR_NOT_FOUND);
	assert_int_equal(ota_store_device_admit(f->st, "dev-1", "f1", 10, &d, &created), OTA_OK);
	assert_true(created);
	assert_string_equal(d.fingerprint, "f1");
	assert_string_equal(d.status, "admitted");
	assert_false(d.known_state);
	/* The pin stays: a second fingerprint is reported back, not stored. */
	assert_int_equal(ota_store_device_admit(f->st, "dev-1", "f2", 11, &d, &created), OTA_OK);
	assert_false(created);
	assert_string_equal(d.fingerprint, "f1");

	struct ota_device_report rep = {"dev-1", "pico2w", "1.0.0", 3, 1, "A", "normal", NULL};
	assert_int_equal(ota_store_device_report(f->st, &rep, 20), OTA_OK);
	assert_int_equal(ota_store_device_get(f->st, "dev-1", &d), OTA_OK);
	assert_true(d.known_state);
	assert_string_equal(d.hw_variant, "pico2w");
	assert_int_equal(d.security_floor, 3);
	assert_int_equal(d.last_seen, 20);
	rep.id = "nobody";
	assert_int_equal(ota_store_device_report(f->st, &rep, 20), OTA_ERR_NOT_FOUND);

	assert_int_equal(ota_store_is_revoked(f->st, "f1", &revoked), OTA_OK);
	assert_false(revoked);
	assert_int_equal(ota_store_revoke(f->st, "f1", "lost", 30), OTA_OK);
	assert_int_equal(ota_store_revoke(f->st, "f1", "again", 31), OTA_OK);
	assert_int_equal(ota_store_is_revoked(f->st, "f1", &revoked), OTA_OK);
	assert_true(revoked);
}

static void fill_release(struct ota_release *r, const char *id, const char *version)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", id);
	snprintf(r->name, sizeof(r->name), "fw");
	snprintf(r->version, sizeof(r->version), "%s", version);
	r->security_version = 2;
	snprintf(r->image_sha256, sizeof(r->image_sha256), "%064d", 7);
	r->image_size = 100;
	snprintf(r->image_format, sizeof(r->image_format), "bin");
	r->nhw = 2;
	snprintf(r->hw[0], sizeof(r->hw[0]), "pico2w");
	snprintf(r->hw[1], sizeof(r->hw[1]), "pico2");
}

static void count_release(void *ctx, const struct ota_release *r)
{
	(void)r;
	(*(int *)ctx)++;
}

static void note_release(void *ctx, const struct ota_release *r)
{
	*(struct ota_release *)ctx = *r;
}

/* Pages of one, newest first, resume after (created_at, id): ties on the time go by id. */
static void release_pages(void **state)
{
	struct fx *f = *state;
	static const char *const ids[] = {"r1", "r2", "r3", "r4"};
	static const int64_t at[] = {5, 6, 6, 7};
	static const char *const order[] = {"r4", "r2", "r3", "r1"};
	struct ota_release r, last;
	char img[65], version[16];
	struct ota_store_key k = {0, last.id};
	bool existed, more = false;
	int n = 0;

	snprintf(img, sizeof(img), "%064d", 7);
	assert_int_equal(ota_store_image_add(f->st, img, 100, 1, &existed), OTA_OK);
	for (unsigned i = 0; i < 4; i++) {
		snprintf(version, sizeof(version), "1.%u.0", i);
		fill_release(&r, ids[i], version);
		assert_int_equal(ota_store_release_add(f->st, &r, "{}", at[i], &existed), OTA_OK);
	}
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(
		    ota_store_release_list(f->st, i ? &k : NULL, 1, note_release, &last, &more),
		    OTA_OK);
		assert_string_equal(last.id, order[i]);
		assert_int_equal(more, i < 3);
		k.at = last.created_at;
	}
	assert_int_equal(ota_store_release_list(f->st, &k, 1, count_release, &n, &more), OTA_OK);
	assert_int_equal(n, 0);
	assert_false(more);
	assert_int_equal(ota_store_release_list(f->st, NULL, 0, count_release, &n, &more),
	                 OTA_ERR_INVALID);
	assert_int_equal(ota_store_release_list(f->st, NULL, 1001, count_release, &n, &more),
	                 OTA_ERR_INVALID);
}

/* counts ota_store_deployment_active_cached() lookups since *mem / *rd were taken: "memory read" */
static void reads_since(uint64_t *mem, uint64_t *rd, char out[32])
{
	uint64_t m, r;

	ota_store_deployment_reads(&m, &r);
	snprintf(out, 32, "%llu %llu", (unsigned long long)(m - *mem),
	         (unsigned long long)(r - *rd));
	*mem = m;
	*rd = r;
}

/* A device that checked in and was found with no active deployment is answered from memory
 * until a deployment is created for it: on the same handle, in a transaction that commits or
 * rolls back, or on another handle of the same file (whose uncommitted row is not seen, and
 * whose commit is seen at once). */
static void active_deployment_memory(void **state)
{
	struct fx *f = *state;
	struct ota_release r;
	struct ota_deployment dep;
	struct ota_device d;
	struct ota_store *st2 = NULL;
	bool existed, created;
	uint64_t mem, rd;
	char img[65], got[32], msg[256];

	snprintf(img, sizeof(img), "%064d", 7);
	fill_release(&r, "r1", "1.1.0");
	assert_int_equal(ota_store_image_add(f->st, img, 100, 1, &existed), OTA_OK);
	assert_int_equal(ota_store_release_add(f->st, &r, "{}", 2, &existed), OTA_OK);
	assert_int_equal(ota_store_device_admit(f->st, "dev-1", "f1", 3, &d, &created), OTA_OK);
	assert_int_equal(ota_store_device_admit(f->st, "dev-2", "f2", 3, &d, &created), OTA_OK);
	struct ota_device_report rep = {"dev-1", "pico2w", "1.0.0", 1, 1, "A", "normal", NULL};
	assert_int_equal(ota_store_device_report(f->st, &rep, 4), OTA_OK);
	ota_store_deployment_reads(&mem, &rd);

	assert_int_equal(ota_store_deployment_active_cached(f->st, "dev-1", &dep),
	                 OTA_ERR_NOT_FOUND);
	assert_int_equal(ota_store_deployment_active_cached(f->st, "dev-1", &dep),
	                 OTA_ERR_NOT_FOUND);
	reads_since(&mem, &rd, got);
	assert_string_equal(got, "1 1");
	/* A device that never checked in has no entry: read every time. */
	assert_int_equal(ota_store_deployment_active_cached(f->st, "dev-2", &dep),
	                 OTA_ERR_NOT_FOUND);
	assert_int_equal(ota_store_deployment_active_cached(f->st, "dev-2", &dep),
	                 OTA_ERR_NOT_FOUND);
	reads_since(&mem, &rd, got);
	assert_string_equal(got, "0 2");

	/* Created on this handle: seen by the next lookup; ended: none again, then from memory. */
	assert_int_equal(ota_store_deployment_create(f->st, "d-01", "dev-1", "r1", 5), OTA_OK);
	assert_int_equal(ota_store_deployment_active_cached(f->st, "dev-1", &dep), OTA_OK);
	assert_string_equal(dep.id, "d-01");
	assert_int_equal(ota_store_deployment_end(f->st, "d-01", "succeeded", "", 6), OTA_OK);
	assert_int_equal(ota_store_deployment_active_cached(f->st, "dev-1", &dep),
	                 OTA_ERR_NOT_FOUND);
	assert_int_equal(ota_store_deployment_active_cached(f->st, "dev-1", &dep),
	                 OTA_ERR_NOT_FOUND);
	reads_since(&mem, &rd, got);
	assert_string_equal(got, "1 2");

	/* Created in a transaction: seen inside it; rolled back: none, read again. */
	assert_int_equal(ota_store_tx_begin(f->st), OTA_OK);
	assert_int_equal(ota_store_deployment_create(f->st, "d-02", "dev-1", "r1", 7), OTA_OK);
	assert_int_equal(ota_store_deployment_active(f->st, "dev-1", &dep), OTA_OK);
	assert_string_equal(dep.id, "d-02");
	assert_int_equal(ota_store_tx_end(f->st, false), OTA_OK);
	assert_int_equal(ota_store_deployment_active_cached(f->st, "dev-1", &dep),
	                 OTA_ERR_NOT_FOUND);
	assert_int_equal(ota_store_deployment_active_cached(f->st, "dev-1", &dep),
	                 OTA_ERR_NOT_FOUND);
	reads_since(&mem, &rd, got);
	assert_string_equal(got, "1 1");

	/* Created on another handle of the file in its open transaction: not seen (and the read
	 * that did not see it is not trusted once that transaction commits); committed: seen. */
	assert_int_equal(ota_store_open(f->path, &st2, msg, sizeof(msg)), OTA_OK);
	assert_int_equal(ota_store_tx_begin(st2), OTA_OK);
	assert_int_equal(ota_store_deployment_create(st2, "d-03", "dev-1", "r1", 8), OTA_OK);
	assert_int_equal(ota_store_deployment_active_cached(f->st, "dev-1", &dep),
	                 OTA_ERR_NOT_FOUND);
	assert_int_equal(ota_store_tx_end(st2, true), OTA_OK);
	assert_int_equal(ota_store_deployment_active_cached(f->st, "dev-1", &dep), OTA_OK);
	assert_string_equal(dep.id, "d-03");
	reads_since(&mem, &rd, got);
	assert_string_equal(got, "0 2");
	ota_store_free(st2);
}

static void releases_and_deployments(void **state)
{
	struct fx *f = *state;
	struct ota_release r, got;
	struct ota_deployment dep;
	struct ota_device d;
	bool existed = true, created, allowed = true;
	char img[65], *env = NULL;

	snprintf(img, sizeof(img), "%064d", 7);
	fill_release(&r, "r1", "1.1.0");
	/* The image must be recorded first. */
	assert_int_equal(ota_store_release_add(f->st, &r, "{}", 5, &existed), OTA_ERR_NOT_FOUND);
	assert_int_equal(ota_store_image_add(f->st, img, 100, 1, &existed), OTA_OK);
	assert_false(existed);
	assert_int_equal(ota_store_image_add(f->st, img, 100, 2, &existed), OTA_OK);
	assert_true(existed);
	assert_int_equal(ota_store_release_add(f->st, &r, "{\"e\":1}", 5, &existed), OTA_OK);
	assert_false(existed);
	assert_int_equal(ota_store_release_add(f->st, &r, "{\"e\":1}", 6, &existed), OTA_OK);
	assert_true(existed);
	fill_release(&r, "r2", "1.1.0");
	assert_int_equal(ota_store_release_add(f->st, &r, "{}", 7, &existed), OTA_ERR_CONFLICT);
	assert_int_equal(ota_store_release_get(f->st, "r1", &got, &env), OTA_OK);
	assert_string_equal(env, "{\"e\":1}");
	free(env);
	assert_int_equal(got.nhw, 2);
	assert_string_equal(got.hw[0], "pico2");
	assert_string_equal(got.hw[1], "pico2w");
	int n = 0;
	bool more = true;
	assert_int_equal(ota_store_release_list(f->st, NULL, 10, count_release, &n, &more), OTA_OK);
	assert_int_equal(n, 1);
	assert_false(more);

	assert_int_equal(ota_store_device_admit(f->st, "dev-1", "f1", 1, &d, &created), OTA_OK);
	assert_int_equal(ota_store_deployment_create(f->st, "d-01", "dev-1", "nope", 9),
	                 OTA_ERR_NOT_FOUND);
	assert_int_equal(ota_store_deployment_create(f->st, "d-01", "dev-1", "r1", 10), OTA_OK);
	assert_int_equal(ota_store_deployment_create(f->st, "d-02", "dev-1", "r1", 11),
	                 OTA_ERR_CONFLICT);
	assert_int_equal(ota_store_deployment_active(f->st, "dev-1", &dep), OTA_OK);
	assert_string_equal(dep.id, "d-01");
	assert_int_equal(ota_store_image_allowed(f->st, "dev-1", img, &allowed), OTA_OK);
	assert_true(allowed);
	assert_int_equal(ota_store_image_allowed(f->st, "dev-2", img, &allowed), OTA_OK);
	assert_false(allowed);

	/* Events: stored once; the deployment ends by its own call (the deployment service
	 * decides the outcome and runs both in one transaction). */
	bool dup = true;
	struct ota_event ev = {1, "downloading", NULL, NULL, 10};
	assert_int_equal(ota_store_event_add(f->st, "d-01", "dev-1", &ev, 12, &dup), OTA_OK);
	assert_false(dup);
	assert_int_equal(ota_store_event_add(f->st, "d-01", "dev-1", &ev, 13, &dup), OTA_OK);
	assert_true(dup);
	/* The same seq with another event is a conflict, and the first event stays. */
	struct ota_event other = {1, "failed", "flash error", NULL, -1};
	assert_int_equal(ota_store_event_add(f->st, "d-01", "dev-1", &other, 13, &dup),
	                 OTA_ERR_CONFLICT);
	struct ota_event other_progress = {1, "downloading", NULL, NULL, 11};
	assert_int_equal(ota_store_event_add(f->st, "d-01", "dev-1", &other_progress, 13, &dup),
	                 OTA_ERR_CONFLICT);
	struct ota_event conf = {2, "confirmed", NULL, "1.1.0", -1};
	assert_int_equal(ota_store_event_add(f->st, "d-01", "dev-1", &conf, 14, &dup), OTA_OK);
	assert_false(dup);
	assert_int_equal(ota_store_deployment_end(f->st, "d-01", "succeeded", "", 14), OTA_OK);
	assert_int_equal(ota_store_deployment_get(f->st, "d-01", &dep), OTA_OK);
	assert_string_equal(dep.status, "succeeded");
	assert_int_equal(dep.finished_at, 14);
	assert_int_equal(ota_store_event_add(f->st, "d-01", "dev-1", &conf, 15, &dup), OTA_OK);
	assert_true(dup);
	/* Ended: a new deployment may start; ending twice is a conflict. */
	assert_int_equal(ota_store_deployment_active(f->st, "dev-1", &dep), OTA_ERR_NOT_FOUND);
	assert_int_equal(ota_store_deployment_end(f->st, "d-01", "cancelled", "", 17),
	                 OTA_ERR_CONFLICT);
	assert_int_equal(ota_store_deployment_create(f->st, "d-02", "dev-1", "r1", 18), OTA_OK);
	assert_int_equal(ota_store_deployment_end(f->st, "d-02", "cancelled", "op", 19), OTA_OK);
}

/* ---- group commit ---- */

#define G_THREADS 8
#define G_REPORTS 150

struct g_report {
	char dep[16];
	char dev[16];
	uint64_t seq;
	bool fail; /* write the event, then fail: it must be rolled back alone */
	bool dup;
};

static enum ota_err g_store(struct ota_store *st, void *ctx)
{
	struct g_report *g = ctx;
	struct ota_event ev = {g->seq, "downloading", NULL, NULL, (int64_t)g->seq};
	enum ota_err e = ota_store_event_add(st, g->dep, g->dev, &ev, 20, &g->dup);

	if (e != OTA_OK)
		return e;
	/* Inside the group's transaction: no nested one. */
	if (ota_store_tx_begin(st) != OTA_ERR_CONFLICT)
		return OTA_ERR_FORBIDDEN;
	return g->fail ? OTA_ERR_INVALID : OTA_OK;
}

struct g_thread {
	struct ota_store *st;
	int n;
	int ok, failed_as_asked, other;
};

static void *g_writer(void *arg)
{
	struct g_thread *t = arg;

	for (int i = 0; i < G_REPORTS; i++) {
		struct g_report g = {.seq = (uint64_t)i + 1, .fail = i % 10 == 3};
		snprintf(g.dep, sizeof(g.dep), "d-%02x", t->n);
		snprintf(g.dev, sizeof(g.dev), "dev-%d", t->n);
		enum ota_err e = ota_store_group(t->st, g_store, &g);
		if (e == OTA_OK && !g.fail && !g.dup)
			t->ok++;
		else if (e == OTA_ERR_INVALID && g.fail)
			t->failed_as_asked++;
		else
			t->other++;
	}
	return NULL;
}

static int g_count(const char *path, const char *where)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	char sql[256];
	int n = -1;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM deployment_events WHERE %s", where);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

static void group_commit(void **state)
{
	struct fx *f = *state;
	struct ota_release r;
	struct ota_device d;
	bool existed, created;
	char img[65];

	snprintf(img, sizeof(img), "%064d", 7);
	fill_release(&r, "r1", "1.1.0");
	assert_int_equal(ota_store_image_add(f->st, img, 100, 1, &existed), OTA_OK);
	assert_int_equal(ota_store_release_add(f->st, &r, "{}", 2, &existed), OTA_OK);
	for (int i = 0; i < G_THREADS; i++) {
		char dev[16], dep[16];
		snprintf(dev, sizeof(dev), "dev-%d", i);
		snprintf(dep, sizeof(dep), "d-%02x", i);
		assert_int_equal(ota_store_device_admit(f->st, dev, dev, 3, &d, &created), OTA_OK);
		assert_int_equal(ota_store_deployment_create(f->st, dep, dev, "r1", 4), OTA_OK);
	}

	/* One caller alone: its own group; a failing member leaves nothing. */
	struct g_report one = {.dep = "d-00", .dev = "dev-0", .seq = 1000};
	assert_int_equal(ota_store_group(f->st, g_store, &one), OTA_OK);
	assert_false(one.dup);
	assert_int_equal(ota_store_group(f->st, g_store, &one), OTA_OK);
	assert_true(one.dup);
	struct g_report bad = {.dep = "d-00", .dev = "dev-0", .seq = 1001, .fail = true};
	assert_int_equal(ota_store_group(f->st, g_store, &bad), OTA_ERR_INVALID);
	assert_int_equal(g_count(f->path, "seq >= 1000"), 1);
	/* Not inside a transaction of the caller's own thread's making either. */
	assert_int_equal(ota_store_bulk_begin(f->st), OTA_OK);
	assert_int_equal(ota_store_group(f->st, g_store, &bad), OTA_ERR_CONFLICT);
	assert_int_equal(ota_store_bulk_end(f->st, false), OTA_OK);

	/* Concurrent callers: every success stored once, every failure absent, the rest kept. */
	pthread_t th[G_THREADS];
	struct g_thread t[G_THREADS];
	for (int i = 0; i < G_THREADS; i++) {
		t[i] = (struct g_thread){.st = f->st, .n = i};
		assert_int_equal(pthread_create(&th[i], NULL, g_writer, &t[i]), 0);
	}
	int ok = 0, failed = 0;
	for (int i = 0; i < G_THREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(t[i].other, 0);
		ok += t[i].ok;
		failed += t[i].failed_as_asked;
	}
	assert_int_equal(failed, G_THREADS * (G_REPORTS / 10));
	assert_int_equal(ok, G_THREADS * G_REPORTS - failed);
	/* Read through another connection: what was acknowledged is committed. */
	assert_int_equal(g_count(f->path, "seq < 1000"), ok);
	assert_int_equal(g_count(f->path, "seq < 1000 AND (seq - 1) % 10 = 3"), 0);
}

static int collect_root(void *ctx, uint32_t version, const char *envelope)
{
	(void)envelope;
	*(uint32_t *)ctx = *(uint32_t *)ctx * 10 + version;
	return 0;
}

static void roots(void **state)
{
	struct fx *f = *state;
	uint32_t latest = 99, seen = 0;

	assert_int_equal(ota_store_root_latest(f->st, &latest), OTA_OK);
	assert_int_equal(latest, 0);
	assert_int_equal(ota_store_root_put(f->st, 1, "{\"v\":1}", 1), OTA_OK);
	assert_int_equal(ota_store_root_put(f->st, 1, "{\"v\":1}", 2), OTA_OK);
	assert_int_equal(ota_store_root_put(f->st, 1, "{\"other\":1}", 3), OTA_ERR_CONFLICT);
	assert_int_equal(ota_store_root_put(f->st, 2, "{\"v\":2}", 4), OTA_OK);
	assert_int_equal(ota_store_root_put(f->st, 3, "{\"v\":3}", 5), OTA_OK);
	assert_int_equal(ota_store_root_latest(f->st, &latest), OTA_OK);
	assert_int_equal(latest, 3);
	assert_int_equal(ota_store_roots_after(f->st, 1, collect_root, &seen), OTA_OK);
	assert_int_equal(seen, 23); /* 2 then 3, in order */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(migrations, setup, teardown),
	    cmocka_unit_test_setup_teardown(admission, setup, teardown),
	    cmocka_unit_test_setup_teardown(checkin_times, setup, teardown),
	    cmocka_unit_test_setup_teardown(active_deployment_memory, setup, teardown),
	    cmocka_unit_test_setup_teardown(releases_and_deployments, setup, teardown),
	    cmocka_unit_test_setup_teardown(release_pages, setup, teardown),
	    cmocka_unit_test_setup_teardown(roots, setup, teardown),
	    cmocka_unit_test_setup_teardown(group_commit, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
