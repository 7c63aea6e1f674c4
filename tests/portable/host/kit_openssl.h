/*
 * kit_openssl.h - the host's test crypto kit for the portable core tests: OpenSSL, with keys
 * generated at run time (tests/portable/host/kit_openssl.c).
 */
#ifndef KIT_OPENSSL_H
#define KIT_OPENSSL_H

#include "ptest.h"

/* The kit; keys are made on first use. Never fails itself; a failed key makes its use fail. */
const struct ptest_kit *ptest_kit_openssl(void);
/* Free the generated keys. */
void ptest_kit_openssl_free(void);

#endif
