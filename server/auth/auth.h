/*
 * auth/auth.h - who may call: the identities that TLS client certificates carry, and the
 * admission policy applied to them once the HTTP layer has verified the chain.
 *
 * Devices: the id is the certificate subject CN (1-64 of [A-Za-z0-9._-]); the SHA-256 of the
 * certificate DER is its fingerprint. A device is admitted on its first verified connection and
 * its fingerprint pinned; a later certificate with the same CN and another fingerprint is
 * refused. Operators: the CN names the person or automation, the subject OU its role (admin,
 * operator or auditor). Revoked fingerprints (store) are refused for both.
 */
#ifndef OTA_AUTH_H
#define OTA_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

enum ota_role {
	OTA_ROLE_NONE = 0,
	OTA_ROLE_DEVICE = 1 << 0,
	OTA_ROLE_ADMIN = 1 << 1,
	OTA_ROLE_OPERATOR = 1 << 2,
	OTA_ROLE_AUDITOR = 1 << 3,
};
#define OTA_ROLES_WRITE (OTA_ROLE_ADMIN | OTA_ROLE_OPERATOR)
#define OTA_ROLES_READ (OTA_ROLE_ADMIN | OTA_ROLE_OPERATOR | OTA_ROLE_AUDITOR)

struct ota_identity {
	enum ota_role role;
	char name[OTA_ID_MAX + 1];     /* device id or operator name */
	char fingerprint[OTA_HEX256]; /* SHA-256 of the certificate DER, lowercase hex */
};

enum ota_auth_result {
	OTA_AUTH_OK = 0,
	OTA_AUTH_BAD_NAME,       /* CN missing or not a valid id */
	OTA_AUTH_BAD_ROLE,       /* operator certificate without a known role in its OU */
	OTA_AUTH_REVOKED,        /* fingerprint revoked */
	OTA_AUTH_CONFLICT,       /* another certificate is pinned for this device id */
	OTA_AUTH_DECOMMISSIONED, /* the device was decommissioned */
	OTA_AUTH_ERROR,          /* the store failed */
};

/* 1-64 characters of [A-Za-z0-9._-]. */
bool ota_auth_name_valid(const char *s);
/* A role name ("admin", "operator", "auditor") to its role; OTA_ROLE_NONE when unknown. */
enum ota_role ota_auth_role_parse(const char *s);
const char *ota_auth_role_name(enum ota_role r);

/*
 * Admit a device whose certificate chain has been verified: checks the name and revocation,
 * admits it on first sight (pinning `fingerprint`), refuses another certificate for an
 * admitted id. Writes to the store only when it admits. *out is filled on OTA_AUTH_OK.
 */
OTA_WUR enum ota_auth_result ota_auth_device(struct ota_store *st, const char *cn,
					     const char *fingerprint, int64_t now,
					     struct ota_identity *out);

/* An operator whose certificate chain has been verified: name, role from `ou`, revocation. */
OTA_WUR enum ota_auth_result ota_auth_operator(struct ota_store *st, const char *cn,
					       const char *ou, const char *fingerprint,
					       struct ota_identity *out);

#endif
