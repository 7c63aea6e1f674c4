/*
 * The apply-time run of bench/delta on QEMU's mps2-an505 (a Cortex-M33): applies a delta
 * linked into the program (base image and delta as binary objects) into a RAM slot with the
 * core's decoder and a software SHA-256 (FIPS 180-4, written here so that the hash chain is
 * checked for real), APPLY_ROUNDS times, and checks the result against the target's SHA-256.
 * bench/delta times runs with 1 and with N rounds and takes the difference, so QEMU's start-up
 * cancels out. Prints the decoder's state size.
 */
#include <stdio.h>
#include <string.h>

#include "fwa/delta.h"

#ifndef APPLY_ROUNDS
#define APPLY_ROUNDS 1
#endif

extern const uint8_t _binary_base_bin_start[], _binary_base_bin_end[];
extern const uint8_t _binary_delta_bin_start[], _binary_delta_bin_end[];
extern const uint8_t _binary_target_sha_bin_start[];

#define SLOT (512u * 1024u)
static uint8_t slot[SLOT];

/* ---- SHA-256 ---- */

struct sha {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	uint32_t n;
};
_Static_assert(sizeof(struct sha) <= sizeof(struct fwa_sha256), "sha state too large");

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) ((x) >> (n) | (x) << (32 - (n)))

static void block(struct sha *s, const uint8_t *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, h, t1, t2;

	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++)
		w[i] = (ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10)) + w[i - 7] +
		       (ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3)) + w[i - 16];
	a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
	e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
	for (int i = 0; i < 64; i++) {
		t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
		t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
	}
	s->h[0] += a, s->h[1] += b, s->h[2] += c, s->h[3] += d;
	s->h[4] += e, s->h[5] += f, s->h[6] += g, s->h[7] += h;
}

static void sha_init(struct fwa_sha256 *ctx)
{
	static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	struct sha *s = (struct sha *)ctx->opaque;

	memcpy(s->h, iv, sizeof(iv));
	s->len = 0;
	s->n = 0;
}

static void sha_update(struct fwa_sha256 *ctx, const void *data, size_t len)
{
	struct sha *s = (struct sha *)ctx->opaque;
	const uint8_t *p = data;

	s->len += len;
	while (len) {
		if (s->n == 0 && len >= 64) {
			block(s, p);
			p += 64;
			len -= 64;
			continue;
		}
		s->buf[s->n++] = *p++;
		len--;
		if (s->n == 64) {
			block(s, s->buf);
			s->n = 0;
		}
	}
}

static void sha_final(struct fwa_sha256 *ctx, uint8_t out[32])
{
	struct sha *s = (struct sha *)ctx->opaque;
	uint64_t bits = s->len * 8;
	uint8_t pad = 0x80, z = 0, lb[8];

	sha_update(ctx, &pad, 1);
	while (s->n != 56)
		sha_update(ctx, &z, 1);
	for (int i = 0; i < 8; i++)
		lb[i] = (uint8_t)(bits >> (56 - 8 * i));
	sha_update(ctx, lb, 8);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(s->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)s->h[i];
	}
}

static const struct fwa_crypto crypto = {sha_init, sha_update, sha_final, NULL};

/* ---- the port: base in flash (linked in), slot in RAM ---- */

static enum fwa_err geo(void *ctx, struct fwa_flash_geometry *g)
{
	(void)ctx;
	g->slot_size = SLOT;
	g->erase_size = 4096;
	g->prog_size = 256;
	g->state_size = 4096;
	return FWA_OK;
}

static enum fwa_err er(void *ctx, uint32_t off, uint32_t len)
{
	(void)ctx;
	memset(slot + off, 0xff, len);
	return FWA_OK;
}

static enum fwa_err pr(void *ctx, uint32_t off, const void *d, uint32_t len)
{
	(void)ctx;
	memcpy(slot + off, d, len);
	return FWA_OK;
}

static enum fwa_err rd(void *ctx, uint32_t off, void *buf, uint32_t len)
{
	uint32_t blen = (uint32_t)(_binary_base_bin_end - _binary_base_bin_start);

	(void)ctx;
	if (off > blen || len > blen - off)
		return FWA_ERR_FLASH;
	memcpy(buf, _binary_base_bin_start + off, len);
	return FWA_OK;
}

static struct fwa_delta dec;
static uint8_t page[FWA_DELTA_SECTOR];

int main(void)
{
	const uint8_t *delta = _binary_delta_bin_start;
	uint32_t dlen = (uint32_t)(_binary_delta_bin_end - _binary_delta_bin_start);
	struct fwa_port port = {0};
	struct fwa_delta_params p = {0};
	struct fwa_sha256 h;
	uint8_t sha[32];
	size_t used;

	port.crypto = &crypto;
	port.flash_geometry = geo;
	port.slot_erase = er;
	port.slot_program = pr;
	port.active_read = rd;
	/* The sizes and the chain head come from the delta itself here (the bench's own input). */
	p.base_size = (uint32_t)(_binary_base_bin_end - _binary_base_bin_start);
	p.target_size = (uint32_t)delta[12] | (uint32_t)delta[13] << 8 | (uint32_t)delta[14] << 16 |
	                (uint32_t)delta[15] << 24;
	p.delta_size = dlen;
	{
		uint32_t first = FWA_DELTA_HEADER + 2 +
		                 ((uint32_t)delta[16] | (uint32_t)delta[17] << 8) +
		                 (p.target_size > FWA_DELTA_SECTOR ? 32u : 0u);
		sha_init(&h);
		sha_update(&h, delta, first);
		sha_final(&h, p.head_sha256);
	}
	for (int r = 0; r < APPLY_ROUNDS; r++) {
		if (fwa_delta_begin(&dec, &port, &p, NULL, page) != FWA_OK)
			return 2;
		for (uint32_t at = 0; at < dlen; at += (uint32_t)used)
			if (fwa_delta_feed(&dec, delta + at, dlen - at, &used) != FWA_OK)
				break;
		if (!fwa_delta_done(&dec)) {
			printf("apply: %s\n", dec.why);
			return 3;
		}
	}
	sha_init(&h);
	sha_update(&h, slot, p.target_size);
	sha_final(&h, sha);
	if (memcmp(sha, _binary_target_sha_bin_start, 32) != 0) {
		printf("apply: result differs from the target\n");
		return 4;
	}
	printf("apply: %u rounds of %u target bytes from a %u-byte delta; decoder state %u bytes\n",
	       (unsigned)APPLY_ROUNDS, (unsigned)p.target_size, (unsigned)dlen,
	       (unsigned)sizeof(struct fwa_delta));
	return 0;
}
