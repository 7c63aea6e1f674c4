/*
 * test_store_faults.c - "durable before the answer", both ways, on a real temporary SQLite
 * store: an SQLite VFS shim registered as the process's default (so otad's store opens its
 * files through it) fails the writes of the write-ahead log or the flushes on demand, and can
 * slow flushes down. With it: a group whose COMMIT or flush fails answers every one of its
 * callers with an error and leaves no row behind; a device report through the deployment
 * service is not acknowledged unless its row is committed; and under concurrent reports every
 * acknowledged one is already visible from a fresh connection when its answer is returned.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pthread.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "audit/audit.h"
#include "common/err.h"
#include "deploy/deploy.h"
#include "store_fixture.h"

#define T0 1768435200

/* ---- the fault-injecting VFS ---- */

static atomic_int fail_wal_write; /* writes to a -wal file fail */
static atomic_int fail_full;      /* every write fails as on a full disk (SQLITE_FULL) */
static atomic_int fail_sync;      /* every flush fails */
static atomic_int slow_sync_ms;   /* every flush waits this long first */
static atomic_int injected;       /* faults injected so far */

static sqlite3_vfs *real_vfs;
static sqlite3_vfs shim_vfs;

struct shim_file {
	sqlite3_file base;
	sqlite3_file *real; /* follows this struct in the same allocation */
	bool wal;
};

#define REAL(f) (((struct shim_file *)(f))->real)

static int s_close(sqlite3_file *f)
{
	return REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
}
static int s_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int s_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	if (((struct shim_file *)f)->wal && atomic_load(&fail_wal_write)) {
		atomic_fetch_add(&injected, 1);
		return SQLITE_IOERR_WRITE;
	}
	if (atomic_load(&fail_full)) {
		atomic_fetch_add(&injected, 1);
		return SQLITE_FULL;
	}
	return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int s_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int s_sync(sqlite3_file *f, int flags)
{
	int ms = atomic_load(&slow_sync_ms);

	if (ms > 0) {
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (atomic_load(&fail_sync)) {
		atomic_fetch_add(&injected, 1);
		return SQLITE_IOERR_FSYNC;
	}
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int s_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int s_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int s_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int s_check(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int s_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int s_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int s_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int s_shmmap(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, pp);
}
static int s_shmlock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void s_shmbarrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int s_shmunmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int s_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp)
{
	return REAL(f)->pMethods->xFetch(REAL(f), o, n, pp);
}
static int s_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}

static const sqlite3_io_methods shim_io = {
    3,         s_close,      s_read,     s_write, s_truncate, s_sync,    s_size,
    s_lock,    s_unlock,     s_check,    s_fcntl, s_sector,   s_devchar, s_shmmap,
    s_shmlock, s_shmbarrier, s_shmunmap, s_fetch, s_unfetch,
};

static int s_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *outflags)
{
	struct shim_file *sf = (struct shim_file *)f;
	int rc;

	(void)v;
	sf->real = (sqlite3_file *)(sf + 1);
	sf->wal = (flags & SQLITE_OPEN_WAL) != 0;
	rc = real_vfs->xOpen(real_vfs, name, sf->real, flags, outflags);
	f->pMethods = sf->real->pMethods ? &shim_io : NULL;
	return rc;
}

static void shim_install(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	assert_non_null(real_vfs);
	shim_vfs = *real_vfs;
	shim_vfs.zName = "ota-faults";
	shim_vfs.szOsFile = (int)sizeof(struct shim_file) + real_vfs->szOsFile;
	shim_vfs.xOpen = s_open;
	assert_int_equal(sqlite3_vfs_register(&shim_vfs, 1), SQLITE_OK);
}

/* ---- fixture ---- */

struct fx {
	char dir[OTA_TEST_DIR_MAX];
	char path[OTA_TEST_PATH_MAX];
	struct ota_store *st;
	char rel[65];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct ota_release r;
	bool existed;

