/*
 * Start-up and exit of the core's test programs on QEMU's mps2-an505 (a Cortex-M33).
 *
 * The reset handler enables the FPU (code built for the hard-float ABI may use it from the
 * first instruction of main), arms the stack limit register so that an overflow faults instead
 * of silently corrupting data, copies .data, zeroes .bss and opens newlib's semihosting file
 * handles before main. main's return value leaves QEMU as its exit status through the
 * semihosting SYS_EXIT_EXTENDED call. Every fault prints its status registers and exits with
 * M33_EXIT_FAULT, so a crash can never pass for success.
 */
#include <stdint.h>
#include <stdio.h>

#include "m33.h"

extern uint32_t __data_load__[], __data_start__[], __data_end__[];
extern uint32_t __bss_start__[], __bss_end__[];
extern uint32_t __stack_top__[], __stack_limit__[];

extern void initialise_monitor_handles(void);
int main(void);

void m33_reset(void) __attribute__((noreturn));
void m33_fault(void) __attribute__((naked, noreturn));
void m33_fault_report(const uint32_t *frame, uint32_t exc_return) __attribute__((noreturn));
void m33_unexpected(void) __attribute__((noreturn));

#define REG(a) (*(volatile uint32_t *)(a))
#define SCB_ICSR 0xE000ED04u
#define SCB_SHCSR 0xE000ED24u
#define SCB_CFSR 0xE000ED28u
#define SCB_HFSR 0xE000ED2Cu
#define SCB_MMFAR 0xE000ED34u
#define SCB_BFAR 0xE000ED38u
#define SCB_CPACR 0xE000ED88u
#define SCB_SFSR 0xE000EDE4u

#define SYS_WRITE0 0x04u
#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static uint32_t semihost(uint32_t op, const void *arg)
{
	register uint32_t r0 __asm__("r0") = op;
	register const void *r1 __asm__("r1") = arg;
	__asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
	return r0;
}

/* Raw semihosting output: safe inside a fault handler, unlike stdio. */
static void put(const char *s)
{
	semihost(SYS_WRITE0, s);
}

static void put_hex(const char *name, uint32_t v)
{
	char buf[20];
	unsigned n = 0;
	buf[n++] = ' ';
	while (*name && n < 8)
		buf[n++] = *name++;
	buf[n++] = '=';
	for (int shift = 28; shift >= 0; shift -= 4)
		buf[n++] = "0123456789abcdef"[(v >> shift) & 0xf];
	buf[n] = '\0';
	put(buf);
}

void m33_exit(int code)
{
	/* The application-exit reason with a subcode is the only way to carry a status. */
	uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
	fflush(stdout);
	fflush(stderr);
	semihost(SYS_EXIT_EXTENDED, block);
	for (;;)
		__asm__ volatile("bkpt 0"); /* not reached under QEMU */
}

void m33_fault(void)
{
	/* Hand the stacked exception frame (MSP or PSP, per EXC_RETURN bit 2) to C. */
	__asm__ volatile("tst lr, #4\n"
	                 "ite eq\n"
	                 "mrseq r0, msp\n"
	                 "mrsne r0, psp\n"
	                 "mov r1, lr\n"
	                 "b m33_fault_report\n");
}

void m33_fault_report(const uint32_t *frame, uint32_t exc_return)
{
	put("\nm33: FAULT exception");
	put_hex("ipsr", REG(SCB_ICSR) & 0x1ffu);
	put_hex("cfsr", REG(SCB_CFSR));
	put_hex("hfsr", REG(SCB_HFSR));
	put_hex("sfsr", REG(SCB_SFSR));
	put_hex("mmfar", REG(SCB_MMFAR));
	put_hex("bfar", REG(SCB_BFAR));
	put_hex("exc", exc_return);
	/* A stack overflow faults before the frame is written: do not trust it then. */
	if ((uintptr_t)frame >= (uintptr_t)__stack_limit__ &&
	    (uintptr_t)frame + 32 <= (uintptr_t)__stack_top__) {
		put_hex("pc", frame[6]);
		put_hex("lr", frame[5]);
	}
	put("\n");
	uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, M33_EXIT_FAULT};
	semihost(SYS_EXIT_EXTENDED, block);
	for (;;)
		;
}

void m33_unexpected(void)
{
	put("\nm33: unexpected exception\n");
	uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, M33_EXIT_FAULT};
	semihost(SYS_EXIT_EXTENDED, block);
	for (;;)
		;
}

void m33_reset(void)
{
	/* Full access to CP10/CP11 (the FPU) before any floating-point instruction. */
	REG(SCB_CPACR) |= 0xfu << 20;
	__asm__ volatile("dsb\n isb" ::: "memory");
	/* A stack overflow becomes a UsageFault (STKOF) instead of corrupting .bss. */
	__asm__ volatile("msr msplim, %0" : : "r"(__stack_limit__));
	/* MemManage, BusFault, UsageFault and SecureFault report as themselves. */
	REG(SCB_SHCSR) |= (1u << 16) | (1u << 17) | (1u << 18) | (1u << 19);

	const uint32_t *src = __data_load__;
	for (uint32_t *dst = __data_start__; dst < __data_end__;)
		*dst++ = *src++;
	for (uint32_t *dst = __bss_start__; dst < __bss_end__;)
		*dst++ = 0;

	initialise_monitor_handles();
	m33_exit(main());
}

/* Initial stack pointer and the system exceptions; no peripheral interrupt is enabled. */
__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))__stack_top__,
    m33_reset,
    m33_unexpected, /* NMI */
    m33_fault,      /* HardFault */
    m33_fault,      /* MemManage */
    m33_fault,      /* BusFault */
    m33_fault,      /* UsageFault */
    m33_fault,      /* SecureFault */
    0,
    0,
    0,
    m33_unexpected, /* SVCall */
    m33_unexpected, /* DebugMonitor */
    0,
    m33_unexpected, /* PendSV */
    m33_unexpected, /* SysTick */
};
