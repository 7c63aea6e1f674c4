/*
 * otactl/cmd_deltas.c - the deltas of a release: upload (the delta file as an image, then its
 * signed metadata, which the server verifies against the file), list with the failures devices
 * reported, and delete. Output as the other commands: a table or "key: value" view, JSON with
 * --json, only ids with --quiet.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

#define PATH_SIZE 4096

static const struct ota_ctl_col delta_cols[] = {
    {"ID", "id", COL_STR},           {"BASE", "base_sha256", COL_STR},
    {"SIZE", "size", COL_STR},       {"FAILED", "failed", COL_STR},
    {"REFUSED", "refused", COL_STR}, {"CREATED", "created_at", COL_TIME},
};

/* The path of the release's deltas, with "/" and the escaped `tail` when given. */
static bool deltas_path(char *out, size_t size, const char *release, const char *tail)
{
	return tail ? api_path(out, size, "releases/%s/deltas/%s", release, tail)
	            : api_path(out, size, "releases/%s/deltas", release);
}

int cmd_deltas_upload(struct ota_ctl *c, const struct args *a)
{
	char path[PATH_SIZE], meta_default[PATH_SIZE];
	const char *meta = arg_opt(a, "meta");
	json_t *env = NULL, *img = NULL, *ans = NULL;
	json_error_t e;
	int rc;

	if (!meta) {
		/* ota-sign delta writes the metadata beside the delta as DELTA.json. */
		if (snprintf(meta_default, sizeof(meta_default), "%s.json", a->pos[1]) >=
		    (int)sizeof(meta_default))
			return usage_error(NULL, "delta file name too long");
		meta = meta_default;
	}
	env = json_load_file(meta, 0, &e);
	if (!env) {
		ota_ctl_err("%s:%d: %s", meta, e.line, e.text);
		return OTACTL_LOCAL;
	}
	if (!deltas_path(path, sizeof(path), a->pos[0], NULL)) {
		rc = usage_error(NULL, "release id too long");
		goto out;
	}
	rc = ota_ctl_upload(c, "/api/v1/images", a->pos[1], &img);
	if (rc != OTACTL_OK)
		goto out;
	const char *sha = json_string_value(json_object_get(img, "sha256"));
	if (!sha || !ota_ctl_query_add(path, sizeof(path), "image", sha)) {
		ota_ctl_err("the server's answer names no image");
		rc = OTACTL_LOCAL;
		goto out;
	}
	rc = ota_ctl_call(c, "POST", path, env, &ans);
	if (rc != OTACTL_OK)
		goto out;
	if (c->json)
		ota_ctl_print(c, ans);
	else if (c->quiet)
		printf("%s\n", json_string_value(json_object_get(ans, "id")) ?: "");
	else
		printf("%s  %lld bytes from base %.16s...\n",
		       json_string_value(json_object_get(ans, "id")) ?: "?",
		       (long long)json_integer_value(json_object_get(ans, "size")),
		       json_string_value(json_object_get(ans, "base_sha256")) ?: "?");
out:
	json_decref(ans);
	json_decref(img);
	json_decref(env);
	return rc;
}

int cmd_deltas_list(struct ota_ctl *c, const struct args *a)
{
	char path[PATH_SIZE];
	unsigned long long p = 100, m = 0;
	json_t *items;

	if (!arg_uint(a, "page-size", 1000, &p) || !arg_uint(a, "limit", 1000000000, &m))
		return OTACTL_USAGE;
	if (p == 0) {
		ota_ctl_err("--page-size: 1 to 1000");
		return OTACTL_USAGE;
	}
	if (!deltas_path(path, sizeof(path), a->pos[0], NULL))
		return usage_error(NULL, "release id too long");
	int rc = ota_ctl_list(c, path, NULL, (unsigned)p, (size_t)m, &items);
	if (rc != OTACTL_OK)
		return rc;
	ota_ctl_print_list(c, items, delta_cols, sizeof(delta_cols) / sizeof(delta_cols[0]));
	json_decref(items);
	return OTACTL_OK;
}

int cmd_deltas_delete(struct ota_ctl *c, const struct args *a)
{
	char path[PATH_SIZE];
	json_t *ans = NULL;

	if (!deltas_path(path, sizeof(path), a->pos[0], a->pos[1]))
		return usage_error(NULL, "release or delta id too long");
	int rc = ota_ctl_call(c, "DELETE", path, NULL, &ans);
	if (rc == OTACTL_OK && c->json)
		ota_ctl_print(c, ans);
	else if (rc == OTACTL_OK && !c->quiet)
		printf("%s: deleted%s\n", a->pos[1],
		       json_is_true(json_object_get(ans, "image_deleted")) ? " (and its file)"
		                                                           : "");
	json_decref(ans);
	return rc;
}
