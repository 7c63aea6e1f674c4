/*
 * store/plan_store.h - what a rollout plan reads from the registry (deploy/plan.h): every
 * device with the facts the target filter and the eligibility rules look at, in id order, a
 * chunk at a time, by indexed queries only (the devices' primary key, or the
 * devices_by_hw_variant index when the plan names hardware variants; a device's tags from the
 * device_tags primary key). Reads only; changes nothing.
 *
 * Threads: like the rest of the store, one call at a time per handle. The store's lock is held
 * for one chunk (OTA_PLAN_CHUNK devices) and released between chunks, so check-ins go on
 * while a plan over a large fleet is read; a device changed meanwhile is seen either before or
 * after its change.
 */
#ifndef OTA_STORE_PLAN_H
#define OTA_STORE_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

#define OTA_PLAN_CHUNK 1000
#define OTA_PLAN_MAX_TAGS 32 /* tags per device the plan looks at (the API's limit) */

/* One device as the plan sees it. Strings live until the callback returns. */
struct ota_plan_device {
	const char *id;
	const char *status;     /* admitted | decommissioned */
	const char *admission;  /* pending | approved | rejected */
	bool known_state;       /* false until the device's first check-in */
	const char *hw_variant; /* "" when not known */
	const char *version;    /* "" when not known */
	uint32_t security_floor;
	unsigned ntags;
	const char *const *tags;
};

/*
 * Calls fn for every registered device in id order; with nhw > 0 only for devices whose
 * hardware variant is one of hw[0..nhw) (each variant read through its index, in turn).
 * Returns OTA_OK, OTA_ERR_DB (logged; fn may have been called for some devices), or
 * OTA_ERR_NOMEM.
 */
OTA_WUR enum ota_err ota_store_plan_devices(struct ota_store *st, const char *const *hw,
                                            unsigned nhw,
                                            void (*fn)(void *ctx, const struct ota_plan_device *d),
                                            void *ctx);

#endif
