/*
 * root.c - root metadata: decoding with every field checked, loading the provisioned root,
 * and TUF rotation (version N+1 signed by a threshold of version N's root keys and of its
 * own), which is how release keys are rotated and revoked without touching devices.
 */
#include <stdint.h>
#include <string.h>

#include "fwa/verify.h"
#include "verify_int.h"

/* DER SubjectPublicKeyInfo prefix of an uncompressed P-256 point (id-ecPublicKey, prime256v1). */
static const uint8_t p256_spki_prefix[27] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
    0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
};

static enum fwa_err decode_role(const struct fwa_json *j, int t, struct fwa_root *out,
                                struct fwa_role *role, const char **why)
{
	static const char *const role_keys[] = {"keyids", "threshold", NULL};
	uint64_t v;

	if (fwa_json_only_keys(j, t, role_keys))
		return fail(why, FWA_ERR_MALFORMED,
		            "role is not an object of keyids and threshold (rule: root.roles)");
	int ids = fwa_json_get(j, t, "keyids");
	if (ids < 0 || j->tok[ids].type != FWA_JSON_ARRAY || j->tok[ids].size == 0)
		return fail(why, FWA_ERR_MALFORMED,
		            "role keyids missing, empty or not an array (rule: root.roles.keyids)");
	if (j->tok[ids].size > FWA_MAX_ROLE_KEYS)
		return fail(why, FWA_ERR_TOO_LARGE,
		            "role lists more than 8 keys (rule: root.roles.keyids)");
	role->nkeys = 0;
	for (unsigned i = 0; i < j->tok[ids].size; i++) {
		int e = fwa_json_at(j, ids, i);
		unsigned k;

		for (k = 0; k < out->nkeys; k++)
			if (fwa_json_str_eq(j, e, out->keys[k].id))
				break;
		if (k == out->nkeys)
			return fail(
			    why, FWA_ERR_KEY,
			    "role names a key id not listed in keys (rule: root.roles.keyids)");
		for (unsigned x = 0; x < role->nkeys; x++)
			if (role->key[x] == k)
				return fail(why, FWA_ERR_MALFORMED,
				            "role lists a key id twice (rule: root.roles.keyids)");
		role->key[role->nkeys++] = (uint8_t)k;
	}
	if (fwa_json_uint(j, fwa_json_get(j, t, "threshold"), FWA_MAX_ROLE_KEYS, &v) || v == 0 ||
	    v > role->nkeys)
		return fail(why, FWA_ERR_MALFORMED,
		            "threshold must be an integer from 1 to the role's key count (rule: "
		            "root.roles.threshold)");
	role->threshold = (uint8_t)v;
	return FWA_OK;
}

static bool shared_key(const struct fwa_role *x, const struct fwa_role *y)
{
	for (unsigned a = 0; a < x->nkeys; a++)
		for (unsigned b = 0; b < y->nkeys; b++)
			if (x->key[a] == y->key[b])
				return true;
	return false;
}

/* Optional server_cas: the SHA-256 pins of the CA certificates' SubjectPublicKeyInfo. */
static enum fwa_err decode_server_cas(const struct fwa_json *j, int t, struct fwa_root *out,
                                      const char **why)
{
	if (t < 0)
		return FWA_OK;
	if (j->tok[t].type != FWA_JSON_ARRAY || j->tok[t].size == 0)
		return fail(why, FWA_ERR_MALFORMED,
		            "server_cas must be a non-empty array (rule: root.server_cas)");
	if (j->tok[t].size > FWA_MAX_SERVER_CAS)
		return fail(why, FWA_ERR_TOO_LARGE,
		            "server_cas lists more than 2 pins (rule: root.server_cas)");
	for (unsigned i = 0; i < j->tok[t].size; i++) {
		uint8_t *pin = out->server_ca[out->nserver_cas];

		if (fwa_json_hexlower(j, fwa_json_at(j, t, i), 64, pin))
			return fail(why, FWA_ERR_MALFORMED,
			            "a server CA pin is not 64 lowercase hex characters (rule: "
			            "root.server_cas)");
		for (unsigned k = 0; k < out->nserver_cas; k++)
			if (memcmp(out->server_ca[k], pin, 32) == 0)
				return fail(why, FWA_ERR_MALFORMED,
				            "server_cas lists a pin twice (rule: root.server_cas)");
		out->nserver_cas++;
	}
	return FWA_OK;
}

enum fwa_err fwa_root_decode(const struct fwa_crypto *c, const uint8_t *payload, size_t len,
                             struct fwa_root *out, struct fwa_verify_scratch *s, const char **why)
{
	static const char *const top[] = {"_type", "spec_version", "version",    "expires",
	                                  "keys",  "roles",        "server_cas", NULL};
	static const char *const key_fields[] = {"keytype", "public", NULL};
	static const char *const role_names[] = {"root", "release", "time", NULL};
	struct fwa_json j;
	enum fwa_err err;
	uint64_t v;
	int t;

