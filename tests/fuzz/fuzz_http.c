/*
 * libFuzzer target: HTTP/1.1 responses as the agent core reads them (core/http.c). The first
 * input byte chooses how the transport splits the rest into pieces, so framing across every
 * read boundary is exercised; the head and body are read under the same bounds the agent
 * uses, and a body that claims success must have respected them.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http.h"

struct feed {
	const uint8_t *p;
	size_t len, pos, piece;
};

static enum fwa_err f_recv(void *ctx, void *buf, size_t cap, uint32_t timeout_ms, size_t *got)
{
	struct feed *f = ctx;
	size_t n = f->len - f->pos;

	(void)timeout_ms;
	if (n > f->piece)
		n = f->piece;
	if (n > cap)
		n = cap;
	memcpy(buf, f->p + f->pos, n);
	f->pos += n;
	*got = n;
	return FWA_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char head[2048], body[4097];
	struct feed f;
	struct fwa_port port;
	struct fwa_http h;
	size_t len = 0, got;
	uint8_t chunk[300];
	enum fwa_err err;

	if (size < 1)
		return 0;
	memset(&port, 0, sizeof(port));
	f.p = data + 1;
	f.len = size - 1;
	f.pos = 0;
	f.piece = (size_t)(data[0] % 64) + 1;
	port.ctx = &f;
	port.tr_recv = f_recv;
	if (fwa_http_read_head(&h, &port, head, sizeof(head), 10) != FWA_OK)
		return 0;
	if (h.resp.status < 100 || h.resp.status > 599)
		__builtin_trap();
	if (data[0] & 0x80) {
		err = fwa_http_read_all(&h, body, sizeof(body), &len);
		if (err == FWA_OK && (len >= sizeof(body) || body[len] != '\0'))
			__builtin_trap();
		if (err == FWA_OK && h.resp.has_length && !h.resp.chunked && h.resp.status != 204 &&
		    h.resp.status != 304 && h.resp.status >= 200 && len != h.resp.length)
			__builtin_trap();
	} else {
		/* The download path: small reads into a buffer of its own size. */
		for (int i = 0; i < 100000; i++) {
			if (fwa_http_read_body(&h, chunk, 1 + (size_t)(data[0] % sizeof(chunk)),
			                       &got) != FWA_OK ||
			    got == 0)
				break;
			if (got > sizeof(chunk))
				__builtin_trap();
		}
	}
	return 0;
}
