/*
 * test_server_routes.c - the route table and the problem table: matching with parameters,
 * 404 versus 405 with Allow, listeners kept apart, every route callable by someone, every
 * problem type unique with an error status, and the internal error mapping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/internal.h"

static void matching(void **state)
{
	char p[OTA_ROUTE_PARAMS][80];
	bool known;
	const char *allow;
	const struct ota_route *rt;
	(void)state;

	rt = ota_route_match(OTA_L_DEVICE, "POST", "/device/v1/checkin", p, &known, &allow);
	assert_non_null(rt);
	assert_ptr_equal(rt->handle, ota_h_checkin);
	rt = ota_route_match(OTA_L_DEVICE, "POST", "/device/v1/deployments/d-12ab/events", p,
	                     &known, &allow);
	assert_non_null(rt);
	assert_string_equal(p[0], "d-12ab");
	rt = ota_route_match(OTA_L_DEVICE, "GET", "/device/v1/images/abc", p, &known, &allow);
	assert_non_null(rt);
	assert_string_equal(p[0], "abc");
	/* Wrong method: 405 with the path's methods. */
	rt = ota_route_match(OTA_L_DEVICE, "GET", "/device/v1/checkin", p, &known, &allow);
	assert_null(rt);
	assert_true(known);
	assert_string_equal(allow, "POST");
	rt = ota_route_match(OTA_L_MANAGEMENT, "DELETE", "/api/v1/releases", p, &known, &allow);
	assert_null(rt);
	assert_true(known);
	assert_true(strstr(allow, "GET") && strstr(allow, "POST"));
	/* Unknown paths, empty and extra segments. */
	const char *unknown[] = {"/",
	                         "/device/v1/checkin/",
	                         "/device/v1/images/",
	                         "/device/v1/images/a/b",
	                         "/device/v1/deployments//events",
	                         "/device/v1/checkinx",
	                         "/api/v1/health"};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		rt = ota_route_match(OTA_L_DEVICE, "GET", unknown[i], p, &known, &allow);
		assert_null(rt);
		assert_false(known);
	}
	/* Listeners are apart: device paths do not exist on the management listener. */
	rt = ota_route_match(OTA_L_MANAGEMENT, "POST", "/device/v1/checkin", p, &known, &allow);
	assert_null(rt);
	assert_false(known);
}

static void table_sane(void **state)
{
	(void)state;
	for (size_t i = 0; i < ota_routes_count; i++) {
		const struct ota_route *rt = &ota_routes[i];
		assert_non_null(rt->handle);
		assert_true(rt->roles != 0);
		if (rt->listener == OTA_L_DEVICE) {
			assert_int_equal(rt->roles, OTA_ROLE_DEVICE);
			assert_int_equal(strncmp(rt->pattern, "/device/v1/", 11), 0);
		} else {
			assert_false(rt->roles & OTA_ROLE_DEVICE);
			/* The management API, and Prometheus' conventional path. */
			assert_true(strncmp(rt->pattern, "/api/v1/", 8) == 0 ||
			            strcmp(rt->pattern, "/metrics") == 0);
		}
		if (rt->body == OTA_BODY_STREAM)
			assert_true(rt->stream_begin && rt->stream_data && rt->stream_free);
		/* Writes are never open to auditors. */
		if (strcmp(rt->method, "GET") != 0)
			assert_false(rt->roles & OTA_ROLE_AUDITOR);
		for (size_t j = 0; j < i; j++)
			assert_false(strcmp(rt->method, ota_routes[j].method) == 0 &&
			             strcmp(rt->pattern, ota_routes[j].pattern) == 0);
	}
}

static void problems(void **state)
{
	(void)state;
	for (int i = 1; i < OTA_P__COUNT; i++) {
		const struct ota_problem_info *pi = ota_problem_info((enum ota_problem)i);
		assert_non_null(pi->slug);
		assert_non_null(pi->title);
		assert_true(pi->status >= 400 && pi->status <= 599);
		for (int j = 1; j < i; j++)
			assert_string_not_equal(pi->slug,
			                        ota_problem_info((enum ota_problem)j)->slug);
	}
	assert_int_equal(ota_problem_info(OTA_P_BODY_TOO_LARGE)->status, 413);
	assert_int_equal(ota_problem_info(OTA_P_METHOD_NOT_ALLOWED)->status, 405);
	assert_int_equal(ota_problem_info(OTA_P_CERT_REQUIRED)->status, 401);
	assert_ptr_equal(ota_problem_info((enum ota_problem)9999),
	                 ota_problem_info(OTA_P_INTERNAL));
	assert_int_equal(ota_problem_from_err(OTA_ERR_DB), OTA_P_INTERNAL);
	assert_int_equal(ota_problem_from_err(OTA_ERR_NOT_FOUND), OTA_P_NOT_FOUND);
	assert_int_equal(ota_problem_from_err(OTA_ERR_MISMATCH), OTA_P_IMAGE_MISMATCH);
	assert_int_equal(ota_problem_from_err(OTA_ERR_VERIFY), OTA_P_MANIFEST_INVALID);
	assert_int_equal(ota_problem_from_err(OTA_ERR_TOO_LARGE), OTA_P_BODY_TOO_LARGE);
	assert_int_equal(ota_problem_from_err((enum ota_err)1234), OTA_P_INTERNAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(matching),
	    cmocka_unit_test(table_sane),
	    cmocka_unit_test(problems),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
