/*
 * Builders of signed documents for the portable tests (build.h): JSON text assembled into
 * caller buffers, payloads base64-encoded, DSSE PAE digests signed with the kit's keys.
 */
#include <string.h>

#include "build.h"

struct sb {
	char *buf;
	size_t cap, len;
	bool bad;
};

static void put(struct sb *b, const char *s, size_t n)
{
	if (b->bad || n > b->cap - b->len) {
		b->bad = true;
		return;
	}
	memcpy(b->buf + b->len, s, n);
	b->len += n;
}

static void puts_(struct sb *b, const char *s)
{
	put(b, s, strlen(s));
}

static void put_uint(struct sb *b, uint64_t v)
{
	char d[20];
	unsigned i = sizeof d;
	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(b, d + i, sizeof d - i);
}

static void put_b64(struct sb *b, const void *data, size_t len)
{
	if (b->bad)
		return;
	long n = fwa_base64_encode(data, len, b->buf + b->len, b->cap - b->len);
	if (n < 0)
		b->bad = true;
	else
		b->len += (size_t)n;
}

static long done(struct sb *b)
{
	/* Keep a NUL after the text when there is room; it is not counted. */
	if (b->bad)
		return -1;
	if (b->len < b->cap)
		b->buf[b->len] = '\0';
	return (long)b->len;
}

bool pt_keyid(const struct ptest_kit *kit, unsigned i, char id[FWA_KEYID_HEX_LEN + 1])
{
	uint8_t spki[FWA_SPKI_P256_LEN], d[32];
	if (!kit->key_spki(i, spki))
		return false;
	fwa_sha256(kit->crypto, spki, sizeof spki, d);
	fwa_hex(d, 32, id);
	return true;
}

static void put_role(struct sb *b, const struct ptest_kit *kit, const unsigned *keys, unsigned n,
                     unsigned threshold)
{
	char id[FWA_KEYID_HEX_LEN + 1];
	puts_(b, "{\"keyids\":[");
	for (unsigned i = 0; i < n; i++) {
		if (!pt_keyid(kit, keys[i], id))
			b->bad = true;
		puts_(b, i ? ",\"" : "\"");
		puts_(b, id);
		puts_(b, "\"");
	}
	puts_(b, "],\"threshold\":");
	put_uint(b, threshold);
	puts_(b, "}");
}

long pt_root_payload(const struct ptest_kit *kit, const struct pt_root *r, char *out, size_t cap)
{
	struct sb b = {out, cap, 0, false};
	unsigned listed[3 * FWA_MAX_ROLE_KEYS], nl = 0;
	char id[FWA_KEYID_HEX_LEN + 1];
	uint8_t spki[FWA_SPKI_P256_LEN];

	/* Keys: the union of the roles, each once. */
	for (unsigned pass = 0; pass < 3; pass++) {
		const unsigned *k = pass == 2 ? r->time_keys : pass ? r->rel_keys : r->root_keys;
		unsigned n = pass == 2 ? r->ntime : pass ? r->nrel : r->nroot;
		for (unsigned i = 0; i < n; i++) {
			bool seen = false;
			for (unsigned x = 0; x < nl; x++)
				seen |= listed[x] == k[i];
			if (!seen)
				listed[nl++] = k[i];
		}
	}
	puts_(&b, "{\"_type\":\"root\",\"spec_version\":\"1\",\"version\":");
	put_uint(&b, r->version);
	puts_(&b, ",\"expires\":\"");
	puts_(&b, r->expires ? r->expires : "2100-01-01T00:00:00Z");
	puts_(&b, "\",\"keys\":{");
	for (unsigned i = 0; i < nl; i++) {
		if (!pt_keyid(kit, listed[i], id) || !kit->key_spki(listed[i], spki))
			return -1;
		puts_(&b, i ? ",\"" : "\"");
		puts_(&b, id);
		puts_(&b, "\":{\"keytype\":\"ecdsa-p256\",\"public\":\"");
		put_b64(&b, spki, sizeof spki);
		puts_(&b, "\"}");
	}
	puts_(&b, "},\"roles\":{\"root\":");
	put_role(&b, kit, r->root_keys, r->nroot, r->root_threshold);
	puts_(&b, ",\"release\":");
	put_role(&b, kit, r->rel_keys, r->nrel, r->rel_threshold);
	if (r->ntime) {
		puts_(&b, ",\"time\":");
		put_role(&b, kit, r->time_keys, r->ntime,
		         r->time_threshold ? r->time_threshold : 1);
	}
	puts_(&b, "}");
	if (r->extra)
		puts_(&b, r->extra);
	puts_(&b, "}");
	return done(&b);
}

