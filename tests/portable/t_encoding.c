/*
 * Portable tests of the core's text encodings: base64 (strict, padded, canonical) and hex.
 */
#include <string.h>

#include "ptest.h"

static void b64_rfc4648_vectors(const struct ptest_kit *kit)
{
	static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const enc[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
	                                  "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	(void)kit;
	for (unsigned i = 0; i < 7; i++) {
		char out[16];
		uint8_t dec[16];
		long n =
		    fwa_base64_encode((const uint8_t *)plain[i], strlen(plain[i]), out, sizeof out);
		PT_EQ(n, (long)strlen(enc[i]));
		if (n >= 0)
			PT_MEM(out, enc[i], (size_t)n);
		n = fwa_base64_decode(enc[i], strlen(enc[i]), dec, sizeof dec);
		PT_EQ(n, (long)strlen(plain[i]));
		if (n >= 0)
			PT_MEM(dec, plain[i], (size_t)n);
	}
}

static void b64_all_bytes_round_trip(const struct ptest_kit *kit)
{
	uint8_t in[256], back[256];
	char enc[344];
	(void)kit;
	for (unsigned i = 0; i < 256; i++)
		in[i] = (uint8_t)(255 - i);
	for (size_t len = 0; len <= 256; len += 37) {
		long n = fwa_base64_encode(in, len, enc, sizeof enc);
		PT_EQ(n, (long)((len + 2) / 3 * 4));
		PT_REQUIRE(n >= 0);
		PT_EQ(fwa_base64_decode(enc, (size_t)n, back, sizeof back), (long)len);
		PT_MEM(back, in, len);
	}
}

static void b64_rejects_non_canonical(const struct ptest_kit *kit)
{
	static const char *const bad[] = {
	    "Zg=",      /* length not a multiple of 4 */
	    "Zg",       /* padding missing */
	    "Zh==",     /* unused bits not zero */
	    "Zm9=",     /* unused bits not zero */
	    "Z===",     /* three padding characters */
	    "Zg==Zg==", /* padding before the end */
	    "Zm 9v",    /* whitespace */
	    "Zm9v\n",   /* trailing newline */
	    "Zm9-",     /* URL alphabet */
	    "Zm9_",     "=Zm9", "Zm=v",
	};
	uint8_t out[16];
	(void)kit;
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (!PT_EQ(fwa_base64_decode(bad[i], strlen(bad[i]), out, sizeof out), -1)) {
			ptest_out("    input: ");
			ptest_out(bad[i]);
			ptest_out("\n");
		}
	}
}

static void b64_respects_capacity(const struct ptest_kit *kit)
{
	uint8_t out[8];
	char enc[8];
	(void)kit;
	memset(out, 0xAA, sizeof out);
	PT_EQ(fwa_base64_decode("Zm9vYmFy", 8, out, 5), -1);
	PT_EQ(fwa_base64_decode("Zm9vYmFy", 8, out, 6), 6);
	PT_EQ(out[6], 0xAA); /* nothing past what was decoded */
	PT_EQ(fwa_base64_encode((const uint8_t *)"foob", 4, enc, 7), -1);
	PT_EQ(fwa_base64_encode((const uint8_t *)"foob", 4, enc, 8), 8);
}

static void hex_round_trip_and_errors(const struct ptest_kit *kit)
{
	static const uint8_t bytes[] = {0x00, 0x01, 0xab, 0xcd, 0xef, 0xff, 0x10};
	char hex[2 * sizeof bytes + 1];
	uint8_t back[sizeof bytes];
	(void)kit;
	fwa_hex(bytes, sizeof bytes, hex);
	PT_STR(hex, "0001abcdefff10");
	PT_OK(fwa_unhex(hex, strlen(hex), back));
	PT_MEM(back, bytes, sizeof bytes);
	PT_OK(fwa_unhex("ABCDEF", 6, back));
	PT_EQ(back[0], 0xab);
	PT_ERR(fwa_unhex("abc", 3, back), FWA_ERR_MALFORMED);
	PT_ERR(fwa_unhex("zz", 2, back), FWA_ERR_MALFORMED);
	PT_ERR(fwa_unhex("0x", 2, back), FWA_ERR_MALFORMED);
	PT_ERR(fwa_unhex(" 0", 2, back), FWA_ERR_MALFORMED);
}

static void strerror_names_every_code(const struct ptest_kit *kit)
{
	(void)kit;
	for (int e = 0; e <= FWA_ERR__COUNT; e++)
		PT_CHECK(fwa_strerror((enum fwa_err)e) != NULL && fwa_strerror((enum fwa_err)e)[0]);
	PT_CHECK(fwa_strerror((enum fwa_err) - 1) != NULL);
	PT_CHECK(strcmp(fwa_strerror(FWA_ERR_SIGNATURE), fwa_strerror(FWA_ERR_THRESHOLD)) != 0);
	PT_STR(fwa_strerror(FWA_ERR_THRESHOLD), "signature threshold not met");
	PT_STR(fwa_strerror(FWA_ERR__COUNT), "unknown error");
	PT_STR(fwa_strerror((enum fwa_err) - 1), "unknown error");
}

static const struct ptest_case cases[] = {
    {"b64_rfc4648_vectors", b64_rfc4648_vectors},
    {"b64_all_bytes_round_trip", b64_all_bytes_round_trip},
    {"b64_rejects_non_canonical", b64_rejects_non_canonical},
    {"b64_respects_capacity", b64_respects_capacity},
    {"hex_round_trip_and_errors", hex_round_trip_and_errors},
    {"strerror_names_every_code", strerror_names_every_code},
    {NULL, NULL},
};

const struct ptest_suite ptest_suite = {"encoding", cases};
