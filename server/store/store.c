/*
 * store/store.c - the SQLite backend of store.h. One connection in WAL mode with
 * synchronous=FULL (an acknowledged write survives power loss), foreign keys on, a busy
 * timeout, and every statement prepared once and reused; a mutex serialises callers, and each
 * writing call is one IMMEDIATE transaction. ota_store_group() is group commit: concurrent
 * callers queue their writes, one of them (the leader) runs the whole queue in one
 * transaction, each caller's writes in its own savepoint, commits once and wakes them all;
 * the queue fills again while the leader waits for the flush.
 */
#include "store/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/test_hook.h"
#include "common/util.h"
#include "store/internal.h"
#include "store/migrations.h"
#include "store/sql.h"

/* One writer at a time, as in SQLite, also across otad instances on one PostgreSQL database
 * (docs/scaling.md): every write transaction takes the same advisory lock first. */
static const char *const SQL_BEGIN[] = {
    "BEGIN IMMEDIATE", "BEGIN; SELECT pg_advisory_xact_lock(" OTA_PG_LOCK_WRITE ")"};
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_REVOKED[] = "SELECT 1 FROM revoked_certificates WHERE fingerprint = ?1";
static const char SQL_REVOKE[] =
    "INSERT INTO revoked_certificates (fingerprint, reason, revoked_at) "
    "VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";
static const char SQL_DEV_INSERT[] = "INSERT INTO devices (id, fingerprint, admitted_at) "
                                     "VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";
static const char SQL_DEV_GET[] =
    "SELECT id, fingerprint, status, hw_variant, version, security_floor, "
    "root_version, last_seen FROM devices WHERE id = ?1";
static const char SQL_DEV_REPORT[] =
    "UPDATE devices SET hw_variant = ?2, version = ?3, security_floor = ?4, "
    "root_version = ?5, active_slot = ?6, boot_state = ?7, "
    "last_outcome = coalesce(?8, last_outcome), last_seen = ?9 WHERE id = ?1";
static const char SQL_DEV_TAGS[] = "SELECT tag FROM device_tags WHERE device_id = ?1 ORDER BY tag";
static const char SQL_IMG_INSERT[] =
    "INSERT INTO images (sha256, size, created_at) VALUES (?1, ?2, ?3) "
    "ON CONFLICT DO NOTHING";
static const char SQL_IMG_GET[] = "SELECT size FROM images WHERE sha256 = ?1";
static const char SQL_ROOT_GET[] = "SELECT envelope FROM roots WHERE version = ?1";
static const char SQL_ROOT_INSERT[] =
    "INSERT INTO roots (version, envelope, created_at) VALUES (?1, ?2, ?3)";
static const char SQL_ROOT_LATEST[] = "SELECT coalesce(max(version), 0) FROM roots";
static const char SQL_ROOTS_AFTER[] =
    "SELECT version, envelope FROM roots WHERE version > ?1 ORDER BY version";
static const char SQL_REL_INSERT[] =
    "INSERT INTO releases (id, name, version, security_version, image_sha256, "
    "image_size, image_format, manifest_created, envelope, created_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
static const char SQL_REL_HW_INSERT[] = "INSERT INTO release_hw_variants (release_id, hw_variant) "
                                        "VALUES (?1, ?2) ON CONFLICT DO NOTHING";
static const char SQL_REL_GET[] =
    "SELECT id, name, version, security_version, image_sha256, image_size, "
    "image_format, manifest_created, created_at, envelope FROM releases "
    "WHERE id = ?1";
static const char SQL_REL_HW[] = "SELECT hw_variant FROM release_hw_variants WHERE release_id = ?1 "
                                 "ORDER BY hw_variant";
static const char SQL_REL_LIST[] =
    "SELECT id FROM releases WHERE CAST(?2 AS TEXT) IS NULL OR created_at < ?1 "
    "OR (created_at = ?1 AND id > ?2) ORDER BY created_at DESC, id LIMIT ?3";
static const char SQL_REL_BY_NAME[] = "SELECT id FROM releases WHERE name = ?1 AND version = ?2";
static const char SQL_DEP_INSERT[] =
    "INSERT INTO deployments (id, device_id, release_id, created_at, "
    "updated_at) VALUES (?1, ?2, ?3, ?4, ?4)";
static const char SQL_DEP_GET[] =
    "SELECT id, device_id, release_id, status, reason, created_at, updated_at, "
    "coalesce(finished_at, 0) FROM deployments WHERE id = ?1";
static const char SQL_DEP_ACTIVE[] =
    "SELECT id, device_id, release_id, status, reason, created_at, "
    "updated_at, coalesce(finished_at, 0) FROM deployments "
    "WHERE device_id = ?1 AND status = 'active'";
static const char SQL_DEP_END[] =
    "UPDATE deployments SET status = ?2, reason = ?3, updated_at = ?4, "
    "finished_at = ?4 WHERE id = ?1 AND status = 'active'";
static const char SQL_IMG_ALLOWED[] =
    "SELECT 1 FROM deployments d JOIN releases r ON r.id = d.release_id "
    "WHERE d.device_id = ?1 AND d.status = 'active' AND r.image_sha256 = ?2";
static const char SQL_EV_INSERT[] =
    "INSERT INTO deployment_events (deployment_id, seq, device_id, "
    "status, reason, version, progress, received_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING";
static const char SQL_EV_SAME[] =
    "SELECT count(*) FROM deployment_events WHERE deployment_id = ?1 AND seq = ?2 AND "
    "status = ?3 AND reason = ?4 AND version IS NOT DISTINCT FROM ?5 AND progress IS NOT DISTINCT "
    "FROM ?6";
static const char SQL_EV_LIST[] =
    "SELECT seq, status, reason, version, coalesce(progress, -1), received_at "
    "FROM deployment_events WHERE deployment_id = ?1 ORDER BY seq";
static const char SQL_DEV_STATE[] =
    "SELECT hw_variant, version, security_floor, root_version, active_slot, boot_state, "
    "last_outcome FROM devices WHERE id = ?1";
static const char SQL_DEV_SEEN[] =
    "UPDATE devices SET last_seen = ?2 WHERE id = ?1 AND coalesce(last_seen, 0) < ?2";
static const char SQL_SAVEPOINT[] = "SAVEPOINT grp";
static const char SQL_RELEASE[] = "RELEASE grp";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO grp";

/* One caller of ota_store_group(), on its stack while it waits. */
struct group_item {
	enum ota_err (*fn)(struct ota_store *st, void *ctx);
	void *ctx;
	enum ota_err rc;
	bool done;
	bool fault; /* the group met a storage fault (common/err.h) on the leader's thread */
	/* ota_store_group_submit(): called once the group is over; the item is then freed. NULL
	 * for ota_store_group()'s callers, whose items are on their stacks. */
	void (*on_done)(void *arg, enum ota_err rc, bool fault);
	void *done_arg;
	struct group_item *next;
};

/*
 * What the store knows of one device's row since it was last read or written (the last-seen
 * batching, ota_store_device_report()): the reported state as it stands in the row, and the
 * newest check-in time not written yet. Allocated once, never moved or freed before the store.
 */
struct seen_entry {
	char *key;     /* "id\0state\0outcome\0" (malloc'd), state = the row's reported fields */
	size_t id_len; /* strlen(id) */
	size_t st_len; /* strlen(state) */
	bool known;    /* key's state is the row's (false: read the row again) */
	bool queued;   /* on the dirty list */
	bool idle;     /* the device had no active deployment at deployments generation idle_gen */
	int64_t seen;  /* newest check-in not written to the row yet, 0 when none */
	uint64_t idle_gen;
};

/* The deployments generations: DEP_SLOTS counters of the process, a device's chosen by the hash
 * of its id. A slot moves when a deployment is created for one of its devices, when the row is
 * written and again when its transaction ends, and, with several instances, when another
 * instance's creation commits (NOTIFY). A read that found no active deployment for a device at
 * generation g stays true while its slot reads g (ota_store_deployment_active_cached()). */
#define DEP_SLOTS 1024

struct ota_store {
	struct ota_sql *db;
	pthread_mutex_t lock;
	int schema_version;
	bool bulk; /* inside ota_store_bulk_begin/end: calls join the open transaction */
	bool tx;   /* inside ota_store_tx_begin/end (the lock is held throughout) */
	struct {
		const char *sql; /* identity of the text (a static string) */
		struct ota_sql_stmt *q;
	} cache[OTA_STORE_STMTS]; /* every prepared statement of the store, by SQL pointer */
	/* group commit: the queue of waiting callers, guarded by g_mu (never held with lock) */
	pthread_mutex_t g_mu;
	pthread_cond_t g_cv;
	struct group_item *g_head, **g_tail;
	bool g_leader; /* a caller is running and committing a group */
	/* The committer thread leads the groups of submitted items (ota_store_group_submit),
	 * started by the first submit and stopped by ota_store_free() once the queue is empty. */
	pthread_t g_thread;
	bool g_thread_on, g_stop;
	unsigned long long g_groups, g_items; /* committed groups and the items in them */
	struct ota_store_target target;       /* copies, for the group writer's connection */
	/* The database is shared with other otad instances (PostgreSQL): what this handle
	 * remembers of rows is checked against the database, and changes are announced. */
	bool shared;
	pthread_t l_thread; /* the listener of the other instances' changes (main handle) */
	bool l_thread_on;
	atomic_bool l_stop;
	/* The groups' own handle on the same file (opened by the first group), so that its
	 * flush holds only the writer's lock: readers and the next group's callers go on. */
	struct ota_store *writer;
	/* an access change (ota_store__access_changed) waits for this handle's COMMIT */
	atomic_bool access_pending;
	/* a rollout change (ota_store__rollouts_changed) waits for this handle's COMMIT */
	atomic_bool rollouts_pending;
	/* deployments created in this handle's open transaction: their slots move again at its end
	 */
	atomic_bool dep_pending;
	atomic_uint_fast64_t dep_slots[DEP_SLOTS / 64];
	/* last-seen batching: devices by id (open addressing) and those with a time to write;
	 * guarded by s_mu, which is taken after lock, never before it */
	pthread_mutex_t s_mu;
	struct seen_entry **s_slots;
	size_t s_cap, s_n;
	struct seen_entry **s_dirty;
	size_t s_ndirty, s_dirty_cap;
};

