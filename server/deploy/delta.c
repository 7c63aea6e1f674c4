/*
 * deploy/delta.c - the deployment service's delta rules (deploy/delta.h): choosing the delta
 * offered beside a full image at check-in, and counting the failures and refusals devices
 * report so that a delta that failed on a device is not offered to it again.
 */
#include "deploy/delta.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

void ota_delta_offer_clear(struct ota_delta_offer *o)
{
	free(o->envelope);
	memset(o, 0, sizeof(*o));
}

/* Records what deployment dep_id is offered now, writing only when it changes. */
static enum ota_err remember(struct ota_store *st, const char *dep_id, const char *delta_id,
                             int64_t now)
{
	char was[OTA_HEX256];
	enum ota_err rc = ota_store_delta_offered(st, dep_id, was);

	if (rc == OTA_ERR_NOT_FOUND)
		return delta_id ? ota_store_delta_offer_set(st, dep_id, delta_id, now) : OTA_OK;
	if (rc != OTA_OK)
		return rc;
	if (delta_id && strcmp(was, delta_id) == 0)
		return OTA_OK;
	return ota_store_delta_offer_set(st, dep_id, delta_id, now);
}

enum ota_err ota_deploy_delta(struct ota_store *st, const struct ota_offer *o,
                              const char *device_id, const char *active_sha256,
                              unsigned max_percent, int64_t now, struct ota_delta_offer *out)
{
	bool failed_here = false;
	enum ota_err rc = OTA_ERR_NOT_FOUND;

	memset(out, 0, sizeof(*out));
	if (!o->update)
		return OTA_OK;
	if (active_sha256 && max_percent > 0)
		rc = ota_store_delta_for_base(st, o->rel.id, active_sha256, device_id, &out->d,
		                              &out->envelope, &failed_here);
	if (rc != OTA_OK && rc != OTA_ERR_NOT_FOUND)
		return rc;
	/* Smaller than the share of the full image, and never failed on this device. */
	out->offered = rc == OTA_OK && !failed_here &&
	               out->d.size * 100 < (uint64_t)max_percent * o->rel.image_size;
	rc = remember(st, o->dep.id, out->offered ? out->d.id : NULL, now);
	if (rc != OTA_OK || !out->offered)
		ota_delta_offer_clear(out);
	return rc;
}

enum ota_err ota_deploy_delta_report(struct ota_store *st, const struct ota_deployment *dep,
                                     const struct ota_event *ev, int64_t now)
{
	static const char failed[] = "delta failed:", refused[] = "delta refused:";
	const char *kind = NULL;
	char delta_id[OTA_HEX256];

	if (!ev->reason)
		return OTA_OK;
	if (strncmp(ev->reason, failed, sizeof(failed) - 1) == 0)
		kind = "failed";
	else if (strncmp(ev->reason, refused, sizeof(refused) - 1) == 0)
		kind = "refused";
	else
		return OTA_OK;
	enum ota_err rc = ota_store_delta_offered(st, dep->id, delta_id);
	if (rc == OTA_ERR_NOT_FOUND) /* deleted since, or never offered: nothing to count */
		return OTA_OK;
	if (rc == OTA_OK)
		rc = ota_store_delta_failure_add(st, delta_id, dep->device_id, kind, dep->id,
		                                 ev->reason, now);
	/* The device takes the full image now: its delta is no longer served to it. */
	if (rc == OTA_OK)
		rc = ota_store_delta_offer_set(st, dep->id, NULL, now);
	if (rc == OTA_OK)
		log_notice("device %s: delta %.16s... %s (deployment %s): %s", dep->device_id,
		           delta_id, kind, dep->id, ev->reason);
	return rc;
}
