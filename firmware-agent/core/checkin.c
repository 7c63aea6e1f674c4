/*
 * Check-in and report bodies of the device API (docs/device-api.md): the agent says what it
 * runs and what became of its last deployment, and learns whether to update, when to poll
 * again, and which newer root metadata to walk through. Decoding is strict about the fields
 * the agent acts on (types, bounds, characters of ids and paths) and lenient about fields it
 * does not know, so the server can grow the answer without breaking old devices.
 */
#include <string.h>

#include "checkin.h"

static const char *const status_names[FWA_ST__COUNT] = {
    "",      "downloading", "downloaded", "installing",  "rebooting",
    "trial", "confirmed",   "failed",     "rolled_back",
};

const char *fwa_status_name(enum fwa_status s)
{
	if ((unsigned)s >= FWA_ST__COUNT)
		return "";
	return status_names[s];
}

long fwa_checkin_encode(const struct fwa_checkin_req *r, char *buf, size_t cap)
{
	struct fwa_jw w;

	fwa_jw_init(&w, buf, cap);
	fwa_jw_obj_open(&w);
	fwa_jw_str(&w, "hw_variant", r->hw_variant);
	fwa_jw_str(&w, "version", r->version);
	fwa_jw_uint(&w, "security_floor", r->floor);
	fwa_jw_uint(&w, "root_version", r->root_version);
	fwa_jw_str(&w, "active_slot", r->active_slot ? "B" : "A");
	fwa_jw_str(&w, "boot_state", r->trial ? "trial" : "normal");
	if (r->active_sha256) {
		char hex[65];

		fwa_hex(r->active_sha256, 32, hex);
		fwa_jw_str(&w, "active_image_sha256", hex);
	}
	if (r->deployment_id && r->deployment_id[0])
		fwa_jw_str(&w, "deployment_id", r->deployment_id);
	if (r->nonce && r->nonce_len && r->nonce_len <= FWA_NONCE_MAX) {
		char hex[2 * FWA_NONCE_MAX + 1];

		fwa_hex(r->nonce, r->nonce_len, hex);
		fwa_jw_str(&w, "nonce", hex);
	}
	if (r->outcome != FWA_ST_NONE && r->deployment_id && r->deployment_id[0]) {
		fwa_jw_key(&w, "last_outcome");
		fwa_jw_obj_open(&w);
		fwa_jw_str(&w, "deployment_id", r->deployment_id);
		fwa_jw_str(&w, "status", fwa_status_name((enum fwa_status)r->outcome));
		fwa_jw_str(&w, "reason", r->reason ? r->reason : "");
		fwa_jw_obj_close(&w);
	}
	if (r->health) {
		fwa_jw_key(&w, "health");
		fwa_jw_obj_open(&w);
		fwa_jw_str(&w, "deployment_id", r->health->deployment_id);
		fwa_jw_uint(&w, "reboots", r->health->reboots);
		fwa_jw_uint(&w, "watchdog_resets", r->health->watchdog_resets);
		fwa_jw_uint(&w, "failed_health_checks", r->health->failed_checks);
		fwa_jw_uint(&w, "uptime_seconds", r->health->uptime_s);
		fwa_jw_obj_close(&w);
	}
	fwa_jw_obj_close(&w);
	return fwa_jw_end(&w);
}

long fwa_event_encode(const struct fwa_event *e, const char *version, char *buf, size_t cap)
{
	struct fwa_jw w;

	fwa_jw_init(&w, buf, cap);
	fwa_jw_obj_open(&w);
	fwa_jw_uint(&w, "seq", e->seq);
	fwa_jw_str(&w, "status", fwa_status_name((enum fwa_status)e->status));
	fwa_jw_str(&w, "reason", e->reason);
	if (version && version[0])
		fwa_jw_str(&w, "version", version);
	fwa_jw_uint(&w, "progress", e->progress);
	fwa_jw_obj_close(&w);
	return fwa_jw_end(&w);
}

static bool id_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

bool fwa_dep_id_valid(const char *s)
{
	size_t n;

	for (n = 0; s[n]; n++)
		if (!id_char(s[n]) || n >= FWA_DEP_ID_MAX)
			return false;
	return n > 0;
}