/* The access generation (store.h): one per process, since every handle of the process writes
 * the same database, and a connection's identity is checked against it on every request. */
static atomic_uint_fast64_t g_access_gen = 1;
static void announce(struct ota_store *st, const char *what);

uint64_t ota_store_access_generation(void)
{
	return (uint64_t)atomic_load_explicit(&g_access_gen, memory_order_acquire);
}

void ota_store__access_changed(struct ota_store *st)
{
	announce(st, "access");
	/* Now, so that a check from here on reads the store again, and once more when the
	 * change commits: a check that read the store before the commit is then stale too. */
	atomic_fetch_add_explicit(&g_access_gen, 1, memory_order_acq_rel);
	if (ota_sql_in_tx(st->db))
		atomic_store(&st->access_pending, true);
}

/* The rollouts generation (store.h), process-wide like the access generation. */
static atomic_uint_fast64_t g_rollouts_gen = 1;

uint64_t ota_store_rollouts_generation(void)
{
	return (uint64_t)atomic_load_explicit(&g_rollouts_gen, memory_order_acquire);
}

void ota_store__rollouts_changed(struct ota_store *st)
{
	announce(st, "rollouts");
	/* After the write: a reader that loaded before this saw the old generation too. */
	atomic_fetch_add_explicit(&g_rollouts_gen, 1, memory_order_acq_rel);
	if (st && ota_sql_in_tx(st->db))
		atomic_store(&st->rollouts_pending, true);
}

static atomic_uint_fast64_t g_dep_gen[DEP_SLOTS];
static atomic_uint_fast64_t g_dep_skipped, g_dep_read; /* ota_store_deployment_reads() */

static uint64_t id_hash(const char *id, size_t len)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)id[i]) * 1099511628211ull;
	return h;
}

static size_t dep_slot(const char *device_id, size_t len)
{
	/* the high bits: the last-seen table takes its slots from the low ones */
	return (size_t)(id_hash(device_id, len) >> 54) % DEP_SLOTS;
}

static void bump(atomic_uint_fast64_t *gen)
{
	atomic_fetch_add_explicit(gen, 1, memory_order_acq_rel);
}

static void dep_bump_all(void)
{
	for (size_t i = 0; i < DEP_SLOTS; i++)
		bump(&g_dep_gen[i]);
}

/* A deployment was just written for device_id on st (its lock is held). */
static void deployment_created(struct ota_store *st, const char *device_id)
{
	size_t slot = dep_slot(device_id, strlen(device_id));

	if (st->shared) {
		char payload[32];
		snprintf(payload, sizeof(payload), "deployments %zu", slot);
		announce(st, payload);
	}
	bump(&g_dep_gen[slot]);
	if (ota_sql_in_tx(st->db)) {
		atomic_fetch_or(&st->dep_slots[slot / 64], (uint_fast64_t)1 << (slot % 64));
		atomic_store(&st->dep_pending, true);
	}
}

/* st's transaction ended: the slots of the deployments it created move again. */
static void deployments_settled(struct ota_store *st)
{
	if (!atomic_exchange(&st->dep_pending, false))
		return;
	for (size_t w = 0; w < DEP_SLOTS / 64; w++)
		for (uint64_t bits = atomic_exchange(&st->dep_slots[w], 0); bits; bits &= bits - 1)
			bump(&g_dep_gen[w * 64 + (size_t)__builtin_ctzll(bits)]);
}

void ota_store_deployment_reads(uint64_t *skipped, uint64_t *read)
{
	*skipped = atomic_load(&g_dep_skipped);
	*read = atomic_load(&g_dep_read);
}

/* ---- several instances on one database ---- */

/* A change of who may connect, of the rollouts or a new deployment is announced on the channel
 * ota_changes with the writing transaction (PostgreSQL delivers it when that commits); every
 * instance's listener bumps its own generation then, so that its caches read the database
 * again. what: "access", "rollouts" or "deployments <slot>". */
static void announce(struct ota_store *st, const char *what)
{
	static const char sql[] = "SELECT pg_notify('ota_changes', ?1)";

	if (!st || !st->shared)
		return;
	pthread_mutex_lock(&st->lock);
	struct ota_sql_stmt *q = ota_store__stmt(st, sql);
	if (q)
		ota_sql_bind_text(q, 1, what);
	if (q && ota_sql_step(q) == OTA_SQL_ERROR)
		log_warn("store: cannot announce a change to the other instances: %s",
		         ota_sql_errmsg(st->db));
	ota_sql_reset(q);
	pthread_mutex_unlock(&st->lock);
}

/* What another instance announced (announce()). */
static void heard(const char *what)
{
	unsigned slot;
	char end;

	if (strcmp(what, "access") == 0)
		bump(&g_access_gen);
	else if (strcmp(what, "rollouts") == 0)
		bump(&g_rollouts_gen);
	else if (sscanf(what, "deployments %u%c", &slot, &end) == 1 && slot < DEP_SLOTS)
		bump(&g_dep_gen[slot]);
	else { /* not ours to read: everything is read again */
		bump(&g_access_gen);
		bump(&g_rollouts_gen);
		dep_bump_all();
	}
}

static void *listener(void *arg)
{
	struct ota_store *st = arg;
	struct ota_sql *db = NULL;
	char buf[32];
	bool said = false;

	while (!atomic_load(&st->l_stop)) {
		if (!db) {
			char msg[256];
			if (ota_sql_open_pg(st->target.conninfo, &db, msg, sizeof(msg)) != OTA_OK ||
			    ota_sql_listen(db, "ota_changes") != OTA_OK) {
				if (!said)
					log_warn(
					    "store: not hearing the other instances' changes: %s",
					    db ? ota_sql_errmsg(db) : msg);
				said = true;
				ota_sql_close(db);
				db = NULL;
				for (int i = 0; i < 10 && !atomic_load(&st->l_stop); i++)
					nanosleep(&(struct timespec){.tv_nsec = 100000000}, NULL);
				continue;
			}
			if (said)
				log_notice("store: hearing the other instances' changes again");
			said = false;
			/* What changed while nobody listened is unknown: all is read again. */
			bump(&g_access_gen);
			bump(&g_rollouts_gen);
			dep_bump_all();
		}
		int r = ota_sql_notified(db, 200, buf, sizeof(buf));
		if (r > 0)
			heard(buf);
		if (r < 0) {
			ota_sql_close(db);
			db = NULL;
		}
	}
	ota_sql_close(db);
	return NULL;
}

int ota_store_schema_latest(void)
{
	return ota_migrations_count ? ota_migrations[ota_migrations_count - 1].version : 0;
}

int ota_store_schema_version(struct ota_store *st)
{
	return st->schema_version;
}

/* Every statement ends here: a step that failed on a full or failing disk is noted as a
 * storage fault on this thread (common/err.h), whichever call ran it. */
static void done(struct ota_sql_stmt *s)
{
	if (s) {
		ota_sql_reset(s);
	}
}

/* A storage failure (a full or failing disk, PostgreSQL out of reach) fails every request
 * until it passes, thousands a second on a busy server: its reason is logged once a window. */
static struct ota_log_limit storage_log = OTA_LOG_LIMIT_INIT(10);

enum ota_err ota_store__fail(struct ota_store *st, const char *what)
{
	const char *msg = ota_sql_errmsg(st->db);
	unsigned long quiet = 0;

	if (ota_sql_failure(st->db) == OTA_SQL_F_STORAGE &&
	    !ota_log_limit_pass(&storage_log, msg, &quiet))
		return OTA_ERR_DB; /* the same reason within its window: counted */
	if (quiet)
		log_err("store: %s: %s (%lu more storage failures not logged since the last line)",
		        what, msg, quiet);
	else
		log_err("store: %s: %s", what, msg);
	return OTA_ERR_DB;
}

/* Runs a statement whose results do not matter. */
static enum ota_err run(struct ota_store *st, const char *sql)
{
	struct ota_sql_stmt *q = ota_store__stmt(st, sql);
	int rc;

	if (!q)
		return OTA_ERR_DB;
	rc = ota_sql_step(q);
	done(q);
	if ((sql == SQL_COMMIT || sql == SQL_ROLLBACK) &&
	    atomic_exchange(&st->access_pending, false))
		atomic_fetch_add_explicit(&g_access_gen, 1, memory_order_acq_rel);
	if ((sql == SQL_COMMIT || sql == SQL_ROLLBACK) &&
	    atomic_exchange(&st->rollouts_pending, false))
		atomic_fetch_add_explicit(&g_rollouts_gen, 1, memory_order_acq_rel);
	if (sql == SQL_COMMIT || sql == SQL_ROLLBACK)
		deployments_settled(st);
	if (rc == OTA_SQL_ERROR) /* a row is no failure: PostgreSQL's BEGIN takes a lock */
		return ota_store__fail(st, sql);
	return OTA_OK;
}

