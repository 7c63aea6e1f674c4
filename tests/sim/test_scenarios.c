/*
 * Scenarios of the device agent on simulated hardware, each one an update the agent must get
 * right: the good path with every report in order; each faulty image kind rolled back by the
 * RP2350 rules with its reason; a power cut in the trial just before the buy; manifests for
 * another hardware variant, below the floor, or signed by an untrusted key refused before a
 * byte is written; a tampered image refused; a server that drops the download resumed from the
 * last good offset; a root rotation walked before the manifest that needs it; a trial that
 * cannot reach the server never bought; a buy the bootrom refuses ending in the previous image;
 * a slow network that outlasts the bootrom's watchdog but fits the agent's trial deadline, and
 * the same network without the deadline's re-arming; a trial that hangs, and one that keeps
 * moving without ever finishing, both reverted in bounded time;
 * and delta updates: applied from the running image, and the full image taken instead when
 * the delta is corrupted, gone from the server, made for another base or signed by an
 * untrusted key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "simkit.h"
#include "state.h"

#define SLOT_SIZE (64u * 1024u)
#define PAYLOAD 20000u

static struct kit_keys keys;
static char root[FWA_ENVELOPE_MAX];
static long root_len;
static uint8_t factory[PAYLOAD + SIM_PAGE];
static long factory_len;

struct fixture {
	struct kit_server srv;
	struct kit_device dev;
	uint8_t image[PAYLOAD + SIM_PAGE];
	long image_len;
	char manifest[FWA_ENVELOPE_MAX];
	long manifest_len;
	uint8_t *delta;
	size_t delta_len;
	char delta_meta[FWA_ENVELOPE_MAX];
	long delta_meta_len;
};

static int setup_all(void **state)
{
	(void)state;
	kit_keys_make(&keys);
	root_len = kit_root(keys.root, keys.release, 1, &keys.root, 1, root, sizeof(root));
	factory_len =
	    fwa_sim_mkimage("1.0.0", 1, KIT_HW, SIM_FAULT_NONE, PAYLOAD, factory, sizeof(factory));
	return root_len > 0 && factory_len > 0 ? 0 : -1;
}

static int teardown_all(void **state)
{
	(void)state;
	kit_keys_free(&keys);
	return 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	kit_server_init(&f->srv);
	kit_device_init(&f->dev, &f->srv, factory, (size_t)factory_len, root, (size_t)root_len,
	                SLOT_SIZE);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kit_device_free(&f->dev);
	kit_server_free(&f->srv);
	free(f->delta);
	free(f);
	return 0;
}

/* Offer an image of `version` (with a fault) under a manifest signed by signer. */
static void offer(struct fixture *f, const char *version, uint32_t secver, enum sim_fault fault,
                  const char *manifest_hw, uint32_t manifest_secver, EVP_PKEY *signer)
{
	f->image_len =
	    fwa_sim_mkimage(version, secver, KIT_HW, fault, PAYLOAD, f->image, sizeof(f->image));
	assert_true(f->image_len > 0);
	f->manifest_len = kit_manifest(signer, version, manifest_secver, manifest_hw, f->image,
	                               (size_t)f->image_len, f->manifest, sizeof(f->manifest));
	assert_true(f->manifest_len > 0);
	kit_server_offer(&f->srv, version, f->manifest, (size_t)f->manifest_len, f->image,
	                 (size_t)f->image_len);
}

static void load_state(struct fixture *f, struct fwa_state *st)
{
	assert_int_equal(fwa_state_load(&f->dev.port, st, NULL), FWA_OK);
}

static bool slot_erased(struct fixture *f, unsigned slot)
{
	const uint8_t *p = f->dev.sim.flash + SIM_SLOT0_OFF + slot * f->dev.sim.slot_size;

	for (uint32_t i = 0; i < f->dev.sim.slot_size; i++)
		if (p[i] != 0xff)
			return false;
	return true;
}

static void test_good_update(void **state)
{
	static const char *const order[] = {"downloading", "downloaded", "installing",
	                                    "rebooting",   "trial",      "confirmed"};
	struct fixture *f = *state;
	struct fwa_state st;

	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_string_equal(f->dev.sim.running.version, "1.1.0");
	assert_int_equal(f->dev.sim.active, FWA_SLOT_B);
	assert_false(f->dev.sim.trial);
	assert_true(f->srv.succeeded);
	assert_int_equal(f->srv.nevents, 6);
	for (unsigned i = 0; i < 6; i++) {
		assert_string_equal(f->srv.events[i].status, order[i]);
		assert_int_equal(f->srv.events[i].seq, i + 1);
	}
	assert_string_equal(f->srv.events[0].version, "1.0.0");
	assert_string_equal(f->srv.events[5].version, "1.1.0");
	/* The final check-in repeated the outcome. */
	assert_string_equal(f->srv.last_outcome, "confirmed");
	load_state(f, &st);
	assert_int_equal(st.floor, 2);
	assert_int_equal(st.phase, FWA_PHASE_IDLE);
	/* After a reboot it keeps running the bought image. */
	fwa_sim_power_cut(&f->dev.sim);
	assert_int_equal(kit_run(&f->dev, 100), KIT_IDLE);
	assert_string_equal(f->dev.sim.running.version, "1.1.0");
}

static void expect_rollback(struct fixture *f, const char *reason_part)
{
	struct fwa_state st;

	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_string_equal(f->dev.sim.running.version, "1.0.0");
	assert_int_equal(f->dev.sim.active, FWA_SLOT_A);
	assert_string_equal(f->srv.final_status, "rolled_back");
	assert_string_equal(f->srv.final_version, "1.0.0");
	if (!strstr(f->srv.final_reason, reason_part))
		fail_msg("reason '%s' lacks '%s'", f->srv.final_reason, reason_part);
	assert_false(f->srv.succeeded);
	load_state(f, &st);
	assert_int_equal(st.floor, 0);
	assert_string_equal(f->srv.last_outcome, "rolled_back");
}

