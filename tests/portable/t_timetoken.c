/*
 * Portable tests of signed time and the root's newer members: a time token verifies only
 * under the time role of the trusted root and only for the nonce the device sent (a foreign
 * or replayed nonce is refused); the time role is its own (threshold 1, no key shared with
 * another role) and a new root may drop it; server CA pins decode with their bounds.
 */
#include <string.h>

#include "build.h"

static struct fwa_verify_scratch s;
static char env[FWA_ENVELOPE_MAX + 512];
static char payload[FWA_PAYLOAD_MAX + 512];

static const unsigned by01[] = {0, 1};
static const uint8_t nonce_a[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t nonce_b[16] = {16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1};

/* A root with time key 6 (or none when ntime is 0). */
static bool root_with_time(const struct ptest_kit *kit, unsigned ntime, struct fwa_root *out)
{
	struct pt_root r = pt_root_default(1);
	const char *why = NULL;

	r.ntime = ntime;
	r.time_keys[0] = 6;
	long n = pt_root_envelope(kit, &r, by01, 2, env, sizeof env);
	return n > 0 && fwa_root_load(kit->crypto, env, (size_t)n, out, &s, &why) == FWA_OK;
}

/* A token payload for `nonce`, signed by `key` under type `type`. */
static long token(const struct ptest_kit *kit, const char *type, unsigned key, const char *time,
                  const uint8_t *nonce, size_t nlen)
{
	static const char head[] = "{\"_type\":\"time\",\"spec_version\":\"1\",\"time\":\"";
	struct pt_sig sig = {key, -1, false};
	char hex[2 * FWA_NONCE_MAX + 1];
	size_t len = 0;

	fwa_hex(nonce, nlen, hex);
	memcpy(payload, head, sizeof head - 1);
	len = sizeof head - 1;
	memcpy(payload + len, time, strlen(time));
	len += strlen(time);
	memcpy(payload + len, "\",\"nonce\":\"", 11);
	len += 11;
	memcpy(payload + len, hex, 2 * nlen);
	len += 2 * nlen;
	memcpy(payload + len, "\"}", 2);
	len += 2;
	return pt_envelope(kit, type, payload, len, &sig, 1, env, sizeof env);
}

static void verifies_for_own_nonce(const struct ptest_kit *kit)
{
	struct fwa_root root;
	const char *why = NULL;
	int64_t t = 0;

	PT_REQUIRE(root_with_time(kit, 1, &root));
	PT_EQ(root.time.nkeys, 1);
	PT_EQ(root.time.threshold, 1);
	long n = token(kit, FWA_PAYLOAD_TIME, 6, "2026-12-02T08:00:00Z", nonce_a, 16);
	PT_REQUIRE(n > 0);
	PT_OK(fwa_time_token_verify(kit->crypto, &root, env, (size_t)n, nonce_a, 16, &t, &s, &why));
	PT_EQ(t, 1796198400ll);
}

static void refuses_foreign_and_replayed_nonce(const struct ptest_kit *kit)
{
	struct fwa_root root;
	const char *why = NULL;
	int64_t t = 0;

	PT_REQUIRE(root_with_time(kit, 1, &root));
	/* Another device's token (its nonce is b), or the token of our earlier check-in (b). */
	long n = token(kit, FWA_PAYLOAD_TIME, 6, "2030-01-01T00:00:00Z", nonce_b, 16);
	PT_REQUIRE(n > 0);
	PT_ERR(fwa_time_token_verify(kit->crypto, &root, env, (size_t)n, nonce_a, 16, &t, &s, &why),
	       FWA_ERR_NONCE);
	PT_RULE(why, "time.nonce");
	/* A prefix of our nonce is not our nonce. */
	n = token(kit, FWA_PAYLOAD_TIME, 6, "2030-01-01T00:00:00Z", nonce_a, 16);
	PT_REQUIRE(n > 0);
	static const uint8_t longer[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	PT_ERR(fwa_time_token_verify(kit->crypto, &root, env, (size_t)n, longer, 20, &t, &s, &why),
	       FWA_ERR_NONCE);
	/* A device nonce out of bounds is refused before anything is parsed. */
	PT_ERR(fwa_time_token_verify(kit->crypto, &root, env, (size_t)n, nonce_a, 8, &t, &s, &why),
	       FWA_ERR_MALFORMED);
}

static void only_the_time_key_signs(const struct ptest_kit *kit)
{
	struct fwa_root root, none;
	const char *why = NULL;
	int64_t t = 0;
	long n;

	PT_REQUIRE(root_with_time(kit, 1, &root));
	/* A release key, a root key, a stranger: not the time role. */
	static const unsigned others[] = {3, 0, 7};
	for (unsigned i = 0; i < 3; i++) {
		n = token(kit, FWA_PAYLOAD_TIME, others[i], "2030-01-01T00:00:00Z", nonce_a, 16);
		PT_REQUIRE(n > 0);
		PT_ERR(fwa_time_token_verify(kit->crypto, &root, env, (size_t)n, nonce_a, 16, &t,
		                             &s, &why),
		       FWA_ERR_THRESHOLD);
	}
	/* The time key cannot pass a token off as another document, nor the reverse. */
	n = token(kit, FWA_PAYLOAD_MANIFEST, 6, "2030-01-01T00:00:00Z", nonce_a, 16);
	PT_REQUIRE(n > 0);
	PT_ERR(fwa_time_token_verify(kit->crypto, &root, env, (size_t)n, nonce_a, 16, &t, &s, &why),
	       FWA_ERR_PAYLOAD_TYPE);
	/* A root without a time role accepts no token at all (revoked by a new root). */
	PT_REQUIRE(root_with_time(kit, 0, &none));
	n = token(kit, FWA_PAYLOAD_TIME, 6, "2030-01-01T00:00:00Z", nonce_a, 16);
	PT_REQUIRE(n > 0);
	PT_ERR(fwa_time_token_verify(kit->crypto, &none, env, (size_t)n, nonce_a, 16, &t, &s, &why),
	       FWA_ERR_KEY);
	PT_RULE(why, "root.roles.time");
}

static void malformed_token(const struct ptest_kit *kit)
{
	struct fwa_root root;
	const char *why = NULL;
	int64_t t = 0;

	PT_REQUIRE(root_with_time(kit, 1, &root));
	long n = token(kit, FWA_PAYLOAD_TIME, 6, "2030-01-01 00:00:00", nonce_a, 16);
	PT_REQUIRE(n > 0);
	PT_ERR(fwa_time_token_verify(kit->crypto, &root, env, (size_t)n, nonce_a, 16, &t, &s, &why),
	       FWA_ERR_MALFORMED);
	PT_RULE(why, "time.time");
}

static void time_role_rules(const struct ptest_kit *kit)
{
	struct pt_root r = pt_root_default(1);
	struct fwa_root root;
	const char *why = NULL;
	long n;

	/* Threshold 1 only. */
	r.ntime = 2;
	r.time_keys[0] = 6;
	r.time_keys[1] = 7;
	r.time_threshold = 2;
	n = pt_root_payload(kit, &r, payload, sizeof payload);
	PT_REQUIRE(n > 0);
	PT_ERR(fwa_root_decode(kit->crypto, (const uint8_t *)payload, (size_t)n, &root, &s, &why),
	       FWA_ERR_MALFORMED);
	PT_RULE(why, "root.roles.time");
	/* Two time keys with threshold 1 are fine (a spare for rotation). */
	r.time_threshold = 1;
	n = pt_root_payload(kit, &r, payload, sizeof payload);
	PT_REQUIRE(n > 0);
	PT_OK(fwa_root_decode(kit->crypto, (const uint8_t *)payload, (size_t)n, &root, &s, &why));
	/* A release key cannot also be the time key. */
	r.ntime = 1;
	r.time_keys[0] = 3;
	n = pt_root_payload(kit, &r, payload, sizeof payload);
	PT_REQUIRE(n > 0);
	PT_ERR(fwa_root_decode(kit->crypto, (const uint8_t *)payload, (size_t)n, &root, &s, &why),
	       FWA_ERR_KEY);
	PT_RULE(why, "root.roles.separation");
}

static void server_ca_pins(const struct ptest_kit *kit)
{
	static const char pin1[] =
	    "\"1111111111111111111111111111111111111111111111111111111111111111\"";
	static const char pin2[] =
	    "\"2222222222222222222222222222222222222222222222222222222222222222\"";
	static char extra[400];
	struct pt_root r = pt_root_default(1);
	struct fwa_root root;
	const char *why = NULL;
	long n;

	r.extra = extra;
	/* Two pins. */
	strcpy(extra, ",\"server_cas\":[");
	strcat(extra, pin1);
	strcat(extra, ",");
	strcat(extra, pin2);
	strcat(extra, "]");
	n = pt_root_payload(kit, &r, payload, sizeof payload);
	PT_REQUIRE(n > 0);
	PT_OK(fwa_root_decode(kit->crypto, (const uint8_t *)payload, (size_t)n, &root, &s, &why));
	PT_EQ(root.nserver_cas, 2);
	PT_EQ(root.server_ca[1][31], 0x22);
	/* A pin twice, an empty list, a bad pin, a string; then three pins. */
	static const char *const bad[] = {
	    ",\"server_cas\":[\"1111111111111111111111111111111111111111111111111111111111111111\","
	    "\"1111111111111111111111111111111111111111111111111111111111111111\"]",
	    ",\"server_cas\":[]",
	    ",\"server_cas\":[\"11\"]",
	    ",\"server_cas\":\"1111111111111111111111111111111111111111111111111111111111111111\"",
	};
	for (unsigned i = 0; i < 4; i++) {
		strcpy(extra, bad[i]);
		n = pt_root_payload(kit, &r, payload, sizeof payload);
		PT_REQUIRE(n > 0);
		PT_ERR(fwa_root_decode(kit->crypto, (const uint8_t *)payload, (size_t)n, &root, &s,
		                       &why),
		       FWA_ERR_MALFORMED);
		PT_RULE(why, "root.server_cas");
	}
	strcpy(extra, ",\"server_cas\":[");
	for (unsigned i = 0; i < 3; i++) {
		strcat(extra, i ? "," : "");
		strcat(extra, i % 2 ? pin1 : pin2);
	}
	strcat(extra, "]");
	n = pt_root_payload(kit, &r, payload, sizeof payload);
	PT_REQUIRE(n > 0);
	PT_ERR(fwa_root_decode(kit->crypto, (const uint8_t *)payload, (size_t)n, &root, &s, &why),
	       FWA_ERR_TOO_LARGE);
}

static const struct ptest_case cases[] = {
    {"verifies_for_own_nonce", verifies_for_own_nonce},
    {"refuses_foreign_and_replayed_nonce", refuses_foreign_and_replayed_nonce},
    {"only_the_time_key_signs", only_the_time_key_signs},
    {"malformed_token", malformed_token},
    {"time_role_rules", time_role_rules},
    {"server_ca_pins", server_ca_pins},
    {NULL, NULL},
};

const struct ptest_suite ptest_suite = {"timetoken", cases};