static enum ota_err begin(struct ota_store *st)
{
	if (st->bulk || st->tx)
		return OTA_OK;
	return run(st, OTA_SQL_PICK(st, SQL_BEGIN));
}

static enum ota_err commit(struct ota_store *st)
{
	if (st->bulk || st->tx)
		return OTA_OK;
	return run(st, SQL_COMMIT);
}

static void rollback(struct ota_store *st)
{
	if (st->bulk || st->tx)
		return; /* ota_store_bulk_end() / ota_store_tx_end() decide for the whole */
	if (ota_sql_in_tx(st->db))
		(void)run(st, SQL_ROLLBACK);
}

static void text(struct ota_sql_stmt *q, int col, char *out, size_t cap)
{
	const char *t = ota_sql_column_text(q, col);
	snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static void bind_text(struct ota_sql_stmt *q, int i, const char *s)
{
	if (s)
		ota_sql_bind_text(q, i, s);
	else
		ota_sql_bind_null(q, i);
}

/* The schema's version, its lock and its record, per backend (docs/architecture.md, "The
 * store"): SQLite keeps the number in PRAGMA user_version under an exclusive transaction;
 * PostgreSQL in the table schema_version, under an advisory lock that makes instances
 * starting together migrate once. */
static const char *const SQL_SCHEMA_LOCK[] = {
    "BEGIN EXCLUSIVE", "BEGIN; SELECT pg_advisory_xact_lock(" OTA_PG_LOCK_MIGRATE "); "
                       "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)"};
static const char *const SQL_SCHEMA_GET[] = {
    "PRAGMA user_version", "SELECT coalesce(max(version), 0) FROM schema_version"};

static const struct ota_migration *migrations(enum ota_sql_kind kind, unsigned *n)
{
	if (kind == OTA_SQL_POSTGRESQL) {
		*n = ota_migrations_pg_count;
		return ota_migrations_pg;
	}
	*n = ota_migrations_count;
	return ota_migrations;
}

static enum ota_err migrate(struct ota_store *st, char *msg, size_t msglen)
{
	enum ota_sql_kind kind = ota_sql_kind(st->db);
	enum ota_err rc = OTA_ERR_SCHEMA;
	struct ota_sql_stmt *q = NULL;
	unsigned n;
	const struct ota_migration *m = migrations(kind, &n);
	int current = -1, latest = n ? m[n - 1].version : 0;

	/* Numbers increase; gaps are allowed (each component has its own range of numbers). */
	for (unsigned i = 0; i < n; i++) {
		if (m[i].version <= (i ? m[i - 1].version : 0)) {
			ota_say(msg, msglen, "migration %s is out of sequence", m[i].name);
			goto out;
		}
	}
	if (ota_sql_exec(st->db, SQL_SCHEMA_LOCK[kind]) != OTA_SQL_DONE) {
		ota_say(msg, msglen, "cannot lock the database: %s", ota_sql_errmsg(st->db));
		rc = OTA_ERR_DB;
		goto out;
	}
	q = ota_sql_prepare(st->db, SQL_SCHEMA_GET[kind]);
	if (!q || ota_sql_step(q) != OTA_SQL_ROW) {
		ota_say(msg, msglen, "cannot read the schema version: %s", ota_sql_errmsg(st->db));
		rc = OTA_ERR_DB;
		goto out;
	}
	current = (int)ota_sql_column_int64(q, 0);
	ota_sql_finalize(q);
	q = NULL;
	if (current > latest) {
		ota_say(msg, msglen,
		        "the database has schema version %d, newer than this otad knows (%d): "
		        "refusing to run an older otad on it",
		        current, latest);
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		if (m[i].version <= current)
			continue;
		if (ota_sql_exec(st->db, m[i].sql) != OTA_SQL_DONE) {
			ota_say(msg, msglen, "migration %s failed: %s", m[i].name,
			        ota_sql_errmsg(st->db));
			goto out;
		}
		log_notice("store: applied migration %s", m[i].name);
	}
	if (current != latest) {
		char set[128];
		if (kind == OTA_SQL_POSTGRESQL)
			snprintf(
			    set, sizeof(set),
			    "DELETE FROM schema_version; INSERT INTO schema_version VALUES (%d)",
			    latest);
		else
			snprintf(set, sizeof(set), "PRAGMA user_version = %d", latest);
		if (ota_sql_exec(st->db, set) != OTA_SQL_DONE) {
			ota_say(msg, msglen, "cannot set the schema version: %s",
			        ota_sql_errmsg(st->db));
			goto out;
		}
	}
	if (ota_sql_exec(st->db, "COMMIT") != OTA_SQL_DONE) {
		ota_say(msg, msglen, "cannot commit the migrations: %s", ota_sql_errmsg(st->db));
		rc = OTA_ERR_DB;
		goto out;
	}
	st->schema_version = latest;
	rc = OTA_OK;
out:
	ota_sql_finalize(q);
	if (rc != OTA_OK && ota_sql_in_tx(st->db))
		(void)ota_sql_exec(st->db, "ROLLBACK");
	return rc;
}

void ota_store_global_init(void)
{
	ota_sql_global_init();
}

enum ota_err ota_store_open(const char *path, struct ota_store **out, char *msg, size_t msglen)
{
	struct ota_store_target t = {.backend = OTA_STORE_SQLITE, .path = path};
	return ota_store_open_target(&t, out, msg, msglen);
}

/* A handle without the listener: the main one (ota_store_open_target()) or a group writer. */
static enum ota_err open_handle(const struct ota_store_target *t, struct ota_store **out, char *msg,
                                size_t msglen)
{
	enum ota_err rc = OTA_ERR_NOMEM;
	struct ota_store *st = calloc(1, sizeof(*st));

	*out = NULL;
	ota_store_global_init();
	if (!st)
		goto out;
	/* Recursive: a thread inside ota_store_tx_begin/end calls the other functions. */
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&st->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_mutex_init(&st->g_mu, NULL);
	pthread_cond_init(&st->g_cv, NULL);
	pthread_mutex_init(&st->s_mu, NULL);
	st->g_tail = &st->g_head;
	st->target.backend = t->backend;
	st->target.path = strdup(t->path ? t->path : "");
	st->target.conninfo = strdup(t->conninfo ? t->conninfo : "");
	if (!st->target.path || !st->target.conninfo)
		goto out;
	rc = t->backend == OTA_STORE_POSTGRESQL
	         ? ota_sql_open_pg(t->conninfo, &st->db, msg, msglen)
	         : ota_sql_open_sqlite(t->path, &st->db, msg, msglen);
	if (rc != OTA_OK)
		goto out;
	st->shared = t->backend == OTA_STORE_POSTGRESQL;
	rc = migrate(st, msg, msglen);
	if (rc != OTA_OK)
		goto out;
	/* A cache of another database (or of a freed handle at this address) is stale. */
	ota_store__rollouts_changed(NULL);
	*out = st;
	st = NULL;
out:
	ota_store_free(st);
	return rc;
}

enum ota_err ota_store_open_target(const struct ota_store_target *t, struct ota_store **out,
                                   char *msg, size_t msglen)
{
	enum ota_err rc = open_handle(t, out, msg, msglen);

	if (rc == OTA_OK && (*out)->shared) {
		if (pthread_create(&(*out)->l_thread, NULL, listener, *out) != 0) {
			ota_say(msg, msglen, "cannot start the listener thread");
			ota_store_free(*out);
			*out = NULL;
			return OTA_ERR_NOMEM;
		}
		(*out)->l_thread_on = true;
	}
	return rc;
}

void ota_store_free(struct ota_store *st)
{
	if (!st)
		return;
	atomic_store(&st->l_stop, true);
	if (st->l_thread_on)
		pthread_join(st->l_thread, NULL);
	pthread_mutex_lock(&st->g_mu);
	st->g_stop = true;
	pthread_cond_broadcast(&st->g_cv);
	pthread_mutex_unlock(&st->g_mu);
	if (st->g_thread_on)
		pthread_join(st->g_thread, NULL); /* after the last submitted group's commit */
	if (st->db && st->s_ndirty && ota_store_seen_flush(st) != OTA_OK)
		log_err("store: the last check-in times of %zu devices were not written",
		        st->s_ndirty);
	for (size_t i = 0; i < st->s_cap; i++) {
		if (st->s_slots[i])
			free(st->s_slots[i]->key);
		free(st->s_slots[i]);
	}
	free(st->s_slots);
	free(st->s_dirty);
	pthread_mutex_destroy(&st->s_mu);
	for (int i = 0; i < OTA_STORE_STMTS; i++)
		ota_sql_finalize(st->cache[i].q);
	ota_sql_close(st->db);
	pthread_mutex_destroy(&st->lock);
	ota_store_free(st->writer);
	free((char *)st->target.path);
	free((char *)st->target.conninfo);
	pthread_mutex_destroy(&st->g_mu);
	pthread_cond_destroy(&st->g_cv);
	free(st);
}

#define LOCK(st) pthread_mutex_lock(&(st)->lock)
#define UNLOCK(st) pthread_mutex_unlock(&(st)->lock)

/* ---- bulk loading ---- */

enum ota_err ota_store_bulk_begin(struct ota_store *st)
{
	enum ota_err rc = OTA_ERR_CONFLICT;
	LOCK(st);
	if (st->bulk)
		goto out;
	rc = begin(st);
	if (rc == OTA_OK)
		st->bulk = true;
out:
	UNLOCK(st);
	return rc;
}

enum ota_err ota_store_bulk_end(struct ota_store *st, bool commit_it)
{
	enum ota_err rc = OTA_ERR_CONFLICT;
	LOCK(st);
	if (!st->bulk)
		goto out;
	st->bulk = false;
	rc = commit_it ? commit(st) : OTA_OK;
	if (!commit_it || rc != OTA_OK)
		rollback(st);
out:
	UNLOCK(st);
	return rc;
}

/* ---- transactions over several calls ---- */

enum ota_err ota_store_tx_begin(struct ota_store *st)
{
	enum ota_err rc;

	LOCK(st);
	if (st->bulk || st->tx) {
		UNLOCK(st);
		return OTA_ERR_CONFLICT;
	}
	rc = run(st, OTA_SQL_PICK(st, SQL_BEGIN));
	if (rc != OTA_OK) {
		UNLOCK(st);
		return rc;
	}
	st->tx = true; /* the lock stays held until ota_store_tx_end() */
	return OTA_OK;
}

enum ota_err ota_store_tx_end(struct ota_store *st, bool commit_it)
{
	enum ota_err rc = OTA_ERR_CONFLICT;

	LOCK(st);
	if (!st->tx)
		goto out;
	st->tx = false;
	rc = commit_it ? run(st, SQL_COMMIT) : OTA_OK;
	if ((!commit_it || rc != OTA_OK) && ota_sql_in_tx(st->db))
		(void)run(st, SQL_ROLLBACK);
	UNLOCK(st); /* the lock taken by ota_store_tx_begin() */
out:
	UNLOCK(st);
	return rc;
}

enum ota_err ota_store_tx_finish(struct ota_store *st, enum ota_err rc)
{
	enum ota_err e = ota_store_tx_end(st, rc == OTA_OK);
	return rc != OTA_OK ? rc : e;
}

/* ---- group commit ---- */

/* Fails every item of the group from `from` up to `to` (excluded) that had succeeded. */
static void group_fail(struct group_item *from, struct group_item *to)
{
	for (; from != to; from = from->next)
		if (from->rc == OTA_OK)
			from->rc = OTA_ERR_DB;
}

/* Runs the items of one group in one transaction and commits it; sets each item's rc. */
static void group_run(struct ota_store *main_st, struct group_item *list)
{
	struct group_item *first = list; /* the first item of the open transaction */
	struct ota_store *st = main_st;

	/* Only the leader gets here, so main_st->writer is not raced for. An in-memory
	 * database cannot have a second connection: its groups use the main one. */
	const struct ota_store_target *t = &main_st->target;
	if (!main_st->writer && (t->backend == OTA_STORE_POSTGRESQL ||
	                         (t->path[0] && strcmp(t->path, ":memory:") != 0))) {
		char msg[256];
		if (open_handle(t, &main_st->writer, msg, sizeof(msg)) != OTA_OK)
			log_err("store: group writer: %s", msg); /* use the main connection */
	}
	if (main_st->writer)
		st = main_st->writer;
	LOCK(main_st);
	bool bulk = main_st->bulk; /* a bulk load is single-threaded: groups refused */
	UNLOCK(main_st);
	LOCK(st);
	if (bulk || st->bulk || st->tx) {
		for (struct group_item *it = list; it; it = it->next)
			it->rc = OTA_ERR_CONFLICT;
		goto out;
	}
	if (run(st, OTA_SQL_PICK(st, SQL_BEGIN)) != OTA_OK) {
		for (struct group_item *it = list; it; it = it->next)
			it->rc = OTA_ERR_DB;
		goto out;
	}
	st->tx = true;
	for (struct group_item *it = list; it; it = it->next) {
		if (run(st, SQL_SAVEPOINT) != OTA_OK) {
			it->rc = OTA_ERR_DB;
		} else {
			it->rc = it->fn(st, it->ctx);
			if (it->rc != OTA_OK && ota_sql_in_tx(st->db))
				(void)run(st, SQL_ROLLBACK_TO);
			if (ota_sql_in_tx(st->db) && run(st, SQL_RELEASE) != OTA_OK &&
			    it->rc == OTA_OK)
				it->rc = OTA_ERR_DB;
		}
		if (!ota_sql_in_tx(st->db)) {
			/* SQLite rolled the whole transaction back (an I/O error, a full disk):
			 * what the group wrote so far is gone; the rest gets a new one. */
			group_fail(first, it->next);
			first = it->next;
			if (first && run(st, OTA_SQL_PICK(st, SQL_BEGIN)) != OTA_OK) {
				for (struct group_item *r = first; r; r = r->next)
					r->rc = OTA_ERR_DB;
				first = NULL;
				break;
			}
		}
	}
	st->tx = false;
	if (first && ota_sql_in_tx(st->db) && run(st, SQL_COMMIT) != OTA_OK) {
		if (ota_sql_in_tx(st->db))
			(void)run(st, SQL_ROLLBACK);
		group_fail(first, NULL);
	}
out:
	/* A storage fault met on this (the leader's) thread is each failed caller's too. */
	if (ota_storage_fault_peek())
		for (struct group_item *it = list; it; it = it->next)
			it->fault = it->rc != OTA_OK;
	UNLOCK(st);
}

/* Leads one group (g_mu held on entry and on return): takes the whole queue, commits it,
 * releases its waiting callers and calls the submitted items' done callbacks. */
static void group_lead(struct ota_store *st)
{
	struct group_item *list = st->g_head, *submitted = NULL, **stail = &submitted;
	unsigned long long n = 0;

	st->g_head = NULL;
	st->g_tail = &st->g_head;
	st->g_leader = true;
	pthread_mutex_unlock(&st->g_mu);
	(void)ota_storage_fault_take(); /* a note of an earlier group led by this thread */
	ota_test_pause("group-commit"); /* a group taken, not yet run (docs/testing.md) */
	group_run(st, list);
	pthread_mutex_lock(&st->g_mu);
	for (struct group_item *it = list, *next; it; it = next) {
		next = it->next; /* a waiting caller's item may vanish once done is set */
		n++;
		if (it->on_done) {
			it->next = NULL;
			*stail = it;
			stail = &it->next;
		} else {
			it->done = true;
		}
	}
	st->g_groups++;
	st->g_items += n;
	st->g_leader = false;
	pthread_cond_broadcast(&st->g_cv);
	pthread_mutex_unlock(&st->g_mu);
	for (struct group_item *it = submitted, *next; it; it = next) {
		next = it->next;
		it->on_done(it->done_arg, it->rc, it->fault && it->rc != OTA_OK);
		free(it);
	}
	pthread_mutex_lock(&st->g_mu);
}

enum ota_err ota_store_group(struct ota_store *st,
                             enum ota_err (*fn)(struct ota_store *st, void *ctx), void *ctx)
{
	struct group_item me = {.fn = fn, .ctx = ctx, .rc = OTA_ERR_DB};

	pthread_mutex_lock(&st->g_mu);
	*st->g_tail = &me;
	st->g_tail = &me.next;
	while (!me.done) {
		if (st->g_leader)
			pthread_cond_wait(&st->g_cv, &st->g_mu);
		else
			group_lead(st); /* this caller's item is in the queue it takes */
	}
	pthread_mutex_unlock(&st->g_mu);
	if (me.rc != OTA_OK && me.fault)
		ota_storage_fault_note(); /* met on the leader's thread: this caller's answer */
	return me.rc;
}

/* The committer thread: leads a group whenever items wait and no other leader runs. */
static void *committer(void *arg)
{
	struct ota_store *st = arg;

	pthread_mutex_lock(&st->g_mu);
	for (;;) {
		if (st->g_head && !st->g_leader)
			group_lead(st);
		else if (st->g_stop && !st->g_head)
			break;
		else
			pthread_cond_wait(&st->g_cv, &st->g_mu);
	}
	pthread_mutex_unlock(&st->g_mu);
	return NULL;
}

enum ota_err ota_store_group_submit(struct ota_store *st,
                                    enum ota_err (*fn)(struct ota_store *st, void *ctx), void *ctx,
                                    void (*on_done)(void *arg, enum ota_err rc, bool fault),
                                    void *done_arg)
{
	struct group_item *it = calloc(1, sizeof(*it));
	enum ota_err rc = OTA_ERR_NOMEM;

	if (!it)
		return rc;
	*it = (struct group_item){
	    .fn = fn, .ctx = ctx, .rc = OTA_ERR_DB, .on_done = on_done, .done_arg = done_arg};
	pthread_mutex_lock(&st->g_mu);
	if (st->g_stop) {
		rc = OTA_ERR_CONFLICT;
		goto out;
	}
	if (!st->g_thread_on) {
		if (pthread_create(&st->g_thread, NULL, committer, st) != 0)
			goto out;
		st->g_thread_on = true;
	}
	*st->g_tail = it;
	st->g_tail = &it->next;
	it = NULL;
	rc = OTA_OK;
	pthread_cond_broadcast(&st->g_cv);
out:
	pthread_mutex_unlock(&st->g_mu);
	free(it);
	return rc;
}

void ota_store_group_stats(struct ota_store *st, unsigned long long *groups,
                           unsigned long long *items)
{
	pthread_mutex_lock(&st->g_mu);
	*groups = st->g_groups;
	*items = st->g_items;
	pthread_mutex_unlock(&st->g_mu);
}

/* ---- store/internal.h: for the store's other files ---- */

struct ota_sql *ota_store__db(struct ota_store *st)
{
	return st->db;
}

void ota_store__lock(struct ota_store *st)
{
	LOCK(st);
}

void ota_store__unlock(struct ota_store *st)
{
	UNLOCK(st);
}

bool ota_store__in_tx(struct ota_store *st)
{
	return st->tx || st->bulk;
}

struct ota_sql_stmt *ota_store__stmt(struct ota_store *st, const char *text)
{
	int i;

	for (i = 0; i < OTA_STORE_STMTS && st->cache[i].sql; i++) {
		if (st->cache[i].sql == text) {
			ota_sql_reset(st->cache[i].q);
			return st->cache[i].q;
		}
	}
	if (i == OTA_STORE_STMTS) {
		log_err("store: more than %d statements", OTA_STORE_STMTS);
		return NULL;
	}
	st->cache[i].q = ota_sql_prepare(st->db, text);
	if (!st->cache[i].q) {
		log_err("store: cannot prepare \"%.60s\": %s", text, ota_sql_errmsg(st->db));
		st->cache[i].q = NULL;
		return NULL;
	}
	st->cache[i].sql = text;
	return st->cache[i].q;
}

/* ---- identities ---- */

enum ota_err ota_store_is_revoked(struct ota_store *st, const char *fingerprint, bool *revoked)
{
	enum ota_err rc = OTA_ERR_DB;
	LOCK(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_REVOKED);
	if (!q)
		goto out;
	bind_text(q, 1, fingerprint);
	int r = ota_sql_step(q);
	if (r != OTA_SQL_ROW && r != OTA_SQL_DONE) {
		rc = ota_store__fail(st, "revocation lookup");
		goto out;
	}
	*revoked = r == OTA_SQL_ROW;
	rc = OTA_OK;
out:
	done(q);
	UNLOCK(st);
	return rc;
}

enum ota_err ota_store_revoke(struct ota_store *st, const char *fingerprint, const char *reason,
                              int64_t now)
{
	enum ota_err rc = OTA_ERR_DB;
	LOCK(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_REVOKE);
	if (!q)
		goto out;
	bind_text(q, 1, fingerprint);
	bind_text(q, 2, reason ? reason : "");
	ota_sql_bind_int64(q, 3, now);
	if (ota_sql_step(q) != OTA_SQL_DONE) {
		rc = ota_store__fail(st, "revoke");
		goto out;
	}
	ota_store__access_changed(st);
	rc = OTA_OK;
out:
	done(q);
	UNLOCK(st);
	return rc;
}

/* Reads a device row; the lock is held. */
static enum ota_err device_get(struct ota_store *st, const char *id, struct ota_device *out)
{
	enum ota_err rc = OTA_ERR_DB;
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_DEV_GET);
	if (!q)
		goto out;
	bind_text(q, 1, id);
	int r = ota_sql_step(q);
	if (r == OTA_SQL_DONE) {
		rc = OTA_ERR_NOT_FOUND;
		goto out;
	}
	if (r != OTA_SQL_ROW) {
		rc = ota_store__fail(st, "device lookup");
		goto out;
	}
	memset(out, 0, sizeof(*out));
	text(q, 0, out->id, sizeof(out->id));
	text(q, 1, out->fingerprint, sizeof(out->fingerprint));
	text(q, 2, out->status, sizeof(out->status));
	out->known_state = !ota_sql_column_is_null(q, 3);
	text(q, 3, out->hw_variant, sizeof(out->hw_variant));
	text(q, 4, out->version, sizeof(out->version));
	out->security_floor = (uint32_t)ota_sql_column_int64(q, 5);
	out->root_version = (uint32_t)ota_sql_column_int64(q, 6);
	out->last_seen = ota_store__seen_latest(st, out->id, ota_sql_column_int64(q, 7));
	rc = OTA_OK;
out:
	done(q);
	return rc;
}

