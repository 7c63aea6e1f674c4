/*
 * delta.h - the host encoder of delta updates (docs/formats.md, "Delta format"), the inverse
 * of the agent core's freestanding decoder (fwa/delta.h): bsdiff's matching over a suffix array
 * of the base (libdivsufsort), an instruction stream of copy/add/insert/seek per 4 KiB sector
 * of the target, each compressed with LZSS in heatshrink's bit layout, chained by SHA-256.
 */
#ifndef OTA_DELTA_H
#define OTA_DELTA_H

#include <stddef.h>
#include <stdint.h>

/* LZSS parameters; 0 takes the defaults (OTA_DELTA_WBITS, OTA_DELTA_LBITS). */
struct ota_delta_opts {
	unsigned wbits; /* window bits, FWA_DELTA_WINDOW_MIN..FWA_DELTA_WINDOW_MAX */
	unsigned lbits; /* length bits, FWA_DELTA_LOOKAHEAD_MIN..wbits */
};

#define OTA_DELTA_WBITS 10
#define OTA_DELTA_LBITS 6

/* What a delta encoding made, besides the bytes. */
struct ota_delta_info {
	uint8_t head_sha256[32]; /* SHA-256 of the first unit: what the metadata signs */
	uint32_t units;
	uint32_t raw_units;  /* units stored uncompressed because LZSS would have grown them */
	size_t stream_bytes; /* instruction stream bytes before LZSS */
};

/*
 * Encode the delta from base[0..base_len) to target[0..target_len) into a new buffer *out of
 * *out_len bytes (the caller frees it with free()). Returns 0, or -1 with *why set (static
 * text) when an argument is out of range (empty target, sizes over 2^32-1, bad LZSS
 * parameters) or memory runs out; *out is then NULL.
 */
int ota_delta_encode(const uint8_t *base, size_t base_len, const uint8_t *target, size_t target_len,
                     const struct ota_delta_opts *opts, uint8_t **out, size_t *out_len,
                     struct ota_delta_info *info, const char **why);

#endif
