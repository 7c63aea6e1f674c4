/*
 * The power-cut sweep (MCUboot's simulator is the model). A reference update of a simulated
 * device counts every flash-changing operation (slot erases and page programs, state writes,
 * the bootrom's buy). Then, for every operation index i, a fresh device runs the same update
 * with power cut before operation i, and again with operation i torn halfway (half a sector
 * erased, half a page programmed), and torn again with a second tear early in the
 * recovery; power comes back, the device boots and its agent runs until idle. After every run: the
 * device boots an image that is byte-for-byte a signed one (the factory image or the release), it
 * runs the target or the previous version, its persisted state decodes with nothing left to send,
 * its floor moved only with a confirmed update, and the server was told the outcome that matches
 * what the device runs.
 *
 * Then the same sweep (power cut before every operation) over the trial's hard cases: a slow
 * network (Wi-Fi join, DHCP and TLS that together outlast the bootrom's trial watchdog, within
 * the agent's own trial deadline), an image whose buy the bootrom refuses (watchdog off, so
 * only the agent's reboot brings the previous image back), and an image that hangs before
 * its buy. The slow network must still end on the target when nothing is cut; the two faulty
 * images must always end on the previous version with rolled_back told.
 *
 * Then a flash fault swept over every slot program of the update: one bit of what that program
 * wrote flips afterwards. The download's hash cannot see it; the read-back re-hash before the
 * trial must, so every run must end on the target, byte-for-byte, with the slot written again.
 *
 * With the argument "delta" the first sweep runs over a delta update: the target is the factory
 * image with a few changes and an insertion (kit_derive), offered as a signed delta besides the
 * full image, and every run must end on the target through the delta alone (no full download, no
 * fallback), so that a checkpoint that resumes wrongly fails the sweep instead of hiding behind the
 * fallback. With "delta-fallback" the delta's last unit is broken: every run that ends on the
 * target must have reported the failed delta and downloaded the full image of the same
 * deployment, whatever instant power was cut at, also around the fallback itself.
 *
 * Prints how many cases ran; exits non-zero on any failure.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "fwa/crypto_openssl.h"
#include "simkit.h"
#include "state.h"

#define SLOT_SIZE (128u * 1024u)
#define FACTORY_PAYLOAD 8000u
#define TARGET_PAYLOAD 70000u /* > 64 KiB: the download writes a checkpoint too */

static uint8_t factory[TARGET_PAYLOAD + SIM_PAGE], target[TARGET_PAYLOAD + SIM_PAGE];
static long factory_len, target_len;
static char root[FWA_ENVELOPE_MAX], manifest[FWA_ENVELOPE_MAX];
static long root_len, manifest_len;
static uint8_t factory_sha[32], target_sha[32];

static bool delta_mode, fallback_mode;
static uint8_t *delta;
static size_t delta_len;
static char delta_meta[FWA_ENVELOPE_MAX];
static long delta_meta_len;

static struct kit_server srv;
static struct kit_device dev;
static unsigned failures;
static bool slow_net;

static void fresh(void)
{
	kit_device_free(&dev);
	kit_server_free(&srv);
	kit_server_init(&srv);
	kit_server_offer(&srv, "1.1.0", manifest, (size_t)manifest_len, target, (size_t)target_len);
	if (delta_mode)
		kit_server_offer_delta(&srv, delta_meta, (size_t)delta_meta_len, delta, delta_len,
		                       factory_sha);
	kit_device_init(&dev, &srv, factory, (size_t)factory_len, root, (size_t)root_len,
	                SLOT_SIZE);
	if (slow_net)
		kit_net_slow(&dev);
}

static void bad(const char *mode, uint64_t i, const char *what)
{
	failures++;
	fprintf(stderr, "sweep FAIL (%s op %llu): %s\n", mode, (unsigned long long)i, what);
}