enum ota_err ota_store_device_admit(struct ota_store *st, const char *id, const char *fingerprint,
                                    int64_t now, struct ota_device *out, bool *created)
{
	enum ota_err rc;
	LOCK(st);
	/* Read first: an admitted device (the common case) costs no write. */
	rc = device_get(st, id, out);
	if (rc != OTA_ERR_NOT_FOUND) {
		*created = false;
		goto out;
	}
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_DEV_INSERT);
	if (!q) {
		rc = OTA_ERR_DB;
		goto out;
	}
	bind_text(q, 1, id);
	bind_text(q, 2, fingerprint);
	ota_sql_bind_int64(q, 3, now);
	int r = ota_sql_step(q);
	*created = ota_sql_changes(st->db) == 1;
	done(q);
	if (r != OTA_SQL_DONE) {
		rc = ota_store__fail(st, "device admission");
		goto out;
	}
	rc = device_get(st, id, out);
out:
	UNLOCK(st);
	return rc;
}

enum ota_err ota_store_device_get(struct ota_store *st, const char *id, struct ota_device *out)
{
	LOCK(st);
	enum ota_err rc = device_get(st, id, out);
	UNLOCK(st);
	return rc;
}

enum ota_err ota_store_device_tags(struct ota_store *st, const char *device_id, char (*tags)[65],
                                   unsigned max, unsigned *n)
{
	enum ota_err rc = OTA_ERR_DB;
	int s = OTA_SQL_ERROR;

	*n = 0;
	LOCK(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_DEV_TAGS);
	if (q) {
		bind_text(q, 1, device_id);
		while ((s = ota_sql_step(q)) == OTA_SQL_ROW)
			if (*n < max)
				text(q, 0, tags[(*n)++], 65);
		rc = s == OTA_SQL_DONE ? OTA_OK : ota_store__fail(st, "device tags");
	}
	done(q);
	UNLOCK(st);
	return rc;
}

