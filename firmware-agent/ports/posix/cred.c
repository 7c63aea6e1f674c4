/*
 * cred.c - device credential renewal on the POSIX port: a new P-256 key and its PKCS#10
 * request made by OpenSSL (never by hand), the issued certificate checked against that key,
 * both persisted crash-safely beside the pair in use, and the commit that makes them the pair
 * in use once the server accepted them (cred.h has the file protocol).
 */
#include "cred.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

static bool exists(const char *p)
{
	return access(p, F_OK) == 0;
}

static void sync_dir_of(const char *path)
{
	char copy[1040];
	int fd;

	snprintf(copy, sizeof(copy), "%s", path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* Write path all-or-nothing: PATH.tmp, fsync, rename, sync the directory. */
static enum fwa_err write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[1060];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return FWA_ERR_FLASH;
	bool ok = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return FWA_ERR_FLASH;
	}
	sync_dir_of(path);
	return FWA_OK;
}

static X509 *read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	return x;
}

static EVP_PKEY *read_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	return k;
}

void fwa_cred_init(struct fwa_cred *c, const char *cert, const char *key)
{
	snprintf(c->cert, sizeof(c->cert), "%s", cert);
	snprintf(c->key, sizeof(c->key), "%s", key);
	snprintf(c->cert_new, sizeof(c->cert_new), "%s.new", cert);
	snprintf(c->key_new, sizeof(c->key_new), "%s.new", key);
	fwa_cred_settle(c);
}

void fwa_cred_settle(struct fwa_cred *c)
{
	X509 *x;
	EVP_PKEY *k;

	if (exists(c->key_new) || !exists(c->cert_new))
		return;
	x = read_cert(c->cert_new);
	k = read_key(c->key);
	/* KEY already holds the new key: finish by moving the new certificate over CERT. */
	if (x && k && X509_check_private_key(x, k) == 1 && rename(c->cert_new, c->cert) == 0) {
		sync_dir_of(c->cert);
		fprintf(stderr, "ota-agent: finished the commit of a renewed certificate\n");
	}
	X509_free(x);
	EVP_PKEY_free(k);
}

bool fwa_cred_has_pending(const struct fwa_cred *c)
{
	return exists(c->cert_new) && exists(c->key_new);
}

static int64_t asn1_unix(const ASN1_TIME *t)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

enum fwa_err fwa_cred_lifetime(const struct fwa_cred *c, int64_t *not_before, int64_t *not_after,
                               bool *pending)
{
	X509 *x = read_cert(c->cert);

	if (!x)
		return FWA_ERR_CRYPTO;
	*not_before = asn1_unix(X509_get0_notBefore(x));
	*not_after = asn1_unix(X509_get0_notAfter(x));
	*pending = fwa_cred_has_pending(c);
	X509_free(x);
	return FWA_OK;
}

/* The pending key: KEY.new as it is, else a new one persisted before it is used. */
static EVP_PKEY *pending_key(struct fwa_cred *c)
{
	EVP_PKEY *k = read_key(c->key_new);
	BIO *b;
	char *data;
	long n;

	if (k)
		return k;
	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	b = BIO_new(BIO_s_mem());
	if (!k || !b || PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) != 1 ||
	    (n = BIO_get_mem_data(b, &data)) <= 0 ||
	    write_atomic(c->key_new, data, (size_t)n, 0600) != FWA_OK) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	BIO_free(b);
	return k;
}

enum fwa_err fwa_cred_csr(struct fwa_cred *c, char *buf, size_t cap, size_t *len)
{
	enum fwa_err err = FWA_ERR_CRYPTO;
	X509 *cur = read_cert(c->cert);
	EVP_PKEY *k = NULL;
	X509_REQ *req = X509_REQ_new();
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;

	/* A certificate issued for an older pending key is of no use any more. */
	unlink(c->cert_new);
	k = pending_key(c);
	if (!cur || !k || !req || !b || X509_REQ_set_version(req, 0) != 1 ||
	    X509_REQ_set_subject_name(req, X509_get_subject_name(cur)) != 1 ||
	    X509_REQ_set_pubkey(req, k) != 1 || X509_REQ_sign(req, k, EVP_sha256()) <= 0 ||
	    PEM_write_bio_X509_REQ(b, req) != 1 || (n = BIO_get_mem_data(b, &data)) <= 0)
		goto out;
	err = FWA_ERR_TOO_LARGE;
	if ((size_t)n >= cap)
		goto out;
	memcpy(buf, data, (size_t)n);
	buf[n] = '\0';
	*len = (size_t)n;
	err = FWA_OK;
out:
	BIO_free(b);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
	X509_free(cur);
	return err;
}

enum fwa_err fwa_cred_install(struct fwa_cred *c, const char *pem, size_t len)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	EVP_PKEY *k = read_key(c->key_new);
	enum fwa_err err = FWA_ERR_KEY;

	if (x && k && X509_check_private_key(x, k) == 1)
		err = write_atomic(c->cert_new, pem, len, 0644);
	X509_free(x);
	EVP_PKEY_free(k);
	BIO_free(b);
	return err;
}

enum fwa_err fwa_cred_commit(struct fwa_cred *c)
{
	if (!fwa_cred_has_pending(c))
		return FWA_OK;
	if (rename(c->key_new, c->key) != 0)
		return FWA_ERR_FLASH;
	sync_dir_of(c->key);
	if (rename(c->cert_new, c->cert) != 0)
		return FWA_ERR_FLASH;
	sync_dir_of(c->cert);
	return FWA_OK;
}
