/*
 * pki/pki.c - otad's online keys that devices rely on: loading them strictly at start and
 * signing with them. A time token is a DSSE envelope over {"_type":"time","time","nonce"}
 * signed with ECDSA P-256 over DSSE's pre-authentication encoding, the same form the signer
 * writes and the agent core verifies (fwa_time_token_verify).
 */
#include "pki/pki.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "common/util.h"
#include "fwa/crypto_openssl.h"
#include "fwa/verify.h"
#include "pki/pkcs11.h"

struct ota_pki {
	EVP_PKEY *time_key;
	char time_keyid[FWA_KEYID_HEX_LEN + 1];
	X509 *issuer;
	EVP_PKEY *issuer_key; /* from a file, or ota_pkcs11_key(issuer_token) */
	struct ota_pkcs11 *issuer_token;
	pthread_mutex_t sign_lock; /* one issuing signature at a time: a token is one device */
	char *issuer_pem;
	unsigned days;
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

/* The issuing CA: a CA certificate that may sign certificates, and its P-256 key. */
static enum ota_err load_issuer(struct ota_pki *p, const struct ota_config *cfg, char *msg,
                                size_t msglen)
{
	size_t len = 0;
	BIO *b;

	if (ota_pkcs11_is_uri(cfg->issuer_key)) {
		enum ota_err rc =
		    ota_pkcs11_open(cfg->issuer_key, cfg->pkcs11_module, cfg->issuer_key_pin_file,
		                    "[trust] issuer_key", &p->issuer_token, msg, msglen);
		if (rc != OTA_OK)
			return rc;
		p->issuer_key = ota_pkcs11_key(p->issuer_token);
		if (!EVP_PKEY_is_a(p->issuer_key, "EC") ||
		    EVP_PKEY_get_bits(p->issuer_key) != 256) {
			ota_say(msg, msglen, "[trust] issuer_key %s: not a P-256 private key",
			        cfg->issuer_key);
			return OTA_ERR_CONFIG;
		}
	} else {
		p->issuer_key = load_key(cfg->issuer_key, "[trust] issuer_key", msg, msglen);
		if (!p->issuer_key)
			return OTA_ERR_CONFIG;
	}
	p->issuer_pem = ota_file_read(cfg->issuer_cert, 65536, &len);
	b = p->issuer_pem ? BIO_new_mem_buf(p->issuer_pem, (int)len) : NULL;
	p->issuer = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (!p->issuer || X509_check_ca(p->issuer) == 0 ||
	    X509_check_private_key(p->issuer, p->issuer_key) != 1) {
		ota_say(msg, msglen,
		        "[trust] issuer_cert %s: not a PEM CA certificate of issuer_key",
		        cfg->issuer_cert);
		return OTA_ERR_CONFIG;
	}
	p->days = cfg->issued_days;
	return OTA_OK;
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
	pthread_mutex_init(&p->sign_lock, NULL);
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
	if ((cfg->issuer_cert[0] != 0) != (cfg->issuer_key[0] != 0)) {
		ota_say(msg, msglen, "[trust] issuer_cert and issuer_key go together");
		ota_pki_free(p);
		return OTA_ERR_CONFIG;
	}
	if ((cfg->issuer_key_pin_file[0] || cfg->pkcs11_module[0]) &&
	    !ota_pkcs11_is_uri(cfg->issuer_key)) {
		ota_say(
		    msg, msglen,
		    "[trust] issuer_key_pin_file and pkcs11_module go with a pkcs11: issuer_key");
		ota_pki_free(p);
		return OTA_ERR_CONFIG;
	}
	if (cfg->issuer_cert[0] && load_issuer(p, cfg, msg, msglen) != OTA_OK) {
		ota_pki_free(p);
		return OTA_ERR_CONFIG;
	}
	*out = p;
	return OTA_OK;
}

void ota_pki_free(struct ota_pki *p)
{
	if (!p)
		return;
	EVP_PKEY_free(p->time_key);
	X509_free(p->issuer);
	if (p->issuer_token)
		ota_pkcs11_free(p->issuer_token); /* owns issuer_key */
	else
		EVP_PKEY_free(p->issuer_key);
	pthread_mutex_destroy(&p->sign_lock);
	free(p->issuer_pem);
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

bool ota_pki_has_issuer(const struct ota_pki *p)
{
	return p && p->issuer;
}

static bool add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	bool ok = e && X509_add_ext(x, e, -1) == 1;
	X509_EXTENSION_free(e);
	return ok;
}

/* PEM of x followed by the issuer's PEM, malloc'd. */
static char *chain_of(X509 *x, const char *issuer_pem)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL, *out = NULL;
	long n;

