/*
 * deploy/plan.h - what a rollout would do, computed before it starts (docs/rollouts.md,
 * "Plan"). Pure: no I/O but the time-zone database, the time passed in. The caller feeds every
 * registered device to ota_plan_add() (store/plan_store.h reads them) and reads the result
 * from the struct: per stage, the devices it would cover by hardware variant, version and tag;
 * the devices skipped and why; the maintenance windows ahead; an estimate of each stage's
 * duration. A plan changes nothing and reserves nothing: the fleet may change before the
 * rollout starts.
 *
 * Membership uses the rollout's own key (ota_rollout_bucket), so the plan of a draft names
 * the very devices each stage will take; a plan of a definition not yet created draws a key
 * of its own, as creating would, so its split between stages is one draw of the same chance.
 *
 * Ownership: ota_plan_new() returns a plan the caller frees with ota_plan_free() (NULL is
 * fine). Errors: NULL from ota_plan_new() when out of memory.
 */
#ifndef OTA_ROLLOUT_PLAN_H
#define OTA_ROLLOUT_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "rollout/rollout.h"
#include "store/plan_store.h"
#include "store/store.h"

#define OTA_PLAN_MAX_KEYS 200    /* distinct values kept per breakdown; the rest: "other" */
#define OTA_PLAN_SKIP_LIST 100   /* skipped devices named one by one */
#define OTA_PLAN_WINDOW_DAYS 14  /* how far ahead maintenance windows are listed */
#define OTA_PLAN_MAX_WINDOWS 120 /* at most one per weekday per day looked at */
#define OTA_PLAN_MAX_WARNINGS 12

/* Why a targeted device would be skipped, in the order they are tested. */
enum ota_plan_skip {
	OTA_PS_DECOMMISSIONED,
	OTA_PS_PENDING_ADMISSION,
	OTA_PS_REJECTED,
	OTA_PS_NO_REPORT, /* never checked in: variant and version not known */
	OTA_PS_WRONG_VARIANT,
	OTA_PS_BELOW_FLOOR,
	OTA_PS_ALREADY_ON_VERSION,
	OTA_PS__COUNT
};
/* "decommissioned", "pending_admission", ... (the API's names). */
const char *ota_plan_skip_name(enum ota_plan_skip s);

/* One breakdown (hardware variant, version or tag): value -> devices per stage. */
struct ota_plan_key {
	char key[OTA_RO_TAG_MAX + 1];
	unsigned n[OTA_RO_MAX_STAGES];
};
struct ota_plan_breakdown {
	unsigned nkeys;
	struct ota_plan_key *keys;             /* in first-seen order */
	unsigned slots[2 * OTA_PLAN_MAX_KEYS]; /* hash index into keys, 0 = empty, else i + 1 */
	unsigned other[OTA_RO_MAX_STAGES];     /* devices of values past OTA_PLAN_MAX_KEYS */
};

struct ota_plan_stage {
	unsigned devices;     /* devices this stage adds */
	unsigned cumulative;  /* devices of this stage and the ones before */
	unsigned concurrency; /* devices that may update at once (budgets) */
	unsigned waves;       /* ceil(devices / concurrency) */
	int64_t estimate_s;   /* max(waves * poll interval, soak) */
};

struct ota_plan_skipped {
	char device_id[OTA_ID_MAX + 1];
	enum ota_plan_skip why;
	char detail[96];
};

struct ota_plan_window {
	int64_t opens_at, closes_at; /* Unix seconds */
};

struct ota_plan_hmac;

struct ota_plan {
	struct ota_rollout_spec spec;
	struct ota_release release;
	char rollout_id[OTA_RO_ID_MAX];
	uint8_t key[32];
	struct ota_plan_hmac *hmac; /* the membership HMAC, keyed once */
	unsigned poll_interval;

	unsigned considered;   /* devices read from the registry */
	unsigned not_targeted; /* the target filter does not match them */
	unsigned targeted;     /* matched: covered or skipped */
	unsigned covered;      /* would be offered the release, in some stage */
	unsigned skipped[OTA_PS__COUNT];
	unsigned nskipped_list;
	struct ota_plan_skipped skipped_list[OTA_PLAN_SKIP_LIST];

	struct ota_plan_stage stages[OTA_RO_MAX_STAGES];
	struct ota_plan_breakdown by_hw, by_version, by_tag;
	struct ota_plan_breakdown by_scope; /* values of the per-tag budget's key */

	unsigned nwindows;
	struct ota_plan_window windows[OTA_PLAN_MAX_WINDOWS];
	unsigned nwarnings;
	char warnings[OTA_PLAN_MAX_WARNINGS][160];
};

/*
 * A plan of spec s for release rel, rollout rollout_id with membership key key (a draft's own,
 * or fresh random bytes for a definition not yet created), devices polling every
 * poll_interval seconds. NULL when out of memory.
 */
struct ota_plan *ota_plan_new(const struct ota_rollout_spec *s, const struct ota_release *rel,
                              const char *rollout_id, const uint8_t key[32],
                              unsigned poll_interval);
/* Classifies one device: not targeted, skipped (and why), or covered by a stage. */
void ota_plan_add(struct ota_plan *p, const struct ota_plan_device *d);
/* The device's bucket in this plan's rollout: ota_rollout_bucket(key, rollout_id, id), faster. */
unsigned ota_plan_bucket(struct ota_plan *p, const char *device_id);
/* The store's callback shape for ota_store_plan_devices(); ctx is the plan. */
void ota_plan_add_cb(void *ctx, const struct ota_plan_device *d);
/*
 * After the last device: the per-stage estimates, warnings, and the windows that are open at
 * now or open in the next OTA_PLAN_WINDOW_DAYS days. OTA_ERR_INVALID when the window's time
 * zone is unknown.
 */
OTA_WUR enum ota_err ota_plan_finish(struct ota_plan *p, int64_t now);
void ota_plan_free(struct ota_plan *p);

#endif
