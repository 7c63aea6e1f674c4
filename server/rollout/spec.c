/*
 * rollout/spec.c - the one codec of a rollout's definition: the JSON of docs/rollouts.md, read
 * strictly (unknown keys, wrong types and out-of-range values refused with a message naming the
 * field) into struct ota_rollout_spec, and written back as canonical JSON (keys sorted,
 * compact). The API reads a definition with it, answers with it, and the store keeps its
 * canonical text, so a stored definition reads back exactly as it was accepted.
 */
#include "rollout/rollout.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Where a parse reports its first refusal. */
struct ctx {
	char *msg;
	size_t msglen;
	bool failed;
};

static void fail(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct ctx *x, const char *fmt, ...)
{
	va_list ap;
	if (x->failed)
		return;
	x->failed = true;
	if (!x->msg || !x->msglen)
		return;
	va_start(ap, fmt);
	vsnprintf(x->msg, x->msglen, fmt, ap);
	va_end(ap);
}

static bool get_str(struct ctx *x, json_t *obj, const char *key, bool required, size_t min,
                    size_t max, const char **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			fail(x, "\"%s\" is required", key);
		return !required;
	}
	if (!json_is_string(v)) {
		fail(x, "\"%s\" must be a string", key);
		return false;
	}
	size_t n = json_string_length(v);
	if (strlen(json_string_value(v)) != n) {
		fail(x, "\"%s\" must not contain NUL", key);
		return false;
	}
	if (n < min || n > max) {
		if (min == max)
			fail(x, "\"%s\" must be %zu characters", key, min);
		else
			fail(x, "\"%s\" must be %zu to %zu characters", key, min, max);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

static bool get_uint(struct ctx *x, json_t *obj, const char *key, bool required, uint64_t min,
                     uint64_t max, uint64_t *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v)) {
		if (required)
			fail(x, "\"%s\" is required", key);
		return !required;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) < min || (uint64_t)json_integer_value(v) > max) {
		fail(x, "\"%s\" must be an integer from %llu to %llu", key, (unsigned long long)min,
		     (unsigned long long)max);
		return false;
	}
	*out = (uint64_t)json_integer_value(v);
	return true;
}

/* Refuses keys of obj not in the NULL-terminated list. */
static bool only_keys(struct ctx *x, json_t *obj, const char *where, const char *const *allowed)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v)
	{
		bool ok = false;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = strcmp(*a, k) == 0;
		if (!ok) {
			fail(x, "unknown key \"%s\" in %s", k, where);
			return false;
		}
	}
	return true;
}

static bool object_or_absent(struct ctx *x, json_t *parent, const char *key, json_t **out)
{
	*out = json_object_get(parent, key);
	if (*out && json_is_null(*out))
		*out = NULL;
	if (*out && !json_is_object(*out)) {
		fail(x, "\"%s\" must be an object", key);
		return false;
	}
	return true;
}

/* A JSON array of strings into a fixed table. */
static bool str_list(struct ctx *x, json_t *parent, const char *key, size_t maxlen, char *table,
                     size_t stride, unsigned *n)
{
	json_t *a = json_object_get(parent, key), *v;
	size_t i;

	*n = 0;
	if (!a || json_is_null(a))
		return true;
	if (!json_is_array(a) || json_array_size(a) > OTA_RO_MAX_LIST) {
		fail(x, "\"%s\" must be an array of at most %d strings", key, OTA_RO_MAX_LIST);
		return false;
	}
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v) || json_string_length(v) < 1 ||
		    json_string_length(v) > maxlen ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			fail(x, "\"%s\" items must be strings of 1 to %zu characters", key, maxlen);
			return false;
		}
		snprintf(table + i * stride, stride, "%s", json_string_value(v));
		(*n)++;
	}
	return true;
}

static const char *const day_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

/* Whether v (a percent, 0..100) is a whole number of hundredths: percents are kept in basis
 * points, so more decimals would come back other than sent. */
static bool hundredths(double v)
{
	double bp = v * 100;
	double whole = (double)(long long)(bp + 0.5);

	return bp - whole < 1e-6 && whole - bp < 1e-6;
}

