/*
 * artifact/delta.h - registering a delta of a release (docs/formats.md, "Delta metadata"): its
 * signed metadata verified against the server's trusted root with the verifier the devices
 * run, bound to the release it names and to an uploaded image holding the delta's bytes, whose
 * size, header and whole hash chain are checked against the metadata before it is stored.
 */
#ifndef OTA_ARTIFACT_DELTA_H
#define OTA_ARTIFACT_DELTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "artifact/artifact.h"
#include "fwa/verify.h"
#include "store/delta_store.h"

/*
 * A copy of the trusted root; false when none is configured (release.c). The copy is the
 * caller's and stays valid whatever rotates after.
 */
bool ota_trust_snapshot(struct ota_trust *t, struct fwa_root *out);

/*
 * Register the delta of release rel whose metadata envelope is (json, len) and whose bytes
 * are the uploaded image image_sha256 (the SHA-256 of the whole delta file). Errors, each
 * with *why: OTA_ERR_CONFLICT (no trusted root configured: *no_root; otherwise another delta
 * of the release has this base, or this metadata is stored for another release),
 * OTA_ERR_VERIFY / OTA_ERR_TOO_LARGE (the envelope fails verification or the root expired),
 * OTA_ERR_NOT_FOUND (no such image uploaded), OTA_ERR_MISMATCH (the metadata names another
 * release or image, or its size or hash chain differs from the file), OTA_ERR_IO,
 * OTA_ERR_DB / OTA_ERR_NOMEM. *existed when the same metadata was registered before (nothing
 * changes). *out is filled on OTA_OK. Nothing is changed on error.
 */
OTA_WUR enum ota_err ota_delta_register(struct ota_trust *t, struct ota_store *st,
                                        struct ota_images *im, const struct ota_release *rel,
                                        const char *json, size_t len, const char *image_sha256,
                                        int64_t now, struct ota_delta *out, bool *existed,
                                        bool *no_root, const char **why);

#endif
