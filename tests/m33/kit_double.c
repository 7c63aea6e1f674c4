/*
 * The test crypto kit of the core's tests on the emulated Cortex-M33: a test double, because
 * CI has no crypto library for bare-metal Arm. It is allowed only because the host build runs
 * the very same tests (tests/portable) with real OpenSSL crypto and keys made at run time.
 *
 * - "SHA-256" is a 256-bit non-cryptographic mix of every input byte and the length: stable,
 *   sensitive to any change, but not SHA-256, so no test may compare it to a published vector.
 * - Key i is a well-formed uncompressed P-256 SubjectPublicKeyInfo whose point bytes are mixed
 *   from i (not a point on the curve).
 * - A signature is a DER ECDSA-Sig-Value whose r and s are mixed from the key and the digest;
 *   p256_verify recomputes them, so it accepts exactly what sign() made for that key and
 *   digest and rejects any other key, digest or byte.
 */
#include <string.h>

#include "kit_double.h"

struct mix {
	uint64_t lane[4];
	uint64_t len;
};

_Static_assert(sizeof(struct mix) <= sizeof(struct fwa_sha256), "mix state too large");

static const uint8_t spki_prefix[27] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
    0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
};

static uint64_t fmix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static void mix_init(struct fwa_sha256 *h)
{
	struct mix *m = (struct mix *)h->opaque;
	m->lane[0] = 0x6a09e667f3bcc908ull;
	m->lane[1] = 0xbb67ae8584caa73bull;
	m->lane[2] = 0x3c6ef372fe94f82bull;
	m->lane[3] = 0xa54ff53a5f1d36f1ull;
	m->len = 0;
}

static void mix_update(struct fwa_sha256 *h, const void *data, size_t len)
{
	struct mix *m = (struct mix *)h->opaque;
	const uint8_t *p = data;
	for (size_t i = 0; i < len; i++) {
		unsigned k = (unsigned)(m->len++ & 3);
		/* FNV-1a style per lane, lanes chained so every byte reaches all of them. */
		m->lane[k] = (m->lane[k] ^ p[i] ^ (m->lane[(k + 3) & 3] >> 17)) * 0x100000001b3ull;
	}
}

static void mix_final(struct fwa_sha256 *h, uint8_t out[32])
{
	struct mix *m = (struct mix *)h->opaque;
	uint64_t acc = fmix(m->len ^ 0x9e3779b97f4a7c15ull);
	for (unsigned r = 0; r < 2; r++) {
		for (unsigned k = 0; k < 4; k++) {
			acc = fmix(acc ^ m->lane[k]);
			m->lane[k] = acc;
		}
	}
	for (unsigned k = 0; k < 4; k++)
		for (unsigned b = 0; b < 8; b++)
			out[k * 8 + b] = (uint8_t)(m->lane[k] >> (56 - 8 * b));
	memset(m, 0, sizeof *m);
}

static void mix3(const void *a, size_t alen, const void *b, size_t blen, uint8_t tag,
                 uint8_t out[32])
{
	struct fwa_sha256 h;
	mix_init(&h);
	mix_update(&h, a, alen);
	mix_update(&h, b, blen);
	mix_update(&h, &tag, 1);
	mix_final(&h, out);
}

/* The 70-byte DER signature of `spki` over `digest`. */
static void make_sig(const uint8_t spki[FWA_SPKI_P256_LEN], const uint8_t digest[32],
                     uint8_t sig[70])
{
	sig[0] = 0x30;
	sig[1] = 68;
	sig[2] = 0x02;
	sig[3] = 32;
	mix3(spki, FWA_SPKI_P256_LEN, digest, 32, 'r', sig + 4);
	sig[36] = 0x02;
	sig[37] = 32;
	mix3(spki, FWA_SPKI_P256_LEN, digest, 32, 's', sig + 38);
	/* Positive INTEGERs in minimal form: top bit clear, first byte not zero. */
	sig[4] = (uint8_t)((sig[4] & 0x7f) | 0x01);
	sig[38] = (uint8_t)((sig[38] & 0x7f) | 0x01);
}

static enum fwa_err verify(const uint8_t spki[FWA_SPKI_P256_LEN], const uint8_t digest[32],
                           const uint8_t *sig, size_t sig_len)
{
	uint8_t want[70];
	if (memcmp(spki, spki_prefix, sizeof spki_prefix) != 0)
		return FWA_ERR_KEY;
	make_sig(spki, digest, want);
	if (sig_len != sizeof want || memcmp(sig, want, sizeof want) != 0)
		return FWA_ERR_SIGNATURE;
	return FWA_OK;
}

static bool key_spki(unsigned i, uint8_t spki[FWA_SPKI_P256_LEN])
{
	uint8_t idx[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
	if (i >= PTEST_KEYS)
		return false;
	memcpy(spki, spki_prefix, sizeof spki_prefix);
	mix3("ptest-key", 9, idx, sizeof idx, 'x', spki + 27);
	mix3("ptest-key", 9, idx, sizeof idx, 'y', spki + 59);
	return true;
}

static bool sign(unsigned i, const uint8_t digest[32], uint8_t sig[FWA_SIG_MAX], size_t *len)
{
	uint8_t spki[FWA_SPKI_P256_LEN];
	if (!key_spki(i, spki))
		return false;
	make_sig(spki, digest, sig);
	*len = 70;
	return true;
}

static const struct fwa_crypto crypto = {
    .sha256_init = mix_init,
    .sha256_update = mix_update,
    .sha256_final = mix_final,
    .p256_verify = verify,
};

const struct ptest_kit ptest_kit_double = {
    .name = "m33 crypto double",
    .crypto = &crypto,
    .key_spki = key_spki,
    .sign = sign,
};