/* The checks after a run; returns 1 when the device ended on the target version. */
static int check(const char *mode, uint64_t i)
{
	struct fwa_state *st = malloc(sizeof(*st));
	uint8_t sha[32];
	int on_target = 0;

	if (!st)
		abort();
	if (dev.bricked || !dev.sim.booted) {
		bad(mode, i, "device does not boot");
		goto out;
	}
	if (fallback_mode && strcmp(dev.sim.running.version, "1.1.0") == 0) {
		bool told = false;

		for (unsigned k = 0; k < srv.nevents; k++)
			told = told || strncmp(srv.events[k].reason, "delta failed: ", 14) == 0;
		if (!told || srv.image_gets == 0)
			bad(mode, i, "on the target without a reported fallback to the full image");
	}
	if (delta_mode && !fallback_mode) {
		if (srv.image_gets)
			bad(mode, i,
			    "the full image was downloaded: the delta did not carry the update");
		for (unsigned k = 0; k < srv.nevents; k++)
			if (strncmp(srv.events[k].reason, "delta", 5) == 0)
				bad(mode, i, srv.events[k].reason);
	}
	if (strcmp(dev.sim.running.version, "1.1.0") == 0) {
		on_target = 1;
		kit_slot_sha256(&dev, dev.sim.active, (size_t)target_len, sha);
		if (memcmp(sha, target_sha, 32) != 0)
			bad(mode, i, "running 1.1.0 from bytes that are not the signed image");
		if (!srv.succeeded || strcmp(srv.final_status, "confirmed") != 0)
			bad(mode, i, "running the target but the server was not told confirmed");
	} else if (strcmp(dev.sim.running.version, "1.0.0") == 0) {
		kit_slot_sha256(&dev, dev.sim.active, (size_t)factory_len, sha);
		if (memcmp(sha, factory_sha, 32) != 0)
			bad(mode, i, "running 1.0.0 from bytes that are not the factory image");
		if (strcmp(srv.final_status, "rolled_back") != 0 &&
		    strcmp(srv.final_status, "failed") != 0)
			bad(mode, i, "running the previous version but no rollback/failure told");
		else if (srv.final_reason[0] == '\0')
			bad(mode, i, "rollback told without a reason");
	} else {
		bad(mode, i, "running a version that is neither target nor previous");
	}
	if (fwa_state_load(&dev.port, st, NULL) != FWA_OK) {
		bad(mode, i, "persisted state does not decode");
		goto out;
	}
	if (st->phase != FWA_PHASE_IDLE || !fwa_agent_idle(&dev.agent))
		bad(mode, i, "agent not idle at the end");
	if (on_target && st->floor != 2)
		bad(mode, i, "floor not raised after the confirmed update");
	if (!on_target && st->floor != 0)
		bad(mode, i, "floor raised without a confirmed update");
out:
	free(st);
	return on_target;
}

/* Make the offered target image (with a fault) and its manifest. */
static bool make_target(struct kit_keys *keys, enum sim_fault fault)
{
	target_len =
	    fwa_sim_mkimage("1.1.0", 2, KIT_HW, fault, TARGET_PAYLOAD, target, sizeof(target));
	if (target_len < 0)
		return false;
	SHA256(target, (size_t)target_len, target_sha);
	manifest_len = kit_manifest(keys->release, "1.1.0", 2, KIT_HW, target, (size_t)target_len,
	                            manifest, sizeof(manifest));
	return manifest_len > 0;
}

/*
 * One trial case swept with a power cut before every operation; returns the cases run. With
 * want_target the uncut run must confirm the update, else every run must end on the previous
 * version.
 */
