/*
 * otactl/cmd_rollouts.c - staged rollouts: a definition from a file or from flags
 * (--stage 1:failure=0,min=3 --stage 10 --stage 100 ...), the state actions, the member
 * list, and `watch`, a live view of each stage that ends with the rollout's end state and
 * exit status (completed 0; halted by its failure threshold or aborted 8).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"

#define PATH_SIZE 4096

static bool parse_uint(const char *s, long long max, long long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	*out = strtoll(s, &end, 10);
	return *end == '\0' && *out <= max;
}

/* PERCENT[:key=value,...] -> a stage object; NULL after a message. */
static json_t *stage_of(const char *spec)
{
	char buf[256], *save = NULL;
	double pct;
	char *end;

	if (snprintf(buf, sizeof(buf), "%s", spec) >= (int)sizeof(buf))
		return NULL;
	char *colon = strchr(buf, ':');
	if (colon)
		*colon = '\0';
	pct = strtod(buf, &end);
	if (end == buf || *end || !(pct > 0 && pct <= 100)) {
		ota_ctl_err("--stage %s: the percentage must be above 0 and at most 100", spec);
		return NULL;
	}
	json_t *st = json_pack("{s:f}", "percent", pct);
	if (pct == floor(pct))
		json_object_set_new(st, "percent", json_integer((json_int_t)pct));
	for (char *kv = colon ? strtok_r(colon + 1, ",", &save) : NULL; kv;
	     kv = strtok_r(NULL, ",", &save)) {
		static const char *const keys[][2] = {{"success", "success_threshold"},
		                                      {"failure", "failure_threshold"},
		                                      {"min", "min_finished"},
		                                      {"soak", "soak_seconds"}};
		if (strcmp(kv, "approval") == 0) {
			json_object_set_new(st, "on_success", json_string("approval"));
			continue;
		}
		char *eq = strchr(kv, '=');
		size_t k = 0;
		long long v;
		if (eq) {
			*eq = '\0';
			for (k = 0; k < 4; k++)
				if (strcmp(kv, keys[k][0]) == 0)
					break;
		}
		if (!eq || k == 4 || !parse_uint(eq + 1, 1LL << 40, &v)) {
			ota_ctl_err(
			    "--stage %s: expected success=PCT, failure=PCT, min=N, soak=SECONDS "
			    "or approval after the colon",
			    spec);
			json_decref(st);
			return NULL;
		}
		json_object_set_new(st, keys[k][1], json_integer(v));
	}
	return st;
}

/* DAYS@HH:MM+MINUTES[/ZONE] -> a window object. */
static json_t *window_of(const char *spec)
{
	char buf[256], *save = NULL;
	long long minutes;

	if (snprintf(buf, sizeof(buf), "%s", spec) >= (int)sizeof(buf))
		return NULL;
	char *at = strchr(buf, '@'), *plus = at ? strchr(at, '+') : NULL;
	char *slash = plus ? strchr(plus, '/') : NULL;
	if (!at || !plus)
		goto bad;
	*at = *plus = '\0';
	if (slash)
		*slash = '\0';
	if (!parse_uint(plus + 1, 10080, &minutes) || strlen(at + 1) != 5)
		goto bad;
	json_t *days = json_array();
	for (char *d = strtok_r(buf, ",", &save); d; d = strtok_r(NULL, ",", &save))
		json_array_append_new(days, json_string(d));
	return json_pack("{s:o, s:s, s:I, s:s}", "days", days, "start", at + 1, "duration_minutes",
	                 (json_int_t)minutes, "time_zone", slash ? slash + 1 : "UTC");
bad:
	ota_ctl_err("--window %s: expected DAYS@HH:MM+MINUTES[/ZONE], e.g. "
	            "mon,tue@02:00+120/Europe/Berlin",
	            spec);
	return NULL;
}

static json_t *strings(const struct args *a, const char *name)
{
	json_t *arr = json_array();
	const char *v;

	for (unsigned i = 0; (v = arg_nth(a, name, i)) != NULL; i++)
		json_array_append_new(arr, json_string(v));
	return arr;
}

