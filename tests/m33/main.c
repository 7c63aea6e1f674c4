/*
 * main() of every portable test program on the emulated Cortex-M33: runs the suite linked in
 * with the crypto double; the number of failed checks decides QEMU's exit status.
 */
#include <stdio.h>

#include "kit_double.h"
#include "m33.h"

void ptest_out(const char *s)
{
	fputs(s, stdout);
}

int main(void)
{
	return ptest_run(&ptest_kit_double) ? 1 : 0;
}