static void test_never_buys(void **state)
{
	struct fixture *f = *state;

	offer(f, "1.1.0", 2, SIM_FAULT_NEVER_BUY, KIT_HW, 2, keys.release);
	expect_rollback(f, "watchdog");
	/* It did run as a trial and told the server so before the deadline. */
	assert_string_equal(f->srv.events[4].status, "trial");
}

static void test_crashes_at_boot(void **state)
{
	struct fixture *f = *state;

	offer(f, "1.1.0", 2, SIM_FAULT_CRASH_BOOT, KIT_HW, 2, keys.release);
	expect_rollback(f, "watchdog");
}

static void test_fails_health(void **state)
{
	struct fixture *f = *state;

	offer(f, "1.1.0", 2, SIM_FAULT_FAIL_HEALTH, KIT_HW, 2, keys.release);
	expect_rollback(f, "health check selftest failed");
}

/* A post-confirm regression: the image passes its trial and is bought, then fails its
 * self-test and is reset by the watchdog; the agent counts both across boots. */
static void test_regress_after_buy_counted(void **state)
{
	struct fixture *f = *state;
	struct fwa_state st;

	offer(f, "1.1.0", 2, SIM_FAULT_REGRESS, KIT_HW, 2, keys.release);
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_string_equal(f->dev.sim.running.version, "1.1.0");
	assert_true(f->srv.succeeded); /* confirmed: the trial itself was healthy */
	load_state(f, &st);
	assert_int_equal(st.health_open, 1);
	assert_true(st.health_failed >= 1); /* the check-in after the buy ran the self-test */
	assert_int_equal(st.health_boots, 0);
	fwa_sim_watchdog_reset(&f->dev.sim);
	assert_int_equal(kit_run(&f->dev, 100), KIT_IDLE);
	load_state(f, &st);
	assert_int_equal(st.health_boots, 1);
	assert_int_equal(st.health_wdt, 1);
	assert_true(st.health_failed >= 2);
	fwa_sim_power_cut(&f->dev.sim);
	assert_int_equal(kit_run(&f->dev, 100), KIT_IDLE);
	load_state(f, &st);
	assert_int_equal(st.health_boots, 2);
	assert_int_equal(st.health_wdt, 1);
}

static void test_buy_fails(void **state)
{
	struct fixture *f = *state;

	/* The bootrom turns the watchdog off, then fails: only the agent can end the trial. */
	offer(f, "1.1.0", 2, SIM_FAULT_BUY_FAILS, KIT_HW, 2, keys.release);
	expect_rollback(f, "refused the buy");
	assert_string_equal(f->srv.events[4].status, "trial");
	assert_true(f->dev.trial_end_ms != 0 && f->dev.trial_end_ms >= f->dev.trial_boot_ms);
	assert_int_equal(f->dev.trial_buy_ms, 0);
}

static void test_slow_network_within_deadline(void **state)
{
	struct fixture *f = *state;
	const struct kit_net *n = &f->dev.net;
	uint64_t took;

	kit_net_slow(&f->dev);
	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_string_equal(f->dev.sim.running.version, "1.1.0");
	assert_true(f->srv.succeeded);
	took = f->dev.trial_buy_ms - f->dev.trial_boot_ms;
	/* Longer than the bootrom alone allows, well within the agent's deadline. */
	assert_true(took > SIM_TRIAL_MS);
	assert_true(took < n->boot_ms + 1000u * FWA_TRIAL_DEADLINE_DEFAULT_S);
	assert_true(f->dev.agent.trial_rearms >= 2);
	assert_true(f->dev.agent.trial_rearms <= FWA_TRIAL_DEADLINE_DEFAULT_S);
	printf("trial budget (slow network): start %u ms, Wi-Fi join and DHCP %llu ms, "
	       "%u connects (%u timed out) %llu ms, %u requests %llu ms, bought after %llu ms; "
	       "bootrom watchdog %u ms, deadline %u ms from the agent's start, margin %llu ms, "
	       "%u re-arms\n",
	       n->boot_ms, (unsigned long long)n->spent_link, n->connects + n->connect_timeouts,
	       n->connect_timeouts, (unsigned long long)n->spent_connect, n->requests,
	       (unsigned long long)n->spent_request, (unsigned long long)took, SIM_TRIAL_MS,
	       1000u * FWA_TRIAL_DEADLINE_DEFAULT_S,
	       (unsigned long long)(n->boot_ms + 1000u * FWA_TRIAL_DEADLINE_DEFAULT_S - took),
	       f->dev.agent.trial_rearms);
}

static void test_slow_network_bootrom_deadline_alone(void **state)
{
	struct fixture *f = *state;

	/* Without re-arming, the same healthy image is rolled back: what the deadline is for. */
	kit_net_slow(&f->dev);
	f->dev.port.trial_rearm = NULL;
	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	expect_rollback(f, "watchdog");
	assert_true(f->dev.trial_end_ms - f->dev.trial_boot_ms <= SIM_TRIAL_MS);
}

static void test_hung_trial_slow_network(void **state)
{
	struct fixture *f = *state;

	/* The image hangs after its trial report went through: no more progress, no re-arm. */
	kit_net_slow(&f->dev);
	offer(f, "1.1.0", 2, SIM_FAULT_NEVER_BUY, KIT_HW, 2, keys.release);
	expect_rollback(f, "watchdog");
	assert_true(f->dev.trial_end_ms - f->dev.trial_boot_ms <
	            f->dev.net.boot_ms + 1000u * FWA_TRIAL_DEADLINE_DEFAULT_S);
}

