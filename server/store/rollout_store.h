/*
 * store/rollout_store.h - what the store keeps for staged rollouts (schema/0020_rollouts.sql):
 * rollouts, their members (one row per device that joined), and counters per stage and state,
 * per budget scope and per failure reason, which every change updates in its own transaction.
 * The rollout engine (server/rollout) decides; these functions only apply and read: none of
 * them judges a state, a budget, a retry or a verdict, and none writes an audit entry.
 *
 * Errors as in store.h: OTA_ERR_NOT_FOUND, OTA_ERR_CONFLICT (the row exists already), OTA_ERR_DB,
 * OTA_ERR_NOMEM. Each writing call joins the caller's transaction (ota_store_tx_begin(), a
 * group) or, outside one, is a transaction of its own; the engine runs its decisions and the
 * writes that apply them in one transaction, so concurrent check-ins never exceed a budget.
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

/* Members of one stage by state (the counter rows). The engine adds what the registry says
 * of the covered devices that are not members yet; the store leaves those two at 0. */
struct ota_stage_counts {
	unsigned n[OTA_MS__COUNT];
	unsigned waiting;     /* covered, matching, not a member, checked in lately */
	unsigned unreachable; /* covered, matching, not a member, silent too long */
	/* health after the confirm (store/health_store.h), over the stages counted */
	unsigned regressed;        /* members that regressed after their confirm */
	int64_t last_confirmed_at; /* latest confirm of a member, 0: none */
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

/* Insert a draft rollout (row->state is ignored); spec is the engine's text.
 * OTA_ERR_NOT_FOUND when the release does not exist, OTA_ERR_CONFLICT when the id does. */
OTA_WUR enum ota_err ota_store_rollout_insert(struct ota_store *st,
                                              const struct ota_rollout_row *row, const char *spec);
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
 * Set the rollout's state and reason. new_stage >= 0 also starts that stage (stage_started_at
 * = now); the acknowledgements, which count over all stages so far, are cleared by stage 0 only.
 * OTA_ERR_NOT_FOUND when unknown. Whether the move is allowed is the engine's decision, taken
 * inside the same transaction.
 */
OTA_WUR enum ota_err ota_store_rollout_set_state(struct ota_store *st, const char *id,
                                                 enum ota_rollout_state to, const char *reason,
                                                 int new_stage, int64_t now);
/* Record failures and finished devices of the current stage as accepted by an operator. */
OTA_WUR enum ota_err ota_store_rollout_set_ack(struct ota_store *st, const char *id,
                                               unsigned failures, unsigned finished);

/*
 * Member rows and their counters. Every call keeps the counter rows (per stage and state, per
 * budget scope, per failure reason) in step with the member rows it writes, in the caller's
 * transaction. Members in the states pending, downloading, installing and trial count toward
 * the budgets of their scope ("" for the whole rollout, and the member's tag scope).
 */

/* A new member in `state` (pending or skipped) with its deployment (NULL for none). */
struct ota_member_new {
	const char *rollout_id, *device_id;
	unsigned stage;
	enum ota_member_state state;
	const char *reason;        /* skipped: why; else "" or NULL */
	const char *deployment_id; /* pending: the deployment offered */
	const char *scope;         /* the per-tag budget scope ("line=7") or NULL */
	int64_t now;
};
OTA_WUR enum ota_err ota_store_rollout_member_insert(struct ota_store *st,
                                                     const struct ota_member_new *m);
/*
 * Move member (rollout_id, device_id), now in state `from` of its stage, to `to` with reason
 * and the time of its next attempt (0: none). OTA_ERR_NOT_FOUND when there is no such member.
 */
OTA_WUR enum ota_err ota_store_rollout_member_move(struct ota_store *st, const char *rollout_id,
                                                   const char *device_id,
                                                   enum ota_member_state from,
                                                   enum ota_member_state to, const char *reason,
                                                   int64_t next_attempt_at, int64_t now);
/* A new attempt of a member: its deployment becomes deployment_id, attempts + 1, pending. */
OTA_WUR enum ota_err ota_store_rollout_member_retry(struct ota_store *st, const char *rollout_id,
                                                    const char *device_id,
                                                    const char *deployment_id, int64_t now);
/* Member of rollout id for device_id; scope (may be NULL) gets its budget scope. */
OTA_WUR enum ota_err ota_store_rollout_member_scope(struct ota_store *st, const char *id,
                                                    const char *device_id,
                                                    struct ota_rollout_member *out, char *scope,
                                                    size_t scopelen);
/* The member whose current deployment is deployment_id: its rollout and row.
 * OTA_ERR_NOT_FOUND when none (a manual deployment, or an attempt since replaced). */
OTA_WUR enum ota_err ota_store_rollout_member_of_deployment(struct ota_store *st,
                                                            const char *deployment_id,
                                                            char rollout_id[OTA_RO_ID_MAX],
                                                            struct ota_rollout_member *out);

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
/* Calls fn for every member in `state` (any when state < 0), by device id, however many:
 * pages of ota_store_rollout_members() walked to the end. */
OTA_WUR enum ota_err ota_store_rollout_members_each(struct ota_store *st, const char *id, int state,
                                                    void (*fn)(void *ctx,
                                                               const struct ota_rollout_member *m),
                                                    void *ctx);
OTA_WUR enum ota_err ota_store_rollout_member_get(struct ota_store *st, const char *id,
                                                  const char *device_id,
                                                  struct ota_rollout_member *out);
/* The member rows of one device in the rollouts ids[0..n), in one read: found[i] says whether
 * it is a member of ids[i], out[i] its row then. */
OTA_WUR enum ota_err ota_store_rollout_members_of(struct ota_store *st, const char *device_id,
                                                  const char *const *ids, size_t n,
                                                  struct ota_rollout_member *out, bool *found);
/* A verdict the engine took (schema/0040_rollout_verdicts.sql). Strings are the caller's (add)
 * or valid during the callback (list). */
struct ota_rollout_verdict {
	int64_t at;
	unsigned stage;      /* from 1 */
	const char *verdict; /* halt | advance | wait_approval | complete */
	const char *rule;    /* failure_threshold | statistical_halt | success_threshold */
	const char *numbers; /* JSON text */
	const char *reason;
};
/* Record a verdict of rollout id (in the caller's transaction, or one of its own). */
OTA_WUR enum ota_err ota_store_rollout_verdict_add(struct ota_store *st, const char *id,
                                                   const struct ota_rollout_verdict *v);
/* The newest `limit` verdicts of rollout id, newest first. */
OTA_WUR enum ota_err
ota_store_rollout_verdicts(struct ota_store *st, const char *id, unsigned limit,
                           void (*fn)(void *ctx, const struct ota_rollout_verdict *v), void *ctx);

/*
 * The SQL of the statements a check-in or a report may run, i = 0, 1, ... until NULL: each is
 * an indexed lookup or write, whatever the number of devices (the tests check the query plans).
 */
const char *ota_store_rollout_hot_sql(unsigned i);

#endif
