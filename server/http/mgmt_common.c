/*
 * http/mgmt_common.c - helpers of the management handlers (mgmt.h): a change and its audit
 * entry in one store transaction, strict query-string readers, and the route listing printed
 * by `otad --list-routes` (which the OpenAPI test compares with docs/openapi.yaml).
 */
#include "http/mgmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

bool ota_mgmt_begin(struct ota_req *r)
{
	if (ota_store_tx_begin(r->deps->store) != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot open a transaction");
		return false;
	}
	return true;
}

enum ota_err ota_mgmt_audit(struct ota_req *r, struct ota_audit_entry *e)
{
	char detail[OTA_AUDIT_TEXT_MAX / 2];

	e->actor = r->who->name;
	e->role = ota_auth_role_name(r->who->role);
	if (r->who->token_id[0]) {
		snprintf(detail, sizeof(detail), "%s%svia token %s", e->detail ? e->detail : "",
		         e->detail ? "; " : "", r->who->token_id);
		e->detail = detail;
	}
	return ota_audit_append(r->deps->store, e, (int64_t)time(NULL), NULL);
}

struct ota_actor ota_mgmt_actor(struct ota_req *r, char *buf, size_t cap)
{
	struct ota_actor a = {.name = r->who->name, .role = ota_auth_role_name(r->who->role)};

	if (r->who->token_id[0]) {
		snprintf(buf, cap, "via token %s", r->who->token_id);
		a.detail = buf;
	}
	return a;
}

bool ota_mgmt_end(struct ota_req *r, enum ota_err e)
{
	enum ota_err c = ota_store_tx_end(r->deps->store, e == OTA_OK);

	if (e == OTA_OK && c != OTA_OK)
		ota_req_fail(r, OTA_P_INTERNAL, "cannot commit the change");
	else if (e != OTA_OK && r->problem == OTA_P_NONE)
		ota_req_fail(r, OTA_P_INTERNAL, "the change failed: %s", ota_strerror(e));
	return e == OTA_OK && c == OTA_OK;
}

const char *ota_q(struct ota_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

bool ota_q_int(struct ota_req *r, const char *name, int64_t min, int64_t max, int64_t def,
               int64_t *out)
{
	const char *v = ota_q(r, name);
	char *end;
	long long n;

	*out = def;
	if (!v)
		return true;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno || end == v || *end || n < min || n > max) {
		ota_req_fail(r, OTA_P_INVALID_FIELD,
		             "query parameter %s must be an integer from %lld "
		             "to %lld",
		             name, (long long)min, (long long)max);
		return false;
	}
	*out = n;
	return true;
}

void ota_http_list_routes(FILE *f)
{
	for (size_t i = 0; i < ota_routes_count; i++)
		fprintf(f, "%s %s %s\n", ota_routes[i].method, ota_routes[i].pattern,
		        ota_routes[i].listener == OTA_L_DEVICE ? "device" : "management");
}
