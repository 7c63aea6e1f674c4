/*
 * http/request.c - what handlers answer with (internal.h): setting a problem, a JSON answer,
 * and reading typed fields of a JSON body, each refusal a problem naming the field. Kept apart
 * from server.c, which calls the handlers, so that no handler file and server.c use each
 * other's symbols.
 */
#include "http/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ota_req_fail(struct ota_req *r, enum ota_problem p, const char *fmt, ...)
{
	va_list ap;

	if (r->problem != OTA_P_NONE)
		return;
	r->problem = p;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
		va_end(ap);
	}
}

void ota_req_json(struct ota_req *r, unsigned status, json_t *j)
{
	json_decref(r->answer);
	r->answer = j;
	r->status = status;
}

bool ota_json_str(struct ota_req *r, json_t *obj, const char *key, bool required, size_t min,
                  size_t max, const char **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			ota_req_fail(r, OTA_P_INVALID_FIELD, "\"%s\" is required", key);
		return !required;
	}
	if (!json_is_string(v)) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "\"%s\" must be a string", key);
		return false;
	}
	size_t n = json_string_length(v);
	if (strlen(json_string_value(v)) != n) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "\"%s\" must not contain NUL", key);
		return false;
	}
	if (n < min || n > max) {
		if (min == max)
			ota_req_fail(r, OTA_P_INVALID_FIELD, "\"%s\" must be %zu characters", key,
			             min);
		else
			ota_req_fail(r, OTA_P_INVALID_FIELD, "\"%s\" must be %zu to %zu characters",
			             key, min, max);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

bool ota_json_uint(struct ota_req *r, json_t *obj, const char *key, bool required, uint64_t min,
                   uint64_t max, uint64_t *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v)) {
		if (required)
			ota_req_fail(r, OTA_P_INVALID_FIELD, "\"%s\" is required", key);
		return !required;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) < min || (uint64_t)json_integer_value(v) > max) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "\"%s\" must be an integer from %llu to %llu",
		             key, (unsigned long long)min, (unsigned long long)max);
		return false;
	}
	*out = (uint64_t)json_integer_value(v);
	return true;
}
