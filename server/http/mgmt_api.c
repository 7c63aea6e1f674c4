/*
 * http/mgmt_api.c - the minimal management API (under /api/v1, operator certificates): health,
 * image upload (streamed to disk while hashing), release registration from a signed manifest,
 * root rotation, a deployment of one release to one device, and read-back of each.
 */
#include "http/internal.h"
#include "deploy/deploy.h"
#include "http/mgmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/test_hook.h"

void ota_h_health(struct ota_req *r)
{
	ota_req_json(r, 200,
	             json_pack("{s:s, s:i, s:i, s:s, s:s}", "status", "ok", "schema_version",
	                       ota_store_schema_version(r->deps->store), "root_version",
	                       (int)ota_trust_version(r->deps->trust), "caller", r->who->name,
	                       "role", ota_auth_role_name(r->who->role)));
}

/* ---- images ---- */

void ota_h_image_upload_begin(struct ota_req *r)
{
	struct ota_upload *up = NULL;

	if (ota_upload_begin(r->deps->images, &up) != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot store the upload");
		return;
	}
	r->stream = up;
}

void ota_h_image_upload_data(struct ota_req *r, const char *data, size_t len)
{
	enum ota_err e = ota_upload_write(r->stream, data, len);

	if (e == OTA_ERR_TOO_LARGE)
		ota_req_fail(r, OTA_P_BODY_TOO_LARGE, "the image is over the limit of %llu bytes",
		             (unsigned long long)r->deps->cfg->image_max);
	else if (e != OTA_OK)
		ota_req_fail(r, OTA_P_INTERNAL, "cannot store the upload");
}

void ota_h_image_upload_free(struct ota_req *r)
{
	ota_upload_abort(r->stream);
	r->stream = NULL;
}

void ota_h_image_upload(struct ota_req *r)
{
	char sha[65], url[128];
	uint64_t size = 0;
	bool existed = false;
	struct ota_upload *up = r->stream;

	r->stream = NULL;
	/* The file placed and its record committed under the folder's lock: a delete of the
	 * same bytes runs wholly before or after (artifact.h). */
	ota_images_lock(r->deps->images);
	if (ota_upload_finish(up, sha, &size) != OTA_OK) {
		ota_images_unlock(r->deps->images);
		ota_req_fail(r, OTA_P_INTERNAL, "cannot store the image");
		return;
	}
	/* Between the file and its record: where a racing delete must wait (tests pause here). */
	ota_test_pause("image-upload-placed");
	/* The record and its audit entry commit together. */
	if (!ota_mgmt_begin(r)) {
		ota_images_unlock(r->deps->images);
		return;
	}
	enum ota_err e =
	    ota_store_image_add(r->deps->store, sha, size, (int64_t)time(NULL), &existed);
	if (e == OTA_OK && !existed) {
		char after[64];
		snprintf(after, sizeof(after), "{\"size\":%llu}", (unsigned long long)size);
		struct ota_audit_entry a = {
		    .action = "image.upload", .object = sha, .after = after};
		e = ota_mgmt_audit(r, &a);
	}
	bool ok = ota_mgmt_end(r, e);
	ota_images_unlock(r->deps->images);
	if (!ok)
		return;
	if (!existed)
		log_notice("image %s (%llu bytes) uploaded by %s", sha, (unsigned long long)size,
		           r->who->name);
	snprintf(url, sizeof(url), "/device/v1/images/%s", sha);
	ota_req_json(r, existed ? 200 : 201,
	             json_pack("{s:s, s:I, s:s, s:b}", "sha256", sha, "size", (json_int_t)size,
	                       "image_url", url, "existed", existed));
}

/* ---- releases ---- */

static json_t *release_json(const struct ota_release *rel)
{
	json_t *hw = json_array();

	for (unsigned i = 0; hw && i < rel->nhw; i++)
		json_array_append_new(hw, json_string(rel->hw[i]));
	return json_pack(
	    "{s:s, s:s, s:s, s:i, s:o, s:s, s:I, s:s, s:I, s:I}", "id", rel->id, "name", rel->name,
	    "version", rel->version, "security_version", (int)rel->security_version, "hw_variants",
	    hw, "image_sha256", rel->image_sha256, "image_size", (json_int_t)rel->image_size,
	    "image_format", rel->image_format, "manifest_created",
	    (json_int_t)rel->manifest_created, "created_at", (json_int_t)rel->created_at);
}

