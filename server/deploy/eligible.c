/*
 * deploy/eligible.c - the one eligibility rule (eligible.h): state known, hardware variant,
 * security floor, current version, in that order.
 */
#include "deploy/eligible.h"

#include <string.h>

#include "common/util.h"

bool ota_release_runs_on(const struct ota_release *rel, const char *hw)
{
	for (unsigned i = 0; i < rel->nhw; i++)
		if (strcmp(rel->hw[i], hw) == 0)
			return true;
	return false;
}

enum ota_eligibility ota_deploy_eligible(const struct ota_release *rel,
                                         const struct ota_device_facts *d, char *why, size_t whylen)
{
	if (!d->known) {
		ota_say(why, whylen,
		        "the device has not checked in: its hardware variant and floor are "
		        "unknown");
		return OTA_INELIGIBLE_UNKNOWN;
	}
	if (!ota_release_runs_on(rel, d->hw_variant)) {
		ota_say(why, whylen, "release %s %s does not run on hardware variant %s", rel->name,
		        rel->version, d->hw_variant);
		return OTA_INELIGIBLE_HW_VARIANT;
	}
	if (rel->security_version < d->security_floor) {
		ota_say(why, whylen, "release security_version %u is below the device's floor %u",
		        rel->security_version, d->security_floor);
		return OTA_INELIGIBLE_BELOW_FLOOR;
	}
	if (strcmp(rel->version, d->version) == 0) {
		ota_say(why, whylen, "the device runs %s already", rel->version);
		return OTA_INELIGIBLE_SAME_VERSION;
	}
	return OTA_ELIGIBLE;
}
