/*
 * rollout/rollout.h - staged canary rollouts (docs/rollouts.md).
 *
 * Two halves. The pure half decides without I/O and takes the time as an argument, so tests
 * drive it with an injected clock: the definition (struct ota_rollout_spec) and its text
 * encoding, validation, membership by a keyed hash, the target filter, maintenance windows
 * read from the system time-zone database, retry backoff, what a report means for a member,
 * and the stage verdict. The engine half (engine.c: the operator actions, the verdicts, joins,
 * reports) takes those decisions inside the store transaction that applies them, with their
 * audit entries; the deployment service (server/deploy) calls it on the device path.
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
#include "store/health_store.h"
#include "store/rollout_store.h"
#include "store/store.h"

#define OTA_RO_MAX_LIST 16 /* hardware variants, baseline versions, tags */
#define OTA_RO_MAX_STAGES 10
#define OTA_RO_TAG_MAX 64
#define OTA_RO_TZ_MAX 64
#define OTA_RO_BP 10000 /* membership buckets: basis points of the matching devices */
#define OTA_RO_UNREACHABLE_DEFAULT 86400 /* unreachable_after_seconds when not given */

struct ota_rollout_stage {
	unsigned percent_bp;   /* cumulative share of the matching devices, 1..10000 */
	unsigned success_pct;  /* advance when this % of the stage's joined devices succeeded */
	bool auto_advance;     /* false: wait for an operator's approval */
	unsigned failure_pct;  /* halt when failures are more than this % of finished ... */
	unsigned min_finished; /* ... once at least this many finished (also needed to advance) */
	unsigned soak_s;       /* the stage runs at least this long */
	/* statistical halt instead of failure_pct when acceptable_bp > 0: halt when the Wilson
	 * score lower bound of the failure rate, at confidence_pct (90, 95 or 99, one-sided), is
	 * above acceptable_bp basis points */
	unsigned acceptable_bp;
	unsigned confidence_pct;
};

/* Health after the confirm, per stage (docs/rollouts.md): when on, the stage succeeds only once
 * its latest confirm is soak_s old, and halts when more than max_pct % of its covered devices
 * regressed (a watchdog reset or a failed health check reported after the buy). */
struct ota_rollout_post_confirm {
	bool on;
	unsigned max_pct;
	unsigned soak_s;
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
	struct ota_rollout_post_confirm post[OTA_RO_MAX_STAGES]; /* of each stage */
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
	/* a covered device that has not joined and not checked in for this long, once the stage
	 * ran this long, is "unreachable": left out of the stage's denominator, and reported;
	 * 0 means OTA_RO_UNREACHABLE_DEFAULT */
	unsigned unreachable_s;
};

/* ---- the pure half ---- */

/* Checks every rule of a definition (docs/rollouts.md); msg says the first one broken.
 * Returns OTA_OK or OTA_ERR_INVALID. */
OTA_WUR enum ota_err ota_rollout_spec_check(const struct ota_rollout_spec *s, char *msg,
                                            size_t msglen);
/*
 * The one codec of a definition (spec.c): the JSON of docs/rollouts.md. parse reads len bytes
 * of JSON text strictly (unknown keys, wrong types and out-of-range values refused:
 * OTA_ERR_INVALID, msg names the field; the rules across fields are ota_rollout_spec_check's);
 * json writes the canonical text (keys sorted, compact; malloc'd, NULL without memory), which
 * the store keeps and the API shows. decode is parse of NUL-terminated text, without a message.
 */
OTA_WUR enum ota_err ota_rollout_spec_parse(const char *text, size_t len,
                                            struct ota_rollout_spec *s, char *msg, size_t msglen);
char *ota_rollout_spec_json(const struct ota_rollout_spec *s);
OTA_WUR enum ota_err ota_rollout_spec_decode(const char *text, struct ota_rollout_spec *s);

/* A device's bucket in 0..9999: HMAC-SHA-256 under key of rollout id, NUL, device id. */
unsigned ota_rollout_bucket(const uint8_t key[32], const char *rollout_id, const char *device_id);
/* The first stage whose percentage covers bucket, or -1 when none does. */
int ota_rollout_stage_of(const struct ota_rollout_spec *s, unsigned bucket);

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
 * The filter's tag part alone (tags.all, tags.any): what is known of a device that never
 * checked in, whose variant and version are not, so that it is covered only when its tags match.
 */