static void test_stalled_trial_deadline(void **state)
{
	struct fixture *f = *state;
	uint64_t took, deadline = 1000u * 30;

	/* Connections succeed during the trial but the server never answers: progress that never
	 * finishes keeps the trial alive only until the agent's deadline. */
	f->dev.cfg.trial_deadline_s = 30;
	f->dev.net.boot_ms = 1000;
	f->dev.net.tls_ms = 2000;
	f->dev.net.stall_trial = true;
	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	expect_rollback(f, "watchdog");
	took = f->dev.trial_end_ms - f->dev.trial_boot_ms;
	assert_true(took > SIM_TRIAL_MS);
	assert_true(took <= f->dev.net.boot_ms + deadline);
	assert_true(took >= f->dev.net.boot_ms + deadline - SIM_TRIAL_MS);
}

static void test_bootrom_refuses_trial_image(void **state)
{
	struct fixture *f = *state;
	struct fwa_step st;

	/* Step until the flash-update reboot is asked for, then let the slot rot before the
	 * bootrom looks at it: the bootrom boots the previous image and says why. */
	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	assert_int_equal(fwa_sim_boot(&f->dev.sim), FWA_OK);
	snprintf(f->dev.version, sizeof(f->dev.version), "%s", f->dev.sim.running.version);
	assert_int_equal(fwa_agent_init(&f->dev.agent, &f->dev.port, &f->dev.cfg, f->dev.scratch,
	                                FWA_AGENT_SCRATCH_SIZE),
	                 FWA_OK);
	for (unsigned i = 0; i < 200 && f->dev.sim.pending_trial < 0; i++) {
		enum fwa_err err = fwa_agent_step(&f->dev.agent, &st);

		assert_int_equal(err, FWA_OK);
		f->dev.sim.vclock_ms += st.wait_ms;
	}
	assert_int_equal(f->dev.sim.pending_trial, FWA_SLOT_B);
	f->dev.sim.flash[SIM_SLOT0_OFF + f->dev.sim.slot_size + SIM_PAGE + 100] ^= 0x01;
	expect_rollback(f, "does not verify");
	assert_int_equal(f->dev.sim.trial_boot_ops, 0); /* it never ran */
}

static void test_trial_deadline_bounded(void **state)
{
	struct fixture *f = *state;

	f->dev.cfg.trial_deadline_s = FWA_TRIAL_DEADLINE_MAX_S + 1;
	assert_int_equal(fwa_sim_boot(&f->dev.sim), FWA_OK);
	snprintf(f->dev.version, sizeof(f->dev.version), "%s", f->dev.sim.running.version);
	assert_int_equal(fwa_agent_init(&f->dev.agent, &f->dev.port, &f->dev.cfg, f->dev.scratch,
	                                FWA_AGENT_SCRATCH_SIZE),
	                 FWA_ERR_BUSY);
	f->dev.cfg.trial_deadline_s = FWA_TRIAL_DEADLINE_MAX_S;
	assert_int_equal(fwa_agent_init(&f->dev.agent, &f->dev.port, &f->dev.cfg, f->dev.scratch,
	                                FWA_AGENT_SCRATCH_SIZE),
	                 FWA_OK);
}

static void test_power_cut_before_buy(void **state)
{
	struct fixture *f = *state;

	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	/* A reference run finds the operation index of the buy ... */
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	uint64_t buy_at = f->dev.sim.buy_ops + 1;
	assert_true(buy_at > f->dev.sim.trial_boot_ops);
	teardown(state);
	setup(state);
	f = *state;
	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	/* ... and the power goes just before it, in the middle of the trial. */
	f->dev.sim.cut_at = buy_at;
	f->dev.sim.cut_mode = SIM_CUT_BEFORE;
	assert_int_equal(kit_run(&f->dev, 5000), KIT_CUT);
	assert_true(f->dev.sim.trial);
	kit_power_cut(&f->dev);
	expect_rollback(f, "power lost during the trial");
}

static void expect_refused(struct fixture *f, const char *reason_part, const char *running)
{
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_string_equal(f->dev.sim.running.version, running);
	assert_string_equal(f->srv.final_status, "failed");
	if (!strstr(f->srv.final_reason, reason_part))
		fail_msg("reason '%s' lacks '%s'", f->srv.final_reason, reason_part);
	assert_int_equal(f->srv.image_gets, 0);
}

static void test_other_hw_variant(void **state)
{
	struct fixture *f = *state;
	uint64_t ops;

	offer(f, "1.1.0", 2, SIM_FAULT_NONE, "other-board", 2, keys.release);
	expect_refused(f, "hardware", "1.0.0");
	assert_true(slot_erased(f, FWA_SLOT_B));
	/* Only state writes happened: one per write is an erase plus its pages. */
	ops = f->dev.sim.ops;
	assert_int_equal(ops % (1 + (sizeof(struct fwa_state) + SIM_PAGE - 1) / SIM_PAGE), 0);
}

static void test_untrusted_signer(void **state)
{
	struct fixture *f = *state;

	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.stranger);
	expect_refused(f, "", "1.0.0");
	assert_true(slot_erased(f, FWA_SLOT_B));
}

