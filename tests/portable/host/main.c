/*
 * main() of every portable test program on the host: runs the suite linked in with the
 * OpenSSL kit; the exit status is 0 only when every check passed.
 */
#include <stdio.h>

#include "kit_openssl.h"

void ptest_out(const char *s)
{
	fputs(s, stdout);
}

int main(void)
{
	unsigned failed = ptest_run(ptest_kit_openssl());
	ptest_kit_openssl_free();
	fflush(stdout);
	return failed ? 1 : 0;
}