long pt_manifest_payload(const struct pt_manifest *m, char *out, size_t cap)
{
	struct sb b = {out, cap, 0, false};
	char hex[65];

	fwa_hex(m->sha256, 32, hex);
	puts_(&b, "{\"_type\":\"manifest\",\"spec_version\":\"1\",\"name\":\"");
	puts_(&b, m->name);
	puts_(&b, "\",\"version\":\"");
	puts_(&b, m->version);
	puts_(&b, "\",\"security_version\":");
	put_uint(&b, m->security_version);
	puts_(&b, ",\"hw_variants\":");
	puts_(&b, m->hw_json);
	puts_(&b, ",\"image\":{\"size\":");
	put_uint(&b, m->size);
	puts_(&b, ",\"sha256\":\"");
	puts_(&b, hex);
	puts_(&b, "\",\"format\":\"");
	puts_(&b, m->format);
	puts_(&b, "\"},\"created\":\"");
	puts_(&b, m->created ? m->created : "2026-11-01T00:00:00Z");
	puts_(&b, "\"");
	if (m->extra)
		puts_(&b, m->extra);
	puts_(&b, "}");
	return done(&b);
}

long pt_envelope(const struct ptest_kit *kit, const char *type, const void *payload, size_t len,
                 const struct pt_sig *sigs, unsigned nsigs, char *out, size_t cap)
{
	struct sb b = {out, cap, 0, false};
	uint8_t digest[32], sig[FWA_SIG_MAX];
	char id[FWA_KEYID_HEX_LEN + 1];
	size_t slen;

	fwa_dsse_pae_digest(kit->crypto, type, payload, len, digest);
	puts_(&b, "{\"payloadType\":\"");
	puts_(&b, type);
	puts_(&b, "\",\"payload\":\"");
	put_b64(&b, payload, len);
	puts_(&b, "\",\"signatures\":[");
	for (unsigned i = 0; i < nsigs; i++) {
		unsigned as = sigs[i].as_key < 0 ? sigs[i].key : (unsigned)sigs[i].as_key;
		if (!kit->sign(sigs[i].key, digest, sig, &slen) || !pt_keyid(kit, as, id))
			return -1;
		if (sigs[i].corrupt)
			sig[slen / 2] ^= 0x01;
		puts_(&b, i ? ",{\"keyid\":\"" : "{\"keyid\":\"");
		puts_(&b, id);
		puts_(&b, "\",\"sig\":\"");
		put_b64(&b, sig, slen);
		puts_(&b, "\"}");
	}
	puts_(&b, "]}");
	return done(&b);
}

static long envelope_by(const struct ptest_kit *kit, const char *type, const char *payload,
                        long plen, const unsigned *signers, unsigned n, char *out, size_t cap)
{
	struct pt_sig sigs[FWA_MAX_SIGS + 2];
	if (plen < 0 || n > sizeof sigs / sizeof sigs[0])
		return -1;
	for (unsigned i = 0; i < n; i++)
		sigs[i] = (struct pt_sig){signers[i], -1, false};
	return pt_envelope(kit, type, payload, (size_t)plen, sigs, n, out, cap);
}

long pt_root_envelope(const struct ptest_kit *kit, const struct pt_root *r, const unsigned *signers,
                      unsigned n, char *out, size_t cap)
{
	static char payload[FWA_PAYLOAD_MAX + 64];
	long plen = pt_root_payload(kit, r, payload, sizeof payload);
	return envelope_by(kit, FWA_PAYLOAD_ROOT, payload, plen, signers, n, out, cap);
}

long pt_manifest_envelope(const struct ptest_kit *kit, const struct pt_manifest *m,
                          const unsigned *signers, unsigned n, char *out, size_t cap)
{
	static char payload[FWA_PAYLOAD_MAX + 64];
	long plen = pt_manifest_payload(m, payload, sizeof payload);
	return envelope_by(kit, FWA_PAYLOAD_MANIFEST, payload, plen, signers, n, out, cap);
}

struct pt_root pt_root_default(uint32_t version)
{
	struct pt_root r = {
	    .version = version,
	    .nroot = 3,
	    .root_keys = {0, 1, 2},
	    .root_threshold = 2,
	    .nrel = 3,
	    .rel_keys = {3, 4, 5},
	    .rel_threshold = 2,
	};
	return r;
}

struct pt_manifest pt_manifest_default(const struct ptest_kit *kit)
{
	struct pt_manifest m = {
	    .name = "sensor-fw",
	    .version = "1.4.0",
	    .security_version = 3,
	    .hw_json = "[\"pico2_w\",\"pico2_w-rev2\"]",
	    .size = 11,
	    .format = "bin",
	};
	fwa_sha256(kit->crypto, "image bytes", 11, m.sha256);
	return m;
}
