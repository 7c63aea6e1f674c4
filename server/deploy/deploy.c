/*
 * deploy/deploy.c - the deployment service (deploy.h): what a checking-in device is offered,
 * how a report moves its deployment and rollout member, whether a release may go to a device,
 * and the operators' manual deployments and roll backs. Every change is one store transaction
 * (begin, change, audit, commit); reports share theirs through the store's group commit.
 */
#include "deploy/deploy.h"
#include "deploy/delta.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/util.h"
#include "rollout/rollout.h"

static struct ota_device_facts facts_of(const struct ota_device *dev)
{
	return (struct ota_device_facts){.known = dev->known_state,
	                                 .hw_variant = dev->hw_variant,
	                                 .version = dev->version,
	                                 .security_floor = dev->security_floor};
}

/* One audit entry of the service, inside the caller's transaction. */
static enum ota_err note(struct ota_store *st, const char *actor, const char *role,
                         const struct ota_audit_entry *what, int64_t now)
{
	struct ota_audit_entry e = *what;
	e.actor = actor;
	e.role = role;
	return ota_audit_append(st, &e, now, NULL);
}

/* "detail; extra" for an operator's entries. */
static const char *with_detail(char *buf, size_t cap, const char *detail,
                               const struct ota_actor *who)
{
	if (!who->detail)
		return detail;
	snprintf(buf, cap, "%s%s%s", detail ? detail : "", detail ? "; " : "", who->detail);
	return buf;
}

void ota_offer_clear(struct ota_offer *o)
{
	free(o->envelope);
	memset(o, 0, sizeof(*o));
}

/* Inside the caller's transaction: ends dep as cancelled, with its member and audit entry. */
static enum ota_err cancel_in_tx(struct ota_store *st, const struct ota_deployment *dep,
                                 const char *reason, int64_t now)
{
	char ro[OTA_RO_ID_MAX];
	enum ota_err rc = ota_store_deployment_end(st, dep->id, "cancelled", reason, now);

	if (rc == OTA_OK)
		rc = ota_rollout_on_event(st, dep->id, "failed", "cancelled", reason, now, ro);
	if (rc == OTA_OK)
		rc = note(st, "otad", "system",
		          &(struct ota_audit_entry){.action = "deployment.cancel",
		                                    .device_id = dep->device_id,
		                                    .rollout_id = ro[0] ? ro : NULL,
		                                    .release_id = dep->release_id,
		                                    .object = dep->id,
		                                    .detail = reason},
		          now);
	if (rc == OTA_OK)
		log_notice("device %s: deployment %s cancelled: %s", dep->device_id, dep->id,
		           reason);
	return rc;
}

enum ota_err ota_deploy_cancel_active(struct ota_store *st, const char *device_id,
                                      const char *reason, int64_t now)
{
	struct ota_deployment dep;
	enum ota_err rc = ota_store_deployment_active(st, device_id, &dep);

	if (rc == OTA_ERR_NOT_FOUND)
		return OTA_OK;
	return rc == OTA_OK ? cancel_in_tx(st, &dep, reason, now) : rc;
}

/* Ends a deployment that may no longer go to its device, in a transaction of its own. */
static enum ota_err cancel(struct ota_store *st, const struct ota_deployment *dep,
                           const char *reason, int64_t now)
{
	enum ota_err rc = ota_store_tx_begin(st);

	if (rc == OTA_OK)
		rc = ota_store_tx_finish(st, cancel_in_tx(st, dep, reason, now));
	return rc;
}

/* The device's active deployment as an offer, if the release may still go to it. */
static enum ota_err offer_active(struct ota_store *st, const struct ota_device_report *c,
                                 int64_t now, struct ota_offer *out)
{
	char why[OTA_REASON_MAX + 1];
	enum ota_err rc = ota_store_deployment_active_cached(st, c->id, &out->dep);

	if (rc != OTA_OK)
		return rc;
	rc = ota_store_release_get(st, out->dep.release_id, &out->rel, &out->envelope);
	if (rc != OTA_OK)
		return rc;
	struct ota_device_facts d = {.known = true,
	                             .hw_variant = c->hw_variant,
	                             .version = c->version,
	                             .security_floor = c->security_floor};
	enum ota_eligibility el = ota_deploy_eligible(&out->rel, &d, why, sizeof(why));
	/* Running the target already is how a deployment ends well: it stays on offer until the
	 * device reports its confirmed boot. */
	if (el != OTA_ELIGIBLE && el != OTA_INELIGIBLE_SAME_VERSION) {
		rc = cancel(st, &out->dep, why, now);
		ota_offer_clear(out);
		return rc == OTA_OK ? OTA_ERR_NOT_FOUND : rc;
	}
	out->update = true;
	return OTA_OK;
}

