/*
 * test_deploy.c - the deployment service: each eligibility rule through the one function
 * (state known, hardware variant, security floor, current version, and their order), and the
 * operators' paths that use it on a real temporary SQLite store: a manual deployment refused
 * per rule with nothing written, and a roll back to a release for other hardware refused.
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
#include "rollout/rollout.h"
#include "store_fixture.h"

#define T0 1768435200

static struct ota_release release(const char *version, uint32_t sv, const char *hw1,
                                  const char *hw2)
{
	struct ota_release r;

	memset(&r, 0, sizeof(r));
	snprintf(r.name, sizeof(r.name), "fw");
	snprintf(r.version, sizeof(r.version), "%s", version);
	r.security_version = sv;
	snprintf(r.hw[r.nhw++], sizeof(r.hw[0]), "%s", hw1);
	if (hw2)
		snprintf(r.hw[r.nhw++], sizeof(r.hw[0]), "%s", hw2);
	return r;
}

static void test_eligible(void **state)
{
	(void)state;
	struct ota_release r = release("2.0.0", 3, "pico2w", "pico2");
	struct ota_device_facts d = {true, "pico2", "1.0.0", 3};
	char why[160] = "unchanged";

	assert_int_equal(ota_deploy_eligible(&r, &d, why, sizeof(why)), OTA_ELIGIBLE);
	assert_int_equal(ota_deploy_eligible(&r, &d, NULL, 0), OTA_ELIGIBLE);
}

static void test_unknown_state(void **state)
{
	(void)state;
	struct ota_release r = release("2.0.0", 3, "pico2w", NULL);
	struct ota_device_facts d = {false, "", "", 0};
	char why[160];

	assert_int_equal(ota_deploy_eligible(&r, &d, why, sizeof(why)), OTA_INELIGIBLE_UNKNOWN);
	assert_non_null(strstr(why, "has not checked in"));
}

static void test_hw_variant(void **state)
{
	(void)state;
	struct ota_release r = release("2.0.0", 3, "pico2w", NULL);
	struct ota_device_facts d = {true, "pico2", "1.0.0", 0};
	char why[160];

	assert_int_equal(ota_deploy_eligible(&r, &d, why, sizeof(why)), OTA_INELIGIBLE_HW_VARIANT);
	assert_string_equal(why, "release fw 2.0.0 does not run on hardware variant pico2");
	/* A prefix of a listed variant is another variant. */
	d.hw_variant = "pico2w2";
	assert_int_equal(ota_deploy_eligible(&r, &d, NULL, 0), OTA_INELIGIBLE_HW_VARIANT);
}

static void test_below_floor(void **state)
{
	(void)state;
	struct ota_release r = release("2.0.0", 3, "pico2w", NULL);
	struct ota_device_facts d = {true, "pico2w", "1.0.0", 4};
	char why[160];

	assert_int_equal(ota_deploy_eligible(&r, &d, why, sizeof(why)), OTA_INELIGIBLE_BELOW_FLOOR);
	assert_string_equal(why, "release security_version 3 is below the device's floor 4");
	/* Equal to the floor is allowed: the floor is the lowest version a device may run. */
	d.security_floor = 3;
	assert_int_equal(ota_deploy_eligible(&r, &d, NULL, 0), OTA_ELIGIBLE);
}

static void test_same_version(void **state)
{
	(void)state;
	struct ota_release r = release("2.0.0", 3, "pico2w", NULL);
	struct ota_device_facts d = {true, "pico2w", "2.0.0", 3};
	char why[160];

	assert_int_equal(ota_deploy_eligible(&r, &d, why, sizeof(why)),
	                 OTA_INELIGIBLE_SAME_VERSION);
	assert_string_equal(why, "the device runs 2.0.0 already");
	/* Semantic versions compare exactly: a pre-release is another version. */
	d.version = "2.0.0-rc.1";
	assert_int_equal(ota_deploy_eligible(&r, &d, NULL, 0), OTA_ELIGIBLE);
}