	atomic_store(&fail_wal_write, 0);
	atomic_store(&fail_sync, 0);
	atomic_store(&slow_sync_ms, 0);
	if (!f || ota_test_store_open("faults", f->dir, f->path, &f->st) != 0)
		return -1;
	memset(&r, 0, sizeof(r));
	memset(f->rel, 'a', 64);
	snprintf(r.id, sizeof(r.id), "%s", f->rel);
	snprintf(r.name, sizeof(r.name), "fw");
	snprintf(r.version, sizeof(r.version), "2.0.0");
	r.security_version = 1;
	snprintf(r.hw[r.nhw++], sizeof(r.hw[0]), "pico2w");
	snprintf(r.image_sha256, sizeof(r.image_sha256), "%s", f->rel);
	r.image_size = 100;
	snprintf(r.image_format, sizeof(r.image_format), "bin");
	if (ota_store_image_add(f->st, f->rel, 100, T0, &existed) != OTA_OK ||
	    ota_store_release_add(f->st, &r, "{}", T0, &existed) != OTA_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	int rc;

	atomic_store(&fail_wal_write, 0);
	atomic_store(&fail_full, 0);
	atomic_store(&fail_sync, 0);
	atomic_store(&slow_sync_ms, 0);
	rc = ota_test_store_close(f->dir, f->st);
	free(f);
	return rc;
}

/* A count through a fresh read-only connection (what another process would see now). */
static long fresh_count(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	long n = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return -1;
	}
	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK) {
		if (sqlite3_step(q) == SQLITE_ROW)
			n = sqlite3_column_int64(q, 0);
		sqlite3_finalize(q);
	}
	sqlite3_close(db);
	return n;
}

/* An admitted device with a known state and an active deployment of the release. */
static void device_with_deployment(struct fx *f, const char *id, char dep_id[OTA_ID_MAX + 1])
{
	struct ota_device d;
	bool created;
	struct ota_device_report r = {.id = id,
	                              .hw_variant = "pico2w",
	                              .version = "1.0.0",
	                              .root_version = 1,
	                              .active_slot = "A",
	                              .boot_state = "normal"};
	struct ota_actor op = {.name = "tester", .role = "operator"};
	struct ota_deployment dep;
	enum ota_deploy_refusal why;
	enum ota_eligibility elig;
	char msg[256];

	assert_int_equal(ota_store_device_admit(f->st, id, "00", T0, &d, &created), OTA_OK);
	assert_int_equal(ota_store_device_report(f->st, &r, T0), OTA_OK);
	assert_int_equal(
	    ota_deploy_create(f->st, &op, id, f->rel, T0 + 1, &dep, &why, &elig, msg, sizeof(msg)),
	    OTA_OK);
	snprintf(dep_id, OTA_ID_MAX + 1, "%s", dep.id);
}

static enum ota_err revoke_fn(struct ota_store *st, void *ctx)
{
	return ota_store_revoke(st, (const char *)ctx, "test", T0);
}

/* A report through the submitted group commit (ota_deploy_report_submit, as the device API
 * sends it): waits here for the committer's callback, then finishes the job on this thread. */
struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
};

static void waiter_wake(void *arg)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static enum ota_err report_submitted(struct fx *f, const char *dev, const char *dep,
                                     const struct ota_event *ev, int64_t now,
                                     struct ota_report_result *res)
{
	struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
	struct ota_report_job *job = NULL;
	enum ota_err rc = ota_deploy_report_submit(f->st, dev, dep, ev, now, waiter_wake, &w, &job);

	if (rc != OTA_OK)
		return rc;
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	return ota_deploy_report_finish(f->st, job, res);
}

/* ---- tests ---- */

/* A group whose COMMIT (its WAL writes) or whose flush fails: an error, and no row. */
static void group_commit_failure_is_an_error(void **state)
{
	struct fx *f = *state;

	atomic_store(&injected, 0);
	atomic_store(&fail_wal_write, 1);
	assert_int_equal(ota_store_group(f->st, revoke_fn, "aa"), OTA_ERR_DB);
	atomic_store(&fail_wal_write, 0);
	assert_true(atomic_load(&injected) > 0);
	assert_int_equal(fresh_count(f->path, "SELECT count(*) FROM revoked_certificates"), 0);

	atomic_store(&injected, 0);
	atomic_store(&fail_sync, 1);
	assert_int_equal(ota_store_group(f->st, revoke_fn, "bb"), OTA_ERR_DB);
	atomic_store(&fail_sync, 0);
	assert_true(atomic_load(&injected) > 0);
	assert_int_equal(fresh_count(f->path, "SELECT count(*) FROM revoked_certificates"), 0);

	/* The store recovers: the next group commits. */
	assert_int_equal(ota_store_group(f->st, revoke_fn, "cc"), OTA_OK);
	assert_int_equal(fresh_count(f->path, "SELECT count(*) FROM revoked_certificates"), 1);
}

/* A device report whose group cannot commit is not acknowledged (no OTA_OK, so no 2xx), and
 * nothing of it is stored; the same report once the disk is back is. */