struct wanting {
	struct ota_store *st;
	int64_t now;
	bool offered;
	enum ota_err rc;
};

static int want_one(void *ctx, const struct ota_rollout_row *row, const struct ota_rollout_spec *s,
                    const struct ota_rollout_device *d)
{
	struct wanting *w = ctx;
	struct ota_release rel;
	char why[OTA_REASON_MAX + 1], did[OTA_DEPLOYMENT_ID_MAX];
	enum ota_join_result res;

	w->rc = ota_store_release_get(w->st, row->release_id, &rel, NULL);
	if (w->rc != OTA_OK)
		return 1;
	struct ota_device_facts f = {.known = true,
	                             .hw_variant = d->hw_variant,
	                             .version = d->version,
	                             .security_floor = d->security_floor};
	enum ota_eligibility el = ota_deploy_eligible(&rel, &f, why, sizeof(why));
	/* A variant the release does not run on is outside the rollout, not a member. */
	if (el == OTA_INELIGIBLE_HW_VARIANT)
		return 0;
	struct ota_rollout_join j = {
	    .rollout_id = row->id,
	    .s = s,
	    .stage = row->stage,
	    .d = d,
	    .skip_reason = el == OTA_ELIGIBLE ? NULL : why,
	    .now = w->now,
	};
	w->rc = ota_rollout_join(w->st, &j, did, &res);
	if (w->rc != OTA_OK)
		return 1;
	w->offered = res == OTA_JOIN_OFFERED;
	/* Offered, or busy with another deployment (never preempted): nothing else will offer. */
	return res == OTA_JOIN_OFFERED || res == OTA_JOIN_BUSY;
}

enum ota_err ota_deploy_checkin(struct ota_store *st, const struct ota_device_report *c,
                                int64_t now, struct ota_offer *out)
{
	memset(out, 0, sizeof(*out));
	enum ota_err rc = ota_store_device_report(st, c, now);
	if (rc != OTA_OK)
		return rc;
	rc = offer_active(st, c, now, out);
	if (rc != OTA_ERR_NOT_FOUND)
		return rc;
	/* No active deployment: do the running rollouts want the device now? */
	struct ota_rollout_device d = {
	    .id = c->id,
	    .hw_variant = c->hw_variant,
	    .version = c->version,
	    .security_floor = c->security_floor,
	};
	struct wanting w = {.st = st, .now = now, .rc = OTA_OK};
	rc = ota_rollout_wanting(st, &d, now, want_one, &w);
	if (rc == OTA_OK)
		rc = w.rc;
	if (rc != OTA_OK || !w.offered)
		return rc;
	rc = offer_active(st, c, now, out);
	return rc == OTA_ERR_NOT_FOUND ? OTA_OK : rc;
}

/* ---- reports ---- */

/* A validated report, stored by store_report() inside a group commit. */
struct report {
	const struct ota_deployment *dep;
	const struct ota_event *ev;
	const char *end; /* the deployment's outcome, or NULL */
	const char *end_reason;
	int64_t now;
	bool duplicate;
	bool seq_conflict;
};

/* The event, its rollout member and, when the deployment ends, its outcome and audit entry. */
static enum ota_err store_report(struct ota_store *st, void *ctx)
{
	struct report *w = ctx;
	char ro[OTA_RO_ID_MAX];
	enum ota_err e =
	    ota_store_event_add(st, w->dep->id, w->dep->device_id, w->ev, w->now, &w->duplicate);

