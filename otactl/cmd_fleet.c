/*
 * otactl/cmd_fleet.c - devices, images, releases, roots, single deployments and certificate
 * revocation: each command builds one request (or pages through a list), and prints the
 * answer as a table or a "key: value" view, as JSON with --json, or only ids with --quiet.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

#define PATH_SIZE 4096

static const struct ota_ctl_col device_cols[] = {
    {"ID", "id", COL_STR},           {"ADMISSION", "admission", COL_STR},
    {"STATUS", "status", COL_STR},   {"HW", "hw_variant", COL_STR},
    {"VERSION", "version", COL_STR}, {"FLOOR", "security_floor", COL_STR},
    {"TAGS", "tags", COL_LIST},      {"LAST SEEN", "last_seen", COL_TIME},
};

/* The common list options: --page-size (1..1000) and --limit (0: all). */
static bool list_opts(const struct args *a, unsigned *page, size_t *max)
{
	unsigned long long p = 100, m = 0;

	if (!arg_uint(a, "page-size", 1000, &p) || !arg_uint(a, "limit", 1000000000, &m))
		return false;
	if (p == 0) {
		ota_ctl_err("--page-size: 1 to 1000");
		return false;
	}
	*page = (unsigned)p;
	*max = (size_t)m;
	return true;
}

int cmd_devices_list(struct ota_ctl *c, const struct args *a)
{
	static const char *const filters[][2] = {
	    {"hw-variant", "hw_variant"}, {"version", "version"}, {"tag", "tag"},
	    {"admission", "admission"},   {"status", "status"},   {"seen-before", "seen_before"},
	    {"seen-after", "seen_after"}, {"rollout", "rollout"},
	};
	char path[PATH_SIZE] = "/api/v1/devices";
	unsigned page;
	size_t max;
	json_t *items;

	if (!list_opts(a, &page, &max))
		return OTACTL_USAGE;
	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
		const char *v = arg_opt(a, filters[i][0]);
		if (v && !ota_ctl_query_add(path, sizeof(path), filters[i][1], v))
			return usage_error(NULL, "--%s: value too long", filters[i][0]);
	}
	int rc = ota_ctl_list(c, path, NULL, page, max, &items);
	if (rc != OTACTL_OK)
		return rc;
	ota_ctl_print_list(c, items, device_cols, sizeof(device_cols) / sizeof(device_cols[0]));
	json_decref(items);
	return OTACTL_OK;
}

/* GET or POST one object and print it. */
static int one(struct ota_ctl *c, const char *method, const char *path, json_t *body,
               const char *quiet_key)
{
	json_t *ans = NULL;
	int rc = ota_ctl_call(c, method, path, body, &ans);

	json_decref(body);
	if (rc != OTACTL_OK)
		return rc;
	if (c->quiet && !c->json && quiet_key) {
		json_t *v = json_object_get(ans, quiet_key);
		char buf[512];
		if (v)
			printf("%s\n", ota_ctl_cell(v, COL_STR, buf, sizeof(buf)));
	} else {
		ota_ctl_print(c, ans);
	}
	json_decref(ans);
	return OTACTL_OK;
}

int cmd_devices_show(struct ota_ctl *c, const struct args *a)
{
	char path[PATH_SIZE];
	json_t *d = NULL;

	if (!api_path(path, sizeof(path), "devices/%s", a->pos[0]))
		return usage_error(NULL, "device id too long");
	int rc = ota_ctl_call(c, "GET", path, NULL, &d);
	if (rc != OTACTL_OK)
		return rc;
	if (c->json || c->quiet) {
		ota_ctl_print(c, d);
	} else {
		/* The deployment history as a table after the device's fields. */
		json_t *hist = json_incref(json_object_get(d, "deployments"));
		json_object_del(d, "deployments");
		ota_ctl_kv(stdout, d);
		if (json_array_size(hist)) {
			static const struct ota_ctl_col cols[] = {
			    {"DEPLOYMENT", "id", COL_STR}, {"RELEASE", "release_id", COL_SHORT},
			    {"STATUS", "status", COL_STR}, {"CREATED", "created_at", COL_TIME},
			    {"REASON", "reason", COL_STR},
			};
			printf("\n");
			ota_ctl_table(stdout, hist, cols, sizeof(cols) / sizeof(cols[0]));
		}
		json_decref(hist);
	}
	json_decref(d);
	return OTACTL_OK;
}

