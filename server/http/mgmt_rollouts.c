/*
 * http/mgmt_rollouts.c - the rollout endpoints of the management API (docs/rollouts.md,
 * docs/openapi.yaml): create from a JSON definition (unknown keys refused), list, progress,
 * the operator actions, roll back, the devices of a rollout by state in cursor pages, where
 * one device stands, and the Prometheus text exposition of every rollout's counters.
 */
#include "http/rollouts.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "http/mgmt.h"
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

static bool object_or_absent(struct ota_req *r, json_t *parent, const char *key, json_t **out)
{
	*out = json_object_get(parent, key);
	if (*out && json_is_null(*out))
		*out = NULL;
	if (*out && !json_is_object(*out)) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "\"%s\" must be an object", key);
		return false;
	}
	return true;
}

/* A JSON array of strings into a fixed table. */
static bool str_list(struct ota_req *r, json_t *parent, const char *key, size_t maxlen, char *table,
                     size_t stride, unsigned *n)
{
	json_t *a = json_object_get(parent, key), *v;
	size_t i;

	*n = 0;
	if (!a || json_is_null(a))
		return true;
	if (!json_is_array(a) || json_array_size(a) > OTA_RO_MAX_LIST) {
		ota_req_fail(r, OTA_P_INVALID_FIELD,
		             "\"%s\" must be an array of at most %d strings", key, OTA_RO_MAX_LIST);
		return false;
	}
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v) || json_string_length(v) < 1 ||
		    json_string_length(v) > maxlen ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			ota_req_fail(r, OTA_P_INVALID_FIELD,
			             "\"%s\" items must be strings of 1 to %zu characters", key,
			             maxlen);
			return false;
		}
		snprintf(table + i * stride, stride, "%s", json_string_value(v));
		(*n)++;
	}
	return true;
}

