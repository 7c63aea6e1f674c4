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

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32); core/crc32.c. */
uint32_t fwa_crc32(const void *data, size_t len);

/* A fresh state: no update, floor 0, every field zeroed; area to write first is area 0. */
void fwa_state_init(struct fwa_state *st);

/* True when the copy's magic, format and CRC hold. */
bool fwa_state_valid(const struct fwa_state *st);

/*
 * fwa_state_load, and *from gets the format of the record it read: FWA_STATE_FORMAT, or an
 * older one that was converted in *out (fwa_state_migrate) and is not yet written back.
 */
FWA_WUR enum fwa_err fwa_state_load_from(const struct fwa_port *port, struct fwa_state *out,
                                         unsigned *area, unsigned *from);

/*
 * core/state_migrate.c: when neither copy holds a record of FWA_STATE_FORMAT, the copy an older
 * agent wrote (format 1 or 2; of two, the newer format, then the higher seq), converted in *out
 * to the current format with seq and everything that maps across kept, fields new since
 * zeroed, and the CRC set. *area gets the area it came from, *from its format. FWA_ERR_STATE
 * when neither copy decodes as an old record either, FWA_ERR_FLASH on read errors. Writes
 * nothing: the caller writes the record back with fwa_state_save, into the other area.
 */
FWA_WUR enum fwa_err fwa_state_migrate(const struct fwa_port *port, struct fwa_state *out,
                                       unsigned *area, unsigned *from);

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
