/*
 * timetoken.c - signed time: a token the server's online time key signs over the current time
 * and the nonce a device sent with its check-in. A device without a clock takes the time of a
 * token only when the root it trusts names that key and the nonce is the one it just sent, so
 * neither a token for another device nor a replayed earlier one moves its clock.
 */
#include <stdint.h>
#include <string.h>

#include "fwa/verify.h"
#include "verify_int.h"

static enum fwa_err decode(const uint8_t *payload, size_t len, const uint8_t *nonce,
                           size_t nonce_len, int64_t *out, struct fwa_verify_scratch *s,
                           const char **why)
{
	static const char *const top[] = {"_type", "spec_version", "time", "nonce", NULL};
	uint8_t got[FWA_NONCE_MAX];
	struct fwa_json j;
	enum fwa_err err;
	size_t n;
	int t;

	err = fwa_json_parse(&j, (const char *)payload, len, s->tok, FWA_JSON_MAX_TOKENS);
	if (err == FWA_ERR_TOO_LARGE)
		return fail(why, err, "time token JSON too large (rule: time.size)");
	if (err || j.tok[0].type != FWA_JSON_OBJECT)
		return fail(why, FWA_ERR_MALFORMED,
		            "time token payload is not a JSON object (rule: time.json)");
	if (!fwa_json_str_eq(&j, fwa_json_get(&j, 0, "_type"), "time"))
		return fail(why, FWA_ERR_MALFORMED, "_type must be \"time\" (rule: time._type)");
	if (!fwa_json_str_eq(&j, fwa_json_get(&j, 0, "spec_version"), FWA_SPEC_VERSION))
		return fail(why, FWA_ERR_SPEC_VERSION,
		            "spec_version must be \"1\" (rule: time.spec_version)");
	if (fwa_json_only_keys(&j, 0, top))
		return fail(why, FWA_ERR_MALFORMED,
		            "time token has an unknown member (rule: time.keys)");
	t = fwa_json_get(&j, 0, "time");
	if (t < 0 || j.tok[t].type != FWA_JSON_STRING ||
	    fwa_time_parse(j.text + j.tok[t].start, j.tok[t].end - j.tok[t].start, out))
		return fail(why, FWA_ERR_MALFORMED,
		            "time must be YYYY-MM-DDTHH:MM:SSZ (rule: time.time)");
	t = fwa_json_get(&j, 0, "nonce");
	n = t < 0 || j.tok[t].type != FWA_JSON_STRING ? 0 : (j.tok[t].end - j.tok[t].start) / 2;
	if (n < FWA_NONCE_MIN || n > FWA_NONCE_MAX || fwa_json_hexlower(&j, t, 2 * n, got))
		return fail(why, FWA_ERR_MALFORMED,
		            "nonce must be 32 to 64 lowercase hex characters (rule: time.nonce)");
	if (n != nonce_len || memcmp(got, nonce, n) != 0)
		return fail(why, FWA_ERR_NONCE,
		            "time token answers another nonce (rule: time.nonce)");
	return FWA_OK;
}

enum fwa_err fwa_time_token_verify(const struct fwa_crypto *c, const struct fwa_root *trusted,
                                   const char *json, size_t len, const uint8_t *nonce,
                                   size_t nonce_len, int64_t *out, struct fwa_verify_scratch *s,
                                   const char **why)
{
	enum fwa_err err;
	unsigned n;

	if (nonce_len < FWA_NONCE_MIN || nonce_len > FWA_NONCE_MAX)
		return fail(why, FWA_ERR_MALFORMED,
		            "the device's nonce must be 16 to 32 bytes (rule: time.nonce)");
	if (trusted->time.nkeys == 0)
		return fail(why, FWA_ERR_KEY,
		            "the trusted root names no time key (rule: root.roles.time)");
	err = fwa_dsse_parse(json, len, s, why);
	if (err)
		return err;
	if (strcmp(s->env.payload_type, FWA_PAYLOAD_TIME) != 0)
		return fail(
		    why, FWA_ERR_PAYLOAD_TYPE,
		    "payloadType must be application/vnd.ota.time+json (rule: dsse.payloadType)");
	err = fwa_dsse_count(c, &s->env, trusted, &trusted->time, &n, why);
	if (err)
		return err;
	if (n < trusted->time.threshold)
		return fail(why, FWA_ERR_THRESHOLD,
		            "time token not signed by the root's time key (rule: time.threshold)");
	return decode(s->env.payload, s->env.payload_len, nonce, nonce_len, out, s, why);
}
