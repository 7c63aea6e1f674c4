/*
 * http/mgmt_devices.c - the device life cycle on the management API: list with filters and
 * cursor pages, one device with its deployment history, pre-registration, approve, reject,
 * decommission, re-provision (pin a new certificate fingerprint) and tags. Every change is
 * audited (before and after) in the transaction that makes it.
 */
#include "http/mgmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "store/mgmt_store.h"

#define MAX_TAGS 32

static bool tag_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 64)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:=-") ==
	       n;
}

static bool hex64(const char *s)
{
	return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static json_t *device_json(const struct ota_device_info *d)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", d->d.id, "fingerprint",
	                      d->d.fingerprint, "status", d->d.status, "admission", d->admission,
	                      "registered_at", (json_int_t)d->admitted_at);
	json_t *tags = json_array();
	char buf[sizeof(d->tags)], *save = NULL;

	if (!j || !tags) {
		json_decref(j);
		json_decref(tags);
		return NULL;
	}
	snprintf(buf, sizeof(buf), "%s", d->tags);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		json_array_append_new(tags, json_string(t));
	json_object_set_new(j, "tags", tags);
	if (d->d.known_state) {
		json_object_set_new(j, "hw_variant", json_string(d->d.hw_variant));
		json_object_set_new(j, "version", json_string(d->d.version));
		json_object_set_new(j, "security_floor", json_integer(d->d.security_floor));
		json_object_set_new(j, "root_version", json_integer(d->d.root_version));
	}
	json_object_set_new(j, "last_seen",
	                    d->d.last_seen ? json_integer(d->d.last_seen) : json_null());
	return j;
}

/* The device's state as audit JSON text (malloc'd) or NULL. */
static char *device_state(const struct ota_device_info *d)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "status", d->d.status, "admission",
	                      d->admission, "fingerprint", d->d.fingerprint, "tags", d->tags);
	char *t = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	return t;
}

/* ---- list ---- */

static void list_one(void *ctx, const struct ota_device_info *d)
{
	ota_page_add(ctx, device_json(d), 0, d->d.id);
}

static bool one_of(const char *v, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(v, *set) == 0)
			return true;
	return false;
}

void ota_h_devices_list(struct ota_req *r)
{
	static const char *const admissions[] = {"pending", "approved", "rejected", NULL};
	static const char *const statuses[] = {"admitted", "decommissioned", NULL};
	struct ota_device_filter f = {0};
	struct ota_page p;
	int64_t before, after;

	if (!ota_page_open(r, &p, OTA_PAGE_ID) ||
	    !ota_q_int(r, "seen_before", 0, INT64_MAX, 0, &before) ||
	    !ota_q_int(r, "seen_after", 0, INT64_MAX, 0, &after))
		return;
	f.limit = p.limit;
	f.seen_before = before;
	f.seen_after = after;
	f.after_id = p.after.id;
	f.hw_variant = ota_q(r, "hw_variant");
	f.version = ota_q(r, "version");
	f.tag = ota_q(r, "tag");
	f.admission = ota_q(r, "admission");
	f.status = ota_q(r, "status");
	f.rollout_id = ota_q(r, "rollout");
	if ((f.hw_variant && strlen(f.hw_variant) > 32) ||
	    (f.version && strlen(f.version) > OTA_ID_MAX) || (f.tag && !tag_valid(f.tag)) ||
	    (f.admission && !one_of(f.admission, admissions)) ||
	    (f.status && !one_of(f.status, statuses)) ||
	    (f.rollout_id && strlen(f.rollout_id) > OTA_ID_MAX)) {
		ota_req_fail(r, OTA_P_INVALID_FIELD,
		             "a filter is malformed (hw_variant, version, tag, admission "
		             "pending|approved|rejected, status admitted|decommissioned, rollout)");
		return;
	}
	ota_page_send(r, &p, ota_store_device_list(r->deps->store, &f, list_one, &p, &p.more),
	              "devices");
}

/* ---- one device ---- */

