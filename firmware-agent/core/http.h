/*
 * core/http.h - the agent core's bounded HTTP/1.1 client over the port transport: request
 * writing, response head parsing, and body reading (Content-Length, chunked, or until close).
 * Freestanding; all memory is the caller's.
 */
#ifndef FWA_CORE_HTTP_H
#define FWA_CORE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fwa/err.h"
#include "fwa/port.h"

/* A bounded string builder: appends, remembers overflow, always NUL-terminated. */
struct fwa_sb {
	char *buf;
	size_t cap;
	size_t len;
	bool overflow;
};
void fwa_sb_init(struct fwa_sb *b, char *buf, size_t cap);
void fwa_sb_str(struct fwa_sb *b, const char *s);
void fwa_sb_mem(struct fwa_sb *b, const char *s, size_t n);
void fwa_sb_u64(struct fwa_sb *b, uint64_t v);

/* A parsed response head. */
struct fwa_http_resp {
	int status;      /* 100-599 */
	bool chunked;    /* Transfer-Encoding: chunked */
	bool has_length; /* Content-Length present */
	uint64_t length; /* its value */
	bool has_range;  /* Content-Range: bytes first-last/total present */
	uint64_t range_first, range_last, range_total;
	bool conn_close; /* Connection: close */
};

/*
 * Parse a response head: status line and header fields, `len` bytes ending with the empty
 * line (CRLF CRLF). FWA_ERR_HTTP for anything malformed: bad status line, a field without a
 * colon, obsolete line folding, a non-numeric or conflicting Content-Length, a transfer coding
 * other than chunked, both Content-Length and chunked, a malformed Content-Range.
 */
FWA_WUR enum fwa_err fwa_http_parse_head(const char *head, size_t len, struct fwa_http_resp *out);

/* One response being read from the transport. */
struct fwa_http {
	const struct fwa_port *port;
	uint32_t timeout_ms;
	char *buf; /* raw receive buffer (the head is read into it; leftovers are body) */
	size_t cap;
	size_t pos; /* next unread byte */
	size_t end; /* bytes in buf */
	bool eof;
	struct fwa_http_resp resp;
	/* body framing */
	int state;          /* internal */
	uint64_t remaining; /* bytes left in the body (length framing) or the current chunk */
	uint64_t total;     /* body bytes returned so far */
};

/*
 * Send one request, on a new connection when `connect` (tr_connect first) or else on the one
 * the previous answer left open: method, path (must start with '/', no spaces or controls),
 * Host, optional extra header lines (each ending in CRLF, may be NULL), and an optional JSON
 * body. The connection stays persistent (no Connection: close). `req` is working memory for
 * the request head. FWA_ERR_TRANSPORT on transport failure, FWA_ERR_TOO_LARGE when the head
 * does not fit req, FWA_ERR_HTTP for a bad path; nothing is sent on these last two.
 */
FWA_WUR enum fwa_err fwa_http_send(const struct fwa_port *port, bool connect, const char *method,
                                   const char *host, const char *path, const char *extra,
                                   const char *body, size_t body_len, char *req, size_t req_cap);

/*
 * Read and parse the response head into h->resp using buf[0..cap) as the receive buffer (the
 * head must fit: FWA_ERR_TOO_LARGE otherwise). FWA_ERR_TRANSPORT on transport failure or end
 * of stream before the head ends, FWA_ERR_HTTP when malformed.
 */
FWA_WUR enum fwa_err fwa_http_read_head(struct fwa_http *h, const struct fwa_port *port, char *buf,
                                        size_t cap, uint32_t timeout_ms);

/*
 * Read up to cap body bytes into out; *got = 0 means the body is complete. Bodies of 1xx,
 * 204 and 304 are empty. FWA_ERR_TRANSPORT when the stream ends or fails before the framing
 * says the body is complete, FWA_ERR_HTTP on bad chunk framing.
 */
FWA_WUR enum fwa_err fwa_http_read_body(struct fwa_http *h, void *out, size_t cap, size_t *got);

/*
 * Read the whole body into out[0..cap) and NUL-terminate it (so cap - 1 bytes at most:
 * FWA_ERR_TOO_LARGE beyond). *len gets the body length.
 */
FWA_WUR enum fwa_err fwa_http_read_all(struct fwa_http *h, char *out, size_t cap, size_t *len);

/*
 * After the whole body was read: true when the connection can carry the next request (the
 * body ended by its framing, not by the end of the stream; no Connection: close; no byte
 * beyond the answer arrived).
 */
bool fwa_http_reusable(const struct fwa_http *h);

#endif
