/*
 * Unit tests of what keeps a log line one line and an open connection's identity current: the
 * logger's escaping (common/log.c) and the store's access generation (store/store.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
	    cmocka_unit_test(test_escape_controls),
	    cmocka_unit_test(test_escape_utf8),
	    cmocka_unit_test(test_escape_bounded),
	    cmocka_unit_test(test_access_generation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
