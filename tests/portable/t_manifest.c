/*
 * Portable tests of release manifests: verification against the release role of a trusted
 * root, decoding rules for every field, and the checks made before an image is accepted
 * (hardware variant, anti-rollback floor, image size and hash).
 */
#include <string.h>

#include "build.h"

static struct fwa_verify_scratch s;
static struct fwa_root root;
static char env[FWA_ENVELOPE_MAX + 512];

static const unsigned by34[] = {3, 4};

static bool setup(const struct ptest_kit *kit)
{
	static const unsigned by01[] = {0, 1};
	struct pt_root r = pt_root_default(1);
	const char *why = NULL;
	long n = pt_root_envelope(kit, &r, by01, 2, env, sizeof env);
	return n > 0 && fwa_root_load(kit->crypto, env, (size_t)n, &root, &s, &why) == FWA_OK;
}

static enum fwa_err verify(const struct ptest_kit *kit, const struct pt_manifest *m,
                           const unsigned *by, unsigned nby, struct fwa_manifest *out)
{
	const char *why = NULL;
	long n = pt_manifest_envelope(kit, m, by, nby, env, sizeof env);
	if (n < 0)
		return FWA_ERR__COUNT;
	enum fwa_err e = fwa_manifest_verify(kit->crypto, &root, env, (size_t)n, out, &s, &why);
	if (e != FWA_OK && (why == NULL || why[0] == '\0'))
		return FWA_ERR__COUNT;
	return e;
}

static void verifies_and_decodes(const struct ptest_kit *kit)
{
	struct pt_manifest m = pt_manifest_default(kit);
	struct fwa_manifest out;
	static char payload[2048];
	uint8_t digest[32];

	PT_REQUIRE(setup(kit));
	PT_REQUIRE_OK(verify(kit, &m, by34, 2, &out));
	PT_STR(out.name, "sensor-fw");
	PT_STR(out.version, "1.4.0");
	PT_EQ(out.security_version, 3);
	PT_EQ(out.nhw, 2);
	PT_STR(out.hw[1], "pico2_w-rev2");
	PT_EQ(out.image_size, 11);
	PT_MEM(out.image_sha256, m.sha256, 32);
	PT_STR(out.image_format, "bin");
	PT_EQ(out.created, 1793491200ll); /* 2026-11-01 */
	long plen = pt_manifest_payload(&m, payload, sizeof payload);
	PT_REQUIRE(plen > 0);
	fwa_sha256(kit->crypto, payload, (size_t)plen, digest);
	PT_MEM(out.digest, digest, 32);
}

static void needs_release_threshold(const struct ptest_kit *kit)
{
	static const unsigned by3[] = {3}, by33[] = {3, 3}, by01[] = {0, 1}, by67[] = {6, 7},
	                      by345[] = {3, 4, 5}, by63[] = {6, 3, 7, 5}, by334[] = {3, 3, 4};
	struct pt_manifest m = pt_manifest_default(kit);
	struct fwa_manifest out;

	PT_REQUIRE(setup(kit));
	PT_ERR(verify(kit, &m, by3, 1, &out), FWA_ERR_THRESHOLD);
	PT_ERR(verify(kit, &m, by33, 2, &out), FWA_ERR_THRESHOLD);
	PT_ERR(verify(kit, &m, by01, 2, &out), FWA_ERR_THRESHOLD); /* root keys sign roots only */
	PT_ERR(verify(kit, &m, by67, 2, &out), FWA_ERR_THRESHOLD);
	PT_OK(verify(kit, &m, by345, 3, &out));
	PT_OK(verify(kit, &m, by63, 4, &out));  /* strangers' signatures do not hurt */
	PT_OK(verify(kit, &m, by334, 3, &out)); /* nor does a key signing twice */
}

