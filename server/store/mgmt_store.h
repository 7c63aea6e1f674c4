/*
 * store/mgmt_store.h - what the management API keeps beside the device path: principals and
 * API tokens, the device life cycle (admission, decommissioning, re-provisioning, tags),
 * device listing with filters and cursor pages, a device's deployment history, and deleting
 * unused releases and images.
 *
 * Same rules as store.h: one handle, calls serialised, each writing call one transaction, or
 * joining the caller's (ota_store_tx_begin()) so that the caller appends its audit entry in
 * the same transaction. Errors: OTA_ERR_NOT_FOUND, OTA_ERR_CONFLICT (exists already, or a state
 * rule forbids it), OTA_ERR_INVALID, OTA_ERR_DB, OTA_ERR_NOMEM.
 */
#ifndef OTA_STORE_MGMT_H
#define OTA_STORE_MGMT_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* ---- principals and tokens ---- */

struct ota_principal {
	char name[OTA_ID_MAX + 1];
	char role[16]; /* admin | operator | auditor */
	bool disabled;
	int64_t created_at;
	char created_by[OTA_ID_MAX + 1];
};

/* OTA_ERR_CONFLICT when the name exists. */
OTA_WUR enum ota_err ota_store_principal_add(struct ota_store *st, const char *name,
                                             const char *role, const char *by, int64_t now);
OTA_WUR enum ota_err ota_store_principal_get(struct ota_store *st, const char *name,
                                             struct ota_principal *out);
/* Disable (or enable) a principal: its tokens stop working, its certificate is refused. */
OTA_WUR enum ota_err ota_store_principal_set_disabled(struct ota_store *st, const char *name,
                                                      bool disabled);
/*
 * Calls fn for the principals by name with name > after (NULL: from the first), at most
 * `limit` (1..1000, else OTA_ERR_INVALID). *more when others follow the last one delivered.
 */
OTA_WUR enum ota_err ota_store_principal_list(struct ota_store *st, const char *after,
                                              unsigned limit,
                                              void (*fn)(void *ctx, const struct ota_principal *p),
                                              void *ctx, bool *more);

struct ota_token {
	char id[24]; /* "t-" and 16 hex digits */
	char principal[OTA_ID_MAX + 1];
	char role[16]; /* the principal's */
	bool principal_disabled;
	int64_t created_at, expires_at, revoked_at; /* revoked_at 0 when not revoked */
	char created_by[OTA_ID_MAX + 1];
};

/* Record a token by the hex SHA-256 of its secret. OTA_ERR_NOT_FOUND: no such principal. */
OTA_WUR enum ota_err ota_store_token_add(struct ota_store *st, const char *id,
                                         const char *principal, const char *hash,
                                         int64_t expires_at, const char *by, int64_t now);
/* The token whose secret hashes to `hash`. OTA_ERR_NOT_FOUND when none. */
OTA_WUR enum ota_err ota_store_token_by_hash(struct ota_store *st, const char *hash,
                                             struct ota_token *out);
OTA_WUR enum ota_err ota_store_token_get(struct ota_store *st, const char *id,
                                         struct ota_token *out);
/* OTA_ERR_CONFLICT when revoked already. */
OTA_WUR enum ota_err ota_store_token_revoke(struct ota_store *st, const char *id, int64_t now);
/*
 * Calls fn for the tokens, oldest first (created_at, then id), that follow `after` (NULL: from
 * the oldest), at most `limit` (1..1000, else OTA_ERR_INVALID). *more when others follow.
 */
OTA_WUR enum ota_err ota_store_token_list(struct ota_store *st, const struct ota_store_key *after,
                                          unsigned limit,
                                          void (*fn)(void *ctx, const struct ota_token *t),
                                          void *ctx, bool *more);

/* ---- devices ---- */

/* The documented limits of a device's tags (docs/openapi.yaml): how many, and the length of
 * one; ota_device_info holds them all, so nothing is cut in an answer or an audit state. */
#define OTA_DEVICE_TAGS_MAX 32
#define OTA_DEVICE_TAG_LEN 64

