/*
 * deploy/eligible.h - whether a release may go to a device: the deployment service's one rule
 * (deploy.h), in a translation unit of its own that depends on nothing but the store's types,
 * so that the rollout engine's verdicts count covered devices by the same rule without the
 * engine and the service calling each other.
 */
#ifndef OTA_DEPLOY_ELIGIBLE_H
#define OTA_DEPLOY_ELIGIBLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* What the rules look at of a device. */
struct ota_device_facts {
	bool known; /* false until its first check-in: variant and floor unknown */
	const char *hw_variant;
	const char *version;
	uint32_t security_floor;
};

enum ota_eligibility {
	OTA_ELIGIBLE,
	OTA_INELIGIBLE_UNKNOWN,     /* the device never checked in */
	OTA_INELIGIBLE_HW_VARIANT,  /* the release does not list the device's hardware variant */
	OTA_INELIGIBLE_BELOW_FLOOR, /* release security_version < the device's floor */
	OTA_INELIGIBLE_SAME_VERSION /* the device runs the release's version already */
};

/*
 * Whether release rel may go to device d, the rules in this order: state known, hardware
 * variant, security floor, current version. why (may be NULL) gets a sentence for a refusal.
 * Callers decide what a refusal means: the check-in cancels an active deployment that is not
 * eligible (except for "same version"), a rollout records the device as skipped, a manual
 * deployment or a roll back is refused naming the rule.
 */
enum ota_eligibility ota_deploy_eligible(const struct ota_release *rel,
                                         const struct ota_device_facts *d, char *why,
                                         size_t whylen);

/* Whether rel lists hardware variant hw. */
bool ota_release_runs_on(const struct ota_release *rel, const char *hw);

#endif
