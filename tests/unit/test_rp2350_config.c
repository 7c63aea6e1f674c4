/*
 * Checks of the RP2350 firmware's TLS configuration, on the host (the firmware build needs the
 * Pico SDK, CI does not have it): the mbedTLS and lwIP settings the port's security rests on.
 *  - ECDSA signatures are deterministic (RFC 6979, with HMAC_DRBG): no nonce from a generator;
 *  - mbedTLS takes no entropy from the SDK's pico_rand (no MBEDTLS_ENTROPY_HARDWARE_ALT): lwIP
 *    seeds its CTR_DRBG from fwa_rp2350_entropy, the TRNG with its health tests on, and that
 *    function turns none of the tests off;
 *  - the extended master secret is on, since sessions are resumed with tickets;
 *  - the server certificate must verify (lwIP's default would accept any);
 *  - credential renewal can make a key and a PKCS#10 request in the firmware, and the identity
 *    partition has room for the renewal store past the provisioned records, which the
 *    firmware may write;
 *  - the production partition table gives the bootloader (BOOTSEL: picotool, UF2) no access at
 *    all, so that it can neither rewrite the table nor read the identity, nor write an image
 *    that would; and it lays the partitions out exactly as the development table does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fwa/json.h"
#include "lwipopts.h"
#include "mbedtls_config.h"

#define STR_(x) #x
#define STR(x) STR_(x)

static void test_deterministic_ecdsa(void **state)
{
	(void)state;
#if !defined(MBEDTLS_ECDSA_DETERMINISTIC) || !defined(MBEDTLS_HMAC_DRBG_C)
	fail_msg("MBEDTLS_ECDSA_DETERMINISTIC and MBEDTLS_HMAC_DRBG_C must be defined");
#endif
#if !defined(MBEDTLS_ECDSA_C)
	fail_msg("MBEDTLS_ECDSA_C is off");
#endif
}

static void test_entropy_source(void **state)
{
	(void)state;
#if defined(MBEDTLS_ENTROPY_HARDWARE_ALT)
	fail_msg("MBEDTLS_ENTROPY_HARDWARE_ALT would make pico_rand mbedTLS's entropy source");
#endif
#if !defined(MBEDTLS_NO_PLATFORM_ENTROPY)
	fail_msg("there is no platform entropy on the RP2350");
#endif
	assert_string_equal(STR(ALTCP_MBEDTLS_RNG_FN), "fwa_rp2350_entropy");
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = calloc(1, 1 << 16);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, (1 << 16) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void test_trng_health_tests_on(void **state)
{
	char *src = read_text(FWA_RP2350_DIR "/entropy_rp2350.c");

	(void)state;
	/* Every bypass bit clear, and the error bits of all three tests acted on. */
	assert_non_null(strstr(src, "trng_hw->trng_debug_control = 0;"));
	assert_null(strstr(src, "trng_debug_control = -1"));
	assert_null(strstr(src, "BYPASS"));
	assert_non_null(strstr(src, "TRNG_RNG_ISR_VN_ERR_BITS"));
	assert_non_null(strstr(src, "TRNG_RNG_ISR_CRNGT_ERR_BITS"));
	assert_non_null(strstr(src, "TRNG_RNG_ISR_AUTOCORR_ERR_BITS"));
	/* And nothing in the TLS path draws from pico_rand. */
	assert_null(strstr(src, "get_rand"));
	free(src);
	src = read_text(FWA_RP2350_DIR "/transport_rp2350.c");
	assert_null(strstr(src, "get_rand"));
	assert_non_null(strstr(src, "mbedtls_pk_check_pair"));
	free(src);
	/* Nor the port's randomness: it draws the signed-time nonce. */
	src = read_text(FWA_RP2350_DIR "/port_rp2350.c");
	assert_null(strstr(src, "get_rand"));
	assert_non_null(strstr(src, "fwa_rp2350_entropy(NULL, buf, len)"));
	free(src);
}

static void test_tls_session(void **state)
{
	(void)state;
#if !defined(MBEDTLS_SSL_EXTENDED_MASTER_SECRET)
	fail_msg("MBEDTLS_SSL_EXTENDED_MASTER_SECRET must be on with session tickets");
#endif
#if !defined(MBEDTLS_SSL_SESSION_TICKETS)
	fail_msg("session tickets are how a check-in stays one short handshake");
#endif
	assert_string_equal(STR(ALTCP_MBEDTLS_AUTHMODE), "MBEDTLS_SSL_VERIFY_REQUIRED");
}