static unsigned sweep_trial_case(struct kit_keys *keys, const char *name, enum sim_fault fault,
                                 bool net_slow, bool want_target)
{
	unsigned cases = 0;
	uint64_t total;

	slow_net = net_slow;
	if (!make_target(keys, fault)) {
		bad(name, 0, "could not build the target image");
		return 0;
	}
	fresh();
	if (kit_run(&dev, 10000) != KIT_IDLE || check(name, 0) != (want_target ? 1 : 0)) {
		bad(name, 0,
		    want_target ? "the uncut update did not succeed"
		                : "the uncut update did not end on the previous version");
		return 0;
	}
	total = dev.sim.ops;
	for (uint64_t i = 1; i <= total; i++) {
		fresh();
		dev.sim.cut_at = i;
		dev.sim.cut_mode = SIM_CUT_BEFORE;
		cases++;
		if (kit_run(&dev, 10000) != KIT_CUT) {
			bad(name, i, "the operation was never reached");
			continue;
		}
		kit_power_cut(&dev);
		enum kit_result r = kit_run(&dev, 10000);
		if (r != KIT_IDLE) {
			bad(name, i, "agent did not settle after power came back");
			continue;
		}
		if (check(name, i) && !want_target)
			bad(name, i, "a faulty trial image ended up running");
	}
	printf("power-cut sweep: %s: %llu operations, %u cases\n", name, (unsigned long long)total,
	       cases);
	slow_net = false;
	return cases;
}

/* A bit flip after every slot program of a complete update, one run each. */
static unsigned sweep_bit_flips(struct kit_keys *keys)
{
	unsigned cases = 0;
	uint64_t programs;

	if (!make_target(keys, SIM_FAULT_NONE)) {
		bad("bit-flip", 0, "could not build the target image");
		return 0;
	}
	fresh();
	if (kit_run(&dev, 10000) != KIT_IDLE || check("bit-flip", 0) != 1) {
		bad("bit-flip", 0, "the update without a fault did not succeed");
		return 0;
	}
	programs = dev.sim.slot_programs;
	for (uint64_t i = 1; i <= programs; i++) {
		fresh();
		dev.sim.flip_at = i;
		cases++;
		if (kit_run(&dev, 10000) != KIT_IDLE) {
			bad("bit-flip", i, "agent did not settle");
			continue;
		}
		if (dev.sim.flips != 1)
			bad("bit-flip", i, "the bit never flipped");
		if (check("bit-flip", i) != 1)
			bad("bit-flip", i, "a flipped bit kept the device off the target");
		else if (dev.sim.slot_programs <= programs)
			bad("bit-flip", i, "on the target without writing the slot again");
	}
	printf("flash-fault sweep: a bit flipped after each of %llu slot programs, %u cases\n",
	       (unsigned long long)programs, cases);
	return cases;
}

