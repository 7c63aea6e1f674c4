/*
 * rollout/engine.c - the rollout engine: takes every rollout decision (operator actions, stage
 * verdicts, who joins, retries and their backoff, budgets, what a report means for a member)
 * with the pure rules of rollout.c, inside the store transaction that applies it, and writes
 * each transition's audit entry in that same transaction. The store only applies and reads.
 */
#include "rollout/rollout.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/util.h"
#include "deploy/eligible.h"
#include "rollout/quiet.h"
#include "store/mgmt_store.h"

#define BIT(s) (1u << (s))
#define WANT_BATCH 16                  /* running rollouts whose member rows one read fetches */
#define MAX_TAGS (OTA_RO_MAX_LIST * 2) /* a device's tags a walk reads */

/* One audit entry of the engine, inside the caller's transaction. actor NULL: otad itself. */
static enum ota_err note(struct ota_store *st, const char *actor, const char *role,
                         const char *action, const char *rollout_id, const char *device_id,
                         const char *release_id, const char *object, const char *detail,
                         int64_t now)
{
	struct ota_audit_entry e = {
	    .actor = actor ? actor : "otad",
	    .role = actor ? role : "system",
	    .action = action,
	    .device_id = device_id,
	    .rollout_id = rollout_id,
	    .release_id = release_id,
	    .object = object,
	    .detail = detail,
	};
	return ota_audit_append(st, &e, now, NULL);
}

enum ota_err ota_rollout_create(struct ota_store *st, const struct ota_rollout_spec *s,
                                const char *actor, const char *role, int64_t now,
                                char id[OTA_RO_ID_MAX], char *msg, size_t msglen)
{
	struct ota_rollout_row row;
	struct ota_release rel;
	char *text = NULL;
	enum ota_err rc = ota_rollout_spec_check(s, msg, msglen);

	if (rc != OTA_OK)
		return rc;
	rc = ota_store_release_get(st, s->release_id, &rel, NULL);
	if (rc == OTA_ERR_NOT_FOUND)
		ota_say(msg, msglen, "no release %s", s->release_id);
	if (rc != OTA_OK)
		return rc;
	/* Targeted variants must be ones the release runs on. */
	for (unsigned i = 0; i < s->nhw; i++) {
		bool runs = false;
		for (unsigned k = 0; k < rel.nhw; k++)
			runs = runs || strcmp(rel.hw[k], s->hw[i]) == 0;
		if (!runs) {
			ota_say(msg, msglen, "release %s %s does not run on hardware variant %s",
			        rel.name, rel.version, s->hw[i]);
			return OTA_ERR_INVALID;
		}
	}
	memset(&row, 0, sizeof(row));
	rc = ota_id_new("r-", row.id, sizeof(row.id));
	if (rc == OTA_OK)
		rc = ota_random(row.hash_key, sizeof(row.hash_key));
	if (rc != OTA_OK)
		return rc;
	snprintf(row.name, sizeof(row.name), "%s", s->name);
	snprintf(row.release_id, sizeof(row.release_id), "%s", s->release_id);
	row.retry_attempts = s->retry_attempts;
	row.retry_backoff = s->retry_backoff_s;
	row.created_at = now;
	text = ota_rollout_spec_json(s);
	if (!text)
		return OTA_ERR_NOMEM;
	rc = ota_store_tx_begin(st);
	if (rc == OTA_OK) {
		enum ota_err e = ota_store_rollout_insert(st, &row, text);
		if (e == OTA_OK)
			e = note(st, actor, role, "rollout.create", row.id, NULL, row.release_id,
			         NULL, row.name, now);
		rc = ota_store_tx_finish(st, e);
	}
	free(text);
	if (rc == OTA_OK)
		memcpy(id, row.id, OTA_RO_ID_MAX);
	return rc;
}

/* Members still pending (offered, nothing downloaded) when their rollout ends: their
 * deployments are cancelled and they are recorded as skipped. */
struct pending {
	struct ota_rollout_member *v;
	size_t n, cap;
	bool nomem;
};

static void pending_one(void *ctx, const struct ota_rollout_member *m)
{
	struct pending *p = ctx;
	if (p->n == p->cap) {
		size_t nc = p->cap ? p->cap * 2 : 16;
		void *v = realloc(p->v, nc * sizeof(*p->v));
		if (!v) {
			p->nomem = true;
			return;
		}
		p->v = v;
		p->cap = nc;
	}
	p->v[p->n++] = *m;
}

static enum ota_err cancel_pending(struct ota_store *st, const char *id, const char *why,
                                   int64_t now)
{
	struct pending p = {0};
	enum ota_err rc = ota_store_rollout_members_each(st, id, OTA_MS_PENDING, pending_one, &p);
	if (rc == OTA_OK && p.nomem)
		rc = OTA_ERR_NOMEM;
	for (size_t i = 0; rc == OTA_OK && i < p.n; i++) {
		const struct ota_rollout_member *m = &p.v[i];
		rc = ota_store_deployment_end(st, m->deployment_id, "cancelled", why, now);
		if (rc == OTA_ERR_CONFLICT)
			rc = OTA_OK; /* ended meanwhile */
		if (rc == OTA_OK)
			rc = ota_store_rollout_member_move(st, id, m->device_id, OTA_MS_PENDING,
			                                   OTA_MS_SKIPPED, why, 0, now);
		if (rc == OTA_OK)
			rc = note(st, NULL, NULL, "deployment.cancel", id, m->device_id, NULL,
			          m->deployment_id, why, now);
	}
	free(p.v);
	return rc;
}

/* {"state": ..., "stage": n (from 1), "reason": ...}: an audit entry's before or after. */
static char *json_state(const char *state, unsigned stage, const char *reason)
{
	json_t *j = json_pack("{s:s, s:I}", "state", state, "stage", (json_int_t)stage);
	if (j && reason)
		json_object_set_new(j, "reason", json_string(reason));
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	return text;
}

