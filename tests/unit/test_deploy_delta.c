/*
 * test_deploy_delta.c - the deployment service's delta rules on a real temporary SQLite store:
 * a delta goes with an update only to a device that reports running its base, below the
 * configured share of the full image; its file is then downloadable by that device alone; a
 * "delta failed" report is counted once (a retried report is not) and ends the offer to that
 * device for good, while another device is still offered it; the store refuses a second delta
 * of the same release and base, the delta's image cannot be deleted while the delta exists, and
 * deleting the release deletes its deltas.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deploy/delta.h"
#include "deploy/deploy.h"
#include "store/delta_store.h"
#include "store/mgmt_store.h"
#include "store_fixture.h"

#define T0 1768435200
#define IMAGE_SIZE 10000
#define DELTA_SIZE 400

struct fx {
	char dir[OTA_TEST_DIR_MAX];
	char path[OTA_TEST_PATH_MAX];
	struct ota_store *st;
	char rel[65], image[65], base[65], file[65];
	struct ota_delta d;
};

static void hex64(char out[65], char c)
{
	memset(out, c, 64);
	out[64] = '\0';
}

static void device(struct ota_store *st, const char *id)
{
	struct ota_device d;
	bool created;
	struct ota_device_report r = {.id = id,
	                              .hw_variant = "pico2w",
	                              .version = "1.0.0",
	                              .security_floor = 1,
	                              .root_version = 1,
	                              .active_slot = "A",
	                              .boot_state = "normal"};
	assert_int_equal(ota_store_device_admit(st, id, "00", T0, &d, &created), OTA_OK);
	assert_int_equal(ota_store_device_report(st, &r, T0), OTA_OK);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct ota_release r;
	bool existed;

	if (!f || ota_test_store_open("delta", f->dir, f->path, &f->st) != 0)
		return -1;
	hex64(f->rel, 'a');
	hex64(f->image, 'b');
	hex64(f->base, 'c');
	hex64(f->file, 'd');
	memset(&r, 0, sizeof(r));
	snprintf(r.id, sizeof(r.id), "%s", f->rel);
	snprintf(r.name, sizeof(r.name), "fw");
	snprintf(r.version, sizeof(r.version), "2.0.0");
	r.security_version = 2;
	snprintf(r.hw[r.nhw++], sizeof(r.hw[0]), "pico2w");
	snprintf(r.image_sha256, sizeof(r.image_sha256), "%s", f->image);
	r.image_size = IMAGE_SIZE;
	snprintf(r.image_format, sizeof(r.image_format), "bin");
	if (ota_store_image_add(f->st, f->image, IMAGE_SIZE, T0, &existed) != OTA_OK ||
	    ota_store_release_add(f->st, &r, "{}", T0, &existed) != OTA_OK ||
	    ota_store_image_add(f->st, f->file, DELTA_SIZE, T0, &existed) != OTA_OK)
		return -1;
	hex64(f->d.id, 'e');
	snprintf(f->d.release_id, sizeof(f->d.release_id), "%s", f->rel);
	snprintf(f->d.base_sha256, sizeof(f->d.base_sha256), "%s", f->base);
	f->d.base_size = IMAGE_SIZE;
	snprintf(f->d.image_sha256, sizeof(f->d.image_sha256), "%s", f->file);
	f->d.size = DELTA_SIZE;
	hex64(f->d.head_sha256, 'f');
	if (ota_store_delta_add(f->st, &f->d, "{\"payloadType\":\"x\"}", T0, &existed) != OTA_OK ||
	    existed)
		return -1;
	device(f->st, "dev-1");
	device(f->st, "dev-2");
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

/* Deploys the release to dev and answers its check-in: the offer. */
static void offer_for(struct fx *f, const char *dev, struct ota_offer *o)
{
	struct ota_deployment dep;
	enum ota_deploy_refusal why;
	enum ota_eligibility elig;
	char msg[256];
	struct ota_device_report r = {.id = dev,
	                              .hw_variant = "pico2w",
	                              .version = "1.0.0",
	                              .security_floor = 1,
	                              .root_version = 1,
	                              .active_slot = "A",
	                              .boot_state = "normal"};

	assert_int_equal(
	    ota_deploy_create(f->st, &op, dev, f->rel, T0 + 1, &dep, &why, &elig, msg, sizeof(msg)),
	    OTA_OK);
	assert_int_equal(ota_deploy_checkin(f->st, &r, T0 + 2, o), OTA_OK);
	assert_true(o->update);
}

static bool offered(struct fx *f, const struct ota_offer *o, const char *dev, const char *active,
                    unsigned percent)
{
	struct ota_delta_offer d;

	assert_int_equal(ota_deploy_delta(f->st, o, dev, active, percent, T0 + 3, &d), OTA_OK);
	bool yes = d.offered;
	if (yes) {
		assert_string_equal(d.d.id, f->d.id);
		assert_string_equal(d.d.image_sha256, f->file);
		assert_non_null(d.envelope);
	} else {
		assert_null(d.envelope);
	}
	ota_delta_offer_clear(&d);
	return yes;
}

static bool file_allowed(struct fx *f, const char *dev)
{
	bool allowed = true;

	assert_int_equal(ota_store_delta_image_allowed(f->st, dev, f->file, &allowed), OTA_OK);
	return allowed;
}