/* ---- last-seen batching ---- */

/* The entry of device id, or NULL; s_mu is held. */
static struct seen_entry *seen_find(struct ota_store *st, const char *id, size_t len)
{
	if (!st->s_cap)
		return NULL;
	for (size_t i = id_hash(id, len) & (st->s_cap - 1);; i = (i + 1) & (st->s_cap - 1)) {
		struct seen_entry *e = st->s_slots[i];
		if (!e)
			return NULL;
		if (e->id_len == len && memcmp(e->key, id, len) == 0)
			return e;
	}
}

/* Whether device id is known to have had no active deployment at generation gen. */
static bool seen_idle(struct ota_store *st, const char *id, size_t len, uint64_t gen)
{
	pthread_mutex_lock(&st->s_mu);
	struct seen_entry *e = seen_find(st, id, len);
	bool idle = e && e->idle && e->idle_gen == gen;
	pthread_mutex_unlock(&st->s_mu);
	return idle;
}

/* Device id had no active deployment at generation gen (kept only for a device that checked
 * in: it has an entry). */
static void seen_set_idle(struct ota_store *st, const char *id, size_t len, uint64_t gen)
{
	pthread_mutex_lock(&st->s_mu);
	struct seen_entry *e = seen_find(st, id, len);
	if (e) {
		e->idle = true;
		e->idle_gen = gen;
	}
	pthread_mutex_unlock(&st->s_mu);
}

/* Puts e in the table (which has room and does not hold e's id); s_mu is held. */
static void seen_place(struct seen_entry **slots, size_t cap, struct seen_entry *e)
{
	size_t i = id_hash(e->key, e->id_len) & (cap - 1);
	while (slots[i])
		i = (i + 1) & (cap - 1);
	slots[i] = e;
}