/* The audit action of a move to `to`. */
static const char *transition_action(enum ota_rollout_state to, int new_stage, bool by_person)
{
	if (to == OTA_RS_RUNNING)
		return new_stage > 0    ? "rollout.stage.advance"
		       : new_stage == 0 ? "rollout.start"
		                        : "rollout.resume";
	if (to == OTA_RS_PAUSED)
		return by_person ? "rollout.pause" : "rollout.halt";
	if (to == OTA_RS_WAITING_APPROVAL)
		return "rollout.stage.wait_approval";
	return to == OTA_RS_COMPLETED ? "rollout.complete" : "rollout.abort";
}

/* The members of stages 1 to stage + 1 by state: a verdict counts every earlier stage too. */
static enum ota_err counts_upto(struct ota_store *st, const char *id, unsigned stage,
                                struct ota_stage_counts *out)
{
	struct ota_stage_counts one;
	memset(out, 0, sizeof(*out));
	for (unsigned k = 0; k <= stage; k++) {
		enum ota_err rc = ota_store_rollout_counts(st, id, k, &one);
		if (rc != OTA_OK)
			return rc;
		for (unsigned m = 0; m < OTA_MS__COUNT; m++)
			out->n[m] += one.n[m];
	}
	return OTA_OK;
}

/* The covered devices of the registry that are not members yet, for coverage(). */
struct cover {
	struct ota_store *st;
	const struct ota_rollout_row *row;
	const struct ota_rollout_spec *s;
	const struct ota_release *rel;
	unsigned stage;
	int64_t now;
	struct ota_stage_counts *c;
	char last[OTA_ID_MAX + 1];
	enum ota_err rc;
};

static void cover_one(void *ctx, const struct ota_device_info *di)
{
	struct cover *w = ctx;
	const struct ota_device *d = &di->d;
	char tags[sizeof(di->tags)];
	const char *tagp[OTA_RO_MAX_LIST * 4];
	struct ota_rollout_device rd = {.id = d->id,
	                                .hw_variant = d->hw_variant,
	                                .version = d->version,
	                                .security_floor = d->security_floor,
	                                .tags = tagp};
	struct ota_rollout_member m;

	snprintf(w->last, sizeof(w->last), "%s", d->id);
	if (w->rc != OTA_OK || strcmp(d->status, "admitted") != 0)
		return;
	if (ota_rollout_bucket(w->row->hash_key, w->row->id, d->id) >=
	    w->s->stages[w->stage].percent_bp)
		return;
	snprintf(tags, sizeof(tags), "%s", di->tags);
	for (char *save = NULL, *t = strtok_r(tags, ",", &save);
	     t && rd.ntags < sizeof(tagp) / sizeof(tagp[0]); t = strtok_r(NULL, ",", &save))
		tagp[rd.ntags++] = t;
	/* A device never seen cannot be shown to have a variant the rollout names: left out, as
	 * the plan leaves it out (no_report). */
	if (!d->known_state && w->s->nhw > 0)
		return;
	/* Its tags are known, though: outside them, it is outside the rollout. */
	if (!d->known_state && !ota_rollout_tags_match(w->s, &rd, NULL, 0))
		return;
	if (d->known_state) {
		/* As at check-in: outside the filter, or a release it may not take (the one
		 * eligibility rule: variant, floor, the version it runs), is outside the rollout.
		 */
		struct ota_device_facts f = {.known = true,
		                             .hw_variant = d->hw_variant,
		                             .version = d->version,
		                             .security_floor = d->security_floor};
		if (ota_deploy_eligible(w->rel, &f, NULL, 0) != OTA_ELIGIBLE ||
		    !ota_rollout_matches(w->s, &rd, NULL, 0))
			return;
	}
	enum ota_err e = ota_store_rollout_member_get(w->st, w->row->id, d->id, &m);
	if (e == OTA_OK)
		return; /* counted by its state */
	if (e != OTA_ERR_NOT_FOUND) {
		w->rc = e;
		return;
	}
	int64_t lim =
	    w->s->unreachable_s ? (int64_t)w->s->unreachable_s : OTA_RO_UNREACHABLE_DEFAULT;
	bool silent = !d->known_state || d->last_seen <= 0 || w->now - d->last_seen >= lim;
	if (silent && w->now - w->row->stage_started_at >= lim)
		w->c->unreachable++;
	else
		w->c->waiting++;
}

/*
 * The covered devices the registry knows that are not members: approved and admitted devices
 * whose bucket the stage covers and that the target filter matches (a device that never
 * checked in is counted, its facts unknown, unless the rollout names hardware variants). Cost: one
 * pass over the registry.
 */
static enum ota_err coverage(struct ota_store *st, const struct ota_rollout_row *row,
                             const struct ota_rollout_spec *s, unsigned stage, int64_t now,
                             struct ota_stage_counts *c)
{
	struct ota_release rel;
	enum ota_err rc = ota_store_release_get(st, row->release_id, &rel, NULL);
	struct cover w = {.st = st,
	                  .row = row,
	                  .s = s,
	                  .rel = &rel,
	                  .stage = stage,
	                  .now = now,
	                  .c = c,
	                  .rc = OTA_OK};
	bool more = true;

	while (rc == OTA_OK && more) {
		struct ota_device_filter f = {
		    .after_id = w.last[0] ? w.last : NULL, .admission = "approved", .limit = 1000};
		rc = ota_store_device_list(st, &f, cover_one, &w, &more);
		if (rc == OTA_OK)
			rc = w.rc;
	}
	return rc;
}

/*
 * Coverage passes kept for reuse. A pass reads the whole registry (a million devices: seconds of
 * the store), and every running rollout is judged every few seconds and after each ending
 * report, so on a large fleet the passes alone would keep the store busy. A pass that took at
 * least cov_min_ms is kept for 20 times as long as it took, times the rollouts whose passes are
 * kept (so that the passes of all of them together take about 1/20 of the time). A verdict that
 * would hold may use a kept pass (its waiting count can only be late by the devices that joined
 * or registered since); a verdict that would move the rollout is judged again on a fresh pass.
 * Small registries (passes under cov_min_ms) are read anew for every verdict, as before.
 */
