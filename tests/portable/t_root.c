/*
 * Portable tests of root metadata: decoding rules, loading the provisioned root with its
 * self-signature threshold, TUF rotation (N+1 signed by thresholds of N and of itself), key
 * revocation through rotation, and expiry.
 */
#include <string.h>

#include "build.h"

static struct fwa_verify_scratch s;
static char env[FWA_ENVELOPE_MAX + 512];
static char payload[FWA_PAYLOAD_MAX + 512];

static const unsigned by01[] = {0, 1};

static enum fwa_err load(const struct ptest_kit *kit, const struct pt_root *r, const unsigned *by,
                         unsigned n, struct fwa_root *out)
{
	const char *why = NULL;
	long len = pt_root_envelope(kit, r, by, n, env, sizeof env);
	if (len < 0)
		return FWA_ERR__COUNT;
	enum fwa_err e = fwa_root_load(kit->crypto, env, (size_t)len, out, &s, &why);
	if (e != FWA_OK && (why == NULL || why[0] == '\0'))
		return FWA_ERR__COUNT; /* every error must say why */
	return e;
}

static void loads_provisioned_root(const struct ptest_kit *kit)
{
	struct pt_root r = pt_root_default(7);
	struct fwa_root root;
	char id[FWA_KEYID_HEX_LEN + 1];
	uint8_t digest[32];
	long plen;

	PT_REQUIRE_OK(load(kit, &r, by01, 2, &root));
	PT_EQ(root.version, 7);
	PT_EQ(root.expires, 4102444800ll); /* 2100-01-01 */
	PT_EQ(root.nkeys, 6);
	PT_EQ(root.root.nkeys, 3);
	PT_EQ(root.root.threshold, 2);
	PT_EQ(root.release.nkeys, 3);
	PT_EQ(root.release.threshold, 2);
	PT_REQUIRE(pt_keyid(kit, 4, id));
	PT_STR(root.keys[root.release.key[1]].id, id);
	/* The fingerprint is the SHA-256 of the payload bytes. */
	plen = pt_root_payload(kit, &r, payload, sizeof payload);
	PT_REQUIRE(plen > 0);
	fwa_sha256(kit->crypto, payload, (size_t)plen, digest);
	PT_MEM(root.digest, digest, 32);
}

static void load_needs_own_threshold(const struct ptest_kit *kit)
{
	static const unsigned by0[] = {0}, by00[] = {0, 0}, by34[] = {3, 4}, by67[] = {6, 7};
	struct pt_root r = pt_root_default(1);
	struct fwa_root root;
	const char *why = NULL;
	long n = pt_root_envelope(kit, &r, by0, 1, env, sizeof env);
	PT_REQUIRE(n > 0);
	PT_ERR(fwa_root_load(kit->crypto, env, (size_t)n, &root, &s, &why), FWA_ERR_THRESHOLD);
	PT_RULE(why, "root.threshold.self");
	PT_ERR(load(kit, &r, by0, 1, &root), FWA_ERR_THRESHOLD);
	PT_ERR(load(kit, &r, by00, 2, &root), FWA_ERR_THRESHOLD);
	PT_ERR(load(kit, &r, by34, 2, &root), FWA_ERR_THRESHOLD); /* release keys cannot */
	PT_ERR(load(kit, &r, by67, 2, &root), FWA_ERR_THRESHOLD); /* strangers cannot */
	r.root_threshold = 3;
	PT_ERR(load(kit, &r, by01, 2, &root), FWA_ERR_THRESHOLD);
	r.root_threshold = 1;
	PT_OK(load(kit, &r, by0, 1, &root));
}

static void load_checks_payload_type(const struct ptest_kit *kit)
{
	static const struct pt_sig sigs[] = {{0, -1, false}, {1, -1, false}};
	struct pt_root r = pt_root_default(1);
	struct fwa_root root;
	const char *why = NULL;
	long plen = pt_root_payload(kit, &r, payload, sizeof payload);
	PT_REQUIRE(plen > 0);
	long n =
	    pt_envelope(kit, FWA_PAYLOAD_MANIFEST, payload, (size_t)plen, sigs, 2, env, sizeof env);
	PT_REQUIRE(n > 0);
	PT_ERR(fwa_root_load(kit->crypto, env, (size_t)n, &root, &s, &why), FWA_ERR_PAYLOAD_TYPE);
	/* Nor may a manifest-typed envelope rotate the root. */
	struct fwa_root v1, v2;
	PT_REQUIRE_OK(load(kit, &r, by01, 2, &v1));
	r.version = 2;
	plen = pt_root_payload(kit, &r, payload, sizeof payload);
	PT_REQUIRE(plen > 0);
	n = pt_envelope(kit, FWA_PAYLOAD_MANIFEST, payload, (size_t)plen, sigs, 2, env, sizeof env);
	PT_REQUIRE(n > 0);
	PT_ERR(fwa_root_update(kit->crypto, &v1, env, (size_t)n, &v2, &s, &why),
	       FWA_ERR_PAYLOAD_TYPE);
}

