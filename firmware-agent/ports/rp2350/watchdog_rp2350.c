/*
 * watchdog_rp2350.c - the watchdog of the RP2350 agent firmware. Outside a trial it is armed
 * once and fed whenever something moves forward (the core's watchdog_feed, bytes over the
 * transport). During an unbought TBYB trial it belongs to the bootrom's deadline, and only the
 * core re-arms it (trial_rearm), for at most one period and never past the agent's own trial
 * deadline. Behind every reboot it is the backstop: rom_explicit_buy turns the watchdog off
 * before it can fail, so a reboot that did not happen would otherwise leave the chip running
 * an unbought trial for ever.
 *
 * The port and the transport both call into this file; it calls neither of them.
 */
#include "hardware/structs/watchdog.h"
#include "hardware/watchdog.h"

#include "port_rp2350.h"

void fwa_rp2350_watchdog_arm(struct fwa_rp2350 *p)
{
	watchdog_enable(FWA_RP2350_WATCHDOG_MS, true);
	p->watchdog_armed = true;
}

void fwa_rp2350_progress(struct fwa_rp2350 *p)
{
	/*
	 * Never during an unbought trial: there only the core's trial_rearm may extend the
	 * deadline, so that a trial that moves bytes but never finishes still ends.
	 */
	if (p->boot.trial || !p->watchdog_armed)
		return;
	watchdog_update();
}

uint32_t fwa_rp2350_trial_rearm(void *ctx, uint32_t ms)
{
	struct fwa_rp2350 *p = ctx;

	if (!p->boot.trial || ms == 0)
		return 0;
	if (ms > FWA_RP2350_WATCHDOG_MS)
		ms = FWA_RP2350_WATCHDOG_MS; /* 24 bits of microseconds: about 16.7 s at most */
	/*
	 * A watchdog reset during the trial is a normal boot, and the bootrom never picks an
	 * unbought TBYB image on a normal boot: the previous image runs, as when the bootrom's
	 * own trial watchdog fires. Only the count is reloaded: watchdog_enable() would also
	 * rewrite scratch register 4 and the reset selection, which the bootrom set up for the
	 * trial. Writing LOAD restarts the count (RP2350: 1 us ticks).
	 */
	watchdog_hw->load = ms * 1000u;
	hw_set_bits(&watchdog_hw->ctrl, WATCHDOG_CTRL_ENABLE_BITS);
	return ms;
}

void fwa_rp2350_watchdog_backstop(void)
{
	watchdog_enable(FWA_RP2350_BACKSTOP_MS, false);
}
