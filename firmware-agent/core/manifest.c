/*
 * manifest.c - release manifests: decoding with every field checked, verification against
 * the release role of a trusted root, and the checks a device or the server makes before it
 * accepts an image (hardware variant, anti-rollback floor, size and SHA-256); and delta
 * metadata, the release keys' statement that a delta turns a base image into a release's.
 */
#include <stdint.h>
#include <string.h>

#include "fwa/verify.h"
#include "verify_int.h"

/* 2^53 - 1: the largest integer every JSON reader represents exactly. */
#define IMAGE_SIZE_MAX 9007199254740991ull

static bool name_char(char ch, bool upper)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
	       ch == '-' || (upper && ch >= 'A' && ch <= 'Z');
}

/* A string of 1..cap-1 characters from [A-Za-z0-9._-] (lowercase only unless `upper`). */
static enum fwa_err ident(const struct fwa_json *j, int t, char *out, size_t cap, bool upper)
{
	size_t n;
	enum fwa_err err = fwa_json_str(j, t, out, cap, &n);

	if (err)
		return err;
	if (n == 0)
		return FWA_ERR_MALFORMED;
	for (size_t i = 0; i < n; i++)
		if (!name_char(out[i], upper))
			return FWA_ERR_MALFORMED;
	return FWA_OK;
}

static enum fwa_err ident_fail(enum fwa_err err, const char **why, const char *malformed,
                               const char *too_large)
{
	return fail(why, err == FWA_ERR_TOO_LARGE ? err : FWA_ERR_MALFORMED,
	            err == FWA_ERR_TOO_LARGE ? too_large : malformed);
}

