/*
 * tests/unit/test_events.c - events out (server/events/, docs/events.md): type lists and role
 * views, an event's JSON, the delivery signature against an independent HMAC, the destination
 * check against server-side request forgery (address literals only: no DNS), and the webhook
 * rows with their compare-and-set cursor on a real temporary SQLite store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "events/event.h"
#include "events/webhook.h"
#include "store/webhook_store.h"
#include "store_fixture.h"

static void types_valid_and_match(void **state)
{
	const char *why = NULL;

	(void)state;
	assert_true(ota_event_types_valid("*", &why));
	assert_true(ota_event_types_valid("rollout.*,deployment.outcome", &why));
	assert_false(ota_event_types_valid("", &why));
	assert_false(ota_event_types_valid("rollout.*,", &why));
	assert_false(ota_event_types_valid("Rollout.start", &why));
	assert_false(ota_event_types_valid("roll*", &why));
	assert_false(ota_event_types_valid("a b", &why));
	assert_non_null(why);

	assert_true(ota_event_types_match("*", "token.create"));
	assert_true(ota_event_types_match("rollout.*", "rollout.stage.advance"));
	assert_false(ota_event_types_match("rollout.*", "rollouts"));
	assert_false(ota_event_types_match("rollout.*", "deployment.outcome"));
	assert_true(ota_event_types_match("device.tags,deployment.outcome", "deployment.outcome"));
	assert_false(ota_event_types_match("deployment.outcome", "deployment.outcomes"));
	assert_false(ota_event_types_match("deployment.outcomes", "deployment.outcome"));
}

static void role_views(void **state)
{
	(void)state;
	const char *op[] = {"rollout.halt",     "deployment.outcome", "device.approve",
	                    "release.register", "image.upload",       "delta.register",
	                    "delta.delete",     "device.cert_issue",  "device.cert_pin"};
	const char *not_op[] = {
	    "principal.create", "token.create",    "access.denied", "webhook.create",
	    "root.upload",      "cert.revoke",     "auth.refused",  "connection.refused",
	    "refusals.summary", "deltas.register", "deltax"};
	for (size_t i = 0; i < sizeof(op) / sizeof(op[0]); i++) {
		assert_true(ota_event_visible(OTA_EVENT_VIEW_OPERATOR, op[i]));
		assert_true(ota_event_visible(OTA_EVENT_VIEW_ALL, op[i]));
	}
	for (size_t i = 0; i < sizeof(not_op) / sizeof(not_op[0]); i++) {
		assert_false(ota_event_visible(OTA_EVENT_VIEW_OPERATOR, not_op[i]));
		assert_true(ota_event_visible(OTA_EVENT_VIEW_ALL, not_op[i]));
	}
}

static void event_json(void **state)
{
	struct ota_audit_row row = {.seq = 42, .at = 1700000000, .hash = "ab"};

	(void)state;
	row.e.actor = "ops";
	row.e.role = "operator";
	row.e.action = "rollout.start";
	row.e.rollout_id = "r-1";
	row.e.after = "{\"stage\":1}";
	row.e.detail = "line 1\nline 2";
	char *j = ota_event_json(&row);
	assert_non_null(j);
	assert_null(strchr(j, '\n')); /* one line: an SSE data field */
	assert_non_null(strstr(j, "\"seq\":42"));
	assert_non_null(strstr(j, "\"type\":\"rollout.start\""));
	assert_non_null(strstr(j, "\"after\":{\"stage\":1}"));
	assert_non_null(strstr(j, "\"device_id\":null"));
	free(j);
}

static void signature(void **state)
{
	char sig[65];

	(void)state;
	/* Python: hmac.new(secret.encode(), b"1700000000." + body, sha256).hexdigest() */
	assert_int_equal(ota_event_sign("0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
	                                "abcdef",
	                                1700000000, "{\"seq\":1}", 9, sig),
	                 OTA_OK);
	assert_string_equal(sig,
	                    "41118b875b6c05560803ad187c1329ea1f9720704eb5027f92c000fc46dd9e76");
}

static enum ota_err check(const struct ota_config *c, const char *url, char *pin, char *why)
{
	return ota_webhook_check(c, url, pin, 600, why, 300);
}

