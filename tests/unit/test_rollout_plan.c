/*
 * test_rollout_plan.c - the rollout plan on a real temporary SQLite registry: the counts per
 * stage and per breakdown, every skip reason, the target filter read through the variant
 * index, the duration estimate under budgets and soak, maintenance windows across a time
 * zone and one open now, and agreement with the engine: the devices a draft's plan puts in
 * its first stage are exactly the ones the started rollout offers the release to.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deploy/deploy.h"
#include "deploy/plan.h"
#include "rollout/rollout.h"
#include "store/mgmt_store.h"
#include "store/plan_store.h"
#include "store/rollout_store.h"
#include "store/store.h"
#include "store_fixture.h"

#define T0 1768435200 /* 2026-01-15 00:00:00 UTC, a Thursday */

struct fx {
	char dir[OTA_TEST_DIR_MAX];
	char path[OTA_TEST_PATH_MAX];
	struct ota_store *st;
	struct ota_release rel;
};

static const uint8_t KEY[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	bool existed;

	if (ota_test_store_open("plan", f->dir, f->path, &f->st) != 0)
		return -1;
	struct ota_release *r = &f->rel;
	for (int i = 0; i < 64; i++)
		r->id[i] = "0123456789abcdef"[(i * 7) % 16];
	snprintf(r->name, sizeof(r->name), "fw");
	snprintf(r->version, sizeof(r->version), "2.0.0");
	r->security_version = 3;
	snprintf(r->image_sha256, sizeof(r->image_sha256), "%s", r->id);
	r->image_size = 100;
	snprintf(r->image_format, sizeof(r->image_format), "bin");
	r->nhw = 2;
	snprintf(r->hw[0], sizeof(r->hw[0]), "pico2w");
	snprintf(r->hw[1], sizeof(r->hw[1]), "pico2");
	if (ota_store_image_add(f->st, r->id, 100, T0, &existed) != OTA_OK ||
	    ota_store_release_add(f->st, r, "{}", T0, &existed) != OTA_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (ota_test_store_close(f->dir, f->st) != 0)
		return -1;
	free(f);
	return 0;
}

/* A device that checked in with these facts (NULL hw: registered, never seen). */
static void device(struct fx *f, const char *id, const char *hw, const char *version,
                   uint32_t floor, const char *tag)
{
	struct ota_device d;
	bool created;
	struct ota_device_report r = {
	    .id = id,
	    .hw_variant = hw,
	    .version = version,
	    .security_floor = floor,
	    .root_version = 1,
	    .active_slot = "A",
	    .boot_state = "normal",
	};
	if (!hw) {
		assert_int_equal(ota_store_device_register(f->st, id, "", "approved", T0), OTA_OK);
		return;
	}
	assert_int_equal(ota_store_device_admit(f->st, id, "00", T0, &d, &created), OTA_OK);
	assert_int_equal(ota_store_device_report(f->st, &r, T0), OTA_OK);
	if (tag)
		assert_int_equal(ota_store_device_set_tags(f->st, id, &tag, 1), OTA_OK);
}

static void spec_init(struct fx *f, struct ota_rollout_spec *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "plan");
	snprintf(s->release_id, sizeof(s->release_id), "%s", f->rel.id);
	s->nstages = 1;
	s->stages[0] = (struct ota_rollout_stage){.percent_bp = 10000,
	                                          .success_pct = 100,
	                                          .auto_advance = true,
	                                          .failure_pct = 100,
	                                          .min_finished = 1};
	s->retry_attempts = 1;
}

static struct ota_plan *plan(struct fx *f, const struct ota_rollout_spec *s, const char *rid,
                             const uint8_t key[32], int64_t now)
{
	const char *hw[OTA_RO_MAX_LIST];
	for (unsigned i = 0; i < s->nhw; i++)
		hw[i] = s->hw[i];
	struct ota_plan *p = ota_plan_new(s, &f->rel, rid, key, 300);
	assert_non_null(p);
	assert_int_equal(ota_store_plan_devices(f->st, hw, s->nhw, ota_plan_add_cb, p), OTA_OK);
	assert_int_equal(ota_plan_finish(p, now), OTA_OK);
	return p;
}

