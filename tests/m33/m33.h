/*
 * m33.h - the exit path of the core's test programs on QEMU's mps2-an505 (tests/m33).
 */
#ifndef M33_H
#define M33_H

/* Exit status of a program stopped by a fault or an unexpected exception. */
#define M33_EXIT_FAULT 99

/* Flush stdio and stop QEMU with `code` as its exit status. Never returns. */
void m33_exit(int code) __attribute__((noreturn));

#endif
