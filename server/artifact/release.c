/*
 * artifact/release.c - the server's trusted root (configured root file, then the stored newer
 * roots, each step a TUF rotation checked by the shared verifier) and release registration:
 * a manifest envelope verified against that root and bound to an uploaded image.
 */
#include "artifact/artifact.h"
#include "artifact/delta.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "fwa/crypto_openssl.h"
#include "fwa/verify.h"

struct ota_trust {
	pthread_mutex_t lock;
	bool configured;
	struct fwa_root root;
};

struct walk {
	struct ota_trust *t;
	struct fwa_verify_scratch *s;
	const char *why;
	uint32_t failed_version;
};

static int apply_root(void *ctx, uint32_t version, const char *envelope)
{
	struct walk *w = ctx;
	struct fwa_root next;

	if (fwa_root_update(fwa_crypto_openssl(), &w->t->root, envelope, strlen(envelope), &next,
	                    w->s, &w->why) != FWA_OK) {
		w->failed_version = version;
		return 1;
	}
	w->t->root = next;
	return 0;
}

enum ota_err ota_trust_open(struct ota_store *st, const char *root_path, struct ota_trust **out,
                            char *msg, size_t msglen)
{
	enum ota_err rc = OTA_ERR_NOMEM;
	struct ota_trust *t = calloc(1, sizeof(*t));
	struct fwa_verify_scratch *s = malloc(sizeof(*s));
	char *json = NULL;
	size_t len = 0;
	const char *why = NULL;

	*out = NULL;
	if (!t || !s)
		goto out;
	pthread_mutex_init(&t->lock, NULL);
	if (!root_path || !*root_path) {
		*out = t;
		t = NULL;
		rc = OTA_OK;
		goto out;
	}
	json = ota_file_read(root_path, FWA_ENVELOPE_MAX, &len);
	if (!json) {
		snprintf(msg, msglen, "%s: cannot read (or over %d bytes): %s", root_path,
		         FWA_ENVELOPE_MAX, strerror(errno));
		rc = OTA_ERR_IO;
		goto out;
	}
	if (fwa_root_load(fwa_crypto_openssl(), json, len, &t->root, s, &why) != FWA_OK) {
		snprintf(msg, msglen, "%s: not a valid root: %s", root_path, why);
		rc = OTA_ERR_VERIFY;
		goto out;
	}
	rc = ota_store_root_put(st, t->root.version, json, (int64_t)time(NULL));
	if (rc == OTA_ERR_CONFLICT) {
		snprintf(msg, msglen,
		         "%s: root version %u differs from the version %u stored in the database",
		         root_path, t->root.version, t->root.version);
		goto out;
	}
	if (rc != OTA_OK) {
		snprintf(msg, msglen, "cannot store the trusted root");
		goto out;
	}
	struct walk w = {.t = t, .s = s};
	rc = ota_store_roots_after(st, t->root.version, apply_root, &w);
	if (rc == OTA_ERR_INVALID) {
		snprintf(msg, msglen, "stored root version %u does not follow version %u: %s",
		         w.failed_version, t->root.version, w.why);
		rc = OTA_ERR_VERIFY;
		goto out;
	}
	if (rc != OTA_OK) {
		snprintf(msg, msglen, "cannot read the stored roots");
		goto out;
	}
	t->configured = true;
	log_info("trust: root version %u", t->root.version);
	*out = t;
	t = NULL;
out:
	free(json);
	free(s);
	ota_trust_free(t);
	return rc;
}

void ota_trust_free(struct ota_trust *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t);
}

bool ota_trust_snapshot(struct ota_trust *t, struct fwa_root *out)
{
	pthread_mutex_lock(&t->lock);
	bool configured = t->configured;
	if (configured)
		*out = t->root;
	pthread_mutex_unlock(&t->lock);
	return configured;
}

uint32_t ota_trust_version(struct ota_trust *t)
{
	pthread_mutex_lock(&t->lock);
	uint32_t v = t->configured ? t->root.version : 0;
	pthread_mutex_unlock(&t->lock);
	return v;
}

