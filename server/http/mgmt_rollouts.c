/*
 * http/mgmt_rollouts.c - the rollout endpoints of the management API (docs/rollouts.md,
 * docs/openapi.yaml): create from a JSON definition (unknown keys refused), list, progress,
 * the operator actions, roll back, the devices of a rollout by state in cursor pages, where
 * one device stands, and the Prometheus text exposition of every rollout's counters. Roll backs
 * go through the deployment service (deploy/deploy.h), which decides who may get the release.
 */
#include "http/rollouts.h"
#include "http/mgmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "http/mgmt.h"
#include "http/refusals.h"
#include "rollout/quiet.h"
#include "rollout/rollout.h"

/* Refuses keys of obj not in the NULL-terminated list. */
static bool only_keys(struct ota_req *r, json_t *obj, const char *where, const char *const *allowed)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v)
	{
		bool ok = false;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = strcmp(*a, k) == 0;
		if (!ok) {
			ota_req_fail(r, OTA_P_INVALID_FIELD, "unknown key \"%s\" in %s", k, where);
			return false;
		}
	}
	return true;
}

/* The definition as the API shows it: the codec's canonical JSON. */
static json_t *spec_json(const struct ota_rollout_spec *s)
{
	char *text = ota_rollout_spec_json(s);
	json_t *j = text ? json_loads(text, 0, NULL) : NULL;

	free(text);
	return j;
}

