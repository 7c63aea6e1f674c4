/*
 * http/mgmt_artifacts.c - images and releases beyond upload and registration: the image list
 * with cursor pages, and deleting an image or a release that nothing references (refused while
 * a deployment or a rollout references the release, or a release the image). Each deletion is
 * audited in its transaction; an image's file is removed only after the commit.
 */
#include "http/mgmt.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "store/mgmt_store.h"

static bool hex64(const char *s)
{
	return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static void image_one(void *ctx, const char *sha256, uint64_t size, int64_t created_at,
                      unsigned releases)
{
	ota_page_add(ctx,
	             json_pack("{s:s, s:I, s:I, s:i}", "sha256", sha256, "size", (json_int_t)size,
	                       "created_at", (json_int_t)created_at, "releases", (int)releases),
	             0, sha256);
}

void ota_h_images_list(struct ota_req *r)
{
	struct ota_page p;

	if (!ota_page_open(r, &p, OTA_PAGE_ID))
		return;
	if (p.after.id && !hex64(p.after.id)) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "cursor must be an image's SHA-256");
		return;
	}
	ota_page_send(
	    r, &p,
	    ota_store_image_list(r->deps->store, p.after.id, p.limit, image_one, &p, &p.more),
	    "images");
}

void ota_h_image_delete(struct ota_req *r)
{
	const char *sha = r->params[0];
	enum ota_err e;

	if (!hex64(sha)) {
		ota_req_fail(r, OTA_P_IMAGE_NOT_FOUND, "no image %s", sha);
		return;
	}
	/* The record deleted and the file removed under the folder's lock: an upload of the
	 * same bytes runs wholly before or after (artifact.h), so no record outlives its file. */
	ota_images_lock(r->deps->images);
	if (!ota_mgmt_begin(r)) {
		ota_images_unlock(r->deps->images);
		return;
	}
	e = ota_store_image_delete(r->deps->store, sha);
	if (e == OTA_ERR_NOT_FOUND)
		ota_req_fail(r, OTA_P_IMAGE_NOT_FOUND, "no image %s", sha);
	else if (e == OTA_ERR_CONFLICT)
		ota_req_fail(r, OTA_P_IN_USE, "image %s: a release or a delta references it", sha);
	if (e == OTA_OK) {
		struct ota_audit_entry a = {.action = "image.delete", .object = sha};
		e = ota_mgmt_audit(r, &a);
	}
	if (!ota_mgmt_end(r, e)) {
		ota_images_unlock(r->deps->images);
		return;
	}
	/* The record is gone; the file follows (a leftover file is harmless: unreferenced). */
	if (ota_images_remove(r->deps->images, sha) != OTA_OK)
		log_warn("image %s: record deleted, file not removed", sha);
	ota_images_unlock(r->deps->images);
	ota_req_json(r, 200, json_pack("{s:s, s:b}", "sha256", sha, "deleted", 1));
}

void ota_h_release_delete(struct ota_req *r)
{
	const char *id = r->params[0];
	const char *why = NULL;
	struct ota_release rel;
	char before[300];
	enum ota_err e;

	if (!hex64(id) ||
	    (e = ota_store_release_get(r->deps->store, id, &rel, NULL)) == OTA_ERR_NOT_FOUND) {
		ota_req_fail(r, OTA_P_RELEASE_NOT_FOUND, "no release %s", id);
		return;
	}
	if (e != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the release");
		return;
	}
	if (!ota_mgmt_begin(r))
		return;
	e = ota_store_release_delete(r->deps->store, id, &why);
	if (e == OTA_ERR_CONFLICT)
		ota_req_fail(r, OTA_P_IN_USE, "release %s %s: %s", rel.name, rel.version,
		             why ? why : "referenced");
	else if (e == OTA_ERR_NOT_FOUND)
		ota_req_fail(r, OTA_P_RELEASE_NOT_FOUND, "no release %s", id);
	if (e == OTA_OK) {
		snprintf(before, sizeof(before),
		         "{\"name\":\"%s\",\"version\":\"%s\",\"image_sha256\":\"%s\"}", rel.name,
		         rel.version, rel.image_sha256);
		struct ota_audit_entry a = {
		    .action = "release.delete", .release_id = id, .before = before};
		e = ota_mgmt_audit(r, &a);
	}
	if (!ota_mgmt_end(r, e))
		return;
	ota_req_json(r, 200, json_pack("{s:s, s:b}", "id", id, "deleted", 1));
}
