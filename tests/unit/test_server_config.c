/*
 * test_server_config.c - the configuration reader: defaults, every kind of value, relative
 * paths, and each refusal naming its line (unknown, duplicate, bad value, missing, syntax).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/log.h"
#include "config/config.h"

#define REQUIRED                                                                                   \
	"[server]\ndata_dir = /var/lib/otad\n[tls]\ncert = s.pem\nkey = s.key\n"                   \
	"[device]\nca = d.pem\n[management]\nca = o.pem\n"

static enum ota_err parse(const char *text, struct ota_config *c, char *msg, size_t n)
{
	return ota_config_parse(text, strlen(text), "t.conf", "/etc/otad", c, msg, n);
}

static void defaults_and_required(void **state)
{
	struct ota_config c;
	char msg[256] = "";
	(void)state;

	assert_int_equal(parse(REQUIRED, &c, msg, sizeof(msg)), OTA_OK);
	assert_string_equal(c.data_dir, "/var/lib/otad");
	assert_string_equal(c.tls_cert, "/etc/otad/s.pem"); /* relative to the file's folder */
	assert_string_equal(c.device.ca, "/etc/otad/d.pem");
	assert_string_equal(c.device.listen, "127.0.0.1:8443");
	assert_string_equal(c.management.listen, "127.0.0.1:9443");
	assert_string_equal(c.device.crl, "");
	assert_int_equal(c.threads, 2);
	assert_int_equal(c.connection_timeout, 30);
	assert_int_equal(c.body_max, 16384);
	assert_int_equal(c.poll_interval, 300);
	assert_true(c.session_tickets);
	assert_int_equal(c.identity_cache, 100000);
	assert_string_equal(c.ticket_key, ""); /* a random key per process */
	assert_int_equal(c.log_level, LOG_INFO);
}

static void values(void **state)
{
	struct ota_config c;
	char msg[256] = "";
	(void)state;

	assert_int_equal(
	    parse(REQUIRED "# comment\n; another\n\n[limits]\n  body_max =  2048  \r\n"
	                   "connection_timeout=5\n[tls]\nsession_tickets = no\nidentity_cache = 0\n"
	                   "ticket_key = ticket.key\n"
	                   "[server]\nlog_level = debug\n[trust]\nroot = /abs/root-1.json\n",
	          &c, msg, sizeof(msg)),
	    OTA_OK);
	assert_int_equal(c.body_max, 2048);
	assert_int_equal(c.connection_timeout, 5);
	assert_false(c.session_tickets);
	assert_int_equal(c.identity_cache, 0);
	assert_string_equal(c.ticket_key, "/etc/otad/ticket.key");
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_string_equal(c.trusted_root, "/abs/root-1.json");
}

/* The issuing key: a path resolved like any other, or a PKCS#11 URI kept as written. */
static void issuer_key_ref(void **state)
{
	struct ota_config c;
	char msg[256] = "";
	(void)state;

	assert_int_equal(parse(REQUIRED "[trust]\nissuer_key = issuer.key\n", &c, msg, sizeof(msg)),
	                 OTA_OK);
	assert_string_equal(c.issuer_key, "/etc/otad/issuer.key");
	assert_int_equal(parse(REQUIRED "[trust]\nissuer_key = pkcs11:token=ota;object=issuer\n"
	                                "issuer_key_pin_file = issuer.pin\n"
	                                "pkcs11_module = /usr/lib/softhsm/libsofthsm2.so\n",
	                       &c, msg, sizeof(msg)),
	                 OTA_OK);
	assert_string_equal(c.issuer_key, "pkcs11:token=ota;object=issuer");
	assert_string_equal(c.issuer_key_pin_file, "/etc/otad/issuer.pin");
	assert_string_equal(c.pkcs11_module, "/usr/lib/softhsm/libsofthsm2.so");
	/* Other path keys do not take a URI. */
	assert_int_equal(
	    parse(REQUIRED "[trust]\ntime_key = pkcs11:token=ota\n", &c, msg, sizeof(msg)), OTA_OK);
	assert_string_equal(c.time_key, "/etc/otad/pkcs11:token=ota");
}

static void refused(const char *text, const char *expect)
{
	struct ota_config c;
	char msg[256] = "";

	assert_int_equal(parse(text, &c, msg, sizeof(msg)), OTA_ERR_CONFIG);
	if (!strstr(msg, expect))
		fail_msg("message \"%s\" lacks \"%s\"", msg, expect);
}

static void refusals(void **state)
{
	(void)state;
	refused(REQUIRED "[limits]\nfoo = 1\n", "t.conf:11: unknown key \"foo\" in [limits]");
	refused(REQUIRED "[server]\nthreads = 2\nthreads = 3\n",
	        "t.conf:12: duplicate key \"threads\" in [server] (first on line 11)");
	refused(REQUIRED "[server]\ndata_dir = /x\n", "t.conf:11: duplicate key \"data_dir\"");
	refused(REQUIRED "[nope]\n", "t.conf:10: unknown section [nope]");
	refused("data_dir = /x\n", "t.conf:1: key \"data_dir\" outside of a section");
	refused(REQUIRED "[server]\nthreads\n", "t.conf:11: expected \"key = value\"");
	refused(REQUIRED "[server\n", "t.conf:10: malformed section header");
	refused(REQUIRED "[server]\nthreads = 0\n", "server.threads: value out of range");
	refused(REQUIRED "[server]\nthreads = -1\n", "expected a non-negative integer");
	refused(REQUIRED "[server]\nthreads = 2x\n", "expected a non-negative integer");
	refused(REQUIRED "[server]\nthreads = 99999999999999999999999\n",
	        "expected a non-negative integer");
	refused(REQUIRED "[tls]\nsession_tickets = maybe\n", "expected true or false");
	refused(REQUIRED "[tls]\nidentity_cache = 10000001\n",
	        "tls.identity_cache: value out of range");
	refused(REQUIRED "[server]\nlog_level = loud\n", "expected one of");
	refused(REQUIRED "[device]\nlisten = 127.0.0.1:9443\n", "must differ");
	refused("[server]\ndata_dir = /x\n", "missing required key tls.cert");
}

static void nul_byte(void **state)
{
	static const char text[] = "[server]\ndata_dir = /x\0y\n";
	struct ota_config c;
	char msg[256] = "";
	(void)state;

	assert_int_equal(
	    ota_config_parse(text, sizeof(text) - 1, "t.conf", "", &c, msg, sizeof(msg)),
	    OTA_ERR_CONFIG);
	assert_non_null(strstr(msg, "t.conf:2: NUL byte"));
}

static void missing_file(void **state)
{
	struct ota_config c;
	char msg[256] = "";
	(void)state;

	assert_int_equal(ota_config_load("/nonexistent/otad.conf", &c, msg, sizeof(msg)),
	                 OTA_ERR_IO);
	assert_non_null(strstr(msg, "cannot open"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(defaults_and_required),
	    cmocka_unit_test(values),
	    cmocka_unit_test(issuer_key_ref),
	    cmocka_unit_test(refusals),
	    cmocka_unit_test(nul_byte),
	    cmocka_unit_test(missing_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