static bool rollout_id_valid(const char *s)
{
	size_t n = strlen(s);
	if (n != OTA_RO_ID_MAX - 1 || strncmp(s, "r-", 2) != 0)
		return false;
	for (size_t i = 2; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Reads rollout params[0] (and its definition); sets a problem and returns false if absent. */
static bool load(struct ota_req *r, struct ota_rollout_row *row, struct ota_rollout_spec *s)
{
	char *text = NULL;
	enum ota_err e = rollout_id_valid(r->params[0])
	                     ? ota_store_rollout_get(r->deps->store, r->params[0], row, &text)
	                     : OTA_ERR_NOT_FOUND;
	if (e == OTA_OK && s && ota_rollout_spec_decode(text, s) != OTA_OK)
		e = OTA_ERR_INVALID;
	free(text);
	if (e == OTA_ERR_NOT_FOUND)
		ota_req_fail(r, OTA_P_NOT_FOUND, "no rollout %.40s", r->params[0]);
	else if (e != OTA_OK)
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the rollout");
	return e == OTA_OK;
}

struct progress {
	json_t *stages; /* array of {stage, counts{}} */
	json_t *reasons;
};

static void add_count(void *ctx, unsigned stage, enum ota_member_state s, unsigned n)
{
	struct progress *p = ctx;
	json_t *o = json_array_get(p->stages, stage);
	if (o)
		json_object_set_new(json_object_get(o, "devices"), ota_member_state_name(s),
		                    json_integer(n));
}

static void add_reason(void *ctx, const char *reason, unsigned n)
{
	struct progress *p = ctx;
	json_array_append_new(p->reasons,
	                      json_pack("{s:s, s:i}", "reason", reason, "devices", (int)n));
}

/* The verdicts a rollout's detail shows, the newest. */
#define OTA_VERDICTS_SHOWN 20

static void add_verdict(void *ctx, const struct ota_rollout_verdict *v)
{
	json_t *numbers = json_loads(v->numbers, 0, NULL);
	json_array_append_new(
	    ctx, json_pack("{s:I, s:i, s:s, s:s, s:o, s:s}", "at", (json_int_t)v->at, "stage",
	                   (int)v->stage, "verdict", v->verdict, "rule", v->rule, "numbers",
	                   numbers ? numbers : json_object(), "reason", v->reason));
}

/* Health after the confirm (docs/rollouts.md): the regressed devices a detail lists, at most. */
#define OTA_REGRESSED_SHOWN 100

static void add_regressed(void *ctx, const char *device_id)
{
	json_array_append_new(ctx, json_string(device_id));
}

/* progress.post_confirm_health of a rollout one of whose stages watches health, over its
 * stages so far: devices that reported, those that regressed, and their ids. */
static enum ota_err post_confirm_json(struct ota_req *r, const struct ota_rollout_row *row,
                                      const struct ota_rollout_spec *s, json_t *j)
{
	bool watched = false;
	for (unsigned i = 0; i < s->nstages; i++)
		watched = watched || s->post[i].on;
	if (!watched)
		return OTA_OK;
	struct ota_health_summary h;
	json_t *ids = json_array();
	enum ota_err e = ids ? ota_store_rollout_health(r->deps->store, row->id, row->stage, &h,
	                                                OTA_REGRESSED_SHOWN, add_regressed, ids)
	                     : OTA_ERR_NOMEM;
	if (e != OTA_OK) {
		json_decref(ids);
		return e;
	}
	json_object_set_new(json_object_get(j, "progress"), "post_confirm_health",
	                    json_pack("{s:i, s:i, s:i, s:o}", "reported", (int)h.reported,
	                              "regressed", (int)h.regressed, "accepted", (int)h.accepted,
	                              "regressed_devices", ids));
	return OTA_OK;
}

static json_t *rollout_json(struct ota_req *r, const struct ota_rollout_row *row,
                            const struct ota_rollout_spec *s)
{
	int64_t now = ota_clock_now();
	json_t *j = json_pack(
	    "{s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I}", "id", row->id, "name", row->name, "state",
	    ota_rollout_state_name(row->state), "reason", row->reason, "stage", (int)row->stage + 1,
	    "created_at", (json_int_t)row->created_at, "updated_at", (json_int_t)row->updated_at,
	    "stage_started_at", (json_int_t)row->stage_started_at);
	if (!j)
		return NULL;
	json_object_set_new(j, "definition", spec_json(s));
	if (row->state != OTA_RS_DRAFT &&
	    (row->state == OTA_RS_RUNNING || row->state == OTA_RS_PAUSED ||
	     row->state == OTA_RS_WAITING_APPROVAL))
		json_object_set_new(j, "time_in_stage_seconds",
		                    json_integer(now - row->stage_started_at));
	struct progress p = {.stages = json_array(), .reasons = json_array()};
	for (unsigned i = 0; p.stages && i < s->nstages; i++) {
		json_t *d = json_object();
		for (int m = 0; d && m < OTA_MS__COUNT; m++)
			json_object_set_new(d, ota_member_state_name((enum ota_member_state)m),
			                    json_integer(0));
		json_array_append_new(p.stages,
		                      json_pack("{s:i, s:f, s:o}", "stage", (int)i + 1, "percent",
		                                s->stages[i].percent_bp / 100.0, "devices", d));
	}
	unsigned active = 0;
	if (ota_store_rollout_counts_all(r->deps->store, row->id, add_count, &p) != OTA_OK ||
	    ota_store_rollout_reasons(r->deps->store, row->id, 20, add_reason, &p) != OTA_OK ||
	    ota_store_rollout_active(r->deps->store, row->id, "", &active) != OTA_OK) {
		json_decref(p.stages);
		json_decref(p.reasons);
		json_decref(j);
		return NULL;
	}
	json_t *totals = json_object();
	size_t i;
	json_t *st;
	json_array_foreach(p.stages, i, st)
	{
		const char *k;
		json_t *v;
		json_object_foreach(json_object_get(st, "devices"), k, v)
		{
			json_int_t had = json_integer_value(json_object_get(totals, k));
			json_object_set_new(totals, k, json_integer(had + json_integer_value(v)));
		}
	}
	json_object_set_new(j, "progress",
	                    json_pack("{s:o, s:o, s:o, s:i}", "stages", p.stages, "totals", totals,
	                              "failure_reasons", p.reasons, "updating", (int)active));
	/* The engine's verdicts, newest first: why the rollout moved. */
	json_t *verdicts = json_array();
	if (ota_store_rollout_verdicts(r->deps->store, row->id, OTA_VERDICTS_SHOWN, add_verdict,
	                               verdicts) != OTA_OK) {
		json_decref(verdicts);
		json_decref(j);
		return NULL;
	}
	json_object_set_new(j, "verdicts", verdicts);
	if (post_confirm_json(r, row, s, j) != OTA_OK) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* Answers a rollout as GET shows it, progress and verdicts included: so do the writes. */
static void answer_rollout(struct ota_req *r, unsigned status, const struct ota_rollout_row *row,
                           const struct ota_rollout_spec *s)
{
	json_t *j = rollout_json(r, row, s);

	if (!j) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the rollout's progress");
		return;
	}
	ota_req_json(r, status, j);
}

void ota_h_rollout_create(struct ota_req *r)
{
	struct ota_rollout_spec s;
	struct ota_rollout_row row;
	char id[OTA_RO_ID_MAX], msg[256] = "";

	char why[256] = "";
	if (ota_rollout_spec_parse(r->body, r->body_len, &s, why, sizeof(why)) != OTA_OK) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "%s", why);
		return;
	}
	enum ota_err e =
	    ota_rollout_create(r->deps->store, &s, r->who->name, ota_auth_role_name(r->who->role),
	                       ota_clock_now(), id, msg, sizeof(msg));
	if (e == OTA_ERR_NOT_FOUND) {
		ota_req_fail(r, OTA_P_RELEASE_NOT_FOUND, "%s", msg);
		return;
	}
	if (e == OTA_ERR_INVALID) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "%s", msg);
		return;
	}
	if (e != OTA_OK || ota_store_rollout_get(r->deps->store, id, &row, NULL) != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot create the rollout");
		return;
	}
	log_notice("rollout %s \"%s\" created by %s", id, s.name, r->who->name);
	answer_rollout(r, 201, &row, &s);
}