bool ota_rollout_tags_match(const struct ota_rollout_spec *s, const struct ota_rollout_device *d,
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

/*
 * The Wilson score interval's lower bound (Wilson 1927) of a failure rate, failures of
 * finished, at one-sided confidence confidence_pct (90, 95 or 99; else 95), in 0..1; 0 when
 * nothing finished. Pure; the statistical halt of a stage compares it with its acceptable rate.
 */
double ota_rollout_wilson_lower(unsigned failures, unsigned finished, unsigned confidence_pct);

/*
 * Health after the confirm. Whether a device's report shows a regression (a watchdog reset or
 * a failed health check since the buy; reboots and uptime alone do not). The soak of a member
 * that joined in stage `stage`: its stage's post_soak_s, else the longest of the rollout's
 * (0: the rollout watches no health).
 */
bool ota_rollout_health_regressed(const struct ota_member_health *h);
unsigned ota_rollout_health_soak(const struct ota_rollout_spec *s, unsigned stage);

/* When member m may try again: its next attempt time when it failed or rolled back with
 * attempts left, else INT64_MAX (never). */
int64_t ota_rollout_retry_at(const struct ota_rollout_spec *s, const struct ota_rollout_member *m);
/* Whether member m (failed or rolled back) may try again at now: attempts left, backoff over. */
bool ota_rollout_retry_due(const struct ota_rollout_spec *s, const struct ota_rollout_member *m,
                           int64_t now);
/*
 * What a report means for member m: its deployment reported event `status` (downloading ...
 * rolled_back) and, when the report ends it, `end_status` (succeeded, failed, rolled_back or
 * cancelled; NULL while it runs). Returns false when the member does not move (states only
 * move forward: a late or reordered report changes nothing); else *to is the new state and
 * *next_attempt_at when a failed member may try again (0: never), after the backoff.
 */
bool ota_rollout_member_next(const struct ota_rollout_spec *s, const struct ota_rollout_member *m,
                             const char *status, const char *end_status, int64_t now,
                             enum ota_member_state *to, int64_t *next_attempt_at);

/* ---- the engine ---- */

/*
 * Every write below runs in one store transaction with its audit entries (audit/audit.h):
 * actor and role name who asked (the principal and its role name); NULL actor means otad
 * itself. Functions documented "inside the caller's transaction" join the transaction the
 * calling thread holds (ota_store_tx_begin() or a group) and never commit.
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

/* A move of a rollout's state. */
struct ota_rollout_move {
	const char *id;
	unsigned from_mask; /* states allowed before the move: bits 1 << state */
	enum ota_rollout_state to;
	int new_stage; /* >= 0: start that stage */
	bool ack;      /* resume: the current stage's failures so far are accepted */
	const char *reason;
	const char *actor, *role; /* NULL actor: otad's own verdict */
	const char *action;       /* the audit action, NULL: the one the move implies */
	const char *release_id;   /* for the audit entry, may be NULL */
};
/*
 * Inside the caller's transaction: check the rollout's state against mv->from_mask, and for
 * a move into stage k > 0 that the rollout is in stage k - 1 (OTA_ERR_CONFLICT otherwise, *was
 * set), move it, and audit it. Moving to aborted cancels the
 * deployments of members still pending.
 */
OTA_WUR enum ota_err ota_rollout_transition(struct ota_store *st, const struct ota_rollout_move *mv,
                                            int64_t now, enum ota_rollout_state *was);

/*
 * Evaluate a running rollout's current stage and apply the verdict (halt, advance, wait,
 * complete). Nothing happens for rollouts in other states. The only callers are otad's ticker
 * (ota_rollout_tick), the report path after a deployment's report and an approval: reads and
 * check-ins never judge. Cost: one pass over the device registry (the stage's coverage); a pass
 * that took at least 50 ms is reused for verdicts that hold during 20 times as long as it took,
 * times the rollouts whose passes are kept (a verdict that moves the rollout always reads a
 * fresh pass).
 */
OTA_WUR enum ota_err ota_rollout_evaluate(struct ota_store *st, const char *id, int64_t now);
/* Passes cheaper than min_ms are never reused (default 50; tests set 0). Forgets kept passes. */
void ota_rollout_coverage_reuse(unsigned min_ms);
/*
 * Judge every running rollout (ota_rollout_evaluate each). otad calls it from its one ticker;
 * two judges never apply two verdicts to one state (each transition checks the state it moves
 * from inside its write transaction, which SQLite serialises across processes too).
 * Errors: those of listing the rollouts; a rollout that cannot be judged is logged and skipped.
 */
OTA_WUR enum ota_err ota_rollout_tick(struct ota_store *st, int64_t now);

/*
 * Inside the caller's transaction: deployment_id reported `status` (and ended with
 * end_status, or NULL): move its rollout member, if it has one, as ota_rollout_member_next()
 * decides. rollout_id gets the member's rollout, "" for a deployment of no rollout.
 */
OTA_WUR enum ota_err ota_rollout_on_event(struct ota_store *st, const char *deployment_id,
                                          const char *status, const char *end_status,
                                          const char *end_reason, int64_t now,
                                          char rollout_id[OTA_RO_ID_MAX]);

/*
 * The running rollouts that want device d now (reads only: nothing is judged here): fn is called
 * with the device and its tags (read from the store; d's own are not used) when the stage
 * covers the device, the target filter matches and the device is not a member already (or is
 * one due for a retry). A non-zero return of fn stops the walk. Cost: a few indexed lookups per
 * running rollout, whatever the fleet's size; the running rollouts and their decoded
 * definitions are kept in memory until ota_store_rollouts_generation() moves, and a device the
 * walk found with nothing due is not walked again until its next retry, a change of its
 * reported facts, or that generation's next move (quiet.h). Nothing is read when none run.
 */
OTA_WUR enum ota_err
ota_rollout_wanting(struct ota_store *st, const struct ota_rollout_device *d, int64_t now,
                    int (*fn)(void *ctx, const struct ota_rollout_row *row,
                              const struct ota_rollout_spec *s, const struct ota_rollout_device *d),
                    void *ctx);

/*
 * Device device_id reported health h after the confirm of deployment_id (the check-in's
 * `health` object): kept on its rollout member when the deployment is that device's, the member
 * succeeded and its soak (ota_rollout_health_soak) has not ended; otherwise ignored (OTA_OK,
 * nothing written). A first regression is logged and the rollout judged at once. Not inside a
 * transaction of the caller's.
 */
OTA_WUR enum ota_err ota_rollout_on_health(struct ota_store *st, const char *device_id,
                                           const char *deployment_id,
                                           const struct ota_member_health *h, int64_t now);

/* A device joining a rollout that wants it (from ota_rollout_wanting()). */
struct ota_rollout_join {
	const char *rollout_id;
	const struct ota_rollout_spec *s;
	unsigned stage; /* the stage the walk saw running */
	const struct ota_rollout_device *d;
	const char *skip_reason; /* not NULL: the device can never take the release: skipped */
	int64_t now;
};
enum ota_join_result {
	OTA_JOIN_OFFERED,     /* deployment and member created (or a retry started) */
	OTA_JOIN_SKIPPED,     /* recorded as skipped */
	OTA_JOIN_MEMBER,      /* already a member that needs nothing now */
	OTA_JOIN_RETRY_LATER, /* failed, its next attempt is not due */
	OTA_JOIN_WINDOW,      /* the maintenance window is closed */
	OTA_JOIN_BUDGET,      /* a concurrency budget is full */
	OTA_JOIN_BUSY,        /* the device has an active deployment (never preempted) */
	OTA_JOIN_STALE,       /* the rollout is no longer running that stage */
};
/*
 * Decide and apply a join in one transaction (so budgets hold under concurrent check-ins):
 * retry or not, the maintenance window, the budgets; an offer creates the deployment
 * (deployment_id gets its id) and the member row, a skip records the member as skipped.
 */
OTA_WUR enum ota_err ota_rollout_join(struct ota_store *st, const struct ota_rollout_join *j,
                                      char deployment_id[OTA_DEPLOYMENT_ID_MAX],
                                      enum ota_join_result *res);

#endif