int cmd_devices_register(struct ota_ctl *c, const struct args *a)
{
	json_t *body = json_pack("{s:s, s:s}", "id", a->pos[0], "admission",
	                         arg_opt(a, "pending") ? "pending" : "approved");
	const char *fp = arg_opt(a, "fingerprint");

	if (fp)
		json_object_set_new(body, "fingerprint", json_string(fp));
	return one(c, "POST", "/api/v1/devices", body, "id");
}

/* approve, reject, decommission: POST {} to each device named. */
static int device_action(struct ota_ctl *c, const struct args *a, const char *action)
{
	int rc = OTACTL_OK;

	for (unsigned i = 0; i < a->npos; i++) {
		char path[PATH_SIZE];
		json_t *ans = NULL;
		if (!api_path(path, sizeof(path), "devices/%s/%s", a->pos[i], action))
			return usage_error(NULL, "device id too long");
		json_t *empty = json_object();
		int r = ota_ctl_call(c, "POST", path, empty, &ans);
		json_decref(empty);
		if (r != OTACTL_OK) {
			rc = rc == OTACTL_OK ? r : rc;
			continue;
		}
		if (c->json)
			ota_ctl_print(c, ans);
		else if (!c->quiet)
			printf("%s: %s, %s\n", a->pos[i],
			       json_string_value(json_object_get(ans, "status")) ?: "?",
			       json_string_value(json_object_get(ans, "admission")) ?: "?");
		json_decref(ans);
	}
	return rc;
}

int cmd_devices_approve(struct ota_ctl *c, const struct args *a)
{
	return device_action(c, a, "approve");
}

int cmd_devices_reject(struct ota_ctl *c, const struct args *a)
{
	return device_action(c, a, "reject");
}

int cmd_devices_decommission(struct ota_ctl *c, const struct args *a)
{
	return device_action(c, a, "decommission");
}

int cmd_devices_reprovision(struct ota_ctl *c, const struct args *a)
{
	char path[PATH_SIZE];
	const char *fp = arg_opt(a, "fingerprint");

	if (!fp)
		return usage_error(NULL, "devices reprovision: --fingerprint is required");
	if (!api_path(path, sizeof(path), "devices/%s/reprovision", a->pos[0]))
		return usage_error(NULL, "device id too long");
	return one(c, "POST", path, json_pack("{s:s}", "fingerprint", fp), "id");
}

/* tag/untag: read the device's tags, change them, PUT them back. */
static int retag(struct ota_ctl *c, const struct args *a, bool add)
{
	char path[PATH_SIZE];
	json_t *d = NULL;

	if (!api_path(path, sizeof(path), "devices/%s", a->pos[0]))
		return usage_error(NULL, "device id too long");
	int rc = ota_ctl_call(c, "GET", path, NULL, &d);
	if (rc != OTACTL_OK)
		return rc;
	json_t *tags = json_deep_copy(json_object_get(d, "tags"));
	json_decref(d);
	if (!json_is_array(tags)) {
		json_decref(tags);
		tags = json_array();
	}
	for (unsigned i = 1; i < a->npos; i++) {
		size_t k;
		json_t *t;
		bool found = false;
		json_array_foreach(tags, k, t)
		{
			if (strcmp(json_string_value(t) ?: "", a->pos[i]) == 0) {
				found = true;
				if (!add)
					json_array_remove(tags, k);
				break;
			}
		}
		if (add && !found)
			json_array_append_new(tags, json_string(a->pos[i]));
	}
	if (!api_path(path, sizeof(path), "devices/%s/tags", a->pos[0])) {
		json_decref(tags);
		return usage_error(NULL, "device id too long");
	}
	json_t *ans = NULL;
	json_t *body = json_pack("{s:o}", "tags", tags);
	rc = ota_ctl_call(c, "PUT", path, body, &ans);
	json_decref(body);
	if (rc == OTACTL_OK) {
		char buf[512];
		if (c->json)
			ota_ctl_print(c, ans);
		else if (!c->quiet)
			printf(
			    "%s: tags %s\n", a->pos[0],
			    ota_ctl_cell(json_object_get(ans, "tags"), COL_LIST, buf, sizeof(buf)));
	}
	json_decref(ans);
	return rc;
}

int cmd_devices_tag(struct ota_ctl *c, const struct args *a)
{
	return retag(c, a, true);
}

int cmd_devices_untag(struct ota_ctl *c, const struct args *a)
{
	return retag(c, a, false);
}

