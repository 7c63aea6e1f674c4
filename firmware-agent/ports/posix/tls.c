/*
 * The POSIX agent's TLS transport over OpenSSL: TCP connect with a deadline, TLS 1.2+ with the
 * device certificate, server certificate verified against the provisioned CA and the host
 * name, session resumption, and receives bounded by the core's timeout through poll(2).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls.h"

static int fail(struct fwa_tls *t, const char *what)
{
	unsigned long e = ERR_get_error();

	snprintf(t->err, sizeof(t->err), "%s%s%s", what, e ? ": " : "",
	         e ? ERR_reason_error_string(e) : "");
	ERR_clear_error();
	return -1;
}

/*
 * OpenSSL hands over each new session: at the end of a TLS 1.2 handshake, and for TLS 1.3 with
 * each ticket, which arrives after the handshake (a session saved when SSL_connect returns is
 * not resumable). The newest resumable one of the configured pair is kept; 1 takes ownership.
 */
static int on_new_session(SSL *ssl, SSL_SESSION *s)
{
	struct fwa_tls *t = SSL_get_app_data(ssl);

	if (!t || t->used_pending || !SSL_SESSION_is_resumable(s))
		return 0;
	SSL_SESSION_free(t->session);
	t->session = s;
	return 1;
}

static void drop_session(struct fwa_tls *t)
{
	SSL_SESSION_free(t->session);
	t->session = NULL;
}

int fwa_tls_init(struct fwa_tls *t, const char *host, const char *port, const char *cert,
                 const char *key, const char *ca)
{
	memset(t, 0, sizeof(*t));
	t->fd = -1;
	t->connect_timeout_ms = 10000;
	if (strlen(host) >= sizeof(t->host) || strlen(port) >= sizeof(t->port)) {
		snprintf(t->err, sizeof(t->err), "server host or port too long");
		return -1;
	}
	strcpy(t->host, host);
	strcpy(t->port, port);
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (!t->ctx)
		return fail(t, "SSL_CTX_new");
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	/* No internal store: the callback alone keeps the session (SSL_set_session resumes). */
	SSL_CTX_set_session_cache_mode(t->ctx,
	                               SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(t->ctx, on_new_session);
	if (SSL_CTX_use_certificate_chain_file(t->ctx, cert) != 1)
		return fail(t, "device certificate");
	if (SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1)
		return fail(t, "device key");
	if (SSL_CTX_check_private_key(t->ctx) != 1)
		return fail(t, "device key does not match the certificate");
	if (SSL_CTX_load_verify_locations(t->ctx, ca, NULL) != 1)
		return fail(t, "server CA");
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	return 0;
}

void fwa_tls_free(struct fwa_tls *t)
{
	if (!t)
		return;
	fwa_tls_close(t);
	drop_session(t);
	SSL_CTX_free(t->ctx);
	t->ctx = NULL;
}

static int wait_fd(int fd, short events, uint32_t timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	int r;

	do
		r = poll(&p, 1, (int)timeout_ms);
	while (r < 0 && errno == EINTR);
	return r > 0 ? 0 : -1;
}

static int tcp_connect(struct fwa_tls *t)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL, *ai;
	int fd = -1;

	if (getaddrinfo(t->host, t->port, &hints, &res) != 0)
		return -1;
	for (ai = res; ai; ai = ai->ai_next) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		            ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    (errno == EINPROGRESS && wait_fd(fd, POLLOUT, t->connect_timeout_ms) == 0 &&
		     getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0))
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* Drive an SSL call that may want I/O on a non-blocking socket, within timeout_ms. */
static int ssl_wait(struct fwa_tls *t, int r, uint32_t timeout_ms)
{
	switch (SSL_get_error(t->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return wait_fd(t->fd, POLLIN, timeout_ms);
	case SSL_ERROR_WANT_WRITE:
		return wait_fd(t->fd, POLLOUT, timeout_ms);
	default:
		return -1;
	}
}

static bool is_ip(const char *host)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

void fwa_tls_server_cas(struct fwa_tls *t, const uint8_t (*pins)[32], unsigned n)
{
	n = n < FWA_MAX_SERVER_CAS ? n : FWA_MAX_SERVER_CAS;
	/* Told again at every start of the core: the same set keeps the session. */
	if (n == t->npins && memcmp(t->pins, pins, (size_t)n * 32) == 0)
		return;
	t->npins = n;
	memcpy(t->pins, pins, (size_t)n * 32);
	/* A session of a server verified under the old set must not be resumed. */
	drop_session(t);
}

static bool pinned(const struct fwa_tls *t, X509 *x)
{
	unsigned char *der = NULL, d[32];
	int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	bool hit = false;

	if (n > 0 && EVP_Digest(der, (size_t)n, d, NULL, EVP_sha256(), NULL) == 1)
		for (unsigned i = 0; i < t->npins && !hit; i++)
			hit = memcmp(d, t->pins[i], 32) == 0;
	OPENSSL_free(der);
	return hit;
}

/* The server's chain verifies up to a pinned CA (the anchors: pinned certificates only). */
static bool pinned_chain(struct fwa_tls *t)
{
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(t->ssl);
	STACK_OF(X509_OBJECT) *prov = X509_STORE_get0_objects(SSL_CTX_get_cert_store(t->ctx));
	X509 *leaf = SSL_get0_peer_certificate(t->ssl);
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *sc = X509_STORE_CTX_new();
	bool ok = false;
	int i;

	if (!leaf || !store || !sc)
		goto out;
	for (i = 0; chain && i < sk_X509_num(chain); i++)
		if (pinned(t, sk_X509_value(chain, i)))
			X509_STORE_add_cert(store, sk_X509_value(chain, i));
	for (i = 0; prov && i < sk_X509_OBJECT_num(prov); i++) {
		X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(prov, i));
		if (x && pinned(t, x))
			X509_STORE_add_cert(store, x);
	}
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	if (X509_STORE_CTX_init(sc, store, leaf, chain) != 1 ||
	    X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(sc), SSL_get0_param(t->ssl)) != 1)
		goto out;
	X509_STORE_CTX_set_purpose(sc, X509_PURPOSE_SSL_SERVER);
	ok = X509_verify_cert(sc) == 1;
