/*
 * tls.h - the POSIX agent's transport: one TLS connection at a time to the configured server
 * over OpenSSL, with the device certificate as the client certificate, the server verified
 * against the provisioned CA and its name, and the TLS session kept for resumption.
 *
 * The session kept is the newest resumable one OpenSSL hands over (TLS 1.3 tickets arrive
 * after the handshake), in memory only, of a connection that presented the configured pair;
 * it is dropped when the pair in use changes (a renewal's commit) or the trusted server CA set
 * changes (resumption re-verifies nothing). A pending pair never resumes nor keeps a session.
 *
 * Functions returning int give 0 on success and -1 with a message in err[] otherwise.
 */
#ifndef FWA_POSIX_TLS_H
#define FWA_POSIX_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "cred.h"
#include "fwa/port.h"
#include "fwa/verify.h"

struct fwa_tls {
	SSL_CTX *ctx;
	SSL *ssl;
	SSL_SESSION *session;
	int fd;
	char host[256];
	char port[8];
	uint32_t connect_timeout_ms;
	char err[320];
	/*
	 * Renewal: with cred set, a pending pair is presented instead of the configured one, at
	 * most FWA_TLS_PENDING_TRIES connections in a row that no answer accepted; then the old
	 * pair again, until the server refuses it (fwa_tls_refused). used_pending says what the
	 * open (or last) connection presents.
	 */
	struct fwa_cred *cred;
	unsigned pending_tries;
	bool used_pending;
	/* Debug lines on stderr: whether each connection resumed its session. */
	bool debug;
	/* Server CA pins from the trusted root (npins 0: the provisioned CA file decides). */
	uint8_t pins[FWA_MAX_SERVER_CAS][32];
	unsigned npins;
};
#define FWA_TLS_PENDING_TRIES 3

/*
 * Set up the client: host and port to connect to, PEM files of the device certificate (with
 * its chain), its private key, and the CA that signs the server certificate. The struct is
 * the caller's; free with fwa_tls_free().
 */
int fwa_tls_init(struct fwa_tls *t, const char *host, const char *port, const char *cert,
                 const char *key, const char *ca);
void fwa_tls_free(struct fwa_tls *t);

/* Transport members of struct fwa_port over t (ctx must be what tls_of() below returns). */
enum fwa_err fwa_tls_connect(struct fwa_tls *t);
enum fwa_err fwa_tls_send(struct fwa_tls *t, const void *buf, size_t len);
enum fwa_err fwa_tls_recv(struct fwa_tls *t, void *buf, size_t cap, uint32_t timeout_ms,
                          size_t *got);
void fwa_tls_close(struct fwa_tls *t);

/*
 * The root's server CA pins (tr_server_cas): with n > 0 a server chain is accepted only when
 * it verifies (name, purpose, dates) up to a CA, sent by the server or in the provisioned CA
 * file, whose SubjectPublicKeyInfo hashes to a pin.
 */
void fwa_tls_server_cas(struct fwa_tls *t, const uint8_t (*pins)[32], unsigned n);

/* An answer came on the open connection: a pending pair it used becomes the pair in use. */
void fwa_tls_accepted(struct fwa_tls *t);

/*
 * The server refused the last connection's certificate (a 403 answer): when it presented the
 * old pair while a pending pair waits, the pending pair gets its tries again, since the
 * server may have pinned it on a use whose answer was lost.
 */
void fwa_tls_refused(struct fwa_tls *t);

#endif
