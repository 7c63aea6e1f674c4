/*
 * store/internal.h - what store.c lends the store's other files (rollout_store.c): the
 * handle's lock, its connection, its transaction helpers and a cache of prepared statements.
 * Not for use outside store/.
 */
#ifndef OTA_STORE_INTERNAL_H
#define OTA_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store/store.h"

#define OTA_STORE_EXT_STMTS 64

void ota_store__lock(struct ota_store *st);
void ota_store__unlock(struct ota_store *st);
sqlite3 *ota_store__db(struct ota_store *st);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK, joining a bulk load like store.c's own calls. */
enum ota_err ota_store__begin(struct ota_store *st);
enum ota_err ota_store__commit(struct ota_store *st);
void ota_store__rollback(struct ota_store *st);
/* Statement `slot` (< OTA_STORE_EXT_STMTS) prepared once from sql, reset and unbound after
 * each use by ota_store__done(); NULL (logged) when it cannot be prepared. */
sqlite3_stmt *ota_store__stmt(struct ota_store *st, unsigned slot, const char *sql);
void ota_store__done(sqlite3_stmt *q);

/*
 * Called by ota_store_event_add() inside its transaction for each new event: moves the
 * deployment's rollout member (if any) to the state the event means and keeps the rollout's
 * counters in step. OTA_OK when the deployment belongs to no rollout.
 */
enum ota_err ota_store__rollout_note_event(struct ota_store *st, const char *deployment_id,
                                           const char *status, const char *end_status,
                                           const char *end_reason, int64_t now);

#endif
