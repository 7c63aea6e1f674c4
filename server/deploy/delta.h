/*
 * deploy/delta.h - the deployment service's rules for deltas (docs/device-api.md, "Delta
 * offers"): which delta, if any, goes with an update offered at check-in, and what a device's
 * "delta failed" or "delta refused" report means for that delta.
 *
 * A delta is offered only when the device said what it runs (active_image_sha256) and that is
 * the delta's base, the delta belongs to the deployment's release, it is smaller than
 * max_percent % of the full image, and the device never reported it failed or refused. The
 * store remembers the delta each deployment was offered, which decides who may download its
 * file. Errors as deploy.h; nothing is changed on error.
 */
#ifndef OTA_DEPLOY_DELTA_H
#define OTA_DEPLOY_DELTA_H

#include <stdbool.h>
#include <stdint.h>

#include "deploy/deploy.h"
#include "store/delta_store.h"

struct ota_delta_offer {
	bool offered;
	struct ota_delta d;
	char *envelope; /* the delta metadata's DSSE envelope, malloc'd */
};
void ota_delta_offer_clear(struct ota_delta_offer *o);

/*
 * The delta that goes with offer o (an update offered to device_id by ota_deploy_checkin), or
 * none (out->offered false): active_sha256 is what the device reported running (NULL: not
 * reported), max_percent the configured share ([device] delta_max_percent, 0 = never).
 * Records the choice for the deployment. The caller frees out with ota_delta_offer_clear().
 */
OTA_WUR enum ota_err ota_deploy_delta(struct ota_store *st, const struct ota_offer *o,
                                      const char *device_id, const char *active_sha256,
                                      unsigned max_percent, int64_t now,
                                      struct ota_delta_offer *out);

/*
 * Inside a report's transaction (deploy.c's group): a report whose reason starts with
 * "delta failed:" or "delta refused:" is counted against the delta its deployment was offered,
 * for its device, which is then never offered that delta again. Other reports change nothing.
 */
OTA_WUR enum ota_err ota_deploy_delta_report(struct ota_store *st, const struct ota_deployment *dep,
                                             const struct ota_event *ev, int64_t now);

#endif
