/*
 * Portable tests of DSSE envelopes: parsing and its bounds, the pre-authentication encoding,
 * and threshold counting by distinct role keys, with envelopes signed at run time.
 */
#include <string.h>

#include "build.h"

static struct fwa_verify_scratch s;
static char env[FWA_ENVELOPE_MAX + 512];

static void parse_round_trip(const struct ptest_kit *kit)
{
	static const struct pt_sig sigs[] = {{1, -1, false}, {2, -1, false}};
	char id[FWA_KEYID_HEX_LEN + 1];
	const char *why = NULL;
	long n = pt_envelope(kit, "text/plain", "hello", 5, sigs, 2, env, sizeof env);
	PT_REQUIRE(n > 0);
	PT_OK(fwa_dsse_parse(env, (size_t)n, &s, &why));
	PT_STR(s.env.payload_type, "text/plain");
	PT_EQ(s.env.payload_len, 5);
	PT_MEM(s.env.payload, "hello", 5);
	PT_EQ(s.env.nsigs, 2);
	PT_REQUIRE(pt_keyid(kit, 2, id));
	PT_STR(s.env.sigs[1].keyid, id);
	PT_CHECK(s.env.sigs[1].sig_len >= 8 && s.env.sigs[1].sig_len <= FWA_SIG_MAX);

	/* Every truncation of a valid envelope is refused with a reason, never a crash. */
	for (size_t len = 0; len < (size_t)n; len++) {
		why = NULL;
		if (!PT_CHECK(fwa_dsse_parse(env, len, &s, &why) != FWA_OK && why != NULL))
			break;
	}
}

static void pae_digest_matches_spec(const struct ptest_kit *kit)
{
	/* PAE("application/x", "hi there") per the DSSE specification. */
	static const char pae[] = "DSSEv1 13 application/x 8 hi there";
	uint8_t want[32], got[32];
	(void)s;
	fwa_sha256(kit->crypto, pae, sizeof pae - 1, want);
	fwa_dsse_pae_digest(kit->crypto, "application/x", (const uint8_t *)"hi there", 8, got);
	PT_MEM(got, want, 32);
	/* An empty payload still has its length and separator. */
	fwa_sha256(kit->crypto, "DSSEv1 1 t 0 ", 13, want);
	fwa_dsse_pae_digest(kit->crypto, "t", (const uint8_t *)"", 0, got);
	PT_MEM(got, want, 32);
	/* The specification's own example. */
	static const char hello[] = "DSSEv1 29 http://example.com/HelloWorld 11 hello world";
	fwa_sha256(kit->crypto, hello, sizeof hello - 1, want);
	fwa_dsse_pae_digest(kit->crypto, "http://example.com/HelloWorld",
	                    (const uint8_t *)"hello world", 11, got);
	PT_MEM(got, want, 32);
}

static void expect_parse(const char *text, enum fwa_err want, int line)
{
	const char *why = NULL;
	enum fwa_err e = fwa_dsse_parse(text, strlen(text), &s, &why);
	if (!ptest_check_err((int)e, (int)want, "fwa_dsse_parse", __FILE__, line)) {
		ptest_out("    input: ");
		ptest_out(text);
		ptest_out("\n");
	}
	if (e != FWA_OK)
		ptest_check(why != NULL && strstr(why, "(rule: ") != NULL,
		            "an error names its rule", __FILE__, line);
}

#define KEYID "0000000000000000000000000000000000000000000000000000000000000000"

