/*
 * http/device_api.c - the device API of docs/device-api.md: check-in, image download with
 * Range / If-Range / ETag served by a content-reader callback in 64 KiB blocks, and idempotent
 * deployment event reports. The handlers parse, call the deployment service (deploy/deploy.h)
 * and render; what a device is offered and what a report means are decided there.
 */
#include "http/internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "deploy/delta.h"
#include "deploy/deploy.h"
#include "rollout/rollout.h"
#include "fwa/verify.h"

#define BLOCK (64 * 1024)

static const char *const event_statuses[] = {"downloading", "downloaded",  "installing",
                                             "rebooting",   "trial",       "confirmed",
                                             "failed",      "rolled_back", NULL};

static bool one_of(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

/* A spread for the poll interval, not a secret: splitmix64 per thread, seeded once from the
 * kernel (a getrandom() per check-in was one system call in seven). */
static uint32_t jitter_draw(void)
{
	static _Thread_local uint64_t state;
	static _Thread_local bool seeded;

	if (!seeded) {
		if (getrandom(&state, sizeof(state), 0) != sizeof(state))
			state = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&state;
		seeded = true;
	}
	uint64_t z = (state += 0x9E3779B97F4A7C15u);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static unsigned poll_after(const struct ota_config *cfg)
{
	double span = cfg->poll_interval * (cfg->poll_jitter / 100.0);
	double v = cfg->poll_interval - span + 2.0 * span * (jitter_draw() / 4294967296.0);
	return v < 1 ? 1 : (unsigned)v;
}

struct roots_ctx {
	json_t *arr;
	bool failed;
};

static int add_root(void *ctx, uint32_t version, const char *envelope)
{
	struct roots_ctx *rc = ctx;
	json_t *j = json_loads(envelope, 0, NULL);

	(void)version;
	if (!j || json_array_append_new(rc->arr, j) != 0) {
		rc->failed = true;
		return 1;
	}
	return 0;
}

/* The update's part of the answer. */
static json_t *update_json(const struct ota_offer *o)
{
	char url[128];
	json_t *manifest = json_loads(o->envelope, 0, NULL);

	if (!manifest)
		return NULL;
	snprintf(url, sizeof(url), "/device/v1/images/%s", o->rel.image_sha256);
	return json_pack("{s:s, s:o, s:s, s:I, s:s}", "deployment_id", o->dep.id, "manifest",
	                 manifest, "image_url", url, "image_size", (json_int_t)o->rel.image_size,
	                 "image_sha256", o->rel.image_sha256);
}

/* The delta's part of an update (docs/device-api.md, "Delta offers"); false when out of memory. */
static bool add_delta(json_t *update, const struct ota_delta_offer *d)
{
	char url[128];
	json_t *meta = json_loads(d->envelope, 0, NULL);

	if (!meta)
		return false;
	snprintf(url, sizeof(url), "/device/v1/images/%s", d->d.image_sha256);
	json_t *j = json_pack("{s:o, s:s, s:I}", "metadata", meta, "url", url, "size",
	                      (json_int_t)d->d.size);
	return j && json_object_set_new(update, "delta", j) == 0;
}

/* A hardware variant as a manifest can list it (docs/formats.md): 1-32 of [a-z0-9._-]. */
static bool hw_variant_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 32)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '.' ||
		      *s == '_' || *s == '-'))
			return false;
	return true;
}

/* Copies the string member key of from into to, cut to at most max bytes on a UTF-8 boundary
 * with OUTCOME_CUT appended when cut. */
#define OUTCOME_MAX 1024
#define OUTCOME_CUT "...[truncated]"
static void outcome_copy(json_t *to, const json_t *from, const char *key, size_t max)
{
	const char *v = json_string_value(json_object_get(from, key));

	if (!v)
		return;
	size_t n = strlen(v);
	if (n <= max) {
		json_object_set_new(to, key, json_string(v));
		return;
	}
	while (n > max || (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80))
		n--;
	char buf[256 + sizeof(OUTCOME_CUT)];
	memcpy(buf, v, n);
	memcpy(buf + n, OUTCOME_CUT, sizeof(OUTCOME_CUT));
	json_object_set_new(to, key, json_string(buf));
}

/*
 * The last outcome as stored: the object as sent when its JSON is at most OUTCOME_MAX bytes;
 * otherwise deployment_id, status and reason cut short with a marker, and "truncated": true,
 * so that an oversized outcome (which the device repeats until answered) never fails a check-in.
 * NULL when out of memory; the caller frees the text.
 */