static bool path_valid(const char *s)
{
	if (s[0] != '/')
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static enum fwa_err fail(enum fwa_err e, const char *msg, const char **why)
{
	if (why)
		*why = msg;
	return e;
}

/* update.delta: {metadata: envelope, url: path, size: bytes}; anything else leaves no delta. */
static void decode_delta(const struct fwa_json *j, int d, struct fwa_checkin_answer *out)
{
	uint64_t v;
	int t;

	if (d < 0 || j->tok[d].type != FWA_JSON_OBJECT)
		return;
	t = fwa_json_get(j, d, "metadata");
	if (t < 0 || j->tok[t].type != FWA_JSON_OBJECT)
		return;
	out->delta_meta.p = j->text + j->tok[t].start;
	out->delta_meta.len = j->tok[t].end - j->tok[t].start;
	t = fwa_json_get(j, d, "url");
	if (t < 0 || fwa_json_str(j, t, out->delta_url, sizeof(out->delta_url), NULL) != FWA_OK ||
	    !path_valid(out->delta_url))
		return;
	t = fwa_json_get(j, d, "size");
	if (t < 0 || fwa_json_uint(j, t, UINT32_MAX, &v) != FWA_OK || v == 0)
		return;
	out->delta_size = v;
	out->has_delta = true;
}

enum fwa_err fwa_checkin_decode(const char *json, size_t len, struct fwa_json_tok *tok,
                                unsigned cap, struct fwa_checkin_answer *out, const char **why)
{
	struct fwa_json j;
	enum fwa_err err;
	uint64_t v;
	int t, u, r;
	unsigned i;

	memset(out, 0, sizeof(*out));
	err = fwa_json_parse(&j, json, len, tok, cap);
	if (err != FWA_OK)
		return fail(err, "check-in answer is not valid JSON within bounds", why);
	if (tok[0].type != FWA_JSON_OBJECT)
		return fail(FWA_ERR_MALFORMED, "check-in answer is not an object", why);
	t = fwa_json_get(&j, 0, "action");
	if (t < 0)
		return fail(FWA_ERR_MALFORMED, "check-in answer has no action", why);
	if (fwa_json_str_eq(&j, t, "update"))
		out->update = true;
	else if (!fwa_json_str_eq(&j, t, "none"))
		return fail(FWA_ERR_MALFORMED, "action is neither none nor update", why);
	t = fwa_json_get(&j, 0, "poll_after");
	if (t >= 0) {
		err = fwa_json_uint(&j, t, FWA_POLL_MAX_S, &v);
		if (err != FWA_OK)
			return fail(err, "poll_after is not an integer up to a week", why);
		out->poll_after = (uint32_t)v;
	}
	t = fwa_json_get(&j, 0, "server_time");
	if (t >= 0) {
		err = fwa_json_uint(&j, t, (uint64_t)1 << 40, &v);
		if (err != FWA_OK)
			return fail(err, "server_time is not a Unix time", why);
		out->has_server_time = true;
		out->server_time = (int64_t)v;
	}
	t = fwa_json_get(&j, 0, "roots");
	if (t >= 0) {
		if (tok[t].type != FWA_JSON_ARRAY)
			return fail(FWA_ERR_MALFORMED, "roots is not an array", why);
		if (tok[t].size > FWA_MAX_ROOTS)
			return fail(FWA_ERR_TOO_LARGE, "too many roots in one answer", why);
		for (i = 0; i < tok[t].size; i++) {
			r = fwa_json_at(&j, t, i);
			if (r < 0 || tok[r].type != FWA_JSON_OBJECT)
				return fail(FWA_ERR_MALFORMED, "a root is not an object", why);
			out->roots[i].p = json + tok[r].start;
			out->roots[i].len = tok[r].end - tok[r].start;
		}
		out->nroots = tok[t].size;
	}
	/* A time token that is not an object is left out: the agent then has no signed time. */
	t = fwa_json_get(&j, 0, "time_token");
	if (t >= 0 && tok[t].type == FWA_JSON_OBJECT) {
		out->time_token.p = json + tok[t].start;
		out->time_token.len = tok[t].end - tok[t].start;
	}
	if (!out->update)
		return FWA_OK;
	u = fwa_json_get(&j, 0, "update");
	if (u < 0 || tok[u].type != FWA_JSON_OBJECT)
		return fail(FWA_ERR_MALFORMED, "action update without an update object", why);
	t = fwa_json_get(&j, u, "deployment_id");
	if (t < 0)
		return fail(FWA_ERR_MALFORMED, "update has no deployment_id", why);
	err = fwa_json_str(&j, t, out->deployment_id, sizeof(out->deployment_id), NULL);
	if (err != FWA_OK || !fwa_dep_id_valid(out->deployment_id))
		return fail(FWA_ERR_MALFORMED, "deployment_id is not 1-64 of [A-Za-z0-9._-]", why);
	t = fwa_json_get(&j, u, "image_url");
	if (t < 0)
		return fail(FWA_ERR_MALFORMED, "update has no image_url", why);
	err = fwa_json_str(&j, t, out->image_url, sizeof(out->image_url), NULL);
	if (err == FWA_ERR_TOO_LARGE)
		return fail(err, "image_url is too long", why);
	if (err != FWA_OK || !path_valid(out->image_url))
		return fail(FWA_ERR_MALFORMED, "image_url is not an absolute path", why);
	t = fwa_json_get(&j, u, "image_size");
	if (t >= 0) {
		err = fwa_json_uint(&j, t, UINT32_MAX, &out->image_size);
		if (err != FWA_OK)
			return fail(err, "image_size is not a 32-bit size", why);
	}
	t = fwa_json_get(&j, u, "manifest");
	if (t < 0 || tok[t].type != FWA_JSON_OBJECT)
		return fail(FWA_ERR_MALFORMED, "update has no manifest envelope", why);
	out->manifest.p = json + tok[t].start;
	out->manifest.len = tok[t].end - tok[t].start;
	decode_delta(&j, fwa_json_get(&j, u, "delta"), out);
	return FWA_OK;
}