static int list_one(void *ctx, const struct ota_rollout_row *row, const char *text)
{
	struct ota_rollout_spec s;
	json_t *j =
	    json_pack("{s:s, s:s, s:s, s:s, s:i, s:I}", "id", row->id, "name", row->name, "state",
	              ota_rollout_state_name(row->state), "release_id", row->release_id, "stage",
	              (int)row->stage + 1, "created_at", (json_int_t)row->created_at);
	if (j && ota_rollout_spec_decode(text, &s) == OTA_OK)
		json_object_set_new(j, "stages", json_integer(s.nstages));
	ota_page_add(ctx, j, row->created_at, row->id);
	return 0;
}

void ota_h_rollout_list(struct ota_req *r)
{
	const char *state = ota_q(r, "state");
	struct ota_page p;
	int st = -1;

	if (!ota_page_open(r, &p, OTA_PAGE_AT_ID))
		return;
	if (state && (st = ota_rollout_state_parse(state)) < 0) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "unknown rollout state \"%.32s\"", state);
		return;
	}
	ota_page_send(r, &p,
	              ota_store_rollout_page(r->deps->store, st, p.after.id ? &p.after : NULL,
	                                     p.limit, list_one, &p, &p.more),
	              "the rollouts");
}

void ota_h_rollout_get(struct ota_req *r)
{
	struct ota_rollout_row row;
	struct ota_rollout_spec s;

	if (!load(r, &row, &s))
		return;
	/* A read never judges: otad's ticker does (ota_rollout_tick). */
	answer_rollout(r, 200, &row, &s);
}

static void act(struct ota_req *r, enum ota_rollout_action a)
{
	struct ota_rollout_row row;
	struct ota_rollout_spec s;
	const char *reason = NULL;
	char msg[256] = "";
	static const char *const keys[] = {"reason", NULL};

	if (!only_keys(r, r->json, "the request", keys) ||
	    !ota_json_str(r, r->json, "reason", false, 0, 160, &reason) || !load(r, &row, NULL))
		return;
	enum ota_err e =
	    ota_rollout_act(r->deps->store, row.id, a, reason, r->who->name,
	                    ota_auth_role_name(r->who->role), ota_clock_now(), msg, sizeof(msg));
	if (e == OTA_ERR_CONFLICT) {
		ota_req_fail(r, OTA_P_CONFLICT, "%s", msg);
		return;
	}
	if (e == OTA_OK && a == OTA_RA_APPROVE)
		e = ota_rollout_evaluate(r->deps->store, row.id, ota_clock_now());
	if (e != OTA_OK || !load(r, &row, &s)) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot change the rollout");
		return;
	}
	answer_rollout(r, 200, &row, &s);
}

