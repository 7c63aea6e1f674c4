/*
 * store/webhook_store.h - the rows of the webhooks table (schema/0080): registered endpoints
 * with their delivery cursor (the seq of the last audit entry the endpoint is done with), their
 * retry state and their dead-letter state. The rules (which events, signatures, backoff, when
 * an endpoint is dead) are events/webhook.h's; these functions only apply and read.
 *
 * Threads, transactions and errors: as audit_store.h. Writing calls join the transaction the
 * calling thread has open, else run in one of their own. Errors: OTA_OK, OTA_ERR_INVALID (a bad
 * argument; nothing written), OTA_ERR_NOT_FOUND (no such webhook), OTA_ERR_CONFLICT (the id
 * exists; or, for ota_store_webhook_advance, the cursor moved meanwhile), OTA_ERR_DB.
 */
#ifndef OTA_STORE_WEBHOOK_H
#define OTA_STORE_WEBHOOK_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

#define OTA_WEBHOOK_URL_MAX 2048   /* bytes of a URL */
#define OTA_WEBHOOK_TYPES_MAX 1024 /* bytes of the comma-separated types */
#define OTA_WEBHOOK_ID_MAX 35      /* "w-" + 32 hex + NUL */

/* One webhook, copied out of the database (no pointers into the store). */
struct ota_store_webhook {
	char id[OTA_WEBHOOK_ID_MAX];
	char url[OTA_WEBHOOK_URL_MAX + 1];
	char types[OTA_WEBHOOK_TYPES_MAX + 1];
	char secret[OTA_HEX256];
	int64_t created_at;
	char created_by[OTA_ID_MAX + 1];
	uint64_t cursor;
	bool dead;
	unsigned attempts;
	int64_t next_at;
	char last_error[256];
	uint64_t delivered;
};

/* Store a new webhook (every member but last_error set by the caller). */
OTA_WUR enum ota_err ota_store_webhook_add(struct ota_store *st, const struct ota_store_webhook *w);

/* Read one webhook by id into *out. OTA_ERR_NOT_FOUND. */
OTA_WUR enum ota_err ota_store_webhook_get(struct ota_store *st, const char *id,
                                           struct ota_store_webhook *out);

/*
 * The webhooks by id, after `after` (NULL: from the first), at most limit (>= 1) of them;
 * fn gets each (borrowed for the call; it may call the store: the rows are copied first).
 * *more (may be NULL) is set when further webhooks follow.
 */
OTA_WUR enum ota_err ota_store_webhook_list(struct ota_store *st, const char *after, unsigned limit,
                                            int (*fn)(void *ctx, const struct ota_store_webhook *w),
                                            void *ctx, bool *more);

/* Delete a webhook. OTA_ERR_NOT_FOUND. */
OTA_WUR enum ota_err ota_store_webhook_delete(struct ota_store *st, const char *id);

/*
 * The endpoint is done with every entry up to `cursor` (delivered, or not of its types):
 * moves the cursor from `from` to `cursor`, adds `delivered` to the count and clears the
 * retry state. OTA_ERR_CONFLICT when the stored cursor is not `from` (a redelivery or a
 * deletion came in between: nothing changed), OTA_ERR_NOT_FOUND.
 */
OTA_WUR enum ota_err ota_store_webhook_advance(struct ota_store *st, const char *id, uint64_t from,
                                               uint64_t cursor, uint64_t delivered);

/*
 * An attempt at the entry after cursor `at_cursor` failed: records attempts, the time of the
 * next attempt, the error and whether the endpoint is now dead. OTA_ERR_CONFLICT when the
 * stored cursor is not `at_cursor`, OTA_ERR_NOT_FOUND.
 */
OTA_WUR enum ota_err ota_store_webhook_failed(struct ota_store *st, const char *id,
                                              uint64_t at_cursor, unsigned attempts,
                                              int64_t next_at, bool dead, const char *error);

/*
 * Manual redelivery: the endpoint becomes active with its retry state cleared; when
 * set_cursor is true its cursor becomes `cursor` (events after it are sent again).
 * OTA_ERR_NOT_FOUND.
 */
OTA_WUR enum ota_err ota_store_webhook_redeliver(struct ota_store *st, const char *id,
                                                 bool set_cursor, uint64_t cursor);

#endif
