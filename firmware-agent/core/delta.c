/*
 * delta.c - applies a delta update (docs/formats.md, "Delta format"): authenticates each unit
 * of the delta against the hash chain that starts in the signed delta metadata, decompresses
 * it (LZSS, heatshrink's bit layout), runs its bsdiff-style instructions over the base image in
 * the active slot, and writes the resulting sector into the inactive slot, in order. No heap:
 * everything lives in the caller's struct fwa_delta and page buffer.
 *
 * Every read of the base is bounds-checked against base_size before the port is asked, and
 * every output byte against the unit's sector, so a hostile delta that somehow passed the
 * hash chain can still neither read outside the base nor write outside the image.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fwa/delta.h"

enum op { OP_COPY = 0, OP_ADD = 1, OP_INSERT = 2, OP_SEEK = 3 };

/* The LZSS reader over one authenticated unit's payload. */
struct lz {
	const uint8_t *in;
	uint32_t nbits, bit; /* payload length in bits, next bit to read */
	uint8_t *win;
	uint32_t wmask;
	uint32_t made;      /* bytes produced in this unit */
	uint32_t rem, dist; /* a back-reference in progress */
	uint8_t wbits, lbits;
};

static enum fwa_err bad(struct fwa_delta *d, enum fwa_err err, const char *why)
{
	d->failed = true;
	d->why = why;
	return err;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* n (<= 16) bits MSB first; -1 when the payload ends first. */
static int32_t bits(struct lz *z, unsigned n)
{
	uint32_t v = 0;

	if (z->nbits - z->bit < n)
		return -1;
	while (n--) {
		v = v << 1 | ((uint32_t)(z->in[z->bit >> 3] >> (7 - (z->bit & 7))) & 1u);
		z->bit++;
	}
	return (int32_t)v;
}

/* The next decompressed byte: 1 with *out set, 0 at the end of the payload, -1 malformed. */
static int lz_byte(struct lz *z, uint8_t *out)
{
	int32_t t, idx, cnt;
	uint8_t c;

	if (z->rem == 0) {
		t = bits(z, 1);
		if (t < 0)
			return 0;
		if (t) {
			t = bits(z, 8);
			if (t < 0)
				return 0;
			c = (uint8_t)t;
			goto emit;
		}
		idx = bits(z, z->wbits);
		cnt = bits(z, z->lbits);
		if (idx < 0 || cnt < 0)
			return 0;
		z->dist = (uint32_t)idx + 1;
		z->rem = (uint32_t)cnt + 1;
		if (z->dist > z->made)
			return -1; /* before the start of the unit: the window is reset per unit */
	}
	c = z->win[(z->made - z->dist) & z->wmask];
	z->rem--;
emit:
	z->win[z->made & z->wmask] = c;
	z->made++;
	*out = c;
	return 1;
}

/* A LEB128 varint of at most 32 bits; false at the end or when malformed. */
static bool lz_varint(struct lz *z, uint32_t *v)
{
	uint8_t b;

	*v = 0;
	for (unsigned shift = 0; shift < 35; shift += 7) {
		if (lz_byte(z, &b) != 1)
			return false;
		if (shift == 28 && b > 0x0f)
			return false;
		*v |= (uint32_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/* Decode the verified unit in d->unit into d->page and write it; then advance the checkpoint. */
static enum fwa_err apply_unit(struct fwa_delta *d, uint32_t hdr)
{
	const struct fwa_port *port = d->port;
	uint32_t out_len = d->p.target_size - d->ck.out_off;
	uint32_t pos = d->ck.base_pos, n = 0, plen, v, len, i, padded, erase;
	bool last;
	struct lz z;
	uint8_t b;

	if (out_len > FWA_DELTA_SECTOR)
		out_len = FWA_DELTA_SECTOR;
	last = d->ck.out_off + out_len == d->p.target_size;
	plen = (uint32_t)d->unit[hdr] | (uint32_t)d->unit[hdr + 1] << 8;
	memset(&z, 0, sizeof(z));
	z.in = d->unit + hdr + 2;
	z.nbits = plen * 8u;
	z.win = d->window;
	z.wmask = (1u << d->ck.wbits) - 1u;
	z.wbits = d->ck.wbits;
	z.lbits = d->ck.lbits;
	while (n < out_len) {
		if (!lz_varint(&z, &v))
			return bad(d, FWA_ERR_DELTA,
			           "instruction stream ends early or is malformed");
		len = v >> 2;
		switch ((enum op)(v & 3u)) {
		case OP_SEEK: {
			/* zigzag: 0, -1, 1, -2, ... */
			int64_t s = (len & 1u) ? -(int64_t)(len >> 1) - 1 : (int64_t)(len >> 1);
			int64_t np = (int64_t)pos + s;

			if (np < 0 || np > (int64_t)d->p.base_size)
				return bad(d, FWA_ERR_DELTA, "seek outside the base");
			pos = (uint32_t)np;
			continue;
		}
		case OP_COPY:
		case OP_ADD:
			if (len == 0 || len > out_len - n)
				return bad(d, FWA_ERR_DELTA, "instruction writes past its sector");
			if (len > d->p.base_size - pos)
				return bad(d, FWA_ERR_DELTA, "instruction reads outside the base");
			if (port->active_read(port->ctx, pos, d->page + n, len) != FWA_OK)
				return bad(d, FWA_ERR_FLASH, "base read failed");
			if ((v & 3u) == OP_ADD) {
				for (i = 0; i < len; i++) {
					if (lz_byte(&z, &b) != 1)
						return bad(d, FWA_ERR_DELTA, "add data ends early");
					d->page[n + i] = (uint8_t)(d->page[n + i] + b);
				}
			}
			pos += len;
			break;
		case OP_INSERT:
			if (len == 0 || len > out_len - n)
				return bad(d, FWA_ERR_DELTA, "instruction writes past its sector");
			for (i = 0; i < len; i++)
				if (lz_byte(&z, &d->page[n + i]) != 1)
					return bad(d, FWA_ERR_DELTA, "insert data ends early");
			break;
		}
		n += len;
	}
	/* Nothing may follow the sector's last instruction but the zero bits padding a byte. */
	if (z.rem || z.nbits - z.bit >= 8 || bits(&z, z.nbits - z.bit) != 0)
		return bad(d, FWA_ERR_DELTA, "data after the unit's last instruction");

	padded = (out_len + d->prog_size - 1) / d->prog_size * d->prog_size;
	erase = (out_len + d->erase_size - 1) / d->erase_size * d->erase_size;
	memset(d->page + out_len, 0xff, FWA_DELTA_SECTOR - out_len);
	if (port->slot_erase(port->ctx, d->ck.out_off, erase) != FWA_OK ||
	    port->slot_program(port->ctx, d->ck.out_off, d->page, padded) != FWA_OK)
		return bad(d, FWA_ERR_FLASH, "slot write failed");

	/* Only now, with the sector in flash, does the checkpoint move past it. */
	if (!last)
		memcpy(d->ck.next_sha256, d->unit + d->unit_len - 32, 32);
	else
		memset(d->ck.next_sha256, 0, 32);
	d->ck.pad[0] = d->ck.pad[1] = 0;
	d->ck.in_off += d->unit_len;
	d->ck.out_off += out_len;
	d->ck.base_pos = pos;
	d->done = last;
	return FWA_OK;
}

/* The unit is complete: check the chain and the header, then apply it. */
static enum fwa_err finish_unit(struct fwa_delta *d)
{
	uint8_t h[32];
	uint32_t hdr = d->ck.in_off == 0 ? FWA_DELTA_HEADER : 0;
	const uint8_t *u = d->unit;

	d->port->crypto->sha256_init(&d->sha);
	d->port->crypto->sha256_update(&d->sha, u, d->unit_len);
	d->port->crypto->sha256_final(&d->sha, h);
	if (memcmp(h, d->ck.next_sha256, 32) != 0)
		return bad(d, FWA_ERR_DELTA, "unit SHA-256 differs from the hash chain");
	if (hdr) {
		if (memcmp(u, FWA_DELTA_MAGIC, 4) != 0 || u[4] != FWA_DELTA_VERSION || u[7] != 0)
			return bad(d, FWA_ERR_DELTA, "not a version 1 delta");
		if (u[5] < FWA_DELTA_WINDOW_MIN || u[5] > FWA_DELTA_WINDOW_MAX ||
		    u[6] < FWA_DELTA_LOOKAHEAD_MIN || u[6] > u[5])
			return bad(d, FWA_ERR_DELTA, "LZSS parameters out of range");
		if (rd32(u + 8) != d->p.base_size || rd32(u + 12) != d->p.target_size)
			return bad(d, FWA_ERR_DELTA, "delta sizes differ from its metadata");
		d->ck.wbits = u[5];
		d->ck.lbits = u[6];
	}
	return apply_unit(d, hdr);
}

enum fwa_err fwa_delta_begin(struct fwa_delta *d, const struct fwa_port *port,
                             const struct fwa_delta_params *p, const struct fwa_delta_ckpt *ck,
                             uint8_t *page)
{
	struct fwa_flash_geometry geo;

	memset(d, 0, offsetof(struct fwa_delta, unit));
	d->why = "";
	if (!port || !p || !page || !port->active_read || !port->crypto) {
		d->failed = true;
		d->why = "port cannot apply deltas";
		return FWA_ERR_BUSY;
	}
	d->port = port;
	d->p = *p;
	d->page = page;
	if (port->flash_geometry(port->ctx, &geo) != FWA_OK)
		return bad(d, FWA_ERR_FLASH, "flash geometry unknown");
	if (geo.prog_size == 0 || geo.erase_size == 0 || FWA_DELTA_SECTOR % geo.erase_size ||
	    FWA_DELTA_SECTOR % geo.prog_size)
		return bad(d, FWA_ERR_BUSY, "flash granules do not divide the delta sector");
	d->erase_size = geo.erase_size;
	d->prog_size = geo.prog_size;
	if (p->target_size == 0 || p->target_size > geo.slot_size)
		return bad(d, FWA_ERR_IMAGE_SIZE, "target image does not fit the slot");
	if (p->delta_size < FWA_DELTA_HEADER + 2)
		return bad(d, FWA_ERR_DELTA, "delta shorter than its header");
	if (ck) {
		/* A kept checkpoint: at a sector boundary inside the image and the delta. */
		if (ck->out_off % FWA_DELTA_SECTOR || ck->out_off > p->target_size ||
		    ck->in_off > p->delta_size || (ck->in_off == 0) != (ck->out_off == 0) ||
		    ck->base_pos > p->base_size)
			return bad(d, FWA_ERR_DELTA, "checkpoint does not fit this delta");
		d->ck = *ck;
		if (ck->out_off == p->target_size) {
			d->done = ck->in_off == p->delta_size;
			if (!d->done)
				return bad(d, FWA_ERR_DELTA, "checkpoint does not fit this delta");
		}
		if (ck->in_off &&
		    (ck->wbits < FWA_DELTA_WINDOW_MIN || ck->wbits > FWA_DELTA_WINDOW_MAX ||
		     ck->lbits < FWA_DELTA_LOOKAHEAD_MIN || ck->lbits > ck->wbits))
			return bad(d, FWA_ERR_DELTA, "checkpoint does not fit this delta");
	} else {
		memcpy(d->ck.next_sha256, p->head_sha256, 32);
	}
	return FWA_OK;
}

enum fwa_err fwa_delta_feed(struct fwa_delta *d, const uint8_t *in, size_t len, size_t *used)
{
	enum fwa_err err;
	uint32_t hdr, want, left;
	size_t take;

	*used = 0;
	if (d->failed || (d->done && len))
		return d->failed ? FWA_ERR_BUSY
		                 : bad(d, FWA_ERR_DELTA, "data after the delta's end");
	while (len) {
		hdr = d->ck.in_off == 0 ? FWA_DELTA_HEADER : 0;
		/* Until the length field is in, take just enough to read it. */
		want = d->unit_len ? d->unit_len : hdr + 2;
		take = want - d->fill < len ? want - d->fill : len;
		memcpy(d->unit + d->fill, in, take);
		d->fill += (uint32_t)take;
		in += take;
		len -= take;
		*used += take;
		if (d->fill < want)
			break;
		if (!d->unit_len) {
			bool last = d->p.target_size - d->ck.out_off <= FWA_DELTA_SECTOR;
			uint32_t plen = (uint32_t)d->unit[hdr] | (uint32_t)d->unit[hdr + 1] << 8;

			d->unit_len = hdr + 2 + plen + (last ? 0u : 32u);
			left = d->p.delta_size - d->ck.in_off;
			if (d->unit_len > FWA_DELTA_UNIT_MAX)
				return bad(d, FWA_ERR_DELTA, "unit longer than 8 KiB");
			if (last ? d->unit_len != left : d->unit_len >= left)
				return bad(d, FWA_ERR_DELTA,
				           "unit lengths do not add up to the delta size");
			if (d->fill < d->unit_len)
				continue;
		}
		err = finish_unit(d);
		if (err != FWA_OK)
			return err;
		d->fill = 0;
		d->unit_len = 0;
		if (d->done && len)
			return bad(d, FWA_ERR_DELTA, "data after the delta's end");
		break; /* a unit is in flash: let the caller keep the checkpoint */
	}
	return FWA_OK;
}

bool fwa_delta_done(const struct fwa_delta *d)
{
	return d->done && !d->failed;
}

/* The budget of docs/formats.md: the decoder's state within 16 KiB (the page is the caller's). */
_Static_assert(sizeof(struct fwa_delta) <= 16384 - 1024, "delta decoder over its memory budget");