out:
	X509_STORE_CTX_free(sc);
	X509_STORE_free(store);
	if (!ok)
		snprintf(t->err, sizeof(t->err), "server chain does not verify to a pinned CA");
	return ok;
}

enum fwa_err fwa_tls_connect(struct fwa_tls *t)
{
	int r;

	fwa_tls_close(t);
	t->fd = tcp_connect(t);
	if (t->fd < 0) {
		snprintf(t->err, sizeof(t->err), "connect to %.200s:%s failed", t->host, t->port);
		return FWA_ERR_TRANSPORT;
	}
	t->ssl = SSL_new(t->ctx);
	if (!t->ssl || SSL_set_fd(t->ssl, t->fd) != 1 || SSL_set_app_data(t->ssl, t) != 1)
		goto fail;
	/* A renewed pair waiting for its first use goes first; a few failures fall back. */
	t->used_pending =
	    t->cred && fwa_cred_has_pending(t->cred) && t->pending_tries < FWA_TLS_PENDING_TRIES &&
	    SSL_use_certificate_chain_file(t->ssl, t->cred->cert_new) == 1 &&
	    SSL_use_PrivateKey_file(t->ssl, t->cred->key_new, SSL_FILETYPE_PEM) == 1 &&
	    SSL_check_private_key(t->ssl) == 1;
	if (t->used_pending)
		t->pending_tries++;
	else if (t->cred && fwa_cred_has_pending(t->cred) &&
	         t->pending_tries < FWA_TLS_PENDING_TRIES) {
		/* The pending pair does not load: present the configured one on a fresh SSL. */
		SSL_free(t->ssl);
		t->ssl = SSL_new(t->ctx);
		t->pending_tries = FWA_TLS_PENDING_TRIES;
		if (!t->ssl || SSL_set_fd(t->ssl, t->fd) != 1 || SSL_set_app_data(t->ssl, t) != 1)
			goto fail;
	}
	if (is_ip(t->host)) {
		/* An address is matched against the certificate's IP SANs; no SNI for it. */
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), t->host) != 1)
			goto fail;
	} else if (SSL_set_tlsext_host_name(t->ssl, t->host) != 1 ||
	           SSL_set1_host(t->ssl, t->host) != 1) {
		goto fail;
	}
	if (t->npins) /* judged below, against the root's pins */
		SSL_set_verify(t->ssl, SSL_VERIFY_NONE, NULL);
	/* A session belongs to the configured pair: the pending pair makes a full handshake. */
	if (t->session && !t->used_pending && SSL_set_session(t->ssl, t->session) != 1)
		goto fail;
	while ((r = SSL_connect(t->ssl)) != 1)
		if (ssl_wait(t, r, t->connect_timeout_ms) < 0)
			goto fail;
	if (t->npins ? !pinned_chain(t) : SSL_get_verify_result(t->ssl) != X509_V_OK)
		goto fail;
	if (t->debug)
		fprintf(stderr, "ota-agent: %s%s\n",
		        SSL_session_reused(t->ssl) ? "TLS session resumed" : "TLS full handshake",
		        t->used_pending ? " (renewed certificate)" : "");
	return FWA_OK;
