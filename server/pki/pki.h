/*
 * pki/pki.h - otad's online signing keys that devices rely on: the time key, which signs time
 * tokens bound to a device's nonce (docs/formats.md "Time tokens"), and the issuing CA of
 * renewed device certificates (an intermediate of the device CA). Keys are read once at start from
 * files named in [trust]; a key file writable by its group or open to others (mode beyond 0640) is
 * refused.
 *
 * Threads: an opened struct ota_pki is read-only and used by many threads at once.
 */
#ifndef OTA_PKI_H
#define OTA_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "config/config.h"

struct ota_pki;

/*
 * Load the keys the configuration names ([trust] time_key, issuer_cert and issuer_key).
 * Nothing configured is fine (*out then signs nothing). OTA_ERR_CONFIG when a key file is
 * unreadable, not a P-256 private key, the issuer certificate is not a CA matching its key,
 * or of a mode beyond 0640, with msg set; *out is then NULL.
 */
OTA_WUR enum ota_err ota_pki_open(const struct ota_config *cfg, struct ota_pki **out, char *msg,
                                  size_t msglen);
void ota_pki_free(struct ota_pki *p);

/* True when a time key is configured. */
bool ota_pki_has_time(const struct ota_pki *p);

/*
 * A time token for `nonce` (FWA_NONCE_MIN..FWA_NONCE_MAX bytes) at `now`: a DSSE envelope of
 * type application/vnd.ota.time+json as compact JSON text, malloc'd into *out (caller frees).
 * OTA_ERR_NOT_FOUND without a time key, OTA_ERR_INVALID for a nonce out of bounds,
 * OTA_ERR_NOMEM or OTA_ERR_TLS (signing failed).
 */
OTA_WUR enum ota_err ota_pki_time_token(const struct ota_pki *p, const uint8_t *nonce,
                                        size_t nonce_len, int64_t now, char **out);

/* True when an issuing CA is configured ([trust] issuer_cert and issuer_key). */
bool ota_pki_has_issuer(const struct ota_pki *p);

/*
 * Issue a device certificate for `device_id` over the public key of `csr_pem` (a PEM PKCS#10
 * request whose self-signature verifies, with a P-256 key): subject CN = device_id (the
 * request's subject is ignored: a device cannot choose its identity), clientAuth, valid from
 * now - 60 s for [trust] issued_days. *chain_pem (malloc'd, caller frees) gets the certificate
 * and the issuer's, PEM; fingerprint the SHA-256 of the certificate's DER in lowercase hex;
 * *not_after its end. OTA_ERR_NOT_FOUND without an issuer, OTA_ERR_INVALID for a request that
 * does not parse, verify or hold a P-256 key, OTA_ERR_NOMEM, OTA_ERR_TLS.
 */
OTA_WUR enum ota_err ota_pki_issue(const struct ota_pki *p, const char *device_id,
                                   const char *csr_pem, size_t csr_len, int64_t now,
                                   char **chain_pem, char fingerprint[65], int64_t *not_after);

#endif