static const char *const day_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static bool parse_spec(struct ota_req *r, json_t *b, struct ota_rollout_spec *s)
{
	static const char *const top[] = {"name",  "release_id", "target", "stages",
	                                  "retry", "window",     "budget", NULL};
	static const char *const tgt[] = {"hw_variants", "baseline", "tags", NULL};
	static const char *const base[] = {"versions", "range", NULL};
	static const char *const tags[] = {"all", "any", NULL};
	static const char *const stg[] = {
	    "percent",      "success_threshold", "on_success", "failure_threshold",
	    "min_finished", "soak_seconds",      NULL};
	static const char *const rty[] = {"attempts", "backoff_seconds", NULL};
	static const char *const win[] = {"days", "start", "duration_minutes", "time_zone", NULL};
	static const char *const bud[] = {"max_updating", "per_tag", NULL};
	static const char *const ptg[] = {"key", "max_updating", NULL};
	const char *name, *rel, *range = NULL, *str;
	json_t *target, *baseline = NULL, *tg = NULL, *retry, *window, *budget, *per_tag = NULL;
	uint64_t u;

	memset(s, 0, sizeof(*s));
	if (!only_keys(r, b, "the rollout", top) ||
	    !ota_json_str(r, b, "name", true, 1, OTA_ID_MAX, &name) ||
	    !ota_json_str(r, b, "release_id", true, 64, 64, &rel) ||
	    !object_or_absent(r, b, "target", &target) ||
	    !object_or_absent(r, b, "retry", &retry) ||
	    !object_or_absent(r, b, "window", &window) ||
	    !object_or_absent(r, b, "budget", &budget))
		return false;
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->release_id, sizeof(s->release_id), "%s", rel);
	if (target) {
		if (!only_keys(r, target, "\"target\"", tgt) ||
		    !str_list(r, target, "hw_variants", 32, &s->hw[0][0], sizeof(s->hw[0]),
		              &s->nhw) ||
		    !object_or_absent(r, target, "baseline", &baseline) ||
		    !object_or_absent(r, target, "tags", &tg))
			return false;
		if (baseline && (!only_keys(r, baseline, "\"target.baseline\"", base) ||
		                 !str_list(r, baseline, "versions", OTA_ID_MAX, &s->baseline[0][0],
		                           sizeof(s->baseline[0]), &s->nbaseline) ||
		                 !ota_json_str(r, baseline, "range", false, 1,
		                               sizeof(s->baseline_range) - 1, &range)))
			return false;
		if (range)
			snprintf(s->baseline_range, sizeof(s->baseline_range), "%s", range);
		if (tg && (!only_keys(r, tg, "\"target.tags\"", tags) ||
		           !str_list(r, tg, "all", OTA_RO_TAG_MAX, &s->tags_all[0][0],
		                     sizeof(s->tags_all[0]), &s->ntags_all) ||
		           !str_list(r, tg, "any", OTA_RO_TAG_MAX, &s->tags_any[0][0],
		                     sizeof(s->tags_any[0]), &s->ntags_any)))
			return false;
	}
	json_t *stages = json_object_get(b, "stages"), *g;
	size_t i;
	if (!json_is_array(stages) || json_array_size(stages) < 1 ||
	    json_array_size(stages) > OTA_RO_MAX_STAGES) {
		ota_req_fail(r, OTA_P_INVALID_FIELD,
		             "\"stages\" must be an array of 1 to %d stages", OTA_RO_MAX_STAGES);
		return false;
	}
	json_array_foreach(stages, i, g)
	{
		struct ota_rollout_stage *st = &s->stages[i];
		if (!json_is_object(g)) {
			ota_req_fail(r, OTA_P_INVALID_FIELD, "each stage must be an object");
			return false;
		}
		json_t *p = json_object_get(g, "percent");
		if (!only_keys(r, g, "a stage", stg))
			return false;
		if (!json_is_number(p) || json_number_value(p) < 0.01 ||
		    json_number_value(p) > 100) {
			ota_req_fail(r, OTA_P_INVALID_FIELD,
			             "stage %zu: \"percent\" must be a number from 0.01 to 100",
			             i + 1);
			return false;
		}
		st->percent_bp = (unsigned)(json_number_value(p) * 100 + 0.5);
		st->success_pct = 100;
		st->failure_pct = 0;
		st->min_finished = 1;
		st->auto_advance = true;
		if (!ota_json_uint(r, g, "success_threshold", false, 0, 100, &u))
			return false;
		if (json_object_get(g, "success_threshold"))
			st->success_pct = (unsigned)u;
		if (!ota_json_uint(r, g, "failure_threshold", false, 0, 100, &u))
			return false;
		if (json_object_get(g, "failure_threshold"))
			st->failure_pct = (unsigned)u;
		if (!ota_json_uint(r, g, "min_finished", false, 0, 1000000, &u))
			return false;
		if (json_object_get(g, "min_finished"))
			st->min_finished = (unsigned)u;
		if (!ota_json_uint(r, g, "soak_seconds", false, 0, 30 * 86400, &u))
			return false;
		if (json_object_get(g, "soak_seconds"))
			st->soak_s = (unsigned)u;
		if (!ota_json_str(r, g, "on_success", false, 1, 16, &str))
			return false;
		if (str && strcmp(str, "auto") != 0 && strcmp(str, "approval") != 0) {
			ota_req_fail(r, OTA_P_INVALID_FIELD,
			             "\"on_success\" must be \"auto\" or \"approval\"");
			return false;
		}
		st->auto_advance = !str || strcmp(str, "auto") == 0;
		s->nstages++;
	}
	s->retry_attempts = 1;
	if (retry) {
		if (!only_keys(r, retry, "\"retry\"", rty) ||
		    !ota_json_uint(r, retry, "attempts", true, 1, 100, &u))
			return false;
		s->retry_attempts = (unsigned)u;
		u = 0;
		if (!ota_json_uint(r, retry, "backoff_seconds", false, 0, 7 * 86400, &u))
			return false;
		s->retry_backoff_s = (unsigned)u;
	}
	if (window) {
		json_t *days = json_object_get(window, "days"), *d;
		const char *start, *tz;
		unsigned hh, mm;
		char tail;
		if (!only_keys(r, window, "\"window\"", win) ||
		    !ota_json_str(r, window, "start", true, 5, 5, &start) ||
		    !ota_json_str(r, window, "time_zone", true, 1, OTA_RO_TZ_MAX, &tz) ||
		    !ota_json_uint(r, window, "duration_minutes", true, 1, 10080, &u))
			return false;
		if (sscanf(start, "%2u:%2u%c", &hh, &mm, &tail) != 2 || hh > 23 || mm > 59) {
			ota_req_fail(r, OTA_P_INVALID_FIELD, "\"start\" must be HH:MM");
			return false;
		}
		s->window_start = hh * 60 + mm;
		s->window_duration = (unsigned)u;
		snprintf(s->window_tz, sizeof(s->window_tz), "%s", tz);
		if (!json_is_array(days) || json_array_size(days) < 1) {
			ota_req_fail(r, OTA_P_INVALID_FIELD,
			             "\"days\" must list days: mon, tue, wed, thu, fri, sat, sun");
			return false;
		}
		json_array_foreach(days, i, d)
		{
			int k = -1;
			for (int j = 0; j < 7 && json_is_string(d); j++)
				if (strcmp(json_string_value(d), day_names[j]) == 0)
					k = j;
			if (k < 0) {
				ota_req_fail(
				    r, OTA_P_INVALID_FIELD,
				    "\"days\" must list days: mon, tue, wed, thu, fri, sat, "
				    "sun");
				return false;
			}
			s->window_days |= 1u << k;
		}
	}
	if (budget) {
		if (!only_keys(r, budget, "\"budget\"", bud) ||
		    !ota_json_uint(r, budget, "max_updating", false, 0, 10000000, &u) ||
		    !object_or_absent(r, budget, "per_tag", &per_tag))
			return false;
		if (json_object_get(budget, "max_updating"))
			s->max_active = (unsigned)u;
		if (per_tag) {
			const char *key;
			if (!only_keys(r, per_tag, "\"budget.per_tag\"", ptg) ||
			    !ota_json_str(r, per_tag, "key", true, 1, OTA_RO_TAG_MAX, &key) ||
			    !ota_json_uint(r, per_tag, "max_updating", true, 1, 10000000, &u))
				return false;
			snprintf(s->budget_tag_key, sizeof(s->budget_tag_key), "%s", key);
			s->max_active_per_tag = (unsigned)u;
		}
	}
	return true;
}