/* "hw\0version\0floor\0root\0slot\0boot" into buf (NUL-terminated parts); its length. */
static size_t seen_state(char *buf, size_t cap, const char *hw, const char *version, int64_t floor,
                         int64_t root, const char *slot, const char *boot)
{
	int n = snprintf(buf, cap, "%s|%s|%lld|%lld|%s|%s", hw ? hw : "", version ? version : "",
	                 (long long)floor, (long long)root, slot ? slot : "", boot ? boot : "");
	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* Whether the reported fields are what the row holds: nothing durable would change. */
static bool seen_same(const struct seen_entry *e, const char *state, size_t len,
                      const char *outcome)
{
	if (!e->known || e->st_len != len || memcmp(e->key + e->id_len + 1, state, len) != 0)
		return false;
	return !outcome || strcmp(e->key + e->id_len + 1 + len + 1, outcome) == 0;
}

/*
 * Records that the row of device id holds state and outcome (NULL: unknown, read again) and
 * was written up to last_seen (its pending time is dropped when it is not newer); s_mu is
 * held. On allocation failure the device is simply not batched (its check-ins write).
 */
static void seen_set(struct ota_store *st, const char *id, const char *state, size_t st_len,
                     const char *outcome, int64_t written)
{
	size_t id_len = strlen(id), o_len = outcome ? strlen(outcome) : 0;
	struct seen_entry *e = seen_find(st, id, id_len);
	char *key = malloc(id_len + st_len + o_len + 3);

	if (!e && (st->s_n + 1) * 4 > st->s_cap * 3) {
		size_t nc = st->s_cap ? st->s_cap * 2 : 1024;
		struct seen_entry **ns = calloc(nc, sizeof(*ns));
		if (!ns) {
			free(key);
			return;
		}
		for (size_t i = 0; i < st->s_cap; i++)
			if (st->s_slots[i])
				seen_place(ns, nc, st->s_slots[i]);
		free(st->s_slots);
		st->s_slots = ns;
		st->s_cap = nc;
	}
	if (!key) {
		if (e)
			e->known = false;
		return;
	}
	memcpy(key, id, id_len + 1);
	memcpy(key + id_len + 1, state, st_len);
	key[id_len + 1 + st_len] = '\0';
	memcpy(key + id_len + 1 + st_len + 1, outcome ? outcome : "", o_len + 1);
	if (!e) {
		if (!(e = calloc(1, sizeof(*e)))) {
			free(key);
			return;
		}
		e->key = key;
		e->id_len = id_len;
		seen_place(st->s_slots, st->s_cap, e);
		st->s_n++;
	} else {
		free(e->key);
		e->key = key;
	}
	e->st_len = st_len;
	e->known = outcome != NULL;
	if (e->seen <= written)
		e->seen = 0;
}

/* Notes a check-in at now for the flush; s_mu is held. false when it cannot be queued. */
static bool seen_note(struct ota_store *st, struct seen_entry *e, int64_t now)
{
	if (!e->queued) {
		if (st->s_ndirty == st->s_dirty_cap) {
			size_t nc = st->s_dirty_cap ? st->s_dirty_cap * 2 : 256;
			void *p = realloc(st->s_dirty, nc * sizeof(*st->s_dirty));
			if (!p)
				return false;
			st->s_dirty = p;
			st->s_dirty_cap = nc;
		}
		st->s_dirty[st->s_ndirty++] = e;
		e->queued = true;
	}
	if (now > e->seen)
		e->seen = now;
	return true;
}

/* The newest check-in time of device id not written yet, 0 when none; any thread. */
static int64_t seen_pending(struct ota_store *st, const char *id)
{
	pthread_mutex_lock(&st->s_mu);
	struct seen_entry *e = seen_find(st, id, strlen(id));
	int64_t t = e ? e->seen : 0;
	pthread_mutex_unlock(&st->s_mu);
	return t;
}

int64_t ota_store__seen_latest(struct ota_store *st, const char *id, int64_t stored)
{
	int64_t t = seen_pending(st, id);
	return t > stored ? t : stored;
}

enum ota_err ota_store_seen_flush(struct ota_store *st)
{
	enum ota_err rc = OTA_OK;
	struct {
		char id[OTA_ID_MAX + 1];
		int64_t seen;
	} *batch = NULL;
	size_t n = 0;

	LOCK(st);
	if (st->bulk || st->tx)
		goto out; /* the next flush writes them */
	pthread_mutex_lock(&st->s_mu);
	if (st->s_ndirty && !(batch = malloc(st->s_ndirty * sizeof(*batch)))) {
		pthread_mutex_unlock(&st->s_mu);
		rc = OTA_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < st->s_ndirty; i++) {
		struct seen_entry *e = st->s_dirty[i];
		e->queued = false;
		if (!e->seen || e->id_len > OTA_ID_MAX)
			continue;
		memcpy(batch[n].id, e->key, e->id_len + 1);
		batch[n++].seen = e->seen;
	}
	st->s_ndirty = 0;
	pthread_mutex_unlock(&st->s_mu);
	if (!n)
		goto out;
	rc = run(st, OTA_SQL_PICK(st, SQL_BEGIN));
	for (size_t i = 0; rc == OTA_OK && i < n; i++) {
		struct ota_sql_stmt *q = ota_store__stmt(st, SQL_DEV_SEEN);
		if (!q) {
			rc = OTA_ERR_DB;
			break;
		}
		bind_text(q, 1, batch[i].id);
		ota_sql_bind_int64(q, 2, batch[i].seen);
		if (ota_sql_step(q) != OTA_SQL_DONE)
			rc = ota_store__fail(st, "last-seen flush");
		done(q);
	}
	if (rc == OTA_OK)
		rc = run(st, SQL_COMMIT);
	if (rc != OTA_OK && ota_sql_in_tx(st->db))
		(void)run(st, SQL_ROLLBACK);
	pthread_mutex_lock(&st->s_mu);
	for (size_t i = 0; i < n; i++) {
		struct seen_entry *e = seen_find(st, batch[i].id, strlen(batch[i].id));
		if (!e)
			continue;
		if (rc != OTA_OK)
			(void)seen_note(st, e, batch[i].seen); /* again at the next flush */
		else if (e->seen <= batch[i].seen)
			e->seen = 0; /* written; a newer check-in stays pending */
	}
	pthread_mutex_unlock(&st->s_mu);
out:
	UNLOCK(st);
	free(batch);
	return rc;
}

/* Reads the reported fields of device id's row into state/outcome; the lock is held. */
static enum ota_err row_state(struct ota_store *st, const char *id, char *state, size_t cap,
                              size_t *len, char **outcome)
{
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_DEV_STATE);
	enum ota_err rc = OTA_ERR_DB;

	*outcome = NULL;
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, id);
	int r = ota_sql_step(q);
	if (r == OTA_SQL_DONE) {
		rc = OTA_ERR_NOT_FOUND;
	} else if (r != OTA_SQL_ROW) {
		rc = ota_store__fail(st, "device state");
	} else {
		/* A device that never checked in has no state: no report equals it. */
		*len = ota_sql_column_is_null(q, 0)
		           ? 0
		           : seen_state(state, cap, ota_sql_column_text(q, 0),
		                        ota_sql_column_text(q, 1), ota_sql_column_int64(q, 2),
		                        ota_sql_column_int64(q, 3), ota_sql_column_text(q, 4),
		                        ota_sql_column_text(q, 5));
		const char *o = ota_sql_column_text(q, 6);
		*outcome = strdup(o ? (const char *)o : "");
		rc = *outcome ? OTA_OK : OTA_ERR_NOMEM;
	}
	done(q);
	return rc;
}

/* Writes the whole report into the row; the lock is held. */
static enum ota_err report_write(struct ota_store *st, const struct ota_device_report *r,
                                 int64_t now)
{
	enum ota_err rc;
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_DEV_REPORT);

	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, r->id);
	bind_text(q, 2, r->hw_variant);
	bind_text(q, 3, r->version);
	ota_sql_bind_int64(q, 4, r->security_floor);
	ota_sql_bind_int64(q, 5, r->root_version);
	bind_text(q, 6, r->active_slot);
	bind_text(q, 7, r->boot_state);
	bind_text(q, 8, r->last_outcome);
	ota_sql_bind_int64(q, 9, now);
	if (ota_sql_step(q) != OTA_SQL_DONE)
		rc = ota_store__fail(st, "device report");
	else
		rc = ota_sql_changes(st->db) == 1 ? OTA_OK : OTA_ERR_NOT_FOUND;
	done(q);
	return rc;
}

enum ota_err ota_store_device_report(struct ota_store *st, const struct ota_device_report *r,
                                     int64_t now)
{
	char state[256], have[256];
	size_t len = seen_state(state, sizeof(state), r->hw_variant, r->version, r->security_floor,
	                        r->root_version, r->active_slot, r->boot_state),
	       have_len = 0;
	size_t id_len = strlen(r->id);
	char *outcome = NULL;
	enum ota_err rc;

	/* The common check-in repeats what the row holds: its time waits for the next flush
	 * (ota_store_seen_flush()), no write and no lock of the store. */
	pthread_mutex_lock(&st->s_mu);
	struct seen_entry *e = seen_find(st, r->id, id_len);
	bool same = e && seen_same(e, state, len, r->last_outcome) && seen_note(st, e, now);
	pthread_mutex_unlock(&st->s_mu);
	/* On a shared database another instance may have written the row since: it is read. */
	if (same && !st->shared)
		return OTA_OK;
	LOCK(st);
	if (ota_store__in_tx(st)) {
		/* Joins a transaction that may yet roll back: the row is read again next time. */
		rc = report_write(st, r, now);
		pthread_mutex_lock(&st->s_mu);
		if ((e = seen_find(st, r->id, id_len)) != NULL)
			e->known = false;
		pthread_mutex_unlock(&st->s_mu);
		goto out;
	}
	/* Not known yet (the first check-in since otad started): the row says. */
	rc = row_state(st, r->id, have, sizeof(have), &have_len, &outcome);
	if (rc != OTA_OK)
		goto out;
	if (have_len && have_len == len && memcmp(have, state, len) == 0 &&
	    (!r->last_outcome || strcmp(outcome, r->last_outcome) == 0)) {
		pthread_mutex_lock(&st->s_mu);
		seen_set(st, r->id, state, len, outcome, 0);
		if ((e = seen_find(st, r->id, id_len)) != NULL && !seen_note(st, e, now))
			e->known = false;
		pthread_mutex_unlock(&st->s_mu);
		if (e && e->known)
			goto out;
	}
	/* Something durable changed (version, slot, boot state, floor, outcome...): written now,
	 * in its own transaction, committed to the disk before the answer. */
	rc = report_write(st, r, now);
	if (rc == OTA_OK) {
		pthread_mutex_lock(&st->s_mu);
		const char *o = r->last_outcome ? r->last_outcome : outcome;
		if (o)
			seen_set(st, r->id, state, len, o, now);
		else if ((e = seen_find(st, r->id, id_len)) != NULL)
			e->known = false; /* the stored outcome is not known here */
		pthread_mutex_unlock(&st->s_mu);
	}
out:
	UNLOCK(st);
	free(outcome);
	return rc;
}

/* ---- images, roots, releases ---- */

enum ota_err ota_store_image_add(struct ota_store *st, const char *sha256, uint64_t size,
                                 int64_t now, bool *existed)
{
	enum ota_err rc = OTA_ERR_DB;
	LOCK(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_IMG_INSERT);
	if (!q)
		goto out;
	bind_text(q, 1, sha256);
	ota_sql_bind_int64(q, 2, (int64_t)size);
	ota_sql_bind_int64(q, 3, now);
	if (ota_sql_step(q) != OTA_SQL_DONE) {
		rc = ota_store__fail(st, "image insert");
		goto out;
	}
	*existed = ota_sql_changes(st->db) == 0;
	rc = OTA_OK;
out:
	done(q);
	UNLOCK(st);
	return rc;
}