static void test_rule_order(void **state)
{
	(void)state;
	struct ota_release r = release("2.0.0", 3, "pico2w", NULL);
	/* Wrong variant, below the floor and on the same version: the variant is named. */
	struct ota_device_facts d = {true, "other", "2.0.0", 9};
	assert_int_equal(ota_deploy_eligible(&r, &d, NULL, 0), OTA_INELIGIBLE_HW_VARIANT);
	/* Below the floor and on the same version: the floor is named. */
	d.hw_variant = "pico2w";
	assert_int_equal(ota_deploy_eligible(&r, &d, NULL, 0), OTA_INELIGIBLE_BELOW_FLOOR);
	/* Unknown state comes first whatever the rest says. */
	d.known = false;
	assert_int_equal(ota_deploy_eligible(&r, &d, NULL, 0), OTA_INELIGIBLE_UNKNOWN);
}

/* ---- the operators' paths, on a store ---- */

struct fx {
	char dir[OTA_TEST_DIR_MAX];
	char path[OTA_TEST_PATH_MAX];
	struct ota_store *st;
	char rel_w[65], rel_plain[65];
};

static void add_release(struct ota_store *st, char id[65], char c, const char *version, uint32_t sv,
                        const char *hw)
{
	struct ota_release r = release(version, sv, hw, NULL);
	bool existed;

	memset(id, c, 64);
	id[64] = '\0';
	snprintf(r.id, sizeof(r.id), "%s", id);
	snprintf(r.image_sha256, sizeof(r.image_sha256), "%s", id);
	r.image_size = 100;
	snprintf(r.image_format, sizeof(r.image_format), "bin");
	assert_int_equal(ota_store_image_add(st, id, 100, T0, &existed), OTA_OK);
	assert_int_equal(ota_store_release_add(st, &r, "{}", T0, &existed), OTA_OK);
}

static void device(struct ota_store *st, const char *id, const char *hw, const char *version,
                   uint32_t floor, bool report)
{
	struct ota_device d;
	bool created;
	struct ota_device_report r = {.id = id,
	                              .hw_variant = hw,
	                              .version = version,
	                              .security_floor = floor,
	                              .root_version = 1,
	                              .active_slot = "A",
	                              .boot_state = "normal"};
	assert_int_equal(ota_store_device_admit(st, id, "00", T0, &d, &created), OTA_OK);
	if (report)
		assert_int_equal(ota_store_device_report(st, &r, T0), OTA_OK);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || ota_test_store_open("deploy", f->dir, f->path, &f->st) != 0)
		return -1;
	add_release(f->st, f->rel_w, 'a', "2.0.0", 3, "pico2w");
	add_release(f->st, f->rel_plain, 'b', "1.0.0", 2, "pico2");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	int rc = ota_test_store_close(f->dir, f->st);
	free(f);
	return rc;
}

static const struct ota_actor op = {.name = "tester", .role = "operator"};

/* A manual deployment, expected to be refused for `want` (with elig for ineligible ones). */
static void refused(struct fx *f, const char *dev, const char *rel, enum ota_deploy_refusal want,
                    enum ota_eligibility want_elig)
{
	struct ota_deployment dep, none;
	enum ota_deploy_refusal why;
	enum ota_eligibility elig;
	char msg[256] = "";

	assert_int_equal(
	    ota_deploy_create(f->st, &op, dev, rel, T0 + 1, &dep, &why, &elig, msg, sizeof(msg)),
	    OTA_ERR_INVALID);
	assert_int_equal(why, want);
	assert_int_equal(elig, want_elig);
	assert_true(msg[0] != '\0');
	/* Refused: nothing written. */
	enum ota_err e = ota_store_deployment_active(f->st, dev, &none);
	assert_true(e == OTA_ERR_NOT_FOUND || (e == OTA_OK && want == OTA_DR_BUSY));
}

