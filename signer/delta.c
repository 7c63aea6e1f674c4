/*
 * delta.c - makes delta updates for the agent's decoder (core/delta.c). Three stages:
 *  1. Matching: Colin Percival's bsdiff algorithm over a suffix array of the base (built by
 *     libdivsufsort): approximate matches, where most bytes agree (code whose addresses moved),
 *     become "add" runs of small differences; the rest are "insert" runs of new bytes.
 *  2. Instructions: each 4 KiB sector of the target gets its own instruction stream (copy for
 *     stretches of zero difference, add, insert, seek), so that a device can resume at any
 *     sector with no state but the base position.
 *  3. Compression: each stream is compressed alone with LZSS in heatshrink's bit layout
 *     (greedy, hash chains), and the units are chained by SHA-256 from the last to the first.
 */
#include <divsufsort.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "delta.h"
#include "fwa/delta.h"

/* Zero-difference stretches at least this long become copies instead of part of an add. */
#define COPY_MIN 8
/* Hash-chain positions tried per LZSS match search. */
#define CHAIN_DEPTH 96

enum op { OP_COPY = 0, OP_ADD = 1, OP_INSERT = 2, OP_SEEK = 3 };

/* One run of the target: from the base at bpos (copy, add) or literal (insert). */
struct run {
	uint8_t op;
	uint32_t tpos, bpos, len;
};

struct runs {
	struct run *v;
	size_t n, cap;
};

struct buf {
	uint8_t *p;
	size_t n, cap;
};

static bool buf_put(struct buf *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *q;

		while (cap < b->n + n)
			cap *= 2;
		q = realloc(b->p, cap);
		if (!q)
			return false;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
	return true;
}