enum ota_err ota_store_image_get(struct ota_store *st, const char *sha256, uint64_t *size)
{
	enum ota_err rc = OTA_ERR_DB;
	LOCK(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_IMG_GET);
	if (!q)
		goto out;
	bind_text(q, 1, sha256);
	int r = ota_sql_step(q);
	if (r == OTA_SQL_ROW) {
		*size = (uint64_t)ota_sql_column_int64(q, 0);
		rc = OTA_OK;
	} else if (r == OTA_SQL_DONE) {
		rc = OTA_ERR_NOT_FOUND;
	} else {
		rc = ota_store__fail(st, "image lookup");
	}
out:
	done(q);
	UNLOCK(st);
	return rc;
}

enum ota_err ota_store_root_put(struct ota_store *st, uint32_t version, const char *envelope,
                                int64_t now)
{
	enum ota_err rc = OTA_ERR_DB;
	LOCK(st);
	/* The read and the insert in one write transaction: instances starting together on one
	 * database (docs/scaling.md) store the root once, and the others find it. */
	if (begin(st) != OTA_OK)
		goto out;
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_ROOT_GET);
	if (!q)
		goto out;
	ota_sql_bind_int64(q, 1, version);
	int r = ota_sql_step(q);
	if (r == OTA_SQL_ROW) {
		const char *have = ota_sql_column_text(q, 0);
		rc = have && strcmp(have, envelope) == 0 ? OTA_OK : OTA_ERR_CONFLICT;
		done(q);
		if (rc == OTA_OK)
			rc = commit(st);
		goto out;
	}
	done(q);
	if (r != OTA_SQL_DONE) {
		rc = ota_store__fail(st, "root lookup");
		goto out;
	}
	q = ota_store__stmt(st, SQL_ROOT_INSERT);
	if (!q)
		goto out;
	ota_sql_bind_int64(q, 1, version);
	bind_text(q, 2, envelope);
	ota_sql_bind_int64(q, 3, now);
	r = ota_sql_step(q);
	done(q);
	if (r != OTA_SQL_DONE) {
		rc = ota_store__fail(st, "root insert");
		goto out;
	}
	rc = commit(st);
out:
	if (rc != OTA_OK)
		rollback(st);
	UNLOCK(st);
	return rc;
}

enum ota_err ota_store_root_latest(struct ota_store *st, uint32_t *version)
{
	enum ota_err rc = OTA_ERR_DB;
	LOCK(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_ROOT_LATEST);
	if (!q)
		goto out;
	if (ota_sql_step(q) != OTA_SQL_ROW) {
		rc = ota_store__fail(st, "root version");
		goto out;
	}
	*version = (uint32_t)ota_sql_column_int64(q, 0);
	rc = OTA_OK;
out:
	done(q);
	UNLOCK(st);
	return rc;
}

enum ota_err ota_store_roots_after(struct ota_store *st, uint32_t after,
                                   int (*fn)(void *ctx, uint32_t version, const char *envelope),
                                   void *ctx)
{
	enum ota_err rc = OTA_ERR_DB;
	int r;
	LOCK(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_ROOTS_AFTER);
	if (!q)
		goto out;
	ota_sql_bind_int64(q, 1, after);
	while ((r = ota_sql_step(q)) == OTA_SQL_ROW) {
		if (fn(ctx, (uint32_t)ota_sql_column_int64(q, 0), ota_sql_column_text(q, 1))) {
			rc = OTA_ERR_INVALID;
			goto out;
		}
	}
	if (r != OTA_SQL_DONE) {
		rc = ota_store__fail(st, "roots walk");
		goto out;
	}
	rc = OTA_OK;
out:
	done(q);
	UNLOCK(st);
	return rc;
}

enum ota_err ota_store_release_add(struct ota_store *st, const struct ota_release *r,
                                   const char *envelope, int64_t now, bool *existed)
{
	enum ota_err rc = OTA_ERR_DB;
	struct ota_sql_stmt *q;
	int s;

	*existed = false;
	LOCK(st);
	if (begin(st) != OTA_OK)
		goto out;
	/* Same manifest again: idempotent. */
	q = ota_store__stmt(st, SQL_REL_GET);
	if (!q)
		goto out;
	bind_text(q, 1, r->id);
	s = ota_sql_step(q);
	done(q);
	if (s == OTA_SQL_ROW) {
		*existed = true;
		rc = OTA_OK;
		goto out;
	}
	q = ota_store__stmt(st, SQL_REL_BY_NAME);
	if (!q)
		goto out;
	bind_text(q, 1, r->name);
	bind_text(q, 2, r->version);
	s = ota_sql_step(q);
	done(q);
	if (s == OTA_SQL_ROW) {
		rc = OTA_ERR_CONFLICT;
		goto out;
	}
	q = ota_store__stmt(st, SQL_REL_INSERT);
	if (!q)
		goto out;
	bind_text(q, 1, r->id);
	bind_text(q, 2, r->name);
	bind_text(q, 3, r->version);
	ota_sql_bind_int64(q, 4, r->security_version);
	bind_text(q, 5, r->image_sha256);
	ota_sql_bind_int64(q, 6, (int64_t)r->image_size);
	bind_text(q, 7, r->image_format);
	ota_sql_bind_int64(q, 8, r->manifest_created);
	bind_text(q, 9, envelope);
	ota_sql_bind_int64(q, 10, now);
	s = ota_sql_step(q);
	done(q);
	if (s != OTA_SQL_DONE) {
		enum ota_sql_failure f = ota_sql_failure(st->db);
		rc =
		    f == OTA_SQL_F_FOREIGN_KEY || f == OTA_SQL_F_CONSTRAINT || f == OTA_SQL_F_UNIQUE
		        ? OTA_ERR_NOT_FOUND
		        : ota_store__fail(st, "release insert");
		goto out;
	}
	for (unsigned i = 0; i < r->nhw; i++) {
		q = ota_store__stmt(st, SQL_REL_HW_INSERT);
		if (!q)
			goto out;
		bind_text(q, 1, r->id);
		bind_text(q, 2, r->hw[i]);
		s = ota_sql_step(q);
		done(q);
		if (s != OTA_SQL_DONE) {
			rc = ota_store__fail(st, "release variant insert");
			goto out;
		}
	}
	rc = commit(st);
out:
	if (rc != OTA_OK || *existed)
		rollback(st);
	UNLOCK(st);
	return rc;
}

static enum ota_err release_get(struct ota_store *st, const char *id, struct ota_release *out,
                                char **envelope)
{
	enum ota_err rc = OTA_ERR_DB;
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_REL_GET);
	int s;

	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, id);
	s = ota_sql_step(q);
	if (s == OTA_SQL_DONE) {
		rc = OTA_ERR_NOT_FOUND;
		goto out;
	}
	if (s != OTA_SQL_ROW) {
		rc = ota_store__fail(st, "release lookup");
		goto out;
	}
	memset(out, 0, sizeof(*out));
	text(q, 0, out->id, sizeof(out->id));
	text(q, 1, out->name, sizeof(out->name));
	text(q, 2, out->version, sizeof(out->version));
	out->security_version = (uint32_t)ota_sql_column_int64(q, 3);
	text(q, 4, out->image_sha256, sizeof(out->image_sha256));
	out->image_size = (uint64_t)ota_sql_column_int64(q, 5);
	text(q, 6, out->image_format, sizeof(out->image_format));
	out->manifest_created = ota_sql_column_int64(q, 7);
	out->created_at = ota_sql_column_int64(q, 8);
	if (envelope) {
		*envelope = strdup(ota_sql_column_text(q, 9));
		if (!*envelope) {
			rc = OTA_ERR_NOMEM;
			goto out;
		}
	}
	done(q);
	q = ota_store__stmt(st, SQL_REL_HW);
	if (!q)
		goto out;
	bind_text(q, 1, id);
	while ((s = ota_sql_step(q)) == OTA_SQL_ROW && out->nhw < 8)
		text(q, 0, out->hw[out->nhw++], sizeof(out->hw[0]));
	rc = OTA_OK;
out:
	done(q);
	if (rc != OTA_OK && envelope) {
		free(*envelope);
		*envelope = NULL;
	}
	return rc;
}

enum ota_err ota_store_release_get(struct ota_store *st, const char *id, struct ota_release *out,
                                   char **envelope)
{
	if (envelope)
		*envelope = NULL;
	LOCK(st);
	enum ota_err rc = release_get(st, id, out, envelope);
	UNLOCK(st);
	return rc;
}

enum ota_err ota_store_release_list(struct ota_store *st, const struct ota_store_key *after,
                                    unsigned limit,
                                    void (*fn)(void *ctx, const struct ota_release *r), void *ctx,
                                    bool *more)
{
	enum ota_err rc = OTA_ERR_DB;
	char(*ids)[OTA_HEX256] = NULL;
	unsigned n = 0;
	int s;

	*more = false;
	if (limit < 1 || limit > 1000)
		return OTA_ERR_INVALID;
	LOCK(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_REL_LIST);
	if (!q)
		goto out;
	ids = calloc(limit, sizeof(*ids));
	if (!ids) {
		rc = OTA_ERR_NOMEM;
		goto out;
	}
	if (after) {
		ota_sql_bind_int64(q, 1, after->at);
		ota_sql_bind_text(q, 2, after->id);
	}
	/* One row past the page tells whether another page follows. */
	ota_sql_bind_int64(q, 3, (int64_t)limit + 1);
	while ((s = ota_sql_step(q)) == OTA_SQL_ROW) {
		if (n == limit) {
			*more = true;
			s = OTA_SQL_DONE;
			break;
		}
		text(q, 0, ids[n++], sizeof(ids[0]));
	}
	done(q);
	if (s != OTA_SQL_DONE) {
		rc = ota_store__fail(st, "release list");
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		struct ota_release r;
		rc = release_get(st, ids[i], &r, NULL);
		if (rc != OTA_OK)
			goto out;
		fn(ctx, &r);
	}
	rc = OTA_OK;
out:
	free(ids);
	UNLOCK(st);
	return rc;
}