static json_t *str_array(const char *table, size_t stride, unsigned n)
{
	json_t *a = json_array();
	for (unsigned i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(table + i * stride));
	return a;
}

static json_t *spec_json(const struct ota_rollout_spec *s)
{
	json_t *stages = json_array();
	for (unsigned i = 0; stages && i < s->nstages; i++) {
		const struct ota_rollout_stage *g = &s->stages[i];
		json_array_append_new(stages, json_pack("{s:f, s:i, s:s, s:i, s:i, s:i}", "percent",
		                                        g->percent_bp / 100.0, "success_threshold",
		                                        (int)g->success_pct, "on_success",
		                                        g->auto_advance ? "auto" : "approval",
		                                        "failure_threshold", (int)g->failure_pct,
		                                        "min_finished", (int)g->min_finished,
		                                        "soak_seconds", (int)g->soak_s));
	}
	json_t *baseline = json_object();
	if (baseline && s->nbaseline)
		json_object_set_new(
		    baseline, "versions",
		    str_array(&s->baseline[0][0], sizeof(s->baseline[0]), s->nbaseline));
	if (baseline && s->baseline_range[0])
		json_object_set_new(baseline, "range", json_string(s->baseline_range));
	json_t *j = json_pack(
	    "{s:s, s:s, s:{s:o, s:o, s:{s:o, s:o}}, s:o, s:{s:i, s:i}, s:{s:i, s:O}}", "name",
	    s->name, "release_id", s->release_id, "target", "hw_variants",
	    str_array(&s->hw[0][0], sizeof(s->hw[0]), s->nhw), "baseline", baseline, "tags", "all",
	    str_array(&s->tags_all[0][0], sizeof(s->tags_all[0]), s->ntags_all), "any",
	    str_array(&s->tags_any[0][0], sizeof(s->tags_any[0]), s->ntags_any), "stages", stages,
	    "retry", "attempts", (int)s->retry_attempts, "backoff_seconds", (int)s->retry_backoff_s,
	    "budget", "max_updating", (int)s->max_active, "per_tag", json_null());
	if (j && s->max_active_per_tag)
		json_object_set_new(json_object_get(j, "budget"), "per_tag",
		                    json_pack("{s:s, s:i}", "key", s->budget_tag_key,
		                              "max_updating", (int)s->max_active_per_tag));
	if (j && s->window_days) {
		json_t *days = json_array();
		for (int d = 0; days && d < 7; d++)
			if (s->window_days & (1u << d))
				json_array_append_new(days, json_string(day_names[d]));
		char start[8];
		snprintf(start, sizeof(start), "%02u:%02u", s->window_start / 60 % 100,
		         s->window_start % 60);
		json_object_set_new(j, "window",
		                    json_pack("{s:o, s:s, s:i, s:s}", "days", days, "start", start,
		                              "duration_minutes", (int)s->window_duration,
		                              "time_zone", s->window_tz));
	}
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

static json_t *rollout_json(struct ota_req *r, const struct ota_rollout_row *row,
                            const struct ota_rollout_spec *s, bool progress)
{
	int64_t now = (int64_t)time(NULL);
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
	if (!progress)
		return j;
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
	return j;
}

void ota_h_rollout_create(struct ota_req *r)
{
	struct ota_rollout_spec s;
	struct ota_rollout_row row;
	char id[OTA_RO_ID_MAX], msg[256] = "";

	if (!parse_spec(r, r->json, &s))
		return;
	enum ota_err e =
	    ota_rollout_create(r->deps->store, &s, r->who->name, ota_auth_role_name(r->who->role),
	                       (int64_t)time(NULL), id, msg, sizeof(msg));
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
	ota_req_json(r, 201, rollout_json(r, &row, &s, false));
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
	/* Soak times end without any event: judge now, so progress reads current. */
	if (row.state == OTA_RS_RUNNING &&
	    (ota_rollout_evaluate(r->deps->store, row.id, (int64_t)time(NULL)) != OTA_OK ||
	     ota_store_rollout_get(r->deps->store, row.id, &row, NULL) != OTA_OK)) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot evaluate the rollout");
		return;
	}
	json_t *j = rollout_json(r, &row, &s, true);
	if (!j) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the rollout's progress");
		return;
	}
	ota_req_json(r, 200, j);
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
	enum ota_err e = ota_rollout_act(r->deps->store, row.id, a, reason, r->who->name,
	                                 ota_auth_role_name(r->who->role), (int64_t)time(NULL), msg,
	                                 sizeof(msg));
	if (e == OTA_ERR_CONFLICT) {
		ota_req_fail(r, OTA_P_CONFLICT, "%s", msg);
		return;
	}
	if (e == OTA_OK && a == OTA_RA_APPROVE)
		e = ota_rollout_evaluate(r->deps->store, row.id, (int64_t)time(NULL));
	if (e != OTA_OK || !load(r, &row, &s)) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot change the rollout");
		return;
	}
	ota_req_json(r, 200, rollout_json(r, &row, &s, false));
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
	char msg[256] = "";

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
	enum ota_err e = ota_rollout_rollback(r->deps->store, row.id, release,
	                                      which && strcmp(which, "all") == 0, r->who->name,
	                                      ota_auth_role_name(r->who->role), (int64_t)time(NULL),
	                                      &deployed, &ref, &nref, msg, sizeof(msg));
	if (e == OTA_ERR_NOT_FOUND)
		ota_req_fail(r, OTA_P_RELEASE_NOT_FOUND, "%s", msg);
	else if (e == OTA_ERR_INVALID)
		ota_req_fail(r, OTA_P_INVALID_FIELD, "%s", msg);
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