void ota_h_rollout_start(struct ota_req *r)
{
	act(r, OTA_RA_START);
}

void ota_h_rollout_pause(struct ota_req *r)
{
	act(r, OTA_RA_PAUSE);
}

void ota_h_rollout_resume(struct ota_req *r)
{
	act(r, OTA_RA_RESUME);
}

void ota_h_rollout_approve(struct ota_req *r)
{
	act(r, OTA_RA_APPROVE);
}

void ota_h_rollout_abort(struct ota_req *r)
{
	act(r, OTA_RA_ABORT);
}

void ota_h_rollout_rollback(struct ota_req *r)
{
	static const char *const keys[] = {"release_id", "devices", NULL};
	struct ota_rollout_row row;
	const char *release, *which = NULL;
	struct ota_rollback_refusal *ref = NULL;
	unsigned deployed = 0, nref = 0;
	enum ota_eligibility elig;
	char msg[256] = "", via[48];

	if (!only_keys(r, r->json, "the request", keys) ||
	    !ota_json_str(r, r->json, "release_id", true, 64, 64, &release) ||
	    !ota_json_str(r, r->json, "devices", false, 1, 8, &which))
		return;
	if (which && strcmp(which, "failed") != 0 && strcmp(which, "all") != 0) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "\"devices\" must be \"failed\" or \"all\"");
		return;
	}
	if (!load(r, &row, NULL))
		return;
	struct ota_actor who = ota_mgmt_actor(r, via, sizeof(via));
	enum ota_err e = ota_deploy_rollback(r->deps->store, &who, row.id, release,
	                                     which && strcmp(which, "all") == 0, ota_clock_now(),
	                                     &deployed, &ref, &nref, &elig, msg, sizeof(msg));
	if (e == OTA_ERR_NOT_FOUND)
		ota_req_fail(r, OTA_P_RELEASE_NOT_FOUND, "%s", msg);
	else if (e == OTA_ERR_INVALID)
		ota_req_fail(r,
		             elig != OTA_ELIGIBLE ? ota_problem_from_eligibility(elig)
		                                  : OTA_P_INVALID_FIELD,
		             "%s", msg);
	else if (e == OTA_ERR_CONFLICT)
		ota_req_fail(r, OTA_P_CONFLICT, "%s", msg);
	else if (e != OTA_OK)
		ota_req_fail(r, OTA_P_INTERNAL, "cannot roll back");
	if (e != OTA_OK)
		return;
	json_t *nr = json_array();
	for (unsigned i = 0; nr && i < nref; i++)
		json_array_append_new(nr, json_pack("{s:s, s:s}", "device_id", ref[i].device_id,
		                                    "reason", ref[i].reason));
	free(ref);
	ota_req_json(r, 200,
	             json_pack("{s:s, s:s, s:i, s:o}", "rollout_id", row.id, "release_id", release,
	                       "deployments_created", (int)deployed, "not_roll_back_able", nr));
}

/* A rollout member as GET answers it, in a list and alone. */
static json_t *member_json(const struct ota_rollout_member *m)
{
	json_t *j = json_pack("{s:s, s:i, s:s, s:s, s:s, s:i, s:I}", "device_id", m->device_id,
	                      "stage", (int)m->stage + 1, "state", ota_member_state_name(m->state),
	                      "reason", m->reason, "deployment_id", m->deployment_id, "attempts",
	                      (int)m->attempts, "updated_at", (json_int_t)m->updated_at);
	if (j && m->next_attempt_at &&
	    (m->state == OTA_MS_FAILED || m->state == OTA_MS_ROLLED_BACK))
		json_object_set_new(j, "next_attempt_at", json_integer(m->next_attempt_at));
	return j;
}

static void member_one(void *ctx, const struct ota_rollout_member *m)
{
	ota_page_add(ctx, member_json(m), 0, m->device_id);
}

