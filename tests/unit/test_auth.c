/*
 * test_auth.c - identities on a real temporary SQLite store: device admission under the auto,
 * pending and preregistered policies (with first-use pinning, each audited), operator
 * certificates checked against principals, and API tokens: form, hash-only storage, expiry,
 * revocation and disabled principals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store_fixture.h"
#include "audit/audit.h"
#include "auth/auth.h"
#include "config/config.h"
#include "store/mgmt_store.h"
#include "store/store.h"

#define FP1 "1111111111111111111111111111111111111111111111111111111111111111"
#define FP2 "2222222222222222222222222222222222222222222222222222222222222222"
#define FP3 "3333333333333333333333333333333333333333333333333333333333333333"
#define FP4 "4444444444444444444444444444444444444444444444444444444444444444"
#define FP5 "5555555555555555555555555555555555555555555555555555555555555555"
#define FP6 "6666666666666666666666666666666666666666666666666666666666666666"

struct fx {
	char dir[OTA_TEST_DIR_MAX];
	char path[OTA_TEST_PATH_MAX];
	struct ota_store *st;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (ota_test_store_open("auth", f->dir, f->path, &f->st) != 0)
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

static int one(void *ctx, const struct ota_audit_row *row)
{
	(void)row;
	(*(int *)ctx)++;
	return 0;
}

static int count_action(struct ota_store *st, const char *action)
{
	struct ota_audit_filter flt = {.action = action, .limit = 1000};
	bool more;
	int n = 0;

	assert_int_equal(ota_audit_query(st, &flt, one, &n, &more), OTA_OK);
	return n;
}

static void admission_policies(void **state)
{
	struct fx *f = *state;
	struct ota_identity id;
	struct ota_device_info d;

	/* auto: known at first sight but written only by ota_auth_device_admit (a request that
	 * succeeds), then pinned. */
	assert_int_equal(ota_auth_device_policy(f->st, OTA_ADMISSION_AUTO, "a-1", FP1, 1, &id),
	                 OTA_AUTH_OK);
	assert_int_equal(id.admit, OTA_ADMIT_NEW);
	assert_int_equal(ota_store_device_info(f->st, "a-1", &d), OTA_ERR_NOT_FOUND);
	assert_int_equal(count_action(f->st, "device.admit"), 0);
	struct ota_identity other = id;
	assert_int_equal(ota_auth_device_admit(f->st, &id, 1), OTA_AUTH_OK);
	assert_int_equal(id.admit, OTA_ADMIT_NONE);
	assert_int_equal(ota_auth_device_admit(f->st, &other, 1), OTA_AUTH_OK); /* raced: same */
	assert_int_equal(ota_auth_device_policy(f->st, OTA_ADMISSION_AUTO, "a-1", FP1, 2, &id),
	                 OTA_AUTH_OK);
	assert_int_equal(id.admit, OTA_ADMIT_NONE);
	assert_int_equal(ota_auth_device_policy(f->st, OTA_ADMISSION_AUTO, "a-1", FP2, 2, &id),
	                 OTA_AUTH_CONFLICT);
	assert_int_equal(count_action(f->st, "device.admit"), 1);
	/* Two certificates of one new id admitted at once: the first to write wins. */
	struct ota_identity a, b;
	assert_int_equal(ota_auth_device_policy(f->st, OTA_ADMISSION_AUTO, "a-2", FP5, 2, &a),
	                 OTA_AUTH_OK);
	assert_int_equal(ota_auth_device_policy(f->st, OTA_ADMISSION_AUTO, "a-2", FP6, 2, &b),
	                 OTA_AUTH_OK);
	assert_int_equal(ota_auth_device_admit(f->st, &a, 2), OTA_AUTH_OK);
	assert_int_equal(ota_auth_device_admit(f->st, &b, 2), OTA_AUTH_CONFLICT);
	/* pending: held until approved; asking again writes nothing more. */
	assert_int_equal(ota_auth_device_policy(f->st, OTA_ADMISSION_PENDING, "p-1", FP3, 3, &id),
	                 OTA_AUTH_PENDING);
	assert_int_equal(ota_auth_device_policy(f->st, OTA_ADMISSION_PENDING, "p-1", FP3, 4, &id),
	                 OTA_AUTH_PENDING);
	assert_int_equal(count_action(f->st, "device.pending"), 1);
	assert_int_equal(ota_store_device_set_admission(f->st, "p-1", "approved"), OTA_OK);
	assert_int_equal(ota_auth_device_policy(f->st, OTA_ADMISSION_PENDING, "p-1", FP3, 5, &id),
	                 OTA_AUTH_OK);
	assert_int_equal(ota_store_device_set_admission(f->st, "p-1", "rejected"), OTA_OK);
	assert_int_equal(ota_auth_device_policy(f->st, OTA_ADMISSION_AUTO, "p-1", FP3, 6, &id),
	                 OTA_AUTH_REJECTED);
	/* preregistered: unknown ids refused without a row; registered ones pinned once. */
	assert_int_equal(
	    ota_auth_device_policy(f->st, OTA_ADMISSION_PREREGISTERED, "r-1", FP1, 7, &id),
	    OTA_AUTH_UNKNOWN);
	assert_int_equal(ota_store_device_info(f->st, "r-1", &d), OTA_ERR_NOT_FOUND);
	assert_int_equal(ota_store_device_register(f->st, "r-1", "", "approved", 8), OTA_OK);
	assert_int_equal(
	    ota_auth_device_policy(f->st, OTA_ADMISSION_PREREGISTERED, "r-1", FP2, 9, &id),
	    OTA_AUTH_OK);
	assert_int_equal(id.admit, OTA_ADMIT_PIN);
	assert_int_equal(ota_store_device_info(f->st, "r-1", &d), OTA_OK);
	assert_string_equal(d.d.fingerprint, "");
	assert_int_equal(ota_auth_device_admit(f->st, &id, 9), OTA_AUTH_OK);
	assert_int_equal(ota_store_device_info(f->st, "r-1", &d), OTA_OK);
	assert_string_equal(d.d.fingerprint, FP2);
	assert_int_equal(count_action(f->st, "device.pin"), 1);
	/* decommissioned, then re-provisioned with another certificate. */
	assert_int_equal(ota_store_device_set_status(f->st, "r-1", "decommissioned"), OTA_OK);
	assert_int_equal(ota_auth_device(f->st, "r-1", FP2, 11, &id), OTA_AUTH_DECOMMISSIONED);
	/* One device per certificate: a-1's fingerprint cannot be pinned to r-1. */
	assert_int_equal(ota_store_device_set_fingerprint(f->st, "r-1", FP1), OTA_ERR_CONFLICT);
	assert_int_equal(ota_auth_device(f->st, "r-1", FP2, 11, &id), OTA_AUTH_DECOMMISSIONED);
	assert_int_equal(ota_store_device_set_fingerprint(f->st, "r-1", FP4), OTA_OK);
	assert_int_equal(ota_auth_device(f->st, "r-1", FP4, 12, &id), OTA_AUTH_OK);
	assert_int_equal(ota_auth_device(f->st, "r-1", FP2, 13, &id), OTA_AUTH_CONFLICT);
}