	if (e == OTA_ERR_CONFLICT)
		w->seq_conflict = true;
	if (e != OTA_OK || w->duplicate)
		return e;
	/* A delta that failed or was refused is counted, and not offered to the device again. */
	e = ota_deploy_delta_report(st, w->dep, w->ev, w->now);
	if (e != OTA_OK)
		return e;
	e = ota_rollout_on_event(st, w->dep->id, w->ev->status, w->end, w->end_reason, w->now, ro);
	if (e != OTA_OK || !w->end)
		return e;
	e = ota_store_deployment_end(st, w->dep->id, w->end, w->end_reason, w->now);
	if (e == OTA_ERR_CONFLICT)
		return OTA_OK; /* ended already: the event is kept, the outcome stands */
	if (e != OTA_OK)
		return e;
	json_t *o = json_pack("{s:s, s:s, s:s}", "status", w->end, "reason", w->end_reason,
	                      "version", w->ev->version ? w->ev->version : "");
	char *after = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	if (!after)
		return OTA_ERR_NOMEM;
	e = note(st, w->dep->device_id, "device",
	         &(struct ota_audit_entry){.action = "deployment.outcome",
	                                   .device_id = w->dep->device_id,
	                                   .rollout_id = ro[0] ? ro : NULL,
	                                   .release_id = w->dep->release_id,
	                                   .object = w->dep->id,
	                                   .after = after},
	         w->now);
	free(after);
	return e;
}

/* A report on its way through the group commit (deploy.h). */
struct ota_report_job {
	struct ota_deployment dep;
	struct ota_event ev;
	char end_reason[OTA_REASON_MAX + 1];
	struct report w;
	enum ota_err rc; /* the group's result for it */
	bool fault;
	void (*done)(void *arg);
	void *arg;
};

/* Reads and checks what a report needs before its group: NULL job and an error, or a job. */
static enum ota_err report_prepare(struct ota_store *st, const char *device_id,
                                   const char *deployment_id, const struct ota_event *ev,
                                   int64_t now, struct ota_report_job **out)
{
	struct ota_release rel;
	const char *end = NULL;
	struct ota_report_job *j = calloc(1, sizeof(*j));

	*out = NULL;
	if (!j)
		return OTA_ERR_NOMEM;
	enum ota_err rc = ota_store_deployment_get(st, deployment_id, &j->dep);
	if (rc != OTA_OK)
		goto fail;
	rc = OTA_ERR_FORBIDDEN;
	if (strcmp(j->dep.device_id, device_id) != 0)
		goto fail;
	rc = ota_store_release_get(st, j->dep.release_id, &rel, NULL);
	if (rc != OTA_OK) {
		rc = rc == OTA_ERR_NOT_FOUND ? OTA_ERR_DB : rc;
		goto fail;
	}
	j->ev = *ev;
	/* Success is a confirmed boot of the target version, nothing less. */
	if (strcmp(ev->status, "confirmed") == 0 && ev->version) {
		if (strcmp(ev->version, rel.version) == 0) {
			end = "succeeded";
		} else {
			end = "failed";
			snprintf(j->end_reason, sizeof(j->end_reason),
			         "confirmed version %s, the release is %s", ev->version,
			         rel.version);
		}
	} else if (strcmp(ev->status, "failed") == 0 || strcmp(ev->status, "rolled_back") == 0) {
		end = ev->status;
		snprintf(j->end_reason, sizeof(j->end_reason), "%s", ev->reason ? ev->reason : "");
	}
	j->w = (struct report){
	    .dep = &j->dep, .ev = &j->ev, .end = end, .end_reason = j->end_reason, .now = now};
	j->rc = OTA_ERR_DB;
	*out = j;
	return OTA_OK;
fail:
	free(j);
	return rc;
}

/* What follows a report's group: the verdict it may move, the deployment's status now. */
static enum ota_err report_after(struct ota_store *st, struct ota_report_job *j, enum ota_err rc,
                                 struct ota_report_result *out)
{
	out->seq_conflict = rc == OTA_ERR_CONFLICT && j->w.seq_conflict;
	if (rc != OTA_OK)
		return rc;
	out->duplicate = j->w.duplicate;
	if (!j->w.duplicate && j->w.end) {
		char ro[OTA_RO_ID_MAX];
		struct ota_rollout_member m;
		/* An outcome can move a verdict (a step on the way cannot): judge now. The report
		 * is stored either way; the ticker judges again on failure. */
		if (ota_store_rollout_member_of_deployment(st, j->dep.id, ro, &m) == OTA_OK &&
		    ota_rollout_evaluate(st, ro, j->w.now) != OTA_OK)
			log_warn("deployment %s: its rollout could not be evaluated", j->dep.id);
	}
	rc = ota_store_deployment_get(st, j->dep.id, &j->dep);
	if (rc == OTA_OK)
		snprintf(out->deployment_status, sizeof(out->deployment_status), "%s",
		         j->dep.status);
	return rc;
}

