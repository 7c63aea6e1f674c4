/*
 * http/mgmt_access.c - principals and API tokens (admin only): list, create and disable
 * principals; create a token (its secret is in that one answer and nowhere else: the store
 * keeps its SHA-256), list tokens without secrets, revoke a token. Every change is audited in
 * the transaction that makes it; no audit entry ever holds a secret.
 */
#include "http/mgmt.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "store/mgmt_store.h"

/* A principal as every answer shows it: the list, and the writes that return it. */
static json_t *principal_json(const struct ota_principal *p)
{
	return json_pack("{s:s, s:s, s:b, s:I, s:s}", "name", p->name, "role", p->role, "disabled",
	                 p->disabled, "created_at", (json_int_t)p->created_at, "created_by",
	                 p->created_by);
}

static void principal_one(void *ctx, const struct ota_principal *p)
{
	ota_page_add(ctx, principal_json(p), 0, p->name);
}

/* Answers the principal `name` as stored, with status. */
static void principal_answer(struct ota_req *r, unsigned status, const char *name)
{
	struct ota_principal p;

	if (ota_store_principal_get(r->deps->store, name, &p) != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the principal back");
		return;
	}
	ota_req_json(r, status, principal_json(&p));
}

void ota_h_principals_list(struct ota_req *r)
{
	struct ota_page p;

	if (!ota_page_open(r, &p, OTA_PAGE_ID))
		return;
	ota_page_send(r, &p,
	              ota_store_principal_list(r->deps->store, p.after.id, p.limit, principal_one,
	                                       &p, &p.more),
	              "principals");
}

void ota_h_principal_create(struct ota_req *r)
{
	const char *name, *role;
	char after[160];
	enum ota_err e;

	if (!ota_json_str(r, r->json, "name", true, 1, OTA_ID_MAX, &name) ||
	    !ota_json_str(r, r->json, "role", true, 1, 16, &role))
		return;
	if (!ota_auth_name_valid(name)) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "\"name\" must be 1-64 of A-Z a-z 0-9 . _ -");
		return;
	}
	if (ota_auth_role_parse(role) == OTA_ROLE_NONE) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "\"role\" must be admin, operator or auditor");
		return;
	}
	if (!ota_mgmt_begin(r))
		return;
	e = ota_store_principal_add(r->deps->store, name, role, r->who->name, (int64_t)time(NULL));
	if (e == OTA_ERR_CONFLICT)
		ota_req_fail(r, OTA_P_CONFLICT, "principal %s exists already", name);
	if (e == OTA_OK) {
		snprintf(after, sizeof(after), "{\"name\":\"%s\",\"role\":\"%s\"}", name, role);
		struct ota_audit_entry a = {
		    .action = "principal.create", .object = name, .after = after};
		e = ota_mgmt_audit(r, &a);
	}
	if (!ota_mgmt_end(r, e))
		return;
	principal_answer(r, 201, name);
}

static void set_disabled(struct ota_req *r, bool disabled)
{
	const char *name = r->params[0];
	struct ota_principal p;
	enum ota_err e;

	if (!ota_auth_name_valid(name) ||
	    (e = ota_store_principal_get(r->deps->store, name, &p)) == OTA_ERR_NOT_FOUND) {
		ota_req_fail(r, OTA_P_NOT_FOUND, "no principal %s", name);
		return;
	}
	if (e != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the principal");
		return;
	}
	if (!ota_mgmt_begin(r))
		return;
	e = ota_store_principal_set_disabled(r->deps->store, name, disabled);
	if (e == OTA_OK) {
		struct ota_audit_entry a = {
		    .action = disabled ? "principal.disable" : "principal.enable",
		    .object = name,
		    .before = p.disabled ? "{\"disabled\":true}" : "{\"disabled\":false}",
		    .after = disabled ? "{\"disabled\":true}" : "{\"disabled\":false}"};
		e = ota_mgmt_audit(r, &a);
	}
	if (!ota_mgmt_end(r, e))
		return;
	principal_answer(r, 200, name);
}

void ota_h_principal_disable(struct ota_req *r)
{
	set_disabled(r, true);
}

void ota_h_principal_enable(struct ota_req *r)
{
	set_disabled(r, false);
}