static char *bounded_outcome(const json_t *lo)
{
	char *text = json_dumps(lo, JSON_COMPACT);

	if (!text || strlen(text) <= OUTCOME_MAX)
		return text;
	free(text);
	json_t *b = json_pack("{s:b}", "truncated", 1);
	if (!b)
		return NULL;
	outcome_copy(b, lo, "deployment_id", 64);
	outcome_copy(b, lo, "status", 16);
	outcome_copy(b, lo, "reason", 128);
	text = json_dumps(b, JSON_COMPACT);
	if (text && strlen(text) > OUTCOME_MAX) { /* only escapes can make it this long */
		free(text);
		json_object_del(b, "reason");
		text = json_dumps(b, JSON_COMPACT);
	}
	json_decref(b);
	return text;
}

/*
 * The check-in's optional `health` object: {"deployment_id", "reboots", "watchdog_resets",
 * "failed_health_checks", "uptime_seconds"}, every field required in it. *dep stays NULL when
 * absent (or null); false with the request failed when malformed.
 */
static bool health_parse(struct ota_req *r, json_t *b, struct ota_member_health *h,
                         const char **dep)
{
	json_t *o = json_object_get(b, "health");
	uint64_t reboots, wdt, failed, up;

	if (!o || json_is_null(o))
		return true;
	if (!json_is_object(o)) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "\"health\" must be an object");
		return false;
	}
	if (!ota_json_str(r, o, "deployment_id", true, 1, 64, dep) ||
	    !ota_json_uint(r, o, "reboots", true, 0, UINT32_MAX, &reboots) ||
	    !ota_json_uint(r, o, "watchdog_resets", true, 0, UINT32_MAX, &wdt) ||
	    !ota_json_uint(r, o, "failed_health_checks", true, 0, UINT32_MAX, &failed) ||
	    !ota_json_uint(r, o, "uptime_seconds", true, 0, INT64_MAX, &up)) {
		*dep = NULL;
		return false;
	}
	h->reboots = (uint32_t)reboots;
	h->watchdog_resets = (uint32_t)wdt;
	h->failed_checks = (uint32_t)failed;
	h->uptime_s = up;
	return true;
}

/*
 * Signed time: when the check-in carries a nonce and otad has a time key, the answer gets
 * "time_token". A nonce that is not 32-64 lowercase hex characters is a bad request; without
 * a time key the nonce is ignored (devices then keep their clock or their advisory time).
 */
static bool checkin_nonce(struct ota_req *r, uint8_t *nonce, size_t *len)
{
	json_t *n = json_object_get(r->json, "nonce");
	const char *s = json_is_string(n) ? json_string_value(n) : NULL;
	size_t sl = s ? strlen(s) : 0;

	*len = 0;
	if (!n || json_is_null(n))
		return true;
	if (!s || sl % 2 || sl < 2 * FWA_NONCE_MIN || sl > 2 * FWA_NONCE_MAX ||
	    fwa_unhex(s, sl, nonce) != FWA_OK || strspn(s, "0123456789abcdef") != sl) {
		ota_req_fail(r, OTA_P_INVALID_FIELD,
		             "\"nonce\" must be 32 to 64 lowercase hex characters");
		return false;
	}
	*len = sl / 2;
	return true;
}

static bool add_time_token(struct ota_req *r, json_t *answer, const uint8_t *nonce, size_t len)
{
	char *text = NULL;
	json_t *tok;

	if (!len || !ota_pki_has_time(r->deps->pki))
		return true;
	if (ota_pki_time_token(r->deps->pki, nonce, len, (int64_t)time(NULL), &text) != OTA_OK)
		return false;
	tok = json_loads(text, 0, NULL);
	free(text);
	return tok && json_object_set_new(answer, "time_token", tok) == 0;
}