enum ota_err ota_deploy_report(struct ota_store *st, const char *device_id,
                               const char *deployment_id, const struct ota_event *ev, int64_t now,
                               struct ota_report_result *out)
{
	struct ota_report_job *j;

	memset(out, 0, sizeof(*out));
	enum ota_err rc = report_prepare(st, device_id, deployment_id, ev, now, &j);
	if (rc != OTA_OK)
		return rc;
	/* Durable before the answer, committed together with the concurrent reports. */
	rc = report_after(st, j, ota_store_group(st, store_report, &j->w), out);
	free(j);
	return rc;
}

static void report_committed(void *arg, enum ota_err rc, bool fault)
{
	struct ota_report_job *j = arg;

	j->rc = rc;
	j->fault = fault;
	j->done(j->arg);
}

enum ota_err ota_deploy_report_submit(struct ota_store *st, const char *device_id,
                                      const char *deployment_id, const struct ota_event *ev,
                                      int64_t now, void (*done)(void *arg), void *arg,
                                      struct ota_report_job **job)
{
	enum ota_err rc = report_prepare(st, device_id, deployment_id, ev, now, job);

	if (rc != OTA_OK)
		return rc;
	(*job)->done = done;
	(*job)->arg = arg;
	rc = ota_store_group_submit(st, store_report, &(*job)->w, report_committed, *job);
	if (rc != OTA_OK) {
		free(*job);
		*job = NULL;
		return rc == OTA_ERR_NOMEM ? rc : OTA_ERR_DB;
	}
	return OTA_OK;
}

enum ota_err ota_deploy_report_finish(struct ota_store *st, struct ota_report_job *job,
                                      struct ota_report_result *out)
{
	memset(out, 0, sizeof(*out));
	if (job->rc != OTA_OK && job->fault)
		ota_storage_fault_note(); /* met on the committer's thread: this answer's */
	enum ota_err rc = report_after(st, job, job->rc, out);
	free(job);
	return rc;
}

/* ---- operators' deployments ---- */

enum ota_err ota_deploy_create(struct ota_store *st, const struct ota_actor *who,
                               const char *device_id, const char *release_id, int64_t now,
                               struct ota_deployment *out, enum ota_deploy_refusal *refusal,
                               enum ota_eligibility *elig, char *why, size_t whylen)
{
	struct ota_device dev;
	struct ota_release rel;
	char id[OTA_DEPLOYMENT_ID_MAX], detail[OTA_AUDIT_TEXT_MAX / 2];

	*refusal = OTA_DR_NONE;
	*elig = OTA_ELIGIBLE;
	enum ota_err rc = ota_store_device_get(st, device_id, &dev);
	if (rc == OTA_ERR_NOT_FOUND || (rc == OTA_OK && strcmp(dev.status, "admitted") != 0)) {
		ota_say(why, whylen, "no admitted device %s", device_id);
		*refusal = OTA_DR_NO_DEVICE;
		return OTA_ERR_INVALID;
	}
	if (rc == OTA_OK)
		rc = ota_store_release_get(st, release_id, &rel, NULL);
	if (rc == OTA_ERR_NOT_FOUND) {
		ota_say(why, whylen, "no release %s", release_id);
		*refusal = OTA_DR_NO_RELEASE;
		return OTA_ERR_INVALID;
	}
	if (rc != OTA_OK)
		return rc;
	/* Never target a device with a release it cannot run or must refuse. */
	struct ota_device_facts f = facts_of(&dev);
	*elig = ota_deploy_eligible(&rel, &f, why, whylen);
	if (*elig != OTA_ELIGIBLE && *elig != OTA_INELIGIBLE_SAME_VERSION) {
		*refusal = OTA_DR_INELIGIBLE;
		return OTA_ERR_INVALID;
	}
	*elig = OTA_ELIGIBLE;
	rc = ota_id_new("d-", id, sizeof(id));
	if (rc != OTA_OK)
		return rc;
	rc = ota_store_tx_begin(st);
	if (rc != OTA_OK)
		return rc;
	rc = ota_store_deployment_create(st, id, device_id, release_id, now);
	if (rc == OTA_ERR_CONFLICT) {
		ota_say(why, whylen, "device %s already has an active deployment", device_id);
		*refusal = OTA_DR_BUSY;
	}
	if (rc == OTA_OK)
		rc = ota_store_deployment_get(st, id, out);
	if (rc == OTA_OK)
		rc = note(st, who->name, who->role,
		          &(struct ota_audit_entry){
		              .action = "deployment.create",
		              .device_id = device_id,
		              .release_id = release_id,
		              .object = id,
		              .detail = with_detail(detail, sizeof(detail), NULL, who)},
		          now);
	rc = ota_store_tx_finish(st, rc);
	if (*refusal != OTA_DR_NONE)
		return OTA_ERR_INVALID;
	if (rc == OTA_OK)
		log_notice("deployment %s: release %s %s to device %s, by %s", id, rel.name,
		           rel.version, device_id, who->name);
	return rc;
}

