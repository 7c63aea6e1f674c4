/*
 * Portable tests of semantic versions (SemVer 2.0.0): what is valid and the precedence order.
 */
#include <string.h>

#include "ptest.h"

static bool valid(const char *s)
{
	return fwa_semver_valid(s, strlen(s));
}

static void accepts_valid(const struct ptest_kit *kit)
{
	static const char *const ok[] = {
	    "0.0.0",
	    "1.2.3",
	    "10.20.30",
	    "1.0.0-alpha",
	    "1.0.0-alpha.1",
	    "1.0.0-0.3.7",
	    "1.0.0-x.7.z.92",
	    "1.0.0-x-y-z.--",
	    "1.0.0+20130313144700",
	    "1.0.0-beta+exp.sha.5114f85",
	    "1.0.0+21AF26D3----117B344092BD",
	    "999999999.0.0",
	    "1.0.0-x-y.0+exp.sha.5114f85",
	};
	(void)kit;
	for (unsigned i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (!PT_CHECK(valid(ok[i]))) {
			ptest_out("    version: ");
			ptest_out(ok[i]);
			ptest_out("\n");
		}
}

static void rejects_invalid(const struct ptest_kit *kit)
{
	static const char *const bad[] = {
	    "",
	    "1",
	    "1.2",
	    "1.2.3.4",
	    "v1.2.3",
	    "01.2.3",
	    "1.02.3",
	    "1.2.03",
	    "1.2.3-",
	    "1.2.3+",
	    "1.2.3-01",
	    "1.2.3-a..b",
	    "1.2.3-a_b",
	    " 1.2.3",
	    "1.2.3 ",
	    "-1.2.3",
	    "1.2.3-+",
	    "1.2.3+a+b",
	    "1.2.-3",
	    "1234567890.0.0", /* a field over 999999999 */
	    "1.0.0-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* > 64 */
	};
	(void)kit;
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (!PT_CHECK(!valid(bad[i]))) {
			ptest_out("    version: ");
			ptest_out(bad[i]);
			ptest_out("\n");
		}
}

static void precedence_chain(const struct ptest_kit *kit)
{
	/* The example chain of SemVer 2.0.0 section 11, then numeric fields compared as numbers. */
	static const char *const chain[] = {
	    "1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
	    "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",       "1.0.0",
	    "1.0.1",        "1.2.0",         "1.10.0",           "2.0.0",
	    "10.0.0",
	};
	const unsigned n = sizeof chain / sizeof chain[0];
	(void)kit;
	for (unsigned i = 0; i < n; i++) {
		for (unsigned j = 0; j < n; j++) {
			int c = fwa_semver_cmp(chain[i], chain[j]);
			int want = i < j ? -1 : i > j;
			if (!PT_EQ((c > 0) - (c < 0), want)) {
				ptest_out("    ");
				ptest_out(chain[i]);
				ptest_out(" vs ");
				ptest_out(chain[j]);
				ptest_out("\n");
			}
		}
	}
}

static void build_metadata_ignored(const struct ptest_kit *kit)
{
	(void)kit;
	PT_EQ(fwa_semver_cmp("1.2.3+a", "1.2.3+b"), 0);
	PT_EQ(fwa_semver_cmp("1.2.3-rc.1+x", "1.2.3-rc.1"), 0);
	PT_CHECK(fwa_semver_cmp("1.2.3+zzz", "1.2.4") < 0);
}

static void invalid_sorts_below_valid(const struct ptest_kit *kit)
{
	(void)kit;
	PT_CHECK(fwa_semver_cmp("garbage", "0.0.0") < 0);
	PT_CHECK(fwa_semver_cmp("0.0.0", "v1.0.0") > 0);
}

static const struct ptest_case cases[] = {
    {"accepts_valid", accepts_valid},
    {"rejects_invalid", rejects_invalid},
    {"precedence_chain", precedence_chain},
    {"build_metadata_ignored", build_metadata_ignored},
    {"invalid_sorts_below_valid", invalid_sorts_below_valid},
    {NULL, NULL},
};

const struct ptest_suite ptest_suite = {"semver", cases};
