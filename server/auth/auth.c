/*
 * auth/auth.c - who a caller is (see auth.h): name rules and roles, the device admission
 * policy with first-use pinning (each admission audited in its own transaction), operator
 * certificates checked against the principals table, and API tokens (made from OpenSSL's
 * random generator, stored only as a SHA-256, checked for expiry and revocation).
 */
#include "auth/auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "audit/audit.h"
#include "common/log.h"
#include "config/config.h"
#include "store/cert_store.h"
#include "store/mgmt_store.h"

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

const char *ota_auth_result_text(enum ota_auth_result r)
{
	switch (r) {
	case OTA_AUTH_OK:
		return "ok";
	case OTA_AUTH_BAD_NAME:
		return "the certificate's CN is not a valid name";
	case OTA_AUTH_BAD_ROLE:
		return "the certificate's OU is not the principal's role";
	case OTA_AUTH_REVOKED:
		return "certificate revoked";
	case OTA_AUTH_CONFLICT:
		return "another certificate is pinned for this device id";
	case OTA_AUTH_DECOMMISSIONED:
		return "device decommissioned";
	case OTA_AUTH_ERROR:
		return "identity check failed";
	case OTA_AUTH_PENDING:
		return "the device waits for an operator's approval";
	case OTA_AUTH_REJECTED:
		return "the device was rejected";
	case OTA_AUTH_UNKNOWN:
		return "the device is not registered";
	case OTA_AUTH_DISABLED:
		return "the principal is disabled";
	case OTA_AUTH_TOKEN_INVALID:
		return "the bearer token is not valid";
	case OTA_AUTH_TOKEN_EXPIRED:
		return "the bearer token has expired";
	case OTA_AUTH_TOKEN_REVOKED:
		return "the bearer token was revoked";
	}
	return "?";
}

/* Records a device seen for the first time, with its audit entry, in one transaction. */
static enum ota_err device_first_seen(struct ota_store *st, const char *id, const char *fingerprint,
                                      const char *admission, int64_t now)
{
	char after[200];
	enum ota_err rc = ota_store_tx_begin(st);

	if (rc != OTA_OK)
		return rc;
	snprintf(after, sizeof(after), "{\"admission\":\"%s\",\"fingerprint\":\"%s\"}", admission,
	         fingerprint);
	struct ota_audit_entry e = {
	    .actor = id,
	    .role = "device",
	    .action = strcmp(admission, "pending") == 0 ? "device.pending" : "device.admit",
	    .device_id = id,
	    .after = after,
	    .detail = strcmp(admission, "pending") == 0 ? "first request"
	                                                : "first request that succeeded"};
	rc = ota_store_device_register(st, id, fingerprint, admission, now);
	if (rc == OTA_OK)
		rc = ota_audit_append(st, &e, now, NULL);
	enum ota_err e2 = ota_store_tx_end(st, rc == OTA_OK);
	return rc == OTA_OK ? e2 : rc;
}

static enum ota_err device_pin(struct ota_store *st, const char *id, const char *fingerprint,
                               int64_t now)
{
	char after[120];
	enum ota_err rc = ota_store_tx_begin(st);

	if (rc != OTA_OK)
		return rc;
	snprintf(after, sizeof(after), "{\"fingerprint\":\"%s\"}", fingerprint);
	struct ota_audit_entry e = {.actor = id,
	                            .role = "device",
	                            .action = "device.pin",
	                            .device_id = id,
	                            .after = after,
	                            .detail = "first request of a registered device"};
	rc = ota_store_device_pin(st, id, fingerprint);
	if (rc == OTA_OK)
		rc = ota_audit_append(st, &e, now, NULL);
	enum ota_err e2 = ota_store_tx_end(st, rc == OTA_OK);
	return rc == OTA_OK ? e2 : rc;
}

/*
 * Certificate renewal: the device's first request that succeeds with the certificate otad
 * issued it (pending, store/cert_store.h) pins it in place of the old one, audited in the same
 * transaction. OTA_ERR_NOT_FOUND when `fingerprint` is no longer the device's pending one.
 */
