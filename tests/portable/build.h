/*
 * build.h - builders of signed documents for the portable tests: root metadata and release
 * manifest payloads from a short spec, and DSSE envelopes signed at run time with the kit's
 * keys. Everything is written into caller buffers; each builder returns the length written,
 * or -1 when the buffer is too small or the kit failed.
 */
#ifndef PTEST_BUILD_H
#define PTEST_BUILD_H

#include "ptest.h"

/* Root metadata: keys are kit key indices. */
struct pt_root {
	uint32_t version;
	const char *expires; /* NULL: "2100-01-01T00:00:00Z" */
	unsigned nroot;
	unsigned root_keys[FWA_MAX_ROLE_KEYS];
	unsigned root_threshold;
	unsigned nrel;
	unsigned rel_keys[FWA_MAX_ROLE_KEYS];
	unsigned rel_threshold;
	unsigned ntime; /* role "time" (threshold time_threshold, 0 meaning 1) when ntime > 0 */
	unsigned time_keys[FWA_MAX_ROLE_KEYS];
	unsigned time_threshold;
	const char *extra; /* raw JSON appended inside the top-level object, or NULL */
};

/* A signature entry: key `key` signs; listed under the id of `as_key` (-1: its own). */
struct pt_sig {
	unsigned key;
	int as_key;
	bool corrupt; /* flip one bit of the signature */
};

struct pt_manifest {
	const char *name;
	const char *version;
	uint32_t security_version;
	const char *hw_json; /* raw JSON array, e.g. "[\"pico2_w\"]" */
	uint64_t size;
	uint8_t sha256[32];
	const char *format;
	const char *created; /* NULL: "2026-11-01T00:00:00Z" */
	const char *extra;
};

long pt_root_payload(const struct ptest_kit *kit, const struct pt_root *r, char *out, size_t cap);
long pt_manifest_payload(const struct pt_manifest *m, char *out, size_t cap);
long pt_envelope(const struct ptest_kit *kit, const char *type, const void *payload, size_t len,
                 const struct pt_sig *sigs, unsigned nsigs, char *out, size_t cap);

/* Key id (64 hex characters and a NUL) of kit key i through the kit's crypto. */
bool pt_keyid(const struct ptest_kit *kit, unsigned i, char id[FWA_KEYID_HEX_LEN + 1]);

/* Shorthand: root payload + envelope signed by `signers` (own ids, valid signatures). */
long pt_root_envelope(const struct ptest_kit *kit, const struct pt_root *r, const unsigned *signers,
                      unsigned n, char *out, size_t cap);
long pt_manifest_envelope(const struct ptest_kit *kit, const struct pt_manifest *m,
                          const unsigned *signers, unsigned n, char *out, size_t cap);

/* A default root: root keys 0,1,2 (threshold 2), release keys 3,4,5 (threshold 2). */
struct pt_root pt_root_default(uint32_t version);
/* A default manifest for hardware "pico2_w", image "image bytes" hashed through the kit. */
struct pt_manifest pt_manifest_default(const struct ptest_kit *kit);

#endif
