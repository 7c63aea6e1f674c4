/*
 * tests/unit/test_otactl.c - otactl's library without a server: the strict config reader
 * (unknown, duplicate and empty keys refused with the line, relative paths), the precedence of
 * file, environment and flags, query building and percent-encoding, table alignment, the
 * status-to-exit mapping, and command-line refusals that never reach the network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl.h"

static void config_ok(void **state)
{
	struct ota_ctl_config c = {0};
	char msg[256] = "";
	(void)state;

	assert_int_equal(ota_ctl_config_parse("# comment\n\n; also\nserver = https://h:1\n"
	                                      "ca = ca.pem\ncert = /abs/c.pem\nkey = k.pem\n",
	                                      "f", "/etc/x", &c, msg, sizeof(msg)),
	                 OTACTL_OK);
	assert_string_equal(c.server, "https://h:1");
	assert_string_equal(c.ca, "/etc/x/ca.pem");
	assert_string_equal(c.cert, "/abs/c.pem");
	assert_string_equal(c.key, "/etc/x/k.pem");
	assert_string_equal(c.token_file, "");
}

static void config_strict(void **state)
{
	static const struct {
		const char *text, *msg;
	} bad[] = {
	    {"server = https://a\nbogus = 1\n",
	     "f:2: unknown key \"bogus\" (known: server, ca, cert, key, token_file)"},
	    {"server = https://a\n\nserver = https://b\n",
	     "f:3: duplicate key \"server\" (first on line 1)"},
	    {"ca =\n", "f:1: ca: empty value"},
	    {"just words\n", "f:1: expected \"key = value\""},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ota_ctl_config c = {0};
		char msg[256] = "";
		assert_int_equal(ota_ctl_config_parse(bad[i].text, "f", ".", &c, msg, sizeof(msg)),
		                 OTACTL_USAGE);
		assert_string_equal(msg, bad[i].msg);
	}
}

static void precedence(void **state)
{
	char dir[] = "/tmp/otactl-unit.XXXXXX", path[256], msg[512] = "";
	struct ota_ctl_config flags = {0}, out;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/config", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("server = https://file:1/\nca = ca.pem\ncert = file.pem\nkey = file.key\n", f);
	fclose(f);
	setenv("OTACTL_CERT", "/env.pem", 1);
	setenv("OTACTL_KEY", "/env.key", 1);
	unsetenv("OTACTL_SERVER");
	snprintf(flags.key, sizeof(flags.key), "/flag.key");
	snprintf(flags.cert, sizeof(flags.cert), "/flag.pem");
	assert_int_equal(ota_ctl_config_resolve(path, &flags, &out, msg, sizeof(msg)), OTACTL_OK);
	assert_string_equal(out.server, "https://file:1"); /* trailing slash dropped */
	assert_string_equal(out.cert, "/flag.pem");
	assert_string_equal(out.key, "/flag.key");
	char ca[300];
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	assert_string_equal(out.ca, ca);
	memset(&flags, 0, sizeof(flags));
	assert_int_equal(ota_ctl_config_resolve(path, &flags, &out, msg, sizeof(msg)), OTACTL_OK);
	assert_string_equal(out.cert, "/env.pem");
	unsetenv("OTACTL_CERT");
	unsetenv("OTACTL_KEY");
	/* An explicit file must exist; the default one may be missing. */
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(ota_ctl_config_resolve(path, &flags, &out, msg, sizeof(msg)),
	                 OTACTL_USAGE);
	setenv("HOME", dir, 1);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("OTACTL_CONFIG");
	assert_int_equal(ota_ctl_config_resolve(NULL, &flags, &out, msg, sizeof(msg)), OTACTL_OK);
	assert_string_equal(out.server, "https://127.0.0.1:9443");
	/* Only https, and a certificate needs its key. */
	snprintf(flags.server, sizeof(flags.server), "http://x");
	assert_int_equal(ota_ctl_config_resolve(NULL, &flags, &out, msg, sizeof(msg)),
	                 OTACTL_USAGE);
	memset(&flags, 0, sizeof(flags));
	snprintf(flags.cert, sizeof(flags.cert), "/c.pem");
	assert_int_equal(ota_ctl_config_resolve(NULL, &flags, &out, msg, sizeof(msg)),
	                 OTACTL_USAGE);
	snprintf(path, sizeof(path), "%s/config", dir);
	remove(path);
	rmdir(dir);
}