static void destinations(void **state)
{
	struct ota_config c;
	char pin[600], why[300];

	(void)state;
	ota_config_defaults(&c);
	assert_int_equal(check(&c, "ftp://8.8.8.8/x", pin, why), OTA_ERR_INVALID);
	assert_non_null(strstr(why, "scheme"));
	assert_int_equal(check(&c, "gopher://8.8.8.8/x", pin, why), OTA_ERR_INVALID);
	assert_int_equal(check(&c, "8.8.8.8/x", pin, why), OTA_ERR_INVALID);
	assert_int_equal(check(&c, "http://8.8.8.8/x", pin, why), OTA_ERR_INVALID);
	assert_non_null(strstr(why, "allow_http"));
	assert_int_equal(check(&c, "https://u:p@8.8.8.8/x", pin, why), OTA_ERR_INVALID);
	assert_int_equal(check(&c, "https://8.8.8.8/x#f", pin, why), OTA_ERR_INVALID);
	assert_int_equal(check(&c, "https://8.8.8.8/x y", pin, why), OTA_ERR_INVALID);
	/* Public: allowed, pinned to the checked address. */
	assert_int_equal(check(&c, "https://8.8.8.8/x", pin, why), OTA_OK);
	assert_string_equal(pin, "8.8.8.8:443:8.8.8.8");
	const char *refused[] = {
	    "https://127.0.0.1/",   "https://10.0.0.1/",        "https://172.16.5.4/",
	    "https://192.168.0.1/", "https://169.254.169.254/", "https://100.64.0.1/",
	    "https://0.0.0.0/",     "https://224.0.0.1/",       "https://[::1]/",
	    "https://[fe80::1]/",   "https://[fd00::1]/",       "https://[::ffff:127.0.0.1]/",
	    "https://[::]/",        "https://2130706433/"};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		assert_int_equal(check(&c, refused[i], pin, why), OTA_ERR_INVALID);
		assert_non_null(strstr(why, "allow_networks"));
	}
	/* The allow-list opens exactly its blocks. */
	snprintf(c.webhook_allow_networks, sizeof(c.webhook_allow_networks),
	         "127.0.0.0/8, ::1/128");
	assert_int_equal(check(&c, "https://127.0.0.1:8443/h", pin, why), OTA_OK);
	assert_string_equal(pin, "127.0.0.1:8443:127.0.0.1");
	assert_int_equal(check(&c, "https://[::1]:8443/h", pin, why), OTA_OK);
	assert_string_equal(pin, "[::1]:8443:[::1]");
	assert_int_equal(check(&c, "https://10.0.0.1/", pin, why), OTA_ERR_INVALID);
	c.webhook_allow_http = true;
	assert_int_equal(check(&c, "http://127.0.0.1:1/h", pin, why), OTA_OK);
	/* A malformed allow-list is the configuration's fault. */
	snprintf(c.webhook_allow_networks, sizeof(c.webhook_allow_networks), "300.1.1.1/8");
	assert_int_equal(ota_webhook_config_check(&c, why, sizeof(why)), OTA_ERR_CONFIG);
	snprintf(c.webhook_allow_networks, sizeof(c.webhook_allow_networks), "10.0.0.0/33");
	assert_int_equal(ota_webhook_config_check(&c, why, sizeof(why)), OTA_ERR_CONFIG);
	snprintf(c.webhook_allow_networks, sizeof(c.webhook_allow_networks), "10.0.0.0/8,fd00::/8");
	assert_int_equal(ota_webhook_config_check(&c, why, sizeof(why)), OTA_OK);
}

static int count_one(void *ctx, const struct ota_store_webhook *w)
{
	(void)w;
	(*(int *)ctx)++;
	return 0;
}

static void store_rows(void **state)
{
	char dir[OTA_TEST_DIR_MAX], path[OTA_TEST_PATH_MAX];
	struct ota_store *st;
	struct ota_store_webhook w = {0}, got;
	bool more = false;
	int n = 0;

	(void)state;
	assert_int_equal(ota_test_store_open("events", dir, path, &st), 0);
	snprintf(w.id, sizeof(w.id), "w-1");
	snprintf(w.url, sizeof(w.url), "https://example.com/h");
	snprintf(w.types, sizeof(w.types), "*");
	snprintf(w.secret, sizeof(w.secret), "%064d", 0);
	snprintf(w.created_by, sizeof(w.created_by), "admin");
	w.cursor = 5;
	assert_int_equal(ota_store_webhook_add(st, &w), OTA_OK);
	assert_int_equal(ota_store_webhook_add(st, &w), OTA_ERR_CONFLICT);
	snprintf(w.id, sizeof(w.id), "w-2");
	assert_int_equal(ota_store_webhook_add(st, &w), OTA_OK);
	assert_int_equal(ota_store_webhook_list(st, NULL, 1, count_one, &n, &more), OTA_OK);
	assert_int_equal(n, 1);
	assert_true(more);
	n = 0;
	assert_int_equal(ota_store_webhook_list(st, "w-1", 10, count_one, &n, &more), OTA_OK);
	assert_int_equal(n, 1);
	assert_false(more);

	/* The cursor moves only from the value read. */
	assert_int_equal(ota_store_webhook_advance(st, "w-1", 4, 9, 1), OTA_ERR_CONFLICT);
	assert_int_equal(ota_store_webhook_advance(st, "w-1", 5, 9, 1), OTA_OK);
	assert_int_equal(ota_store_webhook_advance(st, "w-9", 5, 9, 1), OTA_ERR_NOT_FOUND);
	assert_int_equal(ota_store_webhook_failed(st, "w-1", 9, 3, 1000, true, "answered HTTP 500"),
	                 OTA_OK);
	assert_int_equal(ota_store_webhook_get(st, "w-1", &got), OTA_OK);
	assert_int_equal(got.cursor, 9);
	assert_int_equal(got.delivered, 1);
	assert_true(got.dead);
	assert_int_equal(got.attempts, 3);
	assert_string_equal(got.last_error, "answered HTTP 500");
	assert_int_equal(ota_store_webhook_redeliver(st, "w-1", true, 2), OTA_OK);
	assert_int_equal(ota_store_webhook_get(st, "w-1", &got), OTA_OK);
	assert_false(got.dead);
	assert_int_equal(got.cursor, 2);
	assert_int_equal(got.attempts, 0);
	assert_string_equal(got.last_error, "");
	assert_int_equal(ota_store_webhook_delete(st, "w-1"), OTA_OK);
	assert_int_equal(ota_store_webhook_delete(st, "w-1"), OTA_ERR_NOT_FOUND);
	assert_int_equal(ota_store_webhook_get(st, "w-1", &got), OTA_ERR_NOT_FOUND);
	assert_int_equal(ota_test_store_close(dir, st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(types_valid_and_match),
	    cmocka_unit_test(role_views),
	    cmocka_unit_test(event_json),
	    cmocka_unit_test(signature),
	    cmocka_unit_test(destinations),
	    cmocka_unit_test(store_rows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