static void report_not_acknowledged_unless_committed(void **state)
{
	struct fx *f = *state;
	char dep[OTA_ID_MAX + 1], sql[256];
	struct ota_event ev = {.seq = 1, .status = "downloading", .progress = 10};
	struct ota_report_result res;

	device_with_deployment(f, "dev-1", dep);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM deployment_events WHERE deployment_id = '%s'", dep);

	atomic_store(&fail_wal_write, 1);
	assert_int_not_equal(ota_deploy_report(f->st, "dev-1", dep, &ev, T0 + 5, &res), OTA_OK);
	atomic_store(&fail_wal_write, 0);
	assert_int_equal(fresh_count(f->path, sql), 0);

	atomic_store(&fail_sync, 1);
	assert_int_not_equal(ota_deploy_report(f->st, "dev-1", dep, &ev, T0 + 6, &res), OTA_OK);
	atomic_store(&fail_sync, 0);
	assert_int_equal(fresh_count(f->path, sql), 0);

	assert_int_equal(ota_deploy_report(f->st, "dev-1", dep, &ev, T0 + 7, &res), OTA_OK);
	assert_false(res.duplicate);
	assert_int_equal(fresh_count(f->path, sql), 1);

	/* The same through a submitted group: the callback comes, the answer is the failure. */
	ev.seq = 2;
	atomic_store(&fail_wal_write, 1);
	assert_int_not_equal(report_submitted(f, "dev-1", dep, &ev, T0 + 8, &res), OTA_OK);
	atomic_store(&fail_wal_write, 0);
	atomic_store(&fail_sync, 1);
	assert_int_not_equal(report_submitted(f, "dev-1", dep, &ev, T0 + 9, &res), OTA_OK);
	atomic_store(&fail_sync, 0);
	assert_int_equal(fresh_count(f->path, sql), 1);
	assert_int_equal(report_submitted(f, "dev-1", dep, &ev, T0 + 10, &res), OTA_OK);
	assert_false(res.duplicate);
	assert_string_equal(res.deployment_status, "active");
	assert_int_equal(fresh_count(f->path, sql), 2);
	assert_int_equal(report_submitted(f, "dev-1", dep, &ev, T0 + 11, &res), OTA_OK);
	assert_true(res.duplicate);
	assert_int_equal(fresh_count(f->path, sql), 2);
}

/* Each write path notes a full or failing disk as a storage fault on the calling thread
 * (common/err.h: the HTTP layer answers 503 storage-unavailable then), and nothing else does:
 * a device's check-in, its report through a group commit (also for a caller whose group
 * another thread led), an audit entry of its own, and the migrations of a new database. */
static enum ota_err run_fault(struct fx *f, int which, const char *dep)
{
	struct ota_device_report c = {.id = "dev-2",
	                              .hw_variant = "pico2w",
	                              .version = "1.0.1",
	                              .root_version = 1,
	                              .active_slot = "A",
	                              .boot_state = "normal"};
	struct ota_event ev = {.seq = 1, .status = "downloading", .progress = 10};
	struct ota_report_result res;
	struct ota_audit_entry e = {.actor = "tester", .action = "test.fault"};
	struct ota_offer offer;
	enum ota_err rc = OTA_ERR_INVALID;

	switch (which) {
	case 0:
		memset(&offer, 0, sizeof(offer));
		rc = ota_deploy_checkin(f->st, &c, T0 + 10, &offer);
		ota_offer_clear(&offer);
		break;
	case 1:
		rc = ota_deploy_report(f->st, "dev-2", dep, &ev, T0 + 11, &res);
		break;
	case 2:
		rc = ota_audit_append(f->st, &e, T0 + 12, NULL);
		break;
	case 3:
		rc = ota_store_group(f->st, revoke_fn, "dd");
		break;
	case 4: /* committed on the store's committer thread, answered on this one */
		ev.seq = 2;
		rc = report_submitted(f, "dev-2", dep, &ev, T0 + 13, &res);
		break;
	}
	return rc;
}

struct follower {
	struct fx *f;
	enum ota_err rc;
	bool noted;
};

static void *group_follower(void *arg)
{
	struct follower *w = arg;

	(void)ota_storage_fault_take();
	w->rc = ota_store_group(w->f->st, revoke_fn, "ee");
	w->noted = ota_storage_fault_take();
	return NULL;
}