#define COV_KEPT 64
#define COV_FACTOR 20
struct cov_kept {
	char id[OTA_RO_ID_MAX];
	unsigned stage;
	int64_t until; /* Unix seconds */
	unsigned waiting, unreachable;
};
static pthread_mutex_t cov_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cov_kept cov_kept[COV_KEPT];
static unsigned cov_next, cov_min_ms = 50;

void ota_rollout_coverage_reuse(unsigned min_ms)
{
	pthread_mutex_lock(&cov_mu);
	cov_min_ms = min_ms;
	memset(cov_kept, 0, sizeof(cov_kept));
	pthread_mutex_unlock(&cov_mu);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A kept pass of the rollout's stage valid at now, added to c; false when there is none. */
static bool coverage_kept(const struct ota_rollout_row *row, int64_t now,
                          struct ota_stage_counts *c)
{
	bool found = false;

	pthread_mutex_lock(&cov_mu);
	for (unsigned i = 0; i < COV_KEPT && !found; i++) {
		struct cov_kept *k = &cov_kept[i];
		if (k->until > now && k->stage == row->stage && strcmp(k->id, row->id) == 0) {
			c->waiting += k->waiting;
			c->unreachable += k->unreachable;
			found = true;
		}
	}
	pthread_mutex_unlock(&cov_mu);
	return found;
}

/* A fresh pass; kept when it took at least cov_min_ms. */
static enum ota_err coverage_fresh(struct ota_store *st, const struct ota_rollout_row *row,
                                   const struct ota_rollout_spec *s, int64_t now,
                                   struct ota_stage_counts *c)
{
	unsigned waiting = c->waiting, unreachable = c->unreachable;
	int64_t t0 = mono_ms();
	enum ota_err rc = coverage(st, row, s, row->stage, now, c);
	int64_t took = mono_ms() - t0;

	if (rc != OTA_OK)
		return rc;
	pthread_mutex_lock(&cov_mu);
	struct cov_kept *k = NULL;
	for (unsigned i = 0; i < COV_KEPT && !k; i++)
		if (strcmp(cov_kept[i].id, row->id) == 0)
			k = &cov_kept[i];
	if (took >= (int64_t)cov_min_ms) {
		if (!k)
			k = &cov_kept[cov_next++ % COV_KEPT];
		/* The passes of every rollout together: at most about 1/COV_FACTOR of the time. */
		int64_t rollouts = 1;
		for (unsigned i = 0; i < COV_KEPT; i++)
			if (&cov_kept[i] != k && cov_kept[i].until > now)
				rollouts++;
		snprintf(k->id, sizeof(k->id), "%s", row->id);
		k->stage = row->stage;
		int64_t keep = (took * COV_FACTOR * rollouts + 999) / 1000;
		k->until = now + (keep > 0 ? keep : 1);
		k->waiting = c->waiting - waiting;
		k->unreachable = c->unreachable - unreachable;
	} else if (k) {
		k->until = 0;
	}
	pthread_mutex_unlock(&cov_mu);
	return OTA_OK;
}

/* Everything a verdict on the current stage reads: members of stages so far, and coverage
 * (a kept pass when `may_reuse` and there is one: *reused says so). */
static enum ota_err stage_view(struct ota_store *st, const struct ota_rollout_row *row,
                               const struct ota_rollout_spec *s, int64_t now,
                               struct ota_stage_counts *c, bool may_reuse, bool *reused)
{
	enum ota_err rc = counts_upto(st, row->id, row->stage, c);
	*reused = rc == OTA_OK && may_reuse && coverage_kept(row, now, c);
	if (rc == OTA_OK && !*reused)
		rc = coverage_fresh(st, row, s, now, c);
	if (rc == OTA_OK && s->post[row->stage].on) {
		struct ota_health_summary h;
		rc = ota_store_rollout_health(st, row->id, row->stage, &h, 0, NULL, NULL);
		/* Regressions accepted by a resume are not counted again. */
		c->regressed = h.regressed > h.accepted ? h.regressed - h.accepted : 0;
		c->last_confirmed_at = h.last_confirmed_at;
	}
	return rc;
}

enum ota_err ota_rollout_transition(struct ota_store *st, const struct ota_rollout_move *mv,
                                    int64_t now, enum ota_rollout_state *was)
{
	struct ota_rollout_row row;
	enum ota_err rc = ota_store_rollout_get(st, mv->id, &row, NULL);

	if (rc != OTA_OK)
		return rc;
	if (was)
		*was = row.state;
	if (!(mv->from_mask & BIT(row.state)))
		return OTA_ERR_CONFLICT;
	/* A move into stage k > 0 starts from stage k - 1: when another judge (a thread, or
	 * another otad on the same database) moved the rollout first, its move stands. */
	if (mv->new_stage > 0 && row.stage + 1 != (unsigned)mv->new_stage)
		return OTA_ERR_CONFLICT;
	rc = ota_store_rollout_set_state(st, mv->id, mv->to, mv->reason, mv->new_stage, now);
	if (rc == OTA_OK && mv->ack) {
		/* The failures seen so far were looked at: the verdict counts from here. */
		struct ota_stage_counts c;
		rc = counts_upto(st, mv->id, row.stage, &c);
		unsigned f = c.n[OTA_MS_FAILED] + c.n[OTA_MS_ROLLED_BACK];
		if (rc == OTA_OK)
			rc = ota_store_rollout_set_ack(st, mv->id, f, f + c.n[OTA_MS_SUCCEEDED]);
		/* ... and so were the regressions after the confirm. */
		struct ota_health_summary h;
		if (rc == OTA_OK)
			rc = ota_store_rollout_health(st, mv->id, row.stage, &h, 0, NULL, NULL);
		if (rc == OTA_OK && h.regressed != h.accepted)
			rc = ota_store_rollout_health_ack(st, mv->id, h.regressed);
	}
	if (rc == OTA_OK && mv->to == OTA_RS_ABORTED)
		rc = cancel_pending(st, mv->id,
		                    mv->action ? "rollout rolled back" : "rollout aborted", now);
	if (rc == OTA_OK) {
		char detail[OTA_REASON_MAX + 64];
		snprintf(detail, sizeof(detail), "%s -> %s (stage %d) %s",
		         ota_rollout_state_name(row.state), ota_rollout_state_name(mv->to),
		         (mv->new_stage >= 0 ? mv->new_stage : (int)row.stage) + 1,
		         mv->reason ? mv->reason : "");
		/* Structured states, stages counted from 1 as in the API. */
		unsigned stage_after =
		    (mv->new_stage >= 0 ? (unsigned)mv->new_stage : row.stage) + 1;
		char *before = json_state(ota_rollout_state_name(row.state), row.stage + 1, NULL);
		char *after = json_state(ota_rollout_state_name(mv->to), stage_after, mv->reason);
		struct ota_audit_entry e = {
		    .actor = mv->actor ? mv->actor : "otad",
		    .role = mv->actor ? mv->role : "system",
		    .action = mv->action
		                  ? mv->action
		                  : transition_action(mv->to, mv->new_stage, mv->actor != NULL),
		    .rollout_id = mv->id,
		    .release_id = mv->release_id,
		    .before = before,
		    .after = after,
		    .detail = detail,
		};
		rc = before && after ? ota_audit_append(st, &e, now, NULL) : OTA_ERR_NOMEM;
		free(before);
		free(after);
	}
	return rc;
}

/* A transition in a transaction of its own. */
static enum ota_err transition_tx(struct ota_store *st, const struct ota_rollout_move *mv,
                                  int64_t now, enum ota_rollout_state *was)
{
	enum ota_err rc = ota_store_tx_begin(st);
	if (rc == OTA_OK)
		rc = ota_store_tx_finish(st, ota_rollout_transition(st, mv, now, was));
	return rc;
}

enum ota_err ota_rollout_act(struct ota_store *st, const char *id, enum ota_rollout_action a,
                             const char *reason, const char *actor, const char *role, int64_t now,
                             char *msg, size_t msglen)
{
	struct ota_rollout_row row;
	enum ota_rollout_state was;
	char why[OTA_REASON_MAX + 1];
	struct ota_rollout_move mv = {.id = id,
	                              .to = OTA_RS_RUNNING,
	                              .new_stage = -1,
	                              .reason = why,
	                              .actor = actor,
	                              .role = role};

	enum ota_err rc = ota_store_rollout_get(st, id, &row, NULL);
	if (rc != OTA_OK)
		return rc;
	switch (a) {
	case OTA_RA_START:
		mv.from_mask = BIT(OTA_RS_DRAFT);
		mv.new_stage = 0;
		snprintf(why, sizeof(why), "started");
		break;
	case OTA_RA_PAUSE:
		mv.from_mask = BIT(OTA_RS_RUNNING) | BIT(OTA_RS_WAITING_APPROVAL);
		mv.to = OTA_RS_PAUSED;
		snprintf(why, sizeof(why), "paused by %s%s%s", actor ? actor : "an operator",
		         reason && reason[0] ? ": " : "", reason ? reason : "");
		break;
	case OTA_RA_RESUME:
		mv.from_mask = BIT(OTA_RS_PAUSED);
		mv.ack = true;
		snprintf(why, sizeof(why), "resumed");
		break;
	case OTA_RA_APPROVE:
		mv.from_mask = BIT(OTA_RS_WAITING_APPROVAL);
		mv.new_stage = (int)row.stage + 1;
		snprintf(why, sizeof(why), "stage %d approved by %s", mv.new_stage + 1,
		         actor ? actor : "an operator");
		break;
	case OTA_RA_ABORT:
		mv.from_mask = BIT(OTA_RS_DRAFT) | BIT(OTA_RS_RUNNING) | BIT(OTA_RS_PAUSED) |
		               BIT(OTA_RS_WAITING_APPROVAL);
		mv.to = OTA_RS_ABORTED;
		snprintf(why, sizeof(why), "aborted by %s%s%s", actor ? actor : "an operator",
		         reason && reason[0] ? ": " : "", reason ? reason : "");
		break;
	default:
		return OTA_ERR_INVALID;
	}
	rc = transition_tx(st, &mv, now, &was);
	if (rc == OTA_ERR_CONFLICT)
		ota_say(msg, msglen, "rollout %s is %s", id, ota_rollout_state_name(was));
	if (rc == OTA_OK)
		log_notice("rollout %s: %s", id, why);
	return rc;
}

/* The regressed devices named after a halt's reason, as many as fit ("...: a, b, c"). */
struct named {
	char *why;
	size_t cap, len;
	unsigned n;
	bool cut;
};

static void name_one(void *ctx, const char *device_id)
{
	struct named *w = ctx;
	size_t need = strlen(device_id) + 2;
	if (w->cut || w->len + need + 4 >= w->cap) {
		w->cut = true;
		return;
	}
	w->len += (size_t)snprintf(w->why + w->len, w->cap - w->len, "%s%s", w->n ? ", " : ": ",
	                           device_id);
	w->n++;
}

static void list_regressed(struct ota_store *st, const struct ota_rollout_row *row, char *why,
                           size_t cap)
{
	struct ota_health_summary h;
	struct named w = {.why = why, .cap = cap, .len = strlen(why)};
	if (ota_store_rollout_health(st, row->id, row->stage, &h, 64, name_one, &w) == OTA_OK &&
	    w.cut && w.len + 4 < cap)
		snprintf(why + w.len, cap - w.len, ", ...");
}

/* Applies the verdict on a running rollout's current stage. */
static enum ota_err judge_and_apply(struct ota_store *st, const struct ota_rollout_row *row,
                                    const struct ota_rollout_spec *s, int64_t now)
{
	struct ota_stage_counts c;
	char why[OTA_REASON_MAX + 1] = "";
	enum ota_err rc;

	if (row->state != OTA_RS_RUNNING)
		return OTA_OK;
	bool reused;
	rc = stage_view(st, row, s, now, &c, true, &reused);
	if (rc != OTA_OK)
		return rc;
	enum ota_verdict v =
	    ota_rollout_judge(s, row->stage, &c, row->ack_failures, row->ack_finished,
	                      row->stage_started_at, now, why, sizeof(why));
	if (v != OTA_V_HOLD && reused) {
		/* A move is judged on a fresh pass only. */
		rc = stage_view(st, row, s, now, &c, false, &reused);
		if (rc != OTA_OK)
			return rc;
		why[0] = '\0';
		v = ota_rollout_judge(s, row->stage, &c, row->ack_failures, row->ack_finished,
		                      row->stage_started_at, now, why, sizeof(why));
	}
	struct ota_rollout_move mv = {.id = row->id,
	                              .from_mask = BIT(OTA_RS_RUNNING),
	                              .to = OTA_RS_RUNNING,
	                              .new_stage = -1,
	                              .reason = why};
	switch (v) {
	case OTA_V_HOLD:
		return OTA_OK;
	case OTA_V_HALT:
		mv.to = OTA_RS_PAUSED;
		break;
	case OTA_V_ADVANCE:
		mv.new_stage = (int)row->stage + 1;
		break;
	case OTA_V_WAIT_APPROVAL:
		mv.to = OTA_RS_WAITING_APPROVAL;
		break;
	case OTA_V_COMPLETE:
		mv.to = OTA_RS_COMPLETED;
		break;
	}
	/* The move and its verdict row, in one transaction. */
	static const char *const names[] = {
	    [OTA_V_HALT] = "halt",
	    [OTA_V_ADVANCE] = "advance",
	    [OTA_V_WAIT_APPROVAL] = "wait_approval",
	    [OTA_V_COMPLETE] = "complete",
	};
	unsigned failures = c.n[OTA_MS_FAILED] + c.n[OTA_MS_ROLLED_BACK];
	char numbers[256];
	int nl = snprintf(numbers, sizeof(numbers),
	                  "{\"succeeded\":%u,\"failed\":%u,\"updating\":%u,\"waiting\":%u,"
	                  "\"skipped\":%u,\"unreachable\":%u,\"accepted_failures\":%u}",
	                  c.n[OTA_MS_SUCCEEDED], failures,
	                  c.n[OTA_MS_PENDING] + c.n[OTA_MS_DOWNLOADING] + c.n[OTA_MS_INSTALLING] +
	                      c.n[OTA_MS_TRIAL],
	                  c.waiting, c.n[OTA_MS_SKIPPED], c.unreachable, row->ack_failures);
	bool regression =
	    v == OTA_V_HALT && s->post[row->stage].on && strncmp(why, "post-confirm", 12) == 0;
	if (s->post[row->stage].on && nl > 0 && (size_t)nl < sizeof(numbers))
		snprintf(numbers + nl - 1, sizeof(numbers) - (size_t)nl + 1, ",\"regressed\":%u}",
		         c.regressed);
	if (regression)
		list_regressed(st, row, why, sizeof(why));
	struct ota_rollout_verdict vr = {
	    .at = now,
	    .stage = row->stage + 1,
	    .verdict = names[v],
	    .rule = v != OTA_V_HALT                       ? "success_threshold"
	            : regression                          ? "post_confirm_regression"
	            : s->stages[row->stage].acceptable_bp ? "statistical_halt"
	                                                  : "failure_threshold",
	    .numbers = numbers,
	    .reason = why,
	};
	rc = ota_store_tx_begin(st);
	if (rc == OTA_OK) {
		enum ota_err e = ota_rollout_transition(st, &mv, now, NULL);
		if (e == OTA_OK)
			e = ota_store_rollout_verdict_add(st, row->id, &vr);
		rc = ota_store_tx_finish(st, e);
	}
	/* Another thread judged first: its transition stands. */
	if (rc == OTA_ERR_CONFLICT)
		rc = OTA_OK;
	if (rc == OTA_OK)
		log_notice("rollout %s: %s", row->id, why);
	return rc;
}

enum ota_err ota_rollout_evaluate(struct ota_store *st, const char *id, int64_t now)
{
	struct ota_rollout_row row;
	struct ota_rollout_spec s;
	char *text = NULL;
	enum ota_err rc = ota_store_rollout_get(st, id, &row, &text);

	if (rc == OTA_OK)
		rc = ota_rollout_spec_decode(text, &s);
	if (rc == OTA_OK)
		rc = judge_and_apply(st, &row, &s, now);
	free(text);
	return rc;
}

/* The running rollouts' ids, collected before any is judged (a verdict writes the table). */
struct ids {
	char (*v)[OTA_RO_ID_MAX];
	size_t n, cap;
	bool nomem;
};

static int ids_one(void *ctx, const struct ota_rollout_row *row, const char *text)
{
	struct ids *p = ctx;
	(void)text;
	if (p->n == p->cap) {
		size_t nc = p->cap ? p->cap * 2 : 8;
		void *v = realloc(p->v, nc * sizeof(*p->v));
		if (!v) {
			p->nomem = true;
			return 1;
		}
		p->v = v;
		p->cap = nc;
	}
	memcpy(p->v[p->n++], row->id, OTA_RO_ID_MAX);
	return 0;
}

enum ota_err ota_rollout_tick(struct ota_store *st, int64_t now)
{
	struct ids p = {0};
	enum ota_err rc = ota_store_rollout_list(st, OTA_RS_RUNNING, ids_one, &p);
	if (rc == OTA_OK && p.nomem)
		rc = OTA_ERR_NOMEM;
	for (size_t i = 0; rc == OTA_OK && i < p.n; i++) {
		enum ota_err e = ota_rollout_evaluate(st, p.v[i], now);
		if (e != OTA_OK)
			log_err("rollout %s: cannot be judged", p.v[i]);
	}
	free(p.v);
	return rc;
}

enum ota_err ota_rollout_on_event(struct ota_store *st, const char *deployment_id,
                                  const char *status, const char *end_status,
                                  const char *end_reason, int64_t now,
                                  char rollout_id[OTA_RO_ID_MAX])
{
	struct ota_rollout_member m;
	struct ota_rollout_row row;
	struct ota_rollout_spec s;
	enum ota_member_state to;
	int64_t next_at = 0;
	char *text = NULL;

	rollout_id[0] = '\0';
	enum ota_err rc = ota_store_rollout_member_of_deployment(st, deployment_id, rollout_id, &m);
	if (rc == OTA_ERR_NOT_FOUND) {
		rollout_id[0] = '\0';
		return OTA_OK; /* a manual deployment, or an attempt since replaced */
	}
	if (rc == OTA_OK)
		rc = ota_store_rollout_get(st, rollout_id, &row, &text);
	if (rc == OTA_OK)
		rc = ota_rollout_spec_decode(text, &s);
	free(text);
	if (rc != OTA_OK)
		return rc;
	if (!ota_rollout_member_next(&s, &m, status, end_status, now, &to, &next_at))
		return OTA_OK;
	return ota_store_rollout_member_move(st, rollout_id, m.device_id, m.state, to, end_reason,
	                                     next_at, now);
}

enum ota_err ota_rollout_on_health(struct ota_store *st, const char *device_id,
                                   const char *deployment_id, const struct ota_member_health *h,
                                   int64_t now)
{
	struct ota_rollout_member m;
	struct ota_rollout_row row;
	struct ota_rollout_spec s;
	char rollout_id[OTA_RO_ID_MAX];
	char *text = NULL;
	bool first = false;

	enum ota_err rc = ota_store_rollout_member_of_deployment(st, deployment_id, rollout_id, &m);
	if (rc == OTA_ERR_NOT_FOUND)
		return OTA_OK; /* a manual deployment, another's, or an attempt since replaced */
	if (rc == OTA_OK && (strcmp(m.device_id, device_id) != 0 || m.state != OTA_MS_SUCCEEDED))
		return OTA_OK;
	if (rc == OTA_OK)
		rc = ota_store_rollout_get(st, rollout_id, &row, &text);
	if (rc == OTA_OK)
		rc = ota_rollout_spec_decode(text, &s);
	free(text);
	if (rc != OTA_OK)
		return rc;
	unsigned soak = ota_rollout_health_soak(&s, m.stage);
	/* The soak runs from the confirm (the member's move to succeeded, its last). */
	if (soak == 0 || now - m.updated_at > (int64_t)soak)
		return OTA_OK;
	bool regressed = ota_rollout_health_regressed(h);
	rc = ota_store_member_health_put(st, rollout_id, device_id, h, regressed, now, &first);
	if (rc == OTA_ERR_NOT_FOUND)
		return OTA_OK; /* moved meanwhile */
	if (rc == OTA_OK && first) {
		log_notice("rollout %s: device %s regressed after its confirm (%u watchdog resets, "
		           "%u failed health checks, %u reboots)",
		           rollout_id, device_id, h->watchdog_resets, h->failed_checks, h->reboots);
		/* Judged at once, as after a report (the ticker would otherwise). */
		rc = ota_rollout_evaluate(st, rollout_id, now);
	}
	return rc;
}

/* The device's value of the budget's tag key ("line=7" for key "line"), or NULL. */
static const char *budget_scope(const struct ota_rollout_spec *s,
                                const struct ota_rollout_device *d)
{
	size_t kl = strlen(s->budget_tag_key);
	if (!kl)
		return NULL;
	for (unsigned i = 0; i < d->ntags; i++)
		if (strncmp(d->tags[i], s->budget_tag_key, kl) == 0 && d->tags[i][kl] == '=')
			return d->tags[i];
	return NULL;
}

struct wanting {
	struct ota_store *st;
	const struct ota_rollout_device *d;
	int64_t now;
	int (*fn)(void *ctx, const struct ota_rollout_row *row, const struct ota_rollout_spec *s,
	          const struct ota_rollout_device *d);
	void *ctx;
	enum ota_err rc;
};

/* Membership: the stages up to the current one cover this device's bucket, and it matches. */
static bool covers(const struct wanting *w, const struct ota_rollout_row *row,
                   const struct ota_rollout_spec *s)
{
	return ota_rollout_bucket(row->hash_key, row->id, w->d->id) <
	           s->stages[row->stage].percent_bp &&
	       ota_rollout_matches(s, w->d, NULL, 0);
}

/* Whether one running rollout that covers the device wants it now (m: its member row, NULL
 * when it is none); calls w->fn when it does. Reads only: the verdicts are the ticker's and
 * the reports' (ota_rollout_tick()). A member with nothing due (the common case once it
 * joined) costs nothing more. */
static int wanting_one(struct wanting *w, const struct ota_rollout_row *row,
                       const struct ota_rollout_spec *s, const struct ota_rollout_member *m)
{
	if (m && !ota_rollout_retry_due(s, m, w->now))
		return 0;
	return w->fn(w->ctx, row, s, w->d);
}

/*
 * The running rollouts with their decoded definitions, as every check-in reads them: loaded
 * from the store when ota_store_rollouts_generation() moved (any change of a rollout's row, on
 * any handle, and its commit), shared read-only by the check-ins meanwhile (refs). Without it
 * each check-in listed the running rollouts and parsed each one's JSON definition. A join
 * still reads the rollout's row inside its transaction (join_in_tx), so a check-in that raced
 * a change never acts on a stale stage. With them, the devices they leave alone (quiet.h).
 */
struct running {
	unsigned refs;
	uint64_t gen;
	const struct ota_store *st;
	size_t n, cap;
	struct ota_rollout_row *rows;
	struct ota_rollout_spec *specs;
	struct ota_quiet *quiet; /* NULL when none run, or out of memory */
};

static pthread_mutex_t running_mu = PTHREAD_MUTEX_INITIALIZER;
static struct running *running_now; /* the newest snapshot, one ref held by this pointer */

static void running_put(struct running *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&running_mu);
	bool last = --r->refs == 0;
	pthread_mutex_unlock(&running_mu);
	if (last) {
		ota_quiet_free(r->quiet);
		free(r->rows);
		free(r->specs);
		free(r);
	}
}

