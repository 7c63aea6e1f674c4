/*
 * crypto_rp2350.c - the agent's crypto port on the RP2350: SHA-256 on the chip's SHA-256
 * accelerator through pico_sha256, and ECDSA P-256 signature verification through mbedTLS.
 *
 * The accelerator serves one hash at a time. A hash started while it is held (never the case
 * in the agent core today, but allowed by the port contract) falls back to mbedTLS's software
 * SHA-256, so that no caller ever blocks or fails. mbedTLS itself is built without
 * MBEDTLS_SHA256_ALT, so TLS never competes for the accelerator either.
 */
#include <string.h>

#include "mbedtls/bignum.h"
#include "mbedtls/ecp.h"
#include "mbedtls/pk.h"
#include "mbedtls/sha256.h"
#include "pico/sha256.h"

#include "port_rp2350.h"

struct hash {
	bool hw;
	union {
		pico_sha256_state_t hw;
		mbedtls_sha256_context sw;
	} u;
};

_Static_assert(sizeof(struct hash) <= sizeof(struct fwa_sha256), "SHA-256 state too large");

static void sha_init(struct fwa_sha256 *h)
{
	struct hash *s = (struct hash *)h->opaque;

	memset(s, 0, sizeof(*s));
	s->hw = pico_sha256_try_start(&s->u.hw, SHA256_BIG_ENDIAN, false) == PICO_OK;
	if (!s->hw) {
		mbedtls_sha256_init(&s->u.sw);
		(void)mbedtls_sha256_starts(&s->u.sw, 0);
	}
}

static void sha_update(struct fwa_sha256 *h, const void *data, size_t len)
{
	struct hash *s = (struct hash *)h->opaque;

	if (s->hw)
		pico_sha256_update_blocking(&s->u.hw, data, len);
	else
		(void)mbedtls_sha256_update(&s->u.sw, data, len);
}

static void sha_final(struct fwa_sha256 *h, uint8_t out[32])
{
	struct hash *s = (struct hash *)h->opaque;

	if (s->hw) {
		sha256_result_t r;
		pico_sha256_finish(&s->u.hw, &r); /* also releases the accelerator */
		memcpy(out, r.bytes, 32);
	} else {
		(void)mbedtls_sha256_finish(&s->u.sw, out);
		mbedtls_sha256_free(&s->u.sw);
	}
	memset(s, 0, sizeof(*s));
}

static bool out_of_memory(int rc)
{
	return rc == MBEDTLS_ERR_PK_ALLOC_FAILED || rc == MBEDTLS_ERR_ECP_ALLOC_FAILED ||
	       rc == MBEDTLS_ERR_MPI_ALLOC_FAILED;
}

static enum fwa_err p256_verify(const uint8_t spki[FWA_SPKI_P256_LEN], const uint8_t digest[32],
                                const uint8_t *sig, size_t sig_len)
{
	mbedtls_pk_context pk;
	enum fwa_err err;
	int rc;

	mbedtls_pk_init(&pk);
	rc = mbedtls_pk_parse_public_key(&pk, spki, FWA_SPKI_P256_LEN);
	if (rc != 0) {
		err = out_of_memory(rc) ? FWA_ERR_CRYPTO : FWA_ERR_KEY;
		goto out;
	}
	if (mbedtls_pk_get_type(&pk) != MBEDTLS_PK_ECKEY ||
	    mbedtls_ecp_keypair_get_group_id(mbedtls_pk_ec(pk)) != MBEDTLS_ECP_DP_SECP256R1) {
		err = FWA_ERR_KEY;
		goto out;
	}
	/* Past the key, any failure but memory is the signature's: bad DER or a wrong value. */
	rc = mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, digest, 32, sig, sig_len);
	if (rc == 0)
		err = FWA_OK;
	else
		err = out_of_memory(rc) ? FWA_ERR_CRYPTO : FWA_ERR_SIGNATURE;
out:
	mbedtls_pk_free(&pk);
	return err;
}

const struct fwa_crypto *fwa_rp2350_crypto(void)
{
	static const struct fwa_crypto c = {
	    .sha256_init = sha_init,
	    .sha256_update = sha_update,
	    .sha256_final = sha_final,
	    .p256_verify = p256_verify,
	};
	return &c;
}
