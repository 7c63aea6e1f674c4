/*
 * crypto_openssl.c - the host implementation of the agent's crypto port (SHA-256 and ECDSA
 * P-256 verification) over OpenSSL, and the P-256 key handling (generation, PEM, SPKI, key
 * ids, signing) that ota-sign and otad share, so that both speak of keys the same way.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_CTX: a hash state without heap */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "fwa/crypto_openssl.h"

_Static_assert(sizeof(SHA256_CTX) <= sizeof(struct fwa_sha256), "fwa_sha256 too small");

#define PEM_FILE_MAX 65536

static enum fwa_err fail(const char **why, enum fwa_err err, const char *reason)
{
	if (why)
		*why = reason;
	return err;
}

static void sha_init(struct fwa_sha256 *h)
{
	SHA256_Init((SHA256_CTX *)(void *)h->opaque);
}

static void sha_update(struct fwa_sha256 *h, const void *data, size_t len)
{
	SHA256_Update((SHA256_CTX *)(void *)h->opaque, data, len);
}

static void sha_final(struct fwa_sha256 *h, uint8_t out[32])
{
	SHA256_Final(out, (SHA256_CTX *)(void *)h->opaque);
	OPENSSL_cleanse(h->opaque, sizeof(h->opaque));
}

static bool is_p256(EVP_PKEY *pkey)
{
	char group[64];
	size_t n = 0;

	if (!EVP_PKEY_is_a(pkey, "EC"))
		return false;
	if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
	                                    &n))
		return false;
	return strcmp(group, "prime256v1") == 0;
}

static enum fwa_err p256_verify(const uint8_t spki[FWA_SPKI_P256_LEN], const uint8_t digest[32],
                                const uint8_t *sig, size_t sig_len)
{
	const unsigned char *p = spki;
	EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, FWA_SPKI_P256_LEN);
	EVP_PKEY_CTX *ctx = NULL;
	enum fwa_err err = FWA_ERR_KEY;

	if (!pkey || p != spki + FWA_SPKI_P256_LEN || !is_p256(pkey))
		goto out;
	err = FWA_ERR_CRYPTO;
	ctx = EVP_PKEY_CTX_new(pkey, NULL);
	if (!ctx || EVP_PKEY_verify_init(ctx) != 1)
		goto out;
	/* 0 is a wrong signature, < 0 one that does not even decode: both are just invalid. */
	err = EVP_PKEY_verify(ctx, sig, sig_len, digest, 32) == 1 ? FWA_OK : FWA_ERR_SIGNATURE;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	return err;
}

static const struct fwa_crypto port = {
    .sha256_init = sha_init,
    .sha256_update = sha_update,
    .sha256_final = sha_final,
    .p256_verify = p256_verify,
};

const struct fwa_crypto *fwa_crypto_openssl(void)
{
	return &port;
}

enum fwa_err ota_key_spki(EVP_PKEY *pkey, uint8_t spki[FWA_SPKI_P256_LEN], const char **why)
{
	unsigned char *der = NULL;
	enum fwa_err err = FWA_ERR_KEY;
	int n;

	if (!pkey || !is_p256(pkey))
		return fail(why, FWA_ERR_KEY, "not an ECDSA P-256 key");
	/* Keys read from PEM may carry a compressed point; ids are over the uncompressed SPKI. */
	if (!EVP_PKEY_set_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	                                    "uncompressed"))
		goto out;
	n = i2d_PUBKEY(pkey, &der);
	if (n != FWA_SPKI_P256_LEN)
		goto out;
	memcpy(spki, der, FWA_SPKI_P256_LEN);
	err = FWA_OK;
out:
	OPENSSL_free(der);
	ERR_clear_error();
	if (err)
		return fail(why, err, "cannot encode the P-256 public key");
	return FWA_OK;
}

void ota_key_id(const struct fwa_crypto *c, const uint8_t spki[FWA_SPKI_P256_LEN],
                char id[FWA_KEYID_HEX_LEN + 1])
{
	uint8_t d[32];

	fwa_sha256(c, spki, FWA_SPKI_P256_LEN, d);
	fwa_hex(d, 32, id);
}

enum fwa_err ota_key_public_from_pem(const char *pem, size_t len, uint8_t spki[FWA_SPKI_P256_LEN],
                                     const char **why)
{
	BIO *bio = NULL;
	EVP_PKEY *pkey = NULL;
	enum fwa_err err;

	if (len > PEM_FILE_MAX)
		return fail(why, FWA_ERR_TOO_LARGE, "public key file over 64 KiB");
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio) {
		err = fail(why, FWA_ERR_CRYPTO, "out of memory");
		goto out;
	}
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (!pkey) {
		err = fail(why, FWA_ERR_MALFORMED, "not a PEM public key");
		goto out;
	}
	err = ota_key_spki(pkey, spki, why);
out:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	ERR_clear_error();
	return err;
}

