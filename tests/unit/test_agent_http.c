/*
 * Unit tests of the agent core's HTTP/1.1 client (core/http.c): head parsing with its refusals
 * (folding, conflicting lengths, both framings, bad ranges), body reading with Content-Length,
 * chunked coding and end-of-stream framing through a scripted transport that hands out the
 * response in pieces of every size, the request bytes it writes, and when an answer leaves its
 * connection fit for the next request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"

/* A transport that plays back one response in pieces of `piece` bytes. */
struct script {
	const char *resp;
	size_t len, pos, piece;
	bool fail_at_end; /* connection reset instead of an orderly end */
	char sent[2048];
	size_t sent_len;
	unsigned connects;
};

static enum fwa_err s_connect(void *ctx)
{
	struct script *s = ctx;

	s->connects++;
	return FWA_OK;
}

static enum fwa_err s_send(void *ctx, const void *buf, size_t len)
{
	struct script *s = ctx;

	if (len > sizeof(s->sent) - s->sent_len)
		return FWA_ERR_TRANSPORT;
	memcpy(s->sent + s->sent_len, buf, len);
	s->sent_len += len;
	return FWA_OK;
}

static enum fwa_err s_recv(void *ctx, void *buf, size_t cap, uint32_t timeout_ms, size_t *got)
{
	struct script *s = ctx;
	size_t n = s->len - s->pos;

	(void)timeout_ms;
	if (n == 0) {
		*got = 0;
		return s->fail_at_end ? FWA_ERR_TRANSPORT : FWA_OK;
	}
	if (n > s->piece)
		n = s->piece;
	if (n > cap)
		n = cap;
	memcpy(buf, s->resp + s->pos, n);
	s->pos += n;
	*got = n;
	return FWA_OK;
}

static void s_close(void *ctx)
{
	(void)ctx;
}

static struct fwa_port port_of(struct script *s)
{
	struct fwa_port p;

	memset(&p, 0, sizeof(p));
	p.ctx = s;
	p.tr_connect = s_connect;
	p.tr_send = s_send;
	p.tr_recv = s_recv;
	p.tr_close = s_close;
	return p;
}

/* Read a whole response; returns the error, the body in out. */
static enum fwa_err fetch(const char *resp, size_t piece, bool reset, char *out, size_t cap,
                          size_t *len, struct fwa_http_resp *r)
{
	struct script s = {.resp = resp, .len = strlen(resp), .piece = piece, .fail_at_end = reset};
	struct fwa_port p = port_of(&s);
	struct fwa_http h;
	char buf[512];
	enum fwa_err err;

	err = fwa_http_read_head(&h, &p, buf, sizeof(buf), 1000);
	if (err != FWA_OK)
		return err;
	if (r)
		*r = h.resp;
	return fwa_http_read_all(&h, out, cap, len);
}

static void test_parse_head(void **state)
{
	struct fwa_http_resp r;
	const char *ok = "HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\n"
	                 "content-range: bytes 90-99/100\r\nConnection: close\r\n\r\n";

	(void)state;
	assert_int_equal(fwa_http_parse_head(ok, strlen(ok), &r), FWA_OK);
	assert_int_equal(r.status, 206);
	assert_true(r.has_length);
	assert_int_equal(r.length, 10);
	assert_true(r.has_range);
	assert_int_equal(r.range_first, 90);
	assert_int_equal(r.range_last, 99);
	assert_int_equal(r.range_total, 100);
	assert_true(r.conn_close);
}

static void test_parse_head_refusals(void **state)
{
	static const char *const bad[] = {
	    "HTTP/1.1 200 OK\r\n",                   /* no empty line */
	    "HTTP/2 200 OK\r\n\r\n",                 /* not HTTP/1.x */
	    "HTTP/1.1 2000 OK\r\n\r\n",              /* bad status */
	    "HTTP/1.1 099 X\r\n\r\n",                /* status out of range */
	    "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",    /* field without colon */
	    "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", /* obsolete folding */
	    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	    "HTTP/1.1 206 X\r\nContent-Range: bytes 5-4/10\r\n\r\n",
	    "HTTP/1.1 206 X\r\nContent-Range: bytes 0-10/10\r\n\r\n",
	    "HTTP/1.1 206 X\r\nContent-Range: items 0-1/10\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n",
	};
	struct fwa_http_resp r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (fwa_http_parse_head(bad[i], strlen(bad[i]), &r) != FWA_ERR_HTTP)
			fail_msg("accepted bad head %zu", i);
}

