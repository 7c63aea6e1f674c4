/*
 * audit/audit.h - the tamper-evident audit log: an append-only, hash-chained table written in
 * the same transaction as the change each entry records, periodic checkpoints that sign the
 * chain head with the server's audit key (ECDSA P-256), queries with cursor paging, a streamed
 * NDJSON export, and verification of the database or of an export (docs/security.md, "Audit
 * log", states the format).
 *
 * Chain: entry N carries prev = hash of entry N-1 (64 zeros for entry 1) and
 * hash = lowercase hex SHA-256 of the entry's canonical JSON (every field below plus "seq",
 * "at" and "prev", without "hash"; keys sorted, compact, as jansson's JSON_SORT_KEYS |
 * JSON_COMPACT writes it). The database refuses UPDATE and DELETE on the log (triggers).
 *
 * Atomicity: a caller that changes state opens a store transaction (ota_store_tx_begin()),
 * makes its store calls, calls ota_audit_append() and ends the transaction with
 * ota_store_tx_end(st, ok): the change and its entry commit together or not at all.
 * ota_audit_append() outside a transaction runs in a transaction of its own (security events
 * that change nothing else: denied requests, refused certificates).
 *
 * Threads: ota_audit_append() and the readers are safe from any thread (the store serialises);
 * an ota_audit handle is shared read-only after ota_audit_open(), its checkpoint calls are
 * serialised inside.
 */
#ifndef OTA_AUDIT_H
#define OTA_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "store/store.h"

#define OTA_AUDIT_TEXT_MAX 4096 /* before / after / detail, bytes each (longer is refused) */

/*
 * One entry as the caller states it. Strings are borrowed for the call; NULL means absent.
 * actor: the principal name, the device id, or "otad" for the server itself.
 * role: "admin", "operator", "auditor", "token", "device", "system" ... (free text, short).
 * action: dotted event type, e.g. "device.approve", "rollout.start", "rollout.stage.advance",
 *   "deployment.outcome", "access.denied", "cert.refused" (docs/security.md lists them).
 * device_id / rollout_id / release_id: the objects the entry concerns, for queries.
 * object: any other object id (token id, image sha256, principal name).
 * before / after: JSON texts of the state before and after the change, where it matters.
 * detail: free text (a reason, the request line of a denied call).
 */
struct ota_audit_entry {
	const char *actor;
	const char *role;
	const char *action;
	const char *device_id;
	const char *rollout_id;
	const char *release_id;
	const char *object;
	const char *before;
	const char *after;
	const char *detail;
};

/*
 * Append one entry with time `now` (Unix seconds). Joins the store transaction the calling
 * thread has open (ota_store_tx_begin()), else runs in its own. Errors: OTA_ERR_INVALID
 * (action or actor missing, a field too long, before/after not JSON), OTA_ERR_DB,
 * OTA_ERR_NOMEM. On error inside a caller's transaction the caller must end it with
 * ota_store_tx_end(st, false). *seq (may be NULL) gets the entry's sequence number.
 */
OTA_WUR enum ota_err ota_audit_append(struct ota_store *st, const struct ota_audit_entry *e,
                                      int64_t now, uint64_t *seq);

/* ---- the audit key and checkpoints ---- */

struct ota_audit;

/*
 * Open the audit key at DATA_DIR/audit.key (PEM, ECDSA P-256), generating it (mode 0600) on
 * first start, and write its public key to DATA_DIR/audit.pub. OTA_ERR_IO / OTA_ERR_NOMEM with
 * msg set. Free with ota_audit_free().
 */
OTA_WUR enum ota_err ota_audit_open(struct ota_store *st, const char *data_dir,
                                    struct ota_audit **out, char *msg, size_t msglen);
void ota_audit_free(struct ota_audit *a);

/* The public key, PEM (SubjectPublicKeyInfo); owned by the handle. */
const char *ota_audit_pubkey_pem(const struct ota_audit *a);

/*
 * Sign the current chain head unless the newest checkpoint covers it already. *seq (may be
 * NULL) gets the head covered (0 when the log is empty: nothing to sign).
 */
OTA_WUR enum ota_err ota_audit_checkpoint(struct ota_audit *a, int64_t now, uint64_t *seq);

/* ---- reading ---- */

/* An entry as stored; strings owned by the callback's caller, valid during the call only. */
struct ota_audit_row {
	uint64_t seq;
	int64_t at;
	struct ota_audit_entry e;
	const char *prev;
	const char *hash;
};

/* Query filters; zero / NULL fields do not filter. Results are by increasing seq. */
struct ota_audit_filter {
	uint64_t after_seq;   /* the cursor: entries with seq > after_seq */
	int64_t since, until; /* at >= since, at < until (0: open) */
	const char *actor, *action, *device_id, *rollout_id, *release_id;
	unsigned limit; /* at most this many (1..1000) */
};

/*
 * Call fn for each matching entry. *more is set when further entries match past the last
 * delivered one (use its seq as the next after_seq). A non-zero return of fn stops the walk
 * (OTA_OK). OTA_ERR_INVALID for a bad limit, OTA_ERR_DB.
 */
OTA_WUR enum ota_err ota_audit_query(struct ota_store *st, const struct ota_audit_filter *f,
                                     int (*fn)(void *ctx, const struct ota_audit_row *row),
                                     void *ctx, bool *more);

/*
 * The NDJSON export, produced in pieces of bounded size (constant memory whatever the log's
 * size): ota_audit_export_begin() signs the head (a checkpoint) and fixes the export's end
 * there; each ota_audit_export_read() fills buf with whole lines and returns their length,
 * 0 at the end, or -1 on error. Lines: {"kind":"entry",...fields...,"hash":...} and
 * {"kind":"checkpoint","seq":N,"hash":...,"at":...,"sig":base64 DER} after the entry it covers;
 * the last line is the checkpoint of the last entry. Any buflen >= 1 works (a line may span
 * calls).
 */
struct ota_audit_export;
OTA_WUR enum ota_err ota_audit_export_begin(struct ota_audit *a, int64_t now,
                                            struct ota_audit_export **out);
long ota_audit_export_read(struct ota_audit_export *x, char *buf, size_t buflen);
void ota_audit_export_free(struct ota_audit_export *x);

/* What a verification found. ok, or the first bad entry (seq) and why. */
struct ota_audit_verdict {
	bool ok;
	uint64_t entries;     /* entries checked */
	uint64_t checkpoints; /* signatures checked */
	uint64_t bad_seq;     /* 0 when ok or when the fault is not one entry's (e.g. the end) */
	char reason[200];
};

/* Verify the database's chain and checkpoints (all of it) with the handle's key. */
OTA_WUR enum ota_err ota_audit_verify_db(struct ota_audit *a, struct ota_audit_verdict *v);

/*
 * Verify an NDJSON export read from `f` against the PEM public key `pubkey_pem`:
 * every line parses, seq runs 1, 2, 3 ... without gaps, every hash recomputes, every prev is
 * the previous hash, every checkpoint's signature verifies and names an entry's hash, and the
 * last line is a checkpoint of the last entry. Needs nothing but the export and the key.
 * Returns OTA_OK with v filled (v->ok tells the verdict), OTA_ERR_INVALID for a bad key.
 */
OTA_WUR enum ota_err ota_audit_verify_export(FILE *f, const char *pubkey_pem,
                                             struct ota_audit_verdict *v);

#endif
