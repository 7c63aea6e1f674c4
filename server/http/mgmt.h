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

#endif