int cmd_images_upload(struct ota_ctl *c, const struct args *a)
{
	json_t *ans = NULL;
	int rc = ota_ctl_upload(c, "/api/v1/images", a->pos[0], &ans);

	if (rc != OTACTL_OK)
		return rc;
	if (c->json)
		ota_ctl_print(c, ans);
	else if (c->quiet)
		printf("%s\n", json_string_value(json_object_get(ans, "sha256")) ?: "");
	else
		printf("%s  %lld bytes%s\n",
		       json_string_value(json_object_get(ans, "sha256")) ?: "?",
		       (long long)json_integer_value(json_object_get(ans, "size")),
		       json_is_true(json_object_get(ans, "existed")) ? " (uploaded before)" : "");
	json_decref(ans);
	return OTACTL_OK;
}

int cmd_images_list(struct ota_ctl *c, const struct args *a)
{
	static const struct ota_ctl_col cols[] = {
	    {"SHA256", "sha256", COL_STR},
	    {"SIZE", "size", COL_STR},
	    {"RELEASES", "releases", COL_STR},
	    {"CREATED", "created_at", COL_TIME},
	};
	unsigned page;
	size_t max;
	json_t *items;

	if (!list_opts(a, &page, &max))
		return OTACTL_USAGE;
	int rc = ota_ctl_list(c, "/api/v1/images", NULL, page, max, &items);
	if (rc != OTACTL_OK)
		return rc;
	ota_ctl_print_list(c, items, cols, sizeof(cols) / sizeof(cols[0]));
	json_decref(items);
	return OTACTL_OK;
}

int cmd_images_delete(struct ota_ctl *c, const struct args *a)
{
	char path[PATH_SIZE];
	json_t *ans = NULL;

	if (!api_path(path, sizeof(path), "images/%s", a->pos[0]))
		return usage_error(NULL, "image hash too long");
	int rc = ota_ctl_call(c, "DELETE", path, NULL, &ans);
	if (rc == OTACTL_OK && c->json)
		ota_ctl_print(c, ans);
	else if (rc == OTACTL_OK && !c->quiet)
		printf("%s: deleted\n", a->pos[0]);
	json_decref(ans);
	return rc;
}

/* Reads a whole JSON file; prints why not. */
static int read_json(const char *file, json_t **out)
{
	json_error_t e;

	*out = json_load_file(file, 0, &e);
	if (!*out) {
		ota_ctl_err("%s:%d: %s", file, e.line, e.text);
		return OTACTL_LOCAL;
	}
	return OTACTL_OK;
}

static const unsigned char *b64_table(void)
{
	static unsigned char t[256];
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	memset(t, 0xff, sizeof(t));
	for (unsigned i = 0; i < 64; i++)
		t[(unsigned char)a[i]] = (unsigned char)i;
	return t;
}

/* Decodes standard base64 (padding optional); NULL when malformed. Caller frees. */
static char *b64_decode(const char *s, size_t *len)
{
	const unsigned char *t = b64_table();
	size_t n = strlen(s), o = 0;
	char *out = malloc(n / 4 * 3 + 4);
	unsigned acc = 0, bits = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '=')
			break;
		unsigned v = t[(unsigned char)s[i]];
		if (v == 0xff) {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	*len = o;
	return out;
}

/* Is the image with this SHA-256 uploaded? Pages through the image list. */
static int image_uploaded(struct ota_ctl *c, const char *sha, bool *found)
{
	json_t *items;
	size_t i;
	json_t *e;

	*found = false;
	int rc = ota_ctl_list(c, "/api/v1/images", NULL, 1000, 0, &items);
	if (rc != OTACTL_OK)
		return rc;
	json_array_foreach(items, i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "sha256")) ?: "", sha) == 0)
			*found = true;
	}
	json_decref(items);
	return OTACTL_OK;
}

