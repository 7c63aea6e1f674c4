/*
 * Unit tests of delta updates on the host: the encoder (signer/delta.c) and the freestanding
 * decoder (core/delta.c) against each other over pairs of images shaped like firmware changes
 * (a few bytes, an insertion that shifts everything after it, addresses moved by a constant, new
 * code appended, an unrelated image, an empty base), fed in chunks of every awkward size;
 * resuming from every checkpoint; and the refusals: a changed byte anywhere in the delta, a delta
 * for another base size, a truncated or extended delta, a flash that fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "delta.h"
#include "fwa/crypto_openssl.h"
#include "fwa/delta.h"

#define SLOT (256u * 1024u)

struct mem {
	const uint8_t *base;
	size_t base_len;
	uint8_t slot[SLOT];
	uint32_t erases, programs;
	int fail_program_at; /* 1-based program call that fails; 0 never */
};

static struct mem m;
static struct fwa_port port;

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
	assert_true(off % 4096 == 0 && len % 4096 == 0 && off + len <= SLOT);
	memset(m.slot + off, 0xff, len);
	m.erases++;
	return FWA_OK;
}

static enum fwa_err program(void *ctx, uint32_t off, const void *d, uint32_t len)
{
	(void)ctx;
	assert_true(off % 256 == 0 && len % 256 == 0 && off + len <= SLOT);
	if (m.fail_program_at && ++m.programs == (uint32_t)m.fail_program_at)
		return FWA_ERR_FLASH;
	memcpy(m.slot + off, d, len);
	return FWA_OK;
}

static enum fwa_err aread(void *ctx, uint32_t off, void *buf, uint32_t len)
{
	(void)ctx;
	assert_true(off <= m.base_len && len <= m.base_len - off); /* never outside the base */
	memcpy(buf, m.base + off, len);
	return FWA_OK;
}

static void setup_port(const uint8_t *base, size_t base_len)
{
	memset(&port, 0, sizeof(port));
	port.crypto = fwa_crypto_openssl();
	port.flash_geometry = geo;
	port.slot_erase = erase;
	port.slot_program = program;
	port.active_read = aread;
	m.base = base;
	m.base_len = base_len;
	m.erases = m.programs = 0;
	m.fail_program_at = 0;
	memset(m.slot, 0xee, sizeof(m.slot));
}

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

/* Something shaped like Thumb code: 4-byte words, many of them calls with relative offsets. */
static void fake_code(uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 4 <= n; i += 4) {
		uint32_t w =
		    rnd() % 3 ? (rnd() & 0xffff) * 0x10001u : 0xf000f800u | (rnd() & 0x3ff);
		memcpy(p + i, &w, 4);
	}
	for (size_t i = n & ~(size_t)3; i < n; i++)
		p[i] = (uint8_t)rnd();
}

static struct fwa_delta dec;
static uint8_t page[FWA_DELTA_SECTOR];

/* Feed all of in[0..len) as the agent does: again after each unit the decoder stops at. */
static enum fwa_err feed_all(const uint8_t *in, size_t len)
{
	size_t used;
	enum fwa_err err = FWA_OK;

	for (size_t at = 0; at < len; at += used) {
		err = fwa_delta_feed(&dec, in + at, len - at, &used);
		if (err != FWA_OK)
			return err;
		assert_true(used > 0);
	}
	return err;
}

static void params_of(const uint8_t *delta, size_t len, size_t base_len, size_t target_len,
                      const struct ota_delta_info *info, struct fwa_delta_params *p)
{
	(void)delta;
	memset(p, 0, sizeof(*p));
	p->base_size = (uint32_t)base_len;
	p->target_size = (uint32_t)target_len;
	p->delta_size = (uint32_t)len;
	memcpy(p->head_sha256, info->head_sha256, 32);
}

/* Encode, decode in chunks of `chunk` bytes, compare. Returns the delta size. */
static size_t round_trip(const uint8_t *base, size_t blen, const uint8_t *tgt, size_t tlen,
                         size_t chunk)
{
	struct ota_delta_info info;
	struct fwa_delta_params p;
	const char *why = NULL;
	uint8_t *delta;
	size_t dlen, off = 0;

	assert_int_equal(ota_delta_encode(base, blen, tgt, tlen, NULL, &delta, &dlen, &info, &why),
	                 0);
	setup_port(base, blen);
	params_of(delta, dlen, blen, tlen, &info, &p);
	assert_int_equal(fwa_delta_begin(&dec, &port, &p, NULL, page), FWA_OK);
	while (off < dlen) {
		size_t n = dlen - off < chunk ? dlen - off : chunk;

		assert_int_equal(feed_all(delta + off, n), FWA_OK);
		off += n;
	}
	assert_true(fwa_delta_done(&dec));
	assert_memory_equal(m.slot, tgt, tlen);
	free(delta);
	return dlen;
}

