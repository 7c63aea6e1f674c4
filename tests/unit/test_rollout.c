/*
 * test_rollout.c - the rollout engine with an injected clock, on real temporary SQLite files:
 * growing a stage only adds devices; thresholds at, below and above the boundary; the
 * minimum-finished rule; soak time; approval; maintenance windows across midnight and time
 * zones; concurrency budgets under concurrent check-ins from several threads; retries with
 * backoff then failed; roll back refused below a device's floor; halting at the canary.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store_fixture.h"
#include "deploy/deploy.h"
#include "rollout/quiet.h"
#include "rollout/rollout.h"
#include "store/mgmt_store.h"
#include "store/rollout_store.h"
#include "store/store.h"

#define T0 1768435200 /* 2026-01-15 00:00:00 UTC, a Thursday */

static const struct ota_actor tester = {.name = "t", .role = "operator"};

struct fx {
	char dir[OTA_TEST_DIR_MAX];
	char path[OTA_TEST_PATH_MAX];
	struct ota_store *st;
	char rel_new[65], rel_old[65];
};

static void add_release(struct ota_store *st, char id[65], const char *version, uint32_t sv)
{
	struct ota_release r;
	bool existed;

	memset(&r, 0, sizeof(r));
	memset(id, 0, 65);
	for (int i = 0; i < 64; i++)
		id[i] = "0123456789abcdef"[(version[0] + version[2] * 7 + i) % 16];
	snprintf(r.id, sizeof(r.id), "%s", id);
	snprintf(r.name, sizeof(r.name), "fw");
	snprintf(r.version, sizeof(r.version), "%s", version);
	r.security_version = sv;
	snprintf(r.image_sha256, sizeof(r.image_sha256), "%s", id);
	r.image_size = 100;
	snprintf(r.image_format, sizeof(r.image_format), "bin");
	r.nhw = 1;
	snprintf(r.hw[0], sizeof(r.hw[0]), "pico2w");
	assert_int_equal(ota_store_image_add(st, id, 100, T0, &existed), OTA_OK);
	assert_int_equal(ota_store_release_add(st, &r, "{}", T0, &existed), OTA_OK);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (ota_test_store_open("rollout", f->dir, f->path, &f->st) != 0)
		return -1;
	add_release(f->st, f->rel_new, "2.0.0", 3);
	add_release(f->st, f->rel_old, "1.0.0", 2);
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

static void device(struct ota_store *st, const char *id, const char *version, uint32_t floor)
{
	struct ota_device d;
	bool created;
	struct ota_device_report r = {
	    .id = id,
	    .hw_variant = "pico2w",
	    .version = version,
	    .security_floor = floor,
	    .root_version = 1,
	    .active_slot = "A",
	    .boot_state = "normal",
	};
	assert_int_equal(ota_store_device_admit(st, id, "00", T0, &d, &created), OTA_OK);
	assert_int_equal(ota_store_device_report(st, &r, T0), OTA_OK);
}

static void spec_init(struct ota_rollout_spec *s, const char *release)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "test");
	snprintf(s->release_id, sizeof(s->release_id), "%s", release);
	s->nstages = 1;
	s->stages[0] = (struct ota_rollout_stage){.percent_bp = 10000,
	                                          .success_pct = 100,
	                                          .auto_advance = true,
	                                          .failure_pct = 100,
	                                          .min_finished = 1};
	s->retry_attempts = 1;
	s->unreachable_s = OTA_RO_UNREACHABLE_DEFAULT;
}

static void start(struct fx *f, const struct ota_rollout_spec *s, char id[OTA_RO_ID_MAX])
{
	char msg[256] = "";
	enum ota_err e =
	    ota_rollout_create(f->st, s, "tester", "operator", T0, id, msg, sizeof(msg));
	if (e != OTA_OK)
		fail_msg("create: %s", msg);
	assert_int_equal(ota_rollout_act(f->st, id, OTA_RA_START, NULL, "tester", "operator", T0,
	                                 msg, sizeof(msg)),
	                 OTA_OK);
}

static bool checkin(struct fx *f, const char *id, const char *version, uint32_t floor,
                    const char *const *tags, unsigned ntags, int64_t now)
{
	struct ota_offer o;
	struct ota_device_report c = {.id = id,
	                              .hw_variant = "pico2w",
	                              .version = version,
	                              .security_floor = floor,
	                              .root_version = 1,
	                              .active_slot = "A",
	                              .boot_state = "normal"};
	struct ota_deployment before;
	bool had = ota_store_deployment_active(f->st, id, &before) == OTA_OK;

	if (tags)
		assert_int_equal(ota_store_device_set_tags(f->st, id, tags, ntags), OTA_OK);
	assert_int_equal(ota_deploy_checkin(f->st, &c, now, &o), OTA_OK);
	/* Offered: a deployment the device did not have before this check-in. */
	bool offered = o.update && (!had || strcmp(before.id, o.dep.id) != 0);
	ota_offer_clear(&o);
	return offered;
}

/* Reports the end of a device's active deployment through the deployment service. */
static void finish(struct fx *f, const char *dev, const char *status, const char *reason,
                   int64_t now)
{
	struct ota_deployment dep;
	struct ota_release rel;
	struct ota_report_result res;
	struct ota_event ev = {.seq = 1, .status = status, .reason = reason, .progress = -1};

	assert_int_equal(ota_store_deployment_active(f->st, dev, &dep), OTA_OK);
	assert_int_equal(ota_store_release_get(f->st, dep.release_id, &rel, NULL), OTA_OK);
	ev.seq = (uint64_t)now; /* unique per report */
	ev.version = strcmp(status, "confirmed") == 0 ? rel.version : NULL;
	assert_int_equal(ota_deploy_report(f->st, dev, dep.id, &ev, now, &res), OTA_OK);
	assert_false(res.duplicate);
}

static enum ota_rollout_state state_of(struct fx *f, const char *id, unsigned *stage)
{
	struct ota_rollout_row row;
	assert_int_equal(ota_store_rollout_get(f->st, id, &row, NULL), OTA_OK);
	if (stage)
		*stage = row.stage;
	return row.state;
}

/* Audit entries of a rollout with an action, read from the database file. */
static int audit_count(struct fx *f, const char *id, const char *action)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	int n = -1;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "SELECT count(*) FROM audit_log WHERE rollout_id = ?1 "
	                                    "AND action = ?2",
	                                    -1, &q, NULL),
	                 SQLITE_OK);
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, action, -1, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

/* The before, after and detail of a rollout's only entry with an action: "before|after|detail". */
static void audit_states(struct fx *f, const char *id, const char *action, char *out, size_t len)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db,
	                       "SELECT coalesce(before, ''), coalesce(after, ''), "
	                       "coalesce(detail, '') FROM audit_log WHERE rollout_id = "
	                       "?1 AND action = ?2",
	                       -1, &q, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, action, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	snprintf(out, len, "%s|%s|%s", (const char *)sqlite3_column_text(q, 0),
	         (const char *)sqlite3_column_text(q, 1), (const char *)sqlite3_column_text(q, 2));
	sqlite3_finalize(q);
	sqlite3_close(db);
}

/* ---- pure half ---- */

static void test_stage_growth_only_adds(void **state)
{
	uint8_t key[32];
	unsigned in1 = 0, in10 = 0, in50 = 0;
	(void)state;

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(i * 37 + 1);
	for (int i = 0; i < 5000; i++) {
		char dev[32];
		snprintf(dev, sizeof(dev), "dev-%05d", i);
		unsigned b = ota_rollout_bucket(key, "r-0123", dev);
		assert_true(b < OTA_RO_BP);
		/* Deterministic, whatever the order of calls. */
		assert_int_equal(b, ota_rollout_bucket(key, "r-0123", dev));
		bool a = b < 100, c = b < 1000, d = b < 5000;
		/* In a smaller stage implies in every larger one. */
		assert_true(!a || c);
		assert_true(!c || d);
		in1 += a;
		in10 += c;
		in50 += d;
	}
	assert_in_range(in1, 20, 90);
	assert_in_range(in10, 400, 600);
	assert_in_range(in50, 2300, 2700);
	/* Another rollout picks other devices. */
	unsigned same = 0;
	for (int i = 0; i < 1000; i++) {
		char dev[32];
		snprintf(dev, sizeof(dev), "dev-%05d", i);
		same += (ota_rollout_bucket(key, "r-0123", dev) < 1000) ==
		            (ota_rollout_bucket(key, "r-4567", dev) < 1000) &&
		        ota_rollout_bucket(key, "r-0123", dev) < 1000;
	}
	assert_true(same < 40);

	struct ota_rollout_spec s;
	spec_init(&s, "x");
	s.nstages = 3;
	s.stages[0].percent_bp = 100;
	s.stages[1].percent_bp = 1000;
	s.stages[2].percent_bp = 10000;
	assert_int_equal(ota_rollout_stage_of(&s, 0), 0);
	assert_int_equal(ota_rollout_stage_of(&s, 99), 0);
	assert_int_equal(ota_rollout_stage_of(&s, 100), 1);
	assert_int_equal(ota_rollout_stage_of(&s, 9999), 2);
}

/* The same rollout id under two keys: two unrelated canaries. */
static void test_membership_depends_on_the_key(void **state)
{
	uint8_t ka[32], kb[32];
	unsigned ina = 0, inb = 0, both = 0;
	(void)state;

	for (int i = 0; i < 32; i++) {
		ka[i] = (uint8_t)(i * 37 + 1);
		kb[i] = ka[i];
	}
	kb[31] ^= 1; /* one bit apart */
	for (int i = 0; i < 2000; i++) {
		char dev[32];
		snprintf(dev, sizeof(dev), "dev-%05d", i);
		bool a = ota_rollout_bucket(ka, "r-0123", dev) < 1000;
		bool b = ota_rollout_bucket(kb, "r-0123", dev) < 1000;
		ina += a;
		inb += b;
		both += a && b;
	}
	/* About 200 each at 10 %, about 20 in both when independent (200 if the key is ignored). */
	assert_in_range(ina, 120, 280);
	assert_in_range(inb, 120, 280);
	assert_true(both < 60);
}

/* A rollout's canary is not computable from its id alone: the engine gives each rollout a
 * random key of its own, and the members under it are not those under a key anyone could
 * derive from the id (none, or the id itself). */