fail:
	fail(t, "TLS handshake failed");
	fwa_tls_close(t);
	drop_session(t); /* a server refused or not verified resumes nothing */
	return FWA_ERR_TRANSPORT;
}

void fwa_tls_accepted(struct fwa_tls *t)
{
	if (!t->used_pending || !t->cred)
		return;
	if (fwa_cred_commit(t->cred) != FWA_OK) {
		snprintf(t->err, sizeof(t->err), "cannot commit the renewed certificate");
		return;
	}
	/* Sessions of the old identity must not resume under the new one. */
	drop_session(t);
	t->used_pending = false;
	t->pending_tries = 0;
	/* The context presents the pair in use from now on. */
	if (SSL_CTX_use_certificate_chain_file(t->ctx, t->cred->cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(t->ctx, t->cred->key, SSL_FILETYPE_PEM) != 1)
		snprintf(t->err, sizeof(t->err), "cannot load the renewed certificate");
	fprintf(stderr, "ota-agent: renewed certificate accepted by the server\n");
}

void fwa_tls_refused(struct fwa_tls *t)
{
	if (t->used_pending || !t->cred || !fwa_cred_has_pending(t->cred))
		return;
	/*
	 * The old pair refused: a pending pair whose first use the server took but whose answer
	 * never arrived is pinned, and only it will do. Back to it, for its tries again.
	 */
	t->pending_tries = 0;
	fprintf(stderr, "ota-agent: certificate refused; presenting the renewed one again\n");
}

enum fwa_err fwa_tls_send(struct fwa_tls *t, const void *buf, size_t len)
{
	const char *p = buf;
	size_t done;
	int r;

	if (!t->ssl)
		return FWA_ERR_TRANSPORT;
	while (len) {
		r = SSL_write_ex(t->ssl, p, len, &done);
		if (r == 1) {
			p += done;
			len -= done;
			continue;
		}
		if (ssl_wait(t, r, t->connect_timeout_ms) < 0)
			return FWA_ERR_TRANSPORT;
	}
	return FWA_OK;
}

enum fwa_err fwa_tls_recv(struct fwa_tls *t, void *buf, size_t cap, uint32_t timeout_ms,
                          size_t *got)
{
	int r;

	*got = 0;
	if (!t->ssl)
		return FWA_ERR_TRANSPORT;
	for (;;) {
		r = SSL_read_ex(t->ssl, buf, cap, got);
		if (r == 1)
			return FWA_OK;
		if (SSL_get_error(t->ssl, r) == SSL_ERROR_ZERO_RETURN) {
			*got = 0;
			return FWA_OK;
		}
		if (ssl_wait(t, r, timeout_ms) < 0) {
			/* A peer that closes without close_notify ends the stream too. */
			if (SSL_get_error(t->ssl, r) == SSL_ERROR_SYSCALL &&
			    ERR_peek_error() == 0) {
				*got = 0;
				return FWA_OK;
			}
			ERR_clear_error();
			return FWA_ERR_TRANSPORT;
		}
	}
}

void fwa_tls_close(struct fwa_tls *t)
{
	if (t->ssl) {
		SSL_shutdown(t->ssl);
		SSL_free(t->ssl);
		t->ssl = NULL;
	}
	if (t->fd >= 0) {
		close(t->fd);
		t->fd = -1;
	}
}