static void test_below_floor(void **state)
{
	struct fixture *f = *state;
	struct fwa_state st;

	offer(f, "1.1.0", 3, SIM_FAULT_NONE, KIT_HW, 3, keys.release);
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_true(f->srv.succeeded);
	/* Now an older release whose security_version is below the raised floor. */
	kit_server_free(&f->srv);
	kit_server_init(&f->srv);
	offer(f, "1.0.5", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	memcpy(f->srv.dep_id, "d-0002", 7);
	f->dev.sim.vclock_ms += 120000; /* next poll */
	expect_refused(f, "floor", "1.1.0");
	load_state(f, &st);
	assert_int_equal(st.floor, 3);
}

static void test_secure_chip_floor(void **state)
{
	struct fixture *f = *state;
	struct fwa_state st;

	struct fwa_port p;

	/* A secure chip: the buy advances the OTP rollback floor, and the port reports it. */
	assert_null(f->dev.port.hw_floor);
	f->dev.sim.otp_floor_enabled = true;
	f->dev.sim.otp_floor = 1;
	fwa_sim_port(&p, &f->dev.sim, f->dev.port.crypto);
	assert_non_null(p.hw_floor);
	f->dev.port.hw_floor = p.hw_floor;
	offer(f, "1.1.0", 3, SIM_FAULT_NONE, KIT_HW, 3, keys.release);
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_true(f->srv.succeeded);
	assert_int_equal(f->dev.sim.otp_floor, 3);
	/* Even with the agent's state wiped, the hardware floor refuses an older release. */
	memset(f->dev.sim.flash + 0x3000, 0xff, 2 * SIM_SECTOR);
	fwa_sim_power_cut(&f->dev.sim);
	kit_server_free(&f->srv);
	kit_server_init(&f->srv);
	offer(f, "1.0.5", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	memcpy(f->srv.dep_id, "d-0002", 7);
	expect_refused(f, "floor", "1.1.0");
	load_state(f, &st);
	assert_int_equal(st.floor, 0); /* the core's copy was lost; the chip's was not */
}

static void test_tampered_image(void **state)
{
	struct fixture *f = *state;

	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	f->image[PAYLOAD / 2] ^= 0x01; /* served bytes differ from the signed hash */
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_string_equal(f->dev.sim.running.version, "1.0.0");
	assert_string_equal(f->srv.final_status, "failed");
	assert_non_null(strstr(f->srv.final_reason, "SHA-256"));
	assert_int_equal(f->dev.sim.trial_boot_ops, 0); /* never booted */
}

/* A bit flips in the slot after it was programmed: the download's own hash was right, and only
 * the read-back re-hash before the trial sees it. The slot is written again; no trial boots
 * the corrupted bytes. */
static void test_flash_bit_flip_before_trial(void **state)
{
	struct fixture *f = *state;
	uint8_t sha[32], want[32];

	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	SHA256(f->image, (size_t)f->image_len, want);
	f->dev.sim.flip_at = 2;
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_int_equal(f->dev.sim.flips, 1);
	assert_string_equal(f->dev.sim.running.version, "1.1.0");
	assert_true(f->srv.succeeded);
	assert_string_equal(f->srv.final_status, "confirmed");
	kit_slot_sha256(&f->dev, f->dev.sim.active, (size_t)f->image_len, sha);
	assert_memory_equal(sha, want, 32);
	/* Written twice: the image was fetched again after the read-back differed. */
	assert_true(f->dev.sim.slot_programs >= 2 * ((uint64_t)f->image_len / SIM_SECTOR));
	assert_true(f->srv.image_gets >= 2);
}

static void test_resume_after_drop(void **state)
{
	struct fixture *f = *state;

	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	f->srv.drop_after = 10000;
	f->srv.drops_left = 2;
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_true(f->srv.succeeded);
	assert_int_equal(f->srv.image_gets, 3);
	/* Each retry resumed from the last sector fully written, not from zero. */
	assert_int_equal(f->srv.ranges[0], 0);
	assert_int_equal(f->srv.ranges[1], 8192);
	assert_int_equal(f->srv.ranges[2], 16384);
}

static void test_root_rotation(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *signers[2] = {keys.root, keys.root2};
	struct fwa_state st;
	long n;

	/* Root v2: new root key, new release key (the stranger); signed by old and new. */
	n = kit_root(keys.root2, keys.stranger, 2, signers, 2, f->srv.roots[0],
	             sizeof(f->srv.roots[0]));
	assert_true(n > 0);
	f->srv.roots_len[0] = (size_t)n;
	f->srv.nroots = 1;
	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.stranger);
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_true(f->srv.succeeded);
	load_state(f, &st);
	assert_int_equal(st.has_root, 1);
	assert_int_equal(st.root.version, 2);
}

static void test_bad_root_rotation(void **state)
{
	struct fixture *f = *state;
	struct fwa_state st;
	long n;

	/* Root v2 signed only by its own new key: the old root never agreed. */
	n = kit_root(keys.root2, keys.stranger, 2, &keys.root2, 1, f->srv.roots[0],
	             sizeof(f->srv.roots[0]));
	f->srv.roots_len[0] = (size_t)n;
	f->srv.nroots = 1;
	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.stranger);
	expect_refused(f, "", "1.0.0");
	load_state(f, &st);
	assert_int_equal(st.has_root, 0);
}

/*
 * Signed time: the device (no clock of its own) is provisioned with a root naming a time key
 * and expiring at `expires`; the server answers check-ins with tokens of `token_time` in `mode`.
 */
static void signed_time_device(struct fixture *f, const char *expires, int mode,
                               const char *token_time)
{
	static char troot[FWA_ENVELOPE_MAX];
	long n = kit_root_time(keys.root, keys.release, keys.stranger, expires, 1, &keys.root, 1,
	                       troot, sizeof(troot));

	assert_true(n > 0);
	kit_device_free(&f->dev);
	kit_device_init(&f->dev, &f->srv, factory, (size_t)factory_len, troot, (size_t)n,
	                SLOT_SIZE);
	f->srv.time_key = keys.stranger;
	f->srv.token_time = token_time;
	f->srv.token_mode = mode;
}

