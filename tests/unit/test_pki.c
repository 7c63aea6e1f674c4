/*
 * Unit tests of otad's online keys (server/pki): the time key is loaded strictly (mode, type)
 * and its tokens verify with the agent core's verifier under a root naming it, for the nonce
 * asked and no other. Keys are generated at run time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fwa/crypto_openssl.h"
#include "pki/pki.h"
#include "signer.h"

static char dir[] = "/tmp/ota-pki-XXXXXX";

static void write_key(const char *path, EVP_PKEY *k, mode_t mode)
{
	char *pem = NULL;
	size_t len = 0;
	FILE *f;

	assert_int_equal(ota_key_private_pem(k, NULL, &pem, &len), FWA_OK);
	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(pem, 1, len, f), len);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
	free(pem);
}

static enum ota_err open_with(const char *key, struct ota_pki **p, char *msg)
{
	struct ota_config cfg;

	ota_config_defaults(&cfg);
	snprintf(cfg.time_key, sizeof(cfg.time_key), "%s", key);
	return ota_pki_open(&cfg, p, msg, 256);
}

/* A root v1 whose time role is `time_key`, loaded into *out. */
static void root_with_time(EVP_PKEY *root_key, EVP_PKEY *release, EVP_PKEY *time_key,
                           struct fwa_root *out, struct fwa_verify_scratch *s)
{
	struct ota_root_spec spec = {.version = 1,
	                             .expires = 4102444800,
	                             .nroot = 1,
	                             .nrelease = 1,
	                             .root_threshold = 1,
	                             .release_threshold = 1,
	                             .ntime = 1};
	static char payload[FWA_PAYLOAD_MAX], env[FWA_ENVELOPE_MAX + 1];
	const char *why = NULL;
	size_t plen, elen;

	assert_int_equal(ota_key_spki(root_key, spec.root_spki[0], &why), FWA_OK);
	assert_int_equal(ota_key_spki(release, spec.release_spki[0], &why), FWA_OK);
	assert_int_equal(ota_key_spki(time_key, spec.time_spki[0], &why), FWA_OK);
	assert_int_equal(ota_signer_root_payload(&spec, payload, sizeof(payload), &plen, &why),
	                 FWA_OK);
	assert_int_equal(ota_signer_envelope(FWA_PAYLOAD_ROOT, payload, plen, &root_key, 1, env,
	                                     sizeof(env), &elen, &why),
	                 FWA_OK);
	assert_int_equal(fwa_root_load(fwa_crypto_openssl(), env, elen, out, s, &why), FWA_OK);
	assert_int_equal(out->time.nkeys, 1);
}

static void test_time_token_verifies(void **state)
{
	(void)state;
	EVP_PKEY *tk = NULL, *rk = NULL, *lk = NULL;
	struct fwa_verify_scratch *s = malloc(sizeof(*s));
	struct fwa_root root;
	struct ota_pki *p = NULL;
	uint8_t nonce[16], other[16];
	char path[64], msg[256], *tok = NULL;
	const char *why = NULL;
	int64_t t = 0;

	assert_non_null(s);
	assert_int_equal(ota_key_generate(&tk), FWA_OK);
	assert_int_equal(ota_key_generate(&rk), FWA_OK);
	assert_int_equal(ota_key_generate(&lk), FWA_OK);
	snprintf(path, sizeof(path), "%s/time.key", dir);
	write_key(path, tk, 0640);
	assert_int_equal(open_with(path, &p, msg), OTA_OK);
	assert_true(ota_pki_has_time(p));
	root_with_time(rk, lk, tk, &root, s);

	memset(nonce, 0xa5, sizeof(nonce));
	memset(other, 0x5a, sizeof(other));
	assert_int_equal(ota_pki_time_token(p, nonce, sizeof(nonce), 1796198400, &tok), OTA_OK);
	assert_int_equal(fwa_time_token_verify(fwa_crypto_openssl(), &root, tok, strlen(tok), nonce,
	                                       sizeof(nonce), &t, s, &why),
	                 FWA_OK);
	assert_int_equal(t, 1796198400);
	assert_int_equal(fwa_time_token_verify(fwa_crypto_openssl(), &root, tok, strlen(tok), other,
	                                       sizeof(other), &t, s, &why),
	                 FWA_ERR_NONCE);
	free(tok);
	/* Nonces out of bounds are refused, nothing is signed. */
	assert_int_equal(ota_pki_time_token(p, nonce, 8, 1796198400, &tok), OTA_ERR_INVALID);
	assert_null(tok);
	/* Under a root whose time role is another key the same kind of token is refused. */
	EVP_PKEY *other_time = NULL;
	assert_int_equal(ota_key_generate(&other_time), FWA_OK);
	root_with_time(rk, lk, other_time, &root, s);
	assert_int_equal(ota_pki_time_token(p, nonce, sizeof(nonce), 1796198400, &tok), OTA_OK);
	assert_int_equal(fwa_time_token_verify(fwa_crypto_openssl(), &root, tok, strlen(tok), nonce,
	                                       sizeof(nonce), &t, s, &why),
	                 FWA_ERR_THRESHOLD);
	free(tok);
	EVP_PKEY_free(other_time);
	ota_pki_free(p);
	EVP_PKEY_free(tk);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(lk);
	free(s);
}

