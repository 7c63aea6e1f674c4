/*
 * test_server_artifact.c - the image folder (streamed upload, hash, size limit, atomic
 * placement, duplicates, leftovers removed at open), the trusted root's refusals, and the
 * admission policy over a real store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "artifact/artifact.h"
#include "auth/auth.h"

struct fx {
	char dir[64];
	struct ota_store *st;
	struct ota_images *im;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char path[128], msg[256];

	snprintf(f->dir, sizeof(f->dir), "/tmp/ota-art-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(path, sizeof(path), "%s/otad.db", f->dir);
	if (ota_store_open(path, &f->st, msg, sizeof(msg)) != OTA_OK ||
	    ota_images_open(f->dir, 1000, &f->im) != OTA_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];

	ota_images_free(f->im);
	ota_store_free(f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static unsigned count_incoming(struct fx *f)
{
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s/images/.incoming)\"", f->dir);
	return system(cmd) == 0 ? 0 : 1;
}

static void upload(void **state)
{
	struct fx *f = *state;
	struct ota_upload *up = NULL;
	char sha[65];
	uint64_t size = 0;
	int fd = -1;

	assert_int_equal(ota_upload_begin(f->im, &up), OTA_OK);
	assert_int_equal(ota_upload_write(up, "ab", 2), OTA_OK);
	assert_int_equal(ota_upload_write(up, "c", 1), OTA_OK);
	assert_int_equal(ota_upload_finish(up, sha, &size), OTA_OK);
	assert_string_equal(sha,
	                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(size, 3);
	assert_int_equal(ota_images_open_file(f->im, sha, &fd, &size), OTA_OK);
	char buf[4] = "";
	assert_int_equal(read(fd, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "abc", 3);
	close(fd);
	assert_int_equal(count_incoming(f), 0);

	/* The same bytes again: same name, nothing left behind. */
	assert_int_equal(ota_upload_begin(f->im, &up), OTA_OK);
	assert_int_equal(ota_upload_write(up, "abc", 3), OTA_OK);
	assert_int_equal(ota_upload_finish(up, sha, &size), OTA_OK);
	assert_int_equal(count_incoming(f), 0);

	/* Over the limit: refused, and the abort removes the temporary file. */
	static char big[600];
	assert_int_equal(ota_upload_begin(f->im, &up), OTA_OK);
	assert_int_equal(ota_upload_write(up, big, sizeof(big)), OTA_OK);
	assert_int_equal(ota_upload_write(up, big, sizeof(big)), OTA_ERR_TOO_LARGE);
	assert_int_equal(count_incoming(f), 1);
	ota_upload_abort(up);
	assert_int_equal(count_incoming(f), 0);
	ota_upload_abort(NULL);

	assert_int_equal(ota_images_open_file(f->im, "00", &fd, &size), OTA_ERR_NOT_FOUND);
	assert_int_equal(
	    ota_images_open_file(f->im,
	                         "0000000000000000000000000000000000000000000000000000000000000000",
	                         &fd, &size),
	    OTA_ERR_NOT_FOUND);
	assert_int_equal(ota_images_open_file(f->im, "../otad.db", &fd, &size), OTA_ERR_NOT_FOUND);
}

static void leftovers_removed(void **state)
{
	struct fx *f = *state;
	struct ota_upload *up = NULL;
	struct ota_images *again = NULL;
	char path[300];
	FILE *left;

	/* An upload in progress holds its file's lock: an open (another otad starting on the
	 * same folder) leaves it alone. */
	assert_int_equal(ota_upload_begin(f->im, &up), OTA_OK);
	assert_int_equal(ota_upload_write(up, "x", 1), OTA_OK);
	assert_int_equal(count_incoming(f), 1);
	assert_int_equal(ota_images_open(f->dir, 1000, &again), OTA_OK);
	assert_int_equal(count_incoming(f), 1);
	ota_images_free(again);
	ota_upload_abort(up);
	assert_int_equal(count_incoming(f), 0);
	/* A crash's leftover, which nobody holds, is removed by the next open. */
	snprintf(path, sizeof(path), "%s/images/.incoming/upload-left", f->dir);
	left = fopen(path, "w");
	assert_non_null(left);
	fputs("x", left);
	fclose(left);
	assert_int_equal(count_incoming(f), 1);
	assert_int_equal(ota_images_open(f->dir, 1000, &again), OTA_OK);
	assert_int_equal(count_incoming(f), 0);
	ota_images_free(again);
}

