/*
 * store/internal.h - what store.c lends the store's other files (mgmt_store.c,
 * rollout_store.c, audit_store.c): the connection, the handle's lock, transactions that join a
 * caller's, and one cache of prepared statements keyed by the address of their (static) SQL
 * text. Nothing outside server/store/ includes it.
 *
 * Rules: hold ota_store__lock() around every use of the connection and of a statement from
 * ota_store__stmt(); the statement comes reset and unbound; hand it back with
 * ota_store__done() (reset, bindings cleared) before unlocking.
 */
#ifndef OTA_STORE_INTERNAL_H
#define OTA_STORE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "store/sql.h"

#include "store/store.h"

#define OTA_STORE_STMTS 256 /* distinct SQL texts a handle prepares, at most */

/* PostgreSQL advisory lock keys (one database, several otad instances): schema migrations,
 * and the one writer at a time that SQLite's BEGIN IMMEDIATE gives (docs/scaling.md). */
#define OTA_PG_LOCK_MIGRATE "7402001"
#define OTA_PG_LOCK_WRITE "7402002"

/* The text of a statement whose dialects differ: pair[0] for SQLite, pair[1] for PostgreSQL
 * (both static: the chosen address keys the statement cache). */
#define OTA_SQL_PICK(st, pair) ((pair)[ota_sql_kind(ota_store__db(st))])

struct ota_sql *ota_store__db(struct ota_store *st);
/* Logs why the connection's last statement failed ("store: WHAT: why"; storage failures at most
 * once per 10 s, with the count of those left out) and returns OTA_ERR_DB. */
enum ota_err ota_store__fail(struct ota_store *st, const char *what);
void ota_store__lock(struct ota_store *st);
void ota_store__unlock(struct ota_store *st);
/* Whether the calling thread's calls join a transaction already (ota_store_tx_begin(), a
 * group or a bulk load): then do not BEGIN or COMMIT. */
bool ota_store__in_tx(struct ota_store *st);
/* The statement for `sql` (a static string: its address is the key), prepared on first use;
 * NULL (logged) when the text cannot be prepared or the cache is full. */
struct ota_sql_stmt *ota_store__stmt(struct ota_store *st, const char *sql);
void ota_store__done(struct ota_sql_stmt *q);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK, joining a transaction already open like store.c's own
 * calls. */
enum ota_err ota_store__begin(struct ota_store *st);
enum ota_err ota_store__commit(struct ota_store *st);
void ota_store__rollback(struct ota_store *st);
/* A change of who may connect (revocation, device status, admission or certificate, principal,
 * token) was just written on this handle: bumps ota_store_access_generation() now and again
 * when the handle's open transaction ends. */
void ota_store__access_changed(struct ota_store *st);
/* A rollout's row or a device's tags (what the running rollouts cover) were just written on
 * this handle (NULL: no handle, a store opened): bumps
 * ota_store_rollouts_generation() now and again when the handle's open transaction ends. */
void ota_store__rollouts_changed(struct ota_store *st);
/* A device's last check-in time: stored (the row's last_seen), or a newer one that waits in
 * memory for ota_store_seen_flush(). */
int64_t ota_store__seen_latest(struct ota_store *st, const char *id, int64_t stored);

#endif