static void test_time_key_strict(void **state)
{
	(void)state;
	EVP_PKEY *k = NULL;
	struct ota_pki *p = NULL;
	char path[64], msg[256];
	FILE *f;

	assert_int_equal(ota_key_generate(&k), FWA_OK);
	snprintf(path, sizeof(path), "%s/loose.key", dir);
	/* Open to others, or writable by the group: refused. */
	write_key(path, k, 0644);
	assert_int_equal(open_with(path, &p, msg), OTA_ERR_CONFIG);
	assert_null(p);
	assert_non_null(strstr(msg, "at most 0640"));
	write_key(path, k, 0660);
	assert_int_equal(open_with(path, &p, msg), OTA_ERR_CONFIG);
	/* Missing, or not a key. */
	assert_int_equal(open_with("/nonexistent/time.key", &p, msg), OTA_ERR_CONFIG);
	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("not a key\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(open_with(path, &p, msg), OTA_ERR_CONFIG);
	assert_non_null(strstr(msg, "P-256"));
	/* None configured: fine, and no token. */
	assert_int_equal(open_with("", &p, msg), OTA_OK);
	assert_false(ota_pki_has_time(p));
	uint8_t nonce[16] = {0};
	char *tok = NULL;
	assert_int_equal(ota_pki_time_token(p, nonce, 16, 0, &tok), OTA_ERR_NOT_FOUND);
	ota_pki_free(p);
	unlink(path);
	EVP_PKEY_free(k);
}

/* An issuing key's PKCS#11 settings, refused before any token is touched. */
static enum ota_err open_issuer(const char *key, const char *pin_file, char *msg)
{
	struct ota_config cfg;
	struct ota_pki *p = NULL;
	enum ota_err rc;

	ota_config_defaults(&cfg);
	snprintf(cfg.issuer_cert, sizeof(cfg.issuer_cert), "/nonexistent/issuer.pem");
	snprintf(cfg.issuer_key, sizeof(cfg.issuer_key), "%s", key);
	snprintf(cfg.issuer_key_pin_file, sizeof(cfg.issuer_key_pin_file), "%s", pin_file);
	rc = ota_pki_open(&cfg, &p, msg, 256);
	assert_null(p);
	return rc;
}

static void test_issuer_pkcs11_strict(void **state)
{
	(void)state;
	char msg[256];

	assert_int_equal(open_issuer("/etc/otad/issuer.key", "/etc/otad/pin", msg), OTA_ERR_CONFIG);
	assert_non_null(strstr(msg, "go with a pkcs11: issuer_key"));
	assert_int_equal(open_issuer("pkcs11:token=ota;object=i?pin-value=1234", "/x", msg),
	                 OTA_ERR_CONFIG);
	assert_non_null(strstr(msg, "the URI may not carry the PIN"));
	assert_int_equal(open_issuer("pkcs11:token=ota;object=i?pin-source=file:/p", "/x", msg),
	                 OTA_ERR_CONFIG);
	assert_non_null(strstr(msg, "the URI may not carry the PIN"));
	assert_int_equal(open_issuer("pkcs11:token=ota;colour=blue", "/x", msg), OTA_ERR_CONFIG);
	assert_non_null(strstr(msg, "not a PKCS#11 URI (RFC 7512) that otad understands"));
	assert_int_equal(open_issuer("pkcs11:token=ota;object=i", "", msg), OTA_ERR_CONFIG);
	assert_non_null(strstr(msg, "needs [trust] issuer_key_pin_file"));
	assert_int_equal(open_issuer("pkcs11:token=ota;object=i", "/nonexistent/pin", msg),
	                 OTA_ERR_CONFIG);
	assert_non_null(strstr(msg, "issuer_key_pin_file /nonexistent/pin: cannot read it"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_time_token_verifies),
	    cmocka_unit_test(test_time_key_strict),
	    cmocka_unit_test(test_issuer_pkcs11_strict),
	};
	char path[64];
	int rc;

	if (!mkdtemp(dir))
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(path, sizeof(path), "%s/time.key", dir);
	unlink(path);
	rmdir(dir);
	return rc;
}