static json_t *token_json(const struct ota_token *t)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:o, s:s}", "id", t->id, "principal",
	                 t->principal, "role", t->role, "created_at", (json_int_t)t->created_at,
	                 "expires_at", (json_int_t)t->expires_at, "revoked_at",
	                 t->revoked_at ? json_integer(t->revoked_at) : json_null(), "created_by",
	                 t->created_by);
}

static void token_one(void *ctx, const struct ota_token *t)
{
	ota_page_add(ctx, token_json(t), t->created_at, t->id);
}

void ota_h_tokens_list(struct ota_req *r)
{
	struct ota_page p;

	if (!ota_page_open(r, &p, OTA_PAGE_AT_ID))
		return;
	ota_page_send(r, &p,
	              ota_store_token_list(r->deps->store, p.after.id ? &p.after : NULL, p.limit,
	                                   token_one, &p, &p.more),
	              "tokens");
}

void ota_h_token_create(struct ota_req *r)
{
	const char *principal;
	uint64_t days = 0;
	char token[OTA_TOKEN_LEN + 1], id[24], hash[OTA_HEX256], after[200];
	int64_t now = (int64_t)time(NULL), expires;
	struct ota_principal p;
	struct ota_token t;
	enum ota_err e;

	if (!ota_json_str(r, r->json, "principal", true, 1, OTA_ID_MAX, &principal) ||
	    !ota_json_uint(r, r->json, "expires_in_days", true, 1, r->deps->cfg->token_max_days,
	                   &days))
		return;
	e = ota_auth_name_valid(principal) ? ota_store_principal_get(r->deps->store, principal, &p)
	                                   : OTA_ERR_NOT_FOUND;
	if (e == OTA_ERR_NOT_FOUND) {
		ota_req_fail(r, OTA_P_INVALID_FIELD,
		             "no principal %s (create it with POST /api/v1/principals)", principal);
		return;
	}
	if (e != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the principal");
		return;
	}
	if (p.disabled) {
		ota_req_fail(r, OTA_P_PRINCIPAL_DISABLED, "principal %s is disabled", principal);
		return;
	}
	if (ota_auth_token_new(token, id, hash) != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot make a token");
		return;
	}
	expires = now + (int64_t)days * 86400;
	if (!ota_mgmt_begin(r))
		goto out;
	e = ota_store_token_add(r->deps->store, id, principal, hash, expires, r->who->name, now);
	if (e == OTA_OK)
		e = ota_store_token_get(r->deps->store, id, &t);
	if (e == OTA_OK) {
		snprintf(after, sizeof(after),
		         "{\"id\":\"%s\",\"principal\":\"%s\",\"expires_at\":%lld}", id, principal,
		         (long long)expires);
		struct ota_audit_entry a = {.action = "token.create", .object = id, .after = after};
		e = ota_mgmt_audit(r, &a);
	}
	if (!ota_mgmt_end(r, e))
		goto out;
	json_t *j = token_json(&t);
	if (j)
		json_object_set_new(j, "token", json_string(token));
	ota_req_json(r, 201, j);
out:
	OPENSSL_cleanse(token, sizeof(token));
}

void ota_h_token_revoke(struct ota_req *r)
{
	const char *id = r->params[0];
	struct ota_token t;
	enum ota_err e;

	if (!ota_mgmt_begin(r))
		return;
	e = ota_store_token_revoke(r->deps->store, id, (int64_t)time(NULL));
	if (e == OTA_ERR_NOT_FOUND)
		ota_req_fail(r, OTA_P_NOT_FOUND, "no token %s", id);
	else if (e == OTA_ERR_CONFLICT)
		ota_req_fail(r, OTA_P_CONFLICT, "token %s is revoked already", id);
	if (e == OTA_OK)
		e = ota_store_token_get(r->deps->store, id, &t);
	if (e == OTA_OK) {
		struct ota_audit_entry a = {.action = "token.revoke",
		                            .object = id,
		                            .before = "{\"revoked\":false}",
		                            .after = "{\"revoked\":true}"};
		e = ota_mgmt_audit(r, &a);
	}
	if (!ota_mgmt_end(r, e))
		return;
	ota_req_json(r, 200, token_json(&t));
}
