/*
 * rollout/quiet.h - the devices a set of running rollouts leaves alone, and until when.
 *
 * A check-in with no active deployment walks every running rollout: the device's tags, each
 * rollout's membership hash and target filter, the device's member rows. When the answer is
 * "nothing now" and rests only on what cannot move without a new set of running rollouts (a
 * rollout's row or a device's tags changed: ota_store_rollouts_generation()) or on the device's
 * reported facts (the key), the next check-in can skip the walk until the earliest retry the
 * answer named. Member rows that ended (succeeded, failed, rolled back, skipped) move only by
 * that retry; a device with a member on its way, or none yet, is walked every time.
 *
 * One table per set of running rollouts; a device is known by a 64-bit keyed digest of its id,
 * variant, version and security floor (a device whose facts change is another key). Four-way
 * buckets, grown while entries still in use are pushed out, at most OTA_QUIET_MAX_ENTRIES (16 bytes
 * each); a device pushed out walks again. Thread-safe.
 */
#ifndef OTA_ROLLOUT_QUIET_H
#define OTA_ROLLOUT_QUIET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rollout/rollout.h"

#define OTA_QUIET_MIN_ENTRIES 4096u
#define OTA_QUIET_MAX_ENTRIES (1u << 21) /* 32 MiB: a million devices at half load */

struct ota_quiet;

/* An empty table of at least `entries` slots (a power of two, clamped to MIN..MAX), or NULL. */
struct ota_quiet *ota_quiet_new(size_t entries);
void ota_quiet_free(struct ota_quiet *q);
/* Its size in slots now (a new set starts where the last one grew to). */
size_t ota_quiet_entries(struct ota_quiet *q);

/* The device's key (its tags are not part of it); 0 when it has none (facts too long to digest:
 * the walk is never skipped). */
uint64_t ota_quiet_key(const struct ota_rollout_device *d);
/* Whether the rollouts leave the device with this key alone at time now. */
bool ota_quiet_now(struct ota_quiet *q, uint64_t key, int64_t now);
/* Learnt at time now: they leave it alone until `until` (INT64_MAX: until the set or the key
 * changes). */
void ota_quiet_keep(struct ota_quiet *q, uint64_t key, int64_t now, int64_t until);

/* Process-wide counts of check-ins that skipped the walk and of those that walked. */
void ota_quiet_counts(uint64_t *skipped, uint64_t *walked);

#endif
