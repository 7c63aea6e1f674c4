/*
 * store/store.h - everything otad keeps, behind one opaque handle. Every query is a function
 * here; SQLite (WAL, synchronous=FULL, prepared statements reused) is the one backend today,
 * and nothing outside store/ sees SQL, so a PostgreSQL backend can be added behind the same
 * functions.
 *
 * Threads: a handle may be used from any number of threads; calls are serialised inside.
 * Errors: OTA_OK, OTA_ERR_NOT_FOUND (no such row), OTA_ERR_CONFLICT (uniqueness or state
 * rule), OTA_ERR_DB (the database failed; nothing was changed), OTA_ERR_NOMEM. Every function
 * that writes does so in one transaction committed before it returns OTA_OK, so an
 * acknowledged write survives a crash or power loss.
 * Strings in the structs below are NUL-terminated copies owned by the struct.
 */
#ifndef OTA_STORE_H
#define OTA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define OTA_ID_MAX 64            /* device ids, names, versions */
#define OTA_HEX256 65            /* 64 hex digits and a NUL */
#define OTA_DEPLOYMENT_ID_MAX 35 /* "d-" + 32 hex + NUL */
#define OTA_REASON_MAX 200

struct ota_store;

/* Where the store lives: a SQLite file (the default), or a PostgreSQL database that several
 * otad instances may share (docs/scaling.md). */
enum ota_store_backend { OTA_STORE_SQLITE = 0, OTA_STORE_POSTGRESQL = 1 };
struct ota_store_target {
	enum ota_store_backend backend;
	const char *path;     /* SQLite: the database file */
	const char *conninfo; /* PostgreSQL: a libpq connection string without a password */
};

struct ota_device {
	char id[OTA_ID_MAX + 1];
	char fingerprint[OTA_HEX256];
	char status[16];  /* admitted | decommissioned */
	bool known_state; /* false until the first check-in */
	char hw_variant[33];
	char version[OTA_ID_MAX + 1];
	uint32_t security_floor;
	uint32_t root_version;
	int64_t last_seen;
};

/* What a device reports at check-in. last_outcome is JSON text or NULL. */
struct ota_device_report {
	const char *id;
	const char *hw_variant;
	const char *version;
	uint32_t security_floor;
	uint32_t root_version;
	const char *active_slot;
	const char *boot_state;
	const char *last_outcome;
};

struct ota_release {
	char id[OTA_HEX256]; /* SHA-256 of the manifest payload */
	char name[OTA_ID_MAX + 1];
	char version[OTA_ID_MAX + 1];
	uint32_t security_version;
	char image_sha256[OTA_HEX256];
	uint64_t image_size;
	char image_format[17];
	int64_t manifest_created;
	unsigned nhw;
	char hw[8][33];
	int64_t created_at;
};

struct ota_deployment {
	char id[OTA_DEPLOYMENT_ID_MAX];
	char device_id[OTA_ID_MAX + 1];
	char release_id[OTA_HEX256];
	char status[16]; /* active | succeeded | failed | rolled_back | cancelled */
	char reason[OTA_REASON_MAX + 1];
	int64_t created_at, updated_at, finished_at; /* finished_at 0 while active */
};

struct ota_event {
	uint64_t seq;
	const char *status;  /* downloading ... rolled_back */
	const char *reason;  /* may be NULL */
	const char *version; /* may be NULL */
	int64_t progress;    /* -1 when absent */
};

/*
 * Open (creating if absent) the database at `path` and apply every pending migration from
 * schema/ in one transaction. A database whose schema is newer than this otad knows is
 * refused with OTA_ERR_SCHEMA and a message. msg (may be NULL) gets the reason on error.
 * The caller frees the handle with ota_store_free().
 */
OTA_WUR enum ota_err ota_store_open(const char *path, struct ota_store **out, char *msg,
                                    size_t msglen);
/* The same on either backend. On PostgreSQL the migrations run under an advisory lock, so
 * instances starting together apply them once; a server out of reach is OTA_ERR_DB. */
OTA_WUR enum ota_err ota_store_open_target(const struct ota_store_target *t, struct ota_store **out,
                                           char *msg, size_t msglen);
void ota_store_free(struct ota_store *st);

/*
 * Moving from SQLite to PostgreSQL (otad --migrate-store, docs/scaling.md): copies every row of
 * the SQLite otad database at sqlite_path (opened read-only, never changed; its schema version
 * must be this otad's) into st, a PostgreSQL store whose tables hold no row, in one transaction
 * under the store's write lock: all of it or nothing. Every source table must have a twin of
 * the same columns; the deployments' order and the audit chain are kept, identity columns
 * continue past the largest value copied. each(ctx, table, rows) (may be NULL) is called per
 * table, in copy order, once committed. OTA_ERR_SCHEMA: a schema version or a table or column
 * that does not match; OTA_ERR_CONFLICT: st is not PostgreSQL or a table of it holds rows;
 * OTA_ERR_DB: either database failed (the SQLite file missing or not a database); msg says why.
 */
