/*
 * http/mgmt.h - what the management handlers (mgmt_*.c) share: auditing a change inside the
 * store transaction that makes it, query-string readers that refuse malformed values, and the
 * handlers' declarations for the route table. Not for use outside http/.
 *
 * The pattern of every changing handler:
 *   if (!ota_mgmt_begin(r)) return;              -- opens the store transaction
 *   e = ota_store_...(...);                      -- the change
 *   if (e == OTA_OK) e = ota_mgmt_audit(r, &entry);  -- its audit entry
 *   if (!ota_mgmt_end(r, e)) return;             -- commits both or neither; problem set
 */
#ifndef OTA_HTTP_MGMT_H
#define OTA_HTTP_MGMT_H

#include "audit/audit.h"
#include "deploy/deploy.h"
#include "http/internal.h"

/* Opens the store transaction; false (problem set) when it cannot. */
bool ota_mgmt_begin(struct ota_req *r);
/*
 * Appends e with the caller as actor (name, role; a token's id in object when e has none).
 * Inside ota_mgmt_begin/end.
 */
OTA_WUR enum ota_err ota_mgmt_audit(struct ota_req *r, struct ota_audit_entry *e);
/*
 * Commits when e == OTA_OK, else rolls back. Returns true when committed; false when rolled
 * back or the commit failed (then an internal problem is set unless one is set already).
 */
bool ota_mgmt_end(struct ota_req *r, enum ota_err e);

/* The caller as the deployment service's actor; buf holds its detail ("via token ..."). */
struct ota_actor ota_mgmt_actor(struct ota_req *r, char *buf, size_t cap);

/* Query parameter `name` or NULL. */
const char *ota_q(struct ota_req *r, const char *name);
/* Integer query parameter in [min, max], `def` when absent; false (problem set) if malformed. */
bool ota_q_int(struct ota_req *r, const char *name, int64_t min, int64_t max, int64_t def,
               int64_t *out);

/*
 * One page of a collection. Every collection GET reads `?limit=` (1..1000, default 100) and
 * `?cursor=` the same way and answers {"items": [...], "next_cursor": "<cursor>" | null}:
 *   struct ota_page p;
 *   if (!ota_page_open(r, &p, OTA_PAGE_AT_ID)) return;       -- problem set when malformed
 *   e = ota_store_..._list(st, p.after.id ? &p.after : NULL, p.limit, one, &p, &p.more);
 *       -- one() calls ota_page_add() for each item
 *   ota_page_send(r, &p, e, "releases");                     -- 200, or a problem when e failed
 * A cursor is opaque to clients: the key of the previous page's last item, in the form the
 * list's order needs (enum ota_page_key). It names a position, not an item, so an item
 * deleted in between does not break the walk.
 */
enum ota_page_key {
	OTA_PAGE_ID,    /* an id, name or SHA-256 ([A-Za-z0-9._-]{1,64}): after.id */
	OTA_PAGE_SEQ,   /* a sequence number "<n>": after.at */
	OTA_PAGE_AT_ID, /* a time and an id "<at>.<id>": after.at and after.id */
};

#define OTA_PAGE_CURSOR_MAX 96

struct ota_page {
	unsigned limit;             /* 1..1000 */
	struct ota_store_key after; /* the decoded cursor; id NULL and at 0 on the first page */
	bool more;                  /* set by the store: other items follow this page */
	/* Private to the helpers. */
	enum ota_page_key kind;
	json_t *items;
	bool nomem;
	char last[OTA_PAGE_CURSOR_MAX];
};

/* Reads limit and cursor into *p; false (invalid-field problem set) if either is malformed. */
bool ota_page_open(struct ota_req *r, struct ota_page *p, enum ota_page_key kind);
/*
 * Appends item (its reference is taken; NULL counts as out of memory) and remembers its key:
 * id (OTA_PAGE_ID), at (OTA_PAGE_SEQ), or both (OTA_PAGE_AT_ID).
 */
void ota_page_add(struct ota_page *p, json_t *item, int64_t at, const char *id);
/*
 * Answers the page (200) when e is OTA_OK and nothing ran out of memory; otherwise an
 * internal problem "cannot list <what>". Frees the items either way.
 */
void ota_page_send(struct ota_req *r, struct ota_page *p, enum ota_err e, const char *what);

/* mgmt_devices.c */
void ota_h_devices_list(struct ota_req *r);
void ota_h_device_register(struct ota_req *r);
void ota_h_device_show(struct ota_req *r);
void ota_h_device_approve(struct ota_req *r);
void ota_h_device_reject(struct ota_req *r);
void ota_h_device_decommission(struct ota_req *r);
void ota_h_device_reprovision(struct ota_req *r);
void ota_h_device_tags(struct ota_req *r);
/* mgmt_access.c */
void ota_h_principals_list(struct ota_req *r);
void ota_h_principal_create(struct ota_req *r);
void ota_h_principal_disable(struct ota_req *r);
void ota_h_principal_enable(struct ota_req *r);
void ota_h_tokens_list(struct ota_req *r);
void ota_h_token_create(struct ota_req *r);
void ota_h_token_revoke(struct ota_req *r);
/* mgmt_audit.c */
void ota_h_audit_query(struct ota_req *r);
void ota_h_audit_export(struct ota_req *r);
void ota_h_audit_verify(struct ota_req *r);
void ota_h_audit_pubkey(struct ota_req *r);
/* mgmt_artifacts.c */
void ota_h_images_list(struct ota_req *r);
void ota_h_image_delete(struct ota_req *r);
void ota_h_release_delete(struct ota_req *r);
/* mgmt_deltas.c */
void ota_h_delta_create(struct ota_req *r);
void ota_h_delta_list(struct ota_req *r);
void ota_h_delta_delete(struct ota_req *r);

#endif