/* The definition from flags; NULL after a message. */
static json_t *definition_of(const struct args *a)
{
	const char *name = arg_opt(a, "name"), *rel = arg_opt(a, "release"), *v;
	json_t *def = NULL, *stages = json_array(), *target = json_object();

	if (!name || !rel || !arg_opt(a, "stage")) {
		usage_error(NULL, "rollouts create: --name, --release and at least one --stage are "
		                  "needed (or -f FILE)");
		goto bad;
	}
	for (unsigned i = 0; (v = arg_nth(a, "stage", i)) != NULL; i++) {
		json_t *st = stage_of(v);
		if (!st)
			goto bad;
		json_array_append_new(stages, st);
	}
	if (arg_opt(a, "hw-variant"))
		json_object_set_new(target, "hw_variants", strings(a, "hw-variant"));
	if (arg_opt(a, "baseline") && arg_opt(a, "baseline-range")) {
		usage_error(NULL,
		            "rollouts create: --baseline and --baseline-range exclude each other");
		goto bad;
	}
	if (arg_opt(a, "baseline"))
		json_object_set_new(target, "baseline",
		                    json_pack("{s:o}", "versions", strings(a, "baseline")));
	if ((v = arg_opt(a, "baseline-range")) != NULL)
		json_object_set_new(target, "baseline", json_pack("{s:s}", "range", v));
	if (arg_opt(a, "tag-all") || arg_opt(a, "tag-any")) {
		json_t *tags = json_object();
		if (arg_opt(a, "tag-all"))
			json_object_set_new(tags, "all", strings(a, "tag-all"));
		if (arg_opt(a, "tag-any"))
			json_object_set_new(tags, "any", strings(a, "tag-any"));
		json_object_set_new(target, "tags", tags);
	}
	def = json_pack("{s:s, s:s, s:O}", "name", name, "release_id", rel, "stages", stages);
	if (json_object_size(target))
		json_object_set(def, "target", target);
	if ((v = arg_opt(a, "window")) != NULL) {
		json_t *w = window_of(v);
		if (!w)
			goto bad;
		json_object_set_new(def, "window", w);
	}
	if (arg_opt(a, "budget") || arg_opt(a, "budget-per-tag")) {
		json_t *b = json_object();
		long long n;
		if ((v = arg_opt(a, "budget")) != NULL) {
			if (!parse_uint(v, 1LL << 40, &n)) {
				usage_error(NULL, "--budget %s: a whole number (0: unlimited)", v);
				json_decref(b);
				goto bad;
			}
			json_object_set_new(b, "max_updating", json_integer(n));
		}
		if ((v = arg_opt(a, "budget-per-tag")) != NULL) {
			const char *eq = strchr(v, '=');
			if (!eq || eq == v || !parse_uint(eq + 1, 1LL << 40, &n)) {
				usage_error(
				    NULL, "--budget-per-tag %s: expected KEY=MAX, e.g. line=1", v);
				json_decref(b);
				goto bad;
			}
			json_object_set_new(b, "per_tag",
			                    json_pack("{s:s%, s:I}", "key", v, (size_t)(eq - v),
			                              "max_updating", (json_int_t)n));
		}
		json_object_set_new(def, "budget", b);
	}
	if ((v = arg_opt(a, "retry")) != NULL) {
		char buf[64];
		long long att, back = 0;
		snprintf(buf, sizeof(buf), "%s", v);
		char *colon = strchr(buf, ':');
		if (colon)
			*colon = '\0';
		if (!parse_uint(buf, 100, &att) ||
		    (colon && !parse_uint(colon + 1, 1LL << 40, &back))) {
			usage_error(NULL, "--retry %s: expected ATTEMPTS[:BACKOFF_SECONDS]", v);
			goto bad;
		}
		json_object_set_new(def, "retry",
		                    json_pack("{s:I, s:I}", "attempts", (json_int_t)att,
		                              "backoff_seconds", (json_int_t)back));
	}
	json_decref(stages);
	json_decref(target);
	return def;
bad:
	json_decref(def);
	json_decref(stages);
	json_decref(target);
	return NULL;
}