static void test_offer_rule(void **state)
{
	struct fx *f = *state;
	struct ota_offer o;
	char other[65];

	offer_for(f, "dev-1", &o);
	hex64(other, '9');
	/* No running image reported, another one, or deltas switched off: none. */
	assert_false(offered(f, &o, "dev-1", NULL, 50));
	assert_false(offered(f, &o, "dev-1", other, 50));
	assert_false(offered(f, &o, "dev-1", f->base, 0));
	/* 400 of 10000 bytes is 4 %: not below 4 %, below 5 %. */
	assert_false(offered(f, &o, "dev-1", f->base, 4));
	assert_false(file_allowed(f, "dev-1"));
	assert_true(offered(f, &o, "dev-1", f->base, 5));
	/* Its file: to the device of the deployment only. */
	assert_true(file_allowed(f, "dev-1"));
	assert_false(file_allowed(f, "dev-2"));
	/* A later check-in without a delta withdraws the file. */
	assert_false(offered(f, &o, "dev-1", NULL, 50));
	assert_false(file_allowed(f, "dev-1"));
	/* No update, no delta. */
	struct ota_offer none = {0};
	assert_false(offered(f, &none, "dev-1", f->base, 50));
	ota_offer_clear(&o);
}

static void test_failure_stops_offer(void **state)
{
	struct fx *f = *state;
	struct ota_offer o1, o2;
	struct ota_report_result res;
	struct ota_delta d;

	offer_for(f, "dev-1", &o1);
	offer_for(f, "dev-2", &o2);
	assert_true(offered(f, &o1, "dev-1", f->base, 50));
	assert_true(offered(f, &o2, "dev-2", f->base, 50));
	/* A report of another step counts nothing. */
	struct ota_event ev = {.seq = 1, .status = "downloading", .reason = "", .progress = 0};
	assert_int_equal(ota_deploy_report(f->st, "dev-1", o1.dep.id, &ev, T0 + 4, &res), OTA_OK);
	assert_int_equal(ota_store_delta_get(f->st, f->rel, f->d.id, &d, NULL), OTA_OK);
	assert_int_equal(d.failed + d.refused + d.devices_failed, 0);
	/* "delta failed", then the same report retried: counted once. */
	ev = (struct ota_event){.seq = 2,
	                        .status = "downloading",
	                        .reason = "delta failed: unit SHA-256 differs from the hash chain",
	                        .progress = 0};
	assert_int_equal(ota_deploy_report(f->st, "dev-1", o1.dep.id, &ev, T0 + 5, &res), OTA_OK);
	assert_false(res.duplicate);
	assert_int_equal(ota_deploy_report(f->st, "dev-1", o1.dep.id, &ev, T0 + 6, &res), OTA_OK);
	assert_true(res.duplicate);
	assert_string_equal(res.deployment_status, "active");
	assert_int_equal(ota_store_delta_get(f->st, f->rel, f->d.id, &d, NULL), OTA_OK);
	assert_int_equal(d.failed, 1);
	assert_int_equal(d.refused, 0);
	assert_int_equal(d.devices_failed, 1);
	/* dev-1 neither downloads nor is offered it again; dev-2 still is. */
	assert_false(file_allowed(f, "dev-1"));
	assert_false(offered(f, &o1, "dev-1", f->base, 50));
	assert_true(offered(f, &o2, "dev-2", f->base, 50));
	/* "delta refused" by dev-2 is counted apart. */
	ev = (struct ota_event){.seq = 1,
	                        .status = "downloading",
	                        .reason = "delta refused: made for another base image",
	                        .progress = 0};
	assert_int_equal(ota_deploy_report(f->st, "dev-2", o2.dep.id, &ev, T0 + 7, &res), OTA_OK);
	assert_int_equal(ota_store_delta_get(f->st, f->rel, f->d.id, &d, NULL), OTA_OK);
	assert_int_equal(d.failed, 1);
	assert_int_equal(d.refused, 1);
	assert_int_equal(d.devices_failed, 2);
	assert_false(offered(f, &o2, "dev-2", f->base, 50));
	ota_offer_clear(&o1);
	ota_offer_clear(&o2);
}

static void test_store_rules(void **state)
{
	struct fx *f = *state;
	struct ota_delta d = f->d;
	bool existed = false;

	/* The same delta again: nothing changes. */
	assert_int_equal(ota_store_delta_add(f->st, &d, "{}", T0, &existed), OTA_OK);
	assert_true(existed);
	/* Another delta from the same base: refused. */
	hex64(d.id, '7');
	assert_int_equal(ota_store_delta_add(f->st, &d, "{}", T0, &existed), OTA_ERR_CONFLICT);
	/* A file that is not an uploaded image: refused. */
	hex64(d.base_sha256, '8');
	hex64(d.image_sha256, '6');
	assert_int_equal(ota_store_delta_add(f->st, &d, "{}", T0, &existed), OTA_ERR_NOT_FOUND);
	/* The delta's image is in use until the delta goes. */
	assert_int_equal(ota_store_image_delete(f->st, f->file), OTA_ERR_CONFLICT);
	assert_int_equal(ota_store_delta_delete(f->st, f->rel, f->d.id), OTA_OK);
	assert_int_equal(ota_store_delta_delete(f->st, f->rel, f->d.id), OTA_ERR_NOT_FOUND);
	assert_int_equal(ota_store_image_delete(f->st, f->file), OTA_OK);
}

static void test_release_delete_takes_deltas(void **state)
{
	struct fx *f = *state;
	struct ota_delta d;
	const char *why = NULL;

	assert_int_equal(ota_store_release_delete(f->st, f->rel, &why), OTA_OK);
	assert_int_equal(ota_store_delta_get(f->st, f->rel, f->d.id, &d, NULL), OTA_ERR_NOT_FOUND);
	/* The file stays, an unreferenced image. */
	assert_int_equal(ota_store_image_delete(f->st, f->file), OTA_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_offer_rule, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failure_stops_offer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_release_delete_takes_deltas, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