static void test_signed_time_expires_root(void **state)
{
	struct fixture *f = *state;

	/* The time key says 2031: the root expired in 2030, nothing is installed. */
	signed_time_device(f, "2030-01-01T00:00:00Z", KIT_TOKEN_OWN, "2031-01-01T00:00:00Z");
	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	expect_refused(f, "expired", "1.0.0");
	assert_true(f->srv.tokens > 0);
}

static void test_signed_time_foreign_nonce(void **state)
{
	struct fixture *f = *state;

	/* A token for another nonce says 2031: ignored, so the root is not taken as expired. */
	signed_time_device(f, "2030-01-01T00:00:00Z", KIT_TOKEN_FOREIGN, "2031-01-01T00:00:00Z");
	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_true(f->srv.succeeded);
	assert_true(f->srv.tokens > 0);
}

static void test_signed_time_replayed_nonce(void **state)
{
	struct fixture *f = *state;

	/* Each check-in gets the token of the one before (a replay): never taken. */
	signed_time_device(f, "2030-01-01T00:00:00Z", KIT_TOKEN_REPLAY, "2031-01-01T00:00:00Z");
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	unsigned before = f->srv.checkins;
	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_true(f->srv.checkins > before);
	assert_true(f->srv.tokens > 0);
	assert_true(f->srv.succeeded);
}

static void test_signed_time_over_server_time(void **state)
{
	struct fixture *f = *state;

	/*
	 * The root expired on 2026-01-01; the advisory server_time (2026-11) would refuse it, but
	 * once the root names a time key only the signed time (2025-06) counts.
	 */
	signed_time_device(f, "2026-01-01T00:00:00Z", KIT_TOKEN_OWN, "2025-06-01T00:00:00Z");
	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_true(f->srv.succeeded);
}

/*
 * Renewal under signed time: certificate 1 lived 2026 and renews at half its life; the time
 * key says 2026-12-01. Runs until the device uses the renewed certificate, cutting power at
 * operation `cut_at` (0: never). Returns the operations counted.
 */
static uint64_t renewal_run(struct fixture *f, uint64_t cut_at)
{
	struct kit_cred *c = &f->dev.cred;
	unsigned rounds = 0, cuts = 0;

	signed_time_device(f, NULL, KIT_TOKEN_OWN, "2026-12-01T00:00:00Z");
	kit_renewal(&f->dev, 1767225600, 1798761600, 1796083200, 1827619200);
	f->dev.sim.cut_at = cut_at;
	f->dev.sim.cut_mode = cut_at ? SIM_CUT_BEFORE : SIM_CUT_NONE;
	while (rounds++ < 8) {
		enum kit_result r = kit_run(&f->dev, 5000);

		/* The device never presents a certificate the server refuses. */
		assert_int_equal(f->srv.refused, 0);
		if (r == KIT_CUT) {
			kit_power_cut(&f->dev);
			cuts++;
			continue;
		}
		assert_int_equal(r, KIT_IDLE);
		if (f->srv.pins && !c->key_new && !c->cert_new)
			break;
		kit_advance(&f->dev, 61000);
	}
	/* Converged: the pinned certificate is the device's only pair, and a pair. */
	assert_true(f->srv.pins >= 1);
	assert_int_equal(c->cert, f->srv.pinned);
	assert_int_equal(c->key, f->srv.pinned_key);
	assert_int_equal(c->cert_key, c->key);
	assert_int_equal(c->key_new, 0);
	assert_int_equal(c->cert_new, 0);
	assert_int_equal(f->srv.pending, 0);
	assert_true(c->na == 1827619200);
	assert_int_equal(cuts, cut_at ? 1 : 0); /* the armed cut happened */
	return f->dev.sim.ops;
}

static void test_renewal_power_cut_sweep(void **state)
{
	struct fixture *f = *state;
	uint64_t total = renewal_run(f, 0), k;

	assert_int_equal(f->srv.issued, 1);
	assert_int_equal(f->srv.pins, 1);
	/* Every counted operation of the same run, power cut before it. */
	for (k = 1; k <= total; k++) {
		kit_device_free(&f->dev);
		kit_server_free(&f->srv);
		kit_server_init(&f->srv);
		kit_device_init(&f->dev, &f->srv, factory, (size_t)factory_len, root,
		                (size_t)root_len, SLOT_SIZE);
		renewal_run(f, k);
	}
	print_message("renewal sweep: %llu cuts\n", (unsigned long long)total);
}

/*
 * The answer lost after the pin: the server pins the renewed certificate on its first use,
 * but that answer and the next two never arrive, so the pending pair has used its tries and
 * the agent presents the old one, which the server now refuses (403). The agent goes back to
 * the pending pair and commits it, in the same boot, without asking for another certificate.
 */
static void test_renewal_answer_lost_after_pin(void **state)
{
	struct fixture *f = *state;
	struct kit_cred *c = &f->dev.cred;
	unsigned boots;

	signed_time_device(f, NULL, KIT_TOKEN_OWN, "2026-12-01T00:00:00Z");
	kit_renewal(&f->dev, 1767225600, 1798761600, 1796083200, 1827619200);
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_int_equal(f->srv.issued, 1);
	assert_true(c->cert_new && c->key_new);
	assert_int_equal(f->srv.pins, 0);

	f->srv.cut_answers = 3;
	f->dev.checked_in = false;
	boots = f->dev.boots;
	kit_advance(&f->dev, 61000);
	assert_int_equal(kit_run(&f->dev, 100), KIT_IDLE);
	assert_int_equal(f->srv.cut_answers, 0);
	assert_int_equal(f->srv.pins, 1);
	assert_int_equal(f->srv.refused, 1); /* the old pair once, then the pending one again */
	assert_int_equal(f->dev.boots, boots + 1); /* this run's start, no reboot within it */
	assert_int_equal(c->cert, f->srv.pinned);
	assert_int_equal(c->key, f->srv.pinned_key);
	assert_int_equal(c->key_new, 0);
	assert_int_equal(c->cert_new, 0);
	assert_int_equal(f->srv.issued, 1); /* no new request while the pending pair waited */

	/* From now on the pinned pair alone, answered at once. */
	f->dev.checked_in = false;
	kit_advance(&f->dev, 61000);
	assert_int_equal(kit_run(&f->dev, 100), KIT_IDLE);
	assert_int_equal(f->srv.refused, 1);
	assert_int_equal(f->srv.issued, 1);
}