static enum ota_err renewed_first_use(struct ota_store *st, const char *id, const char *fingerprint,
                                      int64_t now)
{
	char pending[OTA_HEX256], before[120], after[120];
	struct ota_device_info dev;
	enum ota_err rc = ota_store_cert_pending_get(st, id, pending);

	if (rc != OTA_OK || strcmp(pending, fingerprint) != 0)
		return OTA_ERR_NOT_FOUND;
	rc = ota_store_device_info(st, id, &dev);
	if (rc != OTA_OK)
		return rc;
	rc = ota_store_tx_begin(st);
	if (rc != OTA_OK)
		return rc;
	snprintf(before, sizeof(before), "{\"fingerprint\":\"%s\"}", dev.d.fingerprint);
	snprintf(after, sizeof(after), "{\"fingerprint\":\"%s\"}", fingerprint);
	struct ota_audit_entry e = {.actor = id,
	                            .role = "device",
	                            .action = "device.cert_pin",
	                            .device_id = id,
	                            .before = before,
	                            .after = after,
	                            .detail = "renewed certificate used: the old one is refused"};
	rc = ota_store_cert_promote(st, id, fingerprint);
	if (rc == OTA_OK)
		rc = ota_audit_append(st, &e, now, NULL);
	enum ota_err e2 = ota_store_tx_end(st, rc == OTA_OK);
	if (rc == OTA_OK && e2 == OTA_OK)
		log_notice("auth: device %s renewed its certificate (%.16s...)", id, fingerprint);
	return rc == OTA_OK ? e2 : rc;
}

/* What the stored device dev says of a request presenting `fingerprint`. */
static enum ota_auth_result device_state(const struct ota_device_info *dev, const char *fingerprint)
{
	if (strcmp(dev->d.fingerprint, fingerprint) != 0) {
		log_warn("auth: device %s presented certificate %.16s..., pinned is %.16s...",
		         dev->d.id, fingerprint, dev->d.fingerprint);
		return OTA_AUTH_CONFLICT;
	}
	if (strcmp(dev->d.status, "admitted") != 0)
		return OTA_AUTH_DECOMMISSIONED;
	if (strcmp(dev->admission, "pending") == 0)
		return OTA_AUTH_PENDING;
	if (strcmp(dev->admission, "approved") != 0)
		return OTA_AUTH_REJECTED;
	return OTA_AUTH_OK;
}

static void device_identity(struct ota_identity *out, const char *cn, const char *fingerprint,
                            enum ota_admit admit)
{
	out->role = OTA_ROLE_DEVICE;
	snprintf(out->name, sizeof(out->name), "%s", cn);
	snprintf(out->fingerprint, sizeof(out->fingerprint), "%s", fingerprint);
	out->token_id[0] = '\0';
	out->admit = admit;
}

enum ota_auth_result ota_auth_device_policy(struct ota_store *st, int policy, const char *cn,
                                            const char *fingerprint, int64_t now,
                                            struct ota_identity *out)
{
	struct ota_device_info dev;
	bool revoked = false;
	enum ota_err rc;

