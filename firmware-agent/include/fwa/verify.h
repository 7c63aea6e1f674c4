/*
 * fwa/verify.h - the one verifier of signed metadata, shared by the device agent, the signer
 * and the server.
 *
 * Freestanding C11: no heap, no stdio. Every function works on caller-supplied memory with
 * bounds stated below; inputs over a bound are refused with FWA_ERR_TOO_LARGE, never truncated.
 * Crypto (SHA-256, ECDSA P-256 verification) is reached only through struct fwa_crypto, which
 * a port provides (the host one, over OpenSSL, is fwa_crypto_openssl() in fwa/crypto_openssl.h).
 *
 * Formats (docs/formats.md): DSSE envelopes whose payload is root metadata
 * (FWA_PAYLOAD_ROOT) or a release manifest (FWA_PAYLOAD_MANIFEST). A payload is parsed only
 * after a threshold of its signatures verified.
 *
 * Every fallible function returns FWA_OK or an error code and, when `why` is not NULL, points
 * *why at a static one-line reason naming the rule that failed (never NULL on error). On error
 * the output structs hold unspecified contents and must not be used.
 */
#ifndef FWA_VERIFY_H
#define FWA_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fwa/err.h"

#define FWA_PAYLOAD_ROOT "application/vnd.ota.root+json"
#define FWA_PAYLOAD_MANIFEST "application/vnd.ota.manifest+json"
#define FWA_PAYLOAD_DELTA "application/vnd.ota.delta+json"
#define FWA_PAYLOAD_TIME "application/vnd.ota.time+json"
#define FWA_DELTA_FORMAT "fwad1" /* the delta format fwa/delta.h decodes */
#define FWA_SPEC_VERSION "1"

/* Bounds. */
#define FWA_ENVELOPE_MAX 16384  /* bytes of envelope JSON */
#define FWA_PAYLOAD_MAX 8192    /* bytes of decoded payload */
#define FWA_JSON_MAX_TOKENS 512 /* tokens in one JSON document */
#define FWA_PAYLOAD_TYPE_MAX 64
#define FWA_KEYID_HEX_LEN 64 /* lowercase hex SHA-256 of the DER SubjectPublicKeyInfo */
#define FWA_SPKI_P256_LEN 91 /* DER SPKI of an uncompressed P-256 public key */
#define FWA_SIG_MAX 72       /* DER ECDSA-Sig-Value for P-256 */
#define FWA_MAX_SIGS 16      /* signatures in one envelope */
#define FWA_MAX_KEYS 16      /* keys listed in one root (all roles) */
#define FWA_MAX_ROLE_KEYS 8  /* key ids in one role */
#define FWA_NAME_MAX 64      /* release name */
#define FWA_SEMVER_MAX 64    /* semantic version string */
#define FWA_MAX_HW 8         /* hardware variants per manifest */
#define FWA_HW_MAX 32        /* one hardware variant string */
#define FWA_FORMAT_MAX 16    /* image format string */
#define FWA_MAX_SERVER_CAS 2 /* server CA pins in one root: the current CA and the next */
#define FWA_NONCE_MIN 16     /* bytes of a time token's nonce */
#define FWA_NONCE_MAX 32

/*
 * The crypto port. The host implementation uses OpenSSL; the RP2350 one the SHA-256
 * accelerator and mbedTLS. State lives in the caller's struct fwa_sha256 so that no heap is
 * needed and an abandoned hash leaks nothing.
 */
struct fwa_sha256 {
	_Alignas(8) uint8_t opaque[512];
};

struct fwa_crypto {
	void (*sha256_init)(struct fwa_sha256 *h);
	void (*sha256_update)(struct fwa_sha256 *h, const void *data, size_t len);
	void (*sha256_final)(struct fwa_sha256 *h, uint8_t out[32]);
	/*
	 * Verify a DER ECDSA signature over a SHA-256 digest with a P-256 public key given as
	 * its 91-byte DER SubjectPublicKeyInfo. Returns FWA_OK when valid, FWA_ERR_SIGNATURE
	 * when not, FWA_ERR_KEY when the key is unusable.
	 */
	enum fwa_err (*p256_verify)(const uint8_t spki[FWA_SPKI_P256_LEN], const uint8_t digest[32],
	                            const uint8_t *sig, size_t sig_len);
};

/* One-shot SHA-256 through the port. */
void fwa_sha256(const struct fwa_crypto *c, const void *data, size_t len, uint8_t out[32]);

/* ---- JSON, base64, time, semver: see fwa/json.h for the tokenizer ---- */

/* Semantic versions 2.0.0 (no leading 'v'); build metadata is ignored for precedence. */
bool fwa_semver_valid(const char *s, size_t len);
/* Precedence of two valid versions: <0, 0, >0. Invalid input compares as below any valid one. */
int fwa_semver_cmp(const char *a, const char *b);

/* RFC 3339 UTC time "YYYY-MM-DDTHH:MM:SSZ" to Unix seconds. */
FWA_WUR enum fwa_err fwa_time_parse(const char *s, size_t len, int64_t *out);
/* Unix seconds to "YYYY-MM-DDTHH:MM:SSZ" (21 bytes with the NUL). */
void fwa_time_format(int64_t t, char out[21]);