/*
 * Reports refused for who the device is (a pinned certificate not yet presented, a device
 * waiting for approval): passing refusals, so every report stays in the outbox until the
 * server takes it. The refusals start after some reports are stored: before the reboot, and
 * in the trial, which holds its buy back. In the end each report is stored once, in order.
 */
static void refused_for_identity(struct fixture *f, const char *type, unsigned after,
                                 unsigned refusals)
{
	static const char *const order[] = {"downloading", "downloaded", "installing",
	                                    "rebooting",   "trial",      "confirmed"};

	kit_device_free(&f->dev);
	kit_server_free(&f->srv);
	kit_server_init(&f->srv);
	kit_device_init(&f->dev, &f->srv, factory, (size_t)factory_len, root, (size_t)root_len,
	                SLOT_SIZE);
	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	f->srv.refuse_type = type;
	f->srv.refuse_after = after;
	f->srv.refuse_reports = refusals;
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_int_equal(f->srv.refuse_reports, 0);
	assert_int_equal(f->srv.report_refusals, refusals);
	assert_true(f->srv.succeeded);
	assert_string_equal(f->dev.sim.running.version, "1.1.0");
	/* Stored once each (a report resent after the reboot is a duplicate), in order. */
	assert_int_equal(f->srv.nevents, 6);
	for (unsigned i = 0; i < 6; i++) {
		assert_string_equal(f->srv.events[i].status, order[i]);
		assert_int_equal(f->srv.events[i].seq, i + 1);
	}
}

static void test_report_refused_for_identity(void **state)
{
	struct fixture *f = *state;

	refused_for_identity(f, "identity-conflict", 0, 3);
	refused_for_identity(f, "device-pending", 0, 3);
	refused_for_identity(f, "client-certificate-rejected", 2, 3);
	/* From the trial on: its report (and those resent after the reboot) held back. */
	refused_for_identity(f, "identity-conflict", 4, 6);
	refused_for_identity(f, "device-pending", 5, 3);
}

/* A report on another device's deployment: the server will never take it, it is dropped. */
static void test_report_not_your_deployment(void **state)
{
	struct fixture *f = *state;

	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	f->srv.refuse_type = "not-your-deployment";
	f->srv.refuse_reports = 1;
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_int_equal(f->srv.report_refusals, 1); /* sent once, not again */
	assert_true(f->srv.succeeded);
	assert_int_equal(f->srv.nevents, 5);
	assert_string_equal(f->srv.events[0].status, "downloaded");
	assert_int_equal(f->srv.events[0].seq, 2);
	assert_string_equal(f->srv.events[4].status, "confirmed");
}

/*
 * Server CA rotation through the root: the device trusts its provisioned CA A (root 1 pins
 * none); while it is away, root 2 pins A and B and root 3 pins only B. At its next check-in
 * (the server still on A) it walks both roots; from then on it accepts B only, also after a
 * power cut, and never A again.
 */
static void test_root_rotation_changes_server_ca(void **state)
{
	struct fixture *f = *state;
	static const uint8_t cas[2][32] = {{0xa1, 0xa1, 0xa1}, {0xb2, 0xb2, 0xb2}};
	struct fwa_state st;
	long n;

	memcpy(f->dev.prov_ca, cas[0], 32);
	f->srv.has_ca = true;
	memcpy(f->srv.ca, cas[0], 32);
	n = kit_root_cas(keys.root, keys.release, cas, 2, 2, &keys.root, 1, f->srv.roots[0],
	                 sizeof(f->srv.roots[0]));
	assert_true(n > 0);
	f->srv.roots_len[0] = (size_t)n;
	n = kit_root_cas(keys.root, keys.release, &cas[1], 1, 3, &keys.root, 1, f->srv.roots[1],
	                 sizeof(f->srv.roots[1]));
	assert_true(n > 0);
	f->srv.roots_len[1] = (size_t)n;
	f->srv.nroots = 2;

	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	load_state(f, &st);
	assert_int_equal(st.root.version, 3);
	assert_int_equal(f->dev.npins, 1);
	assert_memory_equal(f->dev.pins[0], cas[1], 32);
	assert_int_equal(f->srv.ca_refusals, 0);
	/* The server still on A: refused from now on. */
	f->srv.nroots = 0;
	kit_advance(&f->dev, 61000);
	assert_int_not_equal(kit_run(&f->dev, 40), KIT_IDLE);
	assert_true(f->srv.ca_refusals > 0);
	/* On B: accepted, also after a power cut (the pins come from the persisted root). */
	memcpy(f->srv.ca, cas[1], 32);
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	kit_power_cut(&f->dev);
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	unsigned before = f->srv.ca_refusals;
	memcpy(f->srv.ca, cas[0], 32);
	kit_power_cut(&f->dev);
	assert_int_not_equal(kit_run(&f->dev, 40), KIT_IDLE);
	assert_true(f->srv.ca_refusals > before);
}

