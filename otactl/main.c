/*
 * otactl/main.c - the otactl executable: everything is in the library (ctl.h) so that the
 * tests link the same code.
 */
#include "ctl.h"

int main(int argc, char **argv)
{
	return ota_ctl_main(argc, argv);
}