static void test_canary_not_computable_from_id(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;
	struct ota_rollout_row ra, rb;
	char ida[OTA_RO_ID_MAX], idb[OTA_RO_ID_MAX], msg[256];
	uint8_t zero[32] = {0}, fromid[32] = {0};
	unsigned in = 0, zero_too = 0, id_too = 0;

	spec_init(&s, f->rel_new);
	assert_int_equal(ota_rollout_create(f->st, &s, "t", "operator", T0, ida, msg, sizeof(msg)),
	                 OTA_OK);
	assert_int_equal(ota_rollout_create(f->st, &s, "t", "operator", T0, idb, msg, sizeof(msg)),
	                 OTA_OK);
	assert_int_equal(ota_store_rollout_get(f->st, ida, &ra, NULL), OTA_OK);
	assert_int_equal(ota_store_rollout_get(f->st, idb, &rb, NULL), OTA_OK);
	assert_memory_not_equal(ra.hash_key, zero, 32);
	assert_memory_not_equal(ra.hash_key, rb.hash_key, 32);
	memcpy(fromid, ida, strnlen(ida, sizeof(fromid)));
	for (int i = 0; i < 2000; i++) {
		char dev[32];
		snprintf(dev, sizeof(dev), "dev-%05d", i);
		bool real = ota_rollout_bucket(ra.hash_key, ida, dev) < 1000;
		in += real;
		zero_too += real && ota_rollout_bucket(zero, ida, dev) < 1000;
		id_too += real && ota_rollout_bucket(fromid, ida, dev) < 1000;
	}
	assert_in_range(in, 120, 280);
	assert_true(zero_too < 60);
	assert_true(id_too < 60);
}

static void test_spec_rules_and_text(void **state)
{
	struct ota_rollout_spec s, t;
	char msg[256];
	char rel[65];
	(void)state;

	memset(rel, 'a', 64);
	rel[64] = 0;
	spec_init(&s, rel);
	s.nstages = 3;
	s.stages[0] = (struct ota_rollout_stage){100, 100, true, 10, 1, 60, 0, 0};
	s.stages[1] = (struct ota_rollout_stage){1000, 95, false, 5, 10, 600, 0, 0};
	s.stages[2] = (struct ota_rollout_stage){10000, 95, true, 5, 10, 0, 0, 0};
	s.nhw = 1;
	snprintf(s.hw[0], sizeof(s.hw[0]), "pico2w");
	snprintf(s.baseline_range, sizeof(s.baseline_range), ">=1.0.0 <2.0.0");
	s.ntags_all = 1;
	snprintf(s.tags_all[0], sizeof(s.tags_all[0]), "site=berlin");
	s.window_days = 0x7f;
	s.window_start = 120;
	s.window_duration = 180;
	snprintf(s.window_tz, sizeof(s.window_tz), "Europe/Berlin");
	s.max_active = 50;
	s.max_active_per_tag = 1;
	snprintf(s.budget_tag_key, sizeof(s.budget_tag_key), "line");
	s.retry_attempts = 3;
	s.retry_backoff_s = 60;
	s.unreachable_s = 7200;
	s.stages[0].acceptable_bp = 250; /* a statistical halt: 2.5 % at 99 % */
	s.stages[0].confidence_pct = 99;
	assert_int_equal(ota_rollout_spec_check(&s, msg, sizeof(msg)), OTA_OK);
	char *text = ota_rollout_spec_json(&s);
	assert_non_null(text);
	assert_int_equal(ota_rollout_spec_decode(text, &t), OTA_OK);
	assert_memory_equal(&s, &t, sizeof(s));
	free(text);
	assert_int_equal(ota_rollout_spec_decode("{\"name\":\"x\",\"bogus\":1}", &t),
	                 OTA_ERR_INVALID);
	/* A statistical halt's confidence is one of three. */
	char bad[512];
	snprintf(bad, sizeof(bad),
	         "{\"name\":\"x\",\"release_id\":\"%s\",\"stages\":[{\"percent\":100,"
	         "\"statistical_halt\":{\"acceptable_failure_rate\":5,\"confidence\":80}}]}",
	         s.release_id);
	assert_int_equal(ota_rollout_spec_parse(bad, strlen(bad), &t, msg, sizeof(msg)),
	                 OTA_ERR_INVALID);
	assert_non_null(strstr(msg, "\"confidence\" must be 90, 95 or 99"));

	/* Each rule refuses with a message. */
	t = s;
	t.stages[1].percent_bp = 100; /* not growing */
	assert_int_equal(ota_rollout_spec_check(&t, msg, sizeof(msg)), OTA_ERR_INVALID);
	t = s;
	t.stages[2].percent_bp = 5000; /* last below 100 % */
	assert_int_equal(ota_rollout_spec_check(&t, msg, sizeof(msg)), OTA_ERR_INVALID);
	t = s;
	snprintf(t.window_tz, sizeof(t.window_tz), "Mars/Olympus");
	assert_int_equal(ota_rollout_spec_check(&t, msg, sizeof(msg)), OTA_ERR_INVALID);
	snprintf(t.window_tz, sizeof(t.window_tz), "../../etc/passwd");
	assert_int_equal(ota_rollout_spec_check(&t, msg, sizeof(msg)), OTA_ERR_INVALID);
	t = s;
	t.nbaseline = 1;
	snprintf(t.baseline[0], sizeof(t.baseline[0]), "1.0.0");
	assert_int_equal(ota_rollout_spec_check(&t, msg, sizeof(msg)), OTA_ERR_INVALID);
	t = s;
	snprintf(t.baseline_range, sizeof(t.baseline_range), ">=banana");
	assert_int_equal(ota_rollout_spec_check(&t, msg, sizeof(msg)), OTA_ERR_INVALID);
	t = s;
	t.retry_attempts = 0;
	assert_int_equal(ota_rollout_spec_check(&t, msg, sizeof(msg)), OTA_ERR_INVALID);
}

static void test_filter_and_semver(void **state)
{
	struct ota_rollout_spec s;
	const char *tags[] = {"line=1", "site=berlin"};
	struct ota_rollout_device d = {
	    .id = "d1", .hw_variant = "pico2w", .version = "1.4.2", .ntags = 2, .tags = tags};
	char why[128];
	(void)state;

	assert_int_equal(ota_semver_in_range("1.4.2", ">=1.2.0 <2.0.0"), 1);
	assert_int_equal(ota_semver_in_range("2.0.0", ">=1.2.0 <2.0.0"), 0);
	assert_int_equal(ota_semver_in_range("1.2.0", ">1.2.0"), 0);
	assert_int_equal(ota_semver_in_range("1.2.0", "1.2.0"), 1);
	assert_int_equal(ota_semver_in_range("1.2.0", ">=x"), -1);

	spec_init(&s, "x");
	assert_true(ota_rollout_matches(&s, &d, why, sizeof(why)));
	s.nhw = 1;
	snprintf(s.hw[0], sizeof(s.hw[0]), "other");
	assert_false(ota_rollout_matches(&s, &d, why, sizeof(why)));
	snprintf(s.hw[0], sizeof(s.hw[0]), "pico2w");
	s.nbaseline = 2;
	snprintf(s.baseline[0], sizeof(s.baseline[0]), "1.4.1");
	snprintf(s.baseline[1], sizeof(s.baseline[1]), "1.4.2");
	assert_true(ota_rollout_matches(&s, &d, why, sizeof(why)));
	snprintf(s.baseline[1], sizeof(s.baseline[1]), "1.4.3");
	assert_false(ota_rollout_matches(&s, &d, why, sizeof(why)));
	s.nbaseline = 0;
	snprintf(s.baseline_range, sizeof(s.baseline_range), "<1.4.2");
	assert_false(ota_rollout_matches(&s, &d, why, sizeof(why)));
	s.baseline_range[0] = 0;
	s.ntags_all = 2;
	snprintf(s.tags_all[0], sizeof(s.tags_all[0]), "line=1");
	snprintf(s.tags_all[1], sizeof(s.tags_all[1]), "site=paris");
	assert_false(ota_rollout_matches(&s, &d, why, sizeof(why)));
	s.ntags_all = 1;
	assert_true(ota_rollout_matches(&s, &d, why, sizeof(why)));
	s.ntags_any = 2;
	snprintf(s.tags_any[0], sizeof(s.tags_any[0]), "site=paris");
	snprintf(s.tags_any[1], sizeof(s.tags_any[1]), "site=rome");
	assert_false(ota_rollout_matches(&s, &d, why, sizeof(why)));
	snprintf(s.tags_any[1], sizeof(s.tags_any[1]), "site=berlin");
	assert_true(ota_rollout_matches(&s, &d, why, sizeof(why)));
}

static enum ota_verdict judge(const struct ota_rollout_spec *s, unsigned succ, unsigned failed,
                              unsigned active, int64_t started, int64_t now)
{
	struct ota_stage_counts c;
	char why[256];
	memset(&c, 0, sizeof(c));
	c.n[OTA_MS_SUCCEEDED] = succ;
	c.n[OTA_MS_FAILED] = failed;
	c.n[OTA_MS_DOWNLOADING] = active;
	return ota_rollout_judge(s, 0, &c, 0, 0, started, now, why, sizeof(why));
}

static void test_thresholds_min_finished_soak_approval(void **state)
{
	struct ota_rollout_spec s;
	(void)state;

	spec_init(&s, "x");
	s.nstages = 2;
	s.stages[0] = (struct ota_rollout_stage){100, 80, true, 20, 10, 0, 0, 0};
	s.stages[1] = (struct ota_rollout_stage){10000, 80, true, 20, 10, 0, 0, 0};
	/* Failure threshold 20 % of finished, once 10 finished: at the boundary holds. */
	assert_int_equal(judge(&s, 8, 2, 0, T0, T0), OTA_V_ADVANCE);   /* 20 %: not more */
	assert_int_equal(judge(&s, 7, 3, 0, T0, T0), OTA_V_HALT);      /* 30 % */
	assert_int_equal(judge(&s, 9, 1, 0, T0, T0), OTA_V_ADVANCE);   /* 10 % */
	assert_int_equal(judge(&s, 40, 10, 0, T0, T0), OTA_V_ADVANCE); /* exactly 20 % */
	assert_int_equal(judge(&s, 40, 11, 0, T0, T0), OTA_V_HALT);    /* 21.6 % */
	/* Minimum finished: 9 finished, all failed, decides nothing yet. */
	assert_int_equal(judge(&s, 0, 9, 5, T0, T0), OTA_V_HOLD);
	assert_int_equal(judge(&s, 0, 10, 5, T0, T0), OTA_V_HALT);
	/* Success threshold 80 % of the joined devices: 8 of 10 advances, 7 of 10 holds. */
	assert_int_equal(judge(&s, 16, 0, 4, T0, T0), OTA_V_ADVANCE);
	assert_int_equal(judge(&s, 10, 0, 3, T0, T0), OTA_V_HOLD);
	/* Soak: not before soak_s seconds in the stage, whatever the successes. */
	s.stages[0].soak_s = 3600;
	assert_int_equal(judge(&s, 10, 0, 0, T0, T0 + 3599), OTA_V_HOLD);
	assert_int_equal(judge(&s, 10, 0, 0, T0, T0 + 3600), OTA_V_ADVANCE);
	/* A halt does not wait for the soak. */
	assert_int_equal(judge(&s, 0, 10, 0, T0, T0 + 1), OTA_V_HALT);
	/* Approval instead of advancing. */
	s.stages[0].auto_advance = false;
	assert_int_equal(judge(&s, 10, 0, 0, T0, T0 + 3600), OTA_V_WAIT_APPROVAL);
	/* Acknowledged failures (resume) are not counted again. */
	struct ota_stage_counts c;
	char why[128];
	memset(&c, 0, sizeof(c));
	c.n[OTA_MS_FAILED] = 10;
	c.n[OTA_MS_SUCCEEDED] = 5;
	assert_int_equal(ota_rollout_judge(&s, 0, &c, 0, 0, T0, T0, why, sizeof(why)), OTA_V_HALT);
	assert_int_equal(ota_rollout_judge(&s, 0, &c, 10, 10, T0, T0, why, sizeof(why)),
	                 OTA_V_HOLD);
}

