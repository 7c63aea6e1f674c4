/*
 * The agent's HTTP/1.1 client over the port's byte-stream transport. It writes a request on a
 * new or a kept connection (persistent, HTTP/1.1's default; fwa_http_reusable says when an
 * answer leaves the connection fit for the next one) and reads the response with hard bounds: the
 * head must fit the caller's buffer, bodies are framed by Content-Length, chunked coding, or the
 * end of the stream, and anything ambiguous (both framings, conflicting lengths, folded lines) is
 * refused rather than guessed at, since a confused framing is how a download gets spliced.
 */
#include <string.h>

#include "http.h"

enum body_state {
	B_LENGTH = 0, /* remaining bytes of a Content-Length body */
	B_CLOSE,      /* until the end of the stream */
	B_CHUNK_SIZE, /* reading a chunk-size line */
	B_CHUNK_DATA, /* remaining bytes of the current chunk */
	B_CHUNK_CRLF, /* the CRLF after chunk data */
	B_TRAILER,    /* trailer lines until the empty one */
	B_DONE,
};

/* Longest chunk-size line (size, extensions) accepted. */
#define CHUNK_LINE_MAX 128

void fwa_sb_init(struct fwa_sb *b, char *buf, size_t cap)
{
	b->buf = buf;
	b->cap = cap;
	b->len = 0;
	b->overflow = cap == 0;
	if (cap)
		buf[0] = '\0';
}

void fwa_sb_mem(struct fwa_sb *b, const char *s, size_t n)
{
	if (b->overflow)
		return;
	if (n >= b->cap - b->len) {
		b->overflow = true;
		return;
	}
	memcpy(b->buf + b->len, s, n);
	b->len += n;
	b->buf[b->len] = '\0';
}

void fwa_sb_str(struct fwa_sb *b, const char *s)
{
	fwa_sb_mem(b, s, strlen(s));
}

void fwa_sb_u64(struct fwa_sb *b, uint64_t v)
{
	char tmp[21];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	fwa_sb_mem(b, tmp + i, sizeof(tmp) - i);
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Case-insensitive comparison of s[0..n) with the NUL-terminated lowercase word. */
static bool ieq(const char *s, size_t n, const char *word)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (word[i] == '\0' || lower(s[i]) != word[i])
			return false;
	return word[n] == '\0';
}

/* Decimal digits only, no sign, at most 18 digits (fits in uint64_t without overflow). */
static bool parse_dec(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 18)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* "bytes first-last/total" */
static bool parse_content_range(const char *v, size_t n, struct fwa_http_resp *r)
{
	size_t i = 6, a;

	if (n < 6 || !ieq(v, 6, "bytes "))
		return false;
	for (a = i; i < n && v[i] != '-'; i++)
		;
	if (i == n || !parse_dec(v + a, i - a, &r->range_first))
		return false;
	for (a = ++i; i < n && v[i] != '/'; i++)
		;
	if (i == n || !parse_dec(v + a, i - a, &r->range_last))
		return false;
	a = ++i;
	if (!parse_dec(v + a, n - a, &r->range_total))
		return false;
	return r->range_first <= r->range_last && r->range_last < r->range_total;
}

enum fwa_err fwa_http_parse_head(const char *head, size_t len, struct fwa_http_resp *out)
{
	size_t i, eol;
	uint64_t status;

	memset(out, 0, sizeof(*out));
	if (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0)
		return FWA_ERR_HTTP;
	/* Status line: HTTP/1.x SP 3DIGIT SP reason CRLF */
	if (len < 14 || (memcmp(head, "HTTP/1.1 ", 9) != 0 && memcmp(head, "HTTP/1.0 ", 9) != 0))
		return FWA_ERR_HTTP;
	if (!parse_dec(head + 9, 3, &status) || status < 100 || status > 599)
		return FWA_ERR_HTTP;
	if (head[12] != ' ' && head[12] != '\r')
		return FWA_ERR_HTTP;
	out->status = (int)status;
	for (i = 12; i + 1 < len && !(head[i] == '\r' && head[i + 1] == '\n'); i++)
		if ((unsigned char)head[i] < 0x20 && head[i] != '\t')
			return FWA_ERR_HTTP;
	i += 2;
	/* Header fields until the empty line. */
	while (i < len - 2) {
		size_t name_end, v, vend;

		for (eol = i; eol + 1 < len && !(head[eol] == '\r' && head[eol + 1] == '\n'); eol++)
			if (head[eol] == '\0' || head[eol] == '\n' || head[eol] == '\r')
				return FWA_ERR_HTTP;
		if (eol + 1 >= len)
			return FWA_ERR_HTTP;
		if (head[i] == ' ' || head[i] == '\t')
			return FWA_ERR_HTTP; /* obsolete line folding */
		for (name_end = i; name_end < eol && head[name_end] != ':'; name_end++)
			if (head[name_end] == ' ' || head[name_end] == '\t')
				return FWA_ERR_HTTP;
		if (name_end == eol || name_end == i)
			return FWA_ERR_HTTP;
		for (v = name_end + 1; v < eol && (head[v] == ' ' || head[v] == '\t'); v++)
			;
		for (vend = eol; vend > v && (head[vend - 1] == ' ' || head[vend - 1] == '\t');
		     vend--)
			;
		if (ieq(head + i, name_end - i, "content-length")) {
			uint64_t l;

			if (!parse_dec(head + v, vend - v, &l))
				return FWA_ERR_HTTP;
			if (out->has_length && out->length != l)
				return FWA_ERR_HTTP;
			out->has_length = true;
			out->length = l;
		} else if (ieq(head + i, name_end - i, "transfer-encoding")) {
			if (!ieq(head + v, vend - v, "chunked") || out->chunked)
				return FWA_ERR_HTTP;
			out->chunked = true;
		} else if (ieq(head + i, name_end - i, "content-range")) {
			if (out->has_range || !parse_content_range(head + v, vend - v, out))
				return FWA_ERR_HTTP;
			out->has_range = true;
		} else if (ieq(head + i, name_end - i, "connection")) {
			if (ieq(head + v, vend - v, "close"))
				out->conn_close = true;
		}
		i = eol + 2;
	}
	if (out->chunked && out->has_length)
		return FWA_ERR_HTTP;
	return FWA_OK;
}