static void history_one(void *ctx, const struct ota_deployment *d)
{
	json_array_append_new(
	    ctx, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:o}", "id", d->id, "device_id",
	                   d->device_id, "release_id", d->release_id, "status", d->status, "reason",
	                   d->reason, "created_at", (json_int_t)d->created_at, "updated_at",
	                   (json_int_t)d->updated_at, "finished_at",
	                   d->finished_at ? json_integer(d->finished_at) : json_null()));
}

/* Reads the device of r->params[0]; false with a problem set. */
static bool load(struct ota_req *r, struct ota_device_info *d)
{
	enum ota_err e;

	if (!ota_auth_name_valid(r->params[0])) {
		ota_req_fail(r, OTA_P_DEVICE_NOT_FOUND, "no device %s", r->params[0]);
		return false;
	}
	e = ota_store_device_info(r->deps->store, r->params[0], d);
	if (e == OTA_ERR_NOT_FOUND)
		ota_req_fail(r, OTA_P_DEVICE_NOT_FOUND, "no device %s", r->params[0]);
	else if (e != OTA_OK)
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the device");
	return e == OTA_OK;
}

void ota_h_device_show(struct ota_req *r)
{
	struct ota_device_info d;
	json_t *j, *hist;

	if (!load(r, &d))
		return;
	j = device_json(&d);
	hist = json_array();
	if (!j || !hist ||
	    ota_store_device_deployments(r->deps->store, d.d.id, 100, history_one, hist) !=
	        OTA_OK) {
		json_decref(j);
		json_decref(hist);
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the deployment history");
		return;
	}
	json_object_set_new(j, "deployments", hist);
	ota_req_json(r, 200, j);
}

/* ---- changes ---- */

enum change { APPROVE, REJECT, DECOMMISSION, REPROVISION, TAGS };

/* Applies one change to the loaded device d, audited; answers with the device. */
static void change(struct ota_req *r, enum change what, const char *fingerprint,
                   const char *const *tags, unsigned ntags)
{
	static const char *const actions[] = {"device.approve", "device.reject",
	                                      "device.decommission", "device.reprovision",
	                                      "device.tags"};
	struct ota_device_info d, after;
	struct ota_store *st = r->deps->store;
	char *before_s = NULL, *after_s = NULL;
	enum ota_err e;

	if (!load(r, &d))
		return;
	if (what == DECOMMISSION && strcmp(d.d.status, "decommissioned") == 0) {
		ota_req_fail(r, OTA_P_CONFLICT, "device %s is decommissioned already", d.d.id);
		return;
	}
	if ((what == APPROVE || what == REJECT) && strcmp(d.d.status, "decommissioned") == 0) {
		ota_req_fail(r, OTA_P_CONFLICT,
		             "device %s is decommissioned: re-provision it first", d.d.id);
		return;
	}
	if (!ota_mgmt_begin(r))
		return;
	switch (what) {
	case APPROVE:
		e = ota_store_device_set_admission(st, d.d.id, "approved");
		break;
	case REJECT:
		e = ota_store_device_set_admission(st, d.d.id, "rejected");
		break;
	case DECOMMISSION:
		e = ota_store_device_set_status(st, d.d.id, "decommissioned");
		if (e == OTA_OK)
			e = ota_deploy_cancel_active(st, d.d.id, "device decommissioned",
			                             (int64_t)time(NULL));
		break;
	case REPROVISION:
		e = ota_store_device_set_fingerprint(st, d.d.id, fingerprint);
		if (e == OTA_ERR_CONFLICT)
			ota_req_fail(r, OTA_P_CONFLICT,
			             "fingerprint %.16s... is pinned to another device: one device "
			             "per certificate",
			             fingerprint);
		break;
	case TAGS:
	default:
		e = ota_store_device_set_tags(st, d.d.id, tags, ntags);
		break;
	}
	if (e == OTA_OK)
		e = ota_store_device_info(st, d.d.id, &after);
	if (e == OTA_OK) {
		before_s = device_state(&d);
		after_s = device_state(&after);
		struct ota_audit_entry a = {.action = actions[what],
		                            .device_id = d.d.id,
		                            .before = before_s,
		                            .after = after_s};
		e = before_s && after_s ? ota_mgmt_audit(r, &a) : OTA_ERR_NOMEM;
	}
	free(before_s);
	free(after_s);
	if (!ota_mgmt_end(r, e))
		return;
	log_notice("%s: %s by %s", actions[what], d.d.id, r->who->name);
	ota_req_json(r, 200, device_json(&after));
}