/* A rollout's summary line. */
static void summary(json_t *r)
{
	printf("%s  %s  %s  stage %lld\n", json_string_value(json_object_get(r, "id")) ?: "?",
	       json_string_value(json_object_get(r, "name")) ?: "?",
	       json_string_value(json_object_get(r, "state")) ?: "?",
	       (long long)json_integer_value(json_object_get(r, "stage")));
}

int cmd_rollouts_create(struct ota_ctl *c, const struct args *a)
{
	const char *file = arg_opt(a, "f") ?: arg_opt(a, "file");
	json_t *def = NULL, *ans = NULL;

	if (file) {
		json_error_t e;
		if (arg_opt(a, "name") || arg_opt(a, "release") || arg_opt(a, "stage"))
			return usage_error(NULL, "rollouts create: -f FILE or flags, not both");
		def = json_load_file(file, 0, &e);
		if (!def) {
			ota_ctl_err("%s:%d: %s", file, e.line, e.text);
			return OTACTL_LOCAL;
		}
	} else {
		def = definition_of(a);
		if (!def)
			return OTACTL_USAGE;
	}
	int rc = ota_ctl_call(c, "POST", "/api/v1/rollouts", def, &ans);
	json_decref(def);
	if (rc != OTACTL_OK)
		return rc;
	if (c->json)
		ota_ctl_print(c, ans);
	else if (c->quiet)
		printf("%s\n", json_string_value(json_object_get(ans, "id")) ?: "");
	else
		summary(ans);
	json_decref(ans);
	return OTACTL_OK;
}

int cmd_rollouts_list(struct ota_ctl *c, const struct args *a)
{
	static const struct ota_ctl_col cols[] = {
	    {"ID", "id", COL_STR},
	    {"NAME", "name", COL_STR},
	    {"STATE", "state", COL_STR},
	    {"STAGE", "stage", COL_STR},
	    {"STAGES", "stages", COL_STR},
	    {"RELEASE", "release_id", COL_SHORT},
	    {"CREATED", "created_at", COL_TIME},
	};
	char path[PATH_SIZE] = "/api/v1/rollouts";
	unsigned long long page = 100, max = 0;
	json_t *items;
	const char *st = arg_opt(a, "state");

	if (!arg_uint(a, "page-size", 1000, &page) || !arg_uint(a, "limit", 1000000000, &max) ||
	    page == 0)
		return OTACTL_USAGE;
	if (st && !ota_ctl_query_add(path, sizeof(path), "state", st))
		return OTACTL_USAGE;
	int rc = ota_ctl_list(c, path, "rollouts", (unsigned)page, (size_t)max, &items);
	if (rc != OTACTL_OK)
		return rc;
	ota_ctl_print_list(c, items, cols, sizeof(cols) / sizeof(cols[0]));
	json_decref(items);
	return OTACTL_OK;
}

/* Counters of one stage's devices by state. */
struct counts {
	long long joined, succeeded, failed, updating, pending, skipped;
};

static struct counts count(json_t *devices)
{
	struct counts n = {0};
	const char *k;
	json_t *v;

	json_object_foreach(devices, k, v)
	{
		long long x = json_integer_value(v);
		if (strcmp(k, "skipped") == 0) {
			n.skipped += x;
			continue;
		}
		n.joined += x;
		if (strcmp(k, "succeeded") == 0)
			n.succeeded += x;
		else if (strcmp(k, "failed") == 0 || strcmp(k, "rolled_back") == 0)
			n.failed += x;
		else if (strcmp(k, "pending") == 0)
			n.pending += x;
		else
			n.updating += x;
	}
	return n;
}

