/*
 * test_server_guard.c - a listener's guard (http/guard.h): the per-address connection limit,
 * and the block of an address that presented too many refused certificates: the count, the
 * window, the block's end, IPv6 addresses counted per /64, and every refusal reported with
 * its reason and address.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "http/guard.h"

struct seen {
	unsigned n;
	char reason[32], addr[64], detail[160];
};

static void refused(void *ctx, const char *reason, const char *addr, const char *detail)
{
	struct seen *s = ctx;

	s->n++;
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
	snprintf(s->addr, sizeof(s->addr), "%s", addr);
	snprintf(s->detail, sizeof(s->detail), "%s", detail);
}

static struct sockaddr_storage sa(const char *text)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	if (inet_pton(AF_INET, text, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else {
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
		s6->sin6_family = AF_INET6;
	}
	return ss;
}

static bool admit(struct ota_guard *g, const char *text)
{
	struct sockaddr_storage ss = sa(text);

	return ota_guard_admit(g, (struct sockaddr *)&ss, sizeof(ss));
}

/* A connection from text that presents a refused certificate; true when it blocks. */
static bool strike_from(struct ota_guard *g, const char *text)
{
	struct sockaddr_storage ss = sa(text);
	struct ota_guard_conn *c = ota_guard_open(g, -1, (struct sockaddr *)&ss);
	assert_non_null(c);
	bool blocked = ota_guard_strike(g, c);
	ota_guard_close(g, c);
	return blocked;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void per_address_limit(void **state)
{
	struct seen s = {0};
	struct ota_guard *g;
	struct ota_guard_limits lim = {.per_ip = 2, .header_s = 10, .body_s = 10};
	(void)state;

	assert_int_equal(ota_guard_new(&lim, refused, &s, &g), OTA_OK);
	struct sockaddr_storage a = sa("192.0.2.1");
	struct ota_guard_conn *c1 = ota_guard_open(g, -1, (struct sockaddr *)&a);
	struct ota_guard_conn *c2 = ota_guard_open(g, -1, (struct sockaddr *)&a);
	assert_false(admit(g, "192.0.2.1"));
	assert_string_equal(s.reason, "per-address-limit");
	assert_string_equal(s.addr, "192.0.2.1");
	assert_true(admit(g, "192.0.2.2"));
	ota_guard_close(g, c1);
	assert_true(admit(g, "192.0.2.1"));
	ota_guard_close(g, c2);
	assert_int_equal(ota_guard_open_count(g), 0);
	/* No strikes configured: refused certificates never block. */
	for (int i = 0; i < 50; i++)
		assert_false(strike_from(g, "192.0.2.3"));
	assert_true(admit(g, "192.0.2.3"));
	ota_guard_free(g);
}

static void strikes_block_an_address(void **state)
{
	struct seen s = {0};
	struct ota_guard *g;
	struct ota_guard_limits lim = {.header_s = 10, .body_s = 10, .strikes = 3, .block_s = 1};
	(void)state;

	assert_int_equal(ota_guard_new(&lim, refused, &s, &g), OTA_OK);
	assert_false(strike_from(g, "192.0.2.1"));
	assert_false(strike_from(g, "192.0.2.1"));
	assert_true(admit(g, "192.0.2.1"));
	assert_int_equal(s.n, 0);
	assert_true(strike_from(g, "192.0.2.1")); /* the third blocks */
	assert_false(admit(g, "192.0.2.1"));
	assert_int_equal(s.n, 1);
	assert_string_equal(s.reason, "address-blocked");
	assert_string_equal(s.addr, "192.0.2.1");
	assert_non_null(strstr(s.detail, "192.0.2.1 is blocked for 1 s more"));
	/* Strikes while blocked do not extend the block. */
	assert_false(strike_from(g, "192.0.2.1"));
	assert_true(admit(g, "192.0.2.2"));
	sleep_ms(1100);
	ota_guard_sweep(g, ota_guard_now_ms());
	assert_true(admit(g, "192.0.2.1"));
	/* After the block the count starts again from nothing. */
	assert_false(strike_from(g, "192.0.2.1"));
	assert_false(strike_from(g, "192.0.2.1"));
	assert_true(admit(g, "192.0.2.1"));
	ota_guard_free(g);
}

static void strikes_outside_the_window_do_not_add_up(void **state)
{
	struct seen s = {0};
	struct ota_guard *g;
	struct ota_guard_limits lim = {.header_s = 10, .body_s = 10, .strikes = 3, .block_s = 1};
	(void)state;

	assert_int_equal(ota_guard_new(&lim, refused, &s, &g), OTA_OK);
	assert_false(strike_from(g, "192.0.2.9"));
	assert_false(strike_from(g, "192.0.2.9"));
	sleep_ms(1100);
	assert_false(strike_from(g, "192.0.2.9"));
	assert_false(strike_from(g, "192.0.2.9"));
	assert_true(admit(g, "192.0.2.9"));
	assert_true(strike_from(g, "192.0.2.9"));
	assert_false(admit(g, "192.0.2.9"));
	ota_guard_free(g);
}

static void ipv6_counts_per_64(void **state)
{
	struct seen s = {0};
	struct ota_guard *g;
	struct ota_guard_limits lim = {.header_s = 10, .body_s = 10, .strikes = 2, .block_s = 5};
	(void)state;

	assert_int_equal(ota_guard_new(&lim, refused, &s, &g), OTA_OK);
	/* Two hosts of one /64 share a count; another /64 does not. */
	assert_false(strike_from(g, "2001:db8:1:2::a"));
	assert_true(strike_from(g, "2001:db8:1:2:ffff::b"));
	assert_false(admit(g, "2001:db8:1:2::c"));
	assert_string_equal(s.reason, "address-blocked");
	assert_string_equal(s.addr, "2001:db8:1:2::c");
	assert_non_null(strstr(s.detail, "2001:db8:1:2::/64 is blocked"));
	assert_true(admit(g, "2001:db8:1:3::a"));
	/* IPv4 addresses are their own. */
	assert_false(strike_from(g, "198.51.100.1"));
	assert_true(admit(g, "198.51.100.2"));
	ota_guard_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(per_address_limit),
	    cmocka_unit_test(strikes_block_an_address),
	    cmocka_unit_test(strikes_outside_the_window_do_not_add_up),
	    cmocka_unit_test(ipv6_counts_per_64),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