static bool parse(struct ctx *x, json_t *b, struct ota_rollout_spec *s)
{
	static const char *const top[] = {
	    "name",  "release_id", "target", "stages",
	    "retry", "window",     "budget", "unreachable_after_seconds",
	    NULL};
	static const char *const tgt[] = {"hw_variants", "baseline", "tags", NULL};
	static const char *const base[] = {"versions", "range", NULL};
	static const char *const tags[] = {"all", "any", NULL};
	static const char *const stg[] = {
	    "percent",           "success_threshold",   "on_success",
	    "failure_threshold", "min_finished",        "soak_seconds",
	    "statistical_halt",  "post_confirm_health", NULL};
	static const char *const sth[] = {"acceptable_failure_rate", "confidence", NULL};
	static const char *const pch[] = {"max_regression_percent", "soak_seconds", NULL};
	static const char *const rty[] = {"attempts", "backoff_seconds", NULL};
	static const char *const win[] = {"days", "start", "duration_minutes", "time_zone", NULL};
	static const char *const bud[] = {"max_updating", "per_tag", NULL};
	static const char *const ptg[] = {"key", "max_updating", NULL};
	const char *name, *rel, *range = NULL, *str;
	json_t *target, *baseline = NULL, *tg = NULL, *retry, *window, *budget, *per_tag = NULL;
	uint64_t u;

	memset(s, 0, sizeof(*s));
	if (!only_keys(x, b, "the rollout", top) ||
	    !get_str(x, b, "name", true, 1, OTA_ID_MAX, &name) ||
	    !get_str(x, b, "release_id", true, 64, 64, &rel) ||
	    !object_or_absent(x, b, "target", &target) ||
	    !object_or_absent(x, b, "retry", &retry) ||
	    !object_or_absent(x, b, "window", &window) ||
	    !object_or_absent(x, b, "budget", &budget))
		return false;
	s->unreachable_s = OTA_RO_UNREACHABLE_DEFAULT;
	if (!get_uint(x, b, "unreachable_after_seconds", false, 60, 30 * 86400, &u))
		return false;
	if (json_object_get(b, "unreachable_after_seconds"))
		s->unreachable_s = (unsigned)u;
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->release_id, sizeof(s->release_id), "%s", rel);
	if (target) {
		if (!only_keys(x, target, "\"target\"", tgt) ||
		    !str_list(x, target, "hw_variants", 32, &s->hw[0][0], sizeof(s->hw[0]),
		              &s->nhw) ||
		    !object_or_absent(x, target, "baseline", &baseline) ||
		    !object_or_absent(x, target, "tags", &tg))
			return false;
		if (baseline && (!only_keys(x, baseline, "\"target.baseline\"", base) ||
		                 !str_list(x, baseline, "versions", OTA_ID_MAX, &s->baseline[0][0],
		                           sizeof(s->baseline[0]), &s->nbaseline) ||
		                 !get_str(x, baseline, "range", false, 1,
		                          sizeof(s->baseline_range) - 1, &range)))
			return false;
		if (range)
			snprintf(s->baseline_range, sizeof(s->baseline_range), "%s", range);
		if (tg && (!only_keys(x, tg, "\"target.tags\"", tags) ||
		           !str_list(x, tg, "all", OTA_RO_TAG_MAX, &s->tags_all[0][0],
		                     sizeof(s->tags_all[0]), &s->ntags_all) ||
		           !str_list(x, tg, "any", OTA_RO_TAG_MAX, &s->tags_any[0][0],
		                     sizeof(s->tags_any[0]), &s->ntags_any)))
			return false;
	}
	json_t *stages = json_object_get(b, "stages"), *g;
	size_t i;
	if (!json_is_array(stages) || json_array_size(stages) < 1 ||
	    json_array_size(stages) > OTA_RO_MAX_STAGES) {
		fail(x, "\"stages\" must be an array of 1 to %d stages", OTA_RO_MAX_STAGES);
		return false;
	}
	json_array_foreach(stages, i, g)
	{
		struct ota_rollout_stage *st = &s->stages[i];
		if (!json_is_object(g)) {
			fail(x, "each stage must be an object");
			return false;
		}
		json_t *p = json_object_get(g, "percent");
		if (!only_keys(x, g, "a stage", stg))
			return false;
		if (!json_is_number(p) || json_number_value(p) < 0.01 ||
		    json_number_value(p) > 100 || !hundredths(json_number_value(p))) {
			fail(x,
			     "stage %zu: \"percent\" must be a number from 0.01 to 100 with at "
			     "most two decimals",
			     i + 1);
			return false;
		}
		st->percent_bp = (unsigned)(json_number_value(p) * 100 + 0.5);
		st->success_pct = 100;
		st->failure_pct = 0;
		st->min_finished = 1;
		st->auto_advance = true;
		if (!get_uint(x, g, "success_threshold", false, 0, 100, &u))
			return false;
		if (json_object_get(g, "success_threshold"))
			st->success_pct = (unsigned)u;
		if (!get_uint(x, g, "failure_threshold", false, 0, 100, &u))
			return false;
		if (json_object_get(g, "failure_threshold"))
			st->failure_pct = (unsigned)u;
		if (!get_uint(x, g, "min_finished", false, 0, 1000000, &u))
			return false;
		if (json_object_get(g, "min_finished"))
			st->min_finished = (unsigned)u;
		if (!get_uint(x, g, "soak_seconds", false, 0, 30 * 86400, &u))
			return false;
		if (json_object_get(g, "soak_seconds"))
			st->soak_s = (unsigned)u;
		if (!get_str(x, g, "on_success", false, 1, 16, &str))
			return false;
		if (str && strcmp(str, "auto") != 0 && strcmp(str, "approval") != 0) {
			fail(x, "\"on_success\" must be \"auto\" or \"approval\"");
			return false;
		}
		st->auto_advance = !str || strcmp(str, "auto") == 0;
		json_t *sh = NULL, *rate;
		if (!object_or_absent(x, g, "statistical_halt", &sh))
			return false;
		if (sh) {
			rate = json_object_get(sh, "acceptable_failure_rate");
			if (!only_keys(x, sh, "\"statistical_halt\"", sth))
				return false;
			if (!json_is_number(rate) || json_number_value(rate) < 0.01 ||
			    json_number_value(rate) > 99 || !hundredths(json_number_value(rate))) {
				fail(x,
				     "stage %zu: \"acceptable_failure_rate\" must be a number from "
				     "0.01 to 99 (percent) with at most two decimals",
				     i + 1);
				return false;
			}
			st->acceptable_bp = (unsigned)(json_number_value(rate) * 100 + 0.5);
			u = 95;
			if (!get_uint(x, sh, "confidence", false, 0, 100, &u))
				return false;
			if (u != 90 && u != 95 && u != 99) {
				fail(x, "stage %zu: \"confidence\" must be 90, 95 or 99", i + 1);
				return false;
			}
			st->confidence_pct = (unsigned)u;
		}
		json_t *ph = NULL;
		if (!object_or_absent(x, g, "post_confirm_health", &ph))
			return false;
		if (ph) {
			if (!only_keys(x, ph, "\"post_confirm_health\"", pch) ||
			    !get_uint(x, ph, "max_regression_percent", true, 0, 100, &u))
				return false;
			s->post[i].on = true;
			s->post[i].max_pct = (unsigned)u;
			u = 3600;
			if (!get_uint(x, ph, "soak_seconds", false, 0, 30 * 86400, &u))
				return false;
			s->post[i].soak_s = (unsigned)u;
		}
		s->nstages++;
	}
	s->retry_attempts = 1;
	if (retry) {
		if (!only_keys(x, retry, "\"retry\"", rty) ||
		    !get_uint(x, retry, "attempts", true, 1, 100, &u))
			return false;
		s->retry_attempts = (unsigned)u;
		u = 0;
		if (!get_uint(x, retry, "backoff_seconds", false, 0, 7 * 86400, &u))
			return false;
		s->retry_backoff_s = (unsigned)u;
	}
	if (window) {
		json_t *days = json_object_get(window, "days"), *d;
		const char *start, *tz;
		unsigned hh, mm;
		char tail;
		if (!only_keys(x, window, "\"window\"", win) ||
		    !get_str(x, window, "start", true, 5, 5, &start) ||
		    !get_str(x, window, "time_zone", true, 1, OTA_RO_TZ_MAX, &tz) ||
		    !get_uint(x, window, "duration_minutes", true, 1, 10080, &u))
			return false;
		if (sscanf(start, "%2u:%2u%c", &hh, &mm, &tail) != 2 || hh > 23 || mm > 59) {
			fail(x, "\"start\" must be HH:MM");
			return false;
		}
		s->window_start = hh * 60 + mm;
		s->window_duration = (unsigned)u;
		snprintf(s->window_tz, sizeof(s->window_tz), "%s", tz);
		if (!json_is_array(days) || json_array_size(days) < 1) {
			fail(x, "\"days\" must list days: mon, tue, wed, thu, fri, sat, sun");
			return false;
		}
		json_array_foreach(days, i, d)
		{
			int k = -1;
			for (int j = 0; j < 7 && json_is_string(d); j++)
				if (strcmp(json_string_value(d), day_names[j]) == 0)
					k = j;
			if (k < 0) {
				fail(x, "\"days\" must list days: mon, tue, wed, thu, fri, sat, "
				        "sun");
				return false;
			}
			s->window_days |= 1u << k;
		}
	}
	if (budget) {
		if (!only_keys(x, budget, "\"budget\"", bud) ||
		    !get_uint(x, budget, "max_updating", false, 0, 10000000, &u) ||
		    !object_or_absent(x, budget, "per_tag", &per_tag))
			return false;
		if (json_object_get(budget, "max_updating"))
			s->max_active = (unsigned)u;
		if (per_tag) {
			const char *key;
			if (!only_keys(x, per_tag, "\"budget.per_tag\"", ptg) ||
			    !get_str(x, per_tag, "key", true, 1, OTA_RO_TAG_MAX, &key) ||
			    !get_uint(x, per_tag, "max_updating", true, 1, 10000000, &u))
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

static json_t *to_json(const struct ota_rollout_spec *s)
{
	json_t *stages = json_array();
	for (unsigned i = 0; stages && i < s->nstages; i++) {
		const struct ota_rollout_stage *g = &s->stages[i];
		json_t *one = json_pack(
		    "{s:f, s:i, s:s, s:i, s:i, s:i}", "percent", g->percent_bp / 100.0,
		    "success_threshold", (int)g->success_pct, "on_success",
		    g->auto_advance ? "auto" : "approval", "failure_threshold", (int)g->failure_pct,
		    "min_finished", (int)g->min_finished, "soak_seconds", (int)g->soak_s);
		if (one && g->acceptable_bp)
			json_object_set_new(one, "statistical_halt",
			                    json_pack("{s:f, s:i}", "acceptable_failure_rate",
			                              g->acceptable_bp / 100.0, "confidence",
			                              (int)g->confidence_pct));
		if (one && s->post[i].on)
			json_object_set_new(one, "post_confirm_health",
			                    json_pack("{s:i, s:i}", "max_regression_percent",
			                              (int)s->post[i].max_pct, "soak_seconds",
			                              (int)s->post[i].soak_s));
		json_array_append_new(stages, one);
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
	if (j)
		json_object_set_new(
		    j, "unreachable_after_seconds",
		    json_integer(s->unreachable_s ? s->unreachable_s : OTA_RO_UNREACHABLE_DEFAULT));
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

enum ota_err ota_rollout_spec_parse(const char *text, size_t len, struct ota_rollout_spec *s,
                                    char *msg, size_t msglen)
{
	struct ctx x = {.msg = msg, .msglen = msglen};
	json_error_t jerr;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);

	memset(s, 0, sizeof(*s));
	if (!j || !json_is_object(j)) {
		fail(&x, "the definition must be a JSON object");
		json_decref(j);
		return OTA_ERR_INVALID;
	}
	bool ok = parse(&x, j, s);
	json_decref(j);
	return ok && !x.failed ? OTA_OK : OTA_ERR_INVALID;
}

char *ota_rollout_spec_json(const struct ota_rollout_spec *s)
{
	json_t *j = to_json(s);
	/* 15 significant digits: hundredths read back as written (99.99, not 99.989999...). */
	char *text =
	    j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15)) : NULL;

	json_decref(j);
	return text;
}

enum ota_err ota_rollout_spec_decode(const char *text, struct ota_rollout_spec *s)
{
	return ota_rollout_spec_parse(text, strlen(text), s, NULL, 0);
}
