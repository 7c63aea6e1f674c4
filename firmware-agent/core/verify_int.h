/*
 * verify_int.h - helpers shared by the verifier's source files (dsse.c, root.c, manifest.c);
 * not part of the public contract.
 */
#ifndef FWA_VERIFY_INT_H
#define FWA_VERIFY_INT_H

#include "fwa/verify.h"

/* Set *why (when why is not NULL) and return err. */
static inline enum fwa_err fail(const char **why, enum fwa_err err, const char *reason)
{
	if (why)
		*why = reason;
	return err;
}

/* Decode a base64 string token into out[0..cap); TOO_LARGE / MALFORMED. */
enum fwa_err fwa_json_base64(const struct fwa_json *j, int t, uint8_t *out, size_t cap,
                             size_t *len);

/* A string token that is exactly `n` lowercase hex characters (n even), decoded into out. */
enum fwa_err fwa_json_hexlower(const struct fwa_json *j, int t, size_t n, uint8_t *out);

#endif