static void test_trial_without_server(void **state)
{
	struct fixture *f = *state;

	/* Run until the trial boot; then the server goes away: no report can be acknowledged,
	 * so the trial is never bought and the watchdog brings the previous image back. */
	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	for (unsigned i = 0; i < 5000 && !f->dev.sim.trial; i++) {
		struct fwa_step st;

		if (!f->dev.sim.booted) {
			assert_int_equal(fwa_sim_boot(&f->dev.sim), FWA_OK);
			snprintf(f->dev.version, sizeof(f->dev.version), "%s",
			         f->dev.sim.running.version);
			assert_int_equal(fwa_agent_init(&f->dev.agent, &f->dev.port, &f->dev.cfg,
			                                f->dev.scratch, FWA_AGENT_SCRATCH_SIZE),
			                 FWA_OK);
			if (f->dev.sim.trial)
				break;
		}
		enum fwa_err err = fwa_agent_step(&f->dev.agent, &st);

		assert_true(err == FWA_OK || err == FWA_ERR_TRANSPORT);
		f->dev.sim.vclock_ms += st.wait_ms;
	}
	assert_true(f->dev.sim.trial);
	f->srv.down = true;
	for (unsigned i = 0; i < 1000 && !fwa_sim_watchdog_due(&f->dev.sim); i++) {
		struct fwa_step st;

		enum fwa_err err = fwa_agent_step(&f->dev.agent, &st);

		assert_int_not_equal(err, FWA_OK); /* the trial report cannot be sent */
		assert_false(st.rebooting);
		assert_true(f->dev.sim.trial); /* never bought */
		f->dev.sim.vclock_ms += st.wait_ms ? st.wait_ms : 1;
	}
	assert_true(fwa_sim_watchdog_due(&f->dev.sim));
	fwa_sim_watchdog_reset(&f->dev.sim);
	f->srv.down = false;
	expect_rollback(f, "watchdog");
}

/* Boot the device and start its agent, to step it by hand. */
static void boot_agent(struct fixture *f)
{
	f->dev.sim.booted = false;
	assert_int_equal(fwa_sim_boot(&f->dev.sim), FWA_OK);
	snprintf(f->dev.version, sizeof(f->dev.version), "%s", f->dev.sim.running.version);
	assert_int_equal(fwa_agent_init(&f->dev.agent, &f->dev.port, &f->dev.cfg, f->dev.scratch,
	                                FWA_AGENT_SCRATCH_SIZE),
	                 FWA_OK);
}

static void test_server_down_backoff(void **state)
{
	struct fixture *f = *state;
	struct fwa_step st;
	uint32_t prev = 0;

	f->srv.down = true;
	boot_agent(f);
	/* retry_min 100 ms, max 2000 ms: delays grow (with jitter in [d/2, d]) up to the cap. */
	for (unsigned i = 0; i < 8; i++) {
		assert_int_equal(fwa_agent_step(&f->dev.agent, &st), FWA_ERR_TRANSPORT);
		assert_true(st.wait_ms >= 50 && st.wait_ms <= 2000);
		if (i >= 6)
			assert_true(st.wait_ms >= 1000);
		prev = st.wait_ms;
		f->dev.sim.vclock_ms += st.wait_ms;
	}
	(void)prev;
	assert_int_equal(f->dev.sim.ops, 0); /* nothing written while the server is away */
}

/* ---- connections ---- */

/* Boot and step the agent through its first poll cycle: until it waits or reboots. */
static void first_cycle(struct fixture *f, struct fwa_step *st)
{
	unsigned steps = 0;

	boot_agent(f);
	do {
		assert_int_equal(fwa_agent_step(&f->dev.agent, st), FWA_OK);
		assert_true(++steps < 100);
	} while (!st->rebooting && st->wait_ms == 0);
}

/* Check-in, reports and download of one poll cycle share one connection (one handshake). */
static void test_poll_cycle_one_connection(void **state)
{
	struct fixture *f = *state;
	struct fwa_step st;

	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	first_cycle(f, &st);
	assert_true(st.rebooting); /* downloaded and installed within the cycle */
	assert_int_equal(f->srv.image_gets, 1);
	assert_true(f->srv.requests >= 3); /* check-in, reports, image */
	assert_int_equal(f->srv.connections, 1);
	assert_false(f->srv.open); /* closed where the cycle ended */
}

/* A server that closes every connection after its answer costs a handshake per request. */
static void test_poll_cycle_server_closes_each(void **state)
{
	struct fixture *f = *state;
	struct fwa_step st;

	f->srv.close_each = true;
	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	first_cycle(f, &st);
	assert_true(st.rebooting);
	assert_true(f->srv.requests >= 3);
	assert_int_equal(f->srv.connections, f->srv.requests);
}

/* A kept connection the server ends unanswered: the request goes again on a new one. */
static void test_poll_cycle_kept_connection_ended(void **state)
{
	struct fixture *f = *state;
	struct fwa_step st;
	unsigned requests;

	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	first_cycle(f, &st);
	requests = f->srv.requests;
	teardown(state);
	assert_int_equal(setup(state), 0);
	f = *state;
	f->srv.close_kept = 2;
	offer(f, "1.1.0", 2, SIM_FAULT_NONE, KIT_HW, 2, keys.release);
	first_cycle(f, &st);
	assert_true(st.rebooting); /* nothing failed: no backoff, no lost report */
	assert_int_equal(f->srv.close_kept, 0);
	assert_int_equal(f->srv.requests, requests);
	assert_int_equal(f->srv.connections, 3);
	assert_int_equal(f->srv.duplicates, 0);
	assert_int_equal(f->srv.image_gets, 1);
}

/* ---- delta updates ---- */