static void operators_and_principals(void **state)
{
	struct fx *f = *state;
	struct ota_identity id;

	assert_int_equal(ota_auth_operator(f->st, "alice", "admin", FP1, &id), OTA_AUTH_OK);
	assert_int_equal(id.role, OTA_ROLE_ADMIN);
	assert_int_equal(ota_store_principal_add(f->st, "alice", "auditor", "root", 1), OTA_OK);
	assert_int_equal(ota_store_principal_add(f->st, "alice", "auditor", "root", 1),
	                 OTA_ERR_CONFLICT);
	assert_int_equal(ota_store_principal_add(f->st, "bob", "superuser", "root", 1),
	                 OTA_ERR_INVALID);
	/* The principal's row must agree on the role, and not be disabled. */
	assert_int_equal(ota_auth_operator(f->st, "alice", "admin", FP1, &id), OTA_AUTH_BAD_ROLE);
	assert_int_equal(ota_auth_operator(f->st, "alice", "auditor", FP1, &id), OTA_AUTH_OK);
	assert_int_equal(ota_store_principal_set_disabled(f->st, "alice", true), OTA_OK);
	assert_int_equal(ota_auth_operator(f->st, "alice", "auditor", FP1, &id), OTA_AUTH_DISABLED);
}

static void tokens(void **state)
{
	struct fx *f = *state;
	struct ota_identity id;
	struct ota_token t;
	char token[OTA_TOKEN_LEN + 1], tid[24], hash[OTA_HEX256], hdr[100];
	char token2[OTA_TOKEN_LEN + 1], tid2[24], hash2[OTA_HEX256];

	assert_int_equal(ota_auth_token_new(token, tid, hash), OTA_OK);
	assert_int_equal(ota_auth_token_new(token2, tid2, hash2), OTA_OK);
	assert_int_equal(strlen(token), OTA_TOKEN_LEN);
	assert_int_equal(strncmp(token, "ota_", 4), 0);
	assert_string_not_equal(token, token2);
	assert_int_equal(ota_store_token_add(f->st, tid, "nobody", hash, 1000, "root", 1),
	                 OTA_ERR_NOT_FOUND);
	assert_int_equal(ota_store_principal_add(f->st, "ci", "operator", "root", 1), OTA_OK);
	assert_int_equal(ota_store_token_add(f->st, tid, "ci", hash, 1000, "root", 1), OTA_OK);
	/* The store has the hash, never the token. */
	assert_int_equal(ota_store_token_by_hash(f->st, token, &t), OTA_ERR_NOT_FOUND);
	snprintf(hdr, sizeof(hdr), "Bearer %s", token);
	assert_int_equal(ota_auth_token(f->st, hdr, 500, &id), OTA_AUTH_OK);
	assert_int_equal(id.role, OTA_ROLE_OPERATOR);
	assert_string_equal(id.name, "ci");
	assert_string_equal(id.token_id, tid);
	assert_int_equal(ota_auth_token(f->st, hdr, 1000, &id), OTA_AUTH_TOKEN_EXPIRED);
	/* Malformed and unknown. */
	assert_int_equal(ota_auth_token(f->st, "Basic abc", 500, &id), OTA_AUTH_TOKEN_INVALID);
	assert_int_equal(ota_auth_token(f->st, "Bearer ota_xyz", 500, &id), OTA_AUTH_TOKEN_INVALID);
	snprintf(hdr, sizeof(hdr), "Bearer %s", token2);
	assert_int_equal(ota_auth_token(f->st, hdr, 500, &id), OTA_AUTH_TOKEN_INVALID);
	/* Disabled principal, then revocation. */
	snprintf(hdr, sizeof(hdr), "Bearer %s", token);
	assert_int_equal(ota_store_principal_set_disabled(f->st, "ci", true), OTA_OK);
	assert_int_equal(ota_auth_token(f->st, hdr, 500, &id), OTA_AUTH_DISABLED);
	assert_int_equal(ota_store_principal_set_disabled(f->st, "ci", false), OTA_OK);
	assert_int_equal(ota_store_token_revoke(f->st, tid, 600), OTA_OK);
	assert_int_equal(ota_store_token_revoke(f->st, tid, 601), OTA_ERR_CONFLICT);
	assert_int_equal(ota_store_token_revoke(f->st, "t-0000000000000000", 601),
	                 OTA_ERR_NOT_FOUND);
	assert_int_equal(ota_auth_token(f->st, hdr, 700, &id), OTA_AUTH_TOKEN_REVOKED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(admission_policies, setup, teardown),
	    cmocka_unit_test_setup_teardown(operators_and_principals, setup, teardown),
	    cmocka_unit_test_setup_teardown(tokens, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