static void rejects_bad_structure(const struct ptest_kit *kit)
{
	(void)kit;
	expect_parse("[]", FWA_ERR_MALFORMED, __LINE__);
	expect_parse("{\"payloadType\":\"t\",\"payload\":\"aGk=\"}", FWA_ERR_MALFORMED, __LINE__);
	expect_parse("{\"payloadType\":\"t\",\"signatures\":[{\"keyid\":\"" KEYID
	             "\",\"sig\":\"AA==\"}]}",
	             FWA_ERR_MALFORMED, __LINE__);
	expect_parse(
	    "{\"payloadType\":\"t\",\"payload\":\"aG k=\",\"signatures\":[{\"keyid\":\"" KEYID
	    "\",\"sig\":\"AA==\"}]}",
	    FWA_ERR_MALFORMED, __LINE__);
	expect_parse(
	    "{\"payloadType\":\"t\",\"payload\":\"aGk=\",\"payload\":\"aGk=\",\"signatures\":[{"
	    "\"keyid\":\"" KEYID "\",\"sig\":\"AA==\"}]}",
	    FWA_ERR_MALFORMED, __LINE__);
	expect_parse(
	    "{\"payloadType\":\"t\",\"payload\":\"aGk=\",\"signatures\":[{\"keyid\":\"" KEYID
	    "\"}]}",
	    FWA_ERR_MALFORMED, __LINE__);
	expect_parse("{\"payloadType\":\"t\",\"payload\":\"aGk=\",\"signatures\":[]}",
	             FWA_ERR_MALFORMED, __LINE__);
	expect_parse("{\"payloadType\":\"t\",\"payload\":\"aGk=\",\"signatures\":{}}",
	             FWA_ERR_MALFORMED, __LINE__);
	expect_parse("{\"payload\":\"aGk=\",\"signatures\":[{\"keyid\":\"" KEYID
	             "\",\"sig\":\"AA==\"}]}",
	             FWA_ERR_MALFORMED, __LINE__);
	expect_parse("{\"payloadType\":1,\"payload\":\"aGk=\",\"signatures\":[{\"keyid\":\"" KEYID
	             "\",\"sig\":\"AA==\"}]}",
	             FWA_ERR_MALFORMED, __LINE__);
	expect_parse(
	    "{\"payloadType\":\"t\",\"payload\":\"aGk\",\"signatures\":[{\"keyid\":\"" KEYID
	    "\",\"sig\":\"AA==\"}]}",
	    FWA_ERR_MALFORMED, __LINE__);
	expect_parse(
	    "{\"payloadType\":\"t\",\"payload\":\"aGk=\",\"signatures\":[{\"keyid\":\"" KEYID
	    "\",\"sig\":\"AA==\"}],\"extra\":1}",
	    FWA_ERR_MALFORMED, __LINE__);
	expect_parse(
	    "{\"payloadType\":\"t\",\"payload\":\"aGk=\",\"signatures\":[{\"keyid\":\"" KEYID
	    "\",\"sig\":\"AA==\",\"x\":1}]}",
	    FWA_ERR_MALFORMED, __LINE__);
	/* Key ids are lowercase hex of exactly 64 characters. */
	expect_parse(
	    "{\"payloadType\":\"t\",\"payload\":\"aGk=\",\"signatures\":[{\"keyid\":\"abc\","
	    "\"sig\":\"AA==\"}]}",
	    FWA_ERR_MALFORMED, __LINE__);
	expect_parse(
	    "{\"payloadType\":\"t\",\"payload\":\"aGk=\",\"signatures\":[{\"keyid\":\"A" KEYID
	    "\",\"sig\":\"AA==\"}]}",
	    FWA_ERR_MALFORMED, __LINE__);
	expect_parse("{\"payloadType\":\"t\",\"payload\":\"aGk=\",\"signatures\":[{\"keyid\":"
	             "\"ABCDEF0000000000000000000000000000000000000000000000000000000000\",\"sig\":"
	             "\"AA==\"}]}",
	             FWA_ERR_MALFORMED, __LINE__);
	expect_parse(
	    "{\"payloadType\":\"t\",\"payload\":\"aGk=\",\"signatures\":[{\"keyid\":\"" KEYID
	    "\",\"sig\":\"\"}]}",
	    FWA_ERR_MALFORMED, __LINE__);
	expect_parse(
	    "{\"payloadType\":\"t\",\"payload\":\"aGk=\",\"signatures\":[{\"keyid\":\"" KEYID
	    "\",\"sig\":\"AA==\"}]}",
	    FWA_OK, __LINE__);
}

static void enforces_bounds(const struct ptest_kit *kit)
{
	static uint8_t big[FWA_PAYLOAD_MAX + 1];
	static const struct pt_sig one[] = {{0, -1, false}};
	struct pt_sig many[FWA_MAX_SIGS + 1];
	const char *why = NULL;
	long n;

	memset(big, 'x', sizeof big);
	n = pt_envelope(kit, "t", big, FWA_PAYLOAD_MAX, one, 1, env, sizeof env);
	PT_REQUIRE(n > 0 && n <= FWA_ENVELOPE_MAX);
	PT_OK(fwa_dsse_parse(env, (size_t)n, &s, &why));
	PT_EQ(s.env.payload_len, FWA_PAYLOAD_MAX);
	n = pt_envelope(kit, "t", big, FWA_PAYLOAD_MAX + 1, one, 1, env, sizeof env);
	PT_REQUIRE(n > 0);
	PT_ERR(fwa_dsse_parse(env, (size_t)n, &s, &why), FWA_ERR_TOO_LARGE);

	for (unsigned i = 0; i <= FWA_MAX_SIGS; i++)
		many[i] = (struct pt_sig){i % PTEST_KEYS, -1, false};
	n = pt_envelope(kit, "t", "p", 1, many, FWA_MAX_SIGS, env, sizeof env);
	PT_REQUIRE(n > 0);
	PT_OK(fwa_dsse_parse(env, (size_t)n, &s, &why));
	n = pt_envelope(kit, "t", "p", 1, many, FWA_MAX_SIGS + 1, env, sizeof env);
	PT_REQUIRE(n > 0);
	PT_ERR(fwa_dsse_parse(env, (size_t)n, &s, &why), FWA_ERR_TOO_LARGE);

	/* A signature over 72 bytes; a payload type over 64 characters; 16 KiB + 1 of text. */
	expect_parse(
	    "{\"payloadType\":\"t\",\"payload\":\"aGk=\",\"signatures\":[{\"keyid\":\"" KEYID
	    "\",\"sig\":"
	    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAA\"}]}",
	    FWA_ERR_TOO_LARGE, __LINE__);
	expect_parse("{\"payloadType\":"
	             "\"ttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt\","
	             "\"payload\":\"aGk=\",\"signatures\":[{\"keyid\":\"" KEYID
	             "\",\"sig\":\"AA==\"}]}",
	             FWA_ERR_TOO_LARGE, __LINE__);
	memset(env, ' ', FWA_ENVELOPE_MAX + 1);
	memcpy(env, "{}", 2);
	PT_ERR(fwa_dsse_parse(env, FWA_ENVELOPE_MAX + 1, &s, &why), FWA_ERR_TOO_LARGE);
}