static void signatures_cover_every_byte(const struct ptest_kit *kit)
{
	static const struct pt_sig corrupt[] = {{3, -1, true}, {4, -1, false}};
	static char payload[2048];
	struct pt_manifest m = pt_manifest_default(kit);
	struct fwa_manifest out;
	const char *why = NULL;

	PT_REQUIRE(setup(kit));
	long plen = pt_manifest_payload(&m, payload, sizeof payload);
	PT_REQUIRE(plen > 0);
	long n = pt_envelope(kit, FWA_PAYLOAD_MANIFEST, payload, (size_t)plen, corrupt, 2, env,
	                     sizeof env);
	PT_REQUIRE(n > 0);
	PT_ERR(fwa_manifest_verify(kit->crypto, &root, env, (size_t)n, &out, &s, &why),
	       FWA_ERR_THRESHOLD);
	PT_RULE(why, "rule: manifest.threshold");

	/* One base64 character of the payload changed under good signatures. */
	static const struct pt_sig good[] = {{3, -1, false}, {4, -1, false}};
	n = pt_envelope(kit, FWA_PAYLOAD_MANIFEST, payload, (size_t)plen, good, 2, env, sizeof env);
	PT_REQUIRE(n > 0);
	char *c = strstr(env, "\"payload\":\"") + 11 + 40;
	*c = *c == 'A' ? 'B' : 'A';
	PT_ERR(fwa_manifest_verify(kit->crypto, &root, env, (size_t)n, &out, &s, &why),
	       FWA_ERR_THRESHOLD);

	/* Sign one payload, ship another: security_version 3 -> 9 in the shipped bytes. */
	n = pt_envelope(kit, FWA_PAYLOAD_MANIFEST, payload, (size_t)plen, good, 2, env, sizeof env);
	PT_REQUIRE(n > 0);
	PT_REQUIRE_OK(fwa_manifest_verify(kit->crypto, &root, env, (size_t)n, &out, &s, &why));
	m.security_version = 9;
	static char other[2048], swapped[FWA_ENVELOPE_MAX + 512];
	long olen = pt_manifest_payload(&m, other, sizeof other);
	PT_REQUIRE(olen > 0);
	char *p = strstr(env, "\"payload\":\"") + 11;
	char *q = strchr(p, '"');
	size_t head = (size_t)(p - env);
	memcpy(swapped, env, head);
	long b = fwa_base64_encode((const uint8_t *)other, (size_t)olen, swapped + head,
	                           sizeof swapped - head);
	PT_REQUIRE(b > 0);
	size_t tail = strlen(q);
	memcpy(swapped + head + (size_t)b, q, tail);
	PT_ERR(fwa_manifest_verify(kit->crypto, &root, swapped, head + (size_t)b + tail, &out, &s,
	                           &why),
	       FWA_ERR_THRESHOLD);

	/* A root envelope type on a manifest. */
	n = pt_envelope(kit, FWA_PAYLOAD_ROOT, payload, (size_t)plen, good, 2, env, sizeof env);
	PT_REQUIRE(n > 0);
	PT_ERR(fwa_manifest_verify(kit->crypto, &root, env, (size_t)n, &out, &s, &why),
	       FWA_ERR_PAYLOAD_TYPE);
	PT_RULE(why, "dsse.payloadType");
	/* And any other type. */
	n = pt_envelope(kit, "application/json", "{}", 2, good, 2, env, sizeof env);
	PT_REQUIRE(n > 0);
	PT_ERR(fwa_manifest_verify(kit->crypto, &root, env, (size_t)n, &out, &s, &why),
	       FWA_ERR_PAYLOAD_TYPE);
}

static void signed_garbage(const struct ptest_kit *kit)
{
	static const char text[] = "{\"_type\":\"manifest\"";
	static const struct pt_sig two[] = {{3, -1, false}, {4, -1, false}};
	struct fwa_manifest out;
	const char *why = NULL;
	PT_REQUIRE(setup(kit));
	/* Signed by enough keys: the payload rules decide. */
	long n =
	    pt_envelope(kit, FWA_PAYLOAD_MANIFEST, text, sizeof text - 1, two, 2, env, sizeof env);
	PT_REQUIRE(n > 0);
	PT_ERR(fwa_manifest_verify(kit->crypto, &root, env, (size_t)n, &out, &s, &why),
	       FWA_ERR_MALFORMED);
	PT_RULE(why, "manifest.json");
	/* Not signed by enough keys: the payload is never parsed. */
	n = pt_envelope(kit, FWA_PAYLOAD_MANIFEST, text, sizeof text - 1, two, 1, env, sizeof env);
	PT_REQUIRE(n > 0);
	PT_ERR(fwa_manifest_verify(kit->crypto, &root, env, (size_t)n, &out, &s, &why),
	       FWA_ERR_THRESHOLD);
}