int main(int argc, char **argv)
{
	struct kit_keys keys;
	uint64_t total, i;
	unsigned cases = 0, on_target = 0, on_previous = 0, second_cuts = 0;
	static const struct {
		enum sim_cut mode;
		const char *name;
		bool twice; /* tear again during the recovery */
	} modes[] = {{SIM_CUT_BEFORE, "cut-before", false},
	             {SIM_CUT_TEAR, "torn", false},
	             {SIM_CUT_TEAR, "torn-twice", true}};

	fallback_mode = argc > 1 && strcmp(argv[1], "delta-fallback") == 0;
	delta_mode = fallback_mode || (argc > 1 && strcmp(argv[1], "delta") == 0);
	kit_keys_make(&keys);
	factory_len = fwa_sim_mkimage("1.0.0", 1, KIT_HW, SIM_FAULT_NONE,
	                              delta_mode ? TARGET_PAYLOAD : FACTORY_PAYLOAD, factory,
	                              sizeof(factory));
	if (delta_mode)
		target_len =
		    kit_derive(factory, (size_t)factory_len, "1.1.0", 2, target, sizeof(target));
	else
		target_len = fwa_sim_mkimage("1.1.0", 2, KIT_HW, SIM_FAULT_NONE, TARGET_PAYLOAD,
		                             target, sizeof(target));
	SHA256(factory, (size_t)factory_len, factory_sha);
	SHA256(target, (size_t)target_len, target_sha);
	root_len = kit_root(keys.root, keys.release, 1, &keys.root, 1, root, sizeof(root));
	manifest_len = kit_manifest(keys.release, "1.1.0", 2, KIT_HW, target, (size_t)target_len,
	                            manifest, sizeof(manifest));
	if (factory_len < 0 || target_len < 0 || root_len < 0 || manifest_len < 0) {
		fprintf(stderr, "sweep: could not build the test documents\n");
		return 1;
	}
	if (delta_mode)
		delta_meta_len = kit_delta(keys.release, manifest, (size_t)manifest_len, factory,
		                           (size_t)factory_len, target, (size_t)target_len, &delta,
		                           &delta_len, delta_meta, sizeof(delta_meta));
	if (fallback_mode)
		delta[delta_len - 5] ^= 0x01; /* in the last unit: off the hash chain */

	/* Reference run: no cut; count the operations of a complete update. */
	fresh();
	if (kit_run(&dev, 10000) != KIT_IDLE || check("reference", 0) != 1 ||
	    (delta_mode && srv.delta_gets == 0)) {
		fprintf(stderr, "sweep: the reference update did not succeed\n");
		return 1;
	}
	total = dev.sim.ops;
	printf("power-cut sweep%s: a complete update takes %llu flash operations\n",
	       fallback_mode ? " (delta fallback)"
	       : delta_mode  ? " (delta)"
	                     : "",
	       (unsigned long long)total);
	if (delta_mode)
		printf("power-cut sweep (delta): a %zu-byte delta for a %ld-byte image\n",
		       delta_len, target_len);

	for (unsigned m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		for (i = 1; i <= total; i++) {
			enum kit_result r;

			fresh();
			dev.sim.cut_at = i;
			dev.sim.cut_mode = modes[m].mode;
			r = kit_run(&dev, 10000);
			cases++;
			if (r != KIT_CUT) {
				bad(modes[m].name, i, "the operation was never reached");
				continue;
			}
			kit_power_cut(&dev);
			if (modes[m].twice) {
				/* A second tear early in the recovery (at a spread of its first 64
				 * operations); a recovery shorter than that simply completes. */
				dev.sim.cut_at = dev.sim.ops + 1 + (i * 37) % 64;
				dev.sim.cut_mode = SIM_CUT_TEAR;
				r = kit_run(&dev, 10000);
				if (r == KIT_CUT) {
					kit_power_cut(&dev);
					second_cuts++;
				} else
					dev.sim.cut_at = 0;
			}
			r = kit_run(&dev, 10000);
			if (r != KIT_IDLE && r != KIT_BRICKED) {
				bad(modes[m].name, i, "agent did not settle after power came back");
				continue;
			}
			if (check(modes[m].name, i))
				on_target++;
			else
				on_previous++;
		}
	}
	/* The trial's hard cases, with full images (make_target replaces the target). */
	if (!delta_mode) {
		cases += sweep_trial_case(&keys, "slow-network", SIM_FAULT_NONE, true, true);
		cases += sweep_trial_case(&keys, "buy-fails", SIM_FAULT_BUY_FAILS, false, false);
		cases += sweep_trial_case(&keys, "hung-trial", SIM_FAULT_NEVER_BUY, true, false);
		cases += sweep_bit_flips(&keys);
	}
	kit_device_free(&dev);
	kit_server_free(&srv);
	kit_keys_free(&keys);
	free(delta);
	printf("power-cut sweep%s: %u cases (%llu operations x cut before / torn / torn twice%s), "
	       "%u torn twice in fact, %u ended on the target, %u on the previous version, "
	       "%u failures\n",
	       fallback_mode ? " (delta fallback)"
	       : delta_mode  ? " (delta)"
	                     : "",
	       cases, (unsigned long long)total,
	       delta_mode ? "" : ", the trial cases and the bit flips", second_cuts, on_target,
	       on_previous, failures);
	return failures ? 1 : 0;
}
