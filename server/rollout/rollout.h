/*
 * rollout/rollout.h - staged canary rollouts (docs/rollouts.md).
 *
 * Two halves. The pure half decides without I/O and takes the time as an argument, so tests
 * drive it with an injected clock: the definition (struct ota_rollout_spec) and its text
 * encoding, validation, membership by a keyed hash, the target filter, maintenance windows
 * read from the system time-zone database, retry backoff, and the stage verdict. The engine
 * half (ota_rollout_checkin, ota_rollout_evaluate, the operator actions) applies those
 * decisions through the store, where every change and its counters commit in one transaction.
 *
 * Errors: OTA_ERR_INVALID (a definition or argument breaks a rule; msg says which),
 * OTA_ERR_NOT_FOUND (no such rollout or release), OTA_ERR_CONFLICT (the rollout's state
 * forbids the action), OTA_ERR_DB / OTA_ERR_NOMEM (nothing changed).
 */
#ifndef OTA_ROLLOUT_H
#define OTA_ROLLOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "store/rollout_store.h"
#include "store/store.h"

#define OTA_RO_MAX_LIST 16 /* hardware variants, baseline versions, tags */
#define OTA_RO_MAX_STAGES 10
#define OTA_RO_TAG_MAX 64
#define OTA_RO_TZ_MAX 64
#define OTA_RO_BP 10000 /* membership buckets: basis points of the matching devices */

struct ota_rollout_stage {
	unsigned percent_bp;   /* cumulative share of the matching devices, 1..10000 */
	unsigned success_pct;  /* advance when this % of the stage's joined devices succeeded */
	bool auto_advance;     /* false: wait for an operator's approval */
	unsigned failure_pct;  /* halt when failures are more than this % of finished ... */
	unsigned min_finished; /* ... once at least this many finished (also needed to advance) */
	unsigned soak_s;       /* the stage runs at least this long */
};

struct ota_rollout_spec {
	char name[OTA_ID_MAX + 1];
	char release_id[OTA_HEX256];
	/* target filter; empty lists match everything */
	unsigned nhw;
	char hw[OTA_RO_MAX_LIST][33];
	unsigned nbaseline;
	char baseline[OTA_RO_MAX_LIST][OTA_ID_MAX + 1];
	char baseline_range[128]; /* e.g. ">=1.2.0 <2.0.0"; empty: none */
	unsigned ntags_all, ntags_any;
	char tags_all[OTA_RO_MAX_LIST][OTA_RO_TAG_MAX + 1];
	char tags_any[OTA_RO_MAX_LIST][OTA_RO_TAG_MAX + 1];
	/* stages */
	unsigned nstages;
	struct ota_rollout_stage stages[OTA_RO_MAX_STAGES];
	/* retries: attempts in all (1 = no retry), backoff doubling from backoff_s */
	unsigned retry_attempts;
	unsigned retry_backoff_s;
	/* maintenance window; window_days == 0: always open */
	unsigned window_days;     /* bit 0 = Monday ... bit 6 = Sunday, local days */
	unsigned window_start;    /* minutes after local midnight */
	unsigned window_duration; /* minutes, 1..10080 */
	char window_tz[OTA_RO_TZ_MAX + 1];
	/* concurrency budgets; 0 = unlimited */
	unsigned max_active;
	char budget_tag_key[OTA_RO_TAG_MAX + 1]; /* e.g. "line": one budget per "line=..." */
	unsigned max_active_per_tag;
};

/* ---- the pure half ---- */

/* Checks every rule of a definition (docs/rollouts.md); msg says the first one broken.
 * Returns OTA_OK or OTA_ERR_INVALID. */
OTA_WUR enum ota_err ota_rollout_spec_check(const struct ota_rollout_spec *s, char *msg,
                                            size_t msglen);
/* The spec as text (the store keeps it) and back. encode returns a malloc'd string or NULL;
 * decode returns OTA_ERR_INVALID on any unknown or malformed line. */
char *ota_rollout_spec_encode(const struct ota_rollout_spec *s);
OTA_WUR enum ota_err ota_rollout_spec_decode(const char *text, struct ota_rollout_spec *s);

/* A device's bucket in 0..9999: HMAC-SHA-256 under key of rollout id, NUL, device id. */
unsigned ota_rollout_bucket(const uint8_t key[32], const char *rollout_id, const char *device_id);
/* The first stage whose percentage covers bucket, or -1 when none does. */
int ota_rollout_stage_of(const struct ota_rollout_spec *s, unsigned bucket);

/* Semantic versions (2.0.0): -1, 0, 1; pre-release ranks below its release. */
int ota_semver_cmp(const char *a, const char *b);
/* range is space-separated comparators (">=1.2.0 <2.0.0", "=1.0.0", "1.0.0"), all must hold.
 * Returns 1 in range, 0 not, -1 when the range is malformed. */
int ota_semver_in_range(const char *version, const char *range);

/* The device facts the target filter looks at. */
struct ota_rollout_device {
	const char *id;
	const char *hw_variant;
	const char *version;
	uint32_t security_floor;
	unsigned ntags;
	const char *const *tags;
};
/* Whether the target filter matches; if not, why (a short reason). */
bool ota_rollout_matches(const struct ota_rollout_spec *s, const struct ota_rollout_device *d,
                         char *why, size_t whylen);