/* The verdict over the devices a stage covers: those still to join hold it, the unreachable
 * and the skipped are left out, and a last stage completes only when none is left open. */
static void test_judge_over_covered_devices(void **state)
{
	struct ota_rollout_spec s;
	struct ota_stage_counts c;
	char why[256];
	(void)state;

	spec_init(&s, "x");
	s.nstages = 2;
	s.stages[0] = (struct ota_rollout_stage){1000, 100, true, 0, 1, 0, 0, 0};
	s.stages[1] = (struct ota_rollout_stage){10000, 90, true, 0, 1, 0, 0, 0};
	memset(&c, 0, sizeof(c));
	/* The case: 1 of 5 covered devices confirmed, 4 not joined yet: hold. */
	c.n[OTA_MS_SUCCEEDED] = 1;
	c.waiting = 4;
	assert_int_equal(ota_rollout_judge(&s, 0, &c, 0, 0, T0, T0, why, sizeof(why)), OTA_V_HOLD);
	/* They are declared unreachable: 1 of 1 reachable succeeded, the stage succeeds. */
	c.waiting = 0;
	c.unreachable = 4;
	assert_int_equal(ota_rollout_judge(&s, 0, &c, 0, 0, T0, T0, why, sizeof(why)),
	                 OTA_V_ADVANCE);
	assert_non_null(strstr(why, "stage 1 succeeded: 1 of 1 covered devices"));
	assert_non_null(strstr(why, "4 unreachable"));
	/* Last stage, threshold 90 %: 9 of 10 succeeded but one still joining: hold. */
	memset(&c, 0, sizeof(c));
	c.n[OTA_MS_SUCCEEDED] = 18;
	c.n[OTA_MS_SKIPPED] = 3;
	c.waiting = 2;
	assert_int_equal(ota_rollout_judge(&s, 1, &c, 0, 0, T0, T0, why, sizeof(why)), OTA_V_HOLD);
	c.waiting = 0;
	c.n[OTA_MS_TRIAL] = 2;
	assert_int_equal(ota_rollout_judge(&s, 1, &c, 0, 0, T0, T0, why, sizeof(why)), OTA_V_HOLD);
	c.n[OTA_MS_TRIAL] = 0;
	c.n[OTA_MS_SUCCEEDED] = 20;
	assert_int_equal(ota_rollout_judge(&s, 1, &c, 0, 0, T0, T0, why, sizeof(why)),
	                 OTA_V_COMPLETE);
	assert_string_equal(why,
	                    "completed: 20 of 20 covered devices succeeded, 0 failed, 3 skipped, 0 "
	                    "unreachable");
	/* min_finished larger than the stage: all its devices finished is enough. */
	memset(&c, 0, sizeof(c));
	s.stages[0].min_finished = 10;
	c.n[OTA_MS_SUCCEEDED] = 3;
	assert_int_equal(ota_rollout_judge(&s, 0, &c, 0, 0, T0, T0, why, sizeof(why)),
	                 OTA_V_ADVANCE);
	/* A stage covering no device at all passes after its soak. */
	memset(&c, 0, sizeof(c));
	s.stages[0].soak_s = 60;
	assert_int_equal(ota_rollout_judge(&s, 0, &c, 0, 0, T0, T0 + 59, why, sizeof(why)),
	                 OTA_V_HOLD);
	assert_int_equal(ota_rollout_judge(&s, 0, &c, 0, 0, T0, T0 + 60, why, sizeof(why)),
	                 OTA_V_ADVANCE);
}

/*
 * The operator's first rollout of the issue: 48 devices, stages 10/50/100 % with the defaults.
 * One confirming device no longer carries a stage; the rollout completes only once every
 * covered device finished (or is unreachable), and then all 48 run the release.
 */
static void test_engine_stage_waits_for_covered_devices(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;
	struct ota_rollout_row row;
	char id[OTA_RO_ID_MAX], devs[48][16];
	unsigned stage;

	spec_init(&s, f->rel_new);
	s.nstages = 3;
	s.stages[0] = (struct ota_rollout_stage){1000, 100, true, 0, 1, 0, 0, 0};
	s.stages[1] = (struct ota_rollout_stage){5000, 100, true, 0, 1, 0, 0, 0};
	s.stages[2] = (struct ota_rollout_stage){10000, 100, true, 0, 1, 0, 0, 0};
	s.unreachable_s = 3600;
	for (int i = 0; i < 48; i++) {
		snprintf(devs[i], sizeof(devs[i]), "c-%02d", i);
		device(f->st, devs[i], "1.0.0", 1);
	}
	/* The key is random: 48 devices put about five in 10 %; a draw with fewer than two is
	 * aborted and drawn again, so that the stage has others to wait for. */
	int first = -1, in0 = 0;
	for (int tries = 0; tries < 50 && in0 < 2; tries++) {
		char msg[128];
		if (tries)
			assert_int_equal(ota_rollout_act(f->st, id, OTA_RA_ABORT, "redraw", "t",
			                                 "operator", T0, msg, sizeof(msg)),
			                 OTA_OK);
		start(f, &s, id);
		assert_int_equal(ota_store_rollout_get(f->st, id, &row, NULL), OTA_OK);
		first = -1;
		in0 = 0;
		for (int i = 0; i < 48; i++)
			if (ota_rollout_bucket(row.hash_key, id, devs[i]) < 1000) {
				in0++;
				if (first < 0)
					first = i;
			}
	}
	assert_true(in0 >= 2);
	/* One device of stage 1 checks in and confirms: the stage holds for the others. */
	assert_true(checkin(f, devs[first], "1.0.0", 1, NULL, 0, T0 + 10));
	finish(f, devs[first], "confirmed", NULL, T0 + 11);
	assert_int_equal(ota_rollout_tick(f->st, T0 + 12), OTA_OK);
	assert_int_equal(state_of(f, id, &stage), OTA_RS_RUNNING);
	assert_int_equal(stage, 0);
	/* A check-in never judges, even with the stage's work done. */
	int64_t t = T0 + 20;
	for (int i = 0; i < 48; i++)
		if (i != first && ota_rollout_bucket(row.hash_key, id, devs[i]) < 1000) {
			assert_true(checkin(f, devs[i], "1.0.0", 1, NULL, 0, t++));
			finish(f, devs[i], "confirmed", NULL, t++);
		}
	/* (each report judged right after it: stage 2 started) */
	assert_int_equal(state_of(f, id, &stage), OTA_RS_RUNNING);
	assert_int_equal(stage, 1);
	/* Stage 2: every device checks in and confirms but one, which stays silent. */
	int silent = -1;
	for (int i = 0; i < 48; i++) {
		unsigned b = ota_rollout_bucket(row.hash_key, id, devs[i]);
		if (b < 1000 || b >= 5000)
			continue;
		if (silent < 0) {
			silent = i;
			continue;
		}
		assert_true(checkin(f, devs[i], "1.0.0", 1, NULL, 0, t++));
		finish(f, devs[i], "confirmed", NULL, t++);
	}
	assert_true(silent >= 0);
	assert_int_equal(ota_rollout_tick(f->st, t), OTA_OK);
	assert_int_equal(state_of(f, id, &stage), OTA_RS_RUNNING);
	assert_int_equal(stage, 1);
	/* An hour on, the silent device is unreachable: the stage succeeds, and says so. */
	t += 3600;
	assert_int_equal(ota_rollout_tick(f->st, t), OTA_OK);
	assert_int_equal(state_of(f, id, &stage), OTA_RS_RUNNING);
	assert_int_equal(stage, 2);
	/* The last stage: a device registering now is covered, and the rollout waits for it. */
	device(f->st, "c-late", "1.0.0", 1);
	for (int i = 0; i < 48; i++) {
		if (ota_rollout_bucket(row.hash_key, id, devs[i]) < 5000 && i != silent)
			continue;
		assert_true(checkin(f, devs[i], "1.0.0", 1, NULL, 0, t++));
		finish(f, devs[i], "confirmed", NULL, t++);
	}
	assert_int_equal(ota_rollout_tick(f->st, t), OTA_OK);
	assert_int_equal(state_of(f, id, NULL), OTA_RS_RUNNING);
	assert_true(checkin(f, "c-late", "1.0.0", 1, NULL, 0, t++));
	finish(f, "c-late", "confirmed", NULL, t++);
	assert_int_equal(ota_rollout_tick(f->st, t), OTA_OK);
	assert_int_equal(state_of(f, id, NULL), OTA_RS_COMPLETED);
	assert_int_equal(audit_count(f, id, "deployment.create"), 49);
	assert_int_equal(audit_count(f, id, "deployment.outcome"), 49);
}

static void add_hist(void *ctx, const struct ota_rollout_verdict *v)
{
	char *h = ctx;
	size_t n = strlen(h);
	snprintf(h + n, 2048 - n, "%u %s %s %s;", v->stage, v->verdict, v->rule, v->numbers);
}

/* A late failure of a stage-1 device counts toward the halt of stage 2. */
static void test_engine_earlier_stage_failures_halt(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;
	struct ota_rollout_row row;
	char id[OTA_RO_ID_MAX], devs[40][16];
	unsigned stage;

	spec_init(&s, f->rel_new);
	s.nstages = 2;
	s.stages[0] = (struct ota_rollout_stage){5000, 50, true, 100, 1, 0, 0, 0};
	s.stages[1] = (struct ota_rollout_stage){10000, 100, true, 0, 1, 0, 0, 0};
	for (int i = 0; i < 40; i++) {
		snprintf(devs[i], sizeof(devs[i]), "e-%02d", i);
		device(f->st, devs[i], "1.0.0", 1);
	}
	start(f, &s, id);
	assert_int_equal(ota_store_rollout_get(f->st, id, &row, NULL), OTA_OK);
	int64_t t = T0 + 10;
	int n0 = 0, late[2] = {-1, -1};
	for (int i = 0; i < 40; i++)
		if (ota_rollout_bucket(row.hash_key, id, devs[i]) < 5000) {
			assert_true(checkin(f, devs[i], "1.0.0", 1, NULL, 0, t++));
			n0++;
		}
	assert_true(n0 >= 6);
	/* All but two confirm: 50 % succeeded, the stage advances with two still in trial. */
	for (int i = 0, k = 0; i < 40; i++)
		if (ota_rollout_bucket(row.hash_key, id, devs[i]) < 5000) {
			if (k < 2)
				late[k++] = i;
			else
				finish(f, devs[i], "confirmed", NULL, t++);
		}
	assert_int_equal(ota_rollout_tick(f->st, t), OTA_OK);
	assert_int_equal(state_of(f, id, &stage), OTA_RS_RUNNING);
	assert_int_equal(stage, 1);
	/* The two stage-1 devices fail late, while no stage-2 device has finished: counted
	 * over stage 2's own devices nothing failed, over the rollout they did (more than 0 %). */
	finish(f, devs[late[0]], "failed", "watchdog", t++);
	finish(f, devs[late[1]], "failed", "watchdog", t++);
	assert_int_equal(ota_rollout_tick(f->st, t), OTA_OK);
	assert_int_equal(state_of(f, id, NULL), OTA_RS_PAUSED);
	assert_int_equal(ota_store_rollout_get(f->st, id, &row, NULL), OTA_OK);
	assert_non_null(strstr(row.reason, ": 1 of ")); /* halted at the first */
	assert_non_null(strstr(row.reason, "of stages 1 to 2 failed"));
	/* The history: stage 1's success, then the halt in stage 2 with its numbers. */
	char hist[2048] = "";
	assert_int_equal(ota_store_rollout_verdicts(f->st, id, 20, add_hist, hist), OTA_OK);
	assert_non_null(strstr(hist, "2 halt failure_threshold {\"succeeded\":"));
	assert_non_null(strstr(hist, "\"failed\":1,"));
	assert_non_null(strstr(hist, ";1 advance success_threshold"));
	assert_true(strstr(hist, "halt") < strstr(hist, "advance")); /* newest first */
}