/* ---- roll back ---- */

struct targets {
	char (*v)[OTA_ID_MAX + 1];
	size_t n, cap;
	bool all, nomem;
};

static void target_one(void *ctx, const struct ota_rollout_member *m)
{
	struct targets *t = ctx;
	bool take = m->state == OTA_MS_FAILED || m->state == OTA_MS_ROLLED_BACK ||
	            (t->all && (m->state == OTA_MS_SUCCEEDED || m->state == OTA_MS_DOWNLOADING ||
	                        m->state == OTA_MS_INSTALLING || m->state == OTA_MS_TRIAL));
	if (!take)
		return;
	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 16;
		void *p = realloc(t->v, nc * sizeof(*t->v));
		if (!p) {
			t->nomem = true;
			return;
		}
		t->v = p;
		t->cap = nc;
	}
	snprintf(t->v[t->n++], sizeof(t->v[0]), "%s", m->device_id);
}

struct refusals {
	struct ota_rollback_refusal *v;
	unsigned n, cap;
	bool nomem;
};

static void refuse(struct refusals *r, const char *device_id, const char *why)
{
	if (r->n == r->cap) {
		unsigned nc = r->cap ? r->cap * 2 : 16;
		void *p = realloc(r->v, nc * sizeof(*r->v));
		if (!p) {
			r->nomem = true;
			return;
		}
		r->v = p;
		r->cap = nc;
	}
	snprintf(r->v[r->n].device_id, sizeof(r->v[0].device_id), "%s", device_id);
	snprintf(r->v[r->n].reason, sizeof(r->v[0].reason), "%s", why);
	r->n++;
}

/* Inside the transaction: one deployment of rel per target the release may go to. */
static enum ota_err rollback_targets(struct ota_store *st, const struct ota_actor *who,
                                     const char *rollout_id, const struct ota_release *rel,
                                     const struct targets *t, int64_t now, unsigned *ndeployed,
                                     struct refusals *r)
{
	char detail[OTA_AUDIT_TEXT_MAX / 2];
	enum ota_err rc = OTA_OK;

	for (size_t i = 0; rc == OTA_OK && i < t->n; i++) {
		struct ota_device dev;
		struct ota_deployment busy;
		char why[128], did[OTA_DEPLOYMENT_ID_MAX];

		rc = ota_store_device_get(st, t->v[i], &dev);
		if (rc != OTA_OK)
			break;
		struct ota_device_facts f = facts_of(&dev);
		if (ota_deploy_eligible(rel, &f, why, sizeof(why)) != OTA_ELIGIBLE) {
			refuse(r, t->v[i], why);
			continue;
		}
		rc = ota_store_deployment_active(st, t->v[i], &busy);
		if (rc == OTA_OK) {
			refuse(r, t->v[i], "mid-update: an active deployment is never preempted");
			continue;
		}
		if (rc != OTA_ERR_NOT_FOUND)
			break;
		rc = ota_id_new("d-", did, sizeof(did));
		if (rc == OTA_OK)
			rc = ota_store_deployment_create(st, did, t->v[i], rel->id, now);
		if (rc == OTA_OK)
			rc = note(st, who->name, who->role,
			          &(struct ota_audit_entry){
			              .action = "deployment.create",
			              .device_id = t->v[i],
			              .rollout_id = rollout_id,
			              .release_id = rel->id,
			              .object = did,
			              .detail = with_detail(detail, sizeof(detail), NULL, who)},
			          now);
		if (rc == OTA_OK)
			(*ndeployed)++;
	}
	return rc;
}

