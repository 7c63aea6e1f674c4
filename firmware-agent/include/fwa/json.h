/*
 * fwa/json.h - a bounded, allocation-free JSON tokenizer (in the manner of jsmn) with the
 * strict checks signed metadata needs: full RFC 8259 syntax, no duplicate object keys, no
 * trailing bytes, depth and token bounds. Tokens point into the caller's text; nothing is
 * copied until a getter is asked to.
 */
#ifndef FWA_JSON_H
#define FWA_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fwa/err.h"

#define FWA_JSON_MAX_DEPTH 16

enum fwa_json_type {
	FWA_JSON_OBJECT = 1,
	FWA_JSON_ARRAY,
	FWA_JSON_STRING, /* start/end exclude the quotes; escapes are left in place */
	FWA_JSON_NUMBER,
	FWA_JSON_TRUE,
	FWA_JSON_FALSE,
	FWA_JSON_NULL,
};

struct fwa_json_tok {
	uint8_t type; /* enum fwa_json_type */
	uint8_t pad;
	uint16_t size;  /* members of an object (key/value pairs) or elements of an array */
	uint32_t start; /* byte offsets into the text */
	uint32_t end;
	uint32_t next; /* index of the token after this one and all its children */
};

struct fwa_json {
	const char *text;
	size_t len;
	struct fwa_json_tok *tok;
	unsigned ntok;
};

/*
 * Tokenize the whole of text[0..len) into tok[0..cap). One top-level value, optionally
 * surrounded by whitespace. FWA_ERR_TOO_LARGE when cap, FWA_JSON_MAX_DEPTH or 32-bit offsets
 * would be exceeded; FWA_ERR_MALFORMED for any syntax error or duplicate key.
 */
FWA_WUR enum fwa_err fwa_json_parse(struct fwa_json *j, const char *text, size_t len,
                                    struct fwa_json_tok *tok, unsigned cap);

/* Index of the value of member `key` of object token `obj`, or -1 when absent / not an object. */
int fwa_json_get(const struct fwa_json *j, int obj, const char *key);
/* Index of element i of array token `arr`, or -1. */
int fwa_json_at(const struct fwa_json *j, int arr, unsigned i);

/*
 * Copy the unescaped string value of token `t` into out[0..cap) with a NUL. Fails with
 * FWA_ERR_MALFORMED when not a string or it holds \u0000, FWA_ERR_TOO_LARGE over cap - 1.
 * The length is stored in *len when len is not NULL.
 */
FWA_WUR enum fwa_err fwa_json_str(const struct fwa_json *j, int t, char *out, size_t cap,
                                  size_t *len);
/* Compare the unescaped string value of token t with s. */
bool fwa_json_str_eq(const struct fwa_json *j, int t, const char *s);
/* A non-negative integer without fraction or exponent, at most max. */
FWA_WUR enum fwa_err fwa_json_uint(const struct fwa_json *j, int t, uint64_t max, uint64_t *out);
/* A boolean. */
FWA_WUR enum fwa_err fwa_json_bool(const struct fwa_json *j, int t, bool *out);
/* Every member key of object `obj` is one of the NULL-terminated `allowed` list. */
FWA_WUR enum fwa_err fwa_json_only_keys(const struct fwa_json *j, int obj,
                                        const char *const *allowed);

/*
 * A tiny bounded JSON writer for requests the agent sends: appends to buf, remembers overflow,
 * escapes strings. fwa_jw_end() returns the length, or -1 if anything overflowed.
 */
struct fwa_jw {
	char *buf;
	size_t cap;
	size_t len;
	bool overflow;
	bool need_comma;
};
void fwa_jw_init(struct fwa_jw *w, char *buf, size_t cap);
void fwa_jw_obj_open(struct fwa_jw *w);
void fwa_jw_obj_close(struct fwa_jw *w);
void fwa_jw_arr_open(struct fwa_jw *w, const char *key);
void fwa_jw_arr_close(struct fwa_jw *w);
void fwa_jw_key(struct fwa_jw *w, const char *key); /* then one value call, or an open */
void fwa_jw_str(struct fwa_jw *w, const char *key, const char *val); /* key NULL in arrays */
void fwa_jw_uint(struct fwa_jw *w, const char *key, uint64_t val);
void fwa_jw_bool(struct fwa_jw *w, const char *key, bool val);
long fwa_jw_end(struct fwa_jw *w);

#endif