int cmd_releases_add(struct ota_ctl *c, const struct args *a)
{
	json_t *env = NULL, *payload = NULL;
	const char *image = arg_opt(a, "image");
	char path[PATH_SIZE] = "/api/v1/releases";
	int rc = read_json(a->pos[0], &env);

	if (rc != OTACTL_OK)
		return rc;
	if (!image) {
		/* The manifest names its image; read it (unverified: the server verifies). */
		size_t len = 0;
		const char *p = json_string_value(json_object_get(env, "payload"));
		char *raw = p ? b64_decode(p, &len) : NULL;
		payload = raw ? json_loadb(raw, len, 0, NULL) : NULL;
		free(raw);
		image =
		    json_string_value(json_object_get(json_object_get(payload, "image"), "sha256"));
		if (!image) {
			ota_ctl_err("%s: not a manifest envelope (no payload.image.sha256)",
			            a->pos[0]);
			rc = OTACTL_LOCAL;
			goto out;
		}
	} else if (!ota_ctl_query_add(path, sizeof(path), "image", image)) {
		rc = usage_error(NULL, "--image too long");
		goto out;
	}
	bool found;
	rc = image_uploaded(c, image, &found);
	if (rc != OTACTL_OK)
		goto out;
	if (!found) {
		ota_ctl_err("image %s is not uploaded: run otactl images upload FILE first", image);
		rc = OTACTL_NOT_FOUND;
		goto out;
	}
	rc = one(c, "POST", path, json_incref(env), "id");
out:
	json_decref(payload);
	json_decref(env);
	return rc;
}

static const struct ota_ctl_col release_cols[] = {
    {"ID", "id", COL_STR},
    {"NAME", "name", COL_STR},
    {"VERSION", "version", COL_STR},
    {"SV", "security_version", COL_STR},
    {"HW", "hw_variants", COL_LIST},
    {"SIZE", "image_size", COL_STR},
    {"CREATED", "created_at", COL_TIME},
};

int cmd_releases_list(struct ota_ctl *c, const struct args *a)
{
	unsigned page;
	size_t max;
	json_t *items;

	if (!list_opts(a, &page, &max))
		return OTACTL_USAGE;
	int rc = ota_ctl_list(c, "/api/v1/releases", "releases", page, max, &items);
	if (rc != OTACTL_OK)
		return rc;
	ota_ctl_print_list(c, items, release_cols, sizeof(release_cols) / sizeof(release_cols[0]));
	json_decref(items);
	return OTACTL_OK;
}

int cmd_releases_show(struct ota_ctl *c, const struct args *a)
{
	char path[PATH_SIZE];

	if (!api_path(path, sizeof(path), "releases/%s", a->pos[0]))
		return usage_error(NULL, "release id too long");
	return one(c, "GET", path, NULL, "id");
}

int cmd_releases_delete(struct ota_ctl *c, const struct args *a)
{
	char path[PATH_SIZE];

	if (!api_path(path, sizeof(path), "releases/%s", a->pos[0]))
		return usage_error(NULL, "release id too long");
	json_t *ans = NULL;
	int rc = ota_ctl_call(c, "DELETE", path, NULL, &ans);
	if (rc == OTACTL_OK && c->json)
		ota_ctl_print(c, ans);
	else if (rc == OTACTL_OK && !c->quiet)
		printf("%s: deleted\n", a->pos[0]);
	json_decref(ans);
	return rc;
}

int cmd_roots_add(struct ota_ctl *c, const struct args *a)
{
	json_t *env = NULL;
	int rc = read_json(a->pos[0], &env);

	if (rc != OTACTL_OK)
		return rc;
	return one(c, "POST", "/api/v1/roots", env, "version");
}

int cmd_deploy(struct ota_ctl *c, const struct args *a)
{
	return one(c, "POST", "/api/v1/deployments",
	           json_pack("{s:s, s:s}", "device_id", a->pos[0], "release_id", a->pos[1]), "id");
}

int cmd_deployments_show(struct ota_ctl *c, const struct args *a)
{
	char path[PATH_SIZE];

	if (!api_path(path, sizeof(path), "deployments/%s", a->pos[0]))
		return usage_error(NULL, "deployment id too long");
	return one(c, "GET", path, NULL, "status");
}

int cmd_revoke(struct ota_ctl *c, const struct args *a)
{
	json_t *body = json_pack("{s:s}", "fingerprint", a->pos[0]);
	const char *why = arg_opt(a, "reason");

	if (why)
		json_object_set_new(body, "reason", json_string(why));
	json_t *ans = NULL;
	int rc = ota_ctl_call(c, "POST", "/api/v1/revocations", body, &ans);
	json_decref(body);
	if (rc == OTACTL_OK && !c->quiet && !c->json)
		printf("%s: revoked\n", a->pos[0]);
	else if (rc == OTACTL_OK && c->json)
		ota_ctl_print(c, ans);
	json_decref(ans);
	return rc;
}
