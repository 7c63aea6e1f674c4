/*
 * artifact/delta.c - delta registration (artifact/delta.h): the metadata envelope verified
 * against the trusted root as a manifest is (fwa_delta_meta_verify, release keys and
 * threshold), checked against the release it must produce (fwa_delta_meta_check), and bound to
 * the uploaded delta file after walking the file's header and hash chain (docs/formats.md,
 * "Delta format fwad1"), so that a delta that no device could apply is never stored or offered.
 */
#include "artifact/delta.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fwa/crypto_openssl.h"
#include "fwa/delta.h"

static bool read_at(int fd, void *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * The delta file (fd, size bytes) against its metadata: the header's sizes and LZSS
 * parameters, every unit's SHA-256 along the chain from the metadata's head, and nothing
 * after the last unit. OTA_ERR_MISMATCH with *why, OTA_ERR_NOMEM.
 */
static enum ota_err check_file(int fd, uint64_t size, const struct fwa_delta_meta *m,
                               const char **why)
{
	const struct fwa_crypto *c = fwa_crypto_openssl();
	uint8_t hdr[FWA_DELTA_HEADER], expect[32], got[32];
	struct fwa_sha256 h;
	uint64_t off = FWA_DELTA_HEADER;
	uint8_t *unit = malloc(FWA_DELTA_UNIT_MAX);

	if (!unit)
		return OTA_ERR_NOMEM;
	enum ota_err rc = OTA_ERR_MISMATCH;
	if (size != m->delta_size) {
		*why = "the delta file's size differs from the metadata's delta.size";
		goto out;
	}
	if (size < FWA_DELTA_HEADER || !read_at(fd, hdr, sizeof(hdr), 0) ||
	    memcmp(hdr, FWA_DELTA_MAGIC, 4) != 0 || hdr[4] != FWA_DELTA_VERSION || hdr[7] != 0 ||
	    hdr[5] < FWA_DELTA_WINDOW_MIN || hdr[5] > FWA_DELTA_WINDOW_MAX ||
	    hdr[6] < FWA_DELTA_LOOKAHEAD_MIN || hdr[6] > hdr[5]) {
		*why = "the file is not an fwad1 delta (bad header)";
		goto out;
	}
	if (le32(hdr + 8) != m->base_size || le32(hdr + 12) != m->target_size) {
		*why = "the delta's header names other base or target sizes than the metadata";
		goto out;
	}
	memcpy(expect, m->delta_sha256, 32);
	uint32_t n = (m->target_size + FWA_DELTA_SECTOR - 1) / FWA_DELTA_SECTOR;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t lenb[2];
		if (off + 2 > size || !read_at(fd, lenb, 2, off)) {
			*why = "the delta file ends inside a unit";
			goto out;
		}
		uint64_t ulen =
		    2 + ((uint32_t)lenb[0] | (uint32_t)lenb[1] << 8) + (i + 1 < n ? 32 : 0);
		if (ulen + (i == 0 ? FWA_DELTA_HEADER : 0) > FWA_DELTA_UNIT_MAX) {
			*why = "a unit of the delta is over 8192 bytes";
			goto out;
		}
		if (off + ulen > size || !read_at(fd, unit, (size_t)ulen, off)) {
			*why = "the delta file ends inside a unit";
			goto out;
		}
		c->sha256_init(&h);
		if (i == 0)
			c->sha256_update(&h, hdr, sizeof(hdr));
		c->sha256_update(&h, unit, (size_t)ulen);
		c->sha256_final(&h, got);
		if (memcmp(got, expect, 32) != 0) {
			*why =
			    i == 0
			        ? "the delta's first unit differs from the metadata's delta.sha256"
			        : "a unit of the delta differs from its hash chain";
			goto out;
		}
		if (i + 1 < n)
			memcpy(expect, unit + ulen - 32, 32);
		off += ulen;
	}
	if (off != size) {
		*why = "the delta file has bytes after its last unit";
		goto out;
	}
	rc = OTA_OK;
out:
	free(unit);
	return rc;
}

