/*
 * signer.h - the library behind ota-sign: building root and manifest payloads, DSSE
 * envelopes signed with P-256 keys, crash-safe file output, and the command-line front end.
 * Parsing of anything signed goes through the shared verifier (fwa/verify.h); this library
 * only writes.
 *
 * Functions return FWA_OK or an fwa_err code and, when `why` is not NULL, set *why to a static
 * one-line reason on error.
 */
#ifndef OTA_SIGNER_H
#define OTA_SIGNER_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include "fwa/verify.h"

/* What root metadata says; keys are 91-byte DER SPKIs. */
struct ota_root_spec {
	uint32_t version;
	int64_t expires;
	unsigned nroot;
	unsigned nrelease;
	uint8_t root_spki[FWA_MAX_ROLE_KEYS][FWA_SPKI_P256_LEN];
	uint8_t release_spki[FWA_MAX_ROLE_KEYS][FWA_SPKI_P256_LEN];
	unsigned root_threshold;
	unsigned release_threshold;
	/* The online time key(s): role "time", threshold 1; ntime 0 leaves the role out. */
	unsigned ntime;
	uint8_t time_spki[FWA_MAX_ROLE_KEYS][FWA_SPKI_P256_LEN];
	/* SHA-256 pins of the server CAs' SPKI; nserver_cas 0 leaves server_cas out. */
	unsigned nserver_cas;
	uint8_t server_ca[FWA_MAX_SERVER_CAS][32];
};

/* What a release manifest says. Strings are the caller's. */
struct ota_manifest_spec {
	const char *name;
	const char *version;
	uint32_t security_version;
	unsigned nhw;
	const char *hw[FWA_MAX_HW];
	uint64_t image_size;
	uint8_t image_sha256[32];
	const char *format;
	int64_t created;
};

/* What delta metadata says (fwa_delta_meta without the digest). */
struct ota_delta_spec {
	uint8_t release_digest[32];
	uint32_t target_size, base_size, delta_size;
	uint8_t target_sha256[32], base_sha256[32], delta_sha256[32];
	int64_t created;
};

/*
 * Compact JSON payload into buf[0..cap); *len its length (no NUL). FWA_ERR_TOO_LARGE when it
 * does not fit, FWA_ERR_MALFORMED when the spec is out of bounds. The output is not
 * validated here: callers decode it with the verifier before using it.
 */
FWA_WUR enum fwa_err ota_signer_root_payload(const struct ota_root_spec *r, char *buf, size_t cap,
                                             size_t *len, const char **why);
FWA_WUR enum fwa_err ota_signer_manifest_payload(const struct ota_manifest_spec *m, char *buf,
                                                 size_t cap, size_t *len, const char **why);
FWA_WUR enum fwa_err ota_signer_delta_payload(const struct ota_delta_spec *d, char *buf, size_t cap,
                                              size_t *len, const char **why);

/*
 * DSSE envelope of `payload` with one signature per key (over PAE(type, payload)), written to
 * out[0..cap) with a trailing newline; *outlen its length.
 */
FWA_WUR enum fwa_err ota_signer_envelope(const char *type, const void *payload, size_t len,
                                         EVP_PKEY *const *keys, unsigned nkeys, char *out,
                                         size_t cap, size_t *outlen, const char **why);

/*
 * Write a file all-or-nothing: a temporary file in the same directory, fsync, then link() into
 * place so that an existing file is never replaced (FWA_ERR_BUSY with errno EEXIST), and the
 * directory is synced. On any error nothing is left behind.
 */
FWA_WUR enum fwa_err ota_signer_write_file(const char *path, const void *data, size_t len,
                                           mode_t mode, const char **why);

/* The ota-sign command line; returns the process exit status. Messages go to out and err. */
int ota_signer_main(int argc, char **argv, FILE *out, FILE *err);

#endif