static void test_engine_approval_and_completion(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;
	char id[OTA_RO_ID_MAX], msg[256];
	unsigned stage;

	spec_init(&s, f->rel_new);
	s.nstages = 2;
	s.stages[0] = (struct ota_rollout_stage){5000, 100, false, 50, 1, 0, 0, 0};
	s.stages[1] = (struct ota_rollout_stage){10000, 100, true, 50, 1, 0, 0, 0};
	start(f, &s, id);
	/* Approving a running rollout is refused and changes nothing. */
	assert_int_equal(
	    ota_rollout_act(f->st, id, OTA_RA_APPROVE, NULL, "t", "operator", T0, msg, sizeof(msg)),
	    OTA_ERR_CONFLICT);
	struct ota_rollout_row row;
	assert_int_equal(ota_store_rollout_get(f->st, id, &row, NULL), OTA_OK);
	unsigned offered = 0, n = 0;
	char devs[40][16];
	for (int i = 0; i < 40; i++) {
		snprintf(devs[i], sizeof(devs[i]), "a-%02d", i);
		device(f->st, devs[i], "1.0.0", 1);
		bool in = ota_rollout_bucket(row.hash_key, id, devs[i]) < 5000;
		bool got = checkin(f, devs[i], "1.0.0", 1, NULL, 0, T0 + 1);
		assert_int_equal(in, got);
		offered += got;
	}
	assert_true(offered > 0 && offered < 40);
	for (int i = 0; i < 40; i++)
		if (ota_rollout_bucket(row.hash_key, id, devs[i]) < 5000) {
			finish(f, devs[i], "confirmed", NULL, T0 + 2);
			n++;
		}
	assert_int_equal(ota_rollout_evaluate(f->st, id, T0 + 3), OTA_OK);
	assert_int_equal(state_of(f, id, &stage), OTA_RS_WAITING_APPROVAL);
	assert_int_equal(stage, 0);
	/* Waiting: no device outside stage 1 is offered anything. */
	for (int i = 0; i < 40; i++)
		assert_false(checkin(f, devs[i], "1.0.0", 1, NULL, 0, T0 + 4));
	assert_int_equal(ota_rollout_act(f->st, id, OTA_RA_APPROVE, NULL, "t", "operator", T0 + 5,
	                                 msg, sizeof(msg)),
	                 OTA_OK);
	assert_int_equal(state_of(f, id, &stage), OTA_RS_RUNNING);
	assert_int_equal(stage, 1);
	for (int i = 0; i < 40; i++) {
		bool was_in = ota_rollout_bucket(row.hash_key, id, devs[i]) < 5000;
		/* Stage 1's devices finished: nothing new for them; everyone else joins. */
		assert_int_equal(
		    checkin(f, devs[i], was_in ? "2.0.0" : "1.0.0", 1, NULL, 0, T0 + 6), !was_in);
	}
	for (int i = 0; i < 40; i++)
		if (ota_rollout_bucket(row.hash_key, id, devs[i]) >= 5000)
			finish(f, devs[i], "confirmed", NULL, T0 + 7);
	assert_int_equal(ota_rollout_evaluate(f->st, id, T0 + 8), OTA_OK);
	assert_int_equal(state_of(f, id, NULL), OTA_RS_COMPLETED);
	assert_int_equal(audit_count(f, id, "rollout.stage.wait_approval"), 1);
	assert_int_equal(audit_count(f, id, "rollout.stage.advance"), 1);
	assert_int_equal(audit_count(f, id, "rollout.complete"), 1);
	assert_int_equal(audit_count(f, id, "deployment.create"), 40);
	/* Each transition's entry carries its states as JSON, stages counted from 1. */
	char st3[1024];
	audit_states(f, id, "rollout.start", st3, sizeof(st3));
	assert_string_equal(st3, "{\"stage\":1,\"state\":\"draft\"}|{\"reason\":\"started\","
	                         "\"stage\":1,\"state\":\"running\"}|draft -> running (stage 1) "
	                         "started");
	audit_states(f, id, "rollout.stage.advance", st3, sizeof(st3));
	assert_non_null(strstr(st3, "{\"stage\":1,\"state\":\"waiting_approval\"}|"));
	assert_non_null(strstr(st3, "\"stage\":2,\"state\":\"running\"}"));
	audit_states(f, id, "rollout.complete", st3, sizeof(st3));
	assert_non_null(strstr(st3, "\"stage\":2,\"state\":\"completed\"}"));
	struct ota_stage_counts c0, c1;
	assert_int_equal(ota_store_rollout_counts(f->st, id, 0, &c0), OTA_OK);
	assert_int_equal(ota_store_rollout_counts(f->st, id, 1, &c1), OTA_OK);
	assert_int_equal(c0.n[OTA_MS_SUCCEEDED] + c1.n[OTA_MS_SUCCEEDED], 40);
	assert_int_equal(c0.n[OTA_MS_SUCCEEDED], n);
}

/* One read of a device's member rows in several rollouts: each found where it is a member. */
static void test_members_of_device(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;
	char id1[OTA_RO_ID_MAX], id2[OTA_RO_ID_MAX];
	struct ota_rollout_member m[3];
	bool found[3];

	spec_init(&s, f->rel_new);
	start(f, &s, id1);
	spec_init(&s, f->rel_old);
	start(f, &s, id2);
	device(f->st, "mo-1", "1.0.0", 1);
	assert_true(checkin(f, "mo-1", "1.0.0", 1, NULL, 0, T0 + 1)); /* joins the first */
	const char *ids[3] = {id2, id1, "r-00000000000000000000000000000000"};
	assert_int_equal(ota_store_rollout_members_of(f->st, "mo-1", ids, 3, m, found), OTA_OK);
	/* The same as one read each. */
	for (int i = 0; i < 3; i++) {
		struct ota_rollout_member one;
		enum ota_err e = ota_store_rollout_member_get(f->st, ids[i], "mo-1", &one);
		assert_int_equal(found[i], e == OTA_OK);
		if (found[i]) {
			assert_string_equal(m[i].device_id, "mo-1");
			assert_int_equal(m[i].state, one.state);
			assert_int_equal(m[i].stage, one.stage);
			assert_string_equal(m[i].deployment_id, one.deployment_id);
		}
	}
	assert_true(found[1]); /* the first rollout offered its release */
	assert_int_equal(m[1].state, OTA_MS_PENDING);
	assert_false(found[2]);
	assert_int_equal(ota_store_rollout_members_of(f->st, "mo-2", ids, 3, m, found), OTA_OK);
	assert_false(found[0] || found[1] || found[2]);
}

/* A kept coverage pass (large registries: here every pass is kept) serves verdicts that hold;
 * a verdict that would move the rollout is judged again on a fresh pass. */
static void test_engine_kept_coverage(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;
	char id[OTA_RO_ID_MAX], id2[OTA_RO_ID_MAX];

	ota_rollout_coverage_reuse(0);
	spec_init(&s, f->rel_new);
	start(f, &s, id);
	for (int i = 0; i < 4; i++)
		device(f->st, (const char *[]){"k-0", "k-1", "k-2", "k-3"}[i], "1.0.0", 1);
	/* Four covered devices waiting: hold, and the pass is kept. */
	assert_int_equal(ota_rollout_evaluate(f->st, id, T0 + 1), OTA_OK);
	assert_int_equal(state_of(f, id, NULL), OTA_RS_RUNNING);
	for (int i = 0; i < 4; i++) {
		const char *d = (const char *[]){"k-0", "k-1", "k-2", "k-3"}[i];
		assert_true(checkin(f, d, "1.0.0", 1, NULL, 0, T0 + 1));
		finish(f, d, "confirmed", NULL, T0 + 1);
	}
	/* The kept pass still counts them as waiting besides their success: it holds. */
	assert_int_equal(ota_rollout_evaluate(f->st, id, T0 + 1), OTA_OK);
	assert_int_equal(state_of(f, id, NULL), OTA_RS_RUNNING);
	/* Once it has expired, a fresh pass sees every covered device done. */
	assert_int_equal(ota_rollout_evaluate(f->st, id, T0 + 2), OTA_OK);
	assert_int_equal(state_of(f, id, NULL), OTA_RS_COMPLETED);
	for (int i = 0; i < 4; i++) /* now on the release: outside the next rollout */
		assert_false(checkin(f, (const char *[]){"k-0", "k-1", "k-2", "k-3"}[i], "2.0.0", 1,
		                     NULL, 0, T0 + 3));

	/* A kept pass that would complete a rollout, with a covered device registered since. */
	spec_init(&s, f->rel_new);
	start(f, &s, id2);
	device(f->st, "k-4", "1.0.0", 1);
	assert_true(checkin(f, "k-4", "1.0.0", 1, NULL, 0, T0 + 10));
	assert_int_equal(ota_rollout_evaluate(f->st, id2, T0 + 10), OTA_OK); /* updating: hold */
	assert_int_equal(state_of(f, id2, NULL), OTA_RS_RUNNING);
	device(f->st, "k-5", "1.0.0", 1);
	finish(f, "k-4", "confirmed", NULL, T0 + 10);
	assert_int_equal(ota_rollout_evaluate(f->st, id2, T0 + 10), OTA_OK);
	assert_int_equal(state_of(f, id2, NULL), OTA_RS_RUNNING); /* k-5 is still to join */
	assert_true(checkin(f, "k-5", "1.0.0", 1, NULL, 0, T0 + 11));
	finish(f, "k-5", "confirmed", NULL, T0 + 11);
	assert_int_equal(ota_rollout_evaluate(f->st, id2, T0 + 11), OTA_OK);
	assert_int_equal(state_of(f, id2, NULL), OTA_RS_COMPLETED);
	ota_rollout_coverage_reuse(50);
}

