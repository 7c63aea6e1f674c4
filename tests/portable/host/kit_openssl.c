/*
 * The test crypto kit of the portable core tests on the host: the real OpenSSL crypto port
 * (fwa_crypto_openssl) and ECDSA P-256 keys generated on first use in each run, so nothing
 * secret is ever stored. The emulated Cortex-M33 runs the same tests with a test double.
 */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "fwa/crypto_openssl.h"
#include "kit_openssl.h"

static EVP_PKEY *keys[PTEST_KEYS];

static EVP_PKEY *key(unsigned i)
{
	if (i >= PTEST_KEYS)
		return NULL;
	if (!keys[i] && ota_key_generate(&keys[i]) != FWA_OK) {
		fprintf(stderr, "kit: generating test key %u failed\n", i);
		return NULL;
	}
	return keys[i];
}

static bool key_spki(unsigned i, uint8_t spki[FWA_SPKI_P256_LEN])
{
	const char *why = NULL;
	EVP_PKEY *k = key(i);
	return k && ota_key_spki(k, spki, &why) == FWA_OK;
}

static bool sign(unsigned i, const uint8_t digest[32], uint8_t sig[FWA_SIG_MAX], size_t *len)
{
	EVP_PKEY *k = key(i);
	return k && ota_key_sign_digest(k, digest, sig, len) == FWA_OK;
}

void ptest_kit_openssl_free(void)
{
	for (unsigned i = 0; i < PTEST_KEYS; i++) {
		EVP_PKEY_free(keys[i]);
		keys[i] = NULL;
	}
}

const struct ptest_kit *ptest_kit_openssl(void)
{
	static struct ptest_kit kit = {
	    .name = "host OpenSSL",
	    .key_spki = key_spki,
	    .sign = sign,
	};
	kit.crypto = fwa_crypto_openssl();
	return &kit;
}