/* ---- DSSE ---- */

struct fwa_dsse_sig {
	char keyid[FWA_KEYID_HEX_LEN + 1];
	uint8_t sig[FWA_SIG_MAX];
	uint8_t sig_len;
};

struct fwa_dsse {
	char payload_type[FWA_PAYLOAD_TYPE_MAX + 1];
	const uint8_t *payload; /* decoded bytes, inside the scratch's payload buffer */
	size_t payload_len;
	uint8_t nsigs;
	struct fwa_dsse_sig sigs[FWA_MAX_SIGS];
};

#include "fwa/json.h"

/* Working memory of one verification, owned by the caller (about 17 KiB). */
struct fwa_verify_scratch {
	uint8_t payload[FWA_PAYLOAD_MAX];
	struct fwa_json_tok tok[FWA_JSON_MAX_TOKENS];
	struct fwa_dsse env;
};

/*
 * Parse a DSSE envelope (JSON text, not NUL-terminated) into scratch->env, the payload
 * decoded into scratch->payload. Checks structure and bounds only, no signature.
 */
FWA_WUR enum fwa_err fwa_dsse_parse(const char *json, size_t len, struct fwa_verify_scratch *s,
                                    const char **why);

/* SHA-256 of DSSE's pre-authentication encoding PAE(type, payload). */
void fwa_dsse_pae_digest(const struct fwa_crypto *c, const char *payload_type,
                         const uint8_t *payload, size_t len, uint8_t out[32]);

/* ---- Root metadata ---- */

struct fwa_root;
struct fwa_role;

/*
 * Threshold counting: *count receives the number of distinct keys of `role` (a role of `root`)
 * that have at least one valid signature in `env` over PAE(env->payload_type, env->payload).
 * A key id signing twice counts once; unknown key ids and invalid signatures count zero.
 * Returns FWA_OK, or FWA_ERR_KEY / FWA_ERR_CRYPTO when the crypto port cannot use a key.
 */
FWA_WUR enum fwa_err fwa_dsse_count(const struct fwa_crypto *c, const struct fwa_dsse *env,
                                    const struct fwa_root *root, const struct fwa_role *role,
                                    unsigned *count, const char **why);

struct fwa_key {
	char id[FWA_KEYID_HEX_LEN + 1];
	uint8_t spki[FWA_SPKI_P256_LEN];
};

struct fwa_role {
	uint8_t nkeys;
	uint8_t threshold;
	uint8_t key[FWA_MAX_ROLE_KEYS]; /* indices into fwa_root.keys */
};

struct fwa_root {
	uint32_t version;
	int64_t expires; /* Unix seconds */
	uint8_t nkeys;
	struct fwa_key keys[FWA_MAX_KEYS];
	struct fwa_role root;
	struct fwa_role release;
	struct fwa_role time; /* nkeys 0: the root names no time key (signed time unavailable) */
	uint8_t nserver_cas;  /* 0: the root says nothing of the server CA (the provisioned one) */
	/* SHA-256 of the DER SubjectPublicKeyInfo of each server CA a device may trust. */
	uint8_t server_ca[FWA_MAX_SERVER_CAS][32];
	uint8_t digest[32]; /* SHA-256 of the payload bytes: this root's fingerprint */
};

/*
 * Decode root metadata payload bytes (already verified, or for inspection). Checks every
 * field, that each key is an ECDSA P-256 SPKI whose id is its SHA-256, that role key ids are
 * listed keys, and 1 <= threshold <= number of role keys.
 */
FWA_WUR enum fwa_err fwa_root_decode(const struct fwa_crypto *c, const uint8_t *payload, size_t len,
                                     struct fwa_root *out, struct fwa_verify_scratch *s,
                                     const char **why);

/*
 * A provisioned (initially trusted) root: an envelope of type FWA_PAYLOAD_ROOT whose payload
 * decodes and is signed by a threshold of its own root keys. Expiry is not checked here.
 */
FWA_WUR enum fwa_err fwa_root_load(const struct fwa_crypto *c, const char *json, size_t len,
                                   struct fwa_root *out, struct fwa_verify_scratch *s,
                                   const char **why);

/*
 * TUF rotation: `json` must be root version trusted->version + 1 exactly, signed by a
 * threshold of the trusted root's root keys and by a threshold of its own root keys.
 * Expiry of the new root is not checked here (intermediate roots may have expired).
 */
FWA_WUR enum fwa_err fwa_root_update(const struct fwa_crypto *c, const struct fwa_root *trusted,
                                     const char *json, size_t len, struct fwa_root *next,
                                     struct fwa_verify_scratch *s, const char **why);

/* FWA_ERR_EXPIRED when now >= root->expires. */
FWA_WUR enum fwa_err fwa_root_check_expiry(const struct fwa_root *root, int64_t now,
                                           const char **why);

/* ---- Signed time: a token from the time key of the root, bound to the device's nonce ---- */