static void test_bodies_every_piece_size(void **state)
{
	static const struct {
		const char *resp;
		const char *body;
	} cases[] = {
	    {"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world", "hello world"},
	    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	     "5\r\nhello\r\n1;ext=1\r\n \r\nB\r\nworld again\r\n0\r\nTrailer: x\r\n\r\n",
	     "hello world again"},
	    {"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", "until the end"},
	    {"HTTP/1.1 204 No Content\r\n\r\n", ""},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", ""},
	};
	char out[64];
	size_t len;

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
		for (size_t piece = 1; piece <= strlen(cases[c].resp); piece++) {
			assert_int_equal(
			    fetch(cases[c].resp, piece, false, out, sizeof(out), &len, NULL),
			    FWA_OK);
			assert_int_equal(len, strlen(cases[c].body));
			assert_memory_equal(out, cases[c].body, len);
		}
}

static void test_body_errors(void **state)
{
	char out[16];
	size_t len;

	(void)state;
	/* Shorter than Content-Length: a truncated body is never complete. */
	assert_int_equal(fetch("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 3, false, out,
	                       sizeof(out), &len, NULL),
	                 FWA_ERR_TRANSPORT);
	/* Over the caller's bound. */
	assert_int_equal(fetch("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n01234567890123456789",
	                       7, false, out, sizeof(out), &len, NULL),
	                 FWA_ERR_TOO_LARGE);
	/* Bad chunk size, missing CRLF after data, truncated chunked stream. */
	assert_int_equal(fetch("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 4,
	                       false, out, sizeof(out), &len, NULL),
	                 FWA_ERR_HTTP);
	assert_int_equal(fetch("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
	                       4, false, out, sizeof(out), &len, NULL),
	                 FWA_ERR_HTTP);
	assert_int_equal(fetch("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
	                       4, false, out, sizeof(out), &len, NULL),
	                 FWA_ERR_TRANSPORT);
	/* A chunk size that would overflow. */
	assert_int_equal(fetch("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	                       "fffffffffffffffff\r\n",
	                       64, false, out, sizeof(out), &len, NULL),
	                 FWA_ERR_HTTP);
	/* A reset before the head ends. */
	assert_int_equal(
	    fetch("HTTP/1.1 200 OK\r\nContent-", 5, true, out, sizeof(out), &len, NULL),
	    FWA_ERR_TRANSPORT);
	/* A close-delimited body cut by a reset (not an orderly end). */
	assert_int_equal(fetch("HTTP/1.1 200 OK\r\n\r\nabc", 5, true, out, sizeof(out), &len, NULL),
	                 FWA_ERR_TRANSPORT);
}

static void test_head_too_large(void **state)
{
	char resp[1200], out[8];
	size_t len;

	(void)state;
	memset(resp, 'a', sizeof(resp));
	memcpy(resp, "HTTP/1.1 200 OK\r\nX: ", 20);
	memcpy(resp + sizeof(resp) - 5, "\r\n\r\n", 5);
	assert_int_equal(fetch(resp, 100, false, out, sizeof(out), &len, NULL), FWA_ERR_TOO_LARGE);
}