void ota_h_release_create(struct ota_req *r)
{
	struct ota_release rel;
	bool existed = false;
	const char *why = "";
	const char *image = NULL;
	char qimage[65];

	/* The body is the manifest envelope exactly as signed; ?image= binds another upload. */
	const char *q = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "image");
	if (q) {
		if (!ota_sha256_hex_valid(q)) {
			ota_req_fail(r, OTA_P_INVALID_FIELD,
			             "\"image\" must be a lowercase hex SHA-256");
			return;
		}
		snprintf(qimage, sizeof(qimage), "%s", q);
		image = qimage;
	}
	if (!ota_mgmt_begin(r))
		return;
	enum ota_err e =
	    ota_release_register(r->deps->trust, r->deps->store, r->deps->images, r->body,
	                         r->body_len, image, (int64_t)time(NULL), &rel, &existed, &why);
	if (e == OTA_OK && !existed) {
		char after[300];
		snprintf(after, sizeof(after),
		         "{\"name\":\"%s\",\"version\":\"%s\",\"security_version\":%u,"
		         "\"image_sha256\":\"%s\"}",
		         rel.name, rel.version, rel.security_version, rel.image_sha256);
		struct ota_audit_entry a = {
		    .action = "release.register", .release_id = rel.id, .after = after};
		e = ota_mgmt_audit(r, &a);
		if (e != OTA_OK)
			why = "cannot audit the release";
	}
	if (ota_store_tx_end(r->deps->store, e == OTA_OK) != OTA_OK && e == OTA_OK)
		e = OTA_ERR_DB;
	switch (e) {
	case OTA_OK:
		break;
	case OTA_ERR_VERIFY:
	case OTA_ERR_TOO_LARGE:
		ota_req_fail(r, OTA_P_MANIFEST_INVALID, "%s", why);
		return;
	case OTA_ERR_MISMATCH:
		ota_req_fail(r, OTA_P_IMAGE_MISMATCH, "%s", why);
		return;
	case OTA_ERR_NOT_FOUND:
		ota_req_fail(r, OTA_P_IMAGE_NOT_FOUND, "%s", why);
		return;
	case OTA_ERR_CONFLICT:
		ota_req_fail(r,
		             ota_trust_version(r->deps->trust) ? OTA_P_RELEASE_CONFLICT
		                                               : OTA_P_NO_TRUSTED_ROOT,
		             "%s", why);
		return;
	default:
		ota_req_fail(r, ota_problem_from_err(e), "%s", why);
		return;
	}
	if (existed && ota_store_release_get(r->deps->store, rel.id, &rel, NULL) != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the release");
		return;
	}
	if (!existed)
		log_notice("release %s %s (%.16s...) registered by %s", rel.name, rel.version,
		           rel.id, r->who->name);
	ota_req_json(r, existed ? 200 : 201, release_json(&rel));
}

static void list_one(void *ctx, const struct ota_release *rel)
{
	ota_page_add(ctx, release_json(rel), rel->created_at, rel->id);
}

void ota_h_release_list(struct ota_req *r)
{
	struct ota_page p;

	if (!ota_page_open(r, &p, OTA_PAGE_AT_ID))
		return;
	ota_page_send(r, &p,
	              ota_store_release_list(r->deps->store, p.after.id ? &p.after : NULL, p.limit,
	                                     list_one, &p, &p.more),
	              "the releases");
}

void ota_h_release_get(struct ota_req *r)
{
	struct ota_release rel;
	char *envelope = NULL;
	enum ota_err e = ota_sha256_hex_valid(r->params[0])
	                     ? ota_store_release_get(r->deps->store, r->params[0], &rel, &envelope)
	                     : OTA_ERR_NOT_FOUND;

	if (e == OTA_ERR_NOT_FOUND) {
		ota_req_fail(r, OTA_P_RELEASE_NOT_FOUND, "no release %s", r->params[0]);
		return;
	}
	if (e != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the release");
		return;
	}
	json_t *j = release_json(&rel);
	json_t *m = json_loads(envelope, 0, NULL);
	free(envelope);
	if (j && m)
		json_object_set_new(j, "manifest", m);
	else
		json_decref(m);
	ota_req_json(r, 200, j);
}

/* ---- roots ---- */

void ota_h_root_create(struct ota_req *r)
{
	const char *why = "";
	uint32_t version = 0;
	if (!ota_mgmt_begin(r))
		return;
	enum ota_err e = ota_trust_add_root(r->deps->trust, r->deps->store, r->body, r->body_len,
	                                    &version, &why);
	if (e == OTA_OK) {
		char after[40];
		snprintf(after, sizeof(after), "{\"version\":%u}", version);
		struct ota_audit_entry a = {.action = "root.upload", .after = after};
		e = ota_mgmt_audit(r, &a);
	}
	if (ota_store_tx_end(r->deps->store, e == OTA_OK) != OTA_OK && e == OTA_OK)
		e = OTA_ERR_DB;

	if (e == OTA_ERR_VERIFY || e == OTA_ERR_TOO_LARGE) {
		ota_req_fail(r, OTA_P_ROOT_INVALID, "%s", why);
		return;
	}
	if (e == OTA_ERR_CONFLICT) {
		ota_req_fail(r, OTA_P_NO_TRUSTED_ROOT, "%s", why);
		return;
	}
	if (e != OTA_OK) {
		ota_req_fail(r, ota_problem_from_err(e), "%s", why);
		return;
	}
	log_notice("root version %u uploaded by %s", version, r->who->name);
	ota_req_json(r, 201, json_pack("{s:i}", "version", (int)version));
}