void ota_h_checkin(struct ota_req *r)
{
	uint8_t nonce[FWA_NONCE_MAX];
	size_t nonce_len = 0;
	json_t *b = r->json, *answer = NULL, *update = NULL, *roots = NULL;
	const char *hw, *version, *slot, *boot, *dep_id, *active_sha = NULL;
	uint64_t floor, root_version;
	char *outcome = NULL;
	struct ota_offer offer = {0};
	struct ota_delta_offer delta = {0};

	if (!ota_json_str(r, b, "hw_variant", true, 1, 32, &hw) ||
	    !ota_json_str(r, b, "version", true, 1, OTA_ID_MAX, &version) ||
	    !ota_json_uint(r, b, "security_floor", true, 0, UINT32_MAX, &floor) ||
	    !ota_json_uint(r, b, "root_version", true, 1, UINT32_MAX, &root_version) ||
	    !ota_json_str(r, b, "active_slot", true, 1, 1, &slot) ||
	    !ota_json_str(r, b, "boot_state", true, 1, 16, &boot) ||
	    !ota_json_str(r, b, "deployment_id", false, 0, 64, &dep_id) ||
	    !ota_json_str(r, b, "active_image_sha256", false, 64, 64, &active_sha))
		goto out;
	if (active_sha && !ota_sha256_hex_valid(active_sha)) {
		ota_req_fail(r, OTA_P_INVALID_FIELD,
		             "\"active_image_sha256\" must be a lowercase hex SHA-256");
		goto out;
	}
	if (!checkin_nonce(r, nonce, &nonce_len))
		goto out;
	if (!fwa_semver_valid(version, strlen(version))) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "\"version\" must be a semantic version");
		goto out;
	}
	if (!hw_variant_valid(hw)) {
		ota_req_fail(r, OTA_P_INVALID_FIELD,
		             "\"hw_variant\" must be 1-32 of a-z 0-9 . _ - (as manifests list it)");
		goto out;
	}
	if (strcmp(slot, "A") != 0 && strcmp(slot, "B") != 0) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "\"active_slot\" must be \"A\" or \"B\"");
		goto out;
	}
	if (strcmp(boot, "normal") != 0 && strcmp(boot, "trial") != 0) {
		ota_req_fail(r, OTA_P_INVALID_FIELD,
		             "\"boot_state\" must be \"normal\" or \"trial\"");
		goto out;
	}
	json_t *lo = json_object_get(b, "last_outcome");
	if (lo && !json_is_null(lo)) {
		if (!json_is_object(lo)) {
			ota_req_fail(r, OTA_P_INVALID_FIELD, "\"last_outcome\" must be an object");
			goto out;
		}
		outcome = bounded_outcome(lo);
		if (!outcome)
			goto nomem;
	}
	/* Health after the confirm (docs/device-api.md, "Health after the confirm"): optional. */
	struct ota_member_health health = {0};
	const char *health_dep = NULL;
	if (!health_parse(r, b, &health, &health_dep))
		goto out;
	/* The check-in is bound to succeed now, and it records into the device's row. */
	if (!ota_req_admit(r))
		goto out;
	struct ota_device_report c = {
	    .id = r->who->name,
	    .hw_variant = hw,
	    .version = version,
	    .security_floor = (uint32_t)floor,
	    .root_version = (uint32_t)root_version,
	    .active_slot = slot,
	    .boot_state = boot,
	    .last_outcome = outcome,
	};
	if (ota_deploy_checkin(r->deps->store, &c, ota_clock_now(), &offer) != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot record the check-in");
		goto out;
	}
	if (health_dep && ota_rollout_on_health(r->deps->store, r->who->name, health_dep, &health,
	                                        ota_clock_now()) != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot record the health report");
		goto out;
	}
	/* A delta beside the full image, when the deployment service finds one (deploy/delta.h);
	 * the full image alone when that fails: a delta is never needed. */
	if (offer.update &&
	    ota_deploy_delta(r->deps->store, &offer, c.id, active_sha,
	                     r->deps->cfg->delta_max_percent, ota_clock_now(), &delta) != OTA_OK)
		log_warn("device %s: no delta offered: the store failed", c.id);
	if (offer.update && !(update = update_json(&offer)))
		goto nomem;
	if (delta.offered && !add_delta(update, &delta))
		goto nomem;
	answer = json_pack("{s:s, s:i, s:I}", "action", update ? "update" : "none", "poll_after",
	                   (int)poll_after(r->deps->cfg), "server_time", (json_int_t)time(NULL));
	if (!answer)
		goto nomem;
	if (update && json_object_set_new(answer, "update", update) != 0) {
		update = NULL;
		goto nomem;
	}
	update = NULL;
	if (!add_time_token(r, answer, nonce, nonce_len))
		goto nomem;
	if (root_version < ota_trust_version(r->deps->trust)) {
		struct roots_ctx rc = {.arr = json_array()};
		roots = rc.arr;
		if (!roots ||
		    ota_store_roots_after(r->deps->store, (uint32_t)root_version, add_root, &rc) !=
		        OTA_OK ||
		    rc.failed)
			goto nomem;
		json_object_set_new(answer, "roots", roots);
		roots = NULL;
	}
	ota_req_json(r, 200, answer);
	answer = NULL;
	goto out;
nomem:
	ota_req_fail(r, OTA_P_INTERNAL, "cannot build the answer");
