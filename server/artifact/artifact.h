/*
 * artifact/artifact.h - images on disk and the releases that name them.
 *
 * Images live in DATA/images/<sha256> (lowercase hex), written once: an upload streams into a
 * temporary file in DATA/images/.incoming while hashing, is fsync'ed, and is renamed into place
 * atomically, so a reader never sees a partial image and a crash leaves only a temporary file
 * (removed at the next start).
 *
 * Releases are registered from a signed manifest (DSSE envelope) that must verify against the
 * server's trusted root: the root file named in the configuration, advanced along the newer
 * roots stored in the database (TUF rotation, fwa_root_update), and must describe an uploaded
 * image exactly (size and SHA-256).
 */
#ifndef OTA_ARTIFACT_H
#define OTA_ARTIFACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "store/store.h"

struct ota_images;
struct ota_upload;
struct ota_trust;

/* Lowercase hex SHA-256, exactly 64 characters. */
bool ota_sha256_hex_valid(const char *s);

/*
 * Open the image folder DATA/images (created if absent, leftover temporary files removed).
 * Uploads are limited to max_size bytes. Frees with ota_images_free().
 */
OTA_WUR enum ota_err ota_images_open(const char *data_dir, uint64_t max_size,
                                     struct ota_images **out);
void ota_images_free(struct ota_images *im);

/* Start an upload (a new temporary file). OTA_ERR_IO when it cannot be created. */
OTA_WUR enum ota_err ota_upload_begin(struct ota_images *im, struct ota_upload **out);
/* Append bytes. OTA_ERR_TOO_LARGE past the limit (the upload is then only good to abort). */
OTA_WUR enum ota_err ota_upload_write(struct ota_upload *up, const void *data, size_t len);
/*
 * Make the image durable under its hash and free `up` (also on error). sha256 gets the hex
 * hash, *size the length. An image already present is kept and the upload discarded.
 */
OTA_WUR enum ota_err ota_upload_finish(struct ota_upload *up, char sha256[65], uint64_t *size);
/* Discard an upload and its temporary file; NULL is fine. */
void ota_upload_abort(struct ota_upload *up);

/*
 * The image folder's lock, held from placing an image's file to committing its record
 * (upload), and from deleting a record to removing its file (delete): the two are then
 * serialised, so that a delete never removes the file of a record an upload of the same bytes
 * just wrote. Take it before the store's transaction, never inside one.
 */
void ota_images_lock(struct ota_images *im);
void ota_images_unlock(struct ota_images *im);

/* Open image `sha256` read-only: *fd (the caller closes it) and *size. OTA_ERR_NOT_FOUND. */
/* Remove an image's file (after its record was deleted). OTA_ERR_NOT_FOUND, OTA_ERR_IO. */
OTA_WUR enum ota_err ota_images_remove(struct ota_images *im, const char *sha256);
OTA_WUR enum ota_err ota_images_open_file(struct ota_images *im, const char *sha256, int *fd,
                                          uint64_t *size);

/*
 * Load the trusted root: `root_path` (an envelope that verifies under its own root keys) is
 * stored in the database, then every stored newer root is applied in order. An empty
 * root_path means none configured: releases cannot be registered until a root is configured.
 * msg gets the reason on error (OTA_ERR_VERIFY, OTA_ERR_IO, OTA_ERR_CONFLICT, OTA_ERR_DB).
 */
OTA_WUR enum ota_err ota_trust_open(struct ota_store *st, const char *root_path,
                                    struct ota_trust **out, char *msg, size_t msglen);
void ota_trust_free(struct ota_trust *t);
/* The version of the trusted root, 0 when none is configured. */
uint32_t ota_trust_version(struct ota_trust *t);

/*
 * Add root version N+1 (DSSE envelope text) after verifying it against the current one; it is
 * stored and becomes the trusted root. OTA_ERR_VERIFY with *why, OTA_ERR_CONFLICT when no root
 * is configured, OTA_ERR_DB.
 */
OTA_WUR enum ota_err ota_trust_add_root(struct ota_trust *t, struct ota_store *st, const char *json,
                                        size_t len, uint32_t *version, const char **why);

/*
 * Register a release from its manifest envelope (json, len). image_sha256 names the uploaded
 * image it ships, or NULL for the one the manifest names. Errors, each with *why:
 * OTA_ERR_CONFLICT (no trusted root configured, or another release has this name and
 * version), OTA_ERR_VERIFY (the envelope fails verification or the root expired),
 * OTA_ERR_NOT_FOUND (no such image uploaded), OTA_ERR_MISMATCH (image size or hash differs
 * from the manifest), OTA_ERR_TOO_LARGE, OTA_ERR_DB / OTA_ERR_NOMEM. *existed when the same
 * manifest was registered before (nothing changes). *out is filled on OTA_OK.
 */
OTA_WUR enum ota_err ota_release_register(struct ota_trust *t, struct ota_store *st,
                                          struct ota_images *im, const char *json, size_t len,
                                          const char *image_sha256, int64_t now,
                                          struct ota_release *out, bool *existed, const char **why);

#endif