/* Offer 1.1.0 derived from the factory image, as a full image and as a delta from `base`. */
static void offer_delta(struct fixture *f, const uint8_t *base, size_t base_len, EVP_PKEY *signer)
{
	uint8_t sha[32];

	f->image_len =
	    kit_derive(factory, (size_t)factory_len, "1.1.0", 2, f->image, sizeof(f->image));
	assert_true(f->image_len > 0);
	f->manifest_len = kit_manifest(keys.release, "1.1.0", 2, KIT_HW, f->image,
	                               (size_t)f->image_len, f->manifest, sizeof(f->manifest));
	assert_true(f->manifest_len > 0);
	kit_server_offer(&f->srv, "1.1.0", f->manifest, (size_t)f->manifest_len, f->image,
	                 (size_t)f->image_len);
	f->delta_meta_len = kit_delta(signer, f->manifest, (size_t)f->manifest_len, base, base_len,
	                              f->image, (size_t)f->image_len, &f->delta, &f->delta_len,
	                              f->delta_meta, sizeof(f->delta_meta));
	SHA256(factory, (size_t)factory_len, sha); /* the server offers it to the factory image */
	kit_server_offer_delta(&f->srv, f->delta_meta, (size_t)f->delta_meta_len, f->delta,
	                       f->delta_len, sha);
}

static bool reason_seen(struct fixture *f, const char *part)
{
	for (unsigned i = 0; i < f->srv.nevents; i++)
		if (strstr(f->srv.events[i].reason, part))
			return true;
	return false;
}

static void test_delta_update(void **state)
{
	struct fixture *f = *state;

	offer_delta(f, factory, (size_t)factory_len, keys.release);
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_true(f->srv.succeeded);
	assert_string_equal(f->dev.sim.running.version, "1.1.0");
	assert_int_equal(f->srv.delta_offers, 1);
	assert_int_equal(f->srv.delta_gets, 1);
	assert_int_equal(f->srv.image_gets, 0); /* the delta alone carried it */
	assert_false(reason_seen(f, "delta"));
	assert_true(f->delta_len < (size_t)f->image_len / 10);
	/* The next check-in names the new image, so no delta from the old base is offered. */
	assert_int_equal(kit_run(&f->dev, 100), KIT_IDLE);
	assert_int_equal(f->srv.delta_offers, 1);
}

/* The delta fails in the middle (a unit off its hash chain): the full image finishes the job. */
static void test_delta_corrupt_falls_back(void **state)
{
	struct fixture *f = *state;

	offer_delta(f, factory, (size_t)factory_len, keys.release);
	f->delta[f->delta_len - 10] ^= 0x01;
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_true(f->srv.succeeded);
	assert_int_equal(f->srv.delta_gets, 1);
	assert_int_equal(f->srv.image_gets, 1);
	assert_true(reason_seen(f, "delta failed: unit SHA-256 differs from the hash chain"));
	assert_string_equal(f->srv.events[0].status, "downloading");
	assert_string_equal(f->srv.events[1].status, "downloading");
}

static void test_delta_gone_falls_back(void **state)
{
	struct fixture *f = *state;

	offer_delta(f, factory, (size_t)factory_len, keys.release);
	f->srv.delta_gone = true;
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_true(f->srv.succeeded);
	assert_int_equal(f->srv.image_gets, 1);
	assert_true(reason_seen(f, "delta failed: no longer offered by the server"));
}

/* Metadata made for another base, or signed by a key the root does not trust: never used. */
static void test_delta_refused(void **state)
{
	struct fixture *f = *state;
	uint8_t other[PAYLOAD + SIM_PAGE];
	long n = fwa_sim_mkimage("0.9.0", 1, KIT_HW, SIM_FAULT_NONE, PAYLOAD, other, sizeof(other));

	assert_true(n > 0);
	offer_delta(f, other, (size_t)n, keys.release);
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_true(f->srv.succeeded);
	assert_int_equal(f->srv.delta_gets, 0);
	assert_int_equal(f->srv.image_gets, 1);
	assert_true(reason_seen(f, "delta refused: made for another base image"));
}

static void test_delta_untrusted(void **state)
{
	struct fixture *f = *state;

	offer_delta(f, factory, (size_t)factory_len, keys.stranger);
	assert_int_equal(kit_run(&f->dev, 5000), KIT_IDLE);
	assert_true(f->srv.succeeded);
	assert_int_equal(f->srv.delta_gets, 0);
	assert_int_equal(f->srv.image_gets, 1);
	assert_true(reason_seen(f, "delta refused: "));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_good_update, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_poll_cycle_one_connection, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_poll_cycle_server_closes_each, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_poll_cycle_kept_connection_ended, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_never_buys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_crashes_at_boot, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fails_health, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_regress_after_buy_counted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_buy_fails, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slow_network_within_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slow_network_bootrom_deadline_alone, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_hung_trial_slow_network, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stalled_trial_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_trial_deadline_bounded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bootrom_refuses_trial_image, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_power_cut_before_buy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_hw_variant, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_untrusted_signer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_below_floor, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_secure_chip_floor, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tampered_image, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flash_bit_flip_before_trial, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_after_drop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_root_rotation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_root_rotation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_signed_time_expires_root, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_signed_time_foreign_nonce, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_signed_time_replayed_nonce, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_signed_time_over_server_time, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_renewal_power_cut_sweep, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_renewal_answer_lost_after_pin, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_report_refused_for_identity, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_report_not_your_deployment, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_root_rotation_changes_server_ca, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_trial_without_server, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_down_backoff, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delta_update, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delta_corrupt_falls_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delta_gone_falls_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delta_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delta_untrusted, setup, teardown),
	};

	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