/* The per-stage view of a rollout: one line a stage with a bar of succeeded/failed. */
static void stages_view(FILE *f, json_t *r)
{
	json_t *stages = json_object_get(json_object_get(r, "progress"), "stages"), *st;
	long long cur = json_integer_value(json_object_get(r, "stage"));
	size_t i;

	fprintf(f, "%s  %s  %s", json_string_value(json_object_get(r, "id")) ?: "?",
	        json_string_value(json_object_get(r, "name")) ?: "?",
	        json_string_value(json_object_get(r, "state")) ?: "?");
	const char *why = json_string_value(json_object_get(r, "reason"));
	if (why && *why)
		fprintf(f, " (%s)", why);
	fputc('\n', f);
	fprintf(f, "  STAGE  PERCENT  JOINED  SUCCEEDED  FAILED  UPDATING  PENDING  PROGRESS\n");
	json_array_foreach(stages, i, st)
	{
		struct counts n = count(json_object_get(st, "devices"));
		char bar[21];
		int ok = n.joined ? (int)(n.succeeded * 20 / n.joined) : 0;
		int bad = n.joined ? (int)((n.failed * 20 + n.joined - 1) / n.joined) : 0;
		if (ok + bad > 20)
			bad = 20 - ok;
		memset(bar, '.', 20);
		memset(bar, '#', (size_t)ok);
		memset(bar + ok, 'x', (size_t)bad);
		bar[20] = '\0';
		fprintf(f, "%c %5zu  %6g%%  %6lld  %9lld  %6lld  %8lld  %7lld  [%s]\n",
		        (long long)i + 1 == cur ? '>' : ' ', i + 1,
		        json_number_value(json_object_get(st, "percent")), n.joined, n.succeeded,
		        n.failed, n.updating, n.pending, bar);
	}
}

int cmd_rollouts_show(struct ota_ctl *c, const struct args *a)
{
	char path[PATH_SIZE];
	json_t *r = NULL;

	if (!api_path(path, sizeof(path), "rollouts/%s", a->pos[0]))
		return usage_error(NULL, "rollout id too long");
	int rc = ota_ctl_call(c, "GET", path, NULL, &r);
	if (rc != OTACTL_OK)
		return rc;
	if (c->json || c->quiet)
		ota_ctl_print(c, r);
	else
		stages_view(stdout, r);
	json_decref(r);
	return OTACTL_OK;
}

int cmd_rollouts_action(struct ota_ctl *c, const struct args *a)
{
	char path[PATH_SIZE];
	json_t *body = json_object(), *r = NULL;
	const char *why = arg_opt(a, "reason");

	if (!api_path(path, sizeof(path), "rollouts/%s/%s", a->pos[0], ota_ctl_current_sub)) {
		json_decref(body);
		return usage_error(NULL, "rollout id too long");
	}
	if (why)
		json_object_set_new(body, "reason", json_string(why));
	int rc = ota_ctl_call(c, "POST", path, body, &r);
	json_decref(body);
	if (rc != OTACTL_OK)
		return rc;
	if (c->json)
		ota_ctl_print(c, r);
	else if (!c->quiet)
		summary(r);
	json_decref(r);
	return OTACTL_OK;
}

int cmd_rollouts_rollback(struct ota_ctl *c, const struct args *a)
{
	char path[PATH_SIZE];
	const char *rel = arg_opt(a, "release");
	json_t *r = NULL;

	if (!rel)
		return usage_error(NULL, "rollouts rollback: --release RELEASE is needed");
	if (!api_path(path, sizeof(path), "rollouts/%s/rollback", a->pos[0]))
		return usage_error(NULL, "rollout id too long");
	json_t *body = json_pack("{s:s, s:s}", "release_id", rel, "devices",
	                         arg_opt(a, "all") ? "all" : "failed");
	int rc = ota_ctl_call(c, "POST", path, body, &r);
	json_decref(body);
	if (rc != OTACTL_OK)
		return rc;
	if (c->json) {
		ota_ctl_print(c, r);
	} else if (!c->quiet) {
		json_t *nr = json_object_get(r, "not_roll_back_able"), *e;
		size_t i;
		printf("%lld deployments created; %zu devices not rolled back\n",
		       (long long)json_integer_value(json_object_get(r, "deployments_created")),
		       json_array_size(nr));
		json_array_foreach(nr, i, e)
		{
			printf("  %s: %s\n",
			       json_string_value(json_object_get(e, "device_id")) ?: "?",
			       json_string_value(json_object_get(e, "reason")) ?: "?");
		}
	}
	json_decref(r);
	return OTACTL_OK;
}