	if (!ota_auth_name_valid(cn))
		return OTA_AUTH_BAD_NAME;
	if (ota_store_is_revoked(st, fingerprint, &revoked) != OTA_OK)
		return OTA_AUTH_ERROR;
	if (revoked)
		return OTA_AUTH_REVOKED;
	rc = ota_store_device_info(st, cn, &dev);
	if (rc == OTA_ERR_NOT_FOUND) {
		if (policy == OTA_ADMISSION_PREREGISTERED)
			return OTA_AUTH_UNKNOWN;
		if (policy != OTA_ADMISSION_PENDING) {
			/* Admitted by its first request that succeeds, not before. */
			device_identity(out, cn, fingerprint, OTA_ADMIT_NEW);
			return OTA_AUTH_OK;
		}
		/* Pending: recorded at first sight, so that an operator can approve it. */
		rc = device_first_seen(st, cn, fingerprint, "pending", now);
		if (rc == OTA_OK)
			log_notice("auth: holding pending device %s (certificate %.16s...)", cn,
			           fingerprint);
		if (rc != OTA_OK && rc != OTA_ERR_CONFLICT) /* CONFLICT: another connection won */
			return OTA_AUTH_ERROR;
		rc = ota_store_device_info(st, cn, &dev);
	}
	if (rc != OTA_OK)
		return OTA_AUTH_ERROR;
	if (dev.d.fingerprint[0] == '\0') {
		/* Registered without a certificate: the first one is pinned by a request that
		 * succeeds; a pending device's now, so that what is approved is this one. */
		snprintf(dev.d.fingerprint, sizeof(dev.d.fingerprint), "%s", fingerprint);
		enum ota_auth_result ar = device_state(&dev, fingerprint);
		if (ar == OTA_AUTH_OK) {
			device_identity(out, cn, fingerprint, OTA_ADMIT_PIN);
			return OTA_AUTH_OK;
		}
		if (ar != OTA_AUTH_PENDING)
			return ar;
		rc = device_pin(st, cn, fingerprint, now);
		if (rc != OTA_OK && rc != OTA_ERR_CONFLICT)
			return OTA_AUTH_ERROR;
		if (ota_store_device_info(st, cn, &dev) != OTA_OK)
			return OTA_AUTH_ERROR;
	}
	if (strcmp(dev.d.fingerprint, fingerprint) != 0) {
		/* The certificate otad issued it by renewal: judged as if pinned, and pinned in
		 * place of the old one by its first request that succeeds. */
		char pending[OTA_HEX256];
		if (ota_store_cert_pending_get(st, cn, pending) == OTA_OK &&
		    strcmp(pending, fingerprint) == 0) {
			snprintf(dev.d.fingerprint, sizeof(dev.d.fingerprint), "%s", fingerprint);
			enum ota_auth_result ar = device_state(&dev, fingerprint);
			if (ar == OTA_AUTH_OK)
				device_identity(out, cn, fingerprint, OTA_ADMIT_RENEWED);
			return ar;
		}
	}
	enum ota_auth_result ar = device_state(&dev, fingerprint);
	if (ar == OTA_AUTH_OK)
		device_identity(out, cn, fingerprint, OTA_ADMIT_NONE);
	return ar;
}

enum ota_auth_result ota_auth_device_admit(struct ota_store *st, struct ota_identity *who,
                                           int64_t now)
{
	struct ota_device_info dev;
	enum ota_err rc;

	if (who->admit == OTA_ADMIT_NONE)
		return OTA_AUTH_OK;
	if (who->admit == OTA_ADMIT_NEW)
		rc = device_first_seen(st, who->name, who->fingerprint, "approved", now);
	else if (who->admit == OTA_ADMIT_RENEWED)
		rc = renewed_first_use(st, who->name, who->fingerprint, now);
	else
		rc = device_pin(st, who->name, who->fingerprint, now);
	if (rc == OTA_OK && who->admit != OTA_ADMIT_RENEWED)
		log_notice("auth: %s device %s (certificate %.16s...)",
		           who->admit == OTA_ADMIT_NEW ? "admitted" : "pinned", who->name,
		           who->fingerprint);
	/* CONFLICT: another request admitted or pinned it first; FORBIDDEN: this certificate
	 * is pinned to another device; NOT_FOUND: the renewal is no longer pending. The stored
	 * device decides each. */
	if (rc != OTA_OK && rc != OTA_ERR_CONFLICT && rc != OTA_ERR_FORBIDDEN &&
	    rc != OTA_ERR_NOT_FOUND)
		return OTA_AUTH_ERROR;
	if (rc == OTA_ERR_FORBIDDEN)
		return OTA_AUTH_CONFLICT;
	if (ota_store_device_info(st, who->name, &dev) != OTA_OK)
		return OTA_AUTH_ERROR;
	enum ota_auth_result ar = device_state(&dev, who->fingerprint);
	if (ar == OTA_AUTH_OK)
		who->admit = OTA_ADMIT_NONE;
	return ar;
}

enum ota_auth_result ota_auth_device(struct ota_store *st, const char *cn, const char *fingerprint,
                                     int64_t now, struct ota_identity *out)
{
	enum ota_auth_result ar =
	    ota_auth_device_policy(st, OTA_ADMISSION_AUTO, cn, fingerprint, now, out);

	return ar == OTA_AUTH_OK ? ota_auth_device_admit(st, out, now) : ar;
}