enum ota_err ota_trust_add_root(struct ota_trust *t, struct ota_store *st, const char *json,
                                size_t len, uint32_t *version, const char **why)
{
	enum ota_err rc = OTA_ERR_NOMEM;
	struct fwa_verify_scratch *s = malloc(sizeof(*s));
	struct fwa_root next;
	char *copy = NULL;

	pthread_mutex_lock(&t->lock);
	if (!s)
		goto out;
	if (!t->configured) {
		*why = "no trusted root is configured";
		rc = OTA_ERR_CONFLICT;
		goto out;
	}
	if (len > FWA_ENVELOPE_MAX) {
		*why = "envelope over 16 KiB";
		rc = OTA_ERR_TOO_LARGE;
		goto out;
	}
	if (fwa_root_update(fwa_crypto_openssl(), &t->root, json, len, &next, s, why) != FWA_OK) {
		rc = OTA_ERR_VERIFY;
		goto out;
	}
	copy = strndup(json, len);
	if (!copy)
		goto out;
	rc = ota_store_root_put(st, next.version, copy, (int64_t)time(NULL));
	if (rc != OTA_OK) {
		*why = "the root could not be stored";
		goto out;
	}
	t->root = next;
	*version = next.version;
	log_notice("trust: root version %u is now trusted", next.version);
out:
	pthread_mutex_unlock(&t->lock);
	free(copy);
	free(s);
	return rc;
}

enum ota_err ota_release_register(struct ota_trust *t, struct ota_store *st, struct ota_images *im,
                                  const char *json, size_t len, const char *image_sha256,
                                  int64_t now, struct ota_release *out, bool *existed,
                                  const char **why)
{
	enum ota_err rc = OTA_ERR_NOMEM;
	struct fwa_verify_scratch *s = malloc(sizeof(*s));
	struct fwa_manifest m;
	struct fwa_root root;
	char *copy = NULL;
	char hex[65];
	uint64_t size = 0;
	uint8_t sha[32];
	bool configured;
	int fd = -1;

	*existed = false;
	if (!s)
		goto out;
	pthread_mutex_lock(&t->lock);
	configured = t->configured;
	root = t->root;
	pthread_mutex_unlock(&t->lock);
	if (!configured) {
		*why = "no trusted root is configured ([trust] root)";
		rc = OTA_ERR_CONFLICT;
		goto out;
	}
	if (len > FWA_ENVELOPE_MAX) {
		*why = "manifest envelope over 16 KiB";
		rc = OTA_ERR_TOO_LARGE;
		goto out;
	}
	rc = OTA_ERR_VERIFY;
	if (fwa_root_check_expiry(&root, (int64_t)now, why) != FWA_OK)
		goto out;
	if (fwa_manifest_verify(fwa_crypto_openssl(), &root, json, len, &m, s, why) != FWA_OK)
		goto out;
	fwa_hex(m.image_sha256, 32, hex);
	if (!image_sha256)
		image_sha256 = hex;
	if (!ota_sha256_hex_valid(image_sha256)) {
		*why = "the image must be named by its lowercase hex SHA-256";
		rc = OTA_ERR_NOT_FOUND;
		goto out;
	}
	rc = ota_store_image_get(st, image_sha256, &size);
	if (rc == OTA_ERR_NOT_FOUND) {
		*why = "no uploaded image has this SHA-256";
		goto out;
	}
	if (rc != OTA_OK) {
		*why = "the image could not be looked up";
		goto out;
	}
	/* The file is what devices will get: its size must be what the database says. */
	uint64_t disk = 0;
	rc = ota_images_open_file(im, image_sha256, &fd, &disk);
	if (rc != OTA_OK || disk != size) {
		*why = "the image file is missing or damaged";
		rc = rc == OTA_OK ? OTA_ERR_IO : rc;
		goto out;
	}
	if (fwa_unhex(image_sha256, 64, sha) != FWA_OK) {
		*why = "bad image hash";
		rc = OTA_ERR_NOT_FOUND;
		goto out;
	}
	if (fwa_manifest_check_image(&m, size, sha, why) != FWA_OK) {
		rc = OTA_ERR_MISMATCH;
		goto out;
	}
	memset(out, 0, sizeof(*out));
	fwa_hex(m.digest, 32, out->id);
	snprintf(out->name, sizeof(out->name), "%s", m.name);
	snprintf(out->version, sizeof(out->version), "%s", m.version);
	out->security_version = m.security_version;
	snprintf(out->image_sha256, sizeof(out->image_sha256), "%s", image_sha256);
	out->image_size = size;
	snprintf(out->image_format, sizeof(out->image_format), "%s", m.image_format);
	out->manifest_created = m.created;
	out->nhw = m.nhw > 8 ? 8 : m.nhw;
	for (unsigned i = 0; i < out->nhw; i++)
		snprintf(out->hw[i], sizeof(out->hw[i]), "%s", m.hw[i]);
	out->created_at = now;
	copy = strndup(json, len);
	rc = OTA_ERR_NOMEM;
	if (!copy)
		goto out;
	rc = ota_store_release_add(st, out, copy, now, existed);
	if (rc == OTA_ERR_CONFLICT)
		*why = "another release has this name and version";
	else if (rc != OTA_OK)
		*why = "the release could not be stored";
out:
	if (fd >= 0)
		close(fd);
	free(copy);
	free(s);
	return rc;
}