static void pairs_round_trip(void **state)
{
	static uint8_t a[200000], b[210000];
	static const size_t chunks[] = {1, 7, 255, 4096, 100000};
	(void)state;

	fake_code(a, sizeof(a));
	/* Identical images: nearly nothing but copies. */
	assert_true(round_trip(a, sizeof(a), a, sizeof(a), 4096) < 2000);
	/* A few bytes changed. */
	memcpy(b, a, sizeof(a));
	b[100] ^= 1;
	b[150000] = 7;
	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++)
		assert_true(round_trip(a, sizeof(a), b, sizeof(a), chunks[c]) < 2500);
	/* 16 bytes inserted early: everything after moves (bsdiff's case). */
	memcpy(b, a, 5000);
	memset(b + 5000, 0x42, 16);
	memcpy(b + 5016, a + 5000, sizeof(a) - 5000);
	assert_true(round_trip(a, sizeof(a), b, sizeof(a) + 16, 1000) < 4000);
	/* New code appended, target longer than the base. */
	memcpy(b, a, sizeof(a));
	fake_code(b + sizeof(a), 10000);
	round_trip(a, sizeof(a), b, sizeof(b), 3333);
	/* Unrelated image: no worse than about the image itself. */
	fake_code(b, sizeof(b));
	assert_true(round_trip(a, sizeof(a), b, sizeof(b), 4096) < sizeof(b) + sizeof(b) / 8);
	/* Empty base, and a target of one byte and of one sector plus one. */
	round_trip(a, 0, b, 5000, 100);
	round_trip(a, sizeof(a), b, 1, 1);
	round_trip(a, sizeof(a), b, FWA_DELTA_SECTOR + 1, 17);
}

static void every_lzss_parameter(void **state)
{
	static uint8_t a[40000], b[40000];
	(void)state;

	fake_code(a, sizeof(a));
	memcpy(b, a, sizeof(b));
	for (size_t i = 0; i < sizeof(b); i += 997)
		b[i] += 3;
	for (unsigned w = FWA_DELTA_WINDOW_MIN; w <= FWA_DELTA_WINDOW_MAX; w++) {
		for (unsigned l = FWA_DELTA_LOOKAHEAD_MIN; l <= w; l += 3) {
			struct ota_delta_opts o = {w, l};
			struct ota_delta_info info;
			struct fwa_delta_params p;
			const char *why;
			uint8_t *d;
			size_t dl;

			assert_int_equal(
			    ota_delta_encode(a, sizeof(a), b, sizeof(b), &o, &d, &dl, &info, &why),
			    0);
			setup_port(a, sizeof(a));
			params_of(d, dl, sizeof(a), sizeof(b), &info, &p);
			assert_int_equal(fwa_delta_begin(&dec, &port, &p, NULL, page), FWA_OK);
			assert_int_equal(feed_all(d, dl), FWA_OK);
			assert_true(fwa_delta_done(&dec));
			assert_memory_equal(m.slot, b, sizeof(b));
			free(d);
		}
	}
	struct ota_delta_opts bad = {13, 8};
	struct ota_delta_info info;
	const char *why = NULL;
	uint8_t *d;
	size_t dl;
	assert_int_equal(ota_delta_encode(a, sizeof(a), b, sizeof(b), &bad, &d, &dl, &info, &why),
	                 -1);
	assert_non_null(why);
	assert_null(d);
}

