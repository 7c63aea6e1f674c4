/*
 * pki/pki.c - otad's online keys that devices rely on: loading them strictly at start and
 * signing with them. A time token is a DSSE envelope over {"_type":"time","time","nonce"}
 * signed with ECDSA P-256 over DSSE's pre-authentication encoding, the same form the signer
 * writes and the agent core verifies (fwa_time_token_verify).
 */
#include "pki/pki.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/util.h"
#include "fwa/crypto_openssl.h"
#include "fwa/verify.h"

struct ota_pki {
	EVP_PKEY *time_key;
	char time_keyid[FWA_KEYID_HEX_LEN + 1];
};

/* A P-256 private key from a PEM file that only its owner and group can read. */
static EVP_PKEY *load_key(const char *path, const char *what, char *msg, size_t msglen)
{
	struct stat sb;
	EVP_PKEY *k = NULL;
	FILE *f;

	if (stat(path, &sb) != 0) {
		ota_say(msg, msglen, "%s %s: cannot read it", what, path);
		return NULL;
	}
	if (sb.st_mode & 027) {
		ota_say(msg, msglen,
		        "%s %s: writable by its group or open to others (at most 0640)", what,
		        path);
		return NULL;
	}
	f = fopen(path, "r");
	if (f) {
		k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (!k || !EVP_PKEY_is_a(k, "EC") || EVP_PKEY_get_bits(k) != 256) {
		EVP_PKEY_free(k);
		ota_say(msg, msglen, "%s %s: not an unencrypted PEM P-256 private key", what, path);
		return NULL;
	}
	return k;
}

/* Lowercase hex SHA-256 of the key's DER SubjectPublicKeyInfo. */
static bool key_id(EVP_PKEY *k, char out[FWA_KEYID_HEX_LEN + 1])
{
	unsigned char *der = NULL;
	uint8_t d[32];
	int n = i2d_PUBKEY(k, &der);

	if (n != FWA_SPKI_P256_LEN) {
		OPENSSL_free(der);
		return false;
	}
	fwa_sha256(fwa_crypto_openssl(), der, (size_t)n, d);
	OPENSSL_free(der);
	fwa_hex(d, 32, out);
	return true;
}

enum ota_err ota_pki_open(const struct ota_config *cfg, struct ota_pki **out, char *msg,
                          size_t msglen)
{
	struct ota_pki *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!p) {
		ota_say(msg, msglen, "out of memory");
		return OTA_ERR_NOMEM;
	}
	if (cfg->time_key[0]) {
		p->time_key = load_key(cfg->time_key, "[trust] time_key", msg, msglen);
		if (!p->time_key || !key_id(p->time_key, p->time_keyid)) {
			if (p->time_key)
				ota_say(msg, msglen, "[trust] time_key %s: not a P-256 key",
				        cfg->time_key);
			ota_pki_free(p);
			return OTA_ERR_CONFIG;
		}
	}
	*out = p;
	return OTA_OK;
}

void ota_pki_free(struct ota_pki *p)
{
	if (!p)
		return;
	EVP_PKEY_free(p->time_key);
	free(p);
}

bool ota_pki_has_time(const struct ota_pki *p)
{
	return p && p->time_key;
}

/* DER ECDSA signature over a SHA-256 digest. */
static bool sign_digest(EVP_PKEY *k, const uint8_t digest[32], uint8_t *sig, size_t *len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k, NULL);
	bool ok = ctx && EVP_PKEY_sign_init(ctx) > 0 &&
	          EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0 &&
	          EVP_PKEY_sign(ctx, sig, len, digest, 32) > 0;

	EVP_PKEY_CTX_free(ctx);
	return ok;
}

enum ota_err ota_pki_time_token(const struct ota_pki *p, const uint8_t *nonce, size_t nonce_len,
                                int64_t now, char **out)
{
	char payload[160], t[21], nhex[2 * FWA_NONCE_MAX + 1];
	char pb64[((sizeof(payload) + 2) / 3) * 4 + 1], sb64[((FWA_SIG_MAX + 2) / 3) * 4 + 1];
	uint8_t digest[32], sig[FWA_SIG_MAX];
	size_t siglen = sizeof(sig);
	long n;
	int plen;

	*out = NULL;
	if (!ota_pki_has_time(p))
		return OTA_ERR_NOT_FOUND;
	if (nonce_len < FWA_NONCE_MIN || nonce_len > FWA_NONCE_MAX)
		return OTA_ERR_INVALID;
	fwa_time_format(now, t);
	fwa_hex(nonce, nonce_len, nhex);
	plen = snprintf(
	    payload, sizeof(payload),
	    "{\"_type\":\"time\",\"spec_version\":\"%s\",\"time\":\"%s\",\"nonce\":\"%s\"}",
	    FWA_SPEC_VERSION, t, nhex);
	if (plen < 0 || (size_t)plen >= sizeof(payload))
		return OTA_ERR_INVALID;
	fwa_dsse_pae_digest(fwa_crypto_openssl(), FWA_PAYLOAD_TIME, (const uint8_t *)payload,
	                    (size_t)plen, digest);
	if (!sign_digest(p->time_key, digest, sig, &siglen))
		return OTA_ERR_TLS;
	n = fwa_base64_encode((const uint8_t *)payload, (size_t)plen, pb64, sizeof(pb64) - 1);
	if (n < 0)
		return OTA_ERR_INVALID;
	pb64[n] = '\0';
	n = fwa_base64_encode(sig, siglen, sb64, sizeof(sb64) - 1);
	if (n < 0)
		return OTA_ERR_TLS;
	sb64[n] = '\0';
	if (asprintf(out,
	             "{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"%s\","
	             "\"sig\":\"%s\"}]}",
	             FWA_PAYLOAD_TIME, pb64, p->time_keyid, sb64) < 0) {
		*out = NULL;
		return OTA_ERR_NOMEM;
	}
	return OTA_OK;
}
