/*
 * audit/chain.h - the audit log's format, shared by the log (audit.c) and by the offline
 * verifier of exports (ota-audit-verify links chain.c alone, so it needs no database): an
 * entry's canonical JSON and its hash, the bytes a checkpoint signs, and the verifier fed
 * entries and checkpoints in order. Nothing outside server/audit/ includes it.
 */
#ifndef OTA_AUDIT_CHAIN_H
#define OTA_AUDIT_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "audit/audit.h"

#define OTA_AUDIT_ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

/* The entry as a JSON object without "hash" (NULL when out of memory or not UTF-8). The caller
 * frees it with json_decref(). */
json_t *ota_audit__entry_json(uint64_t seq, int64_t at, const struct ota_audit_entry *e,
                              const char *prev);

/* out = lowercase hex SHA-256 of the canonical text of `o` (which has no "hash" member);
 * false when out of memory. */
bool ota_audit__hash(json_t *o, char out[OTA_HEX256]);

/* The bytes a checkpoint signs, NUL-terminated in buf; snprintf's result. */
int ota_audit__cp_message(char *buf, size_t cap, uint64_t seq, const char *hash, int64_t at);

/* A verification in progress: fed entries and checkpoints in the order of the log. */
struct ota_audit__verifier {
	EVP_PKEY *pub; /* borrowed */
	struct ota_audit_verdict *v;
	uint64_t next;         /* the seq expected next */
	char last[OTA_HEX256]; /* hash of the last good entry */
	uint64_t last_cp;      /* seq of the last checkpoint checked */
	bool last_is_cp;       /* the last item fed was a checkpoint of the last entry */
};

/* Starts a verification with the public key `pub` (borrowed); v is reset to ok. */
void ota_audit__verifier_init(struct ota_audit__verifier *vs, EVP_PKEY *pub,
                              struct ota_audit_verdict *v);

/* Feeds an entry object with "hash" (and maybe "kind"), consuming those two members of o.
 * false when it fails (the verdict says why); feed nothing more then. */
bool ota_audit__verify_entry(struct ota_audit__verifier *vs, json_t *o);

/* Feeds a checkpoint; false when it fails (the verdict says why). */
bool ota_audit__verify_checkpoint(struct ota_audit__verifier *vs, uint64_t seq, const char *hash,
                                  int64_t at, const char *sig64);

#endif