static void query(void **state)
{
	char p[64] = "/api/v1/devices", e[16];
	(void)state;

	assert_true(ota_ctl_query_add(p, sizeof(p), "tag", "line=3"));
	assert_true(ota_ctl_query_add(p, sizeof(p), "limit", "5"));
	assert_string_equal(p, "/api/v1/devices?tag=line%3D3&limit=5");
	assert_false(ota_ctl_query_add(p, sizeof(p), "x", "a very long value that does not fit"));
	assert_true(ota_ctl_escape("a b/c~", e, sizeof(e)));
	assert_string_equal(e, "a%20b%2Fc~");
	assert_false(ota_ctl_escape("0123456789abcdef", e, sizeof(e)));
}

static void table(void **state)
{
	static const struct ota_ctl_col cols[] = {
	    {"ID", "id", COL_STR}, {"TAGS", "tags", COL_LIST}, {"SEEN", "t", COL_TIME}};
	json_t *items = json_loads("[{\"id\":\"device-1\",\"tags\":[\"a\",\"b\"],\"t\":0},"
	                           "{\"id\":\"d2\",\"tags\":[],\"t\":null}]",
	                           0, NULL);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	(void)state;

	ota_ctl_table(f, items, cols, 3);
	fclose(f);
	assert_string_equal(buf, "ID        TAGS  SEEN\n"
	                         "device-1  a,b   1970-01-01T00:00:00Z\n"
	                         "d2        -     -\n");
	free(buf);
	json_decref(items);
}

static void exits(void **state)
{
	(void)state;
	assert_int_equal(ota_ctl_exit_of_status(200), OTACTL_OK);
	assert_int_equal(ota_ctl_exit_of_status(201), OTACTL_OK);
	assert_int_equal(ota_ctl_exit_of_status(403), OTACTL_REFUSED);
	assert_int_equal(ota_ctl_exit_of_status(409), OTACTL_REFUSED);
	assert_int_equal(ota_ctl_exit_of_status(404), OTACTL_NOT_FOUND);
	assert_int_equal(ota_ctl_exit_of_status(500), OTACTL_SERVER);
}

static int run(int argc, ...)
{
	char *argv[16];
	va_list ap;

	va_start(ap, argc);
	argv[0] = "otactl";
	for (int i = 1; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	argv[argc] = NULL;
	return ota_ctl_main(argc, argv);
}

static void usage(void **state)
{
	(void)state;
	/* Each is refused before any connection (there is no server). */
	assert_int_equal(run(2, "nosuch"), OTACTL_USAGE);
	assert_int_equal(run(3, "devices", "nosuch"), OTACTL_USAGE);
	assert_int_equal(run(3, "devices", "show"), OTACTL_USAGE);
	assert_int_equal(run(4, "devices", "list", "--bogus"), OTACTL_USAGE);
	assert_int_equal(run(4, "devices", "list", "--page-size"), OTACTL_USAGE);
	assert_int_equal(run(5, "devices", "list", "--page-size", "0"), OTACTL_USAGE);
	assert_int_equal(run(5, "rollouts", "create", "--name", "x"), OTACTL_USAGE);
	assert_int_equal(
	    run(9, "rollouts", "create", "--name", "x", "--release", "r", "--stage", "1:nope=3"),
	    OTACTL_USAGE);
	assert_int_equal(run(11, "rollouts", "create", "--name", "x", "--release", "r", "--stage",
	                     "100", "--window", "mon"),
	                 OTACTL_USAGE);
	assert_int_equal(run(4, "tokens", "create", "bot"), OTACTL_USAGE);
	assert_int_equal(run(4, "--server", "http://plain", "health"), OTACTL_USAGE);
	assert_int_equal(run(3, "devices", "--help"), OTACTL_OK);
	assert_int_equal(run(2, "--version"), OTACTL_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(config_ok),  cmocka_unit_test(config_strict),
	    cmocka_unit_test(precedence), cmocka_unit_test(query),
	    cmocka_unit_test(table),      cmocka_unit_test(exits),
	    cmocka_unit_test(usage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