/* Parse a partition table; the text stays alive in *text for the tokens. */
static void test_renewal(void **state)
{
	(void)state;
#if !defined(MBEDTLS_PK_WRITE_C) || !defined(MBEDTLS_X509_CSR_WRITE_C) ||                          \
    !defined(MBEDTLS_PEM_WRITE_C) || !defined(MBEDTLS_X509_CREATE_C)
	fail_msg("credential renewal needs PK_WRITE, X509_CSR_WRITE, X509_CREATE and PEM_WRITE");
#endif
}

static void load_table(const char *name, struct fwa_json *j, struct fwa_json_tok *tok,
                       unsigned ntok, char **text)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", FWA_RP2350_DIR, name);
	*text = read_text(path);
	assert_int_equal(fwa_json_parse(j, *text, strlen(*text), tok, ntok), FWA_OK);
}

static void perm(const struct fwa_json *j, int obj, const char *who, char *out)
{
	int t = fwa_json_get(j, fwa_json_get(j, obj, "permissions"), who);

	assert_true(t >= 0);
	assert_int_equal(fwa_json_str(j, t, out, 8, NULL), FWA_OK);
}

static void field(const struct fwa_json *j, int obj, const char *key, char *out, size_t cap)
{
	int t = fwa_json_get(j, obj, key);

	out[0] = '\0';
	if (t >= 0 && fwa_json_str(j, t, out, cap, NULL) != FWA_OK)
		snprintf(out, cap, "(not a string)");
}

static void test_production_partition_table(void **state)
{
	static struct fwa_json_tok dtok[512], ptok[512];
	struct fwa_json dev, prod;
	char *dtext, *ptext, a[64], b[64];
	int dparts, pparts;
	unsigned i;

	(void)state;
	load_table("partition_table.json", &dev, dtok, 512, &dtext);
	load_table("partition_table_production.json", &prod, ptok, 512, &ptext);
	/* The table lives in unpartitioned space: the bootloader must not write it. */
	perm(&prod, fwa_json_get(&prod, 0, "unpartitioned"), "bootloader", a);
	assert_string_equal(a, "");
	dparts = fwa_json_get(&dev, 0, "partitions");
	pparts = fwa_json_get(&prod, 0, "partitions");
	for (i = 0; fwa_json_at(&dev, dparts, i) >= 0; i++) {
		int d = fwa_json_at(&dev, dparts, i), p = fwa_json_at(&prod, pparts, i);
		static const char *const same[] = {"name", "id", "start", "size"};

		assert_true(p >= 0);
		for (unsigned k = 0; k < sizeof(same) / sizeof(same[0]); k++) {
			field(&dev, d, same[k], a, sizeof(a));
			field(&prod, p, same[k], b, sizeof(b));
			assert_string_equal(a, b);
		}
		perm(&dev, d, "secure", a);
		perm(&prod, p, "secure", b);
		assert_string_equal(a, b); /* the firmware keeps what it needs */
		perm(&prod, p, "bootloader", b);
		assert_string_equal(b, ""); /* no read, no write: identity and images alike */
		field(&dev, d, "name", a, sizeof(a));
		if (strcmp(a, "identity") == 0) {
			/* The renewal store: its last 8 KiB (port_rp2350.h), written by the
			 * firmware. */
			field(&dev, d, "size", b, sizeof(b));
			assert_string_equal(b, "32K");
			perm(&dev, d, "secure", b);
			assert_string_equal(b, "rw");
			perm(&dev, d, "bootloader", b);
			assert_null(
			    strchr(b, 'r')); /* even the provisioning table never reads it */
		}
	}
	assert_true(i >= 4);
	assert_int_equal(fwa_json_at(&prod, pparts, i), -1);
	free(dtext);
	free(ptext);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_deterministic_ecdsa),
	    cmocka_unit_test(test_entropy_source),
	    cmocka_unit_test(test_trng_health_tests_on),
	    cmocka_unit_test(test_tls_session),
	    cmocka_unit_test(test_renewal),
	    cmocka_unit_test(test_production_partition_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
