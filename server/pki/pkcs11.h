/*
 * pki/pkcs11.h - a private key that stays in a PKCS#11 token (an HSM, or SoftHSM in tests),
 * named by an RFC 7512 URI such as "pkcs11:token=ota;object=issuer;type=private". Opening one
 * checks, step by step and with one message per step, that the module loads, that exactly one
 * token matches, that the PIN logs in and that exactly one private key object matches; then it
 * hands back an EVP_PKEY whose signatures the token makes.
 *
 * Threads: an opened handle's key may sign from several threads; callers that need one signature
 * at a time on the token serialise themselves (pki.c does).
 */
#ifndef OTA_PKCS11_H
#define OTA_PKCS11_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "common/err.h"

struct ota_pkcs11;

/* True when `ref` is a PKCS#11 URI (begins with "pkcs11:") rather than a file path. */
bool ota_pkcs11_is_uri(const char *ref);

/*
 * Open the private key `uri` names, through the module at `module` ("" for the modules p11-kit
 * has registered), logging in with the PIN held in `pin_file` (its first line; the file may be
 * read by owner and group only). `what` names the setting in messages ("[trust] issuer_key").
 * A URI that carries a PIN (pin-value, pin-source) or an attribute p11-kit does not know is
 * refused. OTA_ERR_CONFIG with msg set to one line when the module does not load, no token or
 * several match, the PIN is wrong or locked, no private key or several match, or the OpenSSL
 * pkcs11 engine is missing; *out is then NULL. OTA_ERR_NOMEM. The caller frees *out.
 */
OTA_WUR enum ota_err ota_pkcs11_open(const char *uri, const char *module, const char *pin_file,
                                     const char *what, struct ota_pkcs11 **out, char *msg,
                                     size_t msglen);

/* The key, owned by `h` (valid until ota_pkcs11_free). */
EVP_PKEY *ota_pkcs11_key(const struct ota_pkcs11 *h);

/* Accepts NULL. */
void ota_pkcs11_free(struct ota_pkcs11 *h);

#endif