/* ---- deployments and events ---- */

static enum ota_err deployment_row(struct ota_store *st, const char *which, const char *key,
                                   struct ota_deployment *out)
{
	enum ota_err rc;
	struct ota_sql_stmt *q = ota_store__stmt(st, which);
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, key);
	int s = ota_sql_step(q);
	if (s == OTA_SQL_ROW) {
		memset(out, 0, sizeof(*out));
		text(q, 0, out->id, sizeof(out->id));
		text(q, 1, out->device_id, sizeof(out->device_id));
		text(q, 2, out->release_id, sizeof(out->release_id));
		text(q, 3, out->status, sizeof(out->status));
		text(q, 4, out->reason, sizeof(out->reason));
		out->created_at = ota_sql_column_int64(q, 5);
		out->updated_at = ota_sql_column_int64(q, 6);
		out->finished_at = ota_sql_column_int64(q, 7);
		rc = OTA_OK;
	} else if (s == OTA_SQL_DONE) {
		rc = OTA_ERR_NOT_FOUND;
	} else {
		rc = ota_store__fail(st, "deployment lookup");
	}
	done(q);
	return rc;
}

enum ota_err ota_store_deployment_create(struct ota_store *st, const char *id,
                                         const char *device_id, const char *release_id, int64_t now)
{
	enum ota_err rc = OTA_ERR_DB;
	LOCK(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_DEP_INSERT);
	if (!q)
		goto out;
	bind_text(q, 1, id);
	bind_text(q, 2, device_id);
	bind_text(q, 3, release_id);
	ota_sql_bind_int64(q, 4, now);
	int s = ota_sql_step(q);
	if (s == OTA_SQL_DONE) {
		rc = OTA_OK;
		deployment_created(st, device_id);
	} else if (ota_sql_failure(st->db) == OTA_SQL_F_UNIQUE)
		rc = OTA_ERR_CONFLICT;
	else if (ota_sql_failure(st->db) == OTA_SQL_F_FOREIGN_KEY)
		rc = OTA_ERR_NOT_FOUND;
	else
		rc = ota_store__fail(st, "deployment insert");
out:
	done(q);
	UNLOCK(st);
	return rc;
}

enum ota_err ota_store_deployment_get(struct ota_store *st, const char *id,
                                      struct ota_deployment *out)
{
	LOCK(st);
	enum ota_err rc = deployment_row(st, SQL_DEP_GET, id, out);
	UNLOCK(st);
	return rc;
}

enum ota_err ota_store_deployment_active(struct ota_store *st, const char *device_id,
                                         struct ota_deployment *out)
{
	LOCK(st);
	enum ota_err rc = deployment_row(st, SQL_DEP_ACTIVE, device_id, out);
	UNLOCK(st);
	return rc;
}

enum ota_err ota_store_deployment_active_cached(struct ota_store *st, const char *device_id,
                                                struct ota_deployment *out)
{
	size_t len = strlen(device_id);
	/* Loaded before the read: a deployment created after this load moves it. */
	uint64_t gen =
	    atomic_load_explicit(&g_dep_gen[dep_slot(device_id, len)], memory_order_acquire);

	if (seen_idle(st, device_id, len, gen)) {
		atomic_fetch_add_explicit(&g_dep_skipped, 1, memory_order_relaxed);
		return OTA_ERR_NOT_FOUND;
	}
	atomic_fetch_add_explicit(&g_dep_read, 1, memory_order_relaxed);
	LOCK(st);
	/* In an open transaction the read may see a snapshot older than the generation. */
	bool fresh = !ota_sql_in_tx(st->db);
	enum ota_err rc = deployment_row(st, SQL_DEP_ACTIVE, device_id, out);
	UNLOCK(st);
	if (rc == OTA_ERR_NOT_FOUND && fresh)
		seen_set_idle(st, device_id, len, gen);
	return rc;
}

static enum ota_err deployment_end(struct ota_store *st, const char *id, const char *status,
                                   const char *reason, int64_t now)
{
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_DEP_END);
	if (!q)
		return OTA_ERR_DB;
	bind_text(q, 1, id);
	bind_text(q, 2, status);
	bind_text(q, 3, reason ? reason : "");
	ota_sql_bind_int64(q, 4, now);
	int s = ota_sql_step(q);
	done(q);
	if (s != OTA_SQL_DONE)
		return ota_store__fail(st, "deployment end");
	return ota_sql_changes(st->db) == 1 ? OTA_OK : OTA_ERR_CONFLICT;
}

enum ota_err ota_store_deployment_end(struct ota_store *st, const char *id, const char *status,
                                      const char *reason, int64_t now)
{
	LOCK(st);
	enum ota_err rc = begin(st);
	if (rc == OTA_OK)
		rc = deployment_end(st, id, status, reason, now);
	if (rc == OTA_OK)
		rc = commit(st);
	if (rc != OTA_OK)
		rollback(st);
	UNLOCK(st);
	return rc;
}

enum ota_err ota_store_image_allowed(struct ota_store *st, const char *device_id,
                                     const char *sha256, bool *allowed)
{
	enum ota_err rc = OTA_ERR_DB;
	LOCK(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_IMG_ALLOWED);
	if (!q)
		goto out;
	bind_text(q, 1, device_id);
	bind_text(q, 2, sha256);
	int s = ota_sql_step(q);
	if (s != OTA_SQL_ROW && s != OTA_SQL_DONE) {
		rc = ota_store__fail(st, "image permission");
		goto out;
	}
	*allowed = s == OTA_SQL_ROW;
	rc = OTA_OK;
out:
	done(q);
	UNLOCK(st);
	return rc;
}

enum ota_err ota_store_event_add(struct ota_store *st, const char *deployment_id,
                                 const char *device_id, const struct ota_event *ev, int64_t now,
                                 bool *duplicate)
{
	enum ota_err rc = OTA_ERR_DB;
	LOCK(st);
	if (begin(st) != OTA_OK)
		goto out;
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_EV_INSERT);
	if (!q)
		goto out;
	bind_text(q, 1, deployment_id);
	ota_sql_bind_int64(q, 2, (int64_t)ev->seq);
	bind_text(q, 3, device_id);
	bind_text(q, 4, ev->status);
	bind_text(q, 5, ev->reason ? ev->reason : "");
	bind_text(q, 6, ev->version);
	if (ev->progress >= 0)
		ota_sql_bind_int64(q, 7, ev->progress);
	else
		ota_sql_bind_null(q, 7);
	ota_sql_bind_int64(q, 8, now);
	int s = ota_sql_step(q);
	done(q);
	if (s != OTA_SQL_DONE) {
		rc = ota_store__fail(st, "event insert");
		goto out;
	}
	*duplicate = ota_sql_changes(st->db) == 0;
	if (*duplicate) {
		/* A repeat must be the same event: another one under a stored seq is a conflict. */
		q = ota_store__stmt(st, SQL_EV_SAME);
		if (!q)
			goto out;
		bind_text(q, 1, deployment_id);
		ota_sql_bind_int64(q, 2, (int64_t)ev->seq);
		bind_text(q, 3, ev->status);
		bind_text(q, 4, ev->reason ? ev->reason : "");
		bind_text(q, 5, ev->version);
		if (ev->progress >= 0)
			ota_sql_bind_int64(q, 6, ev->progress);
		else
			ota_sql_bind_null(q, 6);
		s = ota_sql_step(q);
		bool same = s == OTA_SQL_ROW && ota_sql_column_int64(q, 0) > 0;
		done(q);
		if (s != OTA_SQL_ROW) {
			rc = ota_store__fail(st, "event compare");
			goto out;
		}
		if (!same) {
			rc = OTA_ERR_CONFLICT;
			goto out;
		}
	}
	rc = commit(st);
out:
	if (rc != OTA_OK)
		rollback(st);
	UNLOCK(st);
	return rc;
}

enum ota_err ota_store_event_list(struct ota_store *st, const char *deployment_id,
                                  void (*fn)(void *ctx, const struct ota_event *ev,
                                             int64_t received_at),
                                  void *ctx)
{
	enum ota_err rc = OTA_ERR_DB;
	int s;
	LOCK(st);
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_EV_LIST);
	if (!q)
		goto out;
	bind_text(q, 1, deployment_id);
	while ((s = ota_sql_step(q)) == OTA_SQL_ROW) {
		struct ota_event ev = {
		    .seq = (uint64_t)ota_sql_column_int64(q, 0),
		    .status = ota_sql_column_text(q, 1),
		    .reason = ota_sql_column_text(q, 2),
		    .version = ota_sql_column_text(q, 3),
		    .progress = ota_sql_column_int64(q, 4),
		};
		fn(ctx, &ev, ota_sql_column_int64(q, 5));
	}
	if (s != OTA_SQL_DONE) {
		rc = ota_store__fail(st, "event list");
		goto out;
	}
	rc = OTA_OK;
out:
	done(q);
	UNLOCK(st);
	return rc;
}

/* ---- transactions for the store's other files (store/internal.h) ---- */

enum ota_err ota_store__begin(struct ota_store *st)
{
	return begin(st);
}

enum ota_err ota_store__commit(struct ota_store *st)
{
	return commit(st);
}

void ota_store__rollback(struct ota_store *st)
{
	rollback(st);
}

void ota_store__done(struct ota_sql_stmt *q)
{
	done(q);
}