static bool open_at(const char *tz, unsigned days, unsigned start_min, unsigned dur, int64_t t)
{
	struct ota_rollout_spec s;
	bool open = false;
	spec_init(&s, "x");
	s.window_days = days;
	s.window_start = start_min;
	s.window_duration = dur;
	snprintf(s.window_tz, sizeof(s.window_tz), "%s", tz);
	assert_int_equal(ota_rollout_window_open(&s, t, &open), OTA_OK);
	return open;
}

static void test_windows_across_midnight_and_zones(void **state)
{
	(void)state;
	int32_t off;
	const int64_t jan15 = T0;         /* Thu 2026-01-15 00:00 UTC */
	const int64_t jul16 = 1784160000; /* Thu 2026-07-16 00:00 UTC */
	const unsigned every = 0x7f, fri = 1u << 4;

	assert_int_equal(ota_tz_offset("Europe/Berlin", jan15, &off), OTA_OK);
	assert_int_equal(off, 3600);
	assert_int_equal(ota_tz_offset("Europe/Berlin", jul16, &off), OTA_OK);
	assert_int_equal(off, 7200);
	assert_int_equal(ota_tz_offset("Asia/Kolkata", jan15, &off), OTA_OK);
	assert_int_equal(off, 19800);
	assert_int_equal(ota_tz_offset("America/New_York", jan15, &off), OTA_OK);
	assert_int_equal(off, -18000);
	assert_int_equal(ota_tz_offset("No/Such_Zone", jan15, &off), OTA_ERR_INVALID);

	/* Every day 22:00-02:00 Berlin time (CET, UTC+1 in January). */
	assert_false(open_at("Europe/Berlin", every, 22 * 60, 240, jan15 + 20 * 3600 + 3599));
	assert_true(open_at("Europe/Berlin", every, 22 * 60, 240, jan15 + 21 * 3600));
	assert_true(open_at("Europe/Berlin", every, 22 * 60, 240, jan15 + 24 * 3600 + 3599));
	assert_false(open_at("Europe/Berlin", every, 22 * 60, 240, jan15 + 25 * 3600));
	/* In July (CEST, UTC+2) the same window opens an hour earlier in UTC. */
	assert_false(open_at("Europe/Berlin", every, 22 * 60, 240, jul16 + 19 * 3600 + 3599));
	assert_true(open_at("Europe/Berlin", every, 22 * 60, 240, jul16 + 20 * 3600));
	/* Fridays 23:00 for 2 h in Kolkata (UTC+5:30): open Sat 00:30 local, closed Sat 23:30
	 * and Thu 23:30 local. Fri 2026-01-16 23:00 IST = 17:30 UTC. */
	const int64_t fri2300 = jan15 + 86400 + 17 * 3600 + 1800;
	assert_false(open_at("Asia/Kolkata", fri, 23 * 60, 120, fri2300 - 1));
	assert_true(open_at("Asia/Kolkata", fri, 23 * 60, 120, fri2300));
	assert_true(open_at("Asia/Kolkata", fri, 23 * 60, 120, fri2300 + 90 * 60));
	assert_false(open_at("Asia/Kolkata", fri, 23 * 60, 120, fri2300 + 120 * 60));
	assert_false(open_at("Asia/Kolkata", fri, 23 * 60, 120, fri2300 + 86400 + 1800));
	assert_false(open_at("Asia/Kolkata", fri, 23 * 60, 120, fri2300 - 86400 + 1800));
	/* New York, UTC-5: Friday 23:00 local is Saturday 04:00 UTC. */
	const int64_t ny = jan15 + 2 * 86400 + 4 * 3600;
	assert_false(open_at("America/New_York", fri, 23 * 60, 60, ny - 1));
	assert_true(open_at("America/New_York", fri, 23 * 60, 60, ny));
	assert_false(open_at("America/New_York", fri, 23 * 60, 60, ny + 3600));
	/* UTC, Sunday (bit 6) 23:30 for 60 min wraps into Monday. Sun 2026-01-18. */
	const int64_t sun = jan15 + 3 * 86400;
	assert_true(open_at("UTC", 1u << 6, 23 * 60 + 30, 60, sun + 86400 + 20 * 60));
	assert_false(open_at("UTC", 1u << 6, 23 * 60 + 30, 60, sun + 86400 + 30 * 60));
	assert_false(open_at("UTC", 1u << 6, 23 * 60 + 30, 60, sun + 20 * 60));
}

static void test_window_engine_tells_wait(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;
	char id[OTA_RO_ID_MAX];

	spec_init(&s, f->rel_new);
	s.window_days = 0x7f;
	s.window_start = 2 * 60;
	s.window_duration = 60;
	snprintf(s.window_tz, sizeof(s.window_tz), "UTC");
	start(f, &s, id);
	device(f->st, "w-1", "1.0.0", 1);
	assert_false(checkin(f, "w-1", "1.0.0", 1, NULL, 0, T0 + 3600));
	assert_true(checkin(f, "w-1", "1.0.0", 1, NULL, 0, T0 + 7200));
}

struct race {
	struct fx *f;
	int base;
	unsigned offered;
};

static const char *const line_tags[4][1] = {{"line=1"}, {"line=2"}, {"line=3"}, {"line=4"}};

static void *race_thread(void *p)
{
	struct race *r = p;
	for (int i = 0; i < 10; i++) {
		char dev[16];
		int n = r->base + i;
		snprintf(dev, sizeof(dev), "b-%02d", n);
		struct ota_offer o;
		struct ota_device_report c = {.id = dev,
		                              .hw_variant = "pico2w",
		                              .version = "1.0.0",
		                              .security_floor = 1,
		                              .root_version = 1,
		                              .active_slot = "A",
		                              .boot_state = "normal"};
		if (ota_store_device_set_tags(r->f->st, dev, line_tags[n % 4], 1) != OTA_OK ||
		    ota_deploy_checkin(r->f->st, &c, T0 + 1, &o) != OTA_OK)
			return (void *)1;
		r->offered += o.update;
		ota_offer_clear(&o);
	}
	return NULL;
}

static int count_active(struct fx *f)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	int n = -1;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "SELECT count(*) FROM deployments WHERE status = "
	                                    "'active'",
	                                    -1, &q, NULL),
	                 SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

static void test_budgets_under_concurrent_checkins(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;
	char id[OTA_RO_ID_MAX];
	pthread_t th[8];
	struct race r[8];

	spec_init(&s, f->rel_new);
	s.max_active = 3;
	s.max_active_per_tag = 1;
	s.stages[0].min_finished = 80; /* stays running through the rounds */
	snprintf(s.budget_tag_key, sizeof(s.budget_tag_key), "line");
	start(f, &s, id);
	for (int i = 0; i < 80; i++) {
		char dev[16];
		snprintf(dev, sizeof(dev), "b-%02d", i);
		device(f->st, dev, "1.0.0", 1);
	}
	unsigned total = 0;
	for (int round = 0; round < 3; round++) {
		for (int t = 0; t < 8; t++) {
			r[t] = (struct race){.f = f, .base = t * 10};
			assert_int_equal(pthread_create(&th[t], NULL, race_thread, &r[t]), 0);
		}
		unsigned offered = 0;
		for (int t = 0; t < 8; t++) {
			void *ret;
			pthread_join(th[t], &ret);
			assert_null(ret);
			offered += r[t].offered;
		}
		/* Never more than 3 at once, never two of one line. */
		assert_int_equal(offered, 3);
		assert_int_equal(count_active(f), 3);
		unsigned n;
		assert_int_equal(ota_store_rollout_active(f->st, id, "", &n), OTA_OK);
		assert_int_equal(n, 3);
		for (int l = 1; l <= 4; l++) {
			char scope[16];
			snprintf(scope, sizeof(scope), "line=%d", l);
			assert_int_equal(ota_store_rollout_active(f->st, id, scope, &n), OTA_OK);
			assert_true(n <= 1);
		}
		/* The updating devices finish; the budget frees up for the next round. */
		for (int i = 0; i < 80; i++) {
			char dev[16];
			struct ota_deployment dep;
			snprintf(dev, sizeof(dev), "b-%02d", i);
			if (ota_store_deployment_active(f->st, dev, &dep) == OTA_OK)
				finish(f, dev, "confirmed", NULL, T0 + 2 + round);
		}
		total += offered;
	}
	assert_int_equal(total, 9);
}

static void test_retries_with_backoff_then_failed(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;
	char id[OTA_RO_ID_MAX];
	struct ota_rollout_member m;

	spec_init(&s, f->rel_new);
	s.retry_attempts = 3;
	s.retry_backoff_s = 60;
	s.stages[0].failure_pct = 100; /* never halts: this test is about one device */
	start(f, &s, id);
	device(f->st, "c-1", "1.0.0", 1);
	int64_t t = T0 + 10;
	assert_true(checkin(f, "c-1", "1.0.0", 1, NULL, 0, t));
	/* The device busy with it gets nothing else (no preemption). */
	assert_false(checkin(f, "c-1", "1.0.0", 1, NULL, 0, t));
	finish(f, "c-1", "failed", "hash mismatch", t);
	assert_false(checkin(f, "c-1", "1.0.0", 1, NULL, 0, t + 59));
	assert_true(checkin(f, "c-1", "1.0.0", 1, NULL, 0, t + 60));
	t += 60;
	assert_int_equal(ota_store_rollout_member_get(f->st, id, "c-1", &m), OTA_OK);
	assert_int_equal(m.state, OTA_MS_PENDING);
	assert_int_equal(m.attempts, 2);
	finish(f, "c-1", "rolled_back", "health check failed", t);
	assert_false(checkin(f, "c-1", "1.0.0", 1, NULL, 0, t + 119));
	assert_true(checkin(f, "c-1", "1.0.0", 1, NULL, 0, t + 120));
	t += 120;
	finish(f, "c-1", "failed", "hash mismatch", t);
	/* Attempts used up: failed for good. */
	assert_false(checkin(f, "c-1", "1.0.0", 1, NULL, 0, t + 100000));
	assert_int_equal(ota_store_rollout_member_get(f->st, id, "c-1", &m), OTA_OK);
	assert_int_equal(m.state, OTA_MS_FAILED);
	assert_int_equal(m.attempts, 3);
	struct ota_stage_counts c;
	assert_int_equal(ota_store_rollout_counts(f->st, id, 0, &c), OTA_OK);
	assert_int_equal(c.n[OTA_MS_FAILED], 1);
	assert_int_equal(c.n[OTA_MS_PENDING], 0);
	assert_int_equal(ota_rollout_backoff(&s, 1), 60);
	assert_int_equal(ota_rollout_backoff(&s, 2), 120);
	assert_int_equal(ota_rollout_backoff(&s, 3), 240);
}