static void decode_rules(const struct ptest_kit *kit)
{
	struct fwa_manifest out;
	PT_REQUIRE(setup(kit));
	static const struct {
		int line;
		enum fwa_err want;
		struct pt_manifest m;
	} v[] = {
	    {__LINE__,
	     FWA_OK,
	     {"n", "1.0.0-rc.1+b.7", 4294967295u, "[\"a\"]", 1, {0}, "uf2", NULL, NULL}},
	    {__LINE__, FWA_ERR_MALFORMED, {"", "1.0.0", 0, "[\"a\"]", 1, {0}, "bin", NULL, NULL}},
	    {__LINE__,
	     FWA_ERR_MALFORMED,
	     {"a b", "1.0.0", 0, "[\"a\"]", 1, {0}, "bin", NULL, NULL}},
	    {__LINE__,
	     FWA_ERR_TOO_LARGE,
	     {"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn",
	      "1.0.0",
	      0,
	      "[\"a\"]",
	      1,
	      {0},
	      "bin",
	      NULL,
	      NULL}},
	    {__LINE__, FWA_ERR_MALFORMED, {"n", "1.0", 0, "[\"a\"]", 1, {0}, "bin", NULL, NULL}},
	    {__LINE__, FWA_ERR_MALFORMED, {"n", "v1.0.0", 0, "[\"a\"]", 1, {0}, "bin", NULL, NULL}},
	    {__LINE__, FWA_ERR_MALFORMED, {"n", "1.0.0", 0, "[]", 1, {0}, "bin", NULL, NULL}},
	    {__LINE__, FWA_ERR_MALFORMED, {"n", "1.0.0", 0, "\"a\"", 1, {0}, "bin", NULL, NULL}},
	    {__LINE__, FWA_ERR_MALFORMED, {"n", "1.0.0", 0, "[\"A\"]", 1, {0}, "bin", NULL, NULL}},
	    {__LINE__,
	     FWA_ERR_MALFORMED,
	     {"n", "1.0.0", 0, "[\"a\",\"a\"]", 1, {0}, "bin", NULL, NULL}},
	    {__LINE__,
	     FWA_ERR_TOO_LARGE,
	     {"n",
	      "1.0.0",
	      0,
	      "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]",
	      1,
	      {0},
	      "bin",
	      NULL,
	      NULL}},
	    {__LINE__,
	     FWA_ERR_TOO_LARGE,
	     {"n",
	      "1.0.0",
	      0,
	      "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]",
	      1,
	      {0},
	      "bin",
	      NULL,
	      NULL}},
	    {__LINE__, FWA_ERR_MALFORMED, {"n", "1.0.0", 0, "[\"a\"]", 0, {0}, "bin", NULL, NULL}},
	    {__LINE__,
	     FWA_ERR_TOO_LARGE,
	     {"n", "1.0.0", 0, "[\"a\"]", 9007199254740992ull, {0}, "bin", NULL, NULL}},
	    {__LINE__, FWA_ERR_MALFORMED, {"n", "1.0.0", 0, "[\"a\"]", 1, {0}, "", NULL, NULL}},
	    {__LINE__, FWA_ERR_MALFORMED, {"n", "1.0.0", 0, "[\"a\"]", 1, {0}, "BIN", NULL, NULL}},
	    {__LINE__,
	     FWA_ERR_MALFORMED,
	     {"n", "1.0.0", 0, "[\"a\"]", 1, {0}, "bin", "2026-11-01", NULL}},
	    {__LINE__,
	     FWA_ERR_MALFORMED,
	     {"n", "1.0.0", 0, "[\"a\"]", 1, {0}, "bin", NULL, ",\"x\":1"}},
	};
	for (unsigned i = 0; i < sizeof v / sizeof v[0]; i++) {
		enum fwa_err e = verify(kit, &v[i].m, by34, 2, &out);
		ptest_check_err((int)e, (int)v[i].want, "manifest case", __FILE__, v[i].line);
	}
}