static bool valid_path(const char *p)
{
	if (p[0] != '/')
		return false;
	for (; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return false;
	return true;
}

enum fwa_err fwa_http_send(const struct fwa_port *port, bool connect, const char *method,
                           const char *host, const char *path, const char *extra, const char *body,
                           size_t body_len, char *req, size_t req_cap)
{
	struct fwa_sb b;
	enum fwa_err err;

	if (!valid_path(path) || strlen(path) > 1024)
		return FWA_ERR_HTTP;
	fwa_sb_init(&b, req, req_cap);
	fwa_sb_str(&b, method);
	fwa_sb_str(&b, " ");
	fwa_sb_str(&b, path);
	fwa_sb_str(&b, " HTTP/1.1\r\nHost: ");
	fwa_sb_str(&b, host);
	fwa_sb_str(&b, "\r\nUser-Agent: fwa/1\r\n");
	if (extra)
		fwa_sb_str(&b, extra);
	if (body) {
		fwa_sb_str(&b, "Content-Type: application/json\r\nContent-Length: ");
		fwa_sb_u64(&b, body_len);
		fwa_sb_str(&b, "\r\n");
	}
	fwa_sb_str(&b, "\r\n");
	if (b.overflow)
		return FWA_ERR_TOO_LARGE;
	if (connect && port->tr_connect(port->ctx) != FWA_OK)
		return FWA_ERR_TRANSPORT;
	err = port->tr_send(port->ctx, req, b.len);
	if (err == FWA_OK && body && body_len)
		err = port->tr_send(port->ctx, body, body_len);
	return err == FWA_OK ? FWA_OK : FWA_ERR_TRANSPORT;
}

/* Refill the receive buffer (after moving unread bytes to its start). */
static enum fwa_err fill(struct fwa_http *h)
{
	size_t got = 0;
	enum fwa_err err;

	if (h->pos > 0) {
		memmove(h->buf, h->buf + h->pos, h->end - h->pos);
		h->end -= h->pos;
		h->pos = 0;
	}
	if (h->end == h->cap)
		return FWA_ERR_TOO_LARGE;
	if (h->eof)
		return FWA_ERR_TRANSPORT;
	err = h->port->tr_recv(h->port->ctx, h->buf + h->end, h->cap - h->end, h->timeout_ms, &got);
	if (err != FWA_OK)
		return FWA_ERR_TRANSPORT;
	if (got == 0) {
		h->eof = true;
		return FWA_ERR_TRANSPORT;
	}
	if (got > h->cap - h->end)
		return FWA_ERR_TRANSPORT;
	h->end += got;
	return FWA_OK;
}

static const char *find_head_end(const char *b, size_t n)
{
	size_t i;

	for (i = 0; i + 3 < n; i++)
		if (b[i] == '\r' && b[i + 1] == '\n' && b[i + 2] == '\r' && b[i + 3] == '\n')
			return b + i + 4;
	return NULL;
}

enum fwa_err fwa_http_read_head(struct fwa_http *h, const struct fwa_port *port, char *buf,
                                size_t cap, uint32_t timeout_ms)
{
	const char *e;
	enum fwa_err err;

	memset(h, 0, sizeof(*h));
	h->port = port;
	h->buf = buf;
	h->cap = cap;
	h->timeout_ms = timeout_ms;
	while ((e = find_head_end(h->buf, h->end)) == NULL) {
		err = fill(h);
		if (err != FWA_OK)
			return err;
	}
	err = fwa_http_parse_head(h->buf, (size_t)(e - h->buf), &h->resp);
	if (err != FWA_OK)
		return err;
	h->pos = (size_t)(e - h->buf);
	if (h->resp.status < 200 || h->resp.status == 204 || h->resp.status == 304) {
		h->state = B_DONE;
	} else if (h->resp.chunked) {
		h->state = B_CHUNK_SIZE;
	} else if (h->resp.has_length) {
		h->state = h->resp.length ? B_LENGTH : B_DONE;
		h->remaining = h->resp.length;
	} else {
		h->state = B_CLOSE;
	}
	return FWA_OK;
}

/* Next byte of framing, refilling as needed. */
static enum fwa_err next_byte(struct fwa_http *h, char *c)
{
	enum fwa_err err;

	if (h->pos == h->end) {
		err = fill(h);
		if (err != FWA_OK)
			return err == FWA_ERR_TOO_LARGE ? FWA_ERR_HTTP : err;
	}
	*c = h->buf[h->pos++];
	return FWA_OK;
}

/* Read one CRLF-terminated framing line into line[0..CHUNK_LINE_MAX). */
static enum fwa_err read_line(struct fwa_http *h, char *line, size_t *n)
{
	enum fwa_err err;
	char c;

	*n = 0;
	for (;;) {
		err = next_byte(h, &c);
		if (err != FWA_OK)
			return err;
		if (c == '\r') {
			err = next_byte(h, &c);
			if (err != FWA_OK)
				return err;
			return c == '\n' ? FWA_OK : FWA_ERR_HTTP;
		}
		if (c == '\n' || c == '\0' || *n == CHUNK_LINE_MAX)
			return FWA_ERR_HTTP;
		line[(*n)++] = c;
	}
}

static enum fwa_err chunk_size(struct fwa_http *h)
{
	char line[CHUNK_LINE_MAX];
	size_t n, i;
	uint64_t v = 0;
	enum fwa_err err;

	err = read_line(h, line, &n);
	if (err != FWA_OK)
		return err;
	for (i = 0; i < n; i++) {
		char c = lower(line[i]);
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			break;
		if (i >= 15)
			return FWA_ERR_HTTP; /* more than 2^60 bytes: nonsense */
		v = v * 16 + d;
	}
	if (i == 0 || (i < n && line[i] != ';' && line[i] != ' ' && line[i] != '\t'))
		return FWA_ERR_HTTP;
	h->remaining = v;
	h->state = v ? B_CHUNK_DATA : B_TRAILER;
	return FWA_OK;
}

enum fwa_err fwa_http_read_body(struct fwa_http *h, void *out, size_t cap, size_t *got)
{
	enum fwa_err err;
	char line[CHUNK_LINE_MAX];
	size_t n;
	char c;

	*got = 0;
	for (;;) {
		switch (h->state) {
		case B_DONE:
			return FWA_OK;
		case B_CHUNK_SIZE:
			err = chunk_size(h);
			if (err != FWA_OK)
				return err;
			continue;
		case B_CHUNK_CRLF:
			err = next_byte(h, &c);
			if (err == FWA_OK && c != '\r')
				err = FWA_ERR_HTTP;
			if (err == FWA_OK)
				err = next_byte(h, &c);
			if (err == FWA_OK && c != '\n')
				err = FWA_ERR_HTTP;
			if (err != FWA_OK)
				return err;
			h->state = B_CHUNK_SIZE;
			continue;
		case B_TRAILER:
			err = read_line(h, line, &n);
			if (err != FWA_OK)
				return err;
			if (n == 0)
				h->state = B_DONE;
			continue;
		case B_LENGTH:
		case B_CHUNK_DATA:
		case B_CLOSE:
			break;
		default:
			return FWA_ERR_HTTP;
		}
		if (cap == 0)
			return FWA_OK;
		if (h->pos == h->end) {
			err = fill(h);
			if (err != FWA_OK) {
				if (h->state == B_CLOSE && h->eof) {
					h->state = B_DONE;
					return FWA_OK;
				}
				return err;
			}
		}
		n = h->end - h->pos;
		if (n > cap)
			n = cap;
		if (h->state != B_CLOSE && n > h->remaining)
			n = (size_t)h->remaining;
		memcpy(out, h->buf + h->pos, n);
		h->pos += n;
		h->total += n;
		*got = n;
		if (h->state != B_CLOSE) {
			h->remaining -= n;
			if (h->remaining == 0)
				h->state = h->state == B_LENGTH ? B_DONE : B_CHUNK_CRLF;
		}
		return FWA_OK;
	}
}

bool fwa_http_reusable(const struct fwa_http *h)
{
	return h->state == B_DONE && !h->resp.conn_close && !h->eof && h->pos == h->end;
}

enum fwa_err fwa_http_read_all(struct fwa_http *h, char *out, size_t cap, size_t *len)
{
	size_t got;
	enum fwa_err err;

	*len = 0;
	if (cap == 0)
		return FWA_ERR_TOO_LARGE;
	for (;;) {
		err = fwa_http_read_body(h, out + *len, cap - 1 - *len, &got);
		if (err != FWA_OK)
			return err;
		if (got == 0) {
			if (h->state != B_DONE)
				return FWA_ERR_TOO_LARGE;
			break;
		}
		*len += got;
	}
	out[*len] = '\0';
	return FWA_OK;
}