/*
 * Verify a time token envelope: type FWA_PAYLOAD_TIME, signed by the time role of `trusted`
 * (FWA_ERR_KEY when the root lists no time key), then decode it and check that its nonce is
 * exactly `nonce` (nonce_len bytes, FWA_NONCE_MIN to FWA_NONCE_MAX): FWA_ERR_NONCE when it is
 * another's or an earlier one's. *out gets the signed time (Unix seconds).
 */
FWA_WUR enum fwa_err fwa_time_token_verify(const struct fwa_crypto *c,
                                           const struct fwa_root *trusted, const char *json,
                                           size_t len, const uint8_t *nonce, size_t nonce_len,
                                           int64_t *out, struct fwa_verify_scratch *s,
                                           const char **why);

/* ---- Release manifests ---- */

struct fwa_manifest {
	char name[FWA_NAME_MAX + 1];
	char version[FWA_SEMVER_MAX + 1];
	uint32_t security_version;
	uint8_t nhw;
	char hw[FWA_MAX_HW][FWA_HW_MAX + 1];
	uint64_t image_size;
	uint8_t image_sha256[32];
	char image_format[FWA_FORMAT_MAX + 1];
	int64_t created;    /* Unix seconds */
	uint8_t digest[32]; /* SHA-256 of the payload bytes: identifies the release */
};

/* Decode manifest payload bytes (already verified, or for inspection). */
FWA_WUR enum fwa_err fwa_manifest_decode(const struct fwa_crypto *c, const uint8_t *payload,
                                         size_t len, struct fwa_manifest *out,
                                         struct fwa_verify_scratch *s, const char **why);

/*
 * Verify a manifest envelope: type FWA_PAYLOAD_MANIFEST, a threshold of valid signatures by
 * distinct release keys of `trusted` (a key id signing twice counts once; unknown key ids and
 * invalid signatures count zero), then decode.
 */
FWA_WUR enum fwa_err fwa_manifest_verify(const struct fwa_crypto *c, const struct fwa_root *trusted,
                                         const char *json, size_t len, struct fwa_manifest *out,
                                         struct fwa_verify_scratch *s, const char **why);

/* FWA_ERR_HW_VARIANT unless hw_variant is listed; FWA_ERR_ROLLBACK if security_version < floor. */
FWA_WUR enum fwa_err fwa_manifest_check_target(const struct fwa_manifest *m, const char *hw_variant,
                                               uint32_t floor, const char **why);

/* FWA_ERR_IMAGE_SIZE / FWA_ERR_IMAGE_HASH unless the image matches. */
FWA_WUR enum fwa_err fwa_manifest_check_image(const struct fwa_manifest *m, uint64_t size,
                                              const uint8_t sha256[32], const char **why);

/* ---- Delta metadata: a signed statement that a delta turns one image into a release's ---- */

struct fwa_delta_meta {
	uint8_t release_digest[32]; /* fwa_manifest.digest of the release it produces */
	uint32_t target_size;       /* = the manifest's image size */
	uint8_t target_sha256[32];  /* = the manifest's image SHA-256 */
	uint32_t base_size;         /* the image the delta applies to */
	uint8_t base_sha256[32];
	uint32_t delta_size; /* bytes of the delta */
	uint8_t
	    delta_sha256[32]; /* SHA-256 of the delta's first unit: the head of its hash chain */
	int64_t created;      /* Unix seconds */
	uint8_t digest[32];   /* SHA-256 of the payload bytes */
};

/* Decode delta metadata payload bytes (already verified, or for inspection). */
FWA_WUR enum fwa_err fwa_delta_meta_decode(const struct fwa_crypto *c, const uint8_t *payload,
                                           size_t len, struct fwa_delta_meta *out,
                                           struct fwa_verify_scratch *s, const char **why);

/*
 * Verify a delta metadata envelope: type FWA_PAYLOAD_DELTA, a threshold of valid signatures by
 * distinct release keys of `trusted` (as for manifests), then decode.
 */
FWA_WUR enum fwa_err fwa_delta_meta_verify(const struct fwa_crypto *c,
                                           const struct fwa_root *trusted, const char *json,
                                           size_t len, struct fwa_delta_meta *out,
                                           struct fwa_verify_scratch *s, const char **why);

/*
 * FWA_ERR_MALFORMED unless the metadata names this release (its digest) and its image (size
 * and SHA-256): a delta signed for another release is never applied towards this one.
 */
FWA_WUR enum fwa_err fwa_delta_meta_check(const struct fwa_delta_meta *d,
                                          const struct fwa_manifest *m, const char **why);

/* ---- Encoding helpers shared by the agent, signer and server ---- */

/* Standard base64 with padding. Returns bytes written, or -1 when malformed or over cap. */
long fwa_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);
/* Returns characters written (no NUL added), or -1 when over cap. */
long fwa_base64_encode(const uint8_t *in, size_t len, char *out, size_t cap);
/* Lowercase hex; out gets 2*len characters and a NUL. */
void fwa_hex(const uint8_t *in, size_t len, char *out);
/* Exactly 2*len lowercase or uppercase hex characters; FWA_ERR_MALFORMED otherwise. */
FWA_WUR enum fwa_err fwa_unhex(const char *in, size_t hexlen, uint8_t *out);

#endif