static void counts_distinct_valid_role_keys(const struct ptest_kit *kit)
{
	struct pt_root r = pt_root_default(1);
	static char payload[4096];
	struct fwa_root root;
	const char *why = NULL;
	unsigned count = 99;
	long plen = pt_root_payload(kit, &r, payload, sizeof payload);
	PT_REQUIRE(plen > 0);
	PT_REQUIRE_OK(
	    fwa_root_decode(kit->crypto, (const uint8_t *)payload, (size_t)plen, &root, &s, &why));

	static const struct {
		struct pt_sig sig[4];
		unsigned n;
		unsigned want;
	} cases[] = {
	    {{{3, -1, false}, {4, -1, false}}, 2, 2},
	    {{{3, -1, false}, {4, -1, false}, {5, -1, false}}, 3, 3},
	    {{{3, -1, false}, {3, -1, false}}, 2, 1}, /* one key twice */
	    {{{0, -1, false}, {1, -1, false}}, 2, 0}, /* root keys, not release */
	    {{{6, -1, false}, {7, -1, false}}, 2, 0}, /* keys the root does not list */
	    {{{6, 3, false}, {4, -1, false}}, 2, 1},  /* key 6 posing as key 3 */
	    {{{3, -1, true}, {4, -1, false}}, 2, 1},  /* a corrupted signature */
	    {{{3, -1, true}, {3, -1, false}}, 2, 1},  /* bad then good by one key */
	    {{{3, -1, false}, {3, -1, false}, {4, -1, false}}, 3, 2},
	};
	for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		long n =
		    pt_envelope(kit, "t", "payload", 7, cases[i].sig, cases[i].n, env, sizeof env);
		PT_REQUIRE(n > 0);
		PT_REQUIRE_OK(fwa_dsse_parse(env, (size_t)n, &s, &why));
		PT_OK(fwa_dsse_count(kit->crypto, &s.env, &root, &root.release, &count, &why));
		PT_EQ(count, cases[i].want);
	}
	/* Only keys of the role asked for count: of these five signatures, one is by a root key. */
	static const struct pt_sig mixed[] = {
	    {3, -1, false}, {3, -1, false}, {6, -1, false}, {5, -1, false}, {0, -1, false}};
	long m = pt_envelope(kit, "t", "payload", 7, mixed, 5, env, sizeof env);
	PT_REQUIRE(m > 0);
	PT_REQUIRE_OK(fwa_dsse_parse(env, (size_t)m, &s, &why));
	PT_OK(fwa_dsse_count(kit->crypto, &s.env, &root, &root.release, &count, &why));
	PT_EQ(count, 2);
	PT_OK(fwa_dsse_count(kit->crypto, &s.env, &root, &root.root, &count, &why));
	PT_EQ(count, 1);

	/* The payload is covered: the same signatures over other bytes count zero. */
	long n = pt_envelope(kit, "t", "payload", 7, cases[0].sig, 2, env, sizeof env);
	PT_REQUIRE(n > 0);
	PT_REQUIRE_OK(fwa_dsse_parse(env, (size_t)n, &s, &why));
	s.env.payload = (const uint8_t *)"paylOad";
	PT_OK(fwa_dsse_count(kit->crypto, &s.env, &root, &root.release, &count, &why));
	PT_EQ(count, 0);
	/* And so is the type. */
	PT_REQUIRE_OK(fwa_dsse_parse(env, (size_t)n, &s, &why));
	memcpy(s.env.payload_type, "u", 2);
	PT_OK(fwa_dsse_count(kit->crypto, &s.env, &root, &root.release, &count, &why));
	PT_EQ(count, 0);
}

static const struct ptest_case cases[] = {
    {"parse_round_trip", parse_round_trip},
    {"pae_digest_matches_spec", pae_digest_matches_spec},
    {"rejects_bad_structure", rejects_bad_structure},
    {"enforces_bounds", enforces_bounds},
    {"counts_distinct_valid_role_keys", counts_distinct_valid_role_keys},
    {NULL, NULL},
};

const struct ptest_suite ptest_suite = {"dsse", cases};