	memset(out, 0, sizeof(*out));
	if (len > FWA_PAYLOAD_MAX)
		return fail(why, FWA_ERR_TOO_LARGE, "root payload over 8 KiB (rule: root.size)");
	err = fwa_json_parse(&j, (const char *)payload, len, s->tok, FWA_JSON_MAX_TOKENS);
	if (err == FWA_ERR_TOO_LARGE)
		return fail(why, err, "root JSON too deep or too many tokens (rule: root.size)");
	if (err || j.tok[0].type != FWA_JSON_OBJECT)
		return fail(why, FWA_ERR_MALFORMED,
		            "root payload is not a JSON object (rule: root.json)");
	if (!fwa_json_str_eq(&j, fwa_json_get(&j, 0, "_type"), "root"))
		return fail(why, FWA_ERR_MALFORMED, "_type must be \"root\" (rule: root._type)");
	if (!fwa_json_str_eq(&j, fwa_json_get(&j, 0, "spec_version"), FWA_SPEC_VERSION))
		return fail(why, FWA_ERR_SPEC_VERSION,
		            "spec_version must be \"1\" (rule: root.spec_version)");
	if (fwa_json_only_keys(&j, 0, top))
		return fail(why, FWA_ERR_MALFORMED, "root has an unknown member (rule: root.keys)");
	if (fwa_json_uint(&j, fwa_json_get(&j, 0, "version"), UINT32_MAX, &v) || v == 0)
		return fail(why, FWA_ERR_MALFORMED,
		            "version must be an integer from 1 to 2^32-1 (rule: root.version)");
	out->version = (uint32_t)v;
	t = fwa_json_get(&j, 0, "expires");
	if (t < 0 || j.tok[t].type != FWA_JSON_STRING ||
	    fwa_time_parse(j.text + j.tok[t].start, j.tok[t].end - j.tok[t].start, &out->expires))
		return fail(why, FWA_ERR_MALFORMED,
		            "expires must be YYYY-MM-DDTHH:MM:SSZ (rule: root.expires)");

	int keys = fwa_json_get(&j, 0, "keys");
	if (keys < 0 || j.tok[keys].type != FWA_JSON_OBJECT || j.tok[keys].size == 0)
		return fail(why, FWA_ERR_MALFORMED,
		            "keys missing, empty or not an object (rule: root.keys)");
	if (j.tok[keys].size > FWA_MAX_KEYS)
		return fail(why, FWA_ERR_TOO_LARGE, "more than 16 keys (rule: root.keys)");
	t = keys + 1;
	for (unsigned i = 0; i < j.tok[keys].size; i++) {
		struct fwa_key *k = &out->keys[i];
		uint8_t id[32], digest[32];
		size_t n;
		int kv = t + 1;

		if (fwa_json_hexlower(&j, t, FWA_KEYID_HEX_LEN, id))
			return fail(
			    why, FWA_ERR_MALFORMED,
			    "key id is not 64 lowercase hex characters (rule: root.keys.keyid)");
		if (j.tok[kv].type != FWA_JSON_OBJECT || fwa_json_only_keys(&j, kv, key_fields))
			return fail(why, FWA_ERR_MALFORMED,
			            "key is not an object of keytype and public (rule: root.keys)");
		if (!fwa_json_str_eq(&j, fwa_json_get(&j, kv, "keytype"), "ecdsa-p256"))
			return fail(why, FWA_ERR_KEY,
			            "keytype must be \"ecdsa-p256\" (rule: root.keys.keytype)");
		err = fwa_json_base64(&j, fwa_json_get(&j, kv, "public"), k->spki, sizeof(k->spki),
		                      &n);
		if (err == FWA_ERR_TOO_LARGE || (!err && n != FWA_SPKI_P256_LEN) ||
		    (!err && memcmp(k->spki, p256_spki_prefix, sizeof(p256_spki_prefix)) != 0))
			return fail(why, FWA_ERR_KEY,
			            "public is not the DER SubjectPublicKeyInfo of a P-256 key "
			            "(rule: root.keys.public)");
		if (err)
			return fail(why, FWA_ERR_MALFORMED,
			            "public missing or not base64 (rule: root.keys.public)");
		fwa_sha256(c, k->spki, FWA_SPKI_P256_LEN, digest);
		if (memcmp(digest, id, 32) != 0)
			return fail(
			    why, FWA_ERR_KEY,
			    "key id is not the SHA-256 of its public key (rule: root.keys.keyid)");
		fwa_hex(id, 32, k->id);
		out->nkeys++;
		t = (int)j.tok[kv].next;
	}

