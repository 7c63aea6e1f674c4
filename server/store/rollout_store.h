/*
 * store/rollout_store.h - what the store keeps for staged rollouts (schema/0020_rollouts.sql):
 * rollouts, their members (one row per device that joined), and counters per stage and state,
 * per budget scope and per failure reason, which every change updates in its own transaction.
 * The rollout engine (server/rollout) decides; these functions only apply and read.
 *
 * Errors as in store.h: OTA_ERR_NOT_FOUND, OTA_ERR_CONFLICT (the rollout is not in a state the
 * call allows), OTA_ERR_DB, OTA_ERR_NOMEM. Each writing call is one transaction.
 */
#ifndef OTA_STORE_ROLLOUT_H
#define OTA_STORE_ROLLOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "store/store.h"

#define OTA_RO_ID_MAX 35 /* "r-" + 32 hex + NUL */

enum ota_rollout_state {
	OTA_RS_DRAFT,
	OTA_RS_RUNNING,
	OTA_RS_PAUSED,
	OTA_RS_WAITING_APPROVAL,
	OTA_RS_COMPLETED,
	OTA_RS_ABORTED,
	OTA_RS__COUNT
};

enum ota_member_state {
	OTA_MS_PENDING, /* offered, nothing reported yet */
	OTA_MS_DOWNLOADING,
	OTA_MS_INSTALLING, /* downloaded, installing or rebooting */
	OTA_MS_TRIAL,
	OTA_MS_SUCCEEDED,
	OTA_MS_FAILED,
	OTA_MS_ROLLED_BACK,
	OTA_MS_SKIPPED,
	OTA_MS__COUNT
};

/* Names as stored and shown ("waiting_approval", "rolled_back"); NULL when out of range. */
const char *ota_rollout_state_name(enum ota_rollout_state s);
const char *ota_member_state_name(enum ota_member_state s);
/* -1 when unknown. */
int ota_rollout_state_parse(const char *name);
int ota_member_state_parse(const char *name);

struct ota_rollout_row {
	char id[OTA_RO_ID_MAX];
	char name[OTA_ID_MAX + 1];
	char release_id[OTA_HEX256];
	uint8_t hash_key[32];
	enum ota_rollout_state state;
	char reason[OTA_REASON_MAX + 1];
	unsigned stage;
	int64_t stage_started_at;
	unsigned ack_failures, ack_finished;
	unsigned retry_attempts, retry_backoff;
	int64_t created_at, updated_at;
};

/* Members of one stage by state (the counter rows). */
struct ota_stage_counts {
	unsigned n[OTA_MS__COUNT];
};

struct ota_rollout_member {
	char device_id[OTA_ID_MAX + 1];
	unsigned stage;
	enum ota_member_state state;
	char reason[OTA_REASON_MAX + 1];
	char deployment_id[OTA_DEPLOYMENT_ID_MAX];
	unsigned attempts;
	int64_t next_attempt_at, updated_at;
};

/*
 * Every rollout and deployment transition written here is recorded by an auditor function in
 * the same transaction (the rollout engine installs the audit log's append; run the writing
 * calls inside ota_store_tx_begin()/ota_store_tx_end() so the entry joins the change). Without
 * an auditor the transitions go to the log. A non-OTA_OK return fails the change.
 */
struct ota_rollout_audit {
	const char *actor; /* principal name, or NULL for otad itself */
	const char *role;  /* the actor's role, or NULL */
	const char *action;
	const char *rollout_id, *device_id, *release_id, *object, *detail;
};
void ota_store_rollout_set_auditor(enum ota_err (*fn)(struct ota_store *st,
                                                      const struct ota_rollout_audit *a,
                                                      int64_t now));

/* Insert a draft rollout (row->state is ignored); spec is the engine's text.
 * OTA_ERR_NOT_FOUND when the release does not exist. */
OTA_WUR enum ota_err ota_store_rollout_insert(struct ota_store *st,
                                              const struct ota_rollout_row *row, const char *spec,
                                              const char *actor, const char *role);
/* spec (may be NULL) receives a malloc'd copy of the definition text; the caller frees it. */
OTA_WUR enum ota_err ota_store_rollout_get(struct ota_store *st, const char *id,
                                           struct ota_rollout_row *out, char **spec);
/* Calls fn for each rollout (in `state` only, unless state < 0), oldest first, with its spec
 * text (valid during the call). A non-zero return of fn stops the walk (still OTA_OK). */
OTA_WUR enum ota_err ota_store_rollout_list(struct ota_store *st, int state,
                                            int (*fn)(void *ctx, const struct ota_rollout_row *r,
                                                      const char *spec),
                                            void *ctx);
/*
 * One page of ota_store_rollout_list(): the rollouts (in `state` unless < 0) oldest first
 * (created_at, then id) that follow `after` (NULL: from the oldest), at most `limit` (1..1000,
 * else OTA_ERR_INVALID). *more when others follow the last one read.
 */
OTA_WUR enum ota_err ota_store_rollout_page(
    struct ota_store *st, int state, const struct ota_store_key *after, unsigned limit,
    int (*fn)(void *ctx, const struct ota_rollout_row *r, const char *spec), void *ctx, bool *more);