enum ota_err ota_delta_register(struct ota_trust *t, struct ota_store *st, struct ota_images *im,
                                const struct ota_release *rel, const char *json, size_t len,
                                const char *image_sha256, int64_t now, struct ota_delta *out,
                                bool *existed, bool *no_root, const char **why)
{
	enum ota_err rc = OTA_ERR_NOMEM;
	struct fwa_verify_scratch *s = malloc(sizeof(*s));
	struct fwa_delta_meta dm;
	struct fwa_manifest m;
	struct fwa_root root;
	char *copy = NULL;
	uint64_t size = 0, disk = 0;
	int fd = -1;

	*existed = false;
	*no_root = false;
	if (!s)
		goto out;
	if (!ota_trust_snapshot(t, &root)) {
		*why = "no trusted root is configured ([trust] root)";
		*no_root = true;
		rc = OTA_ERR_CONFLICT;
		goto out;
	}
	if (len > FWA_ENVELOPE_MAX) {
		*why = "delta metadata envelope over 16 KiB";
		rc = OTA_ERR_TOO_LARGE;
		goto out;
	}
	rc = OTA_ERR_VERIFY;
	if (fwa_root_check_expiry(&root, now, why) != FWA_OK)
		goto out;
	if (fwa_delta_meta_verify(fwa_crypto_openssl(), &root, json, len, &dm, s, why) != FWA_OK)
		goto out;
	/* The release as the devices will check it: its digest and image. */
	memset(&m, 0, sizeof(m));
	if (fwa_unhex(rel->id, 64, m.digest) != FWA_OK ||
	    fwa_unhex(rel->image_sha256, 64, m.image_sha256) != FWA_OK) {
		*why = "the release's stored identity is not hex";
		rc = OTA_ERR_DB;
		goto out;
	}
	m.image_size = rel->image_size;
	rc = OTA_ERR_MISMATCH;
	if (fwa_delta_meta_check(&dm, &m, why) != FWA_OK)
		goto out;
	rc = ota_store_image_get(st, image_sha256, &size);
	if (rc == OTA_ERR_NOT_FOUND) {
		*why = "no uploaded image has this SHA-256 (upload the delta file first)";
		goto out;
	}
	if (rc != OTA_OK) {
		*why = "the image could not be looked up";
		goto out;
	}
	rc = ota_images_open_file(im, image_sha256, &fd, &disk);
	if (rc != OTA_OK || disk != size) {
		*why = "the delta file is missing or damaged";
		rc = rc == OTA_OK ? OTA_ERR_IO : rc;
		goto out;
	}
	rc = check_file(fd, size, &dm, why);
	if (rc != OTA_OK)
		goto out;
	memset(out, 0, sizeof(*out));
	fwa_hex(dm.digest, 32, out->id);
	snprintf(out->release_id, sizeof(out->release_id), "%s", rel->id);
	fwa_hex(dm.base_sha256, 32, out->base_sha256);
	out->base_size = dm.base_size;
	snprintf(out->image_sha256, sizeof(out->image_sha256), "%s", image_sha256);
	out->size = dm.delta_size;
	fwa_hex(dm.delta_sha256, 32, out->head_sha256);
	out->created_at = now;
	rc = OTA_ERR_NOMEM;
	copy = strndup(json, len);
	if (!copy)
		goto out;
	rc = ota_store_delta_add(st, out, copy, now, existed);
	if (rc == OTA_ERR_CONFLICT)
		*why = "another delta of the release is made from this base, or this metadata is "
		       "registered for another release";
	else if (rc == OTA_ERR_NOT_FOUND)
		*why = "the release or the image is gone";
	else if (rc != OTA_OK)
		*why = "the delta could not be stored";
out:
	if (fd >= 0)
		close(fd);
	free(copy);
	free(s);
	return rc;
}
