/*
 * Unit tests of what keeps a log line one line and an open connection's identity current: the
 * logger's escaping and the entries it sends journald (common/log.c), and the store's access
 * generation (store/store.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/log.h"
#include "store/mgmt_store.h"
#include "store/store.h"
#include "store_fixture.h"

static void escape_is(const char *in, const char *want)
{
	char out[256];
	assert_string_equal(ota_log_escape(in, out, sizeof(out)), want);
}

static void test_escape_controls(void **state)
{
	(void)state;
	escape_is("plain text, / and %", "plain text, / and %");
	escape_is("a\nb", "a\\x0ab");
	escape_is("a\r\n2026 otad notice: FORGED", "a\\x0d\\x0a2026 otad notice: FORGED");
	escape_is("\033[31mred\x7f", "\\x1b[31mred\\x7f");
	escape_is("tab\there", "tab\\x09here");
	escape_is("back\\slash", "back\\\\slash"); /* so that \x0a in a value stays unambiguous */
}

static void test_escape_utf8(void **state)
{
	(void)state;
	escape_is("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	          "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	escape_is("\xff\xfe", "\\xff\\xfe");
	escape_is("\xc0\xaf", "\\xc0\\xaf");                   /* overlong '/' */
	escape_is("\xed\xa0\x80", "\\xed\\xa0\\x80");          /* a surrogate */
	escape_is("\xe2\x82", "\\xe2\\x82");                   /* cut short at the end */
	escape_is("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* above U+10FFFF */
}

static void test_escape_bounded(void **state)
{
	char out[8];
	(void)state;
	/* Cut at a whole escape, always terminated. */
	assert_string_equal(ota_log_escape("abc\n\n", out, sizeof(out)), "abc\\x0a");
	assert_string_equal(ota_log_escape("abcd\n", out, sizeof(out)), "abcd");
	assert_string_equal(ota_log_escape("abcdefghij", out, sizeof(out)), "abcdefg");
	assert_string_equal(ota_log_escape("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", out, sizeof(out)),
	                    "\xc3\xa9\xc3\xa9\xc3\xa9");
}

/* True when s holds no byte below 0x20 nor DEL: one line, no terminal escapes. */
static bool one_line(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* What journald receives: device-controlled values (URL, certificate names, a device's JSON)
 * as fields of their own, escaped, and a MESSAGE that stays one line. */
static void test_journal_fields(void **state)
{
	static const char url[] = "/device/v1/x%0a\\n\n2026 otad notice: FORGED";
	static const char cn[] = "dev\r\nice\033[2J";
	static const char hw[] = "pico2w\n\xff";
	const struct ota_log_field f[] = {{"OTA_METHOD", "GET"},
	                                  {"OTA_URL", url},
	                                  {"OTA_ACTOR", NULL}, /* left out */
	                                  {"OTA_CN", cn},
	                                  {"OTA_HW_VARIANT", hw}};
	struct ota_log_journal j;
	char message[512];
	(void)state;

	snprintf(message, sizeof(message), "GET %s by %s (%s): 404 no resource", url, cn, hw);
	ota_log_journal_entries(LOG_INFO, message, f, 5, &j);
	assert_int_equal(j.n, 6);
	assert_string_equal(j.entry[0],
	                    "MESSAGE=GET /device/v1/x%0a\\\\n\\x0a2026 otad notice: "
	                    "FORGED by dev\\x0d\\x0aice\\x1b[2J (pico2w\\x0a\\xff): 404 "
	                    "no resource");
	assert_string_equal(j.entry[1], "PRIORITY=6");
	assert_string_equal(j.entry[2], "OTA_METHOD=GET");
	assert_string_equal(j.entry[3],
	                    "OTA_URL=/device/v1/x%0a\\\\n\\x0a2026 otad notice: FORGED");
	assert_string_equal(j.entry[4], "OTA_CN=dev\\x0d\\x0aice\\x1b[2J");
	assert_string_equal(j.entry[5], "OTA_HW_VARIANT=pico2w\\x0a\\xff");
	for (unsigned i = 0; i < j.n; i++)
		assert_true(one_line(j.entry[i]));
}

/* At most OTA_LOG_FIELDS_MAX fields, each value cut to 511 bytes (still one line). */
static void test_journal_bounds(void **state)
{
	struct ota_log_field f[OTA_LOG_FIELDS_MAX + 2];
	static char big[3000];
	struct ota_log_journal j;
	(void)state;

	memset(big, '\n', sizeof(big) - 1);
	for (unsigned i = 0; i < OTA_LOG_FIELDS_MAX + 2; i++)
		f[i] = (struct ota_log_field){"OTA_DETAIL", big};
	ota_log_journal_entries(LOG_ERR, big, f, OTA_LOG_FIELDS_MAX + 2, &j);
	assert_int_equal(j.n, 2 + OTA_LOG_FIELDS_MAX);
	assert_string_equal(j.entry[1], "PRIORITY=3");
	for (unsigned i = 0; i < j.n; i++)
		assert_true(one_line(j.entry[i]));
	assert_true(strlen(j.entry[2]) <= strlen("OTA_DETAIL=") + 511);
	assert_int_equal(strncmp(j.entry[2], "OTA_DETAIL=\\x0a", 15), 0);
}

/* A reason repeated within its window is held back and counted; a new reason passes at once;
 * after the window the reason passes again with the count of those held back. */
static void test_limit(void **state)
{
	struct ota_log_limit l = OTA_LOG_LIMIT_INIT(1);
	unsigned long left = 99;

	(void)state;
	assert_true(ota_log_limit_pass(&l, "out of reach", &left));
	assert_int_equal(left, 0);
	for (int i = 0; i < 5; i++)
		assert_false(ota_log_limit_pass(&l, "out of reach", &left));
	assert_true(ota_log_limit_pass(&l, "too many clients", &left));
	assert_int_equal(left, 5);
	assert_false(ota_log_limit_pass(&l, "too many clients", &left));
	struct timespec pause = {.tv_sec = 1, .tv_nsec = 100 * 1000 * 1000};
	nanosleep(&pause, NULL);
	assert_true(ota_log_limit_pass(&l, "too many clients", &left));
	assert_int_equal(left, 1);
}

static void test_access_generation(void **state)
{
	char dir[OTA_TEST_DIR_MAX], path[OTA_TEST_PATH_MAX];
	struct ota_store *st;
	uint64_t g0, g1, g2;
	(void)state;

	assert_int_equal(ota_test_store_open("access", dir, path, &st), 0);
	g0 = ota_store_access_generation();
	assert_int_equal(ota_store_revoke(st, "aa", "test", 1), OTA_OK);
	g1 = ota_store_access_generation();
	assert_true(g1 > g0);
	/* In a transaction: it moves when written, and again at the commit. */
	assert_int_equal(ota_store_tx_begin(st), OTA_OK);
	assert_int_equal(ota_store_revoke(st, "bb", "test", 2), OTA_OK);
	g2 = ota_store_access_generation();
	assert_true(g2 > g1);
	assert_int_equal(ota_store_tx_end(st, true), OTA_OK);
	assert_true(ota_store_access_generation() > g2);
	/* A read does not move it. */
	g2 = ota_store_access_generation();
	bool revoked = false;
	assert_int_equal(ota_store_is_revoked(st, "aa", &revoked), OTA_OK);
	assert_true(revoked);
	assert_int_equal(ota_store_access_generation(), g2);
	assert_int_equal(ota_test_store_close(dir, st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape_controls), cmocka_unit_test(test_escape_utf8),
	    cmocka_unit_test(test_escape_bounded),  cmocka_unit_test(test_journal_fields),
	    cmocka_unit_test(test_journal_bounds),  cmocka_unit_test(test_access_generation),
	    cmocka_unit_test(test_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