static void member_one(void *ctx, const struct ota_rollout_member *m)
{
	json_t *j = json_pack("{s:s, s:i, s:s, s:s, s:s, s:i, s:I}", "device_id", m->device_id,
	                      "stage", (int)m->stage + 1, "state", ota_member_state_name(m->state),
	                      "reason", m->reason, "deployment_id", m->deployment_id, "attempts",
	                      (int)m->attempts, "updated_at", (json_int_t)m->updated_at);
	if (j && m->next_attempt_at &&
	    (m->state == OTA_MS_FAILED || m->state == OTA_MS_ROLLED_BACK))
		json_object_set_new(j, "next_attempt_at", json_integer(m->next_attempt_at));
	ota_page_add(ctx, j, 0, m->device_id);
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
		json_t *a = json_array();
		member_one(a, &m);
		json_object_set(j, "member", json_array_get(a, 0));
		json_decref(a);
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
};

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

void ota_h_metrics(struct ota_req *r)
{
	struct metrics m = {.cap = 4096, .st = r->deps->store};

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

/* ---- the device path's hooks ---- */

bool ota_rollouts_on_checkin(struct ota_req *r, const char *hw, const char *version, uint32_t floor)
{
	char tags[OTA_RO_MAX_LIST * 2][65];
	const char *tagp[OTA_RO_MAX_LIST * 2];
	unsigned ntags = 0;
	bool offered = false;

	if (ota_store_device_tags(r->deps->store, r->who->name, tags, OTA_RO_MAX_LIST * 2,
	                          &ntags) != OTA_OK)
		goto fail;
	for (unsigned i = 0; i < ntags; i++)
		tagp[i] = tags[i];
	struct ota_rollout_device d = {
	    .id = r->who->name,
	    .hw_variant = hw,
	    .version = version,
	    .security_floor = floor,
	    .ntags = ntags,
	    .tags = tagp,
	};
	if (ota_rollout_checkin(r->deps->store, &d, (int64_t)time(NULL), &offered) != OTA_OK)
		goto fail;
	return offered;
fail:
	ota_req_fail(r, OTA_P_INTERNAL, "cannot evaluate the rollouts");
	return false;
}

void ota_rollouts_on_event(struct ota_req *r, const char *deployment_id)
{
	char id[OTA_RO_ID_MAX];
	enum ota_err e = ota_store_rollout_of_deployment(r->deps->store, deployment_id, id);

	if (e == OTA_OK)
		e = ota_rollout_evaluate(r->deps->store, id, (int64_t)time(NULL));
	/* The report is stored either way; the next check-in or read judges again. */
	if (e != OTA_OK && e != OTA_ERR_NOT_FOUND)
		log_warn("deployment %s: the rollout could not be evaluated", deployment_id);
}