static int running_add(void *ctx, const struct ota_rollout_row *row, const char *text)
{
	struct running *r = ctx;

	if (r->n == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 4;
		void *a = realloc(r->rows, nc * sizeof(*r->rows));
		if (a)
			r->rows = a;
		void *b = a ? realloc(r->specs, nc * sizeof(*r->specs)) : NULL;
		if (b)
			r->specs = b;
		if (!a || !b) {
			r->cap = (size_t)-1; /* out of memory: the load fails */
			return 1;
		}
		r->cap = nc;
	}
	if (ota_rollout_spec_decode(text, &r->specs[r->n]) != OTA_OK) {
		log_err("rollout %s: its stored definition cannot be read", row->id);
		return 0;
	}
	r->rows[r->n++] = *row;
	return 0;
}

/* The current snapshot for st, with a ref for the caller; NULL with *rc on error. */
static struct running *running_get(struct ota_store *st, enum ota_err *rc)
{
	uint64_t gen = ota_store_rollouts_generation();
	struct running *r;

	pthread_mutex_lock(&running_mu);
	r = running_now;
	if (r && r->st == st && r->gen == gen)
		r->refs++;
	else
		r = NULL;
	pthread_mutex_unlock(&running_mu);
	if (r)
		return r;
	/* Read with the generation taken before: a change meanwhile makes it stale at once. */
	r = calloc(1, sizeof(*r));
	if (!r) {
		*rc = OTA_ERR_NOMEM;
		return NULL;
	}
	r->refs = 1;
	r->gen = gen;
	r->st = st;
	*rc = ota_store_rollout_list(st, OTA_RS_RUNNING, running_add, r);
	if (*rc == OTA_OK && r->cap == (size_t)-1)
		*rc = OTA_ERR_NOMEM;
	if (*rc != OTA_OK) {
		running_put(r);
		return NULL;
	}
	if (r->n) {
		/* As large as the last set's table grew: the same fleet checks in. */
		size_t entries = 0;
		pthread_mutex_lock(&running_mu);
		if (running_now && running_now->quiet)
			entries = ota_quiet_entries(running_now->quiet);
		pthread_mutex_unlock(&running_mu);
		r->quiet = ota_quiet_new(entries);
	}
	pthread_mutex_lock(&running_mu);
	struct running *old = NULL;
	if (!running_now || running_now->st != st || running_now->gen < gen) {
		old = running_now;
		running_now = r;
		r->refs++;
	}
	pthread_mutex_unlock(&running_mu);
	running_put(old);
	return r;
}