static unsigned key_n(const struct ota_plan_breakdown *b, const char *key, unsigned stage)
{
	for (unsigned i = 0; i < b->nkeys; i++)
		if (strcmp(b->keys[i].key, key) == 0)
			return b->keys[i].n[stage];
	return 0;
}

static bool listed(const struct ota_plan *p, const char *id, enum ota_plan_skip why)
{
	for (unsigned i = 0; i < p->nskipped_list; i++)
		if (strcmp(p->skipped_list[i].device_id, id) == 0)
			return p->skipped_list[i].why == why;
	return false;
}

/* Every skip reason once, five devices covered, one not targeted. */
static void test_counts_and_skip_reasons(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;
	char id[16];

	for (int i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "ok-w%d", i);
		device(f, id, "pico2w", "1.0.0", 2, "line=1");
	}
	device(f, "ok-p0", "pico2", "1.5.0", 0, "line=2");
	device(f, "ok-p1", "pico2", "1.0.0", 3, NULL); /* floor == security_version: fine */
	device(f, "floor", "pico2w", "1.0.0", 4, "line=1");
	device(f, "same", "pico2w", "2.0.0", 3, "line=1");
	device(f, "esp", "esp32", "1.0.0", 0, "line=1");
	device(f, "decom", "pico2w", "1.0.0", 0, "line=1");
	assert_int_equal(ota_store_device_set_status(f->st, "decom", "decommissioned"), OTA_OK);
	device(f, "pend", "pico2w", "1.0.0", 0, "line=1");
	assert_int_equal(ota_store_device_set_admission(f->st, "pend", "pending"), OTA_OK);
	device(f, "rej", "pico2w", "1.0.0", 0, NULL);
	assert_int_equal(ota_store_device_set_admission(f->st, "rej", "rejected"), OTA_OK);
	device(f, "fresh", NULL, NULL, 0, NULL);
	device(f, "other", "pico2w", "0.9.0", 0, "lab"); /* fails the baseline below */

	spec_init(f, &s);
	snprintf(s.baseline_range, sizeof(s.baseline_range), ">=1.0.0");
	struct ota_plan *p = plan(f, &s, "r-0123", KEY, T0);

	assert_int_equal(p->considered, 13);
	assert_int_equal(p->not_targeted, 1);
	assert_int_equal(p->targeted, 12);
	assert_int_equal(p->covered, 5);
	assert_int_equal(p->skipped[OTA_PS_BELOW_FLOOR], 1);
	assert_int_equal(p->skipped[OTA_PS_ALREADY_ON_VERSION], 1);
	assert_int_equal(p->skipped[OTA_PS_WRONG_VARIANT], 1);
	assert_int_equal(p->skipped[OTA_PS_DECOMMISSIONED], 1);
	assert_int_equal(p->skipped[OTA_PS_PENDING_ADMISSION], 1);
	assert_int_equal(p->skipped[OTA_PS_REJECTED], 1);
	assert_int_equal(p->skipped[OTA_PS_NO_REPORT], 1);
	assert_true(listed(p, "floor", OTA_PS_BELOW_FLOOR));
	assert_true(listed(p, "same", OTA_PS_ALREADY_ON_VERSION));
	assert_true(listed(p, "esp", OTA_PS_WRONG_VARIANT));
	assert_true(listed(p, "decom", OTA_PS_DECOMMISSIONED));
	assert_true(listed(p, "pend", OTA_PS_PENDING_ADMISSION));
	assert_true(listed(p, "rej", OTA_PS_REJECTED));
	assert_true(listed(p, "fresh", OTA_PS_NO_REPORT));
	assert_false(listed(p, "other", OTA_PS_WRONG_VARIANT));
	assert_string_equal(ota_plan_skip_name(OTA_PS_BELOW_FLOOR), "below_floor");
	/* breakdowns of the covered devices */
	assert_int_equal(p->stages[0].devices, 5);
	assert_int_equal(p->stages[0].cumulative, 5);
	assert_int_equal(key_n(&p->by_hw, "pico2w", 0), 3);
	assert_int_equal(key_n(&p->by_hw, "pico2", 0), 2);
	assert_int_equal(key_n(&p->by_version, "1.0.0", 0), 4);
	assert_int_equal(key_n(&p->by_version, "1.5.0", 0), 1);
	assert_int_equal(key_n(&p->by_tag, "line=1", 0), 3);
	assert_int_equal(key_n(&p->by_tag, "line=2", 0), 1);
	assert_int_equal(p->nwindows, 0);
	ota_plan_free(p);

	/* Naming a variant reads only its devices (through the variant index). */
	s.nhw = 1;
	snprintf(s.hw[0], sizeof(s.hw[0]), "pico2");
	p = plan(f, &s, "r-0123", KEY, T0);
	assert_int_equal(p->considered, 2);
	assert_int_equal(p->covered, 2);
	ota_plan_free(p);
}

