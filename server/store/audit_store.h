/*
 * store/audit_store.h - the rows of the audit log and of its checkpoints: appending an entry
 * onto the chain head, the head itself, checkpoints (add, newest), filtered queries, and the
 * walk of entries with their checkpoints by seq range that the export and the verifier read
 * in bounded pieces. The log's rules (canonical form, hashes, signatures, verdicts) are
 * audit/audit.h's; these functions only apply and read, so a second backend implements them
 * without knowing the format.
 *
 * Rows: entry `seq` (1, 2, 3 ... without gaps) carries `prev`, the hash of entry seq - 1, or 64
 * zeros for entry 1; the backend refuses to change or delete a stored row, and to add an entry
 * that is not the next on the chain head. A checkpoint names an entry (seq) and its hash.
 *
 * Threads: as store.h, any thread; calls on one handle are serialised inside. Callbacks run
 * with the handle held (other threads wait): they must not call the store and should be short.
 * Transactions: writing calls join the transaction the calling thread has open
 * (ota_store_tx_begin(), a group, a bulk), else run in one of their own; reads see the
 * caller's transaction.
 * Errors: OTA_OK, OTA_ERR_INVALID (a bad argument; nothing read or written), OTA_ERR_CONFLICT,
 * OTA_ERR_NOT_FOUND (as said per call), OTA_ERR_DB (the database failed; nothing of the call
 * was written). Inside a caller's transaction, end it with ota_store_tx_end(st, false) after
 * any error.
 * Ownership: structs passed in are borrowed for the call; the strings of a row or checkpoint
 * handed to a callback are the store's, valid during that call only (copy what you keep).
 */
#ifndef OTA_STORE_AUDIT_H
#define OTA_STORE_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* An audit entry as stored. NULL strings are absent values (actor and action never are). */
struct ota_store_audit_row {
	uint64_t seq;
	int64_t at; /* Unix seconds */
	const char *actor, *role, *action;
	const char *device_id, *rollout_id, *release_id, *object;
	const char *before, *after, *detail; /* before / after: JSON texts */
	const char *prev, *hash;             /* 64 lowercase hex digits each */
};

/* A signed checkpoint of the chain head: entry seq, its hash, when, the signature (base64). */
struct ota_store_audit_checkpoint {
	uint64_t seq;
	const char *hash;
	int64_t at;
	const char *sig;
};

/* Filters of ota_store_audit_query(); zero / NULL fields do not filter. */
struct ota_store_audit_filter {
	uint64_t after_seq;   /* seq > after_seq */
	int64_t since, until; /* at >= since, at < until (0: open) */
	const char *actor, *action, *device_id, *rollout_id, *release_id; /* equal */
	unsigned limit;                                                   /* >= 1 */
};

/*
 * Append one entry onto the chain head, in one transaction (the caller's, or its own): reads
 * the head, calls seal(ctx, seq, prev, hash) with seq = the head's seq + 1 and prev = the
 * head's hash (64 zeros when the log is empty), which fills hash (64 hex digits and a NUL),
 * and stores r (its seq, prev and hash members are ignored) with those three. When seal
 * returns anything but OTA_OK nothing is stored and that value is returned. *seq (may be NULL)
 * gets the new entry's seq. OTA_ERR_INVALID: r without actor or action; OTA_ERR_DB.
 */
OTA_WUR enum ota_err ota_store_audit_append(
    struct ota_store *st, const struct ota_store_audit_row *r,
    enum ota_err (*seal)(void *ctx, uint64_t seq, const char *prev, char hash[OTA_HEX256]),
    void *ctx, uint64_t *seq);

/*
 * The chain head: the newest entry's seq and hash, or 0 and 64 zeros when the log is empty.
 * To act on the head (sign it), read it inside a transaction (ota_store_tx_begin()).
 * OTA_ERR_DB.
 */
OTA_WUR enum ota_err ota_store_audit_head(struct ota_store *st, uint64_t *seq,
                                          char hash[OTA_HEX256]);

/* The seq of the newest checkpoint, 0 when there is none. OTA_ERR_DB. */
OTA_WUR enum ota_err ota_store_audit_checkpoint_latest(struct ota_store *st, uint64_t *seq);

/*
 * Store a checkpoint (all members set). OTA_ERR_INVALID: a member missing;
 * OTA_ERR_CONFLICT: entry seq has a checkpoint already; OTA_ERR_NOT_FOUND: no entry seq;
 * OTA_ERR_DB.
 */
OTA_WUR enum ota_err ota_store_audit_checkpoint_add(struct ota_store *st,
                                                    const struct ota_store_audit_checkpoint *c);

/*
 * Call fn for each entry matching f, by increasing seq, at most f->limit of them. *more is set
 * when a further entry matches past the last one delivered. A non-zero return of fn stops the
 * walk (OTA_OK, *more false). OTA_ERR_INVALID: limit 0; OTA_ERR_DB.
 */
OTA_WUR enum ota_err
ota_store_audit_query(struct ota_store *st, const struct ota_store_audit_filter *f,
                      int (*fn)(void *ctx, const struct ota_store_audit_row *r), void *ctx,
                      bool *more);

/*
 * Walk the log by seq range: entry(ctx, r) for each entry with after < seq <= upto, by
 * increasing seq, at most `limit` of them; after each entry, checkpoint(ctx, c) for every
 * checkpoint not delivered yet whose seq is at most that entry's (in a sound log: the
 * entry's own). Checkpoints above the last entry delivered are not delivered (a next walk from
 * that entry gets them). checkpoint may be NULL (entries only). A non-zero return of either
 * callback stops the walk (OTA_OK). Reads are bounded by `limit`, whatever the log's size:
 * call again with after = the last seq seen. OTA_ERR_INVALID: limit 0; OTA_ERR_DB.
 */
OTA_WUR enum ota_err
ota_store_audit_walk(struct ota_store *st, uint64_t after, uint64_t upto, unsigned limit,
                     int (*entry)(void *ctx, const struct ota_store_audit_row *r),
                     int (*checkpoint)(void *ctx, const struct ota_store_audit_checkpoint *c),
                     void *ctx);

#endif
