/*
 * http/guard.h - a listener's watch over its connections, for what libmicrohttpd 0.9.75 does
 * not bound itself: connections per source address with the address named (its own
 * MHD_OPTION_PER_IP_CONNECTION_LIMIT refuses without saying whom, so the listener's accept
 * policy callback asks ota_guard_admit() instead), and the time a request may take to send
 * its headers and its JSON body (MHD_OPTION_CONNECTION_TIMEOUT only bounds inactivity, which
 * a client sending one byte at a time never reaches). The global limit, the inactivity
 * timeout and the memory per connection stay libmicrohttpd's own options.
 *
 * It also blocks addresses that keep presenting client certificates that are refused
 * (ota_guard_strike()): every refused certificate is a full TLS handshake, the most expensive
 * thing a client can make the server do, so an address that presented `strikes` of them
 * within `block_s` seconds has its new connections refused at accept, before any TLS, for
 * the next `block_s` seconds. IPv6 addresses are counted and blocked per /64 (one host's
 * share). At most 65,536 addresses are tracked; past that, new ones are not blocked.
 *
 * A connection is registered when it starts (ota_guard_open(), from the connection-notify
 * callback) and removed when it closes (ota_guard_close(), called by libmicrohttpd before it
 * closes the socket, so a registered socket is never a reused descriptor). ota_guard_sweep()
 * shuts down (shutdown(2)) the socket of every connection past its deadline; libmicrohttpd
 * then reads the end of the stream and closes it in its own thread as usual.
 *
 * Threads: every call is safe from any thread (one mutex per guard; `refused` is called
 * without it held).
 */
#ifndef OTA_HTTP_GUARD_H
#define OTA_HTTP_GUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/err.h"

struct ota_guard;
struct ota_guard_conn;

/* What a connection is doing, for its deadline. */
enum ota_guard_phase {
	OTA_GUARD_HEADERS, /* handshake and request headers: header_timeout */
	OTA_GUARD_BODY,    /* a JSON body: body_timeout */
	OTA_GUARD_BUSY,    /* handled, answering or streaming an image: no deadline of ours */
};

/* Called once per refused or cut connection; reason is a constant slug ("per-address-limit",
 * "header-timeout", "body-timeout"), addr the client's address text, detail a sentence. */
typedef void (*ota_guard_refused_fn)(void *ctx, const char *reason, const char *addr,
                                     const char *detail);

/* A listener's limits. */
struct ota_guard_limits {
	unsigned per_ip;   /* connections per address (0: no limit) */
	unsigned header_s; /* handshake and headers within this many seconds */
	unsigned body_s;   /* a JSON body within this many seconds */
	unsigned strikes;  /* refused certificates that block an address (0: never) */
	unsigned block_s;  /* ... within this many seconds, blocked for as long */
};

/* A guard for one listener with `lim`. OTA_ERR_NOMEM. */
OTA_WUR enum ota_err ota_guard_new(const struct ota_guard_limits *lim, ota_guard_refused_fn refused,
                                   void *ctx, struct ota_guard **out);
/* Frees; every connection must have been closed (the daemon stopped). NULL is fine. */
void ota_guard_free(struct ota_guard *g);

/* The accept policy: false (and `refused` called) when addr is blocked ("address-blocked")
 * or has per_ip connections open ("per-address-limit"). */
bool ota_guard_admit(struct ota_guard *g, const struct sockaddr *addr, socklen_t len);

/* Registers a started connection on socket fd; NULL when out of memory (then unguarded). */
struct ota_guard_conn *ota_guard_open(struct ota_guard *g, int fd, const struct sockaddr *addr);
/* Unregisters and frees. NULL is fine. */
void ota_guard_close(struct ota_guard *g, struct ota_guard_conn *gc);
/* The connection enters `phase` now (its deadline restarts). NULL is fine. */
void ota_guard_phase(struct ota_guard *g, struct ota_guard_conn *gc, enum ota_guard_phase phase);

/*
 * The connection presented a client certificate that was refused: one strike against its
 * address. True when this strike blocks the address (the caller logs it); the connections
 * already open are not cut (each is refused on its own).
 */
bool ota_guard_strike(struct ota_guard *g, struct ota_guard_conn *c);

/* The client address of a registered connection, as text. */
const char *ota_guard_conn_addr(const struct ota_guard_conn *c);

/* Cuts the connections past their deadline at monotonic time now_ms. */
void ota_guard_sweep(struct ota_guard *g, int64_t now_ms);

/* Connections open now. */
unsigned ota_guard_open_count(struct ota_guard *g);

/* Monotonic milliseconds, the clock of the deadlines. */
int64_t ota_guard_now_ms(void);

#endif
