/*
 * events/event.c - events as views of audit entries: their JSON, which role sees which type,
 * type lists of webhooks and SSE filters, and the HMAC-SHA-256 signature of a delivery.
 */
#include "events/event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include "common/util.h"

/* What concerns rollouts, devices and what they install (releases, images, deltas): the
 * operator view (docs/events.md). */
static const char *const operator_prefixes[] = {"rollout.", "deployment.", "device.",
                                                "release.", "image.",      "delta."};

bool ota_event_visible(enum ota_event_view v, const char *action)
{
	if (v == OTA_EVENT_VIEW_ALL)
		return true;
	for (size_t i = 0; i < sizeof(operator_prefixes) / sizeof(operator_prefixes[0]); i++)
		if (strncmp(action, operator_prefixes[i], strlen(operator_prefixes[i])) == 0)
			return true;
	return false;
}

static bool type_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_';
}

bool ota_event_types_valid(const char *types, const char **why)
{
	const char *p = types;

	if (!*p) {
		*why = "the type list is empty";
		return false;
	}
	for (;;) {
		size_t n = strcspn(p, ",");
		if (n == 0 || n > OTA_EVENT_TYPE_MAX) {
			*why = "a type is empty or longer than 64 bytes";
			return false;
		}
		bool star = p[n - 1] == '*';
		if (star && !(n == 1 || (n >= 3 && p[n - 2] == '.'))) {
			*why = "a wildcard must be \"*\" or end a prefix as in \"rollout.*\"";
			return false;
		}
		for (size_t i = 0; i < n - (star ? 1 : 0); i++) {
			if (!type_char(p[i])) {
				*why = "a type may hold only a-z, 0-9, '.' and '_' (and a final "
				       "\".*\")";
				return false;
			}
		}
		if (!p[n])
			return true;
		p += n + 1;
	}
}

bool ota_event_types_match(const char *types, const char *action)
{
	const char *p = types;
	size_t alen = strlen(action);

	for (;;) {
		size_t n = strcspn(p, ",");
		if (n == 1 && p[0] == '*')
			return true;
		if (n >= 2 && p[n - 1] == '*') {
			if (alen >= n - 1 && strncmp(action, p, n - 1) == 0)
				return true;
		} else if (n == alen && strncmp(action, p, n) == 0) {
			return true;
		}
		if (!p[n])
			return false;
		p += n + 1;
	}
}

static json_t *text_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *json_or_null(const char *s)
{
	json_t *j = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
	return j ? j : json_null();
}

char *ota_event_json(const struct ota_audit_row *row)
{
	json_t *j = json_pack(
	    "{s:I, s:s, s:I, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s}", "seq",
	    (json_int_t)row->seq, "type", row->e.action, "at", (json_int_t)row->at, "actor",
	    row->e.actor, "role", text_or_null(row->e.role), "device_id",
	    text_or_null(row->e.device_id), "rollout_id", text_or_null(row->e.rollout_id),
	    "release_id", text_or_null(row->e.release_id), "object", text_or_null(row->e.object),
	    "before", json_or_null(row->e.before), "after", json_or_null(row->e.after), "detail",
	    text_or_null(row->e.detail), "hash", row->hash);
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(j);
	return s;
}

enum ota_err ota_event_sign(const char *secret, int64_t t, const char *body, size_t len,
                            char out[65])
{
	char ts[24];
	unsigned char mac[EVP_MAX_MD_SIZE];
	enum ota_err rc = OTA_ERR_NOMEM;
	EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
	                       OSSL_PARAM_construct_end()};
	size_t outl = 0;

	int n = snprintf(ts, sizeof(ts), "%lld.", (long long)t);
	if (c && EVP_MAC_init(c, (const unsigned char *)secret, strlen(secret), params) == 1 &&
	    EVP_MAC_update(c, (const unsigned char *)ts, (size_t)n) == 1 &&
	    EVP_MAC_update(c, (const unsigned char *)body, len) == 1 &&
	    EVP_MAC_final(c, mac, &outl, sizeof(mac)) == 1 && outl == 32) {
		ota_hex(mac, 32, out);
		rc = OTA_OK;
	}
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(m);
	return rc;
}