static void sha_names(void **state)
{
	(void)state;
	assert_true(ota_sha256_hex_valid(
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	assert_false(ota_sha256_hex_valid(
	    "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
	assert_false(ota_sha256_hex_valid(
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"));
	assert_false(ota_sha256_hex_valid(""));
	assert_false(ota_sha256_hex_valid(NULL));
}

static void trust_refusals(void **state)
{
	struct fx *f = *state;
	struct ota_trust *t = NULL;
	struct ota_release rel;
	char msg[256] = "", path[128];
	const char *why = NULL;
	bool existed;
	uint32_t v;

	/* No root configured: nothing can be registered or rotated. */
	assert_int_equal(ota_trust_open(f->st, "", &t, msg, sizeof(msg)), OTA_OK);
	assert_int_equal(ota_trust_version(t), 0);
	assert_int_equal(
	    ota_release_register(t, f->st, f->im, "{}", 2, NULL, 1, &rel, &existed, &why),
	    OTA_ERR_CONFLICT);
	assert_non_null(strstr(why, "no trusted root"));
	assert_int_equal(ota_trust_add_root(t, f->st, "{}", 2, &v, &why), OTA_ERR_CONFLICT);
	ota_trust_free(t);
	t = NULL;

	/* A root file that is not a valid root stops the start with the reason. */
	snprintf(path, sizeof(path), "%s/root-1.json", f->dir);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("{\"payloadType\":\"x\",\"payload\":\"\",\"signatures\":[]}", fp);
	fclose(fp);
	assert_int_equal(ota_trust_open(f->st, path, &t, msg, sizeof(msg)), OTA_ERR_VERIFY);
	assert_null(t);
	assert_non_null(strstr(msg, "not a valid root"));
	snprintf(path, sizeof(path), "%s/absent.json", f->dir);
	assert_int_equal(ota_trust_open(f->st, path, &t, msg, sizeof(msg)), OTA_ERR_IO);
	ota_trust_free(NULL);
}

static void admission_policy(void **state)
{
	struct fx *f = *state;
	struct ota_identity id;
	const char *fp1 = "1111111111111111111111111111111111111111111111111111111111111111";
	const char *fp2 = "2222222222222222222222222222222222222222222222222222222222222222";

	assert_true(ota_auth_name_valid("device-0001"));
	assert_true(ota_auth_name_valid("a.b_c-D9"));
	assert_false(ota_auth_name_valid(""));
	assert_false(ota_auth_name_valid("dev ice"));
	assert_false(ota_auth_name_valid("dev/ice"));
	assert_false(ota_auth_name_valid(
	    "x234567890123456789012345678901234567890123456789012345678901234X"));

	assert_int_equal(ota_auth_device(f->st, "bad name", fp1, 1, &id), OTA_AUTH_BAD_NAME);
	assert_int_equal(ota_auth_device(f->st, "dev-1", fp1, 1, &id), OTA_AUTH_OK);
	assert_int_equal(id.role, OTA_ROLE_DEVICE);
	assert_string_equal(id.name, "dev-1");
	assert_int_equal(ota_auth_device(f->st, "dev-1", fp1, 2, &id), OTA_AUTH_OK);
	assert_int_equal(ota_auth_device(f->st, "dev-1", fp2, 3, &id), OTA_AUTH_CONFLICT);
	assert_int_equal(ota_store_revoke(f->st, fp1, "", 4), OTA_OK);
	assert_int_equal(ota_auth_device(f->st, "dev-1", fp1, 5, &id), OTA_AUTH_REVOKED);
	/* A revoked certificate never admits a new device either. */
	assert_int_equal(ota_auth_device(f->st, "dev-2", fp1, 6, &id), OTA_AUTH_REVOKED);
	struct ota_device d;
	assert_int_equal(ota_store_device_get(f->st, "dev-2", &d), OTA_ERR_NOT_FOUND);

	assert_int_equal(ota_auth_operator(f->st, "alice", "admin", fp2, &id), OTA_AUTH_OK);
	assert_int_equal(id.role, OTA_ROLE_ADMIN);
	assert_int_equal(ota_auth_operator(f->st, "bob", "auditor", fp2, &id), OTA_AUTH_OK);
	assert_int_equal(id.role, OTA_ROLE_AUDITOR);
	assert_int_equal(ota_auth_operator(f->st, "eve", "root", fp2, &id), OTA_AUTH_BAD_ROLE);
	assert_int_equal(ota_auth_operator(f->st, "eve", "", fp2, &id), OTA_AUTH_BAD_ROLE);
	assert_int_equal(ota_auth_operator(f->st, "mallory", "admin", fp1, &id), OTA_AUTH_REVOKED);
	assert_string_equal(ota_auth_role_name(OTA_ROLE_OPERATOR), "operator");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(upload, setup, teardown),
	    cmocka_unit_test_setup_teardown(leftovers_removed, setup, teardown),
	    cmocka_unit_test(sha_names),
	    cmocka_unit_test_setup_teardown(trust_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(admission_policy, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