/*
 * Move rollout id from one of the states in from_mask (bits 1 << state) to `to` with reason.
 * new_stage >= 0 starts that stage (stage_started_at = now, acknowledgements cleared);
 * ack (resume) records the stage's current failures and finished as accepted. Leaving for
 * aborted cancels the deployments of members still pending (nothing downloaded yet).
 * OTA_ERR_CONFLICT when the state is not in from_mask; *was gets the state found.
 */
OTA_WUR enum ota_err ota_store_rollout_transition(struct ota_store *st, const char *id,
                                                  unsigned from_mask, enum ota_rollout_state to,
                                                  const char *reason, int new_stage, bool ack,
                                                  const char *actor, const char *role, int64_t now,
                                                  enum ota_rollout_state *was);

/* A device wants to join a rollout at check-in. */
struct ota_rollout_join {
	const char *rollout_id;
	unsigned stage; /* the stage the engine saw running */
	const char *device_id;
	const char *deployment_id; /* fresh id for the deployment to create */
	const char *release_id;
	const char *skip_reason; /* not NULL: record the device as skipped, offer nothing */
	unsigned max_active;     /* 0: unlimited */
	const char *scope;       /* the device's tag counted by the per-tag budget, or NULL */
	unsigned max_active_per_tag;
	int64_t now;
};
enum ota_join_result {
	OTA_JOIN_OFFERED,     /* deployment and member created (or a retry started) */
	OTA_JOIN_SKIPPED,     /* recorded as skipped */
	OTA_JOIN_MEMBER,      /* already a member that needs nothing now */
	OTA_JOIN_RETRY_LATER, /* failed, its next attempt is not due */
	OTA_JOIN_BUDGET,      /* a concurrency budget is full */
	OTA_JOIN_BUSY,        /* the device has an active deployment (never preempted) */
	OTA_JOIN_STALE,       /* the rollout is no longer running that stage */
};
/* All checks and writes in one transaction, so budgets hold under concurrent check-ins. */
OTA_WUR enum ota_err ota_store_rollout_join(struct ota_store *st, const struct ota_rollout_join *j,
                                            enum ota_join_result *res);

/* The counters of one stage. */
OTA_WUR enum ota_err ota_store_rollout_counts(struct ota_store *st, const char *id, unsigned stage,
                                              struct ota_stage_counts *out);
/* Calls fn for every non-zero counter (stage, state, n). */
OTA_WUR enum ota_err ota_store_rollout_counts_all(struct ota_store *st, const char *id,
                                                  void (*fn)(void *ctx, unsigned stage,
                                                             enum ota_member_state s, unsigned n),
                                                  void *ctx);
/* Devices updating now in scope ("" for the whole rollout). */
OTA_WUR enum ota_err ota_store_rollout_active(struct ota_store *st, const char *id,
                                              const char *scope, unsigned *n);
/* Failure reasons, most frequent first, up to limit. */
OTA_WUR enum ota_err
ota_store_rollout_reasons(struct ota_store *st, const char *id, unsigned limit,
                          void (*fn)(void *ctx, const char *reason, unsigned n), void *ctx);
/*
 * Members in `state` (any when state < 0) with device id > after (NULL: from the first), by
 * device id, at most `limit` (1..1000, else OTA_ERR_INVALID). *more when others follow.
 */
OTA_WUR enum ota_err
ota_store_rollout_members(struct ota_store *st, const char *id, int state, const char *after,
                          unsigned limit, void (*fn)(void *ctx, const struct ota_rollout_member *m),
                          void *ctx, bool *more);
OTA_WUR enum ota_err ota_store_rollout_member_get(struct ota_store *st, const char *id,
                                                  const char *device_id,
                                                  struct ota_rollout_member *out);
/* The rollout a deployment belongs to; OTA_ERR_NOT_FOUND when none. */
OTA_WUR enum ota_err ota_store_rollout_of_deployment(struct ota_store *st,
                                                     const char *deployment_id,
                                                     char rollout_id[OTA_RO_ID_MAX]);

/* Device tags (0010's device_tags): up to max into tags, *n set. */
OTA_WUR enum ota_err ota_store_device_tags(struct ota_store *st, const char *device_id,
                                           char (*tags)[65], unsigned max, unsigned *n);
/* Replace a device's tags (tests and tools; the management API owns tag editing). */
OTA_WUR enum ota_err ota_store_device_tags_set(struct ota_store *st, const char *device_id,
                                               const char *const *tags, unsigned n);

/*
 * Roll back: for each member of rollout id in the chosen states (failed and rolled_back; with
 * all, also succeeded), create a deployment of release_id unless the device's floor is above
 * security_version or it has an active deployment; those call refuse(ctx, device, reason).
 * Then the rollout becomes aborted with reason. One transaction. *ndeployed counts deployments.
 */
OTA_WUR enum ota_err
ota_store_rollout_rollback(struct ota_store *st, const char *id, const char *release_id,
                           uint32_t security_version, bool all, const char *reason,
                           const char *actor, const char *role, int64_t now, unsigned *ndeployed,
                           void (*refuse)(void *ctx, const char *device_id, const char *why),
                           void *ctx);

/*
 * The SQL of the statements a check-in or a report may run, i = 0, 1, ... until NULL: each is
 * an indexed lookup or write, whatever the number of devices (the tests check the query plans).
 */
const char *ota_store_rollout_hot_sql(unsigned i);

#endif
