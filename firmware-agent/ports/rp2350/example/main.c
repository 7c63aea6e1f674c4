/*
 * The example application of the RP2350 agent firmware: how a product firmware embeds the
 * agent. It sets up the port (which loads the provisioned identity), starts the agent with
 * one health check, then steps the agent between its own work, keeping Wi-Fi and lwIP
 * polled. The health check reads the chip's temperature sensor: an image whose ADC setup is
 * broken never gets bought, and the bootrom brings back the previous one.
 *
 * The image's version and rollback version are set at build time (CMake cache variables
 * FWA_RP2350_VERSION and FWA_RP2350_ROLLBACK; build.sh passes them through).
 */
#include <stdio.h>

#include "hardware/adc.h"
#include "pico/stdlib.h"

#include "fwa/agent.h"
#include "port_rp2350.h"

extern char __flash_binary_end; /* the SDK's linker script: end of the flash image */

#ifndef FWA_RP2350_VERSION
#error "FWA_RP2350_VERSION (the image's semantic version) must be set by the build"
#endif
#ifndef FWA_RP2350_TRIAL_DEADLINE_S
#define FWA_RP2350_TRIAL_DEADLINE_S 0 /* the agent's default */
#endif

static struct fwa_rp2350 port;
static struct fwa_agent agent;
static uint64_t scratch[(FWA_AGENT_SCRATCH_SIZE + 7) / 8];

/* Health check: the on-chip temperature sensor answers with a plausible value. */
static enum fwa_err check_temperature(void *ctx)
{
	(void)ctx;
	adc_init();
	adc_set_temp_sensor_enabled(true);
	adc_select_input(4); /* the temperature sensor on RP2350 (QFN-60) */
	uint16_t raw = adc_read();
	float volts = (float)raw * 3.3f / 4096.0f;
	float celsius = 27.0f - (volts - 0.706f) / 0.001721f;
	printf("app: temperature %.1f C\n", (double)celsius);
	return celsius > -40.0f && celsius < 105.0f ? FWA_OK : FWA_ERR_HEALTH;
}

static const struct fwa_health_check checks[] = {
    {"temperature-sensor", check_temperature, NULL},
};

int main(void)
{
	struct fwa_agent_config cfg = {0};
	const char *why = NULL;
	enum fwa_err err;

	stdio_init_all();
	printf("app: version %s (rollback %u)\n", FWA_RP2350_VERSION,
	       (unsigned)FWA_RP2350_ROLLBACK);

	err = fwa_rp2350_init(&port, &why);
	if (err != FWA_OK) {
		/* Without a port there is no agent; the product would run without updates. */
		printf("app: agent port not ready: %s (%s)\n", why ? why : "?", fwa_strerror(err));
		for (;;) {
			sleep_ms(1000);
			fwa_rp2350_progress(&port); /* as below: never during a trial */
		}
	}
	printf("app: slot %c%s, reset %d, secure boot %s\n",
	       port.boot.active_slot == FWA_SLOT_B ? 'B' : 'A', port.boot.trial ? " (trial)" : "",
	       (int)port.boot.reset, port.secure_boot ? "on" : "off");

	cfg.hw_variant = port.id.hw_variant;
	cfg.version = FWA_RP2350_VERSION;
	/*
	 * The running image's size, for delta updates: the .bin spans the linked flash image
	 * (the image signed by ota-sign release). Were it to differ, its hash would match no
	 * delta's base and the server would offer full images only.
	 */
	cfg.image_size = (uint32_t)((uintptr_t)&__flash_binary_end - XIP_BASE);
	cfg.host = port.id.host_header;
	cfg.image_format = "bin";
	cfg.root_json = port.id.root_json;
	cfg.root_len = port.id.root_len;
	cfg.checks = checks;
	cfg.nchecks = sizeof(checks) / sizeof(checks[0]);
	cfg.trial_deadline_s = FWA_RP2350_TRIAL_DEADLINE_S;
	/* Health after the confirm: reboots, watchdog resets (the port reads the chip's reset
	 * reason) and failed checks are reported for a day of uptime after a buy. */
	cfg.health_window_s = 86400u;
	err = fwa_agent_init(&agent, &port.port, &cfg, scratch, sizeof(scratch));
	if (err != FWA_OK) {
		/*
		 * The product keeps running without updates; its own work is the progress that
		 * feeds the watchdog. During a trial feeding is refused, so an image whose agent
		 * cannot start is never bought and the bootrom brings back the previous one.
		 */
		printf("app: agent did not start: %s\n", fwa_strerror(err));
		for (;;) {
			fwa_rp2350_poll(&port, 1000);
			fwa_rp2350_progress(&port);
		}
	}

	for (;;) {
		struct fwa_step step;

		err = fwa_agent_step(&agent, &step);
		if (err != FWA_OK)
			printf("app: agent step: %s\n", fwa_strerror(err));
		if (step.rebooting) {
			/* The port asked the bootrom for a reboot: it comes within milliseconds. */
			for (;;)
				tight_loop_contents();
		}
		/* The product's own work would run here, between agent steps. */
		fwa_rp2350_poll(&port, step.wait_ms < 1000 ? step.wait_ms : 1000);
	}
}