enum ota_auth_result ota_auth_operator(struct ota_store *st, const char *cn, const char *ou,
                                       const char *fingerprint, struct ota_identity *out)
{
	bool revoked = false;
	enum ota_role role = ota_auth_role_parse(ou);
	struct ota_principal p;
	enum ota_err rc;

	if (!ota_auth_name_valid(cn))
		return OTA_AUTH_BAD_NAME;
	if (role == OTA_ROLE_NONE)
		return OTA_AUTH_BAD_ROLE;
	if (ota_store_is_revoked(st, fingerprint, &revoked) != OTA_OK)
		return OTA_AUTH_ERROR;
	if (revoked)
		return OTA_AUTH_REVOKED;
	rc = ota_store_principal_get(st, cn, &p);
	if (rc == OTA_OK) {
		if (p.disabled)
			return OTA_AUTH_DISABLED;
		if (ota_auth_role_parse(p.role) != role)
			return OTA_AUTH_BAD_ROLE;
	} else if (rc != OTA_ERR_NOT_FOUND) {
		return OTA_AUTH_ERROR;
	}
	out->role = role;
	snprintf(out->name, sizeof(out->name), "%s", cn);
	snprintf(out->fingerprint, sizeof(out->fingerprint), "%s", fingerprint);
	out->token_id[0] = '\0';
	out->admit = OTA_ADMIT_NONE;
	return OTA_AUTH_OK;
}

void ota_auth_token_hash(const char *token, char hash[OTA_HEX256])
{
	unsigned char d[32];
	unsigned dl = 0;

	hash[0] = '\0';
	if (EVP_Digest(token, strlen(token), d, &dl, EVP_sha256(), NULL) != 1 || dl != 32)
		return;
	for (unsigned i = 0; i < 32; i++)
		snprintf(hash + 2 * i, 3, "%02x", d[i]);
}

enum ota_err ota_auth_token_new(char token[OTA_TOKEN_LEN + 1], char id[24], char hash[OTA_HEX256])
{
	unsigned char secret[32], pub[8];

	if (RAND_bytes(secret, sizeof(secret)) != 1 || RAND_bytes(pub, sizeof(pub)) != 1)
		return OTA_ERR_NOMEM;
	memcpy(token, OTA_TOKEN_PREFIX, 4);
	for (unsigned i = 0; i < 32; i++)
		snprintf(token + 4 + 2 * i, 3, "%02x", secret[i]);
	memcpy(id, "t-", 2);
	for (unsigned i = 0; i < 8; i++)
		snprintf(id + 2 + 2 * i, 3, "%02x", pub[i]);
	ota_auth_token_hash(token, hash);
	OPENSSL_cleanse(secret, sizeof(secret));
	return hash[0] ? OTA_OK : OTA_ERR_NOMEM;
}

enum ota_auth_result ota_auth_token(struct ota_store *st, const char *authorization, int64_t now,
                                    struct ota_identity *out)
{
	const char *tok;
	char hash[OTA_HEX256];
	struct ota_token t;
	enum ota_err rc;
	enum ota_role role;

	if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
		return OTA_AUTH_TOKEN_INVALID;
	tok = authorization + 7;
	while (*tok == ' ')
		tok++;
	if (strlen(tok) != OTA_TOKEN_LEN || strncmp(tok, OTA_TOKEN_PREFIX, 4) != 0 ||
	    strspn(tok + 4, "0123456789abcdef") != 64)
		return OTA_AUTH_TOKEN_INVALID;
	ota_auth_token_hash(tok, hash);
	rc = ota_store_token_by_hash(st, hash, &t);
	if (rc == OTA_ERR_NOT_FOUND)
		return OTA_AUTH_TOKEN_INVALID;
	if (rc != OTA_OK)
		return OTA_AUTH_ERROR;
	if (t.revoked_at)
		return OTA_AUTH_TOKEN_REVOKED;
	if (now >= t.expires_at)
		return OTA_AUTH_TOKEN_EXPIRED;
	if (t.principal_disabled)
		return OTA_AUTH_DISABLED;
	role = ota_auth_role_parse(t.role);
	if (role == OTA_ROLE_NONE)
		return OTA_AUTH_ERROR;
	out->role = role;
	snprintf(out->name, sizeof(out->name), "%s", t.principal);
	out->fingerprint[0] = '\0';
	snprintf(out->token_id, sizeof(out->token_id), "%s", t.id);
	out->admit = OTA_ADMIT_NONE;
	return OTA_AUTH_OK;
}
