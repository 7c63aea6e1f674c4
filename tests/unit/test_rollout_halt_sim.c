/*
 * test_rollout_halt_sim.c - the statistical halt against the plain failure threshold, on many
 * seeded simulated canaries: a canary of 20 devices finishes one device at a time and the
 * pure verdict (ota_rollout_judge) is taken after each. A good release fails on 2 % of devices,
 * a regression on 25 %. It prints, for each rule, the false-halt rate (a good release halted)
 * and the missed-regression rate (a regression whose 20 devices all finished without a halt),
 * and fails when the statistical halt's rates exceed those documented in docs/rollouts.md
 * ("Statistical halt"). Deterministic: the seeds are fixed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rollout/rollout.h"

#define RUNS 4000
#define CANARY 20
#define GOOD_BP 200 /* a good release fails on 2 % of devices */
#define BAD_BP 2500 /* a regression on 25 % */
/* The documented bounds of the statistical halt in this setting (docs/rollouts.md). */
#define MAX_FALSE_HALT 0.04
#define MAX_MISSED 0.10

static uint64_t next(uint64_t *x) /* splitmix64 */
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* One canary: whether the verdict halted before or when its last device finished. */
static bool halts(const struct ota_rollout_spec *s, unsigned fail_bp, uint64_t *seed)
{
	struct ota_stage_counts c;
	char why[256];
	memset(&c, 0, sizeof(c));
	c.waiting = CANARY;
	for (unsigned i = 0; i < CANARY; i++) {
		c.waiting--;
		if (next(seed) % OTA_RO_BP < fail_bp)
			c.n[OTA_MS_FAILED]++;
		else
			c.n[OTA_MS_SUCCEEDED]++;
		if (ota_rollout_judge(s, 0, &c, 0, 0, 0, 0, why, sizeof(why)) == OTA_V_HALT)
			return true;
	}
	return false;
}

static void rates(const struct ota_rollout_spec *s, const char *name, double *false_halt,
                  double *missed)
{
	uint64_t seed = 20260115;
	unsigned fh = 0, mr = 0;
	for (unsigned r = 0; r < RUNS; r++) {
		fh += halts(s, GOOD_BP, &seed);
		mr += !halts(s, BAD_BP, &seed);
	}
	*false_halt = (double)fh / RUNS;
	*missed = (double)mr / RUNS;
	printf("%-34s false halts %5.2f %%  missed regressions %5.2f %%  (%u runs each)\n", name,
	       *false_halt * 100, *missed * 100, RUNS);
}

static void spec_with(struct ota_rollout_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->nstages = 2;
	s->stages[0] = (struct ota_rollout_stage){.percent_bp = 100,
	                                          .success_pct = 100,
	                                          .auto_advance = true,
	                                          .failure_pct = 5,
	                                          .min_finished = 5,
	                                          .soak_s = 3600};
	s->stages[1] = s->stages[0];
	s->stages[1].percent_bp = OTA_RO_BP;
}

static void test_false_halts_and_missed_regressions(void **state)
{
	struct ota_rollout_spec s;
	double plain_fh, plain_mr, stat_fh, stat_mr;
	(void)state;

	spec_with(&s);
	rates(&s, "plain threshold 5 %, min 5", &plain_fh, &plain_mr);
	s.stages[0].acceptable_bp = 500;
	s.stages[0].confidence_pct = 95;
	rates(&s, "Wilson 95 %, acceptable 5 %, min 5", &stat_fh, &stat_mr);
	assert_true(stat_fh <= MAX_FALSE_HALT);
	assert_true(stat_mr <= MAX_MISSED);
	/* The point of it: far fewer false halts than the plain threshold on a small canary. */
	assert_true(stat_fh * 3 < plain_fh);
}

/* Known values of the bound (checked by hand from the formula). */
static void test_wilson_bound(void **state)
{
	(void)state;
	assert_true(ota_rollout_wilson_lower(0, 0, 95) == 0);
	assert_true(ota_rollout_wilson_lower(0, 50, 95) == 0);
	/* 1 of 5 at 95 %: 4.6 %, below 5 %: one unlucky device of five does not halt. */
	double lo = ota_rollout_wilson_lower(1, 5, 95);
	assert_true(lo > 0.045 && lo < 0.047);
	/* 5 of 20: 12.7 %. */
	lo = ota_rollout_wilson_lower(5, 20, 95);
	assert_true(lo > 0.126 && lo < 0.128);
	/* More confidence, lower bound. */
	assert_true(ota_rollout_wilson_lower(5, 20, 99) < ota_rollout_wilson_lower(5, 20, 90));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wilson_bound),
	    cmocka_unit_test(test_false_halts_and_missed_regressions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
