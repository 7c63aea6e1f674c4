/*
 * Portable tests of RFC 3339 UTC timestamps: parse, format, calendar rules, bad input.
 */
#include <string.h>

#include "ptest.h"

static enum fwa_err parse(const char *s, int64_t *t)
{
	return fwa_time_parse(s, strlen(s), t);
}

static void known_instants(const struct ptest_kit *kit)
{
	static const struct {
		const char *s;
		int64_t t;
	} v[] = {
	    {"1970-01-01T00:00:00Z", 0},
	    {"2000-02-29T12:34:56Z", 951827696},
	    {"2038-01-19T03:14:08Z", 2147483648ll}, /* past 32-bit time_t */
	    {"2026-11-22T04:25:00Z", 1795321500},
	    {"2100-03-01T00:00:00Z", 4107542400ll},
	    {"9999-12-31T23:59:59Z", 253402300799ll},
	};
	(void)kit;
	for (unsigned i = 0; i < sizeof v / sizeof v[0]; i++) {
		int64_t t = -1;
		char out[21];
		PT_OK(parse(v[i].s, &t));
		PT_EQ(t, v[i].t);
		fwa_time_format(v[i].t, out);
		PT_STR(out, v[i].s);
	}
}

static void every_day_round_trips(const struct ptest_kit *kit)
{
	/* Each day of 1999..2101 (leap years, the 2000 and 2100 century rules) at 23:59:59. */
	unsigned bad = 0;
	(void)kit;
	for (int64_t t = 915148799; t < 4133980800ll; t += 86400) {
		char s[21];
		int64_t back = 0;
		fwa_time_format(t, s);
		if (fwa_time_parse(s, 20, &back) != FWA_OK || back != t)
			bad++;
	}
	PT_EQ(bad, 0);
}

static void rejects_malformed(const struct ptest_kit *kit)
{
	static const char *const bad[] = {
	    "",
	    "2026-11-22",
	    "2026-11-22T04:25:00",
	    "2026-11-22T04:25:00+00:00",
	    "2026-11-22t04:25:00Z",
	    "2026-11-22 04:25:00Z",
	    "2026-11-22T04:25:00.5Z",
	    "2026-13-01T00:00:00Z",
	    "2026-00-01T00:00:00Z",
	    "2026-04-31T00:00:00Z",
	    "2026-02-29T00:00:00Z",
	    "2100-02-29T00:00:00Z",
	    "1900-02-29T00:00:00Z",
	    "2026-01-00T00:00:00Z",
	    "2026-01-01T24:00:00Z",
	    "2026-01-01T00:60:00Z",
	    "2026-01-01T00:00:60Z",
	    "1969-12-31T23:59:59Z",
	    "+026-01-01T00:00:00Z",
	    "2026-1-01T00:00:00Z",
	};
	(void)kit;
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int64_t t = 77;
		if (!PT_ERR(parse(bad[i], &t), FWA_ERR_MALFORMED)) {
			ptest_out("    input: ");
			ptest_out(bad[i]);
			ptest_out("\n");
		}
	}
}

static void leap_days(const struct ptest_kit *kit)
{
	int64_t a, b;
	(void)kit;
	PT_OK(parse("2024-02-29T00:00:00Z", &a));
	PT_OK(parse("2024-03-01T00:00:00Z", &b));
	PT_EQ(b - a, 86400);
	PT_OK(parse("2000-02-29T00:00:00Z", &a));
}

static void format_clamps(const struct ptest_kit *kit)
{
	char out[21];
	(void)kit;
	fwa_time_format(-5, out);
	PT_STR(out, "1970-01-01T00:00:00Z");
	fwa_time_format(INT64_MAX, out);
	PT_STR(out, "9999-12-31T23:59:59Z");
}

static const struct ptest_case cases[] = {
    {"known_instants", known_instants},       {"every_day_round_trips", every_day_round_trips},
    {"rejects_malformed", rejects_malformed}, {"leap_days", leap_days},
    {"format_clamps", format_clamps},         {NULL, NULL},
};

const struct ptest_suite ptest_suite = {"time", cases};