/* Stop after every unit, start a fresh decoder from the checkpoint, finish: same image. */
static void resumes_from_every_checkpoint(void **state)
{
	static uint8_t a[60000], b[60000];
	struct ota_delta_info info;
	struct fwa_delta_params p;
	const char *why;
	uint8_t *d;
	size_t dl, used;
	(void)state;

	fake_code(a, sizeof(a));
	memcpy(b, a, sizeof(b));
	memmove(b + 3000, b + 2990, sizeof(b) - 3000);
	assert_int_equal(ota_delta_encode(a, sizeof(a), b, sizeof(b), NULL, &d, &dl, &info, &why),
	                 0);
	params_of(d, dl, sizeof(a), sizeof(b), &info, &p);
	for (uint32_t stop = 1; stop < info.units; stop++) {
		struct fwa_delta_ckpt ck;
		uint32_t units = 0;

		setup_port(a, sizeof(a));
		assert_int_equal(fwa_delta_begin(&dec, &port, &p, NULL, page), FWA_OK);
		/* Byte by byte until `stop` units are in flash; then "power goes". */
		for (size_t off = 0; units < stop; off++) {
			uint32_t before = dec.ck.out_off;

			assert_int_equal(fwa_delta_feed(&dec, d + off, 1, &used), FWA_OK);
			if (dec.ck.out_off != before)
				units++;
		}
		ck = dec.ck;
		memset(&dec, 0x5a, sizeof(dec));                      /* RAM is gone */
		memset(m.slot + ck.out_off, 0x00, SLOT - ck.out_off); /* half-written garbage */
		assert_int_equal(fwa_delta_begin(&dec, &port, &p, &ck, page), FWA_OK);
		assert_int_equal(feed_all(d + ck.in_off, dl - ck.in_off), FWA_OK);
		assert_true(fwa_delta_done(&dec));
		assert_memory_equal(m.slot, b, sizeof(b));
	}
	free(d);
}

/* Any changed byte of the delta is refused before it is decoded, and nothing past is written. */
static void tampering_refused(void **state)
{
	static uint8_t a[30000], b[30000];
	struct ota_delta_info info;
	struct fwa_delta_params p;
	const char *why;
	uint8_t *d;
	size_t dl, used;
	(void)state;

	fake_code(a, sizeof(a));
	memcpy(b, a, sizeof(b));
	b[12345] ^= 0x55;
	assert_int_equal(ota_delta_encode(a, sizeof(a), b, sizeof(b), NULL, &d, &dl, &info, &why),
	                 0);
	params_of(d, dl, sizeof(a), sizeof(b), &info, &p);
	for (size_t i = 0; i < dl; i += 1 + i / 8) {
		enum fwa_err err;

		setup_port(a, sizeof(a));
		d[i] ^= 0x01;
		assert_int_equal(fwa_delta_begin(&dec, &port, &p, NULL, page), FWA_OK);
		err = feed_all(d, dl);
		assert_int_equal(err, FWA_ERR_DELTA);
		assert_false(fwa_delta_done(&dec));
		/* Sectors before the changed unit were written; none at or after it. */
		assert_true(dec.ck.in_off <= i);
		assert_int_equal(fwa_delta_feed(&dec, d, 1, &used), FWA_ERR_BUSY);
		d[i] ^= 0x01;
	}
	/* Wrong sizes in the metadata, a short or long delta, a bad checkpoint. */
	setup_port(a, sizeof(a));
	p.base_size--;
	assert_int_equal(fwa_delta_begin(&dec, &port, &p, NULL, page), FWA_OK);
	assert_int_equal(feed_all(d, dl), FWA_ERR_DELTA);
	p.base_size++;
	p.delta_size--;
	assert_int_equal(fwa_delta_begin(&dec, &port, &p, NULL, page), FWA_OK);
	assert_int_equal(feed_all(d, dl), FWA_ERR_DELTA);
	p.delta_size++;
	assert_int_equal(fwa_delta_begin(&dec, &port, &p, NULL, page), FWA_OK);
	assert_int_equal(feed_all(d, dl), FWA_OK);
	assert_int_equal(fwa_delta_feed(&dec, d, 1, &used), FWA_ERR_DELTA);
	struct fwa_delta_ckpt ck = {.in_off = 100, .out_off = 4095, .wbits = 11, .lbits = 8};
	assert_int_equal(fwa_delta_begin(&dec, &port, &p, &ck, page), FWA_ERR_DELTA);
	p.target_size = SLOT + 1;
	assert_int_equal(fwa_delta_begin(&dec, &port, &p, NULL, page), FWA_ERR_IMAGE_SIZE);
	p.target_size = sizeof(b);
	port.active_read = NULL;
	assert_int_equal(fwa_delta_begin(&dec, &port, &p, NULL, page), FWA_ERR_BUSY);
	/* A flash that fails: FWA_ERR_FLASH, and the checkpoint stays before the failed sector. */
	setup_port(a, sizeof(a));
	m.fail_program_at = 3;
	assert_int_equal(fwa_delta_begin(&dec, &port, &p, NULL, page), FWA_OK);
	assert_int_equal(feed_all(d, dl), FWA_ERR_FLASH);
	assert_int_equal(dec.ck.out_off, 2 * FWA_DELTA_SECTOR);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(pairs_round_trip),
	    cmocka_unit_test(every_lzss_parameter),
	    cmocka_unit_test(resumes_from_every_checkpoint),
	    cmocka_unit_test(tampering_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
