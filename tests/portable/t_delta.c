/*
 * Portable tests of delta updates, run on the host and on the emulated Cortex-M33: the decoder
 * (core/delta.c) on deltas written here by a tiny encoder (literals and distance-1 runs of LZSS,
 * instructions by hand, the hash chain through the kit's crypto), over a simulated pair of
 * slots whose port refuses any read outside the base and any write outside the slot; resuming
 * from every checkpoint; the refusals of hostile instruction streams that pass the hash chain;
 * and the signed delta metadata (release threshold, every field's rule, the release it names).
 */
#include <string.h>

#include "build.h"
#include "fwa/delta.h"

#define BASE_LEN 9000u
#define SLOT_LEN (16u * 1024u)
#define WB 8
#define LB 4

static uint8_t base[BASE_LEN], target[SLOT_LEN], slot[SLOT_LEN];
static uint8_t delta[4 * FWA_DELTA_UNIT_MAX];
static size_t delta_len;
static struct fwa_delta dec;
static uint8_t page[FWA_DELTA_SECTOR];
static bool port_violation;
static unsigned erases;

static enum fwa_err geo(void *ctx, struct fwa_flash_geometry *o)
{
	(void)ctx;
	o->slot_size = SLOT_LEN;
	o->erase_size = 4096;
	o->prog_size = 256;
	o->state_size = 4096;
	return FWA_OK;
}

static enum fwa_err erase(void *ctx, uint32_t off, uint32_t len)
{
	(void)ctx;
	if (off % 4096 || len % 4096 || off > SLOT_LEN || len > SLOT_LEN - off) {
		port_violation = true;
		return FWA_ERR_FLASH;
	}
	memset(slot + off, 0xff, len);
	erases++;
	return FWA_OK;
}

static enum fwa_err program(void *ctx, uint32_t off, const void *d, uint32_t len)
{
	(void)ctx;
	if (off % 256 || len % 256 || off > SLOT_LEN || len > SLOT_LEN - off) {
		port_violation = true;
		return FWA_ERR_FLASH;
	}
	memcpy(slot + off, d, len);
	return FWA_OK;
}

static enum fwa_err aread(void *ctx, uint32_t off, void *buf, uint32_t len)
{
	(void)ctx;
	if (off > BASE_LEN || len > BASE_LEN - off) {
		port_violation = true;
		return FWA_ERR_FLASH;
	}
	memcpy(buf, base + off, len);
	return FWA_OK;
}

static struct fwa_port port;

static void setup(const struct ptest_kit *kit)
{
	memset(&port, 0, sizeof(port));
	port.crypto = kit->crypto;
	port.flash_geometry = geo;
	port.slot_erase = erase;
	port.slot_program = program;
	port.active_read = aread;
	memset(slot, 0, sizeof(slot));
	port_violation = false;
	erases = 0;
}

/* ---- a tiny encoder: instructions by hand, LZSS literals and distance-1 runs ---- */

struct bw {
	uint8_t *p;
	size_t n; /* bits written */
};

static void put(struct bw *w, uint32_t v, unsigned bits)
{
	while (bits--) {
		if (w->n % 8 == 0)
			w->p[w->n / 8] = 0;
		if ((v >> bits) & 1u)
			w->p[w->n / 8] |= (uint8_t)(0x80u >> (w->n % 8));
		w->n++;
	}
}

/* Compress s[0..n) into out; returns bytes. */
static size_t lzss(const uint8_t *s, size_t n, uint8_t *out)
{
	struct bw w = {out, 0};
	size_t i = 0;

	while (i < n) {
		size_t run = 0;

		while (i > 0 && i + run < n && run < (1u << LB) && s[i + run] == s[i - 1])
			run++;
		if (run >= 3) {
			put(&w, 0, 1);
			put(&w, 0, WB); /* distance 1 */
			put(&w, (uint32_t)(run - 1), LB);
			i += run;
		} else {
			put(&w, 1, 1);
			put(&w, s[i++], 8);
		}
	}
	return (w.n + 7) / 8;
}

struct stream {
	uint8_t b[FWA_DELTA_UNIT_MAX];
	size_t n;
};

