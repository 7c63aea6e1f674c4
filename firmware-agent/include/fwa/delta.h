/*
 * fwa/delta.h - the freestanding decoder of delta updates (docs/formats.md, "Delta format").
 *
 * A delta turns the image in the ACTIVE slot (the base, read through the port's active_read)
 * into the new image, written in order into the INACTIVE slot (slot_erase / slot_program), one
 * 4 KiB output sector per unit of the delta. Each unit is authenticated before a byte of it is
 * decoded: the signed delta metadata names the SHA-256 of the first unit, and every unit but the
 * last ends with the SHA-256 of the next one (a hash chain), so the decoder never sees input that
 * the release keys did not sign. Inside a unit: a bsdiff-style instruction stream (copy, add,
 * insert, seek over the base) compressed with LZSS in heatshrink's bit layout, its window reset
 * at every unit.
 *
 * Memory: struct fwa_delta (about 12.6 KiB: one unit of input, the LZSS window, a SHA-256 state)
 * and a caller-given page buffer of FWA_DELTA_SECTOR bytes. No heap.
 *
 * Resuming: d->ck is the checkpoint. It changes only after a whole unit was decoded and its
 * sector erased and programmed, and then names where the next unit starts in the delta and in
 * the output, the base position and the next unit's expected SHA-256. A caller that persists
 * it (any copy of it, at any time) can restart after a power cut with fwa_delta_begin(ck) and
 * the delta bytes from ck.in_off: the decoder rewrites the slot from ck.out_off on, in order.
 *
 * Errors: FWA_ERR_DELTA for input that is not a valid delta for these sizes (bad header, a
 * unit whose SHA-256 is not the one expected, an instruction reading outside the base or
 * writing past the unit's sector or the image, trailing data); FWA_ERR_FLASH when the port
 * fails; FWA_ERR_BUSY for a misuse (fed after an error or after the end). After any error the
 * decoder stays failed; d->why names the rule in a few words.
 */
#ifndef FWA_DELTA_H
#define FWA_DELTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fwa/err.h"
#include "fwa/port.h"
#include "fwa/verify.h"

#define FWA_DELTA_MAGIC "FWAD"
#define FWA_DELTA_VERSION 1
#define FWA_DELTA_HEADER 16      /* bytes of the header in front of the first unit */
#define FWA_DELTA_SECTOR 4096u   /* target bytes one unit produces (the last may produce less) */
#define FWA_DELTA_UNIT_MAX 8192u /* bytes of one unit: [header] + 2 + payload + [32] */
#define FWA_DELTA_WINDOW_MIN 4   /* LZSS window bits */
#define FWA_DELTA_WINDOW_MAX 12
#define FWA_DELTA_LOOKAHEAD_MIN 2 /* LZSS length bits, at most the window bits */

/* What the signed delta metadata and the release manifest say about the delta. */
struct fwa_delta_params {
	uint32_t base_size;      /* bytes of the base image at the start of the active slot */
	uint32_t target_size;    /* bytes of the image to produce */
	uint32_t delta_size;     /* bytes of the delta */
	uint8_t head_sha256[32]; /* SHA-256 of the first unit (header included) */
};

/* The resumable position; all zero but next_sha256 (= head_sha256) at the start. */
struct fwa_delta_ckpt {
	uint32_t in_off;         /* delta bytes consumed: the next unit starts here */
	uint32_t out_off;        /* target bytes written (a multiple of FWA_DELTA_SECTOR) */
	uint32_t base_pos;       /* base read position carried from unit to unit */
	uint8_t next_sha256[32]; /* expected SHA-256 of the unit starting at in_off */
	uint8_t wbits, lbits;    /* LZSS parameters from the header (0 before it was read) */
	uint8_t pad[2];
};

/* The decoder; members are private but for ck (the checkpoint) and why. */
struct fwa_delta {
	const struct fwa_port *port;
	struct fwa_delta_params p;
	struct fwa_delta_ckpt ck;
	const char *why; /* reason of the last error, "" when none */
	uint8_t *page;   /* caller's FWA_DELTA_SECTOR bytes: the sector being produced */
	uint32_t erase_size, prog_size;
	uint32_t fill;     /* bytes of the current unit received */
	uint32_t unit_len; /* its whole length, 0 until its length field arrived */
	bool failed, done;
	struct fwa_sha256 sha;
	uint8_t unit[FWA_DELTA_UNIT_MAX];
	uint8_t window[1u << FWA_DELTA_WINDOW_MAX];
};

/*
 * Start an apply (ck NULL: from the beginning, with next_sha256 = p->head_sha256) or resume
 * one from a checkpoint kept earlier (ck->in_off/out_off at a unit boundary of this delta).
 * page: FWA_DELTA_SECTOR bytes, owned by the caller, used until the apply ends. The port must
 * have active_read; its erase and program granules must divide FWA_DELTA_SECTOR. Checks the
 * sizes against the slot (FWA_ERR_IMAGE_SIZE when the target does not fit), the checkpoint
 * (FWA_ERR_DELTA when inconsistent) and the port (FWA_ERR_BUSY when it cannot apply deltas).
 * Writes nothing.
 */
FWA_WUR enum fwa_err fwa_delta_begin(struct fwa_delta *d, const struct fwa_port *port,
                                     const struct fwa_delta_params *p,
                                     const struct fwa_delta_ckpt *ck, uint8_t *page);

/*
 * Feed the next len bytes of the delta (the stream continues at d->ck.in_off + what was fed
 * since). *used gets how many were taken: all of them, or fewer when a unit was completed
 * (verified, decoded and its sector written), so that the caller can keep d->ck before it
 * feeds the rest. Bytes after the delta's end are refused with FWA_ERR_DELTA. fwa_delta_done()
 * tells when the last sector is written.
 */
FWA_WUR enum fwa_err fwa_delta_feed(struct fwa_delta *d, const uint8_t *in, size_t len,
                                    size_t *used);

/* True when every target byte is written (ck.out_off == target_size, rounded to sectors). */
bool fwa_delta_done(const struct fwa_delta *d);

#endif
