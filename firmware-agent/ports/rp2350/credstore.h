/*
 * credstore.h - the RP2350 port's renewed device credentials in flash, power-cut safe and
 * freestanding (tested on the host and on the emulated Cortex-M33: tests/portable/t_credstore.c).
 *
 * The store is two copies of one record in a flash area (docs/rp2350.md, "Credential
 * renewal"): the last two sectors of the identity partition. A record holds the pair in use
 * when it is not the provisioned one (`current`), and the pending pair of a renewal (its key,
 * then its certificate), each as opaque bytes (the port keeps a DER key and a NUL-terminated
 * PEM chain). Every change writes a whole new record, with the next sequence number and a
 * CRC-32, into the copy that does not hold the newest valid record; the other copy is never
 * touched, so a power cut before or during any erase or program leaves the record as it was
 * before the change, and after the last program the record as it is after it.
 *
 * A record is bound to the provisioned identity by a 32-byte tag (the port: SHA-256 of the
 * provisioned device certificate): records of another tag are ignored, so that re-provisioning
 * a device with a new pair is never overridden by credentials renewed for the old one.
 *
 * Layout of a copy (little-endian): "FWCR" magic, u32 sequence, u32 flags, 32-byte tag, four
 * u16 lengths (current key, current certificate, pending key, pending certificate), the four
 * values back to back, then a CRC-32 (IEEE 802.3) over everything before it; the rest of the
 * copy is 0xFF.
 *
 * Functions return FWA_OK, FWA_ERR_FLASH when a flash operation fails (the record in flash
 * is then the one before the change), FWA_ERR_TOO_LARGE when the values do not fit a copy, or
 * FWA_ERR_BUSY when the change needs a state the store is not in (a certificate without a
 * pending key). Nothing is allocated: the caller provides the store and its buffers.
 */
#ifndef FWA_RP2350_CREDSTORE_H
#define FWA_RP2350_CREDSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fwa/err.h"

#define FWA_CREDSTORE_HEAD 52u /* magic, sequence, flags, tag, lengths */

/* The flash area of the two copies: copy i at offset i * copy_size. */
struct fwa_credstore_flash {
	void *ctx;
	uint32_t copy_size; /* a multiple of the erase granule */
	uint32_t prog_size; /* program granule; copy_size is a multiple of it */
	enum fwa_err (*read)(void *ctx, uint32_t off, void *buf, uint32_t len);
	enum fwa_err (*erase)(void *ctx, uint32_t off, uint32_t len);
	enum fwa_err (*program)(void *ctx, uint32_t off, const void *data, uint32_t len);
};

/* A value of the record: points into the store's `rec` buffer; len 0 when absent. */
struct fwa_credstore_val {
	const uint8_t *p;
	uint32_t len;
};

struct fwa_credstore {
	struct fwa_credstore_flash flash;
	uint8_t tag[32];
	uint8_t *rec;  /* copy_size bytes: the newest valid record */
	uint8_t *work; /* copy_size bytes: the record being written */
	int copy;      /* the copy holding the newest valid record, -1: none */
	uint32_t seq;
	struct fwa_credstore_val cur_key, cur_cert, new_key, new_cert;
};

/*
 * Set up *s over `flash` with the identity tag and two caller-owned buffers of copy_size
 * bytes each, and read the newest valid record of this tag (none: the provisioned pair is in
 * use and nothing is pending). FWA_ERR_FLASH when a copy cannot be read; FWA_ERR_TOO_LARGE
 * when copy_size is too small for a record head or not below 64 KiB (the lengths are u16).
 */
FWA_WUR enum fwa_err fwa_credstore_open(struct fwa_credstore *s,
                                        const struct fwa_credstore_flash *flash,
                                        const uint8_t tag[32], uint8_t *rec, uint8_t *work);

/* A pending key and certificate wait for their first use. */
bool fwa_credstore_pending(const struct fwa_credstore *s);

/*
 * Persist a new pending key (the current pair kept, any pending certificate dropped: it was
 * issued for an older key).
 */
FWA_WUR enum fwa_err fwa_credstore_set_key(struct fwa_credstore *s, const void *key, uint32_t len);

/* Persist the pending key's certificate; FWA_ERR_BUSY without a pending key. */
FWA_WUR enum fwa_err fwa_credstore_set_cert(struct fwa_credstore *s, const void *cert,
                                            uint32_t len);

/* Make the pending pair the pair in use; FWA_ERR_BUSY when no pair is pending. */
FWA_WUR enum fwa_err fwa_credstore_commit(struct fwa_credstore *s);

#endif