enum fwa_err fwa_manifest_decode(const struct fwa_crypto *c, const uint8_t *payload, size_t len,
                                 struct fwa_manifest *out, struct fwa_verify_scratch *s,
                                 const char **why)
{
	static const char *const top[] = {"_type",   "spec_version",     "name",
	                                  "version", "security_version", "hw_variants",
	                                  "image",   "created",          NULL};
	static const char *const image_keys[] = {"size", "sha256", "format", NULL};
	struct fwa_json j;
	enum fwa_err err;
	uint64_t v;
	size_t n;
	int t;

	memset(out, 0, sizeof(*out));
	if (len > FWA_PAYLOAD_MAX)
		return fail(why, FWA_ERR_TOO_LARGE,
		            "manifest payload over 8 KiB (rule: manifest.size)");
	err = fwa_json_parse(&j, (const char *)payload, len, s->tok, FWA_JSON_MAX_TOKENS);
	if (err == FWA_ERR_TOO_LARGE)
		return fail(why, err,
		            "manifest JSON too deep or too many tokens (rule: manifest.size)");
	if (err || j.tok[0].type != FWA_JSON_OBJECT)
		return fail(why, FWA_ERR_MALFORMED,
		            "manifest payload is not a JSON object (rule: manifest.json)");
	if (!fwa_json_str_eq(&j, fwa_json_get(&j, 0, "_type"), "manifest"))
		return fail(why, FWA_ERR_MALFORMED,
		            "_type must be \"manifest\" (rule: manifest._type)");
	if (!fwa_json_str_eq(&j, fwa_json_get(&j, 0, "spec_version"), FWA_SPEC_VERSION))
		return fail(why, FWA_ERR_SPEC_VERSION,
		            "spec_version must be \"1\" (rule: manifest.spec_version)");
	if (fwa_json_only_keys(&j, 0, top))
		return fail(why, FWA_ERR_MALFORMED,
		            "manifest has an unknown member (rule: manifest.keys)");

	err = ident(&j, fwa_json_get(&j, 0, "name"), out->name, sizeof(out->name), true);
	if (err)
		return ident_fail(
		    err, why,
		    "name must be 1-64 characters of [A-Za-z0-9._-] (rule: manifest.name)",
		    "name longer than 64 characters (rule: manifest.name)");
	err = fwa_json_str(&j, fwa_json_get(&j, 0, "version"), out->version, sizeof(out->version),
	                   &n);
	if (err || !fwa_semver_valid(out->version, n))
		return ident_fail(err, why,
		                  "version is not a semantic version (rule: manifest.version)",
		                  "version longer than 64 characters (rule: manifest.version)");
	if (fwa_json_uint(&j, fwa_json_get(&j, 0, "security_version"), UINT32_MAX, &v))
		return fail(why, FWA_ERR_MALFORMED,
		            "security_version must be an integer from 0 to 2^32-1 (rule: "
		            "manifest.security_version)");
	out->security_version = (uint32_t)v;

	int hw = fwa_json_get(&j, 0, "hw_variants");
	if (hw < 0 || j.tok[hw].type != FWA_JSON_ARRAY || j.tok[hw].size == 0)
		return fail(
		    why, FWA_ERR_MALFORMED,
		    "hw_variants missing, empty or not an array (rule: manifest.hw_variants)");
	if (j.tok[hw].size > FWA_MAX_HW)
		return fail(why, FWA_ERR_TOO_LARGE,
		            "more than 8 hardware variants (rule: manifest.hw_variants)");
	for (unsigned i = 0; i < j.tok[hw].size; i++) {
		err = ident(&j, fwa_json_at(&j, hw, i), out->hw[i], sizeof(out->hw[i]), false);
		if (err)
			return ident_fail(err, why,
			                  "hardware variant must be 1-32 characters of [a-z0-9._-] "
			                  "(rule: manifest.hw_variants)",
			                  "hardware variant longer than 32 characters (rule: "
			                  "manifest.hw_variants)");
		for (unsigned k = 0; k < i; k++)
			if (strcmp(out->hw[k], out->hw[i]) == 0)
				return fail(
				    why, FWA_ERR_MALFORMED,
				    "hardware variant listed twice (rule: manifest.hw_variants)");
		out->nhw++;
	}

	int img = fwa_json_get(&j, 0, "image");
	if (img < 0 || fwa_json_only_keys(&j, img, image_keys))
		return fail(
		    why, FWA_ERR_MALFORMED,
		    "image must be an object of size, sha256 and format (rule: manifest.image)");
	err = fwa_json_uint(&j, fwa_json_get(&j, img, "size"), IMAGE_SIZE_MAX, &out->image_size);
	if (err || out->image_size == 0)
		return fail(
		    why, err == FWA_ERR_TOO_LARGE ? err : FWA_ERR_MALFORMED,
		    "image.size must be an integer from 1 to 2^53-1 (rule: manifest.image.size)");
	if (fwa_json_hexlower(&j, fwa_json_get(&j, img, "sha256"), 64, out->image_sha256))
		return fail(why, FWA_ERR_MALFORMED,
		            "image.sha256 is not 64 lowercase hex characters (rule: "
		            "manifest.image.sha256)");
	err = ident(&j, fwa_json_get(&j, img, "format"), out->image_format,
	            sizeof(out->image_format), false);
	if (err)
		return ident_fail(
		    err, why,
		    "image.format must be 1-16 characters of [a-z0-9._-] (rule: "
		    "manifest.image.format)",
		    "image.format longer than 16 characters (rule: manifest.image.format)");
	t = fwa_json_get(&j, 0, "created");
	if (t < 0 || j.tok[t].type != FWA_JSON_STRING ||
	    fwa_time_parse(j.text + j.tok[t].start, j.tok[t].end - j.tok[t].start, &out->created))
		return fail(why, FWA_ERR_MALFORMED,
		            "created must be YYYY-MM-DDTHH:MM:SSZ (rule: manifest.created)");
	fwa_sha256(c, payload, len, out->digest);
	return FWA_OK;
}

enum fwa_err fwa_manifest_verify(const struct fwa_crypto *c, const struct fwa_root *trusted,
                                 const char *json, size_t len, struct fwa_manifest *out,
                                 struct fwa_verify_scratch *s, const char **why)
{
	unsigned n;
	enum fwa_err err = fwa_dsse_parse(json, len, s, why);

