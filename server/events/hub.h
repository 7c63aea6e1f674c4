/*
 * events/hub.h - the watcher of the audit log's head: one thread reads the head's sequence
 * number every OTA_EVENTS_POLL_MS and wakes whoever waits for entries past a given seq (the
 * webhook deliverers, the live streams). Only committed entries are ever seen: the head is
 * read outside any transaction, and entries commit in seq order (each append takes the next
 * seq inside its writing transaction), so a reader that has seen seq N never later finds a new
 * entry below N.
 *
 * Live streams (parked subscribers): a stream that has nothing to send parks itself with
 * ota_events_hub_park(), which calls its park function under the hub's lock (the HTTP layer
 * suspends the connection there), and the hub calls the wake function, under the same lock,
 * when the head moves past the seq the stream has seen, every heartbeat interval (the wake
 * is then marked as a heartbeat), and when the hub closes. Wake and park never cross: a
 * stream is woken at most once per park.
 *
 * Threads: every call from any thread. Ownership: the hub is freed with ota_events_hub_free()
 * after every subscriber has left.
 */
#ifndef OTA_EVENTS_HUB_H
#define OTA_EVENTS_HUB_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "store/store.h"

#define OTA_EVENTS_POLL_MS 200

struct ota_events_hub;
struct ota_events_sub;

/*
 * Start the watcher: heartbeat_s between heartbeat wakes of parked streams, at most
 * max_streams subscribers at once. OTA_ERR_NOMEM, OTA_ERR_DB (the head cannot be read),
 * OTA_ERR_IO (no thread).
 */
OTA_WUR enum ota_err ota_events_hub_start(struct ota_store *st, unsigned heartbeat_s,
                                          unsigned max_streams, struct ota_events_hub **out);

/* The newest committed seq the watcher has seen. */
uint64_t ota_events_hub_head(struct ota_events_hub *h);

/*
 * Wait until the head is past `seen`, the hub closes, or timeout_ms pass. Returns the head.
 */
uint64_t ota_events_hub_wait(struct ota_events_hub *h, uint64_t seen, unsigned timeout_ms);

/*
 * A new subscriber (a live stream) whose wake(ctx) the hub will call; NULL when max_streams
 * are subscribed already or the hub is closing (*busy true), or out of memory (*busy false).
 */
struct ota_events_sub *ota_events_hub_subscribe(struct ota_events_hub *h, void (*wake)(void *ctx),
                                                void *ctx, bool *busy);
/* The subscriber leaves; its wake is never called again once this returns. NULL is fine. */
void ota_events_hub_unsubscribe(struct ota_events_hub *h, struct ota_events_sub *s);

/*
 * Park s until the head passes `seen`: returns false without parking when it already has or
 * when the hub is closing (read again); otherwise calls park(ctx) under the hub's lock and
 * returns true.
 */
bool ota_events_hub_park(struct ota_events_hub *h, struct ota_events_sub *s, uint64_t seen,
                         void (*park)(void *ctx), void *ctx);

/* Whether s's last wake was a heartbeat's (and clears the mark). */
bool ota_events_sub_heartbeat(struct ota_events_sub *s);

/* Whether the hub is closing: streams end. */
bool ota_events_hub_closing(struct ota_events_hub *h);

/* Start closing: wake every parked stream and every waiter; no new subscribers. */
void ota_events_hub_close(struct ota_events_hub *h);

/* Stop the watcher and free the hub (closing it first). NULL is fine. */
void ota_events_hub_free(struct ota_events_hub *h);

#endif
