/*
 * dsse.c - the DSSE envelope (Dead Simple Signing Envelope): parsing with strict bounds, the
 * pre-authentication encoding that signatures cover, and threshold counting of signatures by
 * distinct keys of a role. Payloads are decoded elsewhere (root.c, manifest.c), and only after
 * their signatures have been counted.
 */
#include <stdint.h>
#include <string.h>

#include "fwa/verify.h"
#include "verify_int.h"

void fwa_sha256(const struct fwa_crypto *c, const void *data, size_t len, uint8_t out[32])
{
	struct fwa_sha256 h;

	c->sha256_init(&h);
	c->sha256_update(&h, data, len);
	c->sha256_final(&h, out);
}

enum fwa_err fwa_json_base64(const struct fwa_json *j, int t, uint8_t *out, size_t cap, size_t *len)
{
	if (t < 0 || (unsigned)t >= j->ntok || j->tok[t].type != FWA_JSON_STRING)
		return FWA_ERR_MALFORMED;
	size_t n = j->tok[t].end - j->tok[t].start;
	/* Refuse by length first, so that "too large" is told apart from "not base64". */
	const char *p = j->text + j->tok[t].start;
	size_t pad = (n >= 1 && p[n - 1] == '=') + (n >= 2 && p[n - 2] == '=');
	if (n / 4 * 3 > cap + pad)
		return FWA_ERR_TOO_LARGE;
	long r = fwa_base64_decode(p, n, out, cap);
	if (r < 0)
		return FWA_ERR_MALFORMED;
	*len = (size_t)r;
	return FWA_OK;
}

enum fwa_err fwa_json_hexlower(const struct fwa_json *j, int t, size_t n, uint8_t *out)
{
	if (t < 0 || (unsigned)t >= j->ntok || j->tok[t].type != FWA_JSON_STRING ||
	    j->tok[t].end - j->tok[t].start != n)
		return FWA_ERR_MALFORMED;
	const char *s = j->text + j->tok[t].start;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return FWA_ERR_MALFORMED;
	return fwa_unhex(s, n, out);
}

enum fwa_err fwa_dsse_parse(const char *json, size_t len, struct fwa_verify_scratch *s,
                            const char **why)
{
	static const char *const env_keys[] = {"payloadType", "payload", "signatures", NULL};
	static const char *const sig_keys[] = {"keyid", "sig", NULL};
	struct fwa_dsse *env = &s->env;
	struct fwa_json j;
	enum fwa_err err;
	size_t n;
	int t;

	memset(env, 0, sizeof(*env));
	if (len > FWA_ENVELOPE_MAX)
		return fail(why, FWA_ERR_TOO_LARGE, "envelope over 16 KiB (rule: dsse.size)");
	err = fwa_json_parse(&j, json, len, s->tok, FWA_JSON_MAX_TOKENS);
	if (err == FWA_ERR_TOO_LARGE)
		return fail(why, err,
		            "envelope JSON too deep or too many tokens (rule: dsse.size)");
	if (err)
		return fail(why, err, "envelope is not valid JSON (rule: dsse.json)");
	if (j.tok[0].type != FWA_JSON_OBJECT)
		return fail(why, FWA_ERR_MALFORMED,
		            "envelope is not a JSON object (rule: dsse.json)");
	if (fwa_json_only_keys(&j, 0, env_keys))
		return fail(why, FWA_ERR_MALFORMED,
		            "envelope has an unknown member (rule: dsse.keys)");

	err = fwa_json_str(&j, fwa_json_get(&j, 0, "payloadType"), env->payload_type,
	                   sizeof(env->payload_type), NULL);
	if (err == FWA_ERR_TOO_LARGE)
		return fail(why, err, "payloadType too long (rule: dsse.payloadType)");
	if (err)
		return fail(why, err,
		            "payloadType missing or not a string (rule: dsse.payloadType)");

	err =
	    fwa_json_base64(&j, fwa_json_get(&j, 0, "payload"), s->payload, sizeof(s->payload), &n);
	if (err == FWA_ERR_TOO_LARGE)
		return fail(why, err, "payload over 8 KiB (rule: dsse.payload)");
	if (err)
		return fail(why, err, "payload missing or not base64 (rule: dsse.payload)");
	env->payload = s->payload;
	env->payload_len = n;

	int sigs = fwa_json_get(&j, 0, "signatures");
	if (sigs < 0 || j.tok[sigs].type != FWA_JSON_ARRAY)
		return fail(why, FWA_ERR_MALFORMED,
		            "signatures missing or not an array (rule: dsse.signatures)");
	if (j.tok[sigs].size == 0)
		return fail(why, FWA_ERR_MALFORMED,
		            "envelope has no signature (rule: dsse.signatures)");
	if (j.tok[sigs].size > FWA_MAX_SIGS)
		return fail(why, FWA_ERR_TOO_LARGE,
		            "more than 16 signatures (rule: dsse.signatures)");
	for (unsigned i = 0; i < j.tok[sigs].size; i++) {
		struct fwa_dsse_sig *sg = &env->sigs[i];
		uint8_t id[32];

		t = fwa_json_at(&j, sigs, i);
		if (j.tok[t].type != FWA_JSON_OBJECT || fwa_json_only_keys(&j, t, sig_keys))
			return fail(why, FWA_ERR_MALFORMED,
			            "signature entry is not {keyid, sig} (rule: dsse.signatures)");
		if (fwa_json_hexlower(&j, fwa_json_get(&j, t, "keyid"), FWA_KEYID_HEX_LEN, id))
			return fail(why, FWA_ERR_MALFORMED,
			            "keyid is not 64 lowercase hex characters (rule: dsse.keyid)");
		fwa_hex(id, 32, sg->keyid);
		err = fwa_json_base64(&j, fwa_json_get(&j, t, "sig"), sg->sig, sizeof(sg->sig), &n);
		if (err == FWA_ERR_TOO_LARGE)
			return fail(why, err, "signature over 72 bytes (rule: dsse.sig)");
		if (err || n == 0)
			return fail(why, FWA_ERR_MALFORMED,
			            "sig missing, empty or not base64 (rule: dsse.sig)");
		sg->sig_len = (uint8_t)n;
		env->nsigs++;
	}
	return FWA_OK;
}