/* A manifest payload from its fields' JSON text (format and created: whole members or ""). */
#define SHA0 "\"0000000000000000000000000000000000000000000000000000000000000000\""
#define RAW(name, version, sv, hw, size, sha, format, created)                                     \
	"{\"_type\":\"manifest\",\"spec_version\":\"1\",\"name\":" name ",\"version\":" version    \
	",\"security_version\":" sv ",\"hw_variants\":" hw ",\"image\":{\"size\":" size            \
	",\"sha256\":" sha format "}" created
#define FMT ",\"format\":\"bin\""
#define CREATED ",\"created\":\"2026-01-01T00:00:00Z\""

/* Decoding errors name the field's rule; values the builder cannot write are checked here. */
static void decode_rules_name_the_field(const struct ptest_kit *kit)
{
	static const struct {
		int line;
		const char *text;
		enum fwa_err want;
		const char *rule;
	} v[] = {
	    {__LINE__, RAW("\"a\"", "\"1.0.0\"", "1", "[\"x\"]", "1", SHA0, FMT, CREATED) "}",
	     FWA_OK, NULL},
	    {__LINE__,
	     RAW("\"a\"", "\"1.0.0\"", "1", "[\"x\"]", "1", SHA0, FMT, CREATED) ",\"x\":1}",
	     FWA_ERR_MALFORMED, "manifest.keys"},
	    {__LINE__, RAW("\"a\"", "\"1.0\"", "1", "[\"x\"]", "1", SHA0, FMT, CREATED) "}",
	     FWA_ERR_MALFORMED, "manifest.version"},
	    {__LINE__, RAW("\"a b\"", "\"1.0.0\"", "1", "[\"x\"]", "1", SHA0, FMT, CREATED) "}",
	     FWA_ERR_MALFORMED, "manifest.name"},
	    {__LINE__, RAW("\"a\"", "\"1.0.0\"", "-1", "[\"x\"]", "1", SHA0, FMT, CREATED) "}",
	     FWA_ERR_MALFORMED, "manifest.security_version"},
	    {__LINE__,
	     RAW("\"a\"", "\"1.0.0\"", "4294967296", "[\"x\"]", "1", SHA0, FMT, CREATED) "}",
	     FWA_ERR_MALFORMED, "manifest.security_version"},
	    {__LINE__, RAW("\"a\"", "\"1.0.0\"", "1", "[]", "1", SHA0, FMT, CREATED) "}",
	     FWA_ERR_MALFORMED, "manifest.hw_variants"},
	    {__LINE__, RAW("\"a\"", "\"1.0.0\"", "1", "[\"x\"]", "0", SHA0, FMT, CREATED) "}",
	     FWA_ERR_MALFORMED, "manifest.image.size"},
	    {__LINE__, RAW("\"a\"", "\"1.0.0\"", "1", "[\"x\"]", "1", "\"00\"", FMT, CREATED) "}",
	     FWA_ERR_MALFORMED, "manifest.image.sha256"},
	    {__LINE__, RAW("\"a\"", "\"1.0.0\"", "1", "[\"x\"]", "1", SHA0, "", CREATED) "}",
	     FWA_ERR_MALFORMED, "manifest.image.format"},
	    {__LINE__, RAW("\"a\"", "\"1.0.0\"", "1", "[\"x\"]", "1", SHA0, FMT, "") "}",
	     FWA_ERR_MALFORMED, "manifest.created"},
	    {__LINE__, "{\"_type\":\"manifest\",\"spec_version\":\"2\"}", FWA_ERR_SPEC_VERSION,
	     NULL},
	    {__LINE__, "{\"_type\":\"root\",\"spec_version\":\"1\"}", FWA_ERR_MALFORMED, NULL},
	};
	struct fwa_manifest out;
	for (unsigned i = 0; i < sizeof v / sizeof v[0]; i++) {
		const char *why = NULL;
		enum fwa_err e = fwa_manifest_decode(kit->crypto, (const uint8_t *)v[i].text,
		                                     strlen(v[i].text), &out, &s, &why);
		ptest_check_err((int)e, (int)v[i].want, "manifest text", __FILE__, v[i].line);
		if (v[i].rule)
			ptest_check(why != NULL && strstr(why, v[i].rule) != NULL,
			            "reason names the field's rule", __FILE__, v[i].line);
	}
}