static void test_manual_deploy_rules(void **state)
{
	struct fx *f = *state;
	struct ota_deployment dep;
	enum ota_deploy_refusal why;
	enum ota_eligibility elig;
	char msg[256];

	device(f->st, "never", "pico2w", "1.0.0", 0, false);
	device(f->st, "other-hw", "pico2", "1.0.0", 0, true);
	device(f->st, "high", "pico2w", "1.0.0", 9, true);
	device(f->st, "ok", "pico2w", "1.0.0", 3, true);
	device(f->st, "current", "pico2w", "2.0.0", 3, true);

	refused(f, "nobody", f->rel_w, OTA_DR_NO_DEVICE, OTA_ELIGIBLE);
	refused(f, "ok", "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
	        OTA_DR_NO_RELEASE, OTA_ELIGIBLE);
	refused(f, "never", f->rel_w, OTA_DR_INELIGIBLE, OTA_INELIGIBLE_UNKNOWN);
	refused(f, "other-hw", f->rel_w, OTA_DR_INELIGIBLE, OTA_INELIGIBLE_HW_VARIANT);
	refused(f, "high", f->rel_w, OTA_DR_INELIGIBLE, OTA_INELIGIBLE_BELOW_FLOOR);
	/* Eligible, and a reinstall of the version it runs is allowed too. */
	assert_int_equal(ota_deploy_create(f->st, &op, "ok", f->rel_w, T0 + 1, &dep, &why, &elig,
	                                   msg, sizeof(msg)),
	                 OTA_OK);
	assert_string_equal(dep.status, "active");
	assert_int_equal(ota_deploy_create(f->st, &op, "current", f->rel_w, T0 + 1, &dep, &why,
	                                   &elig, msg, sizeof(msg)),
	                 OTA_OK);
	/* One active deployment per device. */
	refused(f, "ok", f->rel_w, OTA_DR_BUSY, OTA_ELIGIBLE);
}

static void test_rollback_to_other_hardware_refused(void **state)
{
	struct fx *f = *state;
	struct ota_rollout_spec s;
	struct ota_rollback_refusal *ref = NULL;
	unsigned deployed = 9, nref = 9;
	enum ota_eligibility elig;
	char id[OTA_RO_ID_MAX], msg[256] = "";

	memset(&s, 0, sizeof(s));
	snprintf(s.name, sizeof(s.name), "r");
	snprintf(s.release_id, sizeof(s.release_id), "%s", f->rel_w);
	s.nstages = 1;
	s.stages[0] = (struct ota_rollout_stage){10000, 100, true, 100, 1, 0, 0, 0};
	s.retry_attempts = 1;
	assert_int_equal(ota_rollout_create(f->st, &s, "t", "operator", T0, id, msg, sizeof(msg)),
	                 OTA_OK);
	assert_int_equal(
	    ota_rollout_act(f->st, id, OTA_RA_START, NULL, "t", "operator", T0, msg, sizeof(msg)),
	    OTA_OK);
	/* rel_plain runs on pico2 only; the rollout's release on pico2w only. */
	assert_int_equal(ota_deploy_rollback(f->st, &op, id, f->rel_plain, true, T0 + 1, &deployed,
	                                     &ref, &nref, &elig, msg, sizeof(msg)),
	                 OTA_ERR_INVALID);
	assert_int_equal(elig, OTA_INELIGIBLE_HW_VARIANT);
	assert_non_null(strstr(msg, "runs on none of the hardware variants"));
	assert_int_equal(deployed, 0);
	assert_null(ref);
	/* Nothing changed: the rollout still runs. */
	struct ota_rollout_row row;
	assert_int_equal(ota_store_rollout_get(f->st, id, &row, NULL), OTA_OK);
	assert_int_equal(row.state, OTA_RS_RUNNING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_eligible),
	    cmocka_unit_test(test_unknown_state),
	    cmocka_unit_test(test_hw_variant),
	    cmocka_unit_test(test_below_floor),
	    cmocka_unit_test(test_same_version),
	    cmocka_unit_test(test_rule_order),
	    cmocka_unit_test_setup_teardown(test_manual_deploy_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rollback_to_other_hardware_refused, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
