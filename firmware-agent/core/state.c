/*
 * The agent's persistent state, written power-safe. The port gives two raw areas; the core
 * keeps two copies and always overwrites the older one, so that whatever a power cut does to
 * the write in progress (nothing, a half-erased area, a half-programmed page), the other copy
 * still decodes. The copy with the higher sequence number (serial-number arithmetic) among
 * those whose CRC holds is the current state.
 */
#include <string.h>

#include "state.h"

/* Largest program granule the padding buffer handles (RP2350: 256). */
#define PROG_MAX 256

void fwa_state_init(struct fwa_state *st)
{
	memset(st, 0, sizeof(*st));
	st->magic = FWA_STATE_MAGIC;
	st->format = FWA_STATE_FORMAT;
}

bool fwa_state_valid(const struct fwa_state *st)
{
	return st->magic == FWA_STATE_MAGIC && st->format == FWA_STATE_FORMAT &&
	       st->crc == fwa_crc32(st, offsetof(struct fwa_state, crc)) &&
	       st->phase < FWA_PHASE__COUNT && st->nevents <= FWA_OUTBOX_MAX &&
	       st->trial_slot <= 1 && st->outcome < FWA_ST__COUNT;
}

enum fwa_err fwa_state_load(const struct fwa_port *port, struct fwa_state *out, unsigned *area)
{
	unsigned from = FWA_STATE_FORMAT;

	return fwa_state_load_from(port, out, area, &from);
}

enum fwa_err fwa_state_load_from(const struct fwa_port *port, struct fwa_state *out, unsigned *area,
                                 unsigned *from)
{
	/* The second copy is compared field by field, so it needs no second struct. */
	uint32_t seq1;
	unsigned spare;
	bool ok0, ok1;
	enum fwa_err err;

	err = port->state_read(port->ctx, 1, 0, out, sizeof(*out));
	if (err != FWA_OK)
		return FWA_ERR_FLASH;
	ok1 = fwa_state_valid(out);
	seq1 = out->seq;
	err = port->state_read(port->ctx, 0, 0, out, sizeof(*out));
	if (err != FWA_OK)
		return FWA_ERR_FLASH;
	ok0 = fwa_state_valid(out);
	*from = FWA_STATE_FORMAT;
	if (ok0 && (!ok1 || (int32_t)(out->seq - seq1) > 0)) {
		if (area)
			*area = 0;
		return FWA_OK;
	}
	if (!ok1) /* no copy of this format: one of an older agent's, if any */
		return fwa_state_migrate(port, out, area ? area : &spare, from);
	err = port->state_read(port->ctx, 1, 0, out, sizeof(*out));
	if (err != FWA_OK)
		return FWA_ERR_FLASH;
	if (!fwa_state_valid(out))
		return FWA_ERR_STATE; /* changed under us: treat as unreadable */
	if (area)
		*area = 1;
	return FWA_OK;
}

enum fwa_err fwa_state_save(const struct fwa_port *port, const struct fwa_flash_geometry *geo,
                            struct fwa_state *st, unsigned *area)
{
	uint8_t page[PROG_MAX];
	unsigned target = *area ? 0 : 1;
	uint32_t whole, tail, prog = geo->prog_size;
	enum fwa_err err;

	if (prog == 0 || prog > PROG_MAX || geo->state_size < sizeof(*st))
		return FWA_ERR_STATE;
	st->seq++;
	st->magic = FWA_STATE_MAGIC;
	st->format = FWA_STATE_FORMAT;
	st->crc = fwa_crc32(st, offsetof(struct fwa_state, crc));
	whole = (uint32_t)(sizeof(*st) / prog * prog);
	tail = (uint32_t)(sizeof(*st) - whole);
	err = port->state_erase(port->ctx, target);
	if (err == FWA_OK && whole)
		err = port->state_program(port->ctx, target, 0, st, whole);
	if (err == FWA_OK && tail) {
		memset(page, 0xff, prog);
		memcpy(page, (const uint8_t *)st + whole, tail);
		err = port->state_program(port->ctx, target, whole, page, prog);
	}
	if (err != FWA_OK) {
		st->seq--;
		return FWA_ERR_FLASH;
	}
	*area = target;
	return FWA_OK;
}
