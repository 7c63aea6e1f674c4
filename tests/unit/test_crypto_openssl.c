/*
 * test_crypto_openssl.c - what only the host can check of the verifier: the OpenSSL crypto
 * port itself (SHA-256 against published vectors, ECDSA P-256 verification of good, damaged,
 * truncated and non-P-256 input, the key helpers' refusal of other curves) and a root listing
 * a real P-384 key. The verifier's behaviour (JSON, encodings, DSSE, roots, manifests) is
 * tested once, in tests/portable, on the host with this port and on Cortex-M33.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "fwa/crypto_openssl.h"
#include "fwa/json.h"
#include "fwa/verify.h"

static const struct fwa_crypto *cr;
static struct fwa_verify_scratch scratch;

static void unhex(const char *hex, uint8_t *out)
{
	assert_int_equal(fwa_unhex(hex, strlen(hex), out), FWA_OK);
}

/* FIPS 180-4 examples, in one call and in pieces through the port's streaming interface. */
static void test_sha256_vectors(void **state)
{
	(void)state;
	static const struct {
		const char *in, *hex;
	} v[] = {
	    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	};
	uint8_t want[32], got[32];
	struct fwa_sha256 h;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t n = strlen(v[i].in);
		unhex(v[i].hex, want);
		fwa_sha256(cr, v[i].in, n, got);
		assert_memory_equal(got, want, 32);
		cr->sha256_init(&h);
		cr->sha256_update(&h, v[i].in, n / 2);
		cr->sha256_update(&h, "", 0);
		cr->sha256_update(&h, v[i].in + n / 2, n - n / 2);
		cr->sha256_final(&h, got);
		assert_memory_equal(got, want, 32);
	}
}

/* A valid signature verifies; one flipped bit of s, or a DER cut short, does not. */
static void test_p256_verify(void **state)
{
	(void)state;
	EVP_PKEY *key = NULL, *other = NULL;
	uint8_t spki[FWA_SPKI_P256_LEN], ospki[FWA_SPKI_P256_LEN], d[32], sig[FWA_SIG_MAX];
	size_t len;

	assert_int_equal(ota_key_generate(&key), FWA_OK);
	assert_int_equal(ota_key_generate(&other), FWA_OK);
	assert_int_equal(ota_key_spki(key, spki, NULL), FWA_OK);
	assert_int_equal(ota_key_spki(other, ospki, NULL), FWA_OK);
	fwa_sha256(cr, "payload", 7, d);
	assert_int_equal(ota_key_sign_digest(key, d, sig, &len), FWA_OK);
	assert_in_range(len, 8, FWA_SIG_MAX);

	assert_int_equal(cr->p256_verify(spki, d, sig, len), FWA_OK);
	assert_int_equal(cr->p256_verify(ospki, d, sig, len), FWA_ERR_SIGNATURE);
	d[0] ^= 0x01;
	assert_int_equal(cr->p256_verify(spki, d, sig, len), FWA_ERR_SIGNATURE);
	d[0] ^= 0x01;
	sig[len - 1] ^= 0x01;
	assert_int_equal(cr->p256_verify(spki, d, sig, len), FWA_ERR_SIGNATURE);
	sig[len - 1] ^= 0x01;
	assert_int_equal(cr->p256_verify(spki, d, sig, len - 3), FWA_ERR_SIGNATURE);
	assert_int_equal(cr->p256_verify(spki, d, sig, 0), FWA_ERR_SIGNATURE);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
}

static char *b64(const uint8_t *d, size_t n)
{
	static char out[2][256];
	static int i;
	char *o = out[i++ % 2];
	long l = fwa_base64_encode(d, n, o, 255);
	assert_true(l >= 0);
	o[l] = '\0';
	return o;
}

/*
 * Wrong curves: a P-384 key listed as a root key (its key id right, its SPKI well-formed DER),
 * the key helpers given one, and the port handed a non-P-256 SPKI or a point off the curve.
 */
static void test_wrong_curve(void **state)
{
	(void)state;
	EVP_PKEY *p384 = EVP_EC_gen("P-384");
	EVP_PKEY *p256 = NULL;
	unsigned char *der = NULL;
	uint8_t out[FWA_SPKI_P256_LEN], spki[FWA_SPKI_P256_LEN], d[32];
	char payload[4096], id[FWA_KEYID_HEX_LEN + 1], id256[FWA_KEYID_HEX_LEN + 1];
	const char *why = NULL;
	struct fwa_root r;
	int n;

	assert_non_null(p384);
	assert_int_equal(ota_key_spki(p384, out, &why), FWA_ERR_KEY);
	n = i2d_PUBKEY(p384, &der);
	assert_true(n > FWA_SPKI_P256_LEN);
	fwa_sha256(cr, der, (size_t)n, d);
	fwa_hex(d, 32, id);
	assert_int_equal(ota_key_generate(&p256), FWA_OK);
	assert_int_equal(ota_key_spki(p256, spki, NULL), FWA_OK);
	ota_key_id(cr, spki, id256);

	snprintf(payload, sizeof(payload),
	         "{\"_type\":\"root\",\"spec_version\":\"1\",\"version\":1,"
	         "\"expires\":\"2030-01-01T00:00:00Z\",\"keys\":{"
	         "\"%s\":{\"keytype\":\"ecdsa-p256\",\"public\":\"%s\"},"
	         "\"%s\":{\"keytype\":\"ecdsa-p256\",\"public\":\"%s\"}},"
	         "\"roles\":{\"root\":{\"keyids\":[\"%s\"],\"threshold\":1},"
	         "\"release\":{\"keyids\":[\"%s\"],\"threshold\":1}}}",
	         id, b64(der, (size_t)n), id256, b64(spki, sizeof(spki)), id, id256);
	assert_int_equal(
	    fwa_root_decode(cr, (const uint8_t *)payload, strlen(payload), &r, &scratch, &why),
	    FWA_ERR_KEY);
	assert_non_null(strstr(why, "root.keys.public"));

	/* The port refuses a non-P-256 SPKI even if it were handed one. */
	static const uint8_t sig[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};
	uint8_t fake[FWA_SPKI_P256_LEN];
	memcpy(fake, der, sizeof(fake));
	assert_int_equal(cr->p256_verify(fake, d, sig, sizeof(sig)), FWA_ERR_KEY);
	/* A P-256 SPKI whose point is not on the curve: the port says KEY. */
	memcpy(fake, spki, sizeof(fake));
	fake[90] ^= 0x01;
	assert_int_equal(cr->p256_verify(fake, d, sig, sizeof(sig)), FWA_ERR_KEY);
	OPENSSL_free(der);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(p256);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sha256_vectors),
	    cmocka_unit_test(test_p256_verify),
	    cmocka_unit_test(test_wrong_curve),
	};
	cr = fwa_crypto_openssl();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