/* The reason given by the last decode_edited() call. */
static const char *last_why;

/* Decode a root payload after replacing its first `from` with `to`; sets last_why. */
static enum fwa_err decode_edited(const struct ptest_kit *kit, const struct pt_root *r,
                                  const char *from, const char *to)
{
	static char edited[FWA_PAYLOAD_MAX + 512];
	struct fwa_root root;
	const char *why = NULL;
	long plen = pt_root_payload(kit, r, payload, sizeof payload);
	if (plen < 0)
		return FWA_ERR__COUNT;
	char *at = strstr(payload, from);
	if (!at)
		return FWA_ERR__COUNT;
	size_t head = (size_t)(at - payload), fl = strlen(from), tl = strlen(to);
	if ((size_t)plen - fl + tl > sizeof edited)
		return FWA_ERR__COUNT;
	memcpy(edited, payload, head);
	memcpy(edited + head, to, tl);
	memcpy(edited + head + tl, at + fl, (size_t)plen - head - fl);
	enum fwa_err e = fwa_root_decode(kit->crypto, (const uint8_t *)edited,
	                                 (size_t)plen - fl + tl, &root, &s, &why);
	last_why = why;
	return e;
}

static void decode_rules(const struct ptest_kit *kit)
{
	struct pt_root r = pt_root_default(1);
	struct fwa_root root;
	const char *why = NULL;
	char id[FWA_KEYID_HEX_LEN + 1];
	char from[80], to[80];

	PT_OK(decode_edited(kit, &r, "\"root\"", "\"root\""));
	PT_ERR(decode_edited(kit, &r, "\"_type\":\"root\"", "\"_type\":\"manifest\""),
	       FWA_ERR_MALFORMED);
	PT_ERR(decode_edited(kit, &r, "\"spec_version\":\"1\"", "\"spec_version\":\"2\""),
	       FWA_ERR_SPEC_VERSION);
	PT_ERR(decode_edited(kit, &r, "\"version\":1", "\"version\":0"), FWA_ERR_MALFORMED);
	PT_ERR(decode_edited(kit, &r, "\"version\":1", "\"version\":4294967296"),
	       FWA_ERR_MALFORMED);
	PT_ERR(decode_edited(kit, &r, "\"version\":1", "\"version\":\"1\""), FWA_ERR_MALFORMED);
	PT_ERR(decode_edited(kit, &r, "2100-01-01T00:00:00Z", "2100-01-01"), FWA_ERR_MALFORMED);
	PT_ERR(decode_edited(kit, &r, "\"2100-01-01T00:00:00Z\"", "4102444800"), FWA_ERR_MALFORMED);
	PT_ERR(decode_edited(kit, &r, "\"ecdsa-p256\"", "\"ed25519\""), FWA_ERR_KEY);
	PT_ERR(decode_edited(kit, &r, "{\"_type\"", "{\"unknown\":1,\"_type\""), FWA_ERR_MALFORMED);
	PT_ERR(decode_edited(kit, &r, "\"threshold\":2", "\"threshold\":0"), FWA_ERR_MALFORMED);
	PT_ERR(decode_edited(kit, &r, "\"threshold\":2", "\"threshold\":4"), FWA_ERR_MALFORMED);
	PT_RULE(last_why, "root.roles.threshold");
	PT_ERR(decode_edited(kit, &r, "\"roles\":{", "\"roles\":{\"targets\":{},"),
	       FWA_ERR_MALFORMED);
	/* The public key's first bytes: no longer a P-256 SubjectPublicKeyInfo. */
	PT_ERR(decode_edited(kit, &r, "\"public\":\"MFkw", "\"public\":\"MFow"), FWA_ERR_KEY);

	/* A key id that is not the SHA-256 of its key: swap the first listed id's first digit. */
	PT_REQUIRE(pt_keyid(kit, 0, id));
	memcpy(from, "\"", 1);
	memcpy(from + 1, id, 65);
	memcpy(to, from, 66);
	to[1] = id[0] == '0' ? '1' : '0';
	strcat(from, "\":{");
	strcat(to, "\":{");
	PT_ERR(decode_edited(kit, &r, from, to), FWA_ERR_KEY);
	PT_RULE(last_why, "root.keys.keyid");

	/* One job per key: a key in both roles. */
	r.rel_keys[0] = 0;
	long plen = pt_root_payload(kit, &r, payload, sizeof payload);
	PT_REQUIRE(plen > 0);
	PT_ERR(
	    fwa_root_decode(kit->crypto, (const uint8_t *)payload, (size_t)plen, &root, &s, &why),
	    FWA_ERR_KEY);
	PT_RULE(why, "root.roles.separation");
	/* A role naming a key that keys does not list (key 7, put before the release keys). */
	r = pt_root_default(1);
	PT_REQUIRE(pt_keyid(kit, 7, id));
	{
		static char stranger[160];
		strcpy(stranger, "\"release\":{\"keyids\":[\"");
		strcat(stranger, id);
		strcat(stranger, "\",\"");
		PT_ERR(decode_edited(kit, &r, "\"release\":{\"keyids\":[\"", stranger),
		       FWA_ERR_KEY);
	}
	/* A role listing one key twice. */
	r = pt_root_default(1);
	r.nrel = 2;
	r.rel_keys[1] = 3;
	r.rel_threshold = 1;
	plen = pt_root_payload(kit, &r, payload, sizeof payload);
	PT_REQUIRE(plen > 0);
	PT_ERR(
	    fwa_root_decode(kit->crypto, (const uint8_t *)payload, (size_t)plen, &root, &s, &why),
	    FWA_ERR_MALFORMED);
}

