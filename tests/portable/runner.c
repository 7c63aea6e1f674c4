/*
 * The runner of the portable core tests: runs each case of the suite, counts checks, and
 * reports failures with file, line and the values compared, in freestanding C so that it runs
 * unchanged on the host and on the emulated Cortex-M33.
 */
#include <string.h>

#include "ptest.h"

static unsigned passed, failed;
static const char *current_case;
static bool case_reported;

static void out_uint(unsigned long long v)
{
	char buf[24];
	unsigned n = sizeof buf;
	buf[--n] = '\0';
	do {
		buf[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v && n);
	ptest_out(buf + n);
}

static void out_int(long long v)
{
	if (v < 0) {
		ptest_out("-");
		out_uint(0ull - (unsigned long long)v);
	} else {
		out_uint((unsigned long long)v);
	}
}

static void fail_head(const char *file, int line)
{
	if (!case_reported) {
		ptest_out("FAIL ");
		ptest_out(current_case);
		ptest_out("\n");
		case_reported = true;
	}
	ptest_out("  ");
	ptest_out(file);
	ptest_out(":");
	out_int(line);
	ptest_out(": ");
}

static bool count(bool ok)
{
	if (ok)
		passed++;
	else
		failed++;
	return ok;
}

bool ptest_check(bool ok, const char *expr, const char *file, int line)
{
	if (!ok) {
		fail_head(file, line);
		ptest_out(expr);
		ptest_out("\n");
	}
	return count(ok);
}

bool ptest_check_int(long long a, long long b, const char *ea, const char *eb, const char *file,
                     int line)
{
	if (a != b) {
		fail_head(file, line);
		ptest_out(ea);
		ptest_out(" == ");
		ptest_out(eb);
		ptest_out(" (");
		out_int(a);
		ptest_out(" != ");
		out_int(b);
		ptest_out(")\n");
	}
	return count(a == b);
}

bool ptest_check_err(int got, int want, const char *eg, const char *file, int line)
{
	if (got != want) {
		fail_head(file, line);
		ptest_out(eg);
		ptest_out(" gave \"");
		ptest_out(fwa_strerror((enum fwa_err)got));
		ptest_out("\", expected \"");
		ptest_out(fwa_strerror((enum fwa_err)want));
		ptest_out("\"\n");
	}
	return count(got == want);
}

bool ptest_check_mem(const void *a, const void *b, size_t n, const char *ea, const char *eb,
                     const char *file, int line)
{
	bool ok = memcmp(a, b, n) == 0;
	if (!ok) {
		fail_head(file, line);
		ptest_out(ea);
		ptest_out(" and ");
		ptest_out(eb);
		ptest_out(" differ\n");
	}
	return count(ok);
}

bool ptest_check_str(const char *a, const char *b, const char *ea, const char *eb, const char *file,
                     int line)
{
	bool ok = a && b && strcmp(a, b) == 0;
	if (!ok) {
		fail_head(file, line);
		ptest_out(ea);
		ptest_out(" == ");
		ptest_out(eb);
		ptest_out(" (\"");
		ptest_out(a ? a : "(null)");
		ptest_out("\" != \"");
		ptest_out(b ? b : "(null)");
		ptest_out("\")\n");
	}
	return count(ok);
}

unsigned ptest_run(const struct ptest_kit *kit)
{
	unsigned ncases = 0;
	passed = failed = 0;
	for (const struct ptest_case *c = ptest_suite.cases; c->name; c++) {
		current_case = c->name;
		case_reported = false;
		c->fn(kit);
		ncases++;
	}
	ptest_out(ptest_suite.name);
	ptest_out(" [");
	ptest_out(kit->name);
	ptest_out("]: ");
	out_uint(ncases);
	ptest_out(" cases, ");
	out_uint(passed);
	ptest_out(" passed, ");
	out_uint(failed);
	ptest_out(" failed\n");
	/* A suite that checked nothing proves nothing. */
	return failed + (passed == 0);
}