void ota_h_rollout_devices(struct ota_req *r)
{
	struct ota_rollout_row row;
	const char *state = ota_q(r, "state");
	struct ota_page p;
	int st = -1;

	if (!ota_page_open(r, &p, OTA_PAGE_ID))
		return;
	if (state && (st = ota_member_state_parse(state)) < 0) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "unknown device state \"%.32s\"", state);
		return;
	}
	if (!load(r, &row, NULL))
		return;
	ota_page_send(r, &p,
	              ota_store_rollout_members(r->deps->store, row.id, st, p.after.id, p.limit,
	                                        member_one, &p, &p.more),
	              "the devices");
}

void ota_h_rollout_device(struct ota_req *r)
{
	struct ota_rollout_row row;
	struct ota_rollout_spec s;
	struct ota_rollout_member m;
	const char *dev = r->params[1];

	if (!load(r, &row, &s))
		return;
	unsigned bucket = ota_rollout_bucket(row.hash_key, row.id, dev);
	int stage = ota_rollout_stage_of(&s, bucket);
	json_t *j = json_pack("{s:s, s:s, s:f, s:i}", "rollout_id", row.id, "device_id", dev,
	                      "position_percent", bucket / 100.0, "joins_in_stage", stage + 1);
	enum ota_err e = ota_store_rollout_member_get(r->deps->store, row.id, dev, &m);
	if (e == OTA_OK) {
		json_object_set_new(j, "member", member_json(&m));
	} else if (e != OTA_ERR_NOT_FOUND) {
		json_decref(j);
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the device's membership");
		return;
	}
	ota_req_json(r, 200, j);
}

/* ---- Prometheus ---- */

struct metrics {
	char *buf;
	size_t len, cap;
	bool nomem;
	struct ota_store *st;
	const char *id;
	int64_t now;
};

/* Ended rollouts stay in /metrics this long (docs/rollouts.md, "Progress"). */
#define OTA_METRICS_ENDED_S 86400

static void out(struct metrics *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(struct metrics *m, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(m->buf + m->len, m->cap - m->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			m->nomem = true;
			return;
		}
		if ((size_t)n < m->cap - m->len) {
			m->len += (size_t)n;
			return;
		}
		char *p = realloc(m->buf, m->cap * 2 + (size_t)n);
		if (!p) {
			m->nomem = true;
			return;
		}
		m->buf = p;
		m->cap = m->cap * 2 + (size_t)n;
	}
}

static void metric_count(void *ctx, unsigned stage, enum ota_member_state s, unsigned n)
{
	struct metrics *m = ctx;
	out(m, "ota_rollout_devices{rollout=\"%s\",stage=\"%u\",state=\"%s\"} %u\n", m->id,
	    stage + 1, ota_member_state_name(s), n);
}

static int metric_rollout(void *ctx, const struct ota_rollout_row *row, const char *text)
{
	struct metrics *m = ctx;
	unsigned active = 0;
	(void)text;
	/* Bounded: running, paused and waiting rollouts, and those ended in the last day. */
	bool ended = row->state == OTA_RS_COMPLETED || row->state == OTA_RS_ABORTED;
	if (row->state == OTA_RS_DRAFT || (ended && row->updated_at < m->now - OTA_METRICS_ENDED_S))
		return 0;
	for (int s = 0; s < OTA_RS__COUNT; s++)
		out(m, "ota_rollout_state{rollout=\"%s\",state=\"%s\"} %d\n", row->id,
		    ota_rollout_state_name((enum ota_rollout_state)s), (int)row->state == s);
	out(m, "ota_rollout_stage{rollout=\"%s\"} %u\n", row->id, row->stage + 1);
	if (ota_store_rollout_active(m->st, row->id, "", &active) == OTA_OK)
		out(m, "ota_rollout_updating{rollout=\"%s\"} %u\n", row->id, active);
	m->id = row->id;
	if (ota_store_rollout_counts_all(m->st, row->id, metric_count, m) != OTA_OK)
		m->nomem = true;
	return 0;
}