enum ota_err
ota_rollout_wanting(struct ota_store *st, const struct ota_rollout_device *facts, int64_t now,
                    int (*fn)(void *ctx, const struct ota_rollout_row *row,
                              const struct ota_rollout_spec *s, const struct ota_rollout_device *d),
                    void *ctx)
{
	char tags[MAX_TAGS][65];
	const char *tagp[MAX_TAGS];
	struct ota_rollout_device d = *facts;
	struct wanting w = {.st = st, .d = &d, .now = now, .fn = fn, .ctx = ctx, .rc = OTA_OK};
	enum ota_err rc = OTA_OK;
	struct running *r = running_get(st, &rc);

	if (!r)
		return rc;
	/* Not keyed by its tags: a change of them makes a new set of running rollouts. */
	d.ntags = 0;
	d.tags = tagp;
	uint64_t key = r->quiet ? ota_quiet_key(&d) : 0;
	if (r->n == 0 || (r->quiet && ota_quiet_now(r->quiet, key, now))) {
		running_put(r);
		return OTA_OK;
	}
	rc = ota_store_device_tags(st, d.id, tags, MAX_TAGS, &d.ntags);
	if (rc != OTA_OK) {
		running_put(r);
		return rc;
	}
	for (unsigned i = 0; i < d.ntags; i++)
		tagp[i] = tags[i];
	/* The member rows of the rollouts that cover the device, read together (one read for up
	 * to WANT_BATCH rollouts instead of one each), then each rollout in order. The device is
	 * quiet until the earliest retry of its members when every rollout that covers it has a
	 * member row that ended (state succeeded or later: no report moves it) and wants nothing
	 * now; a member on its way, or none yet, leaves it to be walked again. */
	bool stop = false, quiet = true;
	int64_t until = INT64_MAX;
	for (size_t i = 0; i < r->n && !stop && w.rc == OTA_OK;) {
		size_t idx[WANT_BATCH], k = 0;
		const char *ids[WANT_BATCH];
		struct ota_rollout_member m[WANT_BATCH];
		bool found[WANT_BATCH];
		for (; i < r->n && k < WANT_BATCH; i++)
			if (covers(&w, &r->rows[i], &r->specs[i])) {
				idx[k] = i;
				ids[k++] = r->rows[i].id;
			}
		if (k == 0)
			continue;
		enum ota_err e;
		if (k == 1) {
			e = ota_store_rollout_member_get(st, ids[0], d.id, &m[0]);
			found[0] = e == OTA_OK;
			if (e == OTA_ERR_NOT_FOUND)
				e = OTA_OK;
		} else
			e = ota_store_rollout_members_of(st, d.id, ids, k, m, found);
		if (e != OTA_OK) {
			w.rc = e;
			break;
		}
		for (size_t j = 0; j < k && !stop; j++) {
			const struct ota_rollout_spec *s = &r->specs[idx[j]];
			int64_t at = found[j] ? ota_rollout_retry_at(s, &m[j]) : 0;
			if (!found[j] || m[j].state < OTA_MS_SUCCEEDED || at <= now)
				quiet = false;
			else if (at < until)
				until = at;
			stop = wanting_one(&w, &r->rows[idx[j]], s, found[j] ? &m[j] : NULL) != 0;
		}
	}
	if (quiet && !stop && w.rc == OTA_OK && r->quiet)
		ota_quiet_keep(r->quiet, key, now, until);
	running_put(r);
	return w.rc;
}

