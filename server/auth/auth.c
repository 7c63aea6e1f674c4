/*
 * auth/auth.c - the admission policy for verified client certificates (see auth.h): name
 * rules, roles, revocation, and first-use pinning of device fingerprints.
 */
#include "auth/auth.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"

bool ota_auth_name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n < 1 || n > OTA_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

enum ota_role ota_auth_role_parse(const char *s)
{
	if (!s)
		return OTA_ROLE_NONE;
	if (strcmp(s, "admin") == 0)
		return OTA_ROLE_ADMIN;
	if (strcmp(s, "operator") == 0)
		return OTA_ROLE_OPERATOR;
	if (strcmp(s, "auditor") == 0)
		return OTA_ROLE_AUDITOR;
	return OTA_ROLE_NONE;
}

const char *ota_auth_role_name(enum ota_role r)
{
	switch (r) {
	case OTA_ROLE_DEVICE:
		return "device";
	case OTA_ROLE_ADMIN:
		return "admin";
	case OTA_ROLE_OPERATOR:
		return "operator";
	case OTA_ROLE_AUDITOR:
		return "auditor";
	default:
		return "none";
	}
}

enum ota_auth_result ota_auth_device(struct ota_store *st, const char *cn, const char *fingerprint,
				     int64_t now, struct ota_identity *out)
{
	struct ota_device dev;
	bool revoked = false, created = false;

	if (!ota_auth_name_valid(cn))
		return OTA_AUTH_BAD_NAME;
	if (ota_store_is_revoked(st, fingerprint, &revoked) != OTA_OK)
		return OTA_AUTH_ERROR;
	if (revoked)
		return OTA_AUTH_REVOKED;
	if (ota_store_device_admit(st, cn, fingerprint, now, &dev, &created) != OTA_OK)
		return OTA_AUTH_ERROR;
	if (strcmp(dev.fingerprint, fingerprint) != 0) {
		log_warn("auth: device %s presented certificate %.16s..., pinned is %.16s...", cn,
			 fingerprint, dev.fingerprint);
		return OTA_AUTH_CONFLICT;
	}
	if (strcmp(dev.status, "admitted") != 0)
		return OTA_AUTH_DECOMMISSIONED;
	if (created)
		log_notice("auth: admitted device %s (certificate %.16s...)", cn, fingerprint);
	out->role = OTA_ROLE_DEVICE;
	snprintf(out->name, sizeof(out->name), "%s", cn);
	snprintf(out->fingerprint, sizeof(out->fingerprint), "%s", fingerprint);
	return OTA_AUTH_OK;
}

enum ota_auth_result ota_auth_operator(struct ota_store *st, const char *cn, const char *ou,
				       const char *fingerprint, struct ota_identity *out)
{
	bool revoked = false;
	enum ota_role role = ota_auth_role_parse(ou);

	if (!ota_auth_name_valid(cn))
		return OTA_AUTH_BAD_NAME;
	if (role == OTA_ROLE_NONE)
		return OTA_AUTH_BAD_ROLE;
	if (ota_store_is_revoked(st, fingerprint, &revoked) != OTA_OK)
		return OTA_AUTH_ERROR;
	if (revoked)
		return OTA_AUTH_REVOKED;
	out->role = role;
	snprintf(out->name, sizeof(out->name), "%s", cn);
	snprintf(out->fingerprint, sizeof(out->fingerprint), "%s", fingerprint);
	return OTA_AUTH_OK;
}
