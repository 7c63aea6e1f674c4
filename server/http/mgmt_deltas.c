/*
 * http/mgmt_deltas.c - the deltas of a release (docs/openapi.yaml, "Deltas"): registering one
 * from its signed metadata and an uploaded delta file (artifact/delta.h verifies both), the list
 * with the failures and refusals devices reported, and deleting one with its file when nothing
 * else references it. Each change is audited in its transaction.
 */
#include "artifact/delta.h"
#include "http/mgmt.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "store/mgmt_store.h"

static json_t *delta_json(const struct ota_delta *d)
{
	char url[128];

	snprintf(url, sizeof(url), "/device/v1/images/%s", d->image_sha256);
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:s, s:s, s:I, s:I, s:I, s:I}", "id",
	                 d->id, "release_id", d->release_id, "base_sha256", d->base_sha256,
	                 "base_size", (json_int_t)d->base_size, "image_sha256", d->image_sha256,
	                 "size", (json_int_t)d->size, "head_sha256", d->head_sha256, "url", url,
	                 "created_at", (json_int_t)d->created_at, "failed", (json_int_t)d->failed,
	                 "refused", (json_int_t)d->refused, "devices_failed",
	                 (json_int_t)d->devices_failed);
}

/* The release of the path, or false with release-not-found (or internal) set. */
static bool release_of(struct ota_req *r, struct ota_release *rel)
{
	const char *id = r->params[0];
	enum ota_err e = ota_sha256_hex_valid(id)
	                     ? ota_store_release_get(r->deps->store, id, rel, NULL)
	                     : OTA_ERR_NOT_FOUND;

	if (e == OTA_ERR_NOT_FOUND)
		ota_req_fail(r, OTA_P_RELEASE_NOT_FOUND, "no release %s", id);
	else if (e != OTA_OK)
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the release");
	return e == OTA_OK;
}

void ota_h_delta_create(struct ota_req *r)
{
	struct ota_release rel;
	struct ota_delta d;
	bool existed = false, no_root = false;
	const char *why = "";
	const char *image = ota_q(r, "image");

	/* The body is the metadata envelope exactly as signed; ?image= names the delta file. */
	if (!image || !ota_sha256_hex_valid(image)) {
		ota_req_fail(r, OTA_P_INVALID_FIELD,
		             "\"image\" (query) must be the lowercase hex SHA-256 of the uploaded "
		             "delta file");
		return;
	}
	if (!release_of(r, &rel) || !ota_mgmt_begin(r))
		return;
	enum ota_err e = ota_delta_register(r->deps->trust, r->deps->store, r->deps->images, &rel,
	                                    r->body, r->body_len, image, (int64_t)time(NULL), &d,
	                                    &existed, &no_root, &why);
	if (e == OTA_OK && !existed) {
		char after[400];
		snprintf(after, sizeof(after),
		         "{\"base_sha256\":\"%s\",\"image_sha256\":\"%s\",\"size\":%llu}",
		         d.base_sha256, d.image_sha256, (unsigned long long)d.size);
		struct ota_audit_entry a = {.action = "delta.register",
		                            .release_id = rel.id,
		                            .object = d.id,
		                            .after = after};
		e = ota_mgmt_audit(r, &a);
		if (e != OTA_OK)
			why = "cannot audit the delta";
	}
	if (ota_store_tx_end(r->deps->store, e == OTA_OK) != OTA_OK && e == OTA_OK)
		e = OTA_ERR_DB;
	switch (e) {
	case OTA_OK:
		break;
	case OTA_ERR_VERIFY:
	case OTA_ERR_TOO_LARGE:
		ota_req_fail(r, OTA_P_DELTA_INVALID, "%s", why);
		return;
	case OTA_ERR_MISMATCH:
		ota_req_fail(r, OTA_P_DELTA_MISMATCH, "%s", why);
		return;
	case OTA_ERR_NOT_FOUND:
		ota_req_fail(r, OTA_P_IMAGE_NOT_FOUND, "%s", why);
		return;
	case OTA_ERR_CONFLICT:
		ota_req_fail(r, no_root ? OTA_P_NO_TRUSTED_ROOT : OTA_P_DELTA_CONFLICT, "%s", why);
		return;
	default:
		ota_req_fail(r, ota_problem_from_err(e), "%s", why);
		return;
	}
	if (ota_store_delta_get(r->deps->store, rel.id, d.id, &d, NULL) != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the delta");
		return;
	}
	if (!existed)
		log_notice(
		    "delta %.16s... of release %s %s (%llu bytes, base %.16s...) registered by %s",
		    d.id, rel.name, rel.version, (unsigned long long)d.size, d.base_sha256,
		    r->who->name);
	ota_req_json(r, existed ? 200 : 201, delta_json(&d));
}