static void varint(struct stream *s, uint32_t v)
{
	do {
		s->b[s->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
}

static void op(struct stream *s, unsigned code, uint32_t len)
{
	varint(s, len << 2 | code);
}

/* Units' instruction streams, and the delta assembled from them with its hash chain. */
static struct stream units[4];
static unsigned nunits;

static void assemble(const struct ptest_kit *kit, uint32_t tlen, uint8_t head[32])
{
	static uint8_t packed[4][FWA_DELTA_UNIT_MAX];
	size_t plen[4], at[4];
	uint8_t h[32];

	delta_len = 0;
	for (unsigned u = 0; u < nunits; u++) {
		at[u] = delta_len;
		if (u == 0) {
			static const uint8_t magic[8] = {'F', 'W', 'A', 'D', 1, WB, LB, 0};

			memcpy(delta, magic, 8);
			for (int k = 0; k < 4; k++) {
				delta[8 + k] = (uint8_t)(BASE_LEN >> (8 * k));
				delta[12 + k] = (uint8_t)(tlen >> (8 * k));
			}
			delta_len = 16;
		}
		plen[u] = lzss(units[u].b, units[u].n, packed[u]);
		delta[delta_len++] = (uint8_t)plen[u];
		delta[delta_len++] = (uint8_t)(plen[u] >> 8);
		memcpy(delta + delta_len, packed[u], plen[u]);
		delta_len += plen[u];
		if (u + 1 < nunits)
			delta_len += 32; /* the next unit's hash, filled below */
	}
	for (unsigned u = nunits; u-- > 0;) {
		size_t end = u + 1 < nunits ? at[u + 1] : delta_len;

		fwa_sha256(kit->crypto, delta + at[u], end - at[u], h);
		if (u > 0)
			memcpy(delta + at[u] - 32, h, 32);
		else
			memcpy(head, h, 32);
	}
}

/*
 * The standard pair: target = 3 units. Unit 0: copy 1000, add 96 (base+1), insert 200 of a
 * run, copy the rest. Unit 1: seek back 3000, copy, insert. Unit 2 (short, 808 bytes): add.
 */
static uint32_t standard(const struct ptest_kit *kit, struct fwa_delta_params *p)
{
	uint32_t tlen = 2 * FWA_DELTA_SECTOR + 808, n = 0, pos = 0;
	struct stream *s;

	for (uint32_t i = 0; i < BASE_LEN; i++)
		base[i] = (uint8_t)(i * 7 + (i >> 8));
	memset(units, 0, sizeof(units));
	nunits = 3;
	/* unit 0 */
	s = &units[0];
	op(s, 0, 1000);
	memcpy(target, base, 1000);
	op(s, 1, 96);
	for (uint32_t i = 0; i < 96; i++) {
		s->b[s->n++] = 1;
		target[1000 + i] = (uint8_t)(base[1000 + i] + 1);
	}
	op(s, 2, 200);
	for (uint32_t i = 0; i < 200; i++) {
		s->b[s->n++] = 0x42;
		target[1096 + i] = 0x42;
	}
	n = 1296;
	pos = 1096;
	op(s, 0, FWA_DELTA_SECTOR - n);
	memcpy(target + n, base + pos, FWA_DELTA_SECTOR - n);
	pos += FWA_DELTA_SECTOR - n;
	/* unit 1: seek back by 3000 (zigzag 2*3000-1) */
	s = &units[1];
	op(s, 3, 2 * 3000 - 1);
	pos -= 3000;
	op(s, 0, 3000);
	memcpy(target + FWA_DELTA_SECTOR, base + pos, 3000);
	pos += 3000;
	op(s, 2, FWA_DELTA_SECTOR - 3000);
	for (uint32_t i = 0; i < FWA_DELTA_SECTOR - 3000; i++) {
		s->b[s->n++] = (uint8_t)i;
		target[FWA_DELTA_SECTOR + 3000 + i] = (uint8_t)i;
	}
	/* unit 2: add 808 from pos */
	s = &units[2];
	op(s, 1, 808);
	for (uint32_t i = 0; i < 808; i++) {
		s->b[s->n++] = 0xff;
		target[2 * FWA_DELTA_SECTOR + i] = (uint8_t)(base[pos + i] - 1);
	}
	memset(p, 0, sizeof(*p));
	assemble(kit, tlen, p->head_sha256);
	p->base_size = BASE_LEN;
	p->target_size = tlen;
	p->delta_size = (uint32_t)delta_len;
	return tlen;
}

static enum fwa_err feed_all(const uint8_t *in, size_t len)
{
	size_t used;
	enum fwa_err err = FWA_OK;

	for (size_t at = 0; at < len; at += used) {
		err = fwa_delta_feed(&dec, in + at, len - at, &used);
		if (err != FWA_OK || used == 0)
			return err;
	}
	return err;
}

static void applies(const struct ptest_kit *kit)
{
	struct fwa_delta_params p;
	uint32_t tlen = standard(kit, &p);

	setup(kit);
	PT_REQUIRE_OK(fwa_delta_begin(&dec, &port, &p, NULL, page));
	/* In odd pieces, as a network would give them. */
	for (size_t at = 0; at < delta_len; at += 77)
		PT_REQUIRE_OK(feed_all(delta + at, delta_len - at < 77 ? delta_len - at : 77));
	PT_CHECK(fwa_delta_done(&dec));
	PT_MEM(slot, target, tlen);
	PT_EQ(slot[tlen], 0xff); /* the last page padded as erased flash */
	PT_EQ(erases, 3);
	PT_CHECK(!port_violation);
	PT_CHECK(sizeof(struct fwa_delta) <= 16384); /* the page buffer is the caller's */
}

static void resumes(const struct ptest_kit *kit)
{
	struct fwa_delta_params p;
	uint32_t tlen = standard(kit, &p);

	for (unsigned stop = 1; stop < nunits; stop++) {
		struct fwa_delta_ckpt ck;
		size_t used, at = 0;

		setup(kit);
		PT_REQUIRE_OK(fwa_delta_begin(&dec, &port, &p, NULL, page));
		while (dec.ck.out_off < stop * FWA_DELTA_SECTOR) {
			PT_REQUIRE_OK(fwa_delta_feed(&dec, delta + at, 1, &used));
			at += used;
		}
		ck = dec.ck;
		memset(&dec, 0xa5, sizeof(dec));
		memset(slot + ck.out_off, 0, SLOT_LEN - ck.out_off);
		PT_REQUIRE_OK(fwa_delta_begin(&dec, &port, &p, &ck, page));
		PT_REQUIRE_OK(feed_all(delta + ck.in_off, delta_len - ck.in_off));
		PT_CHECK(fwa_delta_done(&dec));
		PT_MEM(slot, target, tlen);
	}
}

/* Rebuild the standard delta with unit u's stream replaced, chain and all. */
static enum fwa_err hostile(const struct ptest_kit *kit, unsigned u, const uint8_t *s, size_t n,
                            uint32_t *out_off)
{
	struct fwa_delta_params p;
	uint32_t tlen = standard(kit, &p);
	enum fwa_err err;

	memcpy(units[u].b, s, n);
	units[u].n = n;
	assemble(kit, tlen, p.head_sha256);
	p.delta_size = (uint32_t)delta_len;
	setup(kit);
	if (fwa_delta_begin(&dec, &port, &p, NULL, page) != FWA_OK)
		return FWA_ERR__COUNT;
	err = feed_all(delta, delta_len);
	*out_off = dec.ck.out_off;
	return err;
}

static void refuses_hostile_instructions(const struct ptest_kit *kit)
{
	static const struct {
		uint8_t s[8];
		uint8_t n;
	} bad[] = {
	    {{0xfc, 0xff, 0xff, 0xff, 0x0f}, 5}, /* copy 2^30-1 */
	    {{0x03 | (2u << 2), 0x00}, 1},       /* seek +1, then the stream ends */
	    {{0x83, 0xc5, 0x02}, 3},             /* seek +5200 from 3896: past the base */
	    {{0xbf, 0xb8, 0x02}, 3},             /* seek -5000 from 3896: before the base */
	    {{0xff, 0xff, 0xff, 0xff, 0xff}, 5}, /* varint over 32 bits */
	    {{0x02, 0x01}, 2},                   /* insert of length 0 */
	    {{0x01, 0x80}, 2},                   /* add 0, then a cut varint */
	};
	uint32_t out;

	/* Each in unit 1: unit 0 is written, nothing of unit 1 is. */
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		PT_ERR(hostile(kit, 1, bad[i].s, bad[i].n, &out), FWA_ERR_DELTA);
		PT_EQ(out, FWA_DELTA_SECTOR);
		PT_CHECK(!port_violation);
		PT_CHECK(dec.why[0] != '\0');
	}
	/* Copy past the end of the base from a valid position: refused before the read. */
	{
		struct stream s = {{0}, 0};

		op(&s, 3, 2 * 8000); /* seek +8000 (base_pos was 4096 - 1296 + 1096 = 3896) */
		PT_ERR(hostile(kit, 1, s.b, s.n, &out), FWA_ERR_DELTA);
		s.n = 0;
		op(&s, 3, 2 * 5000); /* to 8896 */
		op(&s, 0, 200);      /* 8896 + 200 > 9000 */
		PT_ERR(hostile(kit, 1, s.b, s.n, &out), FWA_ERR_DELTA);
		PT_CHECK(!port_violation);
		/* More output than the sector holds, and trailing instructions after it. */
		s.n = 0;
		op(&s, 2, FWA_DELTA_SECTOR + 1);
		PT_ERR(hostile(kit, 1, s.b, s.n, &out), FWA_ERR_DELTA);
		standard(kit, &(struct fwa_delta_params){0});
		memcpy(s.b, units[1].b, units[1].n);
		s.n = units[1].n;
		op(&s, 0, 1);
		PT_ERR(hostile(kit, 1, s.b, s.n, &out), FWA_ERR_DELTA);
		PT_EQ(out, FWA_DELTA_SECTOR);
	}
	PT_CHECK(!port_violation);
}

static void refuses_tampering(const struct ptest_kit *kit)
{
	struct fwa_delta_params p;
	enum fwa_err err;

	standard(kit, &p);
	for (size_t i = 0; i < delta_len; i += 13) {
		setup(kit);
		delta[i] ^= 0x10;
		PT_REQUIRE_OK(fwa_delta_begin(&dec, &port, &p, NULL, page));
		err = feed_all(delta, delta_len);
		delta[i] ^= 0x10;
		PT_ERR(err, FWA_ERR_DELTA);
		PT_CHECK(dec.ck.in_off <= i); /* nothing at or after the changed unit written */
	}
	/* A back-reference before the start of a unit (the window is reset per unit). */
	{
		uint8_t bad[FWA_DELTA_HEADER + 2 + 3];
		struct fwa_delta_params q = p;

		memcpy(bad, delta, FWA_DELTA_HEADER);
		bad[12] = 1; /* target of 1 byte */
		bad[13] = bad[14] = bad[15] = 0;
		bad[16] = 3;
		bad[17] = 0;
		bad[18] = 0x00; /* flag 0: back-reference, distance 1, before any output */
		bad[19] = 0x00;
		bad[20] = 0x00;
		q.target_size = 1;
		q.delta_size = sizeof(bad);
		fwa_sha256(kit->crypto, bad, sizeof(bad), q.head_sha256);
		setup(kit);
		PT_REQUIRE_OK(fwa_delta_begin(&dec, &port, &q, NULL, page));
		PT_ERR(feed_all(bad, sizeof(bad)), FWA_ERR_DELTA);
		PT_EQ(erases, 0);
	}
}

/* ---- signed delta metadata ---- */

static struct fwa_verify_scratch vs;
static struct fwa_root root;
static char env[FWA_ENVELOPE_MAX];

static long meta_payload(char *out, size_t cap, const char *release, const char *extra)
{
	static const char *const hex =
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	size_t n = 0;
	const char *parts[] = {"{\"_type\":\"delta\",\"spec_version\":\"1\",\"release\":\"",
	                       release,
	                       "\",\"target\":{\"size\":11,\"sha256\":\"",
	                       hex,
	                       "\"},\"base\":{\"size\":9000,\"sha256\":\"",
	                       hex,
	                       "\"},\"delta\":{\"size\":500,\"sha256\":\"",
	                       hex,
	                       "\",\"format\":\"fwad1\"},\"created\":\"2026-11-01T00:00:00Z\"",
	                       extra,
	                       "}"};
	for (unsigned i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		size_t k = strlen(parts[i]);

		if (n + k >= cap)
			return -1;
		memcpy(out + n, parts[i], k);
		n += k;
	}
	return (long)n;
}

static void metadata(const struct ptest_kit *kit)
{
	static const unsigned by01[] = {0, 1};
	static const struct pt_sig by34[] = {{3, -1, false}, {4, -1, false}};
	static char payload[1024];
	struct pt_root r = pt_root_default(1);
	struct fwa_delta_meta dm;
	struct fwa_manifest m;
	const char *why = NULL;
	long n = pt_root_envelope(kit, &r, by01, 2, env, sizeof env);
	long pl;

	PT_REQUIRE(n > 0 && fwa_root_load(kit->crypto, env, (size_t)n, &root, &vs, &why) == FWA_OK);
	pl = meta_payload(payload, sizeof payload,
	                  "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100", "");
	PT_REQUIRE(pl > 0);
	n = pt_envelope(kit, FWA_PAYLOAD_DELTA, payload, (size_t)pl, by34, 2, env, sizeof env);
	PT_REQUIRE(n > 0);
	PT_REQUIRE_OK(fwa_delta_meta_verify(kit->crypto, &root, env, (size_t)n, &dm, &vs, &why));
	PT_EQ(dm.base_size, 9000);
	PT_EQ(dm.target_size, 11);
	PT_EQ(dm.delta_size, 500);
	PT_EQ(dm.release_digest[0], 0xff);
	PT_EQ(dm.delta_sha256[1], 0x11);
	/* Bound to the release: its digest and its image. */
	memset(&m, 0, sizeof(m));
	memcpy(m.digest, dm.release_digest, 32);
	memcpy(m.image_sha256, dm.target_sha256, 32);
	m.image_size = 11;
	PT_OK(fwa_delta_meta_check(&dm, &m, &why));
	m.digest[31] ^= 1;
	PT_ERR(fwa_delta_meta_check(&dm, &m, &why), FWA_ERR_MALFORMED);
	m.digest[31] ^= 1;
	m.image_size = 12;
	PT_ERR(fwa_delta_meta_check(&dm, &m, &why), FWA_ERR_MALFORMED);
	/* One release key is below the threshold of two. */
	n = pt_envelope(kit, FWA_PAYLOAD_DELTA, payload, (size_t)pl, by34, 1, env, sizeof env);
	PT_ERR(fwa_delta_meta_verify(kit->crypto, &root, env, (size_t)n, &dm, &vs, &why),
	       FWA_ERR_THRESHOLD);
	/* A manifest type is not delta metadata. */
	n = pt_envelope(kit, FWA_PAYLOAD_MANIFEST, payload, (size_t)pl, by34, 2, env, sizeof env);
	PT_ERR(fwa_delta_meta_verify(kit->crypto, &root, env, (size_t)n, &dm, &vs, &why),
	       FWA_ERR_PAYLOAD_TYPE);
	/* Field rules. */
	pl = meta_payload(payload, sizeof payload, "FFEE", "");
	PT_ERR(fwa_delta_meta_decode(kit->crypto, (const uint8_t *)payload, (size_t)pl, &dm, &vs,
	                             &why),
	       FWA_ERR_MALFORMED);
	pl = meta_payload(payload, sizeof payload,
	                  "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100",
	                  ",\"more\":1");
	PT_ERR(fwa_delta_meta_decode(kit->crypto, (const uint8_t *)payload, (size_t)pl, &dm, &vs,
	                             &why),
	       FWA_ERR_MALFORMED);
	static const char fmt2[] =
	    "{\"_type\":\"delta\",\"spec_version\":\"1\",\"release\":"
	    "\"ffeeddccbbaa99887766554433221100"
	    "ffeeddccbbaa99887766554433221100\",\"target\":{\"size\":1,\"sha256\":"
	    "\"0011223344556677"
	    "8899aabbccddeeff00112233445566778899aabbccddeeff\"},\"base\":{\"size\":1,\"sha256\":"
	    "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"},\"delta\":{"
	    "\"size\":1,\"sha256\":"
	    "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeef"
	    "f\",\"format\":\"bsdiff4\"},\"created\":\"2026-11-01T00:00:00Z\"}";
	PT_ERR(fwa_delta_meta_decode(kit->crypto, (const uint8_t *)fmt2, sizeof(fmt2) - 1, &dm, &vs,
	                             &why),
	       FWA_ERR_SPEC_VERSION);
}

static const struct ptest_case cases[] = {
    {"applies", applies},
    {"resumes", resumes},
    {"refuses_hostile_instructions", refuses_hostile_instructions},
    {"refuses_tampering", refuses_tampering},
    {"metadata", metadata},
    {NULL, NULL},
};

const struct ptest_suite ptest_suite = {"delta", cases};