OTA_WUR enum ota_err ota_store_copy_from_sqlite(struct ota_store *st, const char *sqlite_path,
                                                void (*each)(void *ctx, const char *table,
                                                             int64_t rows),
                                                void *ctx, char *msg, size_t msglen);

/*
 * Route SQLite's error log to the store, so that a full or failing disk met by any store call
 * is noted as a storage fault on the calling thread (common/err.h; a group commit notes it on
 * each caller it fails). ota_store_open() calls it; a program that uses SQLite before opening
 * a store (a test registering a VFS) calls it first. Idempotent, thread-safe.
 */
void ota_store_global_init(void);

/* The schema version of the open database, and the newest this otad knows. */
int ota_store_schema_version(struct ota_store *st);
int ota_store_schema_latest(void);

/*
 * Bulk loading (imports, benchmarks): between ota_store_bulk_begin() and ota_store_bulk_end()
 * every writing call on this handle joins one transaction instead of committing its own, so
 * nothing of it is durable until ota_store_bulk_end(st, true) returns OTA_OK. A call that fails
 * inside a bulk may leave part of its writes in it: after any error, end the bulk with
 * commit = false, which discards everything since ota_store_bulk_begin(). Meant for a single
 * thread that is the handle's only user meanwhile. OTA_ERR_CONFLICT when a bulk is open
 * already (begin) or none is (end); OTA_ERR_DB when the database fails.
 */
OTA_WUR enum ota_err ota_store_bulk_begin(struct ota_store *st);
OTA_WUR enum ota_err ota_store_bulk_end(struct ota_store *st, bool commit);

/*
 * Transactions spanning several calls (a change and its audit entry, audit/audit.h):
 * ota_store_tx_begin() takes the handle for the calling thread (other threads wait until the
 * end) and opens one transaction; every store call the thread makes until ota_store_tx_end()
 * joins it instead of committing its own. ota_store_tx_end(st, true) commits: OTA_OK, or
 * OTA_ERR_DB and nothing of it was written; ota_store_tx_end(st, false) discards everything
 * since the begin. After any error from a call inside, end with false. Not nestable and not
 * inside a bulk: OTA_ERR_CONFLICT. ota_store_tx_end() without a begin: OTA_ERR_CONFLICT.
 */
OTA_WUR enum ota_err ota_store_tx_begin(struct ota_store *st);
OTA_WUR enum ota_err ota_store_tx_end(struct ota_store *st, bool commit);
/* The end of every begin-change-audit-commit: commits when rc is OTA_OK (and returns the
 * commit's result), else discards everything since the begin and returns rc. */
OTA_WUR enum ota_err ota_store_tx_finish(struct ota_store *st, enum ota_err rc);

/*
 * Group commit, for many small durable writes from concurrent threads (device reports):
 * runs fn(st, ctx) inside a savepoint of one transaction shared with the other threads that
 * call ota_store_group() meanwhile, and returns only once that transaction is committed (one
 * COMMIT, one flush for the whole group), so an OTA_OK means fn's writes are durable. fn's
 * store calls (and ota_audit_append()) join the shared transaction, as inside
 * ota_store_tx_begin/end. When fn returns anything but OTA_OK, its own writes alone are rolled
 * back and that value is returned; the others' stand. OTA_ERR_DB: the group could not be
 * committed and nothing of fn's was stored. fn may run on another caller's thread (whichever
 * commits the group), so it must not depend on its thread; it must not call
 * ota_store_tx_begin() or ota_store_group(). Inside a bulk or a tx: OTA_ERR_CONFLICT.
 */
OTA_WUR enum ota_err ota_store_group(struct ota_store *st,
                                     enum ota_err (*fn)(struct ota_store *st, void *ctx),
                                     void *ctx);
/*
 * The same without waiting (device reports whose connections are suspended meanwhile): queues
 * fn(st, ctx) for the next group and returns at once. A committer thread of the store, started
 * by the first submit, leads each group of the items queued while the previous one was
 * committed, then calls done(done_arg, rc, fault) once per item, on its own thread, with fn's
 * result as ota_store_group() would return it (OTA_OK only once fn's writes are committed and
 * flushed) and fault true when the failure was a storage fault (common/err.h; the callback's
 * caller notes it on the thread that answers). done must not call the store. ctx must live
 * until done is called. OTA_OK: done will be called exactly once, at the latest from
 * ota_store_free(), which commits what is queued first. OTA_ERR_NOMEM (or OTA_ERR_CONFLICT once
 * the store is being freed): nothing queued, done is never called.
 */
