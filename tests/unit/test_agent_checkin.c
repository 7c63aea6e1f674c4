/*
 * Unit tests of check-in and report encoding and of check-in answer decoding
 * (core/checkin.c): the exact request bodies, every field of an update answer, unknown fields
 * ignored, and each malformed answer refused with the right error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "checkin.h"

static struct fwa_json_tok tok[256];

static void test_encode_checkin(void **state)
{
	struct fwa_checkin_req r = {.hw_variant = "pico2w",
	                            .version = "1.0.0",
	                            .floor = 3,
	                            .root_version = 2,
	                            .active_slot = 1,
	                            .trial = true,
	                            .deployment_id = "d-1",
	                            .outcome = FWA_ST_ROLLED_BACK,
	                            .reason = "trial not \"bought\""};
	char buf[512];
	long n;

	(void)state;
	n = fwa_checkin_encode(&r, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf,
	                    "{\"hw_variant\":\"pico2w\",\"version\":\"1.0.0\",\"security_floor\":3,"
	                    "\"root_version\":2,\"active_slot\":\"B\",\"boot_state\":\"trial\","
	                    "\"deployment_id\":\"d-1\",\"last_outcome\":{\"deployment_id\":\"d-1\","
	                    "\"status\":\"rolled_back\",\"reason\":\"trial not \\\"bought\\\"\"}}");
	/* No deployment: neither the id nor an outcome. */
	r.deployment_id = "";
	r.trial = false;
	r.active_slot = 0;
	n = fwa_checkin_encode(&r, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf,
	                    "{\"hw_variant\":\"pico2w\",\"version\":\"1.0.0\",\"security_floor\":3,"
	                    "\"root_version\":2,\"active_slot\":\"A\",\"boot_state\":\"normal\"}");
	assert_int_equal(fwa_checkin_encode(&r, buf, 20), -1);
	/* The running image's hash, when the agent knows it. */
	uint8_t sha[32];
	memset(sha, 0xab, sizeof(sha));
	r.active_sha256 = sha;
	n = fwa_checkin_encode(&r, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, ",\"active_image_sha256\":\"abababababababababababababababab"
	                            "abababababababababababababababab\"}"));
}

static enum fwa_err decode(const char *json, struct fwa_checkin_answer *a);

static void test_decode_delta(void **state)
{
	static const char *const head =
	    "{\"action\":\"update\",\"update\":{\"deployment_id\":\"d-1\","
	    "\"manifest\":{\"payloadType\":\"t\"},\"image_url\":\"/device/v1/images/ab\"";
	static const char *const bad[] = {
	    ",\"delta\":[]",
	    ",\"delta\":{\"url\":\"/d\",\"size\":10}",                         /* no metadata */
	    ",\"delta\":{\"metadata\":{},\"url\":\"d\",\"size\":10}",          /* relative url */
	    ",\"delta\":{\"metadata\":{},\"url\":\"/d\",\"size\":0}",          /* empty */
	    ",\"delta\":{\"metadata\":{},\"url\":\"/d\",\"size\":4294967296}", /* > 32 bits */
	    ",\"delta\":{\"metadata\":\"x\",\"url\":\"/d\",\"size\":10}",
	};
	struct fwa_checkin_answer a;
	char json[512];

	(void)state;
	snprintf(json, sizeof(json), "%s%s}}", head,
	         ",\"delta\":{\"metadata\":{\"payloadType\":\"d\"},\"url\":\"/device/v1/"
	         "images/cd\",\"size\":1234,\"later\":true}");
	assert_int_equal(decode(json, &a), FWA_OK);
	assert_true(a.has_delta);
	assert_string_equal(a.delta_url, "/device/v1/images/cd");
	assert_int_equal(a.delta_size, 1234);
	assert_int_equal(a.delta_meta.len, strlen("{\"payloadType\":\"d\"}"));
	assert_memory_equal(a.delta_meta.p, "{\"payloadType\":\"d\"}", a.delta_meta.len);
	/* A malformed offer leaves the full image: no delta, the update still decodes. */
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(json, sizeof(json), "%s%s}}", head, bad[i]);
		assert_int_equal(decode(json, &a), FWA_OK);
		assert_true(a.update);
		assert_false(a.has_delta);
	}
}

static void test_encode_event(void **state)
{
	struct fwa_event e = {.seq = 4, .progress = 65536, .status = FWA_ST_DOWNLOADING};
	char buf[256];
	long n;

	(void)state;
	n = fwa_event_encode(&e, "1.0.0", buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "{\"seq\":4,\"status\":\"downloading\",\"reason\":\"\","
	                         "\"version\":\"1.0.0\",\"progress\":65536}");
	assert_string_equal(fwa_status_name(FWA_ST_CONFIRMED), "confirmed");
	assert_string_equal(fwa_status_name((enum fwa_status)99), "");
}

static enum fwa_err decode(const char *json, struct fwa_checkin_answer *a)
{
	const char *why = NULL;
	enum fwa_err err = fwa_checkin_decode(json, strlen(json), tok, 256, a, &why);

	if (err != FWA_OK)
		assert_non_null(why);
	return err;
}