out:
	json_decref(update);
	json_decref(roots);
	json_decref(answer);
	free(outcome);
	ota_offer_clear(&offer);
	ota_delta_offer_clear(&delta);
}

/* ---- image download ---- */

struct reader {
	int fd;
	uint64_t start;
};

static ssize_t read_block(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct reader *rd = cls;

	if (max > BLOCK)
		max = BLOCK;
	for (;;) {
		ssize_t n = pread(rd->fd, buf, max, (off_t)(rd->start + pos));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		return n;
	}
}

static void free_reader(void *cls)
{
	struct reader *rd = cls;

	if (rd) {
		close(rd->fd);
		free(rd);
	}
}

/* Reads the decimal digits at *s (at least one, no sign, no overflow); false if there are none. */
static bool range_number(const char **s, unsigned long long *v)
{
	const char *p = *s;
	unsigned long long n = 0;

	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (ULLONG_MAX - 9) / 10)
			return false;
		n = n * 10 + (unsigned long long)(*p - '0');
	}
	*s = p;
	*v = n;
	return true;
}

/*
 * Parses "bytes=N-", "bytes=N-M", "bytes=-N" against size. 1 ok, 0 ignore (other units, several
 * ranges, or a malformed header: RFC 9110 says to answer the whole image), -1 unsatisfiable.
 */
static int parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
	unsigned long long a, b;

	if (strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
		return 0;
	h += 6;
	if (*h == '-') {
		h++;
		if (!range_number(&h, &a) || *h)
			return 0;
		if (a == 0 || size == 0)
			return -1;
		*first = a >= size ? 0 : size - a;
		*last = size - 1;
		return 1;
	}
	if (!range_number(&h, &a) || *h++ != '-')
		return 0;
	if (*h == '\0') {
		if (a >= size)
			return -1;
		*first = a;
		*last = size - 1;
		return 1;
	}
	if (!range_number(&h, &b) || *h || b < a)
		return 0;
	if (a >= size)
		return -1;
	*first = a;
	*last = b >= size ? size - 1 : b;
	return 1;
}

void ota_h_image(struct ota_req *r)
{
	const char *sha = r->params[0];
	bool allowed = false;
	int fd = -1;
	uint64_t size = 0, first = 0, last = 0;
	struct reader *rd = NULL;
	char etag[96];

	if (!ota_sha256_hex_valid(sha) ||
	    ota_store_image_allowed(r->deps->store, r->who->name, sha, &allowed) != OTA_OK ||
	    /* or the file of the delta offered to the device's deployment (deploy/delta.h) */
	    (!allowed && ota_store_delta_image_allowed(r->deps->store, r->who->name, sha,
	                                               &allowed) != OTA_OK) ||
	    !allowed) {
		ota_req_fail(r, OTA_P_IMAGE_NOT_FOUND, "no image %.64s is deployed to this device",
		             sha);
		return;
	}
	if (ota_images_open_file(r->deps->images, sha, &fd, &size) != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "the image file cannot be opened");
		return;
	}
	snprintf(etag, sizeof(etag), "\"%s\"", sha);
	const char *range = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Range");
	const char *if_range = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "If-Range");
	int pr = 0;
	if (range && (!if_range || strcmp(if_range, etag) == 0))
		pr = parse_range(range, size, &first, &last);
	if (pr < 0) {
		close(fd);
		snprintf(r->content_range, sizeof(r->content_range), "bytes */%llu",
		         (unsigned long long)size);
		ota_req_fail(r, OTA_P_RANGE_NOT_SATISFIABLE, "the image has %llu bytes",
		             (unsigned long long)size);
		return;
	}
	if (pr == 0) {
		first = 0;
		last = size ? size - 1 : 0;
	}
	uint64_t len = size ? last - first + 1 : 0;
	rd = malloc(sizeof(*rd));
	if (!rd) {
		close(fd);
		ota_req_fail(r, OTA_P_INTERNAL, "out of memory");
		return;
	}
	rd->fd = fd;
	rd->start = first;
	r->response = MHD_create_response_from_callback(len, BLOCK, read_block, rd, free_reader);
	if (!r->response) {
		free_reader(rd);
		ota_req_fail(r, OTA_P_INTERNAL, "out of memory");
		return;
	}
	MHD_add_response_header(r->response, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        "application/octet-stream");
	MHD_add_response_header(r->response, MHD_HTTP_HEADER_ETAG, etag);
	MHD_add_response_header(r->response, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	r->status = 200;
	if (pr == 1) {
		char cr[96];
		snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)first,
		         (unsigned long long)last, (unsigned long long)size);
		MHD_add_response_header(r->response, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
		r->status = 206;
	}
	/* What each device downloads, for operators weighing deltas against full images. */
	if (strcmp(r->method, "GET") == 0)
		log_info("device %s: image %s: %llu bytes sent", r->who->name, sha,
		         (unsigned long long)len);
}

