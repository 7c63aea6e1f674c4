/*
 * http/mgmt_plan.c - the plan endpoints (docs/rollouts.md, "Plan"): POST /api/v1/rollouts/plan
 * for a definition not yet created, GET /api/v1/rollouts/{id}/plan for a draft. Parse, call,
 * render: the registry is read by store/plan_store.c, the devices are judged by
 * deploy/plan.c; nothing is written, not even an audit entry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/util.h"
#include "config/config.h"
#include "http/rollouts.h"
#include "deploy/plan.h"
#include "store/plan_store.h"

static json_t *breakdown_json(const struct ota_plan_breakdown *b, unsigned stage)
{
	json_t *o = json_object();
	for (unsigned i = 0; o && i < b->nkeys; i++)
		if (b->keys[i].n[stage])
			json_object_set_new(o, b->keys[i].key, json_integer(b->keys[i].n[stage]));
	return o;
}

static void iso(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, 32, "%lld", (long long)t);
}

static json_t *plan_json(const struct ota_plan *p, bool exact, int64_t now)
{
	const struct ota_rollout_spec *s = &p->spec;
	json_t *stages = json_array(), *reasons = json_object(), *list = json_array(),
	       *wins = json_array(), *warns = json_array();
	char a[32], b[32];

	for (unsigned i = 0; stages && i < s->nstages; i++) {
		const struct ota_plan_stage *g = &p->stages[i];
		unsigned other = p->by_hw.other[i] + p->by_version.other[i] + p->by_tag.other[i];
		json_array_append_new(
		    stages,
		    json_pack(
		        "{s:i, s:f, s:i, s:i, s:o, s:o, s:o, s:i, s:{s:I, s:i, s:i, s:i, s:i, "
		        "s:b}}",
		        "stage", (int)i + 1, "percent", s->stages[i].percent_bp / 100.0, "devices",
		        (int)g->devices, "cumulative", (int)g->cumulative, "by_hw_variant",
		        breakdown_json(&p->by_hw, i), "by_version",
		        breakdown_json(&p->by_version, i), "by_tag", breakdown_json(&p->by_tag, i),
		        "other_values", (int)other, "estimate", "seconds",
		        (json_int_t)g->estimate_s, "concurrency", (int)g->concurrency, "waves",
		        (int)g->waves, "poll_interval_seconds", (int)p->poll_interval,
		        "soak_seconds", (int)s->stages[i].soak_s, "waits_for_approval",
		        i + 1 < s->nstages && !s->stages[i].auto_advance));
	}
	for (int k = 0; reasons && k < OTA_PS__COUNT; k++)
		json_object_set_new(reasons, ota_plan_skip_name((enum ota_plan_skip)k),
		                    json_integer(p->skipped[k]));
	for (unsigned i = 0; list && i < p->nskipped_list; i++)
		json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "device_id",
		                                      p->skipped_list[i].device_id, "reason",
		                                      ota_plan_skip_name(p->skipped_list[i].why),
		                                      "detail", p->skipped_list[i].detail));
	for (unsigned i = 0; wins && i < p->nwindows; i++) {
		iso(p->windows[i].opens_at, a);
		iso(p->windows[i].closes_at, b);
		json_array_append_new(
		    wins, json_pack("{s:I, s:I, s:s, s:s, s:b}", "opens_at",
		                    (json_int_t)p->windows[i].opens_at, "closes_at",
		                    (json_int_t)p->windows[i].closes_at, "opens", a, "closes", b,
		                    "open_now", p->windows[i].opens_at <= now));
	}
	for (unsigned i = 0; warns && i < p->nwarnings; i++)
		json_array_append_new(warns, json_string(p->warnings[i]));
	unsigned nskipped = 0;
	for (int k = 0; k < OTA_PS__COUNT; k++)
		nskipped += p->skipped[k];
	iso(now, a);
	return json_pack(
	    "{s:s?, s:s, s:b, s:I, s:s, s:{s:s, s:s, s:s, s:i}, s:{s:i, s:i, s:i, s:i, s:i}, "
	    "s:o, s:{s:o, s:o, s:b}, s:{s:b, s:s?, s:i, s:o}, s:o}",
	    "rollout_id", exact ? p->rollout_id : NULL, "name", s->name, "exact", exact,
	    "generated_at", (json_int_t)now, "generated", a, "release", "id", p->release.id, "name",
	    p->release.name, "version", p->release.version, "security_version",
	    (int)p->release.security_version, "devices", "considered", (int)p->considered,
	    "not_targeted", (int)p->not_targeted, "targeted", (int)p->targeted, "covered",
	    (int)p->covered, "skipped", (int)nskipped, "stages", stages, "skipped", "by_reason",
	    reasons, "devices", list, "truncated", nskipped > p->nskipped_list, "window",
	    "always_open", s->window_days == 0, "time_zone", s->window_days ? s->window_tz : NULL,
	    "days_ahead", OTA_PLAN_WINDOW_DAYS, "openings", wins, "warnings", warns);
}

/* Computes and answers the plan of s (rollout id and key given: exact membership). */
static void answer(struct ota_req *r, const struct ota_rollout_spec *s, const char *rollout_id,
                   const uint8_t key[32], bool exact)
{
	struct ota_release rel;
	struct ota_plan *p = NULL;
	const char *hw[OTA_RO_MAX_LIST];
	int64_t now = ota_clock_now();

	enum ota_err e = ota_store_release_get(r->deps->store, s->release_id, &rel, NULL);
	if (e == OTA_ERR_NOT_FOUND) {
		ota_req_fail(r, OTA_P_RELEASE_NOT_FOUND, "no release %s", s->release_id);
		return;
	}
	if (e != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the release");
		return;
	}
	/* The rule creating applies: a targeted variant must be one the release runs on. */
	for (unsigned i = 0; i < s->nhw; i++) {
		bool runs = false;
		for (unsigned k = 0; k < rel.nhw; k++)
			runs = runs || strcmp(rel.hw[k], s->hw[i]) == 0;
		if (!runs) {
			ota_req_fail(r, OTA_P_INVALID_FIELD,
			             "release %s %s does not run on hardware variant %s", rel.name,
			             rel.version, s->hw[i]);
			return;
		}
		hw[i] = s->hw[i];
	}
	p = ota_plan_new(s, &rel, rollout_id, key, r->deps->cfg->poll_interval);
	if (!p) {
		ota_req_fail(r, OTA_P_INTERNAL, "out of memory");
		return;
	}
	e = ota_store_plan_devices(r->deps->store, hw, s->nhw, ota_plan_add_cb, p);
	if (e == OTA_OK)
		e = ota_plan_finish(p, now);
	if (e == OTA_ERR_INVALID)
		ota_req_fail(r, OTA_P_INVALID_FIELD, "unknown time zone \"%s\"", s->window_tz);
	else if (e != OTA_OK)
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the fleet");
	else
		ota_req_json(r, 200, plan_json(p, exact, now));
	ota_plan_free(p);
}