/* The decisions of a join, inside its transaction. */
static enum ota_err join_in_tx(struct ota_store *st, const struct ota_rollout_join *j,
                               char deployment_id[OTA_DEPLOYMENT_ID_MAX], enum ota_join_result *res)
{
	const struct ota_rollout_spec *s = j->s;
	struct ota_rollout_row row;
	struct ota_rollout_member m;
	struct ota_deployment busy;
	char scope[65] = "";
	bool open;

	enum ota_err rc = ota_store_rollout_get(st, j->rollout_id, &row, NULL);
	if (rc != OTA_OK)
		return rc;
	if (row.state != OTA_RS_RUNNING || row.stage != j->stage) {
		*res = OTA_JOIN_STALE;
		return OTA_OK;
	}
	rc = ota_store_rollout_member_scope(st, j->rollout_id, j->d->id, &m, scope, sizeof(scope));
	bool member = rc == OTA_OK;
	if (rc != OTA_OK && rc != OTA_ERR_NOT_FOUND)
		return rc;
	if (member && !ota_rollout_retry_due(s, &m, j->now)) {
		*res = m.next_attempt_at > j->now && m.attempts < s->retry_attempts
		           ? OTA_JOIN_RETRY_LATER
		           : OTA_JOIN_MEMBER;
		return OTA_OK;
	}
	if (!member)
		snprintf(scope, sizeof(scope), "%s",
		         budget_scope(s, j->d) ? budget_scope(s, j->d) : "");
	/* A device mid-update is left alone, and nothing is recorded for it yet. */
	rc = ota_store_deployment_active(st, j->d->id, &busy);
	if (rc == OTA_OK) {
		*res = OTA_JOIN_BUSY;
		return OTA_OK;
	}
	if (rc != OTA_ERR_NOT_FOUND)
		return rc;
	if (j->skip_reason) {
		if (member)
			rc = ota_store_rollout_member_move(st, j->rollout_id, j->d->id, m.state,
			                                   OTA_MS_SKIPPED, j->skip_reason, 0,
			                                   j->now);
		else
			rc = ota_store_rollout_member_insert(
			    st, &(struct ota_member_new){.rollout_id = j->rollout_id,
			                                 .device_id = j->d->id,
			                                 .stage = j->stage,
			                                 .state = OTA_MS_SKIPPED,
			                                 .reason = j->skip_reason,
			                                 .now = j->now});
		if (rc == OTA_OK)
			rc = note(st, NULL, NULL, "rollout.device.skip", j->rollout_id, j->d->id,
			          NULL, NULL, j->skip_reason, j->now);
		*res = OTA_JOIN_SKIPPED;
		return rc;
	}
	rc = ota_rollout_window_open(s, j->now, &open);
	if (rc != OTA_OK)
		return rc;
	if (!open) {
		*res = OTA_JOIN_WINDOW; /* asked again at the next poll */
		return OTA_OK;
	}
	/* The budgets, read and taken inside this transaction: never exceeded. */
	unsigned n = 0;
	if (s->max_active) {
		rc = ota_store_rollout_active(st, j->rollout_id, "", &n);
		if (rc != OTA_OK)
			return rc;
		if (n >= s->max_active) {
			*res = OTA_JOIN_BUDGET;
			return OTA_OK;
		}
	}
	if (scope[0] && s->max_active_per_tag) {
		rc = ota_store_rollout_active(st, j->rollout_id, scope, &n);
		if (rc != OTA_OK)
			return rc;
		if (n >= s->max_active_per_tag) {
			*res = OTA_JOIN_BUDGET;
			return OTA_OK;
		}
	}
	rc = ota_id_new("d-", deployment_id, OTA_DEPLOYMENT_ID_MAX);
	if (rc == OTA_OK)
		rc = ota_store_deployment_create(st, deployment_id, j->d->id, row.release_id,
		                                 j->now);
	if (rc == OTA_OK && member)
		rc = ota_store_rollout_member_retry(st, j->rollout_id, j->d->id, deployment_id,
		                                    j->now);
	else if (rc == OTA_OK)
		rc = ota_store_rollout_member_insert(
		    st, &(struct ota_member_new){.rollout_id = j->rollout_id,
		                                 .device_id = j->d->id,
		                                 .stage = j->stage,
		                                 .state = OTA_MS_PENDING,
		                                 .deployment_id = deployment_id,
		                                 .scope = scope,
		                                 .now = j->now});
	if (rc == OTA_OK)
		rc = note(st, NULL, NULL, member ? "deployment.retry" : "deployment.create",
		          j->rollout_id, j->d->id, row.release_id, deployment_id, NULL, j->now);
	if (rc == OTA_OK)
		*res = OTA_JOIN_OFFERED;
	return rc;
}

enum ota_err ota_rollout_join(struct ota_store *st, const struct ota_rollout_join *j,
                              char deployment_id[OTA_DEPLOYMENT_ID_MAX], enum ota_join_result *res)
{
	deployment_id[0] = '\0';
	enum ota_err rc = ota_store_tx_begin(st);
	if (rc == OTA_OK)
		rc = ota_store_tx_finish(st, join_in_tx(st, j, deployment_id, res));
	return rc;
}
