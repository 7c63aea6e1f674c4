/*
 * ota-bench-delta: the delta figures of one image pair for bench/delta. Encodes the delta from
 * BASE to TARGET with each LZSS setting given (or the default), decodes it again with the
 * core's decoder over memory (checking the result), and prints one line per setting: sizes,
 * share of the full image, encode and host decode time. With --out FILE it also writes the
 * delta of the first setting (for the apply-time run under QEMU).
 *
 * Usage: ota-bench-delta BASE TARGET [--out FILE] [W:L ...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "delta.h"
#include "fwa/crypto_openssl.h"
#include "fwa/delta.h"

struct mem {
	const uint8_t *base;
	size_t blen;
	uint8_t *out;
	size_t olen;
};

static enum fwa_err geo(void *ctx, struct fwa_flash_geometry *g)
{
	struct mem *m = ctx;

	g->slot_size = (uint32_t)m->olen;
	g->erase_size = 4096;
	g->prog_size = 256;
	g->state_size = 4096;
	return FWA_OK;
}

static enum fwa_err er(void *ctx, uint32_t off, uint32_t len)
{
	struct mem *m = ctx;

	memset(m->out + off, 0xff, len);
	return FWA_OK;
}

static enum fwa_err pr(void *ctx, uint32_t off, const void *d, uint32_t len)
{
	struct mem *m = ctx;

	memcpy(m->out + off, d, len);
	return FWA_OK;
}

static enum fwa_err rd(void *ctx, uint32_t off, void *buf, uint32_t len)
{
	struct mem *m = ctx;

	if (off > m->blen || len > m->blen - off)
		return FWA_ERR_FLASH;
	memcpy(buf, m->base + off, len);
	return FWA_OK;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p = NULL;
	long n;

	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		goto out;
	p = malloc((size_t)n + 1);
	if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	*len = (size_t)n;
out:
	if (f)
		fclose(f);
	return p;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static struct fwa_delta d;
	static uint8_t page[FWA_DELTA_SECTOR];
	const char *outpath = NULL, *why = NULL;
	struct ota_delta_opts opts[16];
	unsigned nopts = 0;
	uint8_t *base, *tgt;
	size_t blen = 0, tlen = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: %s BASE TARGET [--out FILE] [W:L ...]\n", argv[0]);
		return 2;
	}
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
			outpath = argv[++i];
		} else if (nopts < 16 &&
		           sscanf(argv[i], "%u:%u", &opts[nopts].wbits, &opts[nopts].lbits) == 2) {
			nopts++;
		} else {
			fprintf(stderr, "%s: bad argument %s\n", argv[0], argv[i]);
			return 2;
		}
	}
	if (nopts == 0)
		opts[nopts++] = (struct ota_delta_opts){OTA_DELTA_WBITS, OTA_DELTA_LBITS};
	base = slurp(argv[1], &blen);
	tgt = slurp(argv[2], &tlen);
	if (!base || !tgt) {
		fprintf(stderr, "%s: cannot read the images\n", argv[0]);
		return 1;
	}
	for (unsigned k = 0; k < nopts; k++) {
		struct mem m = {base, blen, calloc(1, tlen + FWA_DELTA_SECTOR),
		                tlen + FWA_DELTA_SECTOR};
		struct fwa_port port = {0};
		struct fwa_delta_params p = {0};
		struct ota_delta_info info;
		uint8_t *delta;
		size_t dlen, used;
		double t0, t1, t2;

		t0 = now();
		if (ota_delta_encode(base, blen, tgt, tlen, &opts[k], &delta, &dlen, &info, &why)) {
			fprintf(stderr, "%s: %s\n", argv[0], why);
			return 1;
		}
		t1 = now();
		port.ctx = &m;
		port.crypto = fwa_crypto_openssl();
		port.flash_geometry = geo;
		port.slot_erase = er;
		port.slot_program = pr;
		port.active_read = rd;
		p.base_size = (uint32_t)blen;
		p.target_size = (uint32_t)tlen;
		p.delta_size = (uint32_t)dlen;
		memcpy(p.head_sha256, info.head_sha256, 32);
		if (fwa_delta_begin(&d, &port, &p, NULL, page) != FWA_OK)
			return 1;
		for (size_t at = 0; at < dlen; at += used)
			if (fwa_delta_feed(&d, delta + at, dlen - at, &used) != FWA_OK)
				break;
		t2 = now();
		if (!fwa_delta_done(&d) || memcmp(m.out, tgt, tlen) != 0) {
			fprintf(stderr, "%s: the delta does not decode to the target: %s\n",
			        argv[0], d.why);
			return 1;
		}
		printf("W=%u L=%u target=%zu delta=%zu share=%.2f%% units=%u stream=%zu "
		       "encode_ms=%.0f decode_host_ms=%.1f\n",
		       opts[k].wbits, opts[k].lbits, tlen, dlen,
		       100.0 * (double)dlen / (double)tlen, info.units, info.stream_bytes,
		       (t1 - t0) * 1e3, (t2 - t1) * 1e3);
		if (k == 0 && outpath) {
			FILE *f = fopen(outpath, "wb");

			if (!f || fwrite(delta, 1, dlen, f) != dlen || fclose(f)) {
				fprintf(stderr, "%s: cannot write %s\n", argv[0], outpath);
				return 1;
			}
		}
		free(delta);
		free(m.out);
	}
	printf("decoder_state_bytes=%zu page_bytes=%u\n", sizeof(struct fwa_delta),
	       FWA_DELTA_SECTOR);
	free(base);
	free(tgt);
	return 0;
}
