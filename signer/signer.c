/*
 * signer.c - building what ota-sign signs (root and manifest payloads), wrapping payloads in
 * signed DSSE envelopes, and writing files so that a crash or a full disk never leaves a
 * partial or replaced file behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fwa/crypto_openssl.h"
#include "fwa/json.h"
#include "signer.h"

static enum fwa_err fail(const char **why, enum fwa_err err, const char *reason)
{
	if (why)
		*why = reason;
	return err;
}

static void jw_key_entry(struct fwa_jw *w, const uint8_t spki[FWA_SPKI_P256_LEN])
{
	char id[FWA_KEYID_HEX_LEN + 1];
	char b64[((FWA_SPKI_P256_LEN + 2) / 3) * 4 + 1];
	long n = fwa_base64_encode(spki, FWA_SPKI_P256_LEN, b64, sizeof(b64) - 1);

	b64[n < 0 ? 0 : n] = '\0';
	ota_key_id(fwa_crypto_openssl(), spki, id);
	fwa_jw_key(w, id);
	fwa_jw_obj_open(w);
	fwa_jw_str(w, "keytype", "ecdsa-p256");
	fwa_jw_str(w, "public", b64);
	fwa_jw_obj_close(w);
}

static void jw_role(struct fwa_jw *w, const char *name, unsigned n,
                    const uint8_t spki[][FWA_SPKI_P256_LEN], unsigned threshold)
{
	char id[FWA_KEYID_HEX_LEN + 1];

	fwa_jw_key(w, name);
	fwa_jw_obj_open(w);
	fwa_jw_arr_open(w, "keyids");
	for (unsigned i = 0; i < n; i++) {
		ota_key_id(fwa_crypto_openssl(), spki[i], id);
		fwa_jw_str(w, NULL, id);
	}
	fwa_jw_arr_close(w);
	fwa_jw_uint(w, "threshold", threshold);
	fwa_jw_obj_close(w);
}

enum fwa_err ota_signer_root_payload(const struct ota_root_spec *r, char *buf, size_t cap,
                                     size_t *len, const char **why)
{
	struct fwa_jw w;
	char t[21];
	long n;

	if (r->nroot == 0 || r->nroot > FWA_MAX_ROLE_KEYS || r->nrelease == 0 ||
	    r->nrelease > FWA_MAX_ROLE_KEYS)
		return fail(why, FWA_ERR_MALFORMED, "each role needs 1 to 8 keys");
	if (r->ntime > FWA_MAX_ROLE_KEYS || r->nserver_cas > FWA_MAX_SERVER_CAS)
		return fail(why, FWA_ERR_MALFORMED, "at most 8 time keys and 2 server CAs");
	fwa_time_format(r->expires, t);
	fwa_jw_init(&w, buf, cap);
	fwa_jw_obj_open(&w);
	fwa_jw_str(&w, "_type", "root");
	fwa_jw_str(&w, "spec_version", FWA_SPEC_VERSION);
	fwa_jw_uint(&w, "version", r->version);
	fwa_jw_str(&w, "expires", t);
	fwa_jw_key(&w, "keys");
	fwa_jw_obj_open(&w);
	for (unsigned i = 0; i < r->nroot; i++)
		jw_key_entry(&w, r->root_spki[i]);
	for (unsigned i = 0; i < r->nrelease; i++)
		jw_key_entry(&w, r->release_spki[i]);
	for (unsigned i = 0; i < r->ntime; i++)
		jw_key_entry(&w, r->time_spki[i]);
	fwa_jw_obj_close(&w);
	fwa_jw_key(&w, "roles");
	fwa_jw_obj_open(&w);
	jw_role(&w, "root", r->nroot, r->root_spki, r->root_threshold);
	jw_role(&w, "release", r->nrelease, r->release_spki, r->release_threshold);
	if (r->ntime)
		jw_role(&w, "time", r->ntime, r->time_spki, 1);
	fwa_jw_obj_close(&w);
	if (r->nserver_cas) {
		char hex[65];

		fwa_jw_arr_open(&w, "server_cas");
		for (unsigned i = 0; i < r->nserver_cas; i++) {
			fwa_hex(r->server_ca[i], 32, hex);
			fwa_jw_str(&w, NULL, hex);
		}
		fwa_jw_arr_close(&w);
	}
	fwa_jw_obj_close(&w);
	n = fwa_jw_end(&w);
	if (n < 0)
		return fail(why, FWA_ERR_TOO_LARGE, "root metadata over its size bound");
	*len = (size_t)n;
	return FWA_OK;
}

enum fwa_err ota_signer_manifest_payload(const struct ota_manifest_spec *m, char *buf, size_t cap,
                                         size_t *len, const char **why)
{
	struct fwa_jw w;
	char t[21], hex[65];
	long n;

	if (m->nhw > FWA_MAX_HW)
		return fail(why, FWA_ERR_MALFORMED, "more than 8 hardware variants");
	fwa_time_format(m->created, t);
	fwa_hex(m->image_sha256, 32, hex);
	fwa_jw_init(&w, buf, cap);
	fwa_jw_obj_open(&w);
	fwa_jw_str(&w, "_type", "manifest");
	fwa_jw_str(&w, "spec_version", FWA_SPEC_VERSION);
	fwa_jw_str(&w, "name", m->name);
	fwa_jw_str(&w, "version", m->version);
	fwa_jw_uint(&w, "security_version", m->security_version);
	fwa_jw_arr_open(&w, "hw_variants");
	for (unsigned i = 0; i < m->nhw; i++)
		fwa_jw_str(&w, NULL, m->hw[i]);
	fwa_jw_arr_close(&w);
	fwa_jw_key(&w, "image");
	fwa_jw_obj_open(&w);
	fwa_jw_uint(&w, "size", m->image_size);
	fwa_jw_str(&w, "sha256", hex);
	fwa_jw_str(&w, "format", m->format);
	fwa_jw_obj_close(&w);
	fwa_jw_str(&w, "created", t);
	fwa_jw_obj_close(&w);
	n = fwa_jw_end(&w);
	if (n < 0)
		return fail(why, FWA_ERR_TOO_LARGE, "manifest over its size bound");
	*len = (size_t)n;
	return FWA_OK;
}

static void sized_hash(struct fwa_jw *w, const char *key, uint32_t size, const uint8_t sha[32],
                       const char *format)
{
	char hex[65];

	fwa_hex(sha, 32, hex);
	fwa_jw_key(w, key);
	fwa_jw_obj_open(w);
	fwa_jw_uint(w, "size", size);
	fwa_jw_str(w, "sha256", hex);
	if (format)
		fwa_jw_str(w, "format", format);
	fwa_jw_obj_close(w);
}

enum fwa_err ota_signer_delta_payload(const struct ota_delta_spec *d, char *buf, size_t cap,
                                      size_t *len, const char **why)
{
	struct fwa_jw w;
	char t[21], hex[65];
	long n;

	fwa_time_format(d->created, t);
	fwa_hex(d->release_digest, 32, hex);
	fwa_jw_init(&w, buf, cap);
	fwa_jw_obj_open(&w);
	fwa_jw_str(&w, "_type", "delta");
	fwa_jw_str(&w, "spec_version", FWA_SPEC_VERSION);
	fwa_jw_str(&w, "release", hex);
	sized_hash(&w, "target", d->target_size, d->target_sha256, NULL);
	sized_hash(&w, "base", d->base_size, d->base_sha256, NULL);
	sized_hash(&w, "delta", d->delta_size, d->delta_sha256, FWA_DELTA_FORMAT);
	fwa_jw_str(&w, "created", t);
	fwa_jw_obj_close(&w);
	n = fwa_jw_end(&w);
	if (n < 0)
		return fail(why, FWA_ERR_TOO_LARGE, "delta metadata over its size bound");
	*len = (size_t)n;
	return FWA_OK;
}

enum fwa_err ota_signer_envelope(const char *type, const void *payload, size_t len,
                                 EVP_PKEY *const *keys, unsigned nkeys, char *out, size_t cap,
                                 size_t *outlen, const char **why)
{
	const struct fwa_crypto *c = fwa_crypto_openssl();
	enum fwa_err err = FWA_OK;
	uint8_t digest[32];
	struct fwa_jw w;
	char *b64 = NULL;
	size_t b64cap = (len + 2) / 3 * 4 + 1;
	long n;

	if (nkeys == 0 || nkeys > FWA_MAX_SIGS)
		return fail(why, FWA_ERR_MALFORMED, "an envelope needs 1 to 16 signing keys");
	b64 = malloc(b64cap);
	if (!b64)
		return fail(why, FWA_ERR_CRYPTO, "out of memory");
	n = fwa_base64_encode(payload, len, b64, b64cap - 1);
	b64[n < 0 ? 0 : n] = '\0';
	fwa_dsse_pae_digest(c, type, payload, len, digest);

	fwa_jw_init(&w, out, cap);
	fwa_jw_obj_open(&w);
	fwa_jw_str(&w, "payloadType", type);
	fwa_jw_str(&w, "payload", b64);
	fwa_jw_arr_open(&w, "signatures");
	for (unsigned i = 0; i < nkeys; i++) {
		uint8_t spki[FWA_SPKI_P256_LEN], sig[FWA_SIG_MAX];
		char id[FWA_KEYID_HEX_LEN + 1], sb64[((FWA_SIG_MAX + 2) / 3) * 4 + 1];
		size_t sl;
		long sn;

		err = ota_key_spki(keys[i], spki, why);
		if (err)
			goto out;
		ota_key_id(c, spki, id);
		err = ota_key_sign_digest(keys[i], digest, sig, &sl);
		if (err) {
			fail(why, err, "signing failed");
			goto out;
		}
		sn = fwa_base64_encode(sig, sl, sb64, sizeof(sb64) - 1);
		sb64[sn < 0 ? 0 : sn] = '\0';
		fwa_jw_obj_open(&w);
		fwa_jw_str(&w, "keyid", id);
		fwa_jw_str(&w, "sig", sb64);
		fwa_jw_obj_close(&w);
	}
	fwa_jw_arr_close(&w);
	fwa_jw_obj_close(&w);
	n = fwa_jw_end(&w);
	if (n < 0 || (size_t)n + 1 > cap) {
		err = fail(why, FWA_ERR_TOO_LARGE, "envelope over its size bound");
		goto out;
	}
	out[n] = '\n';
	*outlen = (size_t)n + 1;
out:
	free(b64);
	return err;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

enum fwa_err ota_signer_write_file(const char *path, const void *data, size_t len, mode_t mode,
                                   const char **why)
{
	char *dcopy = strdup(path), *bcopy = strdup(path);
	char *tmp = NULL;
	const char *dir, *base;
	enum fwa_err err = FWA_ERR_CRYPTO;
	int fd = -1;
	bool linked = false;

	if (!dcopy || !bcopy) {
		fail(why, err, "out of memory");
		goto out;
	}
	dir = dirname(dcopy);
	base = basename(bcopy);
	if (asprintf(&tmp, "%s/.%s.XXXXXX", dir, base) < 0) {
		tmp = NULL;
		fail(why, err, "out of memory");
		goto out;
	}
	err = FWA_ERR_STATE;
	fd = mkstemp(tmp);
	if (fd < 0) {
		free(tmp);
		tmp = NULL;
		fail(why, err, "cannot create a file in the output directory");
		goto out;
	}
	if (fchmod(fd, mode) != 0) {
		fail(why, err, "cannot set the file mode");
		goto out;
	}
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, (const char *)data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fail(why, err, "write failed (disk full?)");
			goto out;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		fail(why, err, "fsync failed");
		goto out;
	}
	fd = -1;
	/* link() refuses an existing name, where rename() would silently replace it. */
	if (link(tmp, path) != 0) {
		if (errno == EEXIST)
			fail(why, err = FWA_ERR_BUSY, "file exists; refusing to overwrite");
		else
			fail(why, err, "cannot create the output file");
		goto out;
	}
	linked = true;
	if (fsync_dir(dir) != 0) {
		fail(why, err, "cannot sync the output directory");
		goto out;
	}
	err = FWA_OK;
out:
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
	if (err && linked)
		unlink(path);
	free(tmp);
	free(dcopy);
	free(bcopy);
	return err;
}