/* Stages split the covered devices by the same bucket the engine uses, and only grow. */
static void test_stages_follow_membership(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;
	unsigned want[3] = {0};
	char id[16];

	spec_init(f, &s);
	s.nstages = 3;
	s.stages[0].percent_bp = 1000;
	s.stages[1] = s.stages[0];
	s.stages[1].percent_bp = 5000;
	s.stages[2] = s.stages[0];
	s.stages[2].percent_bp = 10000;
	for (int i = 0; i < 300; i++) {
		snprintf(id, sizeof(id), "dev-%03d", i);
		device(f, id, i % 2 ? "pico2w" : "pico2", "1.0.0", 0, NULL);
		want[ota_rollout_stage_of(&s, ota_rollout_bucket(KEY, "r-abc", id))]++;
	}
	struct ota_plan *p = plan(f, &s, "r-abc", KEY, T0);
	assert_int_equal(p->covered, 300);
	/* The plan's keyed-once HMAC gives the engine's bucket, for every id. */
	for (int i = 0; i < 2000; i++) {
		snprintf(id, sizeof(id), "dev-%d", i * 7919);
		assert_int_equal(ota_plan_bucket(p, id), ota_rollout_bucket(KEY, "r-abc", id));
	}
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(p->stages[i].devices, want[i]);
		assert_int_equal(key_n(&p->by_hw, "pico2", i) + key_n(&p->by_hw, "pico2w", i),
		                 want[i]);
	}
	assert_int_equal(p->stages[2].cumulative, 300);
	assert_true(p->stages[0].devices > 0 && p->stages[0].devices < 90);
	ota_plan_free(p);
}

/* estimate = max(ceil(devices / concurrency) * poll interval, soak) */
static void test_estimate(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;
	char id[16];

	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "e-%d", i);
		device(f, id, "pico2w", "1.0.0", 0, i < 4 ? "line=a" : i < 8 ? "line=b" : NULL);
	}
	spec_init(f, &s);
	struct ota_plan *p = plan(f, &s, "r-1", KEY, T0);
	assert_int_equal(p->stages[0].concurrency, 10); /* no budget */
	assert_int_equal(p->stages[0].waves, 1);
	assert_int_equal(p->stages[0].estimate_s, 300);
	ota_plan_free(p);

	s.max_active = 3;
	p = plan(f, &s, "r-1", KEY, T0);
	assert_int_equal(p->stages[0].concurrency, 3);
	assert_int_equal(p->stages[0].waves, 4);
	assert_int_equal(p->stages[0].estimate_s, 1200);
	ota_plan_free(p);

	s.stages[0].soak_s = 3600; /* soak longer than the waves */
	p = plan(f, &s, "r-1", KEY, T0);
	assert_int_equal(p->stages[0].estimate_s, 3600);
	ota_plan_free(p);

	/* One per line: two lines, plus the two devices without a line tag. */
	s.stages[0].soak_s = 0;
	s.max_active = 0;
	snprintf(s.budget_tag_key, sizeof(s.budget_tag_key), "line");
	s.max_active_per_tag = 1;
	p = plan(f, &s, "r-1", KEY, T0);
	assert_int_equal(p->stages[0].concurrency, 4);
	assert_int_equal(p->stages[0].waves, 3);
	assert_int_equal(p->stages[0].estimate_s, 900);
	ota_plan_free(p);

	/* A stage smaller than its minimum of finished devices is flagged. */
	s.stages[0].min_finished = 20;
	p = plan(f, &s, "r-1", KEY, T0);
	assert_int_equal(p->nwarnings, 1);
	assert_non_null(strstr(p->warnings[0], "needs 20 finished"));
	ota_plan_free(p);
}