/* Update `from` to the root `r` signed by `by`; the reason is left in *why. */
static enum fwa_err rotate(const struct ptest_kit *kit, const struct fwa_root *from,
                           const struct pt_root *r, const unsigned *by, unsigned n,
                           struct fwa_root *to, const char **why)
{
	static char env2[FWA_ENVELOPE_MAX + 512];
	long len = pt_root_envelope(kit, r, by, n, env2, sizeof env2);
	if (len < 0)
		return FWA_ERR__COUNT;
	*why = NULL;
	return fwa_root_update(kit->crypto, from, env2, (size_t)len, to, &s, why);
}

static void rotation(const struct ptest_kit *kit)
{
	static const unsigned by12[] = {1, 2}, by0167[] = {0, 1, 6, 7}, by67[] = {6, 7},
	                      by016[] = {0, 1, 6}, by34[] = {3, 4};
	struct pt_root r1 = pt_root_default(1), r2 = pt_root_default(2);
	struct fwa_root v1, v2;
	const char *why = NULL;

	PT_REQUIRE_OK(load(kit, &r1, by01, 2, &v1));
	/* v2 keeps keys 0 and 1, drops 2, adds 6 and 7 as root keys. */
	r2.nroot = 4;
	r2.root_keys[0] = 0;
	r2.root_keys[1] = 1;
	r2.root_keys[2] = 6;
	r2.root_keys[3] = 7;
	r2.root_threshold = 2;

	PT_OK(rotate(kit, &v1, &r2, by0167, 4, &v2, &why));
	PT_EQ(v2.version, 2);
	PT_EQ(v2.root.nkeys, 4);
	/* Keys 0 and 1 are a threshold of both v1 and v2. */
	PT_OK(rotate(kit, &v1, &r2, by01, 2, &v2, &why));
	/* Only the new keys: v1's threshold is missing. */
	PT_ERR(rotate(kit, &v1, &r2, by67, 2, &v2, &why), FWA_ERR_THRESHOLD);
	PT_RULE(why, "root.threshold.previous");
	/* Only old keys, one of them dropped from v2: v2's own threshold is missing. */
	r2.root_threshold = 3;
	PT_ERR(rotate(kit, &v1, &r2, by12, 2, &v2, &why), FWA_ERR_THRESHOLD);
	PT_RULE(why, "root.threshold.self");
	PT_OK(rotate(kit, &v1, &r2, by016, 3, &v2, &why));
	/* Release keys never sign roots. */
	PT_ERR(rotate(kit, &v1, &r2, by34, 2, &v2, &why), FWA_ERR_THRESHOLD);

	/* Versions are walked one at a time: skipping one, a replay, and from v2 an older one
	 * (signed by thresholds of both). */
	struct pt_root r3 = pt_root_default(3), r1b = pt_root_default(1);
	PT_ERR(rotate(kit, &v1, &r3, by01, 2, &v2, &why), FWA_ERR_ROOT_VERSION);
	PT_RULE(why, "rule: root.version");
	PT_ERR(rotate(kit, &v1, &r1b, by01, 2, &v2, &why), FWA_ERR_ROOT_VERSION);
	PT_REQUIRE_OK(rotate(kit, &v1, &r2, by016, 3, &v2, &why));
	PT_ERR(rotate(kit, &v2, &r1b, by016, 3, &v1, &why), FWA_ERR_ROOT_VERSION);
}

