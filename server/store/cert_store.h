/*
 * store/cert_store.h - the pending certificates of device renewal (schema 0070): the one a
 * device was issued and has not used yet, and pinning it in place of the old one on first use.
 *
 * Threads and transactions: every call is safe from any thread and joins the transaction the
 * calling thread has open (ota_store_tx_begin()), else runs in its own.
 */
#ifndef OTA_CERT_STORE_H
#define OTA_CERT_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/*
 * Record `fingerprint` (64 lowercase hex) as device id's pending certificate, replacing an
 * earlier pending one. OTA_ERR_NOT_FOUND when the device does not exist, OTA_ERR_CONFLICT when
 * the fingerprint is another device's pending one, OTA_ERR_DB.
 */
OTA_WUR enum ota_err ota_store_cert_pending_set(struct ota_store *st, const char *id,
                                                const char *fingerprint, int64_t issued_at,
                                                int64_t not_after);

/* Copy device id's pending fingerprint into out; OTA_ERR_NOT_FOUND when none, OTA_ERR_DB. */
OTA_WUR enum ota_err ota_store_cert_pending_get(struct ota_store *st, const char *id,
                                                char out[OTA_HEX256]);

/*
 * Pin `fingerprint` as device id's certificate if it is the device's pending one, removing
 * the pending row (the old fingerprint stops working). OTA_ERR_NOT_FOUND when it is not
 * pending for id, OTA_ERR_DB.
 */
OTA_WUR enum ota_err ota_store_cert_promote(struct ota_store *st, const char *id,
                                            const char *fingerprint);

#endif
