/*
 * ptest.h - the tiny assertion set of the portable core tests (tests/portable).
 *
 * The same test sources run on the host (linked with the real OpenSSL crypto port and keys
 * generated at run time) and on an emulated Cortex-M33 (QEMU mps2-an505, with a crypto test
 * double). So they are freestanding C: no heap, no stdio, only string.h and stdint.h. Each
 * suite defines `ptest_suite` (a name and a NULL-terminated case list); the platform's main
 * calls ptest_run() with its test crypto kit, and ptest_run() prints one line per failed check
 * and a final "<suite>: N passed, N failed" line through ptest_out().
 */
#ifndef PTEST_H
#define PTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fwa/verify.h"

#define PTEST_KEYS 8 /* test keys a kit provides: 0 .. PTEST_KEYS - 1 */

/*
 * What a platform gives the tests: a crypto port, and signing keys to build signed documents
 * with at run time. On the host these are real ECDSA P-256 keys generated when first asked for;
 * on the emulated M33 a test double whose "signatures" only its own p256_verify accepts.
 */
struct ptest_kit {
	const char *name;
	const struct fwa_crypto *crypto;
	/* DER SubjectPublicKeyInfo of key i. false when i is out of range or generation failed. */
	bool (*key_spki)(unsigned i, uint8_t spki[FWA_SPKI_P256_LEN]);
	/* DER ECDSA signature by key i over a SHA-256 digest; false on failure. */
	bool (*sign)(unsigned i, const uint8_t digest[32], uint8_t sig[FWA_SIG_MAX], size_t *len);
};

struct ptest_case {
	const char *name;
	void (*fn)(const struct ptest_kit *kit);
};

struct ptest_suite {
	const char *name;
	const struct ptest_case *cases; /* ends with a { NULL, NULL } entry */
};

/* Defined once by each suite. */
extern const struct ptest_suite ptest_suite;

/* Provided by the platform: write a NUL-terminated string to the test log. */
void ptest_out(const char *s);

/* Run every case of ptest_suite; returns the number of failed checks (0: all passed). */
unsigned ptest_run(const struct ptest_kit *kit);

/* Record one check; returns ok so that callers can stop a case early. */
bool ptest_check(bool ok, const char *expr, const char *file, int line);
bool ptest_check_int(long long a, long long b, const char *ea, const char *eb, const char *file,
                     int line);
bool ptest_check_err(int got, int want, const char *eg, const char *file, int line);
bool ptest_check_mem(const void *a, const void *b, size_t n, const char *ea, const char *eb,
                     const char *file, int line);
bool ptest_check_str(const char *a, const char *b, const char *ea, const char *eb, const char *file,
                     int line);

#define PT_CHECK(c) ptest_check((c) ? true : false, #c, __FILE__, __LINE__)
#define PT_EQ(a, b) ptest_check_int((long long)(a), (long long)(b), #a, #b, __FILE__, __LINE__)
#define PT_ERR(got, want) ptest_check_err((int)(got), (int)(want), #got, __FILE__, __LINE__)
#define PT_OK(got) PT_ERR(got, FWA_OK)
#define PT_MEM(a, b, n) ptest_check_mem((a), (b), (n), #a, #b, __FILE__, __LINE__)
#define PT_STR(a, b) ptest_check_str((a), (b), #a, #b, __FILE__, __LINE__)
/* An error's reason (the verifier's `why`) names the rule that refused the input. */
#define PT_RULE(why, rule)                                                                         \
	ptest_check((why) != NULL && strstr((why), (rule)) != NULL, "reason names " rule,          \
	            __FILE__, __LINE__)
/* Stop the current case when a precondition of the following checks does not hold. */
#define PT_REQUIRE(c)                                                                              \
	do {                                                                                       \
		if (!PT_CHECK(c))                                                                  \
			return;                                                                    \
	} while (0)
#define PT_REQUIRE_OK(got)                                                                         \
	do {                                                                                       \
		if (!PT_OK(got))                                                                   \
			return;                                                                    \
	} while (0)

#endif
