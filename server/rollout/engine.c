/*
 * rollout/engine.c - the rollout engine: turns the pure decisions of rollout.c into store
 * transactions. At a check-in it walks the running rollouts (a handful, whatever the fleet's
 * size), judges each one's current stage from its counters, and offers the device the first
 * release that wants it now; operator actions and roll backs are state transitions checked
 * inside the transaction that applies them.
 */
#include "rollout/rollout.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "audit/audit.h"
#include "common/log.h"

static void say(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;
	if (!msg || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
}

/* The store's auditor: the audit log, in the transaction of the change. */
static enum ota_err audit_append(struct ota_store *st, const struct ota_rollout_audit *a,
                                 int64_t now)
{
	struct ota_audit_entry e = {
	    .actor = a->actor ? a->actor : "otad",
	    .role = a->role ? a->role : "system",
	    .action = a->action,
	    .device_id = a->device_id,
	    .rollout_id = a->rollout_id,
	    .release_id = a->release_id,
	    .object = a->object,
	    .detail = a->detail,
	};
	return ota_audit_append(st, &e, now, NULL);
}

/* Every write of the engine: one store transaction that its audit entries join. */
static enum ota_err tx_begin(struct ota_store *st)
{
	ota_store_rollout_set_auditor(audit_append);
	return ota_store_tx_begin(st);
}

static enum ota_err tx_end(struct ota_store *st, enum ota_err rc)
{
	enum ota_err e = ota_store_tx_end(st, rc == OTA_OK);
	return rc != OTA_OK ? rc : e;
}

static enum ota_err random_id(const char *prefix, char *out, size_t cap)
{
	uint8_t rnd[16];
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return OTA_ERR_IO;
	snprintf(out, cap, "%s", prefix);
	for (unsigned i = 0; i < sizeof(rnd) && strlen(out) + 3 <= cap; i++)
		snprintf(out + strlen(out), 3, "%02x", rnd[i]);
	return OTA_OK;
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
		say(msg, msglen, "no release %s", s->release_id);
	if (rc != OTA_OK)
		return rc;
	/* Targeted variants must be ones the release runs on. */
	for (unsigned i = 0; i < s->nhw; i++) {
		bool runs = false;
		for (unsigned k = 0; k < rel.nhw; k++)
			runs = runs || strcmp(rel.hw[k], s->hw[i]) == 0;
		if (!runs) {
			say(msg, msglen, "release %s %s does not run on hardware variant %s",
			    rel.name, rel.version, s->hw[i]);
			return OTA_ERR_INVALID;
		}
	}
	memset(&row, 0, sizeof(row));
	rc = random_id("r-", row.id, sizeof(row.id));
	if (rc == OTA_OK &&
	    getrandom(row.hash_key, sizeof(row.hash_key), 0) != (ssize_t)sizeof(row.hash_key))
		rc = OTA_ERR_IO;
	if (rc != OTA_OK)
		return rc;
	snprintf(row.name, sizeof(row.name), "%s", s->name);
	snprintf(row.release_id, sizeof(row.release_id), "%s", s->release_id);
	row.retry_attempts = s->retry_attempts;
	row.retry_backoff = s->retry_backoff_s;
	row.created_at = now;
	text = ota_rollout_spec_encode(s);
	if (!text)
		return OTA_ERR_NOMEM;
	rc = tx_begin(st);
	if (rc == OTA_OK)
		rc = tx_end(st, ota_store_rollout_insert(st, &row, text, actor, role));
	free(text);
	if (rc == OTA_OK)
		memcpy(id, row.id, OTA_RO_ID_MAX);
	return rc;
}

#define BIT(s) (1u << (s))

enum ota_err ota_rollout_act(struct ota_store *st, const char *id, enum ota_rollout_action a,
                             const char *reason, const char *actor, const char *role, int64_t now,
                             char *msg, size_t msglen)
{
	struct ota_rollout_row row;
	enum ota_rollout_state was;
	unsigned mask = 0;
	enum ota_rollout_state to = OTA_RS_RUNNING;
	int stage = -1;
	bool ack = false;
	char why[OTA_REASON_MAX + 1];

	enum ota_err rc = ota_store_rollout_get(st, id, &row, NULL);
	if (rc != OTA_OK)
		return rc;
	switch (a) {
	case OTA_RA_START:
		mask = BIT(OTA_RS_DRAFT);
		stage = 0;
		snprintf(why, sizeof(why), "started");
		break;
	case OTA_RA_PAUSE:
		mask = BIT(OTA_RS_RUNNING) | BIT(OTA_RS_WAITING_APPROVAL);
		to = OTA_RS_PAUSED;
		snprintf(why, sizeof(why), "paused by %s%s%s", actor ? actor : "an operator",
		         reason && reason[0] ? ": " : "", reason ? reason : "");
		break;
	case OTA_RA_RESUME:
		mask = BIT(OTA_RS_PAUSED);
		ack = true; /* the failures seen so far were looked at */
		snprintf(why, sizeof(why), "resumed");
		break;
	case OTA_RA_APPROVE:
		mask = BIT(OTA_RS_WAITING_APPROVAL);
		stage = (int)row.stage + 1;
		snprintf(why, sizeof(why), "stage %d approved by %s", stage + 1,
		         actor ? actor : "an operator");
		break;
	case OTA_RA_ABORT:
		mask = BIT(OTA_RS_DRAFT) | BIT(OTA_RS_RUNNING) | BIT(OTA_RS_PAUSED) |
		       BIT(OTA_RS_WAITING_APPROVAL);
		to = OTA_RS_ABORTED;
		snprintf(why, sizeof(why), "aborted by %s%s%s", actor ? actor : "an operator",
		         reason && reason[0] ? ": " : "", reason ? reason : "");
		break;
	default:
		return OTA_ERR_INVALID;
	}
	rc = tx_begin(st);
	if (rc == OTA_OK)
		rc = tx_end(st, ota_store_rollout_transition(st, id, mask, to, why, stage, ack,
		                                             actor, role, now, &was));
	if (rc == OTA_ERR_CONFLICT)
		say(msg, msglen, "rollout %s is %s", id, ota_rollout_state_name(was));
	if (rc == OTA_OK)
		log_notice("rollout %s: %s", id, why);
	return rc;
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
	rc = ota_store_rollout_counts(st, row->id, row->stage, &c);
	if (rc != OTA_OK)
		return rc;
	enum ota_verdict v =
	    ota_rollout_judge(s, row->stage, &c, row->ack_failures, row->ack_finished,
	                      row->stage_started_at, now, why, sizeof(why));
	const unsigned from = BIT(OTA_RS_RUNNING);
	enum ota_rollout_state to = OTA_RS_RUNNING;
	int stage = -1;
	switch (v) {
	case OTA_V_HOLD:
		return OTA_OK;
	case OTA_V_HALT:
		to = OTA_RS_PAUSED;
		break;
	case OTA_V_ADVANCE:
		stage = (int)row->stage + 1;
		break;
	case OTA_V_WAIT_APPROVAL:
		to = OTA_RS_WAITING_APPROVAL;
		break;
	case OTA_V_COMPLETE:
		to = OTA_RS_COMPLETED;
		break;
	}
	rc = tx_begin(st);
	if (rc == OTA_OK)
		rc = tx_end(st, ota_store_rollout_transition(st, row->id, from, to, why, stage,
		                                             false, NULL, NULL, now, NULL));
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

struct checkin_ctx {
	struct ota_store *st;
	const struct ota_rollout_device *d;
	int64_t now;
	bool offered;
	enum ota_err rc;
};

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

static int checkin_one(void *vctx, const struct ota_rollout_row *row, const char *text)
{
	struct checkin_ctx *c = vctx;
	const struct ota_rollout_device *d = c->d;
	struct ota_rollout_spec s;
	struct ota_rollout_row now_row = *row;
	struct ota_release rel;
	char skip[OTA_REASON_MAX + 1] = "", did[OTA_DEPLOYMENT_ID_MAX];
	bool open;

	if (ota_rollout_spec_decode(text, &s) != OTA_OK) {
		log_err("rollout %s: its stored definition cannot be read", row->id);
		return 0;
	}
	c->rc = judge_and_apply(c->st, row, &s, c->now);
	if (c->rc != OTA_OK)
		return 1;
	c->rc = ota_store_rollout_get(c->st, row->id, &now_row, NULL);
	if (c->rc != OTA_OK)
		return 1;
	if (now_row.state != OTA_RS_RUNNING)
		return 0;
	/* Membership: the stages up to the current one cover this device's bucket. */
	unsigned bucket = ota_rollout_bucket(row->hash_key, row->id, d->id);
	if (bucket >= s.stages[now_row.stage].percent_bp)
		return 0;
	if (!ota_rollout_matches(&s, d, NULL, 0))
		return 0;
	/* A member with nothing due (the common case once it joined) costs one read, no write. */
	struct ota_rollout_member m;
	enum ota_err e = ota_store_rollout_member_get(c->st, row->id, d->id, &m);
	if (e == OTA_OK) {
		bool due = (m.state == OTA_MS_FAILED || m.state == OTA_MS_ROLLED_BACK) &&
		           m.attempts < s.retry_attempts && m.next_attempt_at <= c->now;
		if (!due)
			return 0;
	} else if (e != OTA_ERR_NOT_FOUND) {
		c->rc = e;
		return 1;
	}
	c->rc = ota_store_release_get(c->st, row->release_id, &rel, NULL);
	if (c->rc != OTA_OK)
		return 1;
	bool runs = false;
	for (unsigned i = 0; i < rel.nhw; i++)
		runs = runs || strcmp(rel.hw[i], d->hw_variant) == 0;
	if (!runs)
		return 0;
	if (rel.security_version < d->security_floor)
		snprintf(skip, sizeof(skip),
		         "below floor: release security_version %u, device floor %u",
		         rel.security_version, d->security_floor);
	else if (strcmp(rel.version, d->version) == 0)
		snprintf(skip, sizeof(skip), "already runs %s", rel.version);
	if (!skip[0]) {
		c->rc = ota_rollout_window_open(&s, c->now, &open);
		if (c->rc != OTA_OK)
			return 1;
		if (!open)
			return 0; /* told to wait: nothing now, asked again at the next poll */
	}
	c->rc = ota_rollout_random_deployment_id(did);
	if (c->rc != OTA_OK)
		return 1;
	struct ota_rollout_join j = {
	    .rollout_id = row->id,
	    .stage = now_row.stage,
	    .device_id = d->id,
	    .deployment_id = did,
	    .release_id = row->release_id,
	    .skip_reason = skip[0] ? skip : NULL,
	    .max_active = s.max_active,
	    .scope = budget_scope(&s, d),
	    .max_active_per_tag = s.max_active_per_tag,
	    .now = c->now,
	};
	enum ota_join_result res;
	c->rc = tx_begin(c->st);
	if (c->rc == OTA_OK)
		c->rc = tx_end(c->st, ota_store_rollout_join(c->st, &j, &res));
	if (c->rc != OTA_OK)
		return 1;
	if (res == OTA_JOIN_OFFERED) {
		c->offered = true;
		return 1;
	}
	/* A device busy with another deployment stays there; nothing else will offer. */
	return res == OTA_JOIN_BUSY;
}

enum ota_err ota_rollout_random_deployment_id(char id[OTA_DEPLOYMENT_ID_MAX])
{
	return random_id("d-", id, OTA_DEPLOYMENT_ID_MAX);
}

enum ota_err ota_rollout_checkin(struct ota_store *st, const struct ota_rollout_device *d,
                                 int64_t now, bool *offered)
{
	struct checkin_ctx c = {.st = st, .d = d, .now = now, .rc = OTA_OK};
	enum ota_err rc = ota_store_rollout_list(st, OTA_RS_RUNNING, checkin_one, &c);

	*offered = c.offered;
	return rc != OTA_OK ? rc : c.rc;
}

struct refusals {
	struct ota_rollback_refusal *v;
	unsigned n, cap;
	bool nomem;
};

static void refuse(void *ctx, const char *device_id, const char *why)
{
	struct refusals *r = ctx;
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

enum ota_err ota_rollout_rollback(struct ota_store *st, const char *id, const char *release_id,
                                  bool all, const char *actor, const char *role, int64_t now,
                                  unsigned *ndeployed, struct ota_rollback_refusal **refused,
                                  unsigned *nrefused, char *msg, size_t msglen)
{
	struct ota_release rel;
	struct ota_rollout_row row;
	struct refusals r = {0};
	char reason[OTA_REASON_MAX + 1];

	*refused = NULL;
	*nrefused = 0;
	*ndeployed = 0;
	enum ota_err rc = ota_store_rollout_get(st, id, &row, NULL);
	if (rc != OTA_OK)
		return rc;
	rc = ota_store_release_get(st, release_id, &rel, NULL);
	if (rc == OTA_ERR_NOT_FOUND)
		say(msg, msglen, "no release %s", release_id);
	if (rc != OTA_OK)
		return rc;
	if (strcmp(rel.id, row.release_id) == 0) {
		say(msg, msglen, "a roll back names an earlier release, not the rollout's own");
		return OTA_ERR_INVALID;
	}
	snprintf(reason, sizeof(reason), "rolled back %s devices to %s %s by %s",
	         all ? "all updated" : "the failed", rel.name, rel.version,
	         actor ? actor : "an operator");
	rc = tx_begin(st);
	if (rc == OTA_OK)
		rc = tx_end(st, ota_store_rollout_rollback(st, id, release_id, rel.security_version,
		                                           all, reason, actor, role, now, ndeployed,
		                                           refuse, &r));
	if (rc == OTA_ERR_CONFLICT)
		say(msg, msglen, "rollout %s is %s: nothing to roll back", id,
		    ota_rollout_state_name(row.state));
	if (rc == OTA_OK && r.nomem)
		rc = OTA_ERR_NOMEM;
	if (rc != OTA_OK) {
		free(r.v);
		return rc;
	}
	log_notice("rollout %s: %s: %u deployments, %u devices not roll-back-able", id, reason,
	           *ndeployed, r.n);
	*refused = r.v;
	*nrefused = r.n;
	return OTA_OK;
}