/* A device with its management state. */
struct ota_device_info {
	struct ota_device d;
	char admission[16]; /* pending | approved | rejected */
	int64_t admitted_at;
	/* comma-separated, sorted */
	char tags[OTA_DEVICE_TAGS_MAX * (OTA_DEVICE_TAG_LEN + 1)];
};

OTA_WUR enum ota_err ota_store_device_info(struct ota_store *st, const char *id,
                                           struct ota_device_info *out);

/*
 * Register a device before it connects (admission policy "preregistered", or to approve ahead
 * of time): admission approved; `fingerprint` may be "" (pinned by its first request
 * that succeeds, auth.h).
 * OTA_ERR_CONFLICT when the id exists; OTA_ERR_FORBIDDEN when `fingerprint` is pinned to
 * another device (one device per certificate). Either changes nothing.
 */
OTA_WUR enum ota_err ota_store_device_register(struct ota_store *st, const char *id,
                                               const char *fingerprint, const char *admission,
                                               int64_t now);
/* Pin `fingerprint` for a device registered without one. OTA_ERR_CONFLICT when pinned. */
OTA_WUR enum ota_err ota_store_device_pin(struct ota_store *st, const char *id,
                                          const char *fingerprint);
/* admission: pending | approved | rejected. */
OTA_WUR enum ota_err ota_store_device_set_admission(struct ota_store *st, const char *id,
                                                    const char *admission);
/* status: admitted | decommissioned. The device's active deployment is the deployment
 * service's to end (ota_deploy_cancel_active(), in the same transaction). */
OTA_WUR enum ota_err ota_store_device_set_status(struct ota_store *st, const char *id,
                                                 const char *status);
/* Pin a new certificate fingerprint (re-provisioning): status admitted again.
 * OTA_ERR_CONFLICT (nothing changed) when it is pinned to another device. */
OTA_WUR enum ota_err ota_store_device_set_fingerprint(struct ota_store *st, const char *id,
                                                      const char *fingerprint);
/* Replace the device's tags with tags[0..n). */
OTA_WUR enum ota_err ota_store_device_set_tags(struct ota_store *st, const char *id,
                                               const char *const *tags, unsigned n);

/* Filters of ota_store_device_list(); NULL / 0 do not filter. */
struct ota_device_filter {
	const char *after_id; /* the cursor: ids > after_id */
	const char *hw_variant, *version, *tag, *admission, *status, *rollout_id;
	int64_t seen_before, seen_after; /* last_seen < seen_before, last_seen >= seen_after */
	unsigned limit;                  /* 1..1000 */
};

/* Devices by id. *more when others match past the last delivered. */
OTA_WUR enum ota_err ota_store_device_list(struct ota_store *st, const struct ota_device_filter *f,
                                           void (*fn)(void *ctx, const struct ota_device_info *d),
                                           void *ctx, bool *more);

/* The device's deployments, newest first, at most `limit`. */
OTA_WUR enum ota_err
ota_store_device_deployments(struct ota_store *st, const char *id, unsigned limit,
                             void (*fn)(void *ctx, const struct ota_deployment *d), void *ctx);

/* ---- releases and images ---- */

/*
 * Delete a release no deployment and no rollout references (OTA_ERR_CONFLICT otherwise, with
 * *why naming the reference). OTA_ERR_NOT_FOUND when unknown.
 */
OTA_WUR enum ota_err ota_store_release_delete(struct ota_store *st, const char *id,
                                              const char **why);
/* Delete an image record no release references (OTA_ERR_CONFLICT otherwise). */
OTA_WUR enum ota_err ota_store_image_delete(struct ota_store *st, const char *sha256);
/* Calls fn for every image, by sha256, up to limit after the cursor `after` (may be NULL). */
OTA_WUR enum ota_err ota_store_image_list(struct ota_store *st, const char *after, unsigned limit,
                                          void (*fn)(void *ctx, const char *sha256, uint64_t size,
                                                     int64_t created_at, unsigned releases),
                                          void *ctx, bool *more);

#endif