static bool buf_varint(struct buf *b, uint32_t v)
{
	uint8_t t[5];
	size_t n = 0;

	do {
		t[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			t[n] |= 0x80;
		n++;
	} while (v);
	return buf_put(b, t, n);
}

static bool add_run(struct runs *r, uint8_t op, uint32_t tpos, uint32_t bpos, uint32_t len)
{
	if (len == 0)
		return true;
	if (r->n && r->v[r->n - 1].op == op && op == OP_INSERT &&
	    r->v[r->n - 1].tpos + r->v[r->n - 1].len == tpos) {
		r->v[r->n - 1].len += len;
		return true;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 1024;
		struct run *q = realloc(r->v, cap * sizeof(*q));

		if (!q)
			return false;
		r->v = q;
		r->cap = cap;
	}
	r->v[r->n++] = (struct run){op, tpos, bpos, len};
	return true;
}

/* A diff run of bsdiff: split into copies (long zero differences) and adds. */
static bool diff_runs(struct runs *r, const uint8_t *base, const uint8_t *tgt, uint32_t tpos,
                      uint32_t bpos, uint32_t len)
{
	uint32_t i = 0, start = 0;

	while (i < len) {
		uint32_t z = i;

		while (z < len && base[bpos + z] == tgt[tpos + z])
			z++;
		if (z - i >= COPY_MIN || z == len) {
			if (!add_run(r, OP_ADD, tpos + start, bpos + start, i - start) ||
			    !add_run(r, OP_COPY, tpos + i, bpos + i, z - i))
				return false;
			start = z;
		}
		i = z == i ? i + 1 : z;
	}
	return add_run(r, OP_ADD, tpos + start, bpos + start, len - start);
}

static size_t matchlen(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t i;

	for (i = 0; i < alen && i < blen; i++)
		if (a[i] != b[i])
			break;
	return i;
}

/* bsdiff's binary search of the suffix array for the longest match of t. */
static size_t search(const saidx_t *sa, const uint8_t *base, size_t blen, const uint8_t *t,
                     size_t tlen, size_t st, size_t en, size_t *pos)
{
	while (en - st >= 2) {
		size_t x = st + (en - st) / 2, n = blen - (size_t)sa[x];

		if (memcmp(base + sa[x], t, n < tlen ? n : tlen) < 0)
			st = x;
		else
			en = x;
	}
	size_t a = matchlen(base + sa[st], blen - (size_t)sa[st], t, tlen);
	size_t b = matchlen(base + sa[en], blen - (size_t)sa[en], t, tlen);
	if (a > b) {
		*pos = (size_t)sa[st];
		return a;
	}
	*pos = (size_t)sa[en];
	return b;
}

/* Percival's bsdiff scan, producing runs instead of its control triples. */
static bool bsdiff_runs(const uint8_t *base, size_t blen, const uint8_t *tgt, size_t tlen,
                        struct runs *r)
{
	saidx_t *sa = NULL;
	size_t scan = 0, len = 0, pos = 0, lastscan = 0, lastpos = 0;
	long long lastoffset = 0;
	bool ok = false;

	if (blen == 0)
		return add_run(r, OP_INSERT, 0, 0, (uint32_t)tlen);
	sa = malloc(blen * sizeof(*sa));
	if (!sa || divsufsort(base, sa, (saidx_t)blen) != 0)
		goto out;
	while (scan < tlen) {
		size_t oldscore = 0, scsc;

		for (scsc = scan += len; scan < tlen; scan++) {
			len = search(sa, base, blen, tgt + scan, tlen - scan, 0, blen - 1, &pos);
			for (; scsc < scan + len; scsc++)
				if ((long long)scsc + lastoffset < (long long)blen &&
				    base[(long long)scsc + lastoffset] == tgt[scsc])
					oldscore++;
			if ((len == oldscore && len != 0) || len > oldscore + 8)
				break;
			if ((long long)scan + lastoffset < (long long)blen &&
			    base[(long long)scan + lastoffset] == tgt[scan])
				oldscore--;
		}
		if (len != oldscore || scan == tlen) {
			long long s = 0, sf = 0, sb = 0, ss = 0;
			size_t lenf = 0, lenb = 0, i;

			for (i = 0; lastscan + i < scan && lastpos + i < blen;) {
				if (base[lastpos + i] == tgt[lastscan + i])
					s++;
				i++;
				if (s * 2 - (long long)i > sf * 2 - (long long)lenf) {
					sf = s;
					lenf = i;
				}
			}
			if (scan < tlen) {
				s = 0;
				for (i = 1; scan >= lastscan + i && pos >= i; i++) {
					if (base[pos - i] == tgt[scan - i])
						s++;
					if (s * 2 - (long long)i > sb * 2 - (long long)lenb) {
						sb = s;
						lenb = i;
					}
				}
			}
			if (lastscan + lenf > scan - lenb) {
				size_t overlap = (lastscan + lenf) - (scan - lenb), lens = 0;

				s = 0;
				for (i = 0; i < overlap; i++) {
					if (tgt[lastscan + lenf - overlap + i] ==
					    base[lastpos + lenf - overlap + i])
						s++;
					if (tgt[scan - lenb + i] == base[pos - lenb + i])
						s--;
					if (s > ss) {
						ss = s;
						lens = i + 1;
					}
				}
				lenf += lens - overlap;
				lenb -= lens;
			}
			if (!diff_runs(r, base, tgt, (uint32_t)lastscan, (uint32_t)lastpos,
			               (uint32_t)lenf) ||
			    !add_run(r, OP_INSERT, (uint32_t)(lastscan + lenf), 0,
			             (uint32_t)((scan - lenb) - (lastscan + lenf))))
				goto out;
			lastscan = scan - lenb;
			lastpos = pos - lenb;
			lastoffset = (long long)pos - (long long)scan;
		}
	}
	ok = true;
out:
	free(sa);
	return ok;
}

/* ---- LZSS, heatshrink's bit layout ---- */

struct bits {
	struct buf *b;
	uint32_t acc;
	unsigned n;
	bool ok;
};

static void put_bits(struct bits *w, uint32_t v, unsigned n)
{
	while (n--) {
		w->acc = w->acc << 1 | ((v >> n) & 1u);
		if (++w->n == 8) {
			uint8_t c = (uint8_t)w->acc;

			w->ok = w->ok && buf_put(w->b, &c, 1);
			w->acc = 0;
			w->n = 0;
		}
	}
}

static void flush_bits(struct bits *w)
{
	if (w->n)
		put_bits(w, 0, 8 - w->n);
}

/*
 * Compress in[0..n) into out (appended). Greedy: the longest match within the window found
 * through hash chains of 3-byte prefixes, taken when it costs fewer bits than its literals.
 */
static bool lzss(const uint8_t *in, size_t n, unsigned wbits, unsigned lbits, struct buf *out)
{
	const size_t wsize = (size_t)1 << wbits, maxlen = (size_t)1 << lbits;
	const size_t ref_bits = 1 + wbits + lbits;
	int32_t *head = malloc((1 << 16) * sizeof(int32_t));
	int32_t *prev = malloc((n ? n : 1) * sizeof(int32_t));
	struct bits w = {out, 0, 0, true};
	size_t i = 0;

	if (!prev || !head) {
		free(head);
		free(prev);
		return false;
	}
	for (size_t k = 0; k < (1 << 16); k++)
		head[k] = -1;
#define HASH(p) ((uint32_t)(((p)[0] << 8 ^ (p)[1] << 4 ^ (p)[2]) * 2654435761u) >> 16)
	while (i < n) {
		size_t best = 0, bdist = 0;

		if (i + 3 <= n) {
			int32_t c = head[HASH(in + i)];
			unsigned depth = 0;

			while (c >= 0 && i - (size_t)c <= wsize && depth++ < CHAIN_DEPTH) {
				size_t l = 0, lim = n - i < maxlen ? n - i : maxlen;

				while (l < lim && in[c + l] == in[i + l])
					l++;
				if (l > best) {
					best = l;
					bdist = i - (size_t)c;
					if (l == lim)
						break;
				}
				c = prev[c];
			}
		}
		size_t take = best * 9 > ref_bits ? best : 1;
		if (take > 1) {
			put_bits(&w, 0, 1);
			put_bits(&w, (uint32_t)(bdist - 1), wbits);
			put_bits(&w, (uint32_t)(take - 1), lbits);
		} else {
			put_bits(&w, 1, 1);
			put_bits(&w, in[i], 8);
		}
		for (size_t k = 0; k < take; k++, i++) {
			if (i + 3 <= n) {
				uint32_t h = HASH(in + i);

				prev[i] = head[h];
				head[h] = (int32_t)i;
			}
		}
	}
#undef HASH
	flush_bits(&w);
	free(head);
	free(prev);
	return w.ok;
}

/* ---- units ---- */

/* The instruction stream of target[off, off+len), with the base position carried in *pos. */
static bool unit_stream(const struct runs *r, size_t *ri, const uint8_t *base, const uint8_t *tgt,
                        uint32_t off, uint32_t len, uint32_t *pos, struct buf *s)
{
	uint32_t end = off + len;

	while (*ri < r->n && r->v[*ri].tpos < end) {
		const struct run *x = &r->v[*ri];
		uint32_t a = x->tpos > off ? x->tpos : off;
		uint32_t b = x->tpos + x->len < end ? x->tpos + x->len : end;
		uint32_t bp = x->bpos + (a - x->tpos), n = b - a;

		if (x->op != OP_INSERT && bp != *pos) {
			int64_t d = (int64_t)bp - (int64_t)*pos;
			uint32_t z = d < 0 ? (uint32_t)((-d - 1) * 2 + 1) : (uint32_t)(d * 2);

			if (!buf_varint(s, z << 2 | OP_SEEK))
				return false;
			*pos = bp;
		}
		if (!buf_varint(s, n << 2 | x->op))
			return false;
		if (x->op == OP_ADD) {
			uint8_t t[256];

			for (uint32_t k = 0; k < n;) {
				uint32_t m = n - k < sizeof(t) ? n - k : (uint32_t)sizeof(t);

				for (uint32_t j = 0; j < m; j++)
					t[j] = (uint8_t)(tgt[a + k + j] - base[bp + k + j]);
				if (!buf_put(s, t, m))
					return false;
				k += m;
			}
		} else if (x->op == OP_INSERT && !buf_put(s, tgt + a, n)) {
			return false;
		}
		if (x->op != OP_INSERT)
			*pos += n;
		if (b < x->tpos + x->len)
			break; /* the run goes on in the next unit */
		(*ri)++;
	}
	return true;
}

int ota_delta_encode(const uint8_t *base, size_t base_len, const uint8_t *target, size_t target_len,
                     const struct ota_delta_opts *opts, uint8_t **out, size_t *out_len,
                     struct ota_delta_info *info, const char **why)
{
	unsigned wb = opts && opts->wbits ? opts->wbits : OTA_DELTA_WBITS;
	unsigned lb = opts && opts->lbits ? opts->lbits : OTA_DELTA_LBITS;
	struct runs r = {0};
	struct buf stream = {0}, packed = {0}, *units = NULL, all = {0};
	size_t nunits, ri = 0;
	uint32_t pos = 0;
	int rc = -1;

	*out = NULL;
	*out_len = 0;
	memset(info, 0, sizeof(*info));
	if (target_len == 0 || target_len > UINT32_MAX || base_len > UINT32_MAX) {
		*why = "target must be 1 byte to 4 GiB and the base at most 4 GiB";
		return -1;
	}
	if (wb < FWA_DELTA_WINDOW_MIN || wb > FWA_DELTA_WINDOW_MAX ||
	    lb < FWA_DELTA_LOOKAHEAD_MIN || lb > wb) {
		*why = "LZSS window bits must be 4-12 and length bits 2 to the window bits";
		return -1;
	}
	*why = "out of memory";
	nunits = (target_len + FWA_DELTA_SECTOR - 1) / FWA_DELTA_SECTOR;
	units = calloc(nunits, sizeof(*units));
	if (!units || !bsdiff_runs(base, base_len, target, target_len, &r))
		goto out;
	for (size_t u = 0; u < nunits; u++) {
		uint32_t off = (uint32_t)(u * FWA_DELTA_SECTOR);
		uint32_t len = (uint32_t)(target_len - off < FWA_DELTA_SECTOR ? target_len - off
		                                                              : FWA_DELTA_SECTOR);
		uint32_t pos0 = pos;
		size_t ri0 = ri, hdr = u == 0 ? FWA_DELTA_HEADER : 0;
		size_t room = FWA_DELTA_UNIT_MAX - hdr - 2 - (u + 1 < nunits ? 32 : 0);

		stream.n = packed.n = 0;
		if (!unit_stream(&r, &ri, base, target, off, len, &pos, &stream) ||
		    !lzss(stream.p, stream.n, wb, lb, &packed))
			goto out;
		info->stream_bytes += stream.n;
		if (packed.n > room || packed.n > 0xffff) {
			/* Never expected (LZSS grows data by 1/8 at most); insert it raw. */
			struct runs raw = {0};
			size_t rri = 0;
			bool ok;

			(void)ri0;
			pos = pos0;
			stream.n = packed.n = 0;
			ok = add_run(&raw, OP_INSERT, off, 0, len) &&
			     unit_stream(&raw, &rri, base, target, off, len, &pos, &stream) &&
			     lzss(stream.p, stream.n, wb, lb, &packed);
			free(raw.v);
			if (!ok || packed.n > room) {
				*why = "a sector does not fit one delta unit";
				goto out;
			}
			/* Continue the matched runs after this sector from where they stood. */
			while (ri < r.n && r.v[ri].tpos + r.v[ri].len <= off + len)
				ri++;
			pos = pos0;
			info->raw_units++;
		}
		if (u == 0) {
			uint8_t h[FWA_DELTA_HEADER] = {
			    'F', 'W', 'A', 'D', FWA_DELTA_VERSION, (uint8_t)wb, (uint8_t)lb, 0};
			for (int k = 0; k < 4; k++) {
				h[8 + k] = (uint8_t)(base_len >> (8 * k));
				h[12 + k] = (uint8_t)(target_len >> (8 * k));
			}
			if (!buf_put(&units[u], h, sizeof(h)))
				goto out;
		}
		uint8_t l2[2] = {(uint8_t)packed.n, (uint8_t)(packed.n >> 8)};
		if (!buf_put(&units[u], l2, 2) || !buf_put(&units[u], packed.p, packed.n))
			goto out;
	}
	/* Chain from the last unit to the first: each carries the SHA-256 of the next. */
	for (size_t u = nunits; u-- > 0;) {
		uint8_t h[32];

		if (u + 1 < nunits) {
			SHA256(units[u + 1].p, units[u + 1].n, h);
			if (!buf_put(&units[u], h, 32))
				goto out;
		}
	}
	SHA256(units[0].p, units[0].n, info->head_sha256);
	for (size_t u = 0; u < nunits; u++)
		if (!buf_put(&all, units[u].p, units[u].n))
			goto out;
	info->units = (uint32_t)nunits;
	*out = all.p;
	*out_len = all.n;
	all.p = NULL;
	rc = 0;
out:
	if (units)
		for (size_t u = 0; u < nunits; u++)
			free(units[u].p);
	free(units);
	free(r.v);
	free(stream.p);
	free(packed.p);
	free(all.p);
	return rc;
}