static void test_halt_at_canary_and_rollback_floor(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;
	char id[OTA_RO_ID_MAX], msg[256];
	struct ota_rollout_row row;
	const int N = 200;
	char(*devs)[16] = calloc((size_t)N, 16);

	spec_init(&s, f->rel_new);
	s.nstages = 3;
	s.stages[0] = (struct ota_rollout_stage){500, 100, true, 0, 2, 0, 0, 0};
	s.stages[1] = (struct ota_rollout_stage){5000, 100, true, 0, 2, 0, 0, 0};
	s.stages[2] = (struct ota_rollout_stage){10000, 100, true, 0, 2, 0, 0, 0};
	start(f, &s, id);
	assert_int_equal(ota_store_rollout_get(f->st, id, &row, NULL), OTA_OK);
	unsigned canary = 0;
	for (int i = 0; i < N; i++) {
		snprintf(devs[i], 16, "h-%03d", i);
		device(f->st, devs[i], "1.0.0", 2);
		bool in = ota_rollout_bucket(row.hash_key, id, devs[i]) < 500;
		assert_int_equal(checkin(f, devs[i], "1.0.0", 2, NULL, 0, T0 + 1), in);
		canary += in;
	}
	assert_true(canary >= 3);
	for (int i = 0; i < N; i++)
		if (ota_rollout_bucket(row.hash_key, id, devs[i]) < 500)
			finish(f, devs[i], "rolled_back", "not bought before the watchdog", T0 + 2);
	/* The halt comes at the next evaluation; nobody outside the canary was offered. */
	for (int i = 0; i < N; i++)
		assert_false(checkin(f, devs[i], "1.0.0", 2, NULL, 0, T0 + 3));
	assert_int_equal(ota_store_rollout_get(f->st, id, &row, NULL), OTA_OK);
	assert_int_equal(row.state, OTA_RS_PAUSED);
	assert_int_equal(row.stage, 0);
	assert_non_null(strstr(row.reason, "failure threshold"));
	assert_int_equal(count_active(f), 0);

	/* The canary now runs 1.1.0, but for one device that raised its floor meanwhile (it ran
	 * something newer once) and one that still runs 1.0.0. */
	const char *high = NULL, *same = NULL;
	for (int i = 0; i < N; i++) {
		if (ota_rollout_bucket(row.hash_key, id, devs[i]) >= 500)
			continue;
		if (!high)
			high = devs[i];
		else if (!same)
			same = devs[i];
		if (devs[i] != same)
			device(f->st, devs[i], "1.1.0", devs[i] == high ? 5 : 2);
	}

	/* Roll back to 1.0.0 (security_version 2): refused for the device whose floor is 5 and
	 * for the one on 1.0.0 already, each saying why. */
	unsigned deployed = 0, nref = 0;
	struct ota_rollback_refusal *ref = NULL;
	enum ota_eligibility elig;
	assert_int_equal(ota_deploy_rollback(f->st, &tester, id, f->rel_new, false, T0 + 4,
	                                     &deployed, &ref, &nref, &elig, msg, sizeof(msg)),
	                 OTA_ERR_INVALID); /* not its own release */
	assert_int_equal(ota_deploy_rollback(f->st, &tester, id, f->rel_old, false, T0 + 4,
	                                     &deployed, &ref, &nref, &elig, msg, sizeof(msg)),
	                 OTA_OK);
	assert_int_equal(deployed, canary - 2);
	assert_int_equal(nref, 2);
	for (unsigned i = 0; i < nref; i++) {
		if (strcmp(ref[i].device_id, high) == 0)
			assert_non_null(strstr(ref[i].reason, "floor"));
		else
			assert_non_null(strstr(ref[i].reason, "runs 1.0.0 already"));
		assert_true(strcmp(ref[i].device_id, high) == 0 ||
		            strcmp(ref[i].device_id, same) == 0);
	}
	free(ref);
	assert_int_equal(count_active(f), (int)canary - 2);
	assert_int_equal(state_of(f, id, NULL), OTA_RS_ABORTED);
	/* Every transition is in the audit log. */
	assert_int_equal(audit_count(f, id, "rollout.create"), 1);
	assert_int_equal(audit_count(f, id, "rollout.start"), 1);
	assert_int_equal(audit_count(f, id, "rollout.halt"), 1);
	assert_int_equal(audit_count(f, id, "rollout.rollback"), 1);
	assert_int_equal(audit_count(f, id, "deployment.create"), (int)(2 * canary - 2));
	/* Aborted: a second roll back and operator actions are refused. */
	assert_int_equal(ota_deploy_rollback(f->st, &tester, id, f->rel_old, false, T0 + 5,
	                                     &deployed, &ref, &nref, &elig, msg, sizeof(msg)),
	                 OTA_ERR_CONFLICT);
	assert_int_equal(
	    ota_rollout_act(f->st, id, OTA_RA_RESUME, NULL, "t", "operator", T0, msg, sizeof(msg)),
	    OTA_ERR_CONFLICT);
	free(devs);
}

static void test_skips_and_abort(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;
	char id[OTA_RO_ID_MAX], msg[256];
	struct ota_rollout_member m;

	spec_init(&s, f->rel_new);
	start(f, &s, id);
	device(f->st, "s-1", "1.0.0", 9);
	device(f->st, "s-2", "2.0.0", 1);
	device(f->st, "s-3", "1.0.0", 1);
	assert_false(checkin(f, "s-1", "1.0.0", 9, NULL, 0, T0 + 1));
	assert_int_equal(ota_store_rollout_member_get(f->st, id, "s-1", &m), OTA_OK);
	assert_int_equal(m.state, OTA_MS_SKIPPED);
	assert_non_null(strstr(m.reason, "below the device's floor 9"));
	assert_false(checkin(f, "s-2", "2.0.0", 1, NULL, 0, T0 + 1));
	assert_int_equal(ota_store_rollout_member_get(f->st, id, "s-2", &m), OTA_OK);
	assert_int_equal(m.state, OTA_MS_SKIPPED);
	assert_true(checkin(f, "s-3", "1.0.0", 1, NULL, 0, T0 + 1));
	assert_int_equal(ota_rollout_act(f->st, id, OTA_RA_ABORT, "bad idea", "t", "operator",
	                                 T0 + 2, msg, sizeof(msg)),
	                 OTA_OK);
	/* The pending deployment (nothing downloaded) is cancelled with the rollout. */
	assert_int_equal(count_active(f), 0);
	assert_int_equal(ota_store_rollout_member_get(f->st, id, "s-3", &m), OTA_OK);
	assert_int_equal(m.state, OTA_MS_SKIPPED);
	unsigned n;
	assert_int_equal(ota_store_rollout_active(f->st, id, "", &n), OTA_OK);
	assert_int_equal(n, 0);
}

static void test_cancelled_deployment_frees_budget(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;
	char id[OTA_RO_ID_MAX];
	struct ota_rollout_member m;
	struct ota_deployment dep;
	unsigned n;

	spec_init(&s, f->rel_new);
	s.max_active = 1;
	start(f, &s, id);
	device(f->st, "x-1", "1.0.0", 1);
	device(f->st, "x-2", "1.0.0", 1);
	assert_true(checkin(f, "x-1", "1.0.0", 1, NULL, 0, T0 + 1));
	assert_false(checkin(f, "x-2", "1.0.0", 1, NULL, 0, T0 + 1)); /* budget full */
	/* The check-in path cancels a deployment the device can no longer take: x-1's floor
	 * rose above the release's security_version meanwhile. */
	assert_false(checkin(f, "x-1", "1.0.0", 9, NULL, 0, T0 + 2));
	assert_int_equal(ota_store_deployment_active(f->st, "x-1", &dep), OTA_ERR_NOT_FOUND);
	assert_int_equal(ota_store_rollout_member_get(f->st, id, "x-1", &m), OTA_OK);
	assert_int_equal(m.state, OTA_MS_SKIPPED);
	assert_int_equal(ota_store_rollout_active(f->st, id, "", &n), OTA_OK);
	assert_int_equal(n, 0);
	assert_true(checkin(f, "x-2", "1.0.0", 1, NULL, 0, T0 + 3));
}

/* A newer rollout waits until the device's update from an older one ended. */
static void test_newer_rollout_never_preempts(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec a, b;
	char ida[OTA_RO_ID_MAX], idb[OTA_RO_ID_MAX];
	struct ota_deployment dep;
	struct ota_rollout_member m;

	spec_init(&a, f->rel_new);
	start(f, &a, ida);
	device(f->st, "p-1", "1.0.0", 1);
	assert_true(checkin(f, "p-1", "1.0.0", 1, NULL, 0, T0 + 1));
	assert_int_equal(ota_store_deployment_active(f->st, "p-1", &dep), OTA_OK);
	char first[OTA_DEPLOYMENT_ID_MAX];
	snprintf(first, sizeof(first), "%s", dep.id);
	/* Rollout b targets devices on 1.0.0 too; p-1 is mid-update with a's release. */
	spec_init(&b, f->rel_old);
	snprintf(b.baseline_range, sizeof(b.baseline_range), ">=0.1.0");
	b.stages[0].min_finished = 5;
	start(f, &b, idb);
	assert_false(checkin(f, "p-1", "1.0.0", 1, NULL, 0, T0 + 2));
	assert_int_equal(ota_store_deployment_active(f->st, "p-1", &dep), OTA_OK);
	assert_string_equal(dep.id, first);
	assert_int_equal(ota_store_rollout_member_get(f->st, idb, "p-1", &m), OTA_ERR_NOT_FOUND);
	/* Once a's update ended, b offers its release (the device now runs 2.0.0, which b's
	 * baseline admits). */
	finish(f, "p-1", "confirmed", NULL, T0 + 3);
	assert_true(checkin(f, "p-1", "2.0.0", 1, NULL, 0, T0 + 4));
	assert_int_equal(ota_store_deployment_active(f->st, "p-1", &dep), OTA_OK);
	assert_string_equal(dep.release_id, f->rel_old);
	assert_int_equal(ota_store_rollout_member_get(f->st, idb, "p-1", &m), OTA_OK);
	assert_int_equal(m.state, OTA_MS_PENDING);
}