/* ---- deployments ---- */

static json_t *deployment_json(const struct ota_deployment *d)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "id", d->id, "device_id",
	                      d->device_id, "release_id", d->release_id, "status", d->status,
	                      "reason", d->reason, "created_at", (json_int_t)d->created_at,
	                      "updated_at", (json_int_t)d->updated_at);
	if (j)
		json_object_set_new(j, "finished_at",
		                    d->finished_at ? json_integer(d->finished_at) : json_null());
	return j;
}

void ota_h_deployment_create(struct ota_req *r)
{
	const char *device_id, *release_id;
	struct ota_deployment dep;
	enum ota_deploy_refusal refusal;
	enum ota_eligibility elig;
	char why[256] = "", via[48];

	if (!ota_json_str(r, r->json, "device_id", true, 1, OTA_ID_MAX, &device_id) ||
	    !ota_json_str(r, r->json, "release_id", true, 64, 64, &release_id))
		return;
	struct ota_actor who = ota_mgmt_actor(r, via, sizeof(via));
	enum ota_err e =
	    ota_deploy_create(r->deps->store, &who, device_id, release_id, (int64_t)time(NULL),
	                      &dep, &refusal, &elig, why, sizeof(why));
	if (e == OTA_ERR_INVALID) {
		static const enum ota_problem by_refusal[] = {
		    [OTA_DR_NO_DEVICE] = OTA_P_DEVICE_NOT_FOUND,
		    [OTA_DR_NO_RELEASE] = OTA_P_RELEASE_NOT_FOUND,
		    [OTA_DR_BUSY] = OTA_P_DEPLOYMENT_ACTIVE,
		};
		ota_req_fail(r,
		             refusal == OTA_DR_INELIGIBLE ? ota_problem_from_eligibility(elig)
		                                          : by_refusal[refusal],
		             "%s", why);
		return;
	}
	if (e != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot create the deployment");
		return;
	}
	ota_req_json(r, 201, deployment_json(&dep));
}

static void event_one(void *ctx, const struct ota_event *ev, int64_t received_at)
{
	json_t *e = json_pack("{s:I, s:s, s:s, s:I}", "seq", (json_int_t)ev->seq, "status",
	                      ev->status, "reason", ev->reason ? ev->reason : "", "received_at",
	                      (json_int_t)received_at);
	if (!e)
		return;
	if (ev->version)
		json_object_set_new(e, "version", json_string(ev->version));
	if (ev->progress >= 0)
		json_object_set_new(e, "progress", json_integer(ev->progress));
	json_array_append_new(ctx, e);
}

void ota_h_deployment_get(struct ota_req *r)
{
	struct ota_deployment dep;
	enum ota_err e = ota_store_deployment_get(r->deps->store, r->params[0], &dep);

	if (e == OTA_ERR_NOT_FOUND) {
		ota_req_fail(r, OTA_P_DEPLOYMENT_NOT_FOUND, "no deployment %s", r->params[0]);
		return;
	}
	json_t *events = json_array(), *j = NULL;
	if (e != OTA_OK || !events ||
	    ota_store_event_list(r->deps->store, dep.id, event_one, events) != OTA_OK ||
	    !(j = deployment_json(&dep))) {
		json_decref(events);
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the deployment");
		return;
	}
	json_object_set_new(j, "events", events);
	ota_req_json(r, 200, j);
}

void ota_h_revocation_create(struct ota_req *r)
{
	const char *fpr, *reason;

	if (!ota_json_str(r, r->json, "fingerprint", true, 64, 64, &fpr) ||
	    !ota_json_str(r, r->json, "reason", false, 0, OTA_REASON_MAX, &reason))
		return;
	if (!ota_sha256_hex_valid(fpr)) {
		ota_req_fail(
		    r, OTA_P_INVALID_FIELD,
		    "\"fingerprint\" must be the lowercase hex SHA-256 of the certificate");
		return;
	}
	if (!ota_mgmt_begin(r))
		return;
	enum ota_err e = ota_store_revoke(r->deps->store, fpr, reason, (int64_t)time(NULL));
	if (e == OTA_OK) {
		struct ota_audit_entry a = {
		    .action = "cert.revoke", .object = fpr, .detail = reason};
		e = ota_mgmt_audit(r, &a);
	}
	if (!ota_mgmt_end(r, e))
		return;
	log_notice("certificate %.16s... revoked by %s", fpr, r->who->name);
	ota_req_json(r, 201, json_pack("{s:s, s:b}", "fingerprint", fpr, "revoked", 1));
}