static void out_v(void *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_v(void *ctx, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	out(ctx, "%s", line);
}

/* Refused clients and storage faults (docs/operations.md, "Refusals and limits"). */
static void metrics_hostile(struct ota_req *r, struct metrics *m)
{
	if (r->deps->refusals)
		ota_refusals_metrics(r->deps->refusals, out_v, m);
	out(m,
	    "# HELP ota_storage_faults_total Storage failures: a full or failing disk, or the "
	    "database out of reach.\n"
	    "# TYPE ota_storage_faults_total counter\nota_storage_faults_total %llu\n",
	    ota_storage_fault_count());
}

void ota_h_metrics(struct ota_req *r)
{
	struct metrics m = {.cap = 4096, .st = r->deps->store, .now = ota_clock_now()};

	m.buf = malloc(m.cap);
	if (!m.buf) {
		ota_req_fail(r, OTA_P_INTERNAL, "out of memory");
		return;
	}
	m.buf[0] = '\0';
	out(&m, "# HELP ota_up otad is serving.\n# TYPE ota_up gauge\nota_up 1\n");
	out(&m, "# HELP ota_rollout_state 1 for the state each rollout is in.\n"
	        "# TYPE ota_rollout_state gauge\n"
	        "# HELP ota_rollout_stage The stage each rollout is at (1 = first).\n"
	        "# TYPE ota_rollout_stage gauge\n"
	        "# HELP ota_rollout_updating Devices of the rollout updating now.\n"
	        "# TYPE ota_rollout_updating gauge\n"
	        "# HELP ota_rollout_devices Devices of the rollout by stage and state.\n"
	        "# TYPE ota_rollout_devices gauge\n");
	metrics_hostile(r, &m);
	unsigned long long groups, writes;
	ota_store_group_stats(r->deps->store, &groups, &writes);
	out(&m,
	    "# HELP ota_store_groups_total Group commits (one transaction, one flush each).\n"
	    "# TYPE ota_store_groups_total counter\nota_store_groups_total %llu\n"
	    "# HELP ota_store_group_writes_total Writes (device reports) committed in the groups.\n"
	    "# TYPE ota_store_group_writes_total counter\nota_store_group_writes_total %llu\n",
	    groups, writes);
	uint64_t skipped, walked;
	ota_quiet_counts(&skipped, &walked);
	out(&m,
	    "# HELP ota_checkin_rollout_walks_total Check-ins without an active deployment while "
	    "rollouts run: walked through the rollouts, or skipped (nothing due, "
	    "rollout/quiet.c).\n"
	    "# TYPE ota_checkin_rollout_walks_total counter\n"
	    "ota_checkin_rollout_walks_total{result=\"walked\"} %llu\n"
	    "ota_checkin_rollout_walks_total{result=\"skipped\"} %llu\n",
	    (unsigned long long)walked, (unsigned long long)skipped);
	uint64_t remembered, from_store;
	ota_store_deployment_reads(&remembered, &from_store);
	out(&m,
	    "# HELP ota_store_active_deployment_reads_total Lookups of a device's active "
	    "deployment: read from the store, or answered from memory (the device was found with "
	    "none and no deployment was created for it since).\n"
	    "# TYPE ota_store_active_deployment_reads_total counter\n"
	    "ota_store_active_deployment_reads_total{result=\"read\"} %llu\n"
	    "ota_store_active_deployment_reads_total{result=\"skipped\"} %llu\n",
	    (unsigned long long)from_store, (unsigned long long)remembered);
	if (ota_store_rollout_list(r->deps->store, -1, metric_rollout, &m) != OTA_OK || m.nomem) {
		free(m.buf);
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the metrics");
		return;
	}
	r->response = MHD_create_response_from_buffer(m.len, m.buf, MHD_RESPMEM_MUST_FREE);
	if (!r->response) {
		free(m.buf);
		ota_req_fail(r, OTA_P_INTERNAL, "out of memory");
		return;
	}
	MHD_add_response_header(r->response, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        "text/plain; version=0.0.4");
	r->status = 200;
}