static void revocation_by_rotation(const struct ptest_kit *kit)
{
	static const unsigned by34[] = {3, 4}, by45[] = {4, 5};
	static char menv[FWA_ENVELOPE_MAX + 512];
	struct pt_root r1 = pt_root_default(1), r2 = pt_root_default(2);
	struct pt_manifest m = pt_manifest_default(kit);
	struct fwa_root v1, v2;
	struct fwa_manifest man;
	const char *why = NULL;
	long n, mn;

	PT_REQUIRE_OK(load(kit, &r1, by01, 2, &v1));
	/* v2 revokes release key 3. */
	r2.nrel = 2;
	r2.rel_keys[0] = 4;
	r2.rel_keys[1] = 5;
	n = pt_root_envelope(kit, &r2, by01, 2, env, sizeof env);
	PT_REQUIRE(n > 0);
	PT_REQUIRE_OK(fwa_root_update(kit->crypto, &v1, env, (size_t)n, &v2, &s, &why));

	mn = pt_manifest_envelope(kit, &m, by34, 2, menv, sizeof menv);
	PT_REQUIRE(mn > 0);
	PT_OK(fwa_manifest_verify(kit->crypto, &v1, menv, (size_t)mn, &man, &s, &why));
	PT_ERR(fwa_manifest_verify(kit->crypto, &v2, menv, (size_t)mn, &man, &s, &why),
	       FWA_ERR_THRESHOLD);
	mn = pt_manifest_envelope(kit, &m, by45, 2, menv, sizeof menv);
	PT_REQUIRE(mn > 0);
	PT_OK(fwa_manifest_verify(kit->crypto, &v2, menv, (size_t)mn, &man, &s, &why));
}

static void expiry(const struct ptest_kit *kit)
{
	struct pt_root r = pt_root_default(1);
	struct fwa_root root;
	const char *why = NULL;
	r.expires = "2030-06-01T00:00:00Z";
	PT_REQUIRE_OK(load(kit, &r, by01, 2, &root)); /* loading does not look at the time */
	PT_OK(fwa_root_check_expiry(&root, 1906502399, &why));
	PT_ERR(fwa_root_check_expiry(&root, 1906502400, &why), FWA_ERR_EXPIRED);
	PT_RULE(why, "rule: root.expires");
	r.expires = "2001-01-01T00:00:00Z";
	PT_OK(load(kit, &r, by01, 2, &root));
	/* Expired intermediate roots are walked through; only the newest is checked by callers. */
	struct pt_root r2 = pt_root_default(2);
	struct fwa_root v2;
	r2.expires = "2001-01-01T00:00:00Z";
	r.expires = NULL;
	PT_REQUIRE_OK(load(kit, &r, by01, 2, &root));
	PT_OK(rotate(kit, &root, &r2, by01, 2, &v2, &why));
	PT_ERR(fwa_root_check_expiry(&v2, 978307201, &why), FWA_ERR_EXPIRED);
}

static const struct ptest_case cases[] = {
    {"loads_provisioned_root", loads_provisioned_root},
    {"load_needs_own_threshold", load_needs_own_threshold},
    {"load_checks_payload_type", load_checks_payload_type},
    {"decode_rules", decode_rules},
    {"rotation", rotation},
    {"revocation_by_rotation", revocation_by_rotation},
    {"expiry", expiry},
    {NULL, NULL},
};

const struct ptest_suite ptest_suite = {"root", cases};