void ota_h_device_approve(struct ota_req *r)
{
	change(r, APPROVE, NULL, NULL, 0);
}

void ota_h_device_reject(struct ota_req *r)
{
	change(r, REJECT, NULL, NULL, 0);
}

void ota_h_device_decommission(struct ota_req *r)
{
	change(r, DECOMMISSION, NULL, NULL, 0);
}

void ota_h_device_reprovision(struct ota_req *r)
{
	const char *fpr;

	if (!ota_json_str(r, r->json, "fingerprint", true, 64, 64, &fpr))
		return;
	if (!hex64(fpr)) {
		ota_req_fail(r, OTA_P_INVALID_FIELD,
		             "\"fingerprint\" must be the SHA-256 of the certificate DER, 64 "
		             "lowercase hex digits");
		return;
	}
	change(r, REPROVISION, fpr, NULL, 0);
}

void ota_h_device_tags(struct ota_req *r)
{
	json_t *arr = json_object_get(r->json, "tags");
	const char *tags[MAX_TAGS];
	size_t i;
	json_t *v;

	if (!json_is_array(arr) || json_array_size(arr) > MAX_TAGS) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "\"tags\" must be an array of at most %d tags",
		             MAX_TAGS);
		return;
	}
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v) || !tag_valid(json_string_value(v))) {
			ota_req_fail(r, OTA_P_INVALID_FIELD,
			             "tag %zu must be 1-64 of A-Z a-z 0-9 . _ : = -", i);
			return;
		}
		tags[i] = json_string_value(v);
	}
	change(r, TAGS, NULL, tags, (unsigned)json_array_size(arr));
}

void ota_h_device_register(struct ota_req *r)
{
	static const char *const admissions[] = {"pending", "approved", NULL};
	const char *id, *fpr, *admission;
	struct ota_device_info d;
	char *after_s = NULL;
	enum ota_err e;

	if (!ota_json_str(r, r->json, "id", true, 1, OTA_ID_MAX, &id) ||
	    !ota_json_str(r, r->json, "fingerprint", false, 64, 64, &fpr) ||
	    !ota_json_str(r, r->json, "admission", false, 1, 16, &admission))
		return;
	if (!ota_auth_name_valid(id)) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "\"id\" must be 1-64 of A-Z a-z 0-9 . _ -");
		return;
	}
	if (fpr && !hex64(fpr)) {
		ota_req_fail(r, OTA_P_INVALID_FIELD,
		             "\"fingerprint\" must be 64 lowercase hex digits");
		return;
	}
	if (!admission)
		admission = "approved";
	if (!one_of(admission, admissions)) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "\"admission\" must be pending or approved");
		return;
	}
	if (!ota_mgmt_begin(r))
		return;
	e = ota_store_device_register(r->deps->store, id, fpr ? fpr : "", admission,
	                              (int64_t)time(NULL));
	if (e == OTA_ERR_CONFLICT)
		ota_req_fail(r, OTA_P_CONFLICT, "device %s exists already", id);
	if (e == OTA_ERR_FORBIDDEN)
		ota_req_fail(r, OTA_P_CONFLICT,
		             "fingerprint %.16s... is pinned to another device: one device per "
		             "certificate",
		             fpr);
	if (e == OTA_OK)
		e = ota_store_device_info(r->deps->store, id, &d);
	if (e == OTA_OK) {
		after_s = device_state(&d);
		struct ota_audit_entry a = {
		    .action = "device.register", .device_id = id, .after = after_s};
		e = after_s ? ota_mgmt_audit(r, &a) : OTA_ERR_NOMEM;
	}
	free(after_s);
	if (!ota_mgmt_end(r, e))
		return;
	ota_req_json(r, 201, device_json(&d));
}