static void test_windows(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;

	spec_init(f, &s);
	s.window_days = 1u << 0; /* Mondays */
	s.window_start = 2 * 60;
	s.window_duration = 120;
	snprintf(s.window_tz, sizeof(s.window_tz), "UTC");
	struct ota_plan *p = plan(f, &s, "r-1", KEY, T0);
	/* From Thursday 2026-01-15: Mondays the 19th and the 26th, 02:00-04:00. */
	assert_int_equal(p->nwindows, 2);
	assert_int_equal(p->windows[0].opens_at, T0 + 4 * 86400 + 2 * 3600);
	assert_int_equal(p->windows[0].closes_at, T0 + 4 * 86400 + 4 * 3600);
	assert_int_equal(p->windows[1].opens_at, T0 + 11 * 86400 + 2 * 3600);
	ota_plan_free(p);

	/* Berlin is UTC+1 in January: the same local window opens an hour earlier in UTC. */
	snprintf(s.window_tz, sizeof(s.window_tz), "Europe/Berlin");
	p = plan(f, &s, "r-1", KEY, T0);
	assert_int_equal(p->nwindows, 2);
	assert_int_equal(p->windows[0].opens_at, T0 + 4 * 86400 + 1 * 3600);
	ota_plan_free(p);

	/* Asked during a window: it is listed first, already open. */
	int64_t now = T0 + 4 * 86400 + 2 * 3600; /* Monday 03:00 Berlin */
	p = plan(f, &s, "r-1", KEY, now);
	assert_true(p->nwindows >= 2);
	assert_true(p->windows[0].opens_at < now && p->windows[0].closes_at > now);
	ota_plan_free(p);
}

/* The draft's plan names the devices the started rollout offers the release to. */
static void test_agrees_with_engine(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;
	struct ota_rollout_row row;
	char rid[OTA_RO_ID_MAX], msg[256] = "", id[16];
	unsigned offered = 0;

	spec_init(f, &s);
	s.stages[0].percent_bp = 3000;
	s.stages[0].auto_advance = false;
	s.nstages = 2;
	s.stages[1] = s.stages[0];
	s.stages[1].percent_bp = 10000;
	for (int i = 0; i < 60; i++) {
		snprintf(id, sizeof(id), "g-%02d", i);
		device(f, id, "pico2w", i % 10 == 0 ? "2.0.0" : "1.0.0", 0, NULL);
	}
	assert_int_equal(ota_rollout_create(f->st, &s, "t", "operator", T0, rid, msg, sizeof(msg)),
	                 OTA_OK);
	assert_int_equal(ota_store_rollout_get(f->st, rid, &row, NULL), OTA_OK);
	struct ota_plan *p = plan(f, &s, rid, row.hash_key, T0);
	assert_int_equal(p->covered, 54);
	assert_int_equal(p->skipped[OTA_PS_ALREADY_ON_VERSION], 6);
	assert_int_equal(
	    ota_rollout_act(f->st, rid, OTA_RA_START, NULL, "t", "operator", T0, msg, sizeof(msg)),
	    OTA_OK);
	for (int i = 0; i < 60; i++) {
		struct ota_offer o;
		snprintf(id, sizeof(id), "g-%02d", i);
		struct ota_device_report d = {.id = id,
		                              .hw_variant = "pico2w",
		                              .version = i % 10 == 0 ? "2.0.0" : "1.0.0",
		                              .root_version = 1,
		                              .active_slot = "A",
		                              .boot_state = "normal"};
		assert_int_equal(ota_deploy_checkin(f->st, &d, T0 + 1, &o), OTA_OK);
		offered += o.update;
		ota_offer_clear(&o);
	}
	assert_int_equal(offered, p->stages[0].devices);
	ota_plan_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_counts_and_skip_reasons, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stages_follow_membership, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_estimate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_windows, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_agrees_with_engine, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
