/*
 * kit_double.h - the crypto test double of the core's tests on the emulated Cortex-M33
 * (tests/m33/kit_double.c says what it is and why it is allowed there only).
 */
#ifndef KIT_DOUBLE_H
#define KIT_DOUBLE_H

#include "ptest.h"

extern const struct ptest_kit ptest_kit_double;

#endif
