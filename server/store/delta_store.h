/*
 * store/delta_store.h - deltas (schema/0060_deltas.sql): the signed metadata of each delta of
 * a release and what it says, which delta a deployment was last offered, and the failures and
 * refusals devices reported for a delta. A delta's bytes are an image (store.h, the image
 * folder); this table references it.
 *
 * Same rules as store.h: one handle, calls serialised, each writing call one transaction, or
 * joining the caller's (ota_store_tx_begin(), a group commit). The store applies and reads:
 * whether a delta is offered is the deployment service's decision (deploy/delta.h).
 * Errors: OTA_ERR_NOT_FOUND, OTA_ERR_CONFLICT, OTA_ERR_DB, OTA_ERR_NOMEM; nothing is changed
 * on error.
 */
#ifndef OTA_STORE_DELTA_H
#define OTA_STORE_DELTA_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

struct ota_delta {
	char id[OTA_HEX256]; /* SHA-256 of the metadata payload */
	char release_id[OTA_HEX256];
	char base_sha256[OTA_HEX256];
	uint64_t base_size;
	char image_sha256[OTA_HEX256]; /* the delta file, an image of the folder */
	uint64_t size;
	char head_sha256[OTA_HEX256]; /* the metadata's delta.sha256 */
	int64_t created_at;
	/* Read back only (ota_store_delta_get/list): reports counted. */
	uint64_t failed, refused; /* "delta failed" / "delta refused" reports */
	uint64_t devices_failed;  /* devices with at least one of either */
};

/*
 * Store a delta with its envelope (text, copied). *existed when this id is stored already
 * (nothing changes). OTA_ERR_CONFLICT: another delta of the release has this base;
 * OTA_ERR_NOT_FOUND: the release or the image is not stored.
 */
OTA_WUR enum ota_err ota_store_delta_add(struct ota_store *st, const struct ota_delta *d,
                                         const char *envelope, int64_t now, bool *existed);
/* The delta `id` of release release_id; *envelope (NULL: not wanted) is malloc'd. */
OTA_WUR enum ota_err ota_store_delta_get(struct ota_store *st, const char *release_id,
                                         const char *id, struct ota_delta *out, char **envelope);
/*
 * Calls fn for the deltas of release_id by id with id > after (NULL: from the first), at most
 * `limit` (1..1000). *more when others follow.
 */
OTA_WUR enum ota_err ota_store_delta_list(struct ota_store *st, const char *release_id,
                                          const char *after, unsigned limit,
                                          void (*fn)(void *ctx, const struct ota_delta *d),
                                          void *ctx, bool *more);
/* Delete a delta (its offers and failure counts with it; its image stays). NOT_FOUND. */
OTA_WUR enum ota_err ota_store_delta_delete(struct ota_store *st, const char *release_id,
                                            const char *id);

/*
 * The delta of release_id made from base_sha256, with *envelope (malloc'd) and *failed_here:
 * whether device_id reported it failed or refused. OTA_ERR_NOT_FOUND when there is none.
 */
OTA_WUR enum ota_err ota_store_delta_for_base(struct ota_store *st, const char *release_id,
                                              const char *base_sha256, const char *device_id,
                                              struct ota_delta *out, char **envelope,
                                              bool *failed_here);
/* The delta deployment_id was last offered: its id into delta_id. OTA_ERR_NOT_FOUND. */
OTA_WUR enum ota_err ota_store_delta_offered(struct ota_store *st, const char *deployment_id,
                                             char delta_id[OTA_HEX256]);
/* Record that deployment_id is offered delta_id now, or (delta_id NULL) nothing. */
OTA_WUR enum ota_err ota_store_delta_offer_set(struct ota_store *st, const char *deployment_id,
                                               const char *delta_id, int64_t now);
/* Count one report of kind "failed" or "refused" of delta_id by device_id, keeping reason. */
OTA_WUR enum ota_err ota_store_delta_failure_add(struct ota_store *st, const char *delta_id,
                                                 const char *device_id, const char *kind,
                                                 const char *deployment_id, const char *reason,
                                                 int64_t now);
/* Whether image sha256 is the file of the delta offered to device_id's active deployment. */
OTA_WUR enum ota_err ota_store_delta_image_allowed(struct ota_store *st, const char *device_id,
                                                   const char *sha256, bool *allowed);

#endif
