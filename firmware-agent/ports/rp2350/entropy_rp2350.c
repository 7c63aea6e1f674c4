/*
 * entropy_rp2350.c - the entropy source of the RP2350 firmware's TLS: the chip's TRNG with
 * its health tests on (the von Neumann decorrelator, the continuous random-number test and
 * the autocorrelation test), 192 bits per block. The SDK's pico_rand drives the same TRNG with
 * every test bypassed and mixes the raw samples into a non-cryptographic PRNG, fine for
 * jitter but not for keys; so mbedTLS's entropy does not come from it (no
 * MBEDTLS_ENTROPY_HARDWARE_ALT): lwIP's TLS layer seeds its CTR_DRBG from this function
 * (ALTCP_MBEDTLS_RNG_FN in lwipopts.h). ECDSA signatures take no nonce from any generator at
 * all: they are deterministic (RFC 6979, mbedtls_config.h).
 */
#include <string.h>

#include "hardware/regs/trng.h"
#include "hardware/structs/trng.h"
#include "pico/time.h"

#include "lwipopts.h"

/* ROSC samples are taken this many clock cycles apart (the reset value, 0xffff, is slowest). */
#define SAMPLE_CYCLES 1024u
/* One block takes well under a millisecond at this rate; give up on a stuck TRNG after this. */
#define BLOCK_TIMEOUT_US 100000u
#define TRIES 4
#define HEALTH_ERRORS                                                                              \
	(TRNG_RNG_ISR_VN_ERR_BITS | TRNG_RNG_ISR_CRNGT_ERR_BITS | TRNG_RNG_ISR_AUTOCORR_ERR_BITS)
/* MBEDTLS_ERR_ENTROPY_SOURCE_FAILED, without pulling mbedTLS's headers in here. */
#define ERR_SOURCE_FAILED (-0x003C)

/* One 192-bit block that passed every health test; false on a test failure or a timeout. */
static bool trng_block(uint32_t out[6])
{
	uint64_t until = time_us_64() + BLOCK_TIMEOUT_US;
	bool ok = false;

	trng_hw->rnd_source_enable = 0;
	trng_hw->rng_icr = 0xffffffffu;
	trng_hw->trng_debug_control = 0; /* nothing bypassed: every health test runs */
	trng_hw->sample_cnt1 = SAMPLE_CYCLES;
	trng_hw->rnd_source_enable = 1;
	for (;;) {
		uint32_t isr = trng_hw->rng_isr;

		if (isr & HEALTH_ERRORS)
			break;
		if (isr & TRNG_RNG_ISR_EHR_VALID_BITS) {
			for (unsigned i = 0; i < 6; i++)
				out[i] = trng_hw->ehr_data[i];
			ok = true;
			break;
		}
		if (time_us_64() > until)
			break;
	}
	trng_hw->rnd_source_enable = 0;
	trng_hw->rng_icr = 0xffffffffu;
	if (!ok)
		trng_hw->trng_sw_reset = 1; /* a failed test stops the TRNG until it is reset */
	return ok;
}

int fwa_rp2350_entropy(void *ctx, unsigned char *buf, size_t len)
{
	uint32_t block[6];

	(void)ctx;
	while (len) {
		unsigned tries = 0;
		size_t n = len < sizeof(block) ? len : sizeof(block);

		while (!trng_block(block))
			if (++tries == TRIES)
				return ERR_SOURCE_FAILED;
		memcpy(buf, block, n);
		buf += n;
		len -= n;
	}
	memset(block, 0, sizeof(block));
	return 0;
}