OTA_WUR enum ota_err ota_store_group_submit(struct ota_store *st,
                                            enum ota_err (*fn)(struct ota_store *st, void *ctx),
                                            void *ctx,
                                            void (*done)(void *arg, enum ota_err rc, bool fault),
                                            void *done_arg);
/* The groups committed since the store was opened and the calls (both kinds) they held. */
void ota_store_group_stats(struct ota_store *st, unsigned long long *groups,
                           unsigned long long *items);

/* ---- identities ---- */

/*
 * The access generation: a counter of the process that moves with every change of who may
 * connect (a revocation, a device's status, admission or pinned certificate, a principal added
 * or disabled, a token revoked), when the change is written and again when it commits. An
 * identity settled at generation g stays good while the counter reads g; otherwise it is
 * checked against the store again. One atomic load: cheap enough for every request.
 */
uint64_t ota_store_access_generation(void);

/*
 * The rollouts generation: a counter of the process that moves with every change of a rollout's
 * row (created, started, paused, resumed, advanced, aborted, completed...) or of a device's tags
 * (what the rollouts cover) on any handle, when it is written and again when it commits, and
 * when a store is opened; with several instances, when another instance's change commits. What
 * was read of the rollouts at generation g is current while the counter reads g (the check-in's
 * memory of the running rollouts and of the devices they leave alone, rollout/engine.c). One
 * atomic load.
 */
uint64_t ota_store_rollouts_generation(void);

/* *revoked = whether this certificate fingerprint was revoked. */
OTA_WUR enum ota_err ota_store_is_revoked(struct ota_store *st, const char *fingerprint,
                                          bool *revoked);
OTA_WUR enum ota_err ota_store_revoke(struct ota_store *st, const char *fingerprint,
                                      const char *reason, int64_t now);

/*
 * Admit device `id` with `fingerprint` unless it exists; either way copy the device's row into
 * *out (so the caller compares out->fingerprint with the presented one). *created says whether
 * this call admitted it.
 */
OTA_WUR enum ota_err ota_store_device_admit(struct ota_store *st, const char *id,
                                            const char *fingerprint, int64_t now,
                                            struct ota_device *out, bool *created);
/* OTA_ERR_NOT_FOUND when unknown. */
OTA_WUR enum ota_err ota_store_device_get(struct ota_store *st, const char *id,
                                          struct ota_device *out);
/* The device's tags, sorted: up to max into tags, *n set. */
OTA_WUR enum ota_err ota_store_device_tags(struct ota_store *st, const char *device_id,
                                           char (*tags)[65], unsigned max, unsigned *n);
/*
 * Record what a device reported at check-in (and when). OTA_ERR_NOT_FOUND when unknown. What
 * the device reports (hardware variant, version, floor, root version, slot, boot state, a new
 * last outcome) is written and committed before OTA_OK when it differs from the row; a report
 * that repeats the row (the common check-in) writes nothing: its time (last_seen) is kept in
 * memory until ota_store_seen_flush(), so a crash of otad loses the check-in times since the
 * last flush, and nothing else. ota_store_device_get() and the management reads see the time
 * at once. Inside a transaction (tx, bulk) the whole report joins it.
 */
OTA_WUR enum ota_err ota_store_device_report(struct ota_store *st,
                                             const struct ota_device_report *r, int64_t now);
/*
 * Write the check-in times kept in memory (ota_store_device_report()) in one transaction.
 * otad calls it every [device] last_seen_flush seconds and at its stop; ota_store_free() calls
 * it too. On error the times stay in memory for the next flush. Any thread; nothing to do
 * inside the calling thread's transaction (OTA_OK: the next flush writes them).
 */
OTA_WUR enum ota_err ota_store_seen_flush(struct ota_store *st);

/* ---- images and releases ---- */

/* Record an image file; *existed when it was recorded already (then nothing changes). */
OTA_WUR enum ota_err ota_store_image_add(struct ota_store *st, const char *sha256, uint64_t size,
                                         int64_t now, bool *existed);
OTA_WUR enum ota_err ota_store_image_get(struct ota_store *st, const char *sha256, uint64_t *size);

/* Store root metadata version `version`. OTA_ERR_CONFLICT if that version holds other bytes;
 * storing the same bytes again is OTA_OK. */