void ota_h_rollout_plan(struct ota_req *r)
{
	struct ota_rollout_spec s;
	char msg[256] = "", id[OTA_RO_ID_MAX];
	uint8_t key[32];

	if (ota_rollout_spec_parse(r->body, r->body_len, &s, msg, sizeof(msg)) != OTA_OK ||
	    ota_rollout_spec_check(&s, msg, sizeof(msg)) != OTA_OK) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "%s", msg);
		return;
	}
	/* An id and a key of its own, drawn as creating the rollout would draw them. */
	if (ota_id_new("r-", id, sizeof(id)) != OTA_OK || ota_random(key, sizeof(key)) != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "no randomness");
		return;
	}
	answer(r, &s, id, key, false);
}

void ota_h_rollout_draft_plan(struct ota_req *r)
{
	struct ota_rollout_row row;
	struct ota_rollout_spec s;
	char *text = NULL;
	enum ota_err e = strlen(r->params[0]) < OTA_RO_ID_MAX
	                     ? ota_store_rollout_get(r->deps->store, r->params[0], &row, &text)
	                     : OTA_ERR_NOT_FOUND;

	if (e == OTA_OK && ota_rollout_spec_decode(text, &s) != OTA_OK)
		e = OTA_ERR_INVALID;
	free(text);
	if (e == OTA_ERR_NOT_FOUND) {
		ota_req_fail(r, OTA_P_NOT_FOUND, "no rollout %.40s", r->params[0]);
		return;
	}
	if (e != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the rollout");
		return;
	}
	if (row.state != OTA_RS_DRAFT) {
		ota_req_fail(r, OTA_P_CONFLICT,
		             "rollout %s is %s: a plan is of a draft; its progress tells the rest",
		             row.id, ota_rollout_state_name(row.state));
		return;
	}
	answer(r, &s, row.id, row.hash_key, true);
}
