/*
 * main.c - ota-sign, the release manager's offline tool; everything is in the ota_signer
 * library (signer.h) so that tests run the same code.
 */
#include <stdio.h>

#include "signer.h"

int main(int argc, char **argv)
{
	return ota_signer_main(argc, argv, stdout, stderr);
}