OTA_WUR enum ota_err ota_store_root_put(struct ota_store *st, uint32_t version,
                                        const char *envelope, int64_t now);
/* The newest stored root version, 0 when none. */
OTA_WUR enum ota_err ota_store_root_latest(struct ota_store *st, uint32_t *version);
/* Calls fn for each stored root with version > after, in increasing order. A non-zero return
 * of fn stops the walk and is returned as OTA_ERR_INVALID. */
OTA_WUR enum ota_err
ota_store_roots_after(struct ota_store *st, uint32_t after,
                      int (*fn)(void *ctx, uint32_t version, const char *envelope), void *ctx);

/* Add a release (its image must be recorded). *existed when a release with this id exists
 * (nothing changes); OTA_ERR_CONFLICT when another release has the same name and version. */
OTA_WUR enum ota_err ota_store_release_add(struct ota_store *st, const struct ota_release *r,
                                           const char *envelope, int64_t now, bool *existed);
/* envelope (may be NULL) receives a malloc'd copy of the DSSE envelope; the caller frees it. */
OTA_WUR enum ota_err ota_store_release_get(struct ota_store *st, const char *id,
                                           struct ota_release *out, char **envelope);
/*
 * Where a page of a list ordered by (created_at, id) resumes: the key of the last item of the
 * previous page. id is never NULL; a first page passes a NULL struct pointer instead.
 */
struct ota_store_key {
	int64_t at;
	const char *id;
};

/*
 * Calls fn for the releases, newest first (created_at descending, then id), that follow
 * `after` (NULL: from the newest), at most `limit` (1..1000, else OTA_ERR_INVALID). *more when
 * others follow the last one delivered.
 */
OTA_WUR enum ota_err ota_store_release_list(struct ota_store *st, const struct ota_store_key *after,
                                            unsigned limit,
                                            void (*fn)(void *ctx, const struct ota_release *r),
                                            void *ctx, bool *more);

/* ---- deployments ---- */

/* Create deployment `id` (status active). OTA_ERR_CONFLICT when the device has one active. */
OTA_WUR enum ota_err ota_store_deployment_create(struct ota_store *st, const char *id,
                                                 const char *device_id, const char *release_id,
                                                 int64_t now);
OTA_WUR enum ota_err ota_store_deployment_get(struct ota_store *st, const char *id,
                                              struct ota_deployment *out);
/* The device's active deployment, OTA_ERR_NOT_FOUND when none. */
OTA_WUR enum ota_err ota_store_deployment_active(struct ota_store *st, const char *device_id,
                                                 struct ota_deployment *out);
/* The same for a check-in, outside any transaction: a device that checked in and was found with
 * none is answered from memory until a deployment is created for it (or for a device sharing
 * its generation slot) on this handle, another handle of the process or, through NOTIFY,
 * another instance, whose creation is seen once the notification arrives. Inside a
 * transaction, where a join must see every committed row, use ota_store_deployment_active(). */
OTA_WUR enum ota_err ota_store_deployment_active_cached(struct ota_store *st, const char *device_id,
                                                        struct ota_deployment *out);
/* The lookups of ota_store_deployment_active_cached() answered from memory and read from the
 * store, since the process started. */
void ota_store_deployment_reads(uint64_t *skipped, uint64_t *read);
/* End an active deployment with `status` and `reason`. OTA_ERR_CONFLICT if not active.
 * Joins the caller's transaction (the deployment service ends a deployment, moves its rollout
 * member and audits it in one). */
OTA_WUR enum ota_err ota_store_deployment_end(struct ota_store *st, const char *id,
                                              const char *status, const char *reason, int64_t now);
/* *allowed = the device has an active deployment whose release image is sha256. */
OTA_WUR enum ota_err ota_store_image_allowed(struct ota_store *st, const char *device_id,
                                             const char *sha256, bool *allowed);

/*
 * Store event `ev` of a device's deployment once: (deployment, seq) already stored with the
 * same status, reason, version and progress sets *duplicate and changes nothing; stored with
 * another event it is OTA_ERR_CONFLICT and changes nothing. What the event means for the deployment
 * and its rollout is the deployment service's to decide (server/deploy), in the same transaction.
 */
OTA_WUR enum ota_err ota_store_event_add(struct ota_store *st, const char *deployment_id,
                                         const char *device_id, const struct ota_event *ev,
                                         int64_t now, bool *duplicate);
/* Calls fn for each event of the deployment, by seq. */
OTA_WUR enum ota_err ota_store_event_list(struct ota_store *st, const char *deployment_id,
                                          void (*fn)(void *ctx, const struct ota_event *ev,
                                                     int64_t received_at),
                                          void *ctx);

#endif