enum ota_err ota_deploy_rollback(struct ota_store *st, const struct ota_actor *who,
                                 const char *rollout_id, const char *release_id, bool all,
                                 int64_t now, unsigned *ndeployed,
                                 struct ota_rollback_refusal **refused, unsigned *nrefused,
                                 enum ota_eligibility *elig, char *msg, size_t msglen)
{
	struct ota_release rel, own;
	struct ota_rollout_row row;
	struct targets t = {.all = all};
	struct refusals r = {0};
	char reason[OTA_REASON_MAX + 1];
	enum ota_rollout_state was = OTA_RS_DRAFT;

	*refused = NULL;
	*nrefused = 0;
	*ndeployed = 0;
	*elig = OTA_ELIGIBLE;
	enum ota_err rc = ota_store_rollout_get(st, rollout_id, &row, NULL);
	if (rc == OTA_ERR_NOT_FOUND)
		ota_say(msg, msglen, "no rollout %s", rollout_id);
	if (rc == OTA_OK) {
		rc = ota_store_release_get(st, release_id, &rel, NULL);
		if (rc == OTA_ERR_NOT_FOUND)
			ota_say(msg, msglen, "no release %s", release_id);
	}
	if (rc == OTA_OK)
		rc = ota_store_release_get(st, row.release_id, &own, NULL);
	if (rc != OTA_OK)
		return rc;
	if (strcmp(rel.id, row.release_id) == 0) {
		ota_say(msg, msglen, "a roll back names an earlier release, not the rollout's own");
		return OTA_ERR_INVALID;
	}
	bool shared = false;
	for (unsigned i = 0; i < own.nhw && !shared; i++)
		shared = ota_release_runs_on(&rel, own.hw[i]);
	if (!shared) {
		ota_say(msg, msglen, "release %s %s runs on none of the hardware variants of %s %s",
		        rel.name, rel.version, own.name, own.version);
		*elig = OTA_INELIGIBLE_HW_VARIANT;
		return OTA_ERR_INVALID;
	}
	snprintf(reason, sizeof(reason), "rolled back %s devices to %s %s by %s",
	         all ? "all updated" : "the failed", rel.name, rel.version,
	         who->name ? who->name : "an operator");
	rc = ota_store_tx_begin(st);
	if (rc != OTA_OK)
		return rc;
	/* Targets first: aborting cancels the members still pending. */
	rc = ota_store_rollout_members_each(st, rollout_id, -1, target_one, &t);
	if (rc == OTA_OK && t.nomem)
		rc = OTA_ERR_NOMEM;
	struct ota_rollout_move mv = {
	    .id = rollout_id,
	    .from_mask = (1u << OTA_RS_RUNNING) | (1u << OTA_RS_PAUSED) |
	                 (1u << OTA_RS_WAITING_APPROVAL) | (1u << OTA_RS_COMPLETED),
	    .to = OTA_RS_ABORTED,
	    .new_stage = -1,
	    .reason = reason,
	    .actor = who->name,
	    .role = who->role,
	    .action = "rollout.rollback",
	    .release_id = rel.id,
	};
	if (rc == OTA_OK)
		rc = ota_rollout_transition(st, &mv, now, &was);
	if (rc == OTA_OK)
		rc = rollback_targets(st, who, rollout_id, &rel, &t, now, ndeployed, &r);
	if (rc == OTA_OK && r.nomem)
		rc = OTA_ERR_NOMEM;
	rc = ota_store_tx_finish(st, rc);
	free(t.v);
	if (rc == OTA_ERR_CONFLICT)
		ota_say(msg, msglen, "rollout %s is %s: nothing to roll back", rollout_id,
		        ota_rollout_state_name(was));
	if (rc != OTA_OK) {
		free(r.v);
		*ndeployed = 0;
		return rc;
	}
	log_notice("rollout %s: %s: %u deployments, %u devices not roll-back-able", rollout_id,
	           reason, *ndeployed, r.n);
	*refused = r.v;
	*nrefused = r.n;
	return OTA_OK;
}