static void target_checks(const struct ptest_kit *kit)
{
	struct pt_manifest m = pt_manifest_default(kit);
	struct fwa_manifest out;
	const char *why = NULL;
	PT_REQUIRE(setup(kit));
	PT_REQUIRE_OK(verify(kit, &m, by34, 2, &out));
	PT_OK(fwa_manifest_check_target(&out, "pico2_w", 0, &why));
	PT_OK(fwa_manifest_check_target(&out, "pico2_w-rev2", 3, &why)); /* equal to the floor */
	PT_ERR(fwa_manifest_check_target(&out, "pico2_w", 4, &why), FWA_ERR_ROLLBACK);
	PT_RULE(why, "rule: manifest.security_version");
	PT_ERR(fwa_manifest_check_target(&out, "pico2", 0, &why), FWA_ERR_HW_VARIANT);
	PT_RULE(why, "rule: manifest.hw_variants");
	PT_ERR(fwa_manifest_check_target(&out, "PICO2_W", 0, &why), FWA_ERR_HW_VARIANT);
	PT_ERR(fwa_manifest_check_target(&out, "", 0, &why), FWA_ERR_HW_VARIANT);
}

static void image_checks(const struct ptest_kit *kit)
{
	struct pt_manifest m = pt_manifest_default(kit);
	struct fwa_manifest out;
	const char *why = NULL;
	uint8_t h[32];
	PT_REQUIRE(setup(kit));
	PT_REQUIRE_OK(verify(kit, &m, by34, 2, &out));
	fwa_sha256(kit->crypto, "image bytes", 11, h);
	PT_OK(fwa_manifest_check_image(&out, 11, h, &why));
	PT_ERR(fwa_manifest_check_image(&out, 12, h, &why), FWA_ERR_IMAGE_SIZE);
	PT_RULE(why, "rule: manifest.image.size");
	fwa_sha256(kit->crypto, "image byteS", 11, h);
	PT_ERR(fwa_manifest_check_image(&out, 11, h, &why), FWA_ERR_IMAGE_HASH);
	PT_RULE(why, "rule: manifest.image.sha256");
	/* Incremental hashing of the same bytes gives the same digest. */
	struct fwa_sha256 st;
	kit->crypto->sha256_init(&st);
	kit->crypto->sha256_update(&st, "image ", 6);
	kit->crypto->sha256_update(&st, "", 0);
	kit->crypto->sha256_update(&st, "bytes", 5);
	kit->crypto->sha256_final(&st, h);
	PT_OK(fwa_manifest_check_image(&out, 11, h, &why));
}

static const struct ptest_case cases[] = {
    {"verifies_and_decodes", verifies_and_decodes},
    {"needs_release_threshold", needs_release_threshold},
    {"signatures_cover_every_byte", signatures_cover_every_byte},
    {"signed_garbage", signed_garbage},
    {"decode_rules", decode_rules},
    {"decode_rules_name_the_field", decode_rules_name_the_field},
    {"target_checks", target_checks},
    {"image_checks", image_checks},
    {NULL, NULL},
};

const struct ptest_suite ptest_suite = {"manifest", cases};
