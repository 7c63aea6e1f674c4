/*
 * A program that must fail: it prints a line, then stores to an address no bus answers on
 * the mps2-an505. The harness must turn the resulting fault into a report and a non-zero exit
 * status, or a crashing test could pass for a successful one (m33-tests.cmake runs it twice:
 * once expecting the report, once expecting the failure).
 */
#include <stdio.h>

int main(void)
{
	printf("selftest: about to fault\n");
	fflush(stdout);
	*(volatile unsigned *)0x90000000u = 1;
	printf("selftest: still running after the fault\n");
	return 0;
}