/* Read a whole small file; *len bytes plus a NUL. The caller frees *out. */
static enum fwa_err read_small(const char *path, char **out, size_t *len, const char **why)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;
	enum fwa_err err;

	if (!f)
		return fail(why, FWA_ERR_MALFORMED, "cannot open the key file");
	buf = malloc(PEM_FILE_MAX + 1);
	if (!buf) {
		err = fail(why, FWA_ERR_CRYPTO, "out of memory");
		goto out;
	}
	n = fread(buf, 1, PEM_FILE_MAX + 1, f);
	if (ferror(f)) {
		err = fail(why, FWA_ERR_MALFORMED, "cannot read the key file");
		goto out;
	}
	if (n > PEM_FILE_MAX) {
		err = fail(why, FWA_ERR_TOO_LARGE, "key file over 64 KiB");
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
	err = FWA_OK;
out:
	free(buf);
	fclose(f);
	return err;
}

enum fwa_err ota_key_load_public(const char *path, uint8_t spki[FWA_SPKI_P256_LEN],
                                 const char **why)
{
	char *buf = NULL;
	size_t len;
	enum fwa_err err = read_small(path, &buf, &len, why);

	if (err)
		return err;
	err = ota_key_public_from_pem(buf, len, spki, why);
	free(buf);
	return err;
}

enum fwa_err ota_key_load_private(const char *path, const char *passphrase, EVP_PKEY **out,
                                  const char **why)
{
	char *buf = NULL;
	size_t len;
	BIO *bio = NULL;
	EVP_PKEY *pkey = NULL;
	enum fwa_err err = read_small(path, &buf, &len, why);

	if (err)
		return err;
	bio = BIO_new_mem_buf(buf, (int)len);
	if (!bio) {
		err = fail(why, FWA_ERR_CRYPTO, "out of memory");
		goto out;
	}
	/* An empty passphrase (never NULL) keeps OpenSSL from prompting on the terminal. */
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)(passphrase ? passphrase : ""));
	if (!pkey) {
		err = fail(why, FWA_ERR_KEY,
		           passphrase
		               ? "not a PEM private key, or wrong passphrase"
		               : "not a PEM private key, or encrypted (give --passphrase-file)");
		goto out;
	}
	if (!is_p256(pkey)) {
		err = fail(why, FWA_ERR_KEY, "not an ECDSA P-256 private key");
		goto out;
	}
	*out = pkey;
	pkey = NULL;
	err = FWA_OK;
out:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	if (buf)
		OPENSSL_cleanse(buf, len);
	free(buf);
	ERR_clear_error();
	return err;
}

enum fwa_err ota_key_generate(EVP_PKEY **out)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");

	ERR_clear_error();
	if (!pkey)
		return FWA_ERR_CRYPTO;
	*out = pkey;
	return FWA_OK;
}

static enum fwa_err bio_to_string(BIO *bio, char **out, size_t *len)
{
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	char *s;

	if (n <= 0)
		return FWA_ERR_CRYPTO;
	s = OPENSSL_malloc((size_t)n + 1);
	if (!s)
		return FWA_ERR_CRYPTO;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	*out = s;
	*len = (size_t)n;
	return FWA_OK;
}

enum fwa_err ota_key_public_pem(EVP_PKEY *pkey, char **out, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	enum fwa_err err = FWA_ERR_CRYPTO;

	if (bio && PEM_write_bio_PUBKEY(bio, pkey) == 1)
		err = bio_to_string(bio, out, len);
	BIO_free(bio);
	ERR_clear_error();
	return err;
}

/* PBKDF2-HMAC-SHA256 rounds for encrypted keys: OpenSSL's default (2048) is too few for keys
 * that guard a fleet; this costs a fraction of a second per signing session. */
#define KEY_PBKDF2_ITER 600000

enum fwa_err ota_key_private_pem(EVP_PKEY *pkey, const char *passphrase, char **out, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	X509_ALGOR *pbe = NULL;
	X509_SIG *enc = NULL;
	enum fwa_err err = FWA_ERR_CRYPTO;
	int ok;

	if (!bio)
		goto out;
	if (!passphrase) {
		ok = PEM_write_bio_PKCS8PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
	} else {
		/* PKCS#5 v2: AES-256-CBC, key from PBKDF2-HMAC-SHA256 with a random salt. */
		p8 = EVP_PKEY2PKCS8(pkey);
		pbe = PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), KEY_PBKDF2_ITER, NULL, 0, NULL,
		                        NID_hmacWithSHA256);
		if (!p8 || !pbe)
			goto out;
		enc = PKCS8_set0_pbe(passphrase, (int)strlen(passphrase), p8, pbe);
		if (!enc)
			goto out;
		pbe = NULL; /* owned by enc now */
		ok = PEM_write_bio_PKCS8(bio, enc);
	}
	if (ok == 1)
		err = bio_to_string(bio, out, len);
out:
	X509_SIG_free(enc);
	X509_ALGOR_free(pbe);
	PKCS8_PRIV_KEY_INFO_free(p8);
	BIO_free(bio);
	ERR_clear_error();
	return err;
}

enum fwa_err ota_key_sign_digest(EVP_PKEY *pkey, const uint8_t digest[32], uint8_t sig[FWA_SIG_MAX],
                                 size_t *len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
	size_t n = FWA_SIG_MAX;
	enum fwa_err err = FWA_ERR_CRYPTO;

	if (!ctx || EVP_PKEY_sign_init(ctx) != 1)
		goto out;
	if (EVP_PKEY_sign(ctx, sig, &n, digest, 32) != 1)
		goto out;
	*len = n;
	err = FWA_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return err;
}
