/*
 * core/state.h - the agent's power-safe persistent state: one struct fwa_state written
 * alternately into the port's two raw state areas, each copy carrying a sequence number and
 * a CRC-32, so that a power loss during a write leaves the previous copy intact.
 */
#ifndef FWA_CORE_STATE_H
#define FWA_CORE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "fwa/agent.h"

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32). */
uint32_t fwa_crc32(const void *data, size_t len);

/* A fresh state: no update, floor 0, every field zeroed; area to write first is area 0. */
void fwa_state_init(struct fwa_state *st);

/* True when the copy's magic, format and CRC hold. */
bool fwa_state_valid(const struct fwa_state *st);

/*
 * Write *st (seq incremented, crc set) into the area other than *area: erase, then program the
 * record padded to prog_size. On success *area becomes that area. On error *area is unchanged,
 * the other copy is still the valid one, and the returned error is FWA_ERR_FLASH
 * (FWA_ERR_STATE when the geometry cannot hold the record).
 */
FWA_WUR enum fwa_err fwa_state_save(const struct fwa_port *port,
                                    const struct fwa_flash_geometry *geo, struct fwa_state *st,
                                    unsigned *area);

#endif