static void test_request_bytes(void **state)
{
	struct script s = {0};
	struct fwa_port p = port_of(&s);
	char req[256];
	static const char want[] = "POST /device/v1/checkin HTTP/1.1\r\nHost: h:1\r\n"
	                           "User-Agent: fwa/1\r\nRange: bytes=5-\r\n"
	                           "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";

	(void)state;
	assert_int_equal(fwa_http_send(&p, true, "POST", "h:1", "/device/v1/checkin",
	                               "Range: bytes=5-\r\n", "{}", 2, req, sizeof(req)),
	                 FWA_OK);
	assert_int_equal(s.sent_len, strlen(want));
	assert_memory_equal(s.sent, want, s.sent_len);
	/* Paths with spaces or controls are refused before anything is sent. */
	s.sent_len = 0;
	assert_int_equal(
	    fwa_http_send(&p, true, "GET", "h", "/a b", NULL, NULL, 0, req, sizeof(req)),
	    FWA_ERR_HTTP);
	assert_int_equal(
	    fwa_http_send(&p, true, "GET", "h", "rel", NULL, NULL, 0, req, sizeof(req)),
	    FWA_ERR_HTTP);
	assert_int_equal(fwa_http_send(&p, true, "GET", "h", "/x", NULL, NULL, 0, req, 20),
	                 FWA_ERR_TOO_LARGE);
	assert_int_equal(s.sent_len, 0);
}

/* Read a whole response in pieces of `piece`; true when its connection may carry the next. */
static bool reusable_after(const char *resp, size_t piece)
{
	struct script s = {.resp = resp, .len = strlen(resp), .piece = piece};
	struct fwa_port p = port_of(&s);
	struct fwa_http h;
	char buf[512], out[64];
	size_t len;

	assert_int_equal(fwa_http_read_head(&h, &p, buf, sizeof(buf), 1000), FWA_OK);
	assert_int_equal(fwa_http_read_all(&h, out, sizeof(out), &len), FWA_OK);
	return fwa_http_reusable(&h);
}

static void test_reusable(void **state)
{
	static const size_t pieces[] = {1, 7, 1000};

	(void)state;
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		size_t n = pieces[i];

		/* Framed by its length or by chunks, nothing after: the next request may follow. */
		assert_true(reusable_after("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", n));
		assert_true(reusable_after("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		                           "2\r\n{}\r\n0\r\n\r\n",
		                           n));
		assert_true(reusable_after("HTTP/1.1 204 No Content\r\n\r\n", n));
		/* The server closes it, the body ran to the end of the stream, or bytes follow the
		 * answer that no request asked for: a new connection. */
		assert_false(reusable_after(
		    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", n));
		assert_false(reusable_after("HTTP/1.1 200 OK\r\n\r\n{}", n));
	}
	assert_false(
	    reusable_after("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1", 1000));
}

/* A request on the kept connection does not connect; one on a new connection does. */
static void test_send_on_kept_connection(void **state)
{
	struct script s = {0};
	struct fwa_port p = port_of(&s);
	char req[256];

	(void)state;
	assert_int_equal(
	    fwa_http_send(&p, false, "GET", "h", "/x", NULL, NULL, 0, req, sizeof(req)), FWA_OK);
	assert_int_equal(s.connects, 0);
	assert_true(s.sent_len > 0);
	assert_int_equal(fwa_http_send(&p, true, "GET", "h", "/x", NULL, NULL, 0, req, sizeof(req)),
	                 FWA_OK);
	assert_int_equal(s.connects, 1);
	/* HTTP/1.1's persistent connection: the agent never asks for a close. */
	s.sent[s.sent_len < sizeof(s.sent) ? s.sent_len : sizeof(s.sent) - 1] = '\0';
	assert_null(strstr(s.sent, "Connection"));
}

static void test_string_builder(void **state)
{
	char buf[8];
	struct fwa_sb b;

	(void)state;
	fwa_sb_init(&b, buf, sizeof(buf));
	fwa_sb_u64(&b, 0);
	fwa_sb_str(&b, "-");
	fwa_sb_u64(&b, 12345);
	assert_false(b.overflow);
	assert_string_equal(buf, "0-12345");
	fwa_sb_str(&b, "x");
	assert_true(b.overflow);
	assert_string_equal(buf, "0-12345");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_head),
	    cmocka_unit_test(test_parse_head_refusals),
	    cmocka_unit_test(test_bodies_every_piece_size),
	    cmocka_unit_test(test_body_errors),
	    cmocka_unit_test(test_head_too_large),
	    cmocka_unit_test(test_request_bytes),
	    cmocka_unit_test(test_reusable),
	    cmocka_unit_test(test_send_on_kept_connection),
	    cmocka_unit_test(test_string_builder),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