int cmd_rollouts_devices(struct ota_ctl *c, const struct args *a)
{
	static const struct ota_ctl_col cols[] = {
	    {"DEVICE", "device_id", COL_STR},    {"STAGE", "stage", COL_STR},
	    {"STATE", "state", COL_STR},         {"ATTEMPTS", "attempts", COL_STR},
	    {"UPDATED", "updated_at", COL_TIME}, {"REASON", "reason", COL_STR},
	};
	char path[PATH_SIZE];
	unsigned long long page = 100, max = 0;
	json_t *items;
	const char *st = arg_opt(a, "state");

	if (!arg_uint(a, "page-size", 1000, &page) || !arg_uint(a, "limit", 1000000000, &max) ||
	    page == 0)
		return OTACTL_USAGE;
	if (!api_path(path, sizeof(path), "rollouts/%s/devices", a->pos[0]) ||
	    (st && !ota_ctl_query_add(path, sizeof(path), "state", st)))
		return usage_error(NULL, "rollout id too long");
	int rc = ota_ctl_list(c, path, "devices", (unsigned)page, (size_t)max, &items);
	if (rc != OTACTL_OK)
		return rc;
	ota_ctl_print_list(c, items, cols, sizeof(cols) / sizeof(cols[0]));
	json_decref(items);
	return OTACTL_OK;
}

/* Halted: paused by the failure threshold (the reason says so), not by an operator. */
static bool halted(json_t *r)
{
	const char *st = json_string_value(json_object_get(r, "state")) ?: "";
	const char *why = json_string_value(json_object_get(r, "reason")) ?: "";

	return strcmp(st, "paused") == 0 && strstr(why, "failure threshold") != NULL;
}

int cmd_rollouts_watch(struct ota_ctl *c, const struct args *a)
{
	char path[PATH_SIZE], *last = NULL;
	unsigned long long interval = 2;
	unsigned lines = 0;
	int rc;

	if (!arg_uint(a, "interval", 3600, &interval) || interval == 0)
		return usage_error(NULL, "--interval: 1 to 3600 seconds");
	if (!api_path(path, sizeof(path), "rollouts/%s", a->pos[0]))
		return usage_error(NULL, "rollout id too long");
	bool live = isatty(STDOUT_FILENO) == 1 && !c->json;
	for (;;) {
		json_t *r = NULL;
		rc = ota_ctl_call(c, "GET", path, NULL, &r);
		if (rc != OTACTL_OK)
			break;
		const char *st = json_string_value(json_object_get(r, "state")) ?: "";
		bool done = strcmp(st, "completed") == 0 || strcmp(st, "aborted") == 0 || halted(r);
		char *view = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&view, &len);
		if (!m) {
			json_decref(r);
			rc = OTACTL_LOCAL;
			break;
		}
		if (c->json) {
			json_t *p = json_object_get(r, "progress");
			json_t *line =
			    json_pack("{s:O, s:O, s:O, s:O?}", "id", json_object_get(r, "id"),
			              "state", json_object_get(r, "state"), "stage",
			              json_object_get(r, "stage"), "progress", p);
			json_dumpf(line, m, JSON_COMPACT);
			fputc('\n', m);
			json_decref(line);
		} else {
			stages_view(m, r);
		}
		fclose(m);
		/* A terminal is redrawn in place; a pipe gets a new view only when it changes. */
		if (!last || strcmp(last, view) != 0) {
			if (!c->quiet) {
				if (live && lines)
					printf("\033[%uA\033[J", lines);
				fputs(view, stdout);
				fflush(stdout);
			}
			lines = 0;
			for (const char *p = view; *p; p++)
				lines += *p == '\n';
		}
		free(last);
		last = view;
		if (done) {
			rc = strcmp(st, "completed") == 0 ? OTACTL_OK : OTACTL_HALTED;
			if (!c->json)
				printf("rollout %s: %s%s%s\n", a->pos[0], halted(r) ? "halted" : st,
				       rc ? ": " : "",
				       rc ? json_string_value(json_object_get(r, "reason")) ?: ""
				          : "");
			json_decref(r);
			break;
		}
		json_decref(r);
		sleep((unsigned)interval);
	}
	free(last);
	return rc;
}