/* ---- event reports ---- */

static bool deployment_id_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 3 || n >= OTA_DEPLOYMENT_ID_MAX || strncmp(s, "d-", 2) != 0)
		return false;
	for (size_t i = 2; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Renders a report's result (the service's error, or res). */
static void event_answer(struct ota_req *r, enum ota_err e, const struct ota_report_result *res)
{
	const char *dep_id = r->params[0];

	if (e == OTA_ERR_NOT_FOUND) {
		ota_req_fail(r, OTA_P_DEPLOYMENT_NOT_FOUND, "no deployment %s", dep_id);
		return;
	}
	if (e == OTA_ERR_FORBIDDEN) {
		ota_req_fail(r, OTA_P_NOT_YOUR_DEPLOYMENT, "deployment %s is not this device's",
		             dep_id);
		return;
	}
	if (e == OTA_ERR_CONFLICT && res->seq_conflict) {
		uint64_t seq = 0;
		(void)ota_json_uint(r, r->json, "seq", true, 1, INT64_MAX, &seq);
		ota_req_fail(r, OTA_P_SEQ_CONFLICT,
		             "seq %llu of deployment %s was reported with another event; "
		             "the new one is not stored",
		             (unsigned long long)seq, dep_id);
		return;
	}
	if (e != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot store the report");
		return;
	}
	ota_req_json(r, 200,
	             json_pack("{s:b, s:s}", "duplicate", res->duplicate, "deployment_status",
	                       res->deployment_status));
}

/* The report's group is over (ota_req_wait): its result. */
static void event_resume(struct ota_req *r)
{
	struct ota_report_result res;
	enum ota_err e = ota_deploy_report_finish(r->deps->store, r->wait, &res);

	r->wait = NULL;
	event_answer(r, e, &res);
}

/* The request ended before its answer (otad stopping): the group is over, the job is freed. */
static void event_wait_free(struct ota_req *r)
{
	struct ota_report_result res;

	if (ota_deploy_report_finish(r->deps->store, r->wait, &res) != OTA_OK)
		log_debug("%s %s: the report was not stored", r->method, r->url);
	r->wait = NULL;
}

/*
 * The report waits for its group commit without its worker thread: the connection is
 * suspended meanwhile (ota_req_wait), so a group takes every report that arrived while the
 * previous one was flushed, not one per thread. Acknowledged only after the commit.
 */
void ota_h_event(struct ota_req *r)
{
	json_t *b = r->json;
	const char *dep_id = r->params[0], *status, *reason, *version;
	uint64_t seq, progress = 0;
	bool has_progress;
	struct ota_report_result res = {0};

	if (!ota_json_uint(r, b, "seq", true, 1, INT64_MAX, &seq) ||
	    !ota_json_str(r, b, "status", true, 1, 16, &status) ||
	    !ota_json_str(r, b, "reason", false, 0, OTA_REASON_MAX, &reason) ||
	    !ota_json_str(r, b, "version", false, 1, OTA_ID_MAX, &version) ||
	    !ota_json_uint(r, b, "progress", false, 0, INT64_MAX, &progress))
		return;
	has_progress =
	    json_object_get(b, "progress") && !json_is_null(json_object_get(b, "progress"));
	if (!one_of(status, event_statuses)) {
		ota_req_fail(r, OTA_P_INVALID_FIELD,
		             "\"status\" must be one of downloading, downloaded, installing, "
		             "rebooting, trial, confirmed, failed, rolled_back");
		return;
	}
	/* The strings stay in r->json until the request ends, after the job is finished. */
	struct ota_event ev = {.seq = seq,
	                       .status = status,
	                       .reason = reason,
	                       .version = version,
	                       .progress = has_progress ? (int64_t)progress : -1};
	struct ota_report_job *job = NULL;
	enum ota_err e = deployment_id_valid(dep_id)
	                     ? ota_deploy_report_submit(r->deps->store, r->who->name, dep_id, &ev,
	                                                ota_clock_now(), ota_req_wake, r, &job)
	                     : OTA_ERR_NOT_FOUND;
	if (e != OTA_OK) {
		event_answer(r, e, &res);
		return;
	}
	r->wait = job;
	r->wait_free = event_wait_free;
	r->resume = event_resume;
	ota_req_wait(r);
}
