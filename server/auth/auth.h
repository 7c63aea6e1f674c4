/*
 * auth/auth.h - who may call: the identities that TLS client certificates carry, and the
 * admission policy applied to them once the HTTP layer has verified the chain.
 *
 * Devices: the id is the certificate subject CN (1-64 of [A-Za-z0-9._-]); the SHA-256 of the
 * certificate DER is its fingerprint. What happens to an id not seen before follows the
 * admission policy ([device] admission): auto admits it (approved) and pins the fingerprint;
 * pending records it as pending and refuses it until an operator approves it; preregistered
 * refuses it unless it was registered through the management API (with a fingerprint, or
 * none: then the first certificate is pinned). A later certificate with the same CN and
 * another fingerprint is refused (re-provisioning pins a new one). Rejected and decommissioned
 * devices are refused. Each admission is audited in the transaction that records it.
 *
 * Operators: the certificate's subject CN names the principal, the subject OU is its role
 * (admin, operator or auditor). A principals row with that name (POST /api/v1/principals)
 * must agree on the role and not be disabled; without a row the certificate alone decides.
 * Revoked fingerprints (store) are refused for devices and operators.
 *
 * API tokens (automation): "Authorization: Bearer ota_<64 hex>" on the management listener,
 * instead of a client certificate. A token belongs to a principal (its role), is shown once at
 * creation, and only the SHA-256 of the whole token is stored; it expires, and it can be
 * revoked; a disabled principal's tokens stop working.
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
	char name[OTA_ID_MAX + 1];    /* device id or operator name */
	char fingerprint[OTA_HEX256]; /* SHA-256 of the certificate DER, lowercase hex */
	char token_id[24];            /* the API token used, "" for a certificate */
	/* A device's admission still to write (ota_auth_device_admit): only a request that
	 * succeeds admits and pins a device, so a refused one leaves no trace. */
	enum ota_admit {
		OTA_ADMIT_NONE = 0,
		OTA_ADMIT_NEW,     /* unknown id under admission = auto: record it, approved */
		OTA_ADMIT_PIN,     /* registered without a fingerprint: pin this certificate */
		OTA_ADMIT_RENEWED, /* the certificate otad issued it: pin it, the old one refused */
	} admit;
};

enum ota_auth_result {
	OTA_AUTH_OK = 0,
	OTA_AUTH_BAD_NAME,       /* CN missing or not a valid id */
	OTA_AUTH_BAD_ROLE,       /* operator certificate without a known role in its OU */
	OTA_AUTH_REVOKED,        /* fingerprint revoked */
	OTA_AUTH_CONFLICT,       /* another certificate is pinned for this device id */
	OTA_AUTH_DECOMMISSIONED, /* the device was decommissioned */
	OTA_AUTH_ERROR,          /* the store failed */
	OTA_AUTH_PENDING,        /* the device waits for approval */
	OTA_AUTH_REJECTED,       /* the device was rejected */
	OTA_AUTH_UNKNOWN,        /* not registered, and the policy admits registered ids only */
	OTA_AUTH_DISABLED,       /* the principal is disabled */
	OTA_AUTH_TOKEN_INVALID,  /* not a token of ours (malformed or unknown) */
	OTA_AUTH_TOKEN_EXPIRED,
	OTA_AUTH_TOKEN_REVOKED,
};

#define OTA_TOKEN_PREFIX "ota_"
#define OTA_TOKEN_LEN (4 + 64) /* "ota_" and 64 hex digits (32 random bytes) */

/* 1-64 characters of [A-Za-z0-9._-]. */
bool ota_auth_name_valid(const char *s);
/* A role name ("admin", "operator", "auditor") to its role; OTA_ROLE_NONE when unknown. */
enum ota_role ota_auth_role_parse(const char *s);
const char *ota_auth_role_name(enum ota_role r);

/*
 * Admit a device whose certificate chain has been verified: checks the name and revocation,
 * admits it on first sight (pinning `fingerprint`), refuses another certificate for an
 * admitted id. Writes to the store only when it admits. *out is filled on OTA_AUTH_OK.
 * (ota_auth_device_policy under admission = auto, then ota_auth_device_admit.)
 */
OTA_WUR enum ota_auth_result ota_auth_device(struct ota_store *st, const char *cn,
                                             const char *fingerprint, int64_t now,
                                             struct ota_identity *out);
/*
 * Who a device is under an admission policy (config.h's enum ota_admission as an int), without
 * admitting it: on OTA_AUTH_OK, out->admit says what ota_auth_device_admit still has to write
 * (a new device under `auto`, or the first certificate of a registered one) once a request of
 * it succeeds. The one write made here: under `pending`, an unknown device is recorded as
 * pending (and a registered pending one pinned), so that an operator can approve it; the
 * answer is then OTA_AUTH_PENDING.
 */
OTA_WUR enum ota_auth_result ota_auth_device_policy(struct ota_store *st, int policy,
                                                    const char *cn, const char *fingerprint,
                                                    int64_t now, struct ota_identity *out);
/*
 * Write what who->admit says (each admission or pin audited in its own transaction) and clear
 * it; OTA_AUTH_OK at once when there is nothing to write. When another request admitted or
 * pinned the device first, the stored device decides: OTA_AUTH_CONFLICT when it holds another
 * certificate, OTA_AUTH_DECOMMISSIONED / _PENDING / _REJECTED by its state, OTA_AUTH_ERROR
 * when the store fails.
 */
OTA_WUR enum ota_auth_result ota_auth_device_admit(struct ota_store *st, struct ota_identity *who,
                                                   int64_t now);

/* An operator whose certificate chain has been verified: name, role from `ou`, revocation. */
OTA_WUR enum ota_auth_result ota_auth_operator(struct ota_store *st, const char *cn, const char *ou,
                                               const char *fingerprint, struct ota_identity *out);

/*
 * A request's "Authorization" header value on the management listener: "Bearer <token>".
 * Checks form, hash lookup, expiry, revocation and the principal. *out filled on OTA_AUTH_OK.
 */
OTA_WUR enum ota_auth_result ota_auth_token(struct ota_store *st, const char *authorization,
                                            int64_t now, struct ota_identity *out);

/*
 * Make a new token: 32 random bytes (OpenSSL's CSPRNG) as "ota_" + hex into token, a public id
 * "t-" + 16 hex into id, and the hex SHA-256 of the token (what the store keeps) into hash.
 * OTA_ERR_NOMEM when the random generator fails.
 */
OTA_WUR enum ota_err ota_auth_token_new(char token[OTA_TOKEN_LEN + 1], char id[24],
                                        char hash[OTA_HEX256]);
/* The hex SHA-256 of a token string. */
void ota_auth_token_hash(const char *token, char hash[OTA_HEX256]);

/* A short constant text for a result (for problem details and audit entries). */
const char *ota_auth_result_text(enum ota_auth_result r);

#endif