	int roles = fwa_json_get(&j, 0, "roles");
	if (roles < 0 || fwa_json_only_keys(&j, roles, role_names) ||
	    fwa_json_get(&j, roles, "root") < 0 || fwa_json_get(&j, roles, "release") < 0)
		return fail(why, FWA_ERR_MALFORMED,
		            "roles must be an object of root, release and optionally time (rule: "
		            "root.roles)");
	err = decode_role(&j, fwa_json_get(&j, roles, "root"), out, &out->root, why);
	if (err)
		return err;
	err = decode_role(&j, fwa_json_get(&j, roles, "release"), out, &out->release, why);
	if (err)
		return err;
	t = fwa_json_get(&j, roles, "time");
	if (t >= 0) {
		err = decode_role(&j, t, out, &out->time, why);
		if (err)
			return err;
		/* An online key: one signature is all it can ever give. */
		if (out->time.threshold != 1)
			return fail(why, FWA_ERR_MALFORMED,
			            "the time role's threshold must be 1 (rule: root.roles.time)");
	}
	/* One job per key: a release key must never be able to sign a root, nor the reverse. */
	if (shared_key(&out->root, &out->release) || shared_key(&out->root, &out->time) ||
	    shared_key(&out->release, &out->time))
		return fail(why, FWA_ERR_KEY,
		            "a key holds more than one role (rule: root.roles.separation)");
	err = decode_server_cas(&j, fwa_json_get(&j, 0, "server_cas"), out, why);
	if (err)
		return err;
	fwa_sha256(c, payload, len, out->digest);
	return FWA_OK;
}

static enum fwa_err threshold(const struct fwa_crypto *c, const struct fwa_dsse *env,
                              const struct fwa_root *root, const struct fwa_role *role,
                              const char *reason, const char **why)
{
	unsigned n;
	enum fwa_err err = fwa_dsse_count(c, env, root, role, &n, why);

	if (err)
		return err;
	if (n < role->threshold)
		return fail(why, FWA_ERR_THRESHOLD, reason);
	return FWA_OK;
}

static enum fwa_err parse_root_envelope(const char *json, size_t len, struct fwa_verify_scratch *s,
                                        const char **why)
{
	enum fwa_err err = fwa_dsse_parse(json, len, s, why);

	if (err)
		return err;
	if (strcmp(s->env.payload_type, FWA_PAYLOAD_ROOT) != 0)
		return fail(
		    why, FWA_ERR_PAYLOAD_TYPE,
		    "payloadType must be application/vnd.ota.root+json (rule: dsse.payloadType)");
	return FWA_OK;
}

enum fwa_err fwa_root_load(const struct fwa_crypto *c, const char *json, size_t len,
                           struct fwa_root *out, struct fwa_verify_scratch *s, const char **why)
{
	enum fwa_err err = parse_root_envelope(json, len, s, why);

	if (err)
		return err;
	/*
	 * The provisioned root is trusted by its fingerprint, not by a signature chain, so its
	 * payload is decoded before its self-signatures are counted.
	 */
	err = fwa_root_decode(c, s->env.payload, s->env.payload_len, out, s, why);
	if (err)
		return err;
	return threshold(
	    c, &s->env, out, &out->root,
	    "root not signed by a threshold of its own root keys (rule: root.threshold.self)", why);
}

enum fwa_err fwa_root_update(const struct fwa_crypto *c, const struct fwa_root *trusted,
                             const char *json, size_t len, struct fwa_root *next,
                             struct fwa_verify_scratch *s, const char **why)
{
	enum fwa_err err = parse_root_envelope(json, len, s, why);

	if (err)
		return err;
	/* Signatures by the trusted root first: untrusted payload bytes are parsed only after. */
	err = threshold(c, &s->env, trusted, &trusted->root,
	                "new root not signed by a threshold of the trusted root's root keys (rule: "
	                "root.threshold.previous)",
	                why);
	if (err)
		return err;
	err = fwa_root_decode(c, s->env.payload, s->env.payload_len, next, s, why);
	if (err)
		return err;
	if (trusted->version == UINT32_MAX || next->version != trusted->version + 1)
		return fail(why, FWA_ERR_ROOT_VERSION,
		            "root version must be the trusted version + 1 (rule: root.version)");
	return threshold(
	    c, &s->env, next, &next->root,
	    "new root not signed by a threshold of its own root keys (rule: root.threshold.self)",
	    why);
}

enum fwa_err fwa_root_check_expiry(const struct fwa_root *root, int64_t now, const char **why)
{
	if (now >= root->expires)
		return fail(why, FWA_ERR_EXPIRED, "root metadata has expired (rule: root.expires)");
	return FWA_OK;
}