	if (err)
		return err;
	if (strcmp(s->env.payload_type, FWA_PAYLOAD_MANIFEST) != 0)
		return fail(why, FWA_ERR_PAYLOAD_TYPE,
		            "payloadType must be application/vnd.ota.manifest+json (rule: "
		            "dsse.payloadType)");
	err = fwa_dsse_count(c, &s->env, trusted, &trusted->release, &n, why);
	if (err)
		return err;
	if (n < trusted->release.threshold)
		return fail(why, FWA_ERR_THRESHOLD,
		            "manifest not signed by a threshold of release keys (rule: "
		            "manifest.threshold)");
	return fwa_manifest_decode(c, s->env.payload, s->env.payload_len, out, s, why);
}

enum fwa_err fwa_manifest_check_target(const struct fwa_manifest *m, const char *hw_variant,
                                       uint32_t floor, const char **why)
{
	bool listed = false;

	for (unsigned i = 0; i < m->nhw && i < FWA_MAX_HW; i++)
		if (strcmp(m->hw[i], hw_variant) == 0)
			listed = true;
	if (!listed)
		return fail(
		    why, FWA_ERR_HW_VARIANT,
		    "manifest does not list this hardware variant (rule: manifest.hw_variants)");
	if (m->security_version < floor)
		return fail(
		    why, FWA_ERR_ROLLBACK,
		    "security_version below the device's floor (rule: manifest.security_version)");
	return FWA_OK;
}

enum fwa_err fwa_manifest_check_image(const struct fwa_manifest *m, uint64_t size,
                                      const uint8_t sha256[32], const char **why)
{
	if (size != m->image_size)
		return fail(why, FWA_ERR_IMAGE_SIZE,
		            "image size differs from the manifest (rule: manifest.image.size)");
	/* No early exit: the comparison time says nothing about where the hashes differ. */
	uint8_t diff = 0;
	for (int i = 0; i < 32; i++)
		diff |= (uint8_t)(m->image_sha256[i] ^ sha256[i]);
	if (diff)
		return fail(
		    why, FWA_ERR_IMAGE_HASH,
		    "image SHA-256 differs from the manifest (rule: manifest.image.sha256)");
	return FWA_OK;
}

/* ---- delta metadata ---- */

/* An object of exactly {size, sha256} (and format when fmt is not NULL). */
static enum fwa_err sized_hash(const struct fwa_json *j, int obj, uint32_t *size, uint8_t sha[32],
                               const char *fmt)
{
	static const char *const keys[] = {"size", "sha256", NULL};
	static const char *const keys_fmt[] = {"size", "sha256", "format", NULL};
	uint64_t v;

	if (obj < 0 || fwa_json_only_keys(j, obj, fmt ? keys_fmt : keys))
		return FWA_ERR_MALFORMED;
	if (fwa_json_uint(j, fwa_json_get(j, obj, "size"), UINT32_MAX, &v) || v == 0)
		return FWA_ERR_MALFORMED;
	*size = (uint32_t)v;
	if (fwa_json_hexlower(j, fwa_json_get(j, obj, "sha256"), 64, sha))
		return FWA_ERR_MALFORMED;
	if (fmt && !fwa_json_str_eq(j, fwa_json_get(j, obj, "format"), fmt))
		return FWA_ERR_SPEC_VERSION;
	return FWA_OK;
}