/* The devices of a quiet table: keys, lapse, growth under pressure, its bounds. */
static void test_quiet_table(void **state)
{
	(void)state;
	const char *t1[] = {"line=1"}, *t2[] = {"line=2"};
	struct ota_rollout_device d = {.id = "d-1",
	                               .hw_variant = "pico2w",
	                               .version = "1.0.0",
	                               .security_floor = 1,
	                               .ntags = 1,
	                               .tags = t1};
	uint64_t k = ota_quiet_key(&d);
	assert_int_not_equal(k, 0);
	assert_int_equal(ota_quiet_key(&d), k);
	/* Every reported fact is part of the key. */
	struct ota_rollout_device e = d;
	e.version = "1.0.1";
	assert_int_not_equal(ota_quiet_key(&e), k);
	e = d;
	e.hw_variant = "pico2";
	assert_int_not_equal(ota_quiet_key(&e), k);
	e = d;
	e.security_floor = 2;
	assert_int_not_equal(ota_quiet_key(&e), k);
	e = d;
	e.tags = t2; /* tags move the rollouts generation instead */
	assert_int_equal(ota_quiet_key(&e), k);
	e = d;
	e.id = "d-2";
	assert_int_not_equal(ota_quiet_key(&e), k);
	/* Fields never run together. */
	struct ota_rollout_device a = {.id = "ab", .hw_variant = "c", .version = "1.0.0"};
	struct ota_rollout_device b = {.id = "a", .hw_variant = "bc", .version = "1.0.0"};
	assert_int_not_equal(ota_quiet_key(&a), ota_quiet_key(&b));

	struct ota_quiet *q = ota_quiet_new(0);
	assert_non_null(q);
	assert_int_equal(ota_quiet_entries(q), OTA_QUIET_MIN_ENTRIES);
	assert_false(ota_quiet_now(q, k, T0));
	ota_quiet_keep(q, k, T0, T0 + 60);
	assert_true(ota_quiet_now(q, k, T0 + 59));
	assert_false(ota_quiet_now(q, k, T0 + 60));
	ota_quiet_keep(q, k, T0 + 60, INT64_MAX);
	assert_true(ota_quiet_now(q, k, INT64_MAX - 1));
	assert_false(ota_quiet_now(q, 0, T0)); /* no key: never quiet */
	ota_quiet_keep(q, 0, T0, INT64_MAX);
	assert_false(ota_quiet_now(q, 0, T0));

	/* 100,000 devices: the table grows while entries in use are pushed out, and the recent
	 * ones stay. */
	enum { N = 100000 };
	for (uint64_t i = 1; i <= N; i++)
		ota_quiet_keep(q, i * 0x9E3779B97F4A7C15u, T0, INT64_MAX);
	size_t grown = ota_quiet_entries(q);
	assert_true(grown > OTA_QUIET_MIN_ENTRIES && grown <= OTA_QUIET_MAX_ENTRIES);
	unsigned kept = 0;
	for (uint64_t i = N - 999; i <= N; i++)
		kept += ota_quiet_now(q, i * 0x9E3779B97F4A7C15u, T0 + 1);
	assert_true(kept >= 950);
	ota_quiet_free(q);
	q = ota_quiet_new((size_t)1 << 30);
	assert_non_null(q);
	assert_int_equal(ota_quiet_entries(q), OTA_QUIET_MAX_ENTRIES);
	ota_quiet_free(q);
}

/* Check-ins that walked the running rollouts and that skipped the walk since the last call. */
static void quiet_since(uint64_t *skipped, uint64_t *walked)
{
	static uint64_t s0, w0;
	uint64_t s, w;
	ota_quiet_counts(&s, &w);
	*skipped = s - s0;
	*walked = w - w0;
	s0 = s;
	w0 = w;
}

#define ASSERT_WALKED(s, w)                                                                        \
	do {                                                                                       \
		uint64_t s_, w_;                                                                   \
		quiet_since(&s_, &w_);                                                             \
		assert_int_equal(s_, (s));                                                         \
		assert_int_equal(w_, (w));                                                         \
	} while (0)

/* A device the running rollouts leave alone is walked again only when its facts or tags, the
 * running rollouts or the time of its next retry say it may be wanted (rollout/quiet.h). */
static void test_quiet_devices(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s, b;
	char id[OTA_RO_ID_MAX], idb[OTA_RO_ID_MAX];
	struct ota_rollout_member m;
	const char *berlin[] = {"site=berlin"}, *paris[] = {"site=paris"};

	spec_init(&s, f->rel_new);
	s.retry_attempts = 2;
	s.retry_backoff_s = 60;
	s.stages[0].failure_pct = 100; /* never halts: this test is about the devices */
	s.ntags_all = 1;
	snprintf(s.tags_all[0], sizeof(s.tags_all[0]), "site=berlin");
	device(f->st, "q-1", "1.0.0", 1);
	device(f->st, "q-2", "1.0.0", 1);
	assert_int_equal(ota_store_device_set_tags(f->st, "q-1", berlin, 1), OTA_OK);
	assert_int_equal(ota_store_device_set_tags(f->st, "q-2", paris, 1), OTA_OK);
	start(f, &s, id);
	quiet_since(&(uint64_t){0}, &(uint64_t){0});

	/* Outside the filter: walked once, then left alone until its tags change. */
	assert_false(checkin(f, "q-2", "1.0.0", 1, NULL, 0, T0 + 1));
	ASSERT_WALKED(0, 1);
	assert_false(checkin(f, "q-2", "1.0.0", 1, NULL, 0, T0 + 2));
	ASSERT_WALKED(1, 0);
	assert_int_equal(ota_store_device_set_tags(f->st, "q-2", berlin, 1), OTA_OK);
	assert_true(checkin(f, "q-2", "1.0.0", 1, NULL, 0, T0 + 3));
	ASSERT_WALKED(0, 1);

	/* A failed member: quiet until its retry is due, then offered again at once. */
	assert_true(checkin(f, "q-1", "1.0.0", 1, NULL, 0, T0 + 1));
	ASSERT_WALKED(0, 1);
	finish(f, "q-1", "failed", "hash mismatch", T0 + 10);
	assert_false(checkin(f, "q-1", "1.0.0", 1, NULL, 0, T0 + 20));
	ASSERT_WALKED(0, 1);
	assert_false(checkin(f, "q-1", "1.0.0", 1, NULL, 0, T0 + 69));
	ASSERT_WALKED(1, 0);
	assert_true(checkin(f, "q-1", "1.0.0", 1, NULL, 0, T0 + 70));
	ASSERT_WALKED(0, 1);
	assert_int_equal(ota_store_rollout_member_get(f->st, id, "q-1", &m), OTA_OK);
	assert_int_equal(m.attempts, 2);

	/* Done with it: a new version is a new key, walked once, then quiet. */
	finish(f, "q-1", "confirmed", NULL, T0 + 71);
	assert_false(checkin(f, "q-1", "2.0.0", 1, NULL, 0, T0 + 72));
	ASSERT_WALKED(0, 1);
	assert_false(checkin(f, "q-1", "2.0.0", 1, NULL, 0, T0 + 73));
	ASSERT_WALKED(1, 0);

	/* A device that runs the release already: its first walk records it skipped, its second
	 * finds that member row and keeps the device quiet. */
	device(f->st, "q-3", "2.0.0", 1);
	assert_int_equal(ota_store_device_set_tags(f->st, "q-3", berlin, 1), OTA_OK);
	quiet_since(&(uint64_t){0}, &(uint64_t){0});
	assert_false(checkin(f, "q-3", "2.0.0", 1, NULL, 0, T0 + 73));
	ASSERT_WALKED(0, 1);
	assert_int_equal(ota_store_rollout_member_get(f->st, id, "q-3", &m), OTA_OK);
	assert_int_equal(m.state, OTA_MS_SKIPPED);
	assert_false(checkin(f, "q-3", "2.0.0", 1, NULL, 0, T0 + 73));
	ASSERT_WALKED(0, 1);
	assert_false(checkin(f, "q-3", "2.0.0", 1, NULL, 0, T0 + 73));
	ASSERT_WALKED(1, 0);

	/* Another rollout starts: every device is walked again, and q-1 is offered its release. */
	spec_init(&b, f->rel_old);
	snprintf(b.baseline_range, sizeof(b.baseline_range), ">=0.1.0");
	start(f, &b, idb);
	assert_true(checkin(f, "q-1", "2.0.0", 1, NULL, 0, T0 + 74));
	ASSERT_WALKED(0, 1);
}

/* The check-in and report paths never scan a table: their cost does not grow with the fleet. */
static void test_hot_paths_use_indexes(void **state)
{
	struct fx *f = *state;
	sqlite3 *db;
	const char *sql;
	unsigned n = 0;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	for (unsigned i = 0; (sql = ota_store_rollout_hot_sql(i)); i++) {
		char buf[1024];
		sqlite3_stmt *q;
		snprintf(buf, sizeof(buf), "EXPLAIN QUERY PLAN %s", sql);
		assert_int_equal(sqlite3_prepare_v2(db, buf, -1, &q, NULL), SQLITE_OK);
		while (sqlite3_step(q) == SQLITE_ROW) {
			const char *detail = (const char *)sqlite3_column_text(q, 3);
			/* A list of ids the statement was given (json_each) is no table. */
			if (strncmp(detail, "SCAN ", 5) == 0 && !strstr(detail, "CONSTANT ROW") &&
			    !strstr(detail, "SCAN json_each VIRTUAL TABLE"))
				fail_msg("%s: %s", sql, detail);
		}
		sqlite3_finalize(q);
		n++;
	}
	assert_true(n >= 10);
	sqlite3_close(db);
}

/* ---- health after the confirm ---- */

/* The rule alone: regressions over the covered devices, and the soak after the last confirm. */
static void test_post_confirm_rule(void **state)
{
	struct ota_rollout_spec s, t;
	struct ota_stage_counts c;
	char why[256], msg[256];
	(void)state;

	spec_init(&s, "x");
	s.post[0].on = true;
	s.post[0].max_pct = 10;
	s.post[0].soak_s = 600;
	memset(&c, 0, sizeof(c));
	c.n[OTA_MS_SUCCEEDED] = 10;
	c.last_confirmed_at = T0;
	/* 1 of 10 is not more than 10 %: the stage waits for the soak, then completes. */
	c.regressed = 1;
	assert_int_equal(ota_rollout_judge(&s, 0, &c, 0, 0, T0, T0 + 599, why, sizeof(why)),
	                 OTA_V_HOLD);
	assert_int_equal(ota_rollout_judge(&s, 0, &c, 0, 0, T0, T0 + 600, why, sizeof(why)),
	                 OTA_V_COMPLETE);
	/* 2 of 10 is: halt at once, soak or not, with the numbers. */
	c.regressed = 2;
	assert_int_equal(ota_rollout_judge(&s, 0, &c, 0, 0, T0, T0 + 1, why, sizeof(why)),
	                 OTA_V_HALT);
	assert_non_null(strstr(why, "post-confirm regression in stage 1: 2 of 10 covered devices"));
	assert_non_null(strstr(why, "(more than 10%)"));
	/* Devices still to update count in the denominator: 2 of 30 is not more than 10 %. */
	c.waiting = 20;
	assert_int_equal(ota_rollout_judge(&s, 0, &c, 0, 0, T0, T0 + 1, why, sizeof(why)),
	                 OTA_V_HOLD);
	/* Without the rule, regressions decide nothing. */
	s.post[0].on = false;
	c.waiting = 0;
	assert_int_equal(ota_rollout_judge(&s, 0, &c, 0, 0, T0, T0 + 1, why, sizeof(why)),
	                 OTA_V_COMPLETE);
	/* What counts as a regression, and which soak a member's reports have. */
	struct ota_member_health h = {.reboots = 5, .uptime_s = 10};
	assert_false(ota_rollout_health_regressed(&h));
	h.watchdog_resets = 1;
	assert_true(ota_rollout_health_regressed(&h));
	h = (struct ota_member_health){.failed_checks = 1};
	assert_true(ota_rollout_health_regressed(&h));
	s.nstages = 2;
	s.stages[1] = s.stages[0];
	s.post[1].on = true;
	s.post[1].soak_s = 900;
	assert_int_equal(ota_rollout_health_soak(&s, 0), 900); /* the longest of the rollout */
	assert_int_equal(ota_rollout_health_soak(&s, 1), 900);
	/* The definition's text: the object round-trips; bad values are refused by name. */
	const char *ok =
	    "{\"name\":\"h\",\"release_id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaa\",\"stages\":[{\"percent\":10,"
	    "\"post_confirm_health\":{\"max_regression_percent\":5,"
	    "\"soak_seconds\":120}},{\"percent\":100}]}";
	assert_int_equal(ota_rollout_spec_parse(ok, strlen(ok), &t, msg, sizeof(msg)), OTA_OK);
	assert_true(t.post[0].on);
	assert_int_equal(t.post[0].max_pct, 5);
	assert_int_equal(t.post[0].soak_s, 120);
	assert_false(t.post[1].on);
	char *text = ota_rollout_spec_json(&t);
	assert_non_null(strstr(text, "\"post_confirm_health\":{\"max_regression_percent\":5,"
	                             "\"soak_seconds\":120}"));
	free(text);
	const char *bad[] = {
	    "{\"name\":\"h\",\"release_id\":"
	    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaa\",\"stages\":[{\"percent\":10,\"post_confirm_health\":{}}]}",
	    "{\"name\":\"h\",\"release_id\":"
	    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaa\",\"stages\":[{\"percent\":10,\"post_confirm_health\":{"
	    "\"max_regression_percent\":101}}]}",
	    "{\"name\":\"h\",\"release_id\":"
	    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaa\",\"stages\":[{\"percent\":10,\"post_confirm_health\":{"
	    "\"max_regression_percent\":1,\"soak\":5}}]}",
	    "{\"name\":\"h\",\"release_id\":"
	    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaa\",\"stages\":[{\"percent\":10,\"post_confirm_health\":3}]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg[0] = '\0';
		assert_int_equal(
		    ota_rollout_spec_parse(bad[i], strlen(bad[i]), &t, msg, sizeof(msg)),
		    OTA_ERR_INVALID);
		assert_true(strstr(msg, "post_confirm_health") || strstr(msg, "regression") ||
		            strstr(msg, "soak"));
	}
}

