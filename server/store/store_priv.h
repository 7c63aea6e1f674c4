/*
 * store/store_priv.h - for the store's own source files beside store.c (store/audit_db.c,
 * store/mgmt_db.c ...): the connection, the handle's lock, and a cache of prepared statements
 * keyed by the address of their (static) SQL text. Nothing outside server/store/ includes it.
 *
 * Rules: hold ota_store_lock() around every use of the connection and of a statement from
 * ota_store_stmt(); the statement comes reset and unbound; reset it before unlocking.
 * ota_store_in_tx() tells whether the calling thread's calls join a transaction already
 * (ota_store_tx_begin() or a bulk), in which case do not BEGIN or COMMIT.
 */
#ifndef OTA_STORE_PRIV_H
#define OTA_STORE_PRIV_H

#include <stdbool.h>

#include <sqlite3.h>

#include "store/store.h"

#define OTA_STORE_EXTRA_STMTS 64

sqlite3 *ota_store_db(struct ota_store *st);
void ota_store_lock(struct ota_store *st);
void ota_store_unlock(struct ota_store *st);
bool ota_store_in_tx(struct ota_store *st);
/* NULL (logged) when the text cannot be prepared or the cache is full. */
sqlite3_stmt *ota_store_stmt(struct ota_store *st, const char *sql);

#endif