enum fwa_err fwa_delta_meta_decode(const struct fwa_crypto *c, const uint8_t *payload, size_t len,
                                   struct fwa_delta_meta *out, struct fwa_verify_scratch *s,
                                   const char **why)
{
	static const char *const top[] = {"_type", "spec_version", "release", "target",
	                                  "base",  "delta",        "created", NULL};
	struct fwa_json j;
	enum fwa_err err;
	int t;

	memset(out, 0, sizeof(*out));
	if (len > FWA_PAYLOAD_MAX)
		return fail(why, FWA_ERR_TOO_LARGE, "delta payload over 8 KiB (rule: delta.size)");
	err = fwa_json_parse(&j, (const char *)payload, len, s->tok, FWA_JSON_MAX_TOKENS);
	if (err == FWA_ERR_TOO_LARGE)
		return fail(why, err, "delta JSON too deep or too many tokens (rule: delta.size)");
	if (err || j.tok[0].type != FWA_JSON_OBJECT)
		return fail(why, FWA_ERR_MALFORMED,
		            "delta payload is not a JSON object (rule: delta.json)");
	if (!fwa_json_str_eq(&j, fwa_json_get(&j, 0, "_type"), "delta"))
		return fail(why, FWA_ERR_MALFORMED, "_type must be \"delta\" (rule: delta._type)");
	if (!fwa_json_str_eq(&j, fwa_json_get(&j, 0, "spec_version"), FWA_SPEC_VERSION))
		return fail(why, FWA_ERR_SPEC_VERSION,
		            "spec_version must be \"1\" (rule: delta.spec_version)");
	if (fwa_json_only_keys(&j, 0, top))
		return fail(why, FWA_ERR_MALFORMED,
		            "delta metadata has an unknown member (rule: delta.keys)");
	if (fwa_json_hexlower(&j, fwa_json_get(&j, 0, "release"), 64, out->release_digest))
		return fail(why, FWA_ERR_MALFORMED,
		            "release is not 64 lowercase hex characters (rule: delta.release)");
	if (sized_hash(&j, fwa_json_get(&j, 0, "target"), &out->target_size, out->target_sha256,
	               NULL))
		return fail(why, FWA_ERR_MALFORMED,
		            "target must be {size: 1 to 2^32-1, sha256: 64 lowercase hex} (rule: "
		            "delta.target)");
	if (sized_hash(&j, fwa_json_get(&j, 0, "base"), &out->base_size, out->base_sha256, NULL))
		return fail(why, FWA_ERR_MALFORMED,
		            "base must be {size: 1 to 2^32-1, sha256: 64 lowercase hex} (rule: "
		            "delta.base)");
	err = sized_hash(&j, fwa_json_get(&j, 0, "delta"), &out->delta_size, out->delta_sha256,
	                 FWA_DELTA_FORMAT);
	if (err == FWA_ERR_SPEC_VERSION)
		return fail(why, err, "delta.format must be \"fwad1\" (rule: delta.delta.format)");
	if (err)
		return fail(why, FWA_ERR_MALFORMED,
		            "delta must be {size: 1 to 2^32-1, sha256: 64 lowercase hex, format} "
		            "(rule: delta.delta)");
	t = fwa_json_get(&j, 0, "created");
	if (t < 0 || j.tok[t].type != FWA_JSON_STRING ||
	    fwa_time_parse(j.text + j.tok[t].start, j.tok[t].end - j.tok[t].start, &out->created))
		return fail(why, FWA_ERR_MALFORMED,
		            "created must be YYYY-MM-DDTHH:MM:SSZ (rule: delta.created)");
	fwa_sha256(c, payload, len, out->digest);
	return FWA_OK;
}

enum fwa_err fwa_delta_meta_verify(const struct fwa_crypto *c, const struct fwa_root *trusted,
                                   const char *json, size_t len, struct fwa_delta_meta *out,
                                   struct fwa_verify_scratch *s, const char **why)
{
	unsigned n;
	enum fwa_err err = fwa_dsse_parse(json, len, s, why);

	if (err)
		return err;
	if (strcmp(s->env.payload_type, FWA_PAYLOAD_DELTA) != 0)
		return fail(why, FWA_ERR_PAYLOAD_TYPE,
		            "payloadType must be application/vnd.ota.delta+json (rule: "
		            "dsse.payloadType)");
	err = fwa_dsse_count(c, &s->env, trusted, &trusted->release, &n, why);
	if (err)
		return err;
	if (n < trusted->release.threshold)
		return fail(
		    why, FWA_ERR_THRESHOLD,
		    "delta not signed by a threshold of release keys (rule: delta.threshold)");
	return fwa_delta_meta_decode(c, s->env.payload, s->env.payload_len, out, s, why);
}

enum fwa_err fwa_delta_meta_check(const struct fwa_delta_meta *d, const struct fwa_manifest *m,
                                  const char **why)
{
	if (memcmp(d->release_digest, m->digest, 32) != 0)
		return fail(why, FWA_ERR_MALFORMED,
		            "delta made for another release (rule: delta.release)");
	if (d->target_size != m->image_size || memcmp(d->target_sha256, m->image_sha256, 32) != 0)
		return fail(why, FWA_ERR_MALFORMED,
		            "delta target differs from the release image (rule: delta.target)");
	return FWA_OK;
}