static void storage_faults_noted_on_each_write_path(void **state)
{
	struct fx *f = *state;
	char dep[OTA_ID_MAX + 1];

	device_with_deployment(f, "dev-2", dep);
	for (int which = 0; which < 5; which++) {
		for (int kind = 0; kind < 2; kind++) {
			(void)ota_storage_fault_take();
			atomic_store(&injected, 0);
			atomic_store(kind ? &fail_wal_write : &fail_full, 1);
			assert_int_not_equal(run_fault(f, which, dep), OTA_OK);
			atomic_store(kind ? &fail_wal_write : &fail_full, 0);
			assert_true(atomic_load(&injected) > 0);
			assert_true(ota_storage_fault_take());
		}
	}
	/* Space back: every path succeeds and notes nothing. */
	for (int which = 0; which < 5; which++) {
		assert_int_equal(run_fault(f, which, dep), OTA_OK);
		assert_false(ota_storage_fault_take());
	}
	/* A group led by another thread: its failure is this caller's fault too. */
	struct follower w[4];
	pthread_t t[4];
	atomic_store(&slow_sync_ms, 20); /* so that callers queue behind a leader */
	atomic_store(&fail_full, 1);
	for (int i = 0; i < 4; i++) {
		w[i].f = f;
		assert_int_equal(pthread_create(&t[i], NULL, group_follower, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_not_equal(w[i].rc, OTA_OK);
		assert_true(w[i].noted);
	}
	atomic_store(&fail_full, 0);
	atomic_store(&slow_sync_ms, 0);
	/* A new database whose migrations cannot be written: refused, and opens once they can. */
	char path[sizeof(f->path) + 8];
	struct ota_store *st = NULL;
	char msg[256] = "";
	snprintf(path, sizeof(path), "%s.new", f->path);
	atomic_store(&fail_full, 1);
	assert_int_not_equal(ota_store_open(path, &st, msg, sizeof(msg)), OTA_OK);
	atomic_store(&fail_full, 0);
	assert_null(st);
	assert_non_null(strstr(msg, "full"));
	assert_int_equal(ota_store_open(path, &st, msg, sizeof(msg)), OTA_OK);
	assert_int_equal(ota_store_schema_version(st), ota_store_schema_latest());
	ota_store_free(st);
	remove(path);
	snprintf(msg, sizeof(msg), "%s.new-wal", f->path);
	remove(msg);
	snprintf(msg, sizeof(msg), "%s.new-shm", f->path);
	remove(msg);
}

#define THREADS 6
#define REPORTS 30

struct worker {
	struct fx *f;
	char device[16];
	char dep[OTA_ID_MAX + 1];
	int acked, unseen, failed;
};

static void *report_worker(void *arg)
{
	struct worker *w = arg;
	char sql[256];

	for (int i = 1; i <= REPORTS; i++) {
		struct ota_event ev = {.seq = (uint64_t)i, .status = "downloading", .progress = i};
		struct ota_report_result res;
		if (ota_deploy_report(w->f->st, w->device, w->dep, &ev, T0 + 10 + i, &res) !=
		    OTA_OK) {
			w->failed++;
			continue;
		}
		/* The answer would be sent now: the row must be visible to anyone. */
		w->acked++;
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM deployment_events WHERE deployment_id = '%s' "
		         "AND seq = %d",
		         w->dep, i);
		if (fresh_count(w->f->path, sql) != 1)
			w->unseen++;
	}
	return NULL;
}

/* Concurrent reports, flushes slowed down so that groups form and the window between an early
 * release and the COMMIT is wide: every acknowledged report is visible from a fresh
 * connection the moment ota_deploy_report() returns. */
static void acknowledged_reports_visible_at_once(void **state)
{
	struct fx *f = *state;
	struct worker w[THREADS];
	pthread_t t[THREADS];
	int acked = 0, unseen = 0, failed = 0;

	memset(w, 0, sizeof(w));
	for (int i = 0; i < THREADS; i++) {
		w[i].f = f;
		snprintf(w[i].device, sizeof(w[i].device), "dev-%d", i);
		device_with_deployment(f, w[i].device, w[i].dep);
	}
	atomic_store(&slow_sync_ms, 3);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, report_worker, &w[i]), 0);
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		acked += w[i].acked;
		unseen += w[i].unseen;
		failed += w[i].failed;
	}
	atomic_store(&slow_sync_ms, 0);
	printf("%d reports acknowledged, %d of them not yet visible, %d failed\n", acked, unseen,
	       failed);
	assert_int_equal(failed, 0);
	assert_int_equal(acked, THREADS * REPORTS);
	assert_int_equal(unseen, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(group_commit_failure_is_an_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(report_not_acknowledged_unless_committed, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(acknowledged_reports_visible_at_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(storage_faults_noted_on_each_write_path, setup,
	                                    teardown),
	};

	shim_install();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
