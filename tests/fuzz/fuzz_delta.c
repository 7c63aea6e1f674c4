/*
 * libFuzzer target of the delta decoder (core/delta.c) with hostile deltas. A random delta
 * never gets past the hash chain, so the input describes one that does: LZSS parameters,
 * a base image, a target size, then each unit's compressed payload; the target assembles the
 * delta around them, computes the hash chain with the real crypto port, and feeds it in
 * chunks of input-chosen sizes, stopping once at an input-chosen unit to resume from the
 * checkpoint with a fresh decoder. The port traps on any read outside the base, any write
 * outside the slot or off the flash granules, and any write out of order; a decoder that
 * says it is done must have written every sector of the target.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fwa/crypto_openssl.h"
#include "fwa/delta.h"

#define SLOT (24u * 1024u)
#define BASE_MAX 8192u

static uint8_t base[BASE_MAX], slot[SLOT];
static uint32_t base_len, next_write;
static uint8_t delta[8 * FWA_DELTA_UNIT_MAX];

static enum fwa_err geo(void *ctx, struct fwa_flash_geometry *o)
{
	(void)ctx;
	o->slot_size = SLOT;
	o->erase_size = 4096;
	o->prog_size = 256;
	o->state_size = 4096;
	return FWA_OK;
}

static enum fwa_err erase(void *ctx, uint32_t off, uint32_t len)
{
	(void)ctx;
	/* In order: the next sector, or one already written again after a resume. */
	if (off % 4096 || len % 4096 || off > SLOT || len > SLOT - off || off > next_write)
		abort();
	memset(slot + off, 0xff, len);
	return FWA_OK;
}

static enum fwa_err program(void *ctx, uint32_t off, const void *d, uint32_t len)
{
	(void)ctx;
	if (off % 256 || len % 256 || off > SLOT || len > SLOT - off || off > next_write)
		abort();
	memcpy(slot + off, d, len);
	if (off + len > next_write)
		next_write = off + len;
	return FWA_OK;
}

static enum fwa_err aread(void *ctx, uint32_t off, void *buf, uint32_t len)
{
	(void)ctx;
	if (off > base_len || len > base_len - off)
		abort();
	memcpy(buf, base + off, len);
	return FWA_OK;
}

static size_t take(const uint8_t **p, size_t *n, size_t k)
{
	size_t v = 0;

	for (size_t i = 0; i < k && *n; i++, (*p)++, (*n)--)
		v |= (size_t) * *p << (8 * i);
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fwa_delta d;
	static uint8_t page[FWA_DELTA_SECTOR];
	struct fwa_port port = {0};
	struct fwa_delta_params p = {0};
	const struct fwa_crypto *c = fwa_crypto_openssl();
	size_t at[8], len = FWA_DELTA_HEADER, used, chunk, stop;
	unsigned wb, lb, units;
	uint32_t tlen;

	wb = FWA_DELTA_WINDOW_MIN + (unsigned)take(&data, &size, 1) % 9;
	lb = FWA_DELTA_LOOKAHEAD_MIN + (unsigned)take(&data, &size, 1) % (wb - 1);
	base_len = (uint32_t)(take(&data, &size, 2) % (BASE_MAX + 1));
	tlen = 1 + (uint32_t)(take(&data, &size, 2) % (5 * FWA_DELTA_SECTOR));
	chunk = 1 + take(&data, &size, 2) % 5000;
	stop = take(&data, &size, 1);
	for (uint32_t i = 0; i < base_len; i++)
		base[i] = (uint8_t)(take(&data, &size, 1) ^ i);
	units = (tlen + FWA_DELTA_SECTOR - 1) / FWA_DELTA_SECTOR;
	stop %= units;

	/* Header, then units: length, payload from the input, room for the next hash. */
	memcpy(delta, "FWAD\x01", 5);
	delta[5] = (uint8_t)wb;
	delta[6] = (uint8_t)lb;
	delta[7] = 0;
	for (int k = 0; k < 4; k++) {
		delta[8 + k] = (uint8_t)(base_len >> (8 * k));
		delta[12 + k] = (uint8_t)(tlen >> (8 * k));
	}
	for (unsigned u = 0; u < units; u++) {
		size_t pl = take(&data, &size, 2) % 6000;

		if (pl > size)
			pl = size;
		at[u] = u ? len : 0;
		delta[len++] = (uint8_t)pl;
		delta[len++] = (uint8_t)(pl >> 8);
		memcpy(delta + len, data, pl);
		data += pl;
		size -= pl;
		len += pl + (u + 1 < units ? 32 : 0);
	}
	for (unsigned u = units; u-- > 0;) {
		size_t end = u + 1 < units ? at[u + 1] : len;
		uint8_t h[32];

		fwa_sha256(c, delta + at[u], end - at[u], h);
		if (u)
			memcpy(delta + at[u] - 32, h, 32);
		else
			memcpy(p.head_sha256, h, 32);
	}
	p.base_size = base_len;
	p.target_size = tlen;
	p.delta_size = (uint32_t)len;

	port.crypto = c;
	port.flash_geometry = geo;
	port.slot_erase = erase;
	port.slot_program = program;
	port.active_read = aread;
	next_write = 0;
	if (fwa_delta_begin(&d, &port, &p, NULL, page) != FWA_OK)
		abort(); /* every parameter here is in range */
	for (size_t off = 0; off < len && !d.failed && !fwa_delta_done(&d); off += used) {
		size_t n = len - off < chunk ? len - off : chunk;

		used = 0;
		if (fwa_delta_feed(&d, delta + off, n, &used) != FWA_OK)
			break;
		if (d.ck.out_off == stop * FWA_DELTA_SECTOR && stop) {
			/* Power cut: a fresh decoder from the checkpoint, the rest of the delta. */
			struct fwa_delta_ckpt ck = d.ck;

			stop = 0;
			memset(&d, 0, sizeof(d));
			if (fwa_delta_begin(&d, &port, &p, &ck, page) != FWA_OK)
				abort();
			off = ck.in_off;
			used = 0;
		}
	}
	if (fwa_delta_done(&d) && next_write < tlen)
		abort();
	return 0;
}