/*
 * Whether the window is open at Unix time now. Reads the zone from the system database
 * (/usr/share/zoneinfo, or $TZDIR) without touching TZ, so it is safe in threads.
 * *open is true when the spec has no window. OTA_ERR_INVALID when the zone is unknown.
 */
OTA_WUR enum ota_err ota_rollout_window_open(const struct ota_rollout_spec *s, int64_t now,
                                             bool *open);
/* The UTC offset in seconds of IANA zone tz at Unix time t. OTA_ERR_INVALID when unknown. */
OTA_WUR enum ota_err ota_tz_offset(const char *tz, int64_t t, int32_t *offset);

/* Seconds to wait before attempt number `attempt` + 1 after `attempt` failed attempts. */
int64_t ota_rollout_backoff(const struct ota_rollout_spec *s, unsigned attempt);

enum ota_verdict {
	OTA_V_HOLD,          /* keep going */
	OTA_V_HALT,          /* failures passed the threshold: pause */
	OTA_V_ADVANCE,       /* start the next stage */
	OTA_V_WAIT_APPROVAL, /* succeeded; an operator approves the next stage */
	OTA_V_COMPLETE,      /* last stage succeeded and nothing is in flight */
};
/*
 * The verdict on stage `stage` of s from its counters, started at stage_started, at now.
 * ack_failures/ack_finished are subtracted (failures an operator accepted by resuming).
 * why gets a sentence for HALT, ADVANCE, WAIT_APPROVAL and COMPLETE.
 */
enum ota_verdict ota_rollout_judge(const struct ota_rollout_spec *s, unsigned stage,
                                   const struct ota_stage_counts *c, unsigned ack_failures,
                                   unsigned ack_finished, int64_t stage_started, int64_t now,
                                   char *why, size_t whylen);

/* ---- the engine ---- */

/* A fresh deployment id: "d-" and 32 random hex digits. OTA_ERR_IO without randomness. */
OTA_WUR enum ota_err ota_rollout_random_deployment_id(char id[OTA_DEPLOYMENT_ID_MAX]);

/*
 * Every write below is one store transaction with its audit entries (audit/audit.h): actor and
 * role name who asked (the principal and its role name); NULL actor means otad itself.
 */

/* Create a draft rollout; id receives "r-" and 32 hex digits. */
OTA_WUR enum ota_err ota_rollout_create(struct ota_store *st, const struct ota_rollout_spec *s,
                                        const char *actor, const char *role, int64_t now,
                                        char id[OTA_RO_ID_MAX], char *msg, size_t msglen);

enum ota_rollout_action {
	OTA_RA_START,   /* draft -> running */
	OTA_RA_PAUSE,   /* running | waiting_approval -> paused */
	OTA_RA_RESUME,  /* paused -> running */
	OTA_RA_APPROVE, /* waiting_approval -> running, next stage */
	OTA_RA_ABORT,   /* any but completed/aborted -> aborted */
};
/* Apply an operator action; OTA_ERR_CONFLICT with msg when the state forbids it. */
OTA_WUR enum ota_err ota_rollout_act(struct ota_store *st, const char *id,
                                     enum ota_rollout_action a, const char *reason,
                                     const char *actor, const char *role, int64_t now, char *msg,
                                     size_t msglen);

/*
 * Called at every check-in of an admitted device that has no active deployment: offers the
 * device the release of the first running rollout that wants it now (creating the deployment
 * and its member row in one transaction, within the concurrency budgets), records it as
 * skipped where the rollout can never take it, and evaluates the running rollouts.
 * *offered says whether a deployment was created. Cost: per running rollout, a few indexed
 * lookups, whatever the fleet's size.
 */
OTA_WUR enum ota_err ota_rollout_checkin(struct ota_store *st, const struct ota_rollout_device *d,
                                         int64_t now, bool *offered);
/* Evaluate a running rollout's current stage and apply the verdict (halt, advance, wait,
 * complete). Nothing happens for rollouts in other states. */
OTA_WUR enum ota_err ota_rollout_evaluate(struct ota_store *st, const char *id, int64_t now);

/* One device the roll back could not target, and why. */
struct ota_rollback_refusal {
	char device_id[OTA_ID_MAX + 1];
	char reason[128];
};
/*
 * Roll the rollout's failed devices (all = false: failed and rolled_back) or all updated
 * devices (all = true: also succeeded) back to release release_id, then abort the rollout.
 * Devices whose floor is above the release's security_version, or that are mid-update, are
 * not targeted and listed in *refused (malloc'd array of *nrefused; the caller frees it);
 * *ndeployed counts deployments created.
 */
OTA_WUR enum ota_err ota_rollout_rollback(struct ota_store *st, const char *id,
                                          const char *release_id, bool all, const char *actor,
                                          const char *role, int64_t now, unsigned *ndeployed,
                                          struct ota_rollback_refusal **refused, unsigned *nrefused,
                                          char *msg, size_t msglen);

#endif