static void test_decode_update(void **state)
{
	const char *json =
	    "{\"action\":\"update\",\"poll_after\":287,\"server_time\":1795000000,"
	    "\"future\":{\"x\":[1,2]},"
	    "\"update\":{\"deployment_id\":\"d-01HF.x_y\",\"manifest\":{\"payloadType\":\"t\"},"
	    "\"image_url\":\"/device/v1/images/ab\",\"image_size\":1048576},"
	    "\"roots\":[{\"a\":1},{\"b\":2}]}";
	struct fwa_checkin_answer a;

	(void)state;
	assert_int_equal(decode(json, &a), FWA_OK);
	assert_true(a.update);
	assert_int_equal(a.poll_after, 287);
	assert_true(a.has_server_time);
	assert_int_equal(a.server_time, 1795000000);
	assert_string_equal(a.deployment_id, "d-01HF.x_y");
	assert_string_equal(a.image_url, "/device/v1/images/ab");
	assert_int_equal(a.image_size, 1048576);
	assert_int_equal(a.manifest.len, strlen("{\"payloadType\":\"t\"}"));
	assert_memory_equal(a.manifest.p, "{\"payloadType\":\"t\"}", a.manifest.len);
	assert_int_equal(a.nroots, 2);
	assert_memory_equal(a.roots[1].p, "{\"b\":2}", a.roots[1].len);
}

static void test_decode_none(void **state)
{
	struct fwa_checkin_answer a;

	(void)state;
	assert_int_equal(decode("{\"action\":\"none\",\"poll_after\":60}", &a), FWA_OK);
	assert_false(a.update);
	assert_int_equal(a.poll_after, 60);
	assert_false(a.has_server_time);
	/* "none" ignores a stray update object. */
	assert_int_equal(decode("{\"action\":\"none\",\"update\":5}", &a), FWA_OK);
}

static void test_decode_refusals(void **state)
{
	static const struct {
		const char *json;
		enum fwa_err err;
	} bad[] = {
	    {"", FWA_ERR_MALFORMED},
	    {"[]", FWA_ERR_MALFORMED},
	    {"{}", FWA_ERR_MALFORMED},
	    {"{\"action\":\"reboot\"}", FWA_ERR_MALFORMED},
	    {"{\"action\":1}", FWA_ERR_MALFORMED},
	    {"{\"action\":\"none\",\"poll_after\":-1}", FWA_ERR_MALFORMED},
	    {"{\"action\":\"none\",\"poll_after\":604801}", FWA_ERR_TOO_LARGE},
	    {"{\"action\":\"none\",\"roots\":{}}", FWA_ERR_MALFORMED},
	    {"{\"action\":\"none\",\"roots\":[1]}", FWA_ERR_MALFORMED},
	    {"{\"action\":\"none\",\"roots\":[{},{},{},{},{},{},{},{},{}]}", FWA_ERR_TOO_LARGE},
	    {"{\"action\":\"update\"}", FWA_ERR_MALFORMED},
	    {"{\"action\":\"update\",\"update\":{\"deployment_id\":\"a b\",\"image_url\":\"/x\","
	     "\"manifest\":{}}}",
	     FWA_ERR_MALFORMED},
	    {"{\"action\":\"update\",\"update\":{\"deployment_id\":\"\",\"image_url\":\"/x\","
	     "\"manifest\":{}}}",
	     FWA_ERR_MALFORMED},
	    {"{\"action\":\"update\",\"update\":{\"deployment_id\":\"d\",\"image_url\":\"x\","
	     "\"manifest\":{}}}",
	     FWA_ERR_MALFORMED},
	    {"{\"action\":\"update\",\"update\":{\"deployment_id\":\"d\",\"image_url\":\"/x y\","
	     "\"manifest\":{}}}",
	     FWA_ERR_MALFORMED},
	    {"{\"action\":\"update\",\"update\":{\"deployment_id\":\"d\",\"image_url\":\"/x\"}}",
	     FWA_ERR_MALFORMED},
	    {"{\"action\":\"update\",\"update\":{\"deployment_id\":\"d\",\"image_url\":\"/x\","
	     "\"manifest\":\"e30=\"}}",
	     FWA_ERR_MALFORMED},
	    {"{\"action\":\"update\",\"update\":{\"deployment_id\":\"d\",\"image_url\":\"/x\","
	     "\"image_size\":4294967296,\"manifest\":{}}}",
	     FWA_ERR_TOO_LARGE},
	    {"{\"action\":\"none\",\"action\":\"update\"}", FWA_ERR_MALFORMED},
	};
	struct fwa_checkin_answer a;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum fwa_err err = decode(bad[i].json, &a);

		if (err != bad[i].err)
			fail_msg("case %zu: got %d want %d", i, err, bad[i].err);
	}
}

static void test_long_ids(void **state)
{
	char json[512], id[80];
	struct fwa_checkin_answer a;

	(void)state;
	memset(id, 'a', 64);
	id[64] = '\0';
	snprintf(json, sizeof(json),
	         "{\"action\":\"update\",\"update\":{\"deployment_id\":\"%s\",\"image_url\":\"/x\","
	         "\"manifest\":{}}}",
	         id);
	assert_int_equal(decode(json, &a), FWA_OK);
	assert_true(fwa_dep_id_valid(id));
	id[64] = 'a';
	id[65] = '\0';
	assert_false(fwa_dep_id_valid(id));
	snprintf(json, sizeof(json),
	         "{\"action\":\"update\",\"update\":{\"deployment_id\":\"%s\",\"image_url\":\"/x\","
	         "\"manifest\":{}}}",
	         id);
	assert_int_not_equal(decode(json, &a), FWA_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode_checkin),  cmocka_unit_test(test_encode_event),
	    cmocka_unit_test(test_decode_update),   cmocka_unit_test(test_decode_none),
	    cmocka_unit_test(test_decode_refusals), cmocka_unit_test(test_long_ids),
	    cmocka_unit_test(test_decode_delta),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