static void list_one(void *ctx, const struct ota_delta *d)
{
	ota_page_add(ctx, delta_json(d), 0, d->id);
}

void ota_h_delta_list(struct ota_req *r)
{
	struct ota_release rel;
	struct ota_page p;

	if (!ota_page_open(r, &p, OTA_PAGE_ID))
		return;
	if (p.after.id && !ota_sha256_hex_valid(p.after.id)) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "cursor must be a delta's id");
		return;
	}
	if (!release_of(r, &rel))
		return;
	ota_page_send(r, &p,
	              ota_store_delta_list(r->deps->store, rel.id, p.after.id, p.limit, list_one,
	                                   &p, &p.more),
	              "the deltas");
}

void ota_h_delta_delete(struct ota_req *r)
{
	const char *id = r->params[1];
	struct ota_release rel;
	struct ota_delta d;
	bool file_gone = false;
	enum ota_err e;

	if (!release_of(r, &rel))
		return;
	e = ota_sha256_hex_valid(id) ? ota_store_delta_get(r->deps->store, rel.id, id, &d, NULL)
	                             : OTA_ERR_NOT_FOUND;
	if (e == OTA_ERR_NOT_FOUND) {
		ota_req_fail(r, OTA_P_DELTA_NOT_FOUND, "release %s %s has no delta %s", rel.name,
		             rel.version, id);
		return;
	}
	if (e != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the delta");
		return;
	}
	/* The delta's file is an image: its record and file go under the folder's lock, as an
	 * image's delete (artifact.h), unless a release or another delta still uses the bytes. */
	ota_images_lock(r->deps->images);
	if (!ota_mgmt_begin(r)) {
		ota_images_unlock(r->deps->images);
		return;
	}
	e = ota_store_delta_delete(r->deps->store, rel.id, id);
	if (e == OTA_ERR_NOT_FOUND)
		ota_req_fail(r, OTA_P_DELTA_NOT_FOUND, "release %s %s has no delta %s", rel.name,
		             rel.version, id);
	if (e == OTA_OK) {
		char before[400];
		snprintf(before, sizeof(before),
		         "{\"base_sha256\":\"%s\",\"image_sha256\":\"%s\",\"size\":%llu}",
		         d.base_sha256, d.image_sha256, (unsigned long long)d.size);
		struct ota_audit_entry a = {
		    .action = "delta.delete", .release_id = rel.id, .object = id, .before = before};
		e = ota_mgmt_audit(r, &a);
	}
	if (e == OTA_OK) {
		enum ota_err ie = ota_store_image_delete(r->deps->store, d.image_sha256);
		file_gone = ie == OTA_OK;
		if (ie != OTA_OK && ie != OTA_ERR_CONFLICT && ie != OTA_ERR_NOT_FOUND)
			e = ie;
	}
	if (e == OTA_OK && file_gone) {
		struct ota_audit_entry a = {.action = "image.delete", .object = d.image_sha256};
		e = ota_mgmt_audit(r, &a);
	}
	if (!ota_mgmt_end(r, e)) {
		ota_images_unlock(r->deps->images);
		return;
	}
	if (file_gone && ota_images_remove(r->deps->images, d.image_sha256) != OTA_OK)
		log_warn("image %s: record deleted, file not removed", d.image_sha256);
	ota_images_unlock(r->deps->images);
	log_notice("delta %.16s... of release %s %s deleted by %s", id, rel.name, rel.version,
	           r->who->name);
	ota_req_json(
	    r, 200,
	    json_pack("{s:s, s:b, s:b}", "id", id, "deleted", 1, "image_deleted", file_gone));
}