	if (b && PEM_write_bio_X509(b, x) == 1 && (n = BIO_get_mem_data(b, &data)) > 0 &&
	    asprintf(&out, "%.*s%s", (int)n, data, issuer_pem) < 0)
		out = NULL;
	BIO_free(b);
	return out;
}

enum ota_err ota_pki_issue(const struct ota_pki *p, const char *device_id, const char *csr_pem,
                           size_t csr_len, int64_t now, char **chain_pem, char fingerprint[65],
                           int64_t *not_after)
{
	enum ota_err rc = OTA_ERR_INVALID;
	X509_REQ *req = NULL;
	EVP_PKEY *pub = NULL;
	X509 *x = NULL;
	X509_NAME *name = NULL;
	BIGNUM *serial = NULL;
	time_t t = (time_t)now;
	unsigned char *der = NULL;
	uint8_t d[32];
	BIO *b;
	int n;

	*chain_pem = NULL;
	if (!ota_pki_has_issuer(p))
		return OTA_ERR_NOT_FOUND;
	b = BIO_new_mem_buf(csr_pem, (int)csr_len);
	req = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	pub = req ? X509_REQ_get_pubkey(req) : NULL;
	if (!pub || X509_REQ_verify(req, pub) != 1 || !EVP_PKEY_is_a(pub, "EC") ||
	    EVP_PKEY_get_bits(pub) != 256)
		goto out;
	rc = OTA_ERR_TLS;
	x = X509_new();
	name = X509_NAME_new();
	serial = BN_new();
	if (!x || !name || !serial || !BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
	    !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) || X509_set_version(x, 2) != 1 ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)device_id,
	                                -1, -1, 0) ||
	    X509_set_subject_name(x, name) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(p->issuer)) != 1 ||
	    !X509_time_adj_ex(X509_getm_notBefore(x), 0, -60, &t) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), (int)p->days, 0, &t) ||
	    X509_set_pubkey(x, pub) != 1 ||
	    !add_ext(x, p->issuer, NID_basic_constraints, "critical,CA:FALSE") ||
	    !add_ext(x, p->issuer, NID_key_usage, "critical,digitalSignature") ||
	    !add_ext(x, p->issuer, NID_ext_key_usage, "clientAuth") ||
	    !add_ext(x, p->issuer, NID_subject_key_identifier, "hash") ||
	    !add_ext(x, p->issuer, NID_authority_key_identifier, "keyid"))
		goto out;
	pthread_mutex_lock((pthread_mutex_t *)&p->sign_lock);
	n = X509_sign(x, p->issuer_key, EVP_sha256());
	pthread_mutex_unlock((pthread_mutex_t *)&p->sign_lock);
	if (n <= 0)
		goto out;
	n = i2d_X509(x, &der);
	if (n <= 0)
		goto out;
	fwa_sha256(fwa_crypto_openssl(), der, (size_t)n, d);
	fwa_hex(d, 32, fingerprint);
	*not_after = now + (int64_t)p->days * 86400;
	*chain_pem = chain_of(x, p->issuer_pem);
	rc = *chain_pem ? OTA_OK : OTA_ERR_NOMEM;
out:
	OPENSSL_free(der);
	BN_free(serial);
	X509_NAME_free(name);
	X509_free(x);
	EVP_PKEY_free(pub);
	X509_REQ_free(req);
	return rc;
}