/* A member's health report: kept only for its own succeeded member within the soak. */
static void health(struct fx *f, const char *ro, const char *dev, unsigned wdt, unsigned failed,
                   int64_t now)
{
	struct ota_rollout_member m;
	struct ota_member_health h = {
	    .reboots = wdt + 1, .watchdog_resets = wdt, .failed_checks = failed, .uptime_s = 30};
	assert_int_equal(ota_store_rollout_member_get(f->st, ro, dev, &m), OTA_OK);
	assert_int_equal(ota_rollout_on_health(f->st, dev, m.deployment_id, &h, now), OTA_OK);
}

static void regressed_name(void *ctx, const char *device_id)
{
	char *out = ctx;
	size_t n = strlen(out);
	snprintf(out + n, 512 - n, "%s;", device_id);
}

/* Three of twenty regress after their confirm under a 10 % rule: the rollout halts, names them
 * and keeps the numbers; another rollout, healthy, completes only after its soak. */
static void test_engine_post_confirm_regression(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;
	struct ota_rollout_row row;
	struct ota_health_summary sum;
	struct ota_member_health h;
	int64_t at = 0, regressed_at = 0;
	char id[OTA_RO_ID_MAX], devs[20][16], names[512] = "";

	spec_init(&s, f->rel_new);
	s.post[0].on = true;
	s.post[0].max_pct = 10;
	s.post[0].soak_s = 600;
	for (int i = 0; i < 20; i++) {
		snprintf(devs[i], sizeof(devs[i]), "h-%02d", i);
		device(f->st, devs[i], "1.0.0", 1);
	}
	start(f, &s, id);
	int64_t t = T0 + 10;
	for (int i = 0; i < 20; i++)
		assert_true(checkin(f, devs[i], "1.0.0", 1, NULL, 0, t));
	for (int i = 0; i < 20; i++)
		finish(f, devs[i], "confirmed", NULL, ++t);
	/* Everything confirmed, but the soak holds the completion. */
	assert_int_equal(ota_rollout_tick(f->st, t + 1), OTA_OK);
	assert_int_equal(state_of(f, id, NULL), OTA_RS_RUNNING);
	/* Healthy reports, then two regressions: 2 of 20 is not more than 10 %. */
	health(f, id, devs[0], 0, 0, t + 5);
	health(f, id, devs[3], 1, 0, t + 6);
	health(f, id, devs[7], 0, 2, t + 7);
	/* Counters only grow: a late, lower report keeps the larger ones. */
	health(f, id, devs[7], 0, 1, t + 8);
	assert_int_equal(ota_store_member_health_get(f->st, id, devs[7], &h, &at, &regressed_at),
	                 OTA_OK);
	assert_int_equal(h.failed_checks, 2);
	assert_int_equal(regressed_at, t + 7);
	assert_int_equal(ota_rollout_tick(f->st, t + 9), OTA_OK);
	assert_int_equal(state_of(f, id, NULL), OTA_RS_RUNNING);
	/* A report after the member's soak is ignored. */
	health(f, id, devs[19], 3, 0, t + 601);
	assert_int_equal(ota_store_member_health_get(f->st, id, devs[19], &h, &at, NULL), OTA_OK);
	assert_int_equal(at, 0);
	/* Another device's deployment is not this device's to report on. */
	struct ota_rollout_member m;
	struct ota_member_health bad = {.watchdog_resets = 9};
	assert_int_equal(ota_store_rollout_member_get(f->st, id, devs[1], &m), OTA_OK);
	assert_int_equal(ota_rollout_on_health(f->st, devs[2], m.deployment_id, &bad, t + 10),
	                 OTA_OK);
	assert_int_equal(ota_store_member_health_get(f->st, id, devs[1], &h, NULL, NULL), OTA_OK);
	assert_int_equal(h.watchdog_resets, 0);
	/* The third regression passes 10 %: halt, the devices named, the numbers kept. */
	health(f, id, devs[11], 2, 0, t + 20);
	assert_int_equal(ota_store_rollout_health(f->st, id, 0, &sum, 10, regressed_name, names),
	                 OTA_OK);
	assert_int_equal(sum.regressed, 3);
	assert_int_equal(sum.reported, 4);
	assert_string_equal(names, "h-03;h-07;h-11;");
	assert_int_equal(ota_rollout_tick(f->st, t + 21), OTA_OK);
	assert_int_equal(state_of(f, id, NULL), OTA_RS_PAUSED);
	assert_int_equal(ota_store_rollout_get(f->st, id, &row, NULL), OTA_OK);
	assert_non_null(strstr(row.reason, "post-confirm regression in stage 1: 3 of 20 covered "
	                                   "devices"));
	assert_non_null(strstr(row.reason, ": h-03, h-07, h-11"));
	char hist[2048] = "";
	assert_int_equal(ota_store_rollout_verdicts(f->st, id, 20, add_hist, hist), OTA_OK);
	assert_non_null(strstr(hist, "1 halt post_confirm_regression {\"succeeded\":20,"));
	assert_non_null(strstr(hist, "\"regressed\":3}"));
	/* A resume accepts the regressions seen: the stage soaks on; a new one counts anew. */
	char msg[256];
	assert_int_equal(ota_rollout_act(f->st, id, OTA_RA_RESUME, NULL, "tester", "operator",
	                                 t + 30, msg, sizeof(msg)),
	                 OTA_OK);
	assert_int_equal(ota_rollout_tick(f->st, t + 31), OTA_OK);
	assert_int_equal(state_of(f, id, NULL), OTA_RS_RUNNING);
	health(f, id, devs[12], 0, 1, t + 40);
	health(f, id, devs[13], 0, 1, t + 41);
	assert_int_equal(state_of(f, id, NULL), OTA_RS_RUNNING); /* 2 of 20 new: not over 10 % */
	health(f, id, devs[14], 1, 0, t + 42);
	assert_int_equal(state_of(f, id, NULL), OTA_RS_PAUSED);
	assert_int_equal(ota_store_rollout_get(f->st, id, &row, NULL), OTA_OK);
	assert_non_null(strstr(row.reason, ": 3 of 20 covered devices"));
}

/* A healthy rollout with the rule completes once its last confirm soaked. */
static void test_engine_post_confirm_soak_completes(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;
	char id[OTA_RO_ID_MAX], devs[6][16];

	spec_init(&s, f->rel_new);
	s.post[0].on = true;
	s.post[0].max_pct = 0;
	s.post[0].soak_s = 300;
	for (int i = 0; i < 6; i++) {
		snprintf(devs[i], sizeof(devs[i]), "k-%02d", i);
		device(f->st, devs[i], "1.0.0", 1);
	}
	start(f, &s, id);
	int64_t t = T0 + 10;
	for (int i = 0; i < 6; i++)
		assert_true(checkin(f, devs[i], "1.0.0", 1, NULL, 0, t));
	for (int i = 0; i < 6; i++)
		finish(f, devs[i], "confirmed", NULL, ++t);
	for (int i = 0; i < 6; i++)
		health(f, id, devs[i], 0, 0, t + 100);
	assert_int_equal(ota_rollout_tick(f->st, t + 299), OTA_OK);
	assert_int_equal(state_of(f, id, NULL), OTA_RS_RUNNING);
	assert_int_equal(ota_rollout_tick(f->st, t + 300), OTA_OK);
	assert_int_equal(state_of(f, id, NULL), OTA_RS_COMPLETED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stage_growth_only_adds),
	    cmocka_unit_test(test_membership_depends_on_the_key),
	    cmocka_unit_test(test_spec_rules_and_text),
	    cmocka_unit_test(test_filter_and_semver),
	    cmocka_unit_test(test_thresholds_min_finished_soak_approval),
	    cmocka_unit_test(test_windows_across_midnight_and_zones),
	    cmocka_unit_test_setup_teardown(test_engine_approval_and_completion, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_engine_kept_coverage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_members_of_device, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_window_engine_tells_wait, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_budgets_under_concurrent_checkins, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_retries_with_backoff_then_failed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_halt_at_canary_and_rollback_floor, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_skips_and_abort, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancelled_deployment_frees_budget, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_hot_paths_use_indexes, setup, teardown),
	    cmocka_unit_test(test_quiet_table),
	    cmocka_unit_test_setup_teardown(test_quiet_devices, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_canary_not_computable_from_id, setup, teardown),
	    cmocka_unit_test(test_judge_over_covered_devices),
	    cmocka_unit_test_setup_teardown(test_engine_stage_waits_for_covered_devices, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_engine_earlier_stage_failures_halt, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_newer_rollout_never_preempts, setup, teardown),
	    cmocka_unit_test(test_post_confirm_rule),
	    cmocka_unit_test_setup_teardown(test_engine_post_confirm_regression, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_engine_post_confirm_soak_completes, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
