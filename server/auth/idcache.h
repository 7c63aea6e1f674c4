/*
 * auth/idcache.h - client certificates whose chain has verified, remembered by fingerprint so
 * that a later connection presenting the same chain (a device's next poll, and every resumed
 * TLS session, which carries the chain of its first handshake) skips the chain's signature
 * verification and parsing. It holds only what the chain proved: the names (CN, OU) and until
 * when the proof holds (the earliest notAfter of the chain and its CA). Who may connect is not
 * in it: the revocation table, the device's state and pin are checked on every connection
 * (auth.h), and the CRL, which only changes when it is loaded, empties the cache then.
 *
 * Bounded: the memory is allocated once (4-way sets); a full set forgets its least recently
 * used entry. Thread-safe (one mutex per cache, held for a copy only). Never fails after new.
 */
#ifndef OTA_IDCACHE_H
#define OTA_IDCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "store/store.h"

#define OTA_IDCACHE_OU_MAX 32

/* What a verified chain proved. */
struct ota_idcache_id {
	char cn[OTA_ID_MAX + 2]; /* as parsed; auth.h still checks it is a valid name */
	char ou[OTA_IDCACHE_OU_MAX];
};

struct ota_idcache;

/* A cache of at most `entries` chains (rounded up to a multiple of 4; 0: a cache that holds
 * nothing). OTA_ERR_NOMEM when it cannot be allocated. Freed by ota_idcache_free. */
OTA_WUR enum ota_err ota_idcache_new(unsigned entries, struct ota_idcache **out);
void ota_idcache_free(struct ota_idcache *c); /* NULL is fine */

/* The names proved by the chain whose digest is `key` (the SHA-256 of the leaf's DER for a
 * one-certificate chain), if it is cached and `now` (Unix seconds) is before its notAfter;
 * an expired entry is dropped. False when not cached. */
bool ota_idcache_get(struct ota_idcache *c, const unsigned char key[32], int64_t now,
                     struct ota_idcache_id *out);

/* Remember a chain that has just verified, valid until `not_after` (Unix seconds). */
void ota_idcache_put(struct ota_idcache *c, const unsigned char key[32], int64_t not_after,
                     const struct ota_idcache_id *id);

/* Forget everything (a new CRL was loaded). */
void ota_idcache_clear(struct ota_idcache *c);

/* How many lookups found an entry, and how many did not, since the start. */
void ota_idcache_stats(struct ota_idcache *c, uint64_t *hits, uint64_t *misses);

#endif
