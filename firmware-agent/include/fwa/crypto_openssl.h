/*
 * fwa/crypto_openssl.h - the host crypto port (struct fwa_crypto over OpenSSL) and the key
 * helpers the signer, the server and the POSIX agent share. Host only: links OpenSSL::Crypto
 * (CMake target fwa_crypto_openssl).
 *
 * Keys are ECDSA P-256 only. A key is named by its id: the lowercase hex SHA-256 of its
 * 91-byte DER SubjectPublicKeyInfo (uncompressed point). Functions that fail return an
 * fwa_err code and, when `why` is not NULL, set *why to a static one-line reason.
 */
#ifndef FWA_CRYPTO_OPENSSL_H
#define FWA_CRYPTO_OPENSSL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "fwa/verify.h"

/* The port: SHA-256 state lives in struct fwa_sha256 (no heap); verification by EVP. */
const struct fwa_crypto *fwa_crypto_openssl(void);

/*
 * The 91-byte DER SPKI of `pkey` (public or private). FWA_ERR_KEY when pkey is not an
 * ECDSA P-256 key. `pkey` stays the caller's.
 */
FWA_WUR enum fwa_err ota_key_spki(EVP_PKEY *pkey, uint8_t spki[FWA_SPKI_P256_LEN],
                                  const char **why);

/* Key id of an SPKI: 64 lowercase hex characters and a NUL. */
void ota_key_id(const struct fwa_crypto *c, const uint8_t spki[FWA_SPKI_P256_LEN],
                char id[FWA_KEYID_HEX_LEN + 1]);

/*
 * Parse a PEM public key ("BEGIN PUBLIC KEY") from memory, or read it from a file, into its
 * SPKI. FWA_ERR_MALFORMED when not a PEM public key, FWA_ERR_KEY when not P-256,
 * FWA_ERR_TOO_LARGE for a file over 64 KiB.
 */
FWA_WUR enum fwa_err ota_key_public_from_pem(const char *pem, size_t len,
                                             uint8_t spki[FWA_SPKI_P256_LEN], const char **why);
FWA_WUR enum fwa_err ota_key_load_public(const char *path, uint8_t spki[FWA_SPKI_P256_LEN],
                                         const char **why);

/*
 * Read a PKCS#8 PEM private key; `passphrase` (NUL-terminated, or NULL) decrypts an encrypted
 * one. On success *out is a new key the caller frees with EVP_PKEY_free(). FWA_ERR_KEY when
 * the file is not a P-256 private key or the passphrase is wrong or missing.
 */
FWA_WUR enum fwa_err ota_key_load_private(const char *path, const char *passphrase, EVP_PKEY **out,
                                          const char **why);

/* A fresh P-256 key pair; *out is the caller's (EVP_PKEY_free). FWA_ERR_CRYPTO on failure. */
FWA_WUR enum fwa_err ota_key_generate(EVP_PKEY **out);

/*
 * PEM of a key: the public key ("BEGIN PUBLIC KEY"), or the private key as PKCS#8, encrypted
 * with AES-256-CBC (PKCS#5 v2, PBKDF2-HMAC-SHA256 with 600,000 rounds) when `passphrase` is not
 * NULL. *out is a NUL-terminated string the caller frees with OPENSSL_free(); *len its length.
 */
FWA_WUR enum fwa_err ota_key_public_pem(EVP_PKEY *pkey, char **out, size_t *len);
FWA_WUR enum fwa_err ota_key_private_pem(EVP_PKEY *pkey, const char *passphrase, char **out,
                                         size_t *len);

/* DER ECDSA signature of a SHA-256 digest into sig[0..72); *len its length. */
FWA_WUR enum fwa_err ota_key_sign_digest(EVP_PKEY *pkey, const uint8_t digest[32],
                                         uint8_t sig[FWA_SIG_MAX], size_t *len);

#endif