/* Feed the decimal form of n, as PAE's LEN() writes it. */
static void hash_len(const struct fwa_crypto *c, struct fwa_sha256 *h, size_t n)
{
	char d[20];
	int i = (int)sizeof(d);

	do {
		d[--i] = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	c->sha256_update(h, d + i, sizeof(d) - (size_t)i);
}

void fwa_dsse_pae_digest(const struct fwa_crypto *c, const char *payload_type,
                         const uint8_t *payload, size_t len, uint8_t out[32])
{
	struct fwa_sha256 h;
	size_t tl = strlen(payload_type);

	/* PAE = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body */
	c->sha256_init(&h);
	c->sha256_update(&h, "DSSEv1 ", 7);
	hash_len(c, &h, tl);
	c->sha256_update(&h, " ", 1);
	c->sha256_update(&h, payload_type, tl);
	c->sha256_update(&h, " ", 1);
	hash_len(c, &h, len);
	c->sha256_update(&h, " ", 1);
	c->sha256_update(&h, payload, len);
	c->sha256_final(&h, out);
}

enum fwa_err fwa_dsse_count(const struct fwa_crypto *c, const struct fwa_dsse *env,
                            const struct fwa_root *root, const struct fwa_role *role,
                            unsigned *count, const char **why)
{
	uint8_t digest[32];
	unsigned n = 0;

	fwa_dsse_pae_digest(c, env->payload_type, env->payload, env->payload_len, digest);
	/* Walk the role's keys, not the signatures: each key is counted at most once. */
	for (unsigned r = 0; r < role->nkeys && r < FWA_MAX_ROLE_KEYS; r++) {
		const struct fwa_key *k = &root->keys[role->key[r]];
		for (unsigned i = 0; i < env->nsigs; i++) {
			const struct fwa_dsse_sig *sg = &env->sigs[i];
			if (strcmp(sg->keyid, k->id) != 0)
				continue;
			enum fwa_err err = c->p256_verify(k->spki, digest, sg->sig, sg->sig_len);
			if (err == FWA_OK) {
				n++;
				break;
			}
			if (err == FWA_ERR_KEY)
				return fail(
				    why, err,
				    "a trusted key is not a usable P-256 key (rule: key.p256)");
			if (err != FWA_ERR_SIGNATURE)
				return fail(why, FWA_ERR_CRYPTO,
				            "crypto port failure (rule: crypto)");
		}
	}
	*count = n;
	return FWA_OK;
}
