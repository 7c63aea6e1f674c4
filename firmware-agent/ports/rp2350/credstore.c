/*
 * credstore.c - the renewed device credentials of the RP2350 port in two flash copies with a
 * sequence number and a CRC-32 (credstore.h has the layout and the power-cut argument).
 * Freestanding: the port gives it the flash, the tests give it a simulated flash that cuts
 * power before any operation.
 */
#include <string.h>

#include "credstore.h"

#define FLAG_CURRENT 1u
#define FLAG_KEY 2u
#define FLAG_CERT 4u

static const uint8_t magic[4] = {'F', 'W', 'C', 'R'};

static uint32_t crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	return ~c;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/*
 * Check the record in buf (copy_size bytes) and fill the values from it; false when it is
 * not a whole record of this tag.
 */
static bool parse(const struct fwa_credstore *s, const uint8_t *buf, uint32_t *seq,
                  struct fwa_credstore_val v[4])
{
	uint32_t size = s->flash.copy_size, off = FWA_CREDSTORE_HEAD;

	if (memcmp(buf, magic, 4) != 0 || memcmp(buf + 12, s->tag, 32) != 0)
		return false;
	for (unsigned i = 0; i < 4; i++) {
		uint32_t n = (uint32_t)buf[44 + 2 * i] | (uint32_t)buf[45 + 2 * i] << 8;
		if (n > size - 4 - off)
			return false;
		v[i].p = n ? buf + off : NULL;
		v[i].len = n;
		off += n;
	}
	if (crc32(buf, off) != le32(buf + off))
		return false;
	uint32_t flags = le32(buf + 8);
	/* The flags say which values a record holds; a value it does not hold must be empty. */
	if (!(flags & FLAG_CURRENT) != !(v[0].len && v[1].len) ||
	    !(flags & FLAG_KEY) != !v[2].len || !(flags & FLAG_CERT) != !v[3].len ||
	    (!v[0].len != !v[1].len) || ((flags & FLAG_CERT) && !(flags & FLAG_KEY)))
		return false;
	*seq = le32(buf + 4);
	return true;
}

static enum fwa_err load(struct fwa_credstore *s)
{
	struct fwa_credstore_val v[4], best[4];
	uint32_t seq, best_seq = 0;
	int best_copy = -1;

	for (int c = 0; c < 2; c++) {
		enum fwa_err err = s->flash.read(s->flash.ctx, (uint32_t)c * s->flash.copy_size,
		                                 s->work, s->flash.copy_size);
		if (err != FWA_OK)
			return err;
		if (!parse(s, s->work, &seq, v) || (best_copy >= 0 && seq <= best_seq))
			continue;
		/* Keep the newer one in rec; the values then point into rec. */
		memcpy(s->rec, s->work, s->flash.copy_size);
		for (unsigned i = 0; i < 4; i++) {
			best[i].p = v[i].p ? s->rec + (v[i].p - s->work) : NULL;
			best[i].len = v[i].len;
		}
		best_seq = seq;
		best_copy = c;
	}
	s->copy = best_copy;
	s->seq = best_copy >= 0 ? best_seq : 0;
	if (best_copy < 0)
		memset(best, 0, sizeof(best));
	s->cur_key = best[0];
	s->cur_cert = best[1];
	s->new_key = best[2];
	s->new_cert = best[3];
	return FWA_OK;
}

enum fwa_err fwa_credstore_open(struct fwa_credstore *s, const struct fwa_credstore_flash *flash,
                                const uint8_t tag[32], uint8_t *rec, uint8_t *work)
{
	memset(s, 0, sizeof(*s));
	s->flash = *flash;
	memcpy(s->tag, tag, 32);
	s->rec = rec;
	s->work = work;
	s->copy = -1;
	if (flash->copy_size < FWA_CREDSTORE_HEAD + 4 || flash->copy_size > 0xffffu ||
	    !flash->prog_size || flash->copy_size % flash->prog_size)
		return FWA_ERR_TOO_LARGE;
	return load(s);
}

bool fwa_credstore_pending(const struct fwa_credstore *s)
{
	return s->new_key.len && s->new_cert.len;
}

/*
 * Write the record of these four values into the copy that does not hold the newest one,
 * then read the store again. The values may point into rec: work is built first.
 */
static enum fwa_err put_record(struct fwa_credstore *s, const struct fwa_credstore_val v[4])
{
	uint32_t size = s->flash.copy_size, off = FWA_CREDSTORE_HEAD, flags = 0;
	uint32_t target = (s->copy == 0 ? 1u : 0u) * size;
	enum fwa_err err;

	uint32_t total = off + 4;
	for (unsigned i = 0; i < 4; i++) {
		if (v[i].len > size) /* a copy is at most 64 KiB: each length fits its u16 */
			return FWA_ERR_TOO_LARGE;
		total += v[i].len;
	}
	if (total > size)
		return FWA_ERR_TOO_LARGE;
	memset(s->work, 0xff, size);
	memcpy(s->work, magic, 4);
	put32(s->work + 4, s->seq + 1);
	memcpy(s->work + 12, s->tag, 32);
	for (unsigned i = 0; i < 4; i++) {
		s->work[44 + 2 * i] = (uint8_t)v[i].len;
		s->work[45 + 2 * i] = (uint8_t)(v[i].len >> 8);
		if (v[i].len)
			memcpy(s->work + off, v[i].p, v[i].len);
		off += v[i].len;
	}
	flags =
	    (v[0].len ? FLAG_CURRENT : 0) | (v[2].len ? FLAG_KEY : 0) | (v[3].len ? FLAG_CERT : 0);
	put32(s->work + 8, flags);
	put32(s->work + off, crc32(s->work, off));
	/* Only the bytes in use are programmed; the rest stays erased. */
	uint32_t used =
	    (off + 4 + s->flash.prog_size - 1) / s->flash.prog_size * s->flash.prog_size;
	err = s->flash.erase(s->flash.ctx, target, size);
	if (err == FWA_OK)
		err = s->flash.program(s->flash.ctx, target, s->work, used);
	/* Whatever happened, the store is what the flash now holds. */
	enum fwa_err lerr = load(s);
	return err != FWA_OK ? err : lerr;
}

enum fwa_err fwa_credstore_set_key(struct fwa_credstore *s, const void *key, uint32_t len)
{
	struct fwa_credstore_val v[4] = {s->cur_key, s->cur_cert, {key, len}, {NULL, 0}};

	if (!len)
		return FWA_ERR_BUSY;
	return put_record(s, v);
}

enum fwa_err fwa_credstore_set_cert(struct fwa_credstore *s, const void *cert, uint32_t len)
{
	struct fwa_credstore_val v[4] = {s->cur_key, s->cur_cert, s->new_key, {cert, len}};

	if (!s->new_key.len || !len)
		return FWA_ERR_BUSY;
	return put_record(s, v);
}

enum fwa_err fwa_credstore_commit(struct fwa_credstore *s)
{
	struct fwa_credstore_val v[4] = {s->new_key, s->new_cert, {NULL, 0}, {NULL, 0}};

	if (!fwa_credstore_pending(s))
		return FWA_ERR_BUSY;
	return put_record(s, v);
}
