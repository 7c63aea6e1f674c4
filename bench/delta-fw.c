/*
 * A Cortex-M33 firmware image for the delta figures of bench/delta: the agent core (state
 * machine, HTTP, check-in, verifier, delta decoder) with a small application around it, linked
 * for QEMU's mps2-an505 the way the core's tests are. bench/delta builds it several times to
 * make image pairs: FW_VERSION changes the version string, FW_CHANGE adds a few lines to the
 * application's health check (everything linked after it moves), and compiler flags vary.
 * It is never run; only its bytes matter.
 */
#include <stdio.h>
#include <string.h>

#include "fwa/agent.h"

#ifndef FW_VERSION
#define FW_VERSION "1.0.0"
#endif

static const char version[] = FW_VERSION;
volatile uint32_t sensor_readings[16]; /* written by the ADC's DMA on a real board */

static enum fwa_err sensor_check(void *ctx)
{
	uint32_t sum = 0;

	(void)ctx;
	for (unsigned i = 0; i < 16; i++)
		sum += sensor_readings[i];
#ifdef FW_CHANGE
	/* The small code change: a plausibility check on every reading. */
	for (unsigned i = 0; i < 16; i++)
		if (sensor_readings[i] > 4095u)
			return FWA_ERR_HEALTH;
	if (sum == 0)
		return FWA_ERR_HEALTH;
#endif
	return sum < 16u * 4096u ? FWA_OK : FWA_ERR_HEALTH;
}

static enum fwa_err geo(void *ctx, struct fwa_flash_geometry *g)
{
	(void)ctx;
	g->slot_size = 512u * 1024u;
	g->erase_size = 4096;
	g->prog_size = 256;
	g->state_size = 8192;
	return FWA_OK;
}

static uint64_t now(void *ctx)
{
	static uint64_t t;

	(void)ctx;
	return t += 10;
}

static enum fwa_err rnd(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	memset(buf, 4, len);
	return FWA_OK;
}

static void sha_init(struct fwa_sha256 *h)
{
	memset(h, 0, sizeof(*h));
}

static void sha_update(struct fwa_sha256 *h, const void *d, size_t n)
{
	(void)h;
	(void)d;
	(void)n;
}

static void sha_final(struct fwa_sha256 *h, uint8_t out[32])
{
	memcpy(out, h->opaque, 32);
}

static enum fwa_err p256(const uint8_t spki[FWA_SPKI_P256_LEN], const uint8_t digest[32],
                         const uint8_t *sig, size_t sig_len)
{
	(void)spki;
	(void)digest;
	(void)sig;
	(void)sig_len;
	return FWA_ERR_SIGNATURE;
}

static const struct fwa_crypto crypto = {sha_init, sha_update, sha_final, p256};
static struct fwa_agent agent;
static struct fwa_agent_scratch scratch;

int main(void)
{
	static const struct fwa_health_check checks[] = {{"sensor", sensor_check, NULL}};
	struct fwa_agent_config cfg = {.hw_variant = "pico2_w",
	                               .version = version,
	                               .host = "ota.example:8443",
	                               .root_json = "{}",
	                               .root_len = 2,
	                               .checks = checks,
	                               .nchecks = 1};
	struct fwa_port port = {0};
	struct fwa_step step;

	port.crypto = &crypto;
	port.flash_geometry = geo;
	port.now_ms = now;
	port.random = rnd;
	if (fwa_agent_init(&agent, &port, &cfg, &scratch, sizeof(scratch)) != FWA_OK) {
		printf("firmware %s: agent refused to start\n", version);
		return 1;
	}
	while (fwa_agent_step(&agent, &step) == FWA_OK && !step.rebooting)
		;
	return 0;
}
