/*
 * http/server.c - the two HTTPS listeners and the request life cycle around the route table.
 *
 * libmicrohttpd 0.9.75 facts this file is built on (measured, see docs/architecture.md):
 * MHD_OPTION_HTTPS_MEM_TRUST only makes the server *request* a client certificate, so each
 * connection's chain is verified here, once, against an application-owned GnuTLS trust list
 * (the listener's CA and optional CRL) with the clientAuth purpose and the status word checked
 * (a chain verified before is found in the listener's cache instead, auth/idcache.h);
 * the default priorities allow TLS 1.0/1.1, so they are set; session tickets must be enabled
 * per session in the connection-notify callback; poll mode with a thread pool (epoll spins on
 * a stalled handshake) and a connection timeout always; a response queued on the first
 * access-handler call loses keep-alive, so answers are queued on a later call.
 */
#include "http/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "audit/audit.h"
#include "auth/idcache.h"
#include "common/log.h"
#include "common/util.h"
#include "http/guard.h"
#include "http/refusals.h"
#include "http/ticket_key.h"

/* Certificates, keys, CAs and CRLs: PEM files of at most 1 MiB. */
#define OTA_PEM_MAX (1024 * 1024)
#include "http/console.h"

#define MAX_CHAIN 8

/* TLS 1.2 and 1.3 only; the key exchange groups in the server's order of preference. */
#define OTA_TLS_PRIORITIES                                                                         \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"    \
	"+GROUP-SECP384R1:+GROUP-SECP521R1:+GROUP-X448:+GROUP-FFDHE2048:+GROUP-FFDHE3072:"         \
	"+GROUP-FFDHE4096:+GROUP-FFDHE6144:+GROUP-FFDHE8192:%SERVER_PRECEDENCE"

struct ota_http;

struct listener {
	struct ota_http *h;
	enum ota_listener_kind kind;
	const char *name;
	struct MHD_Daemon *d;
	gnutls_x509_trust_list_t tl;
	char *ca_pem;
	uint16_t port;
	struct ota_guard *guard;       /* per-address limit, header and body deadlines (guard.h) */
	struct ota_idcache *ids;       /* chains verified before, by digest (auth/idcache.h) */
	int64_t ca_not_after;          /* the earliest notAfter of the listener's CAs */
	atomic_bool nodelay_inherited; /* TCP_NODELAY set on the listening socket */
	/* tl and ids are replaced together when the CRLs are loaded again (SIGHUP): read
	 * under the read lock; trust_gen counts the loads */
	pthread_rwlock_t tl_lock;
	atomic_uint_fast64_t trust_gen;
	bool lock_made;
};

struct ota_http {
	struct ota_http_deps deps;
	struct listener l[2];
	char *cert_pem, *key_pem;
	/* The device listener's session-ticket master key: each connection's session copies it
	 * when it starts; replaced under ticket_mu when [tls] ticket_key is loaded again
	 * (SIGHUP). The management listener's is this process's own, never in a file: a stolen
	 * ticket key forges resumable sessions of any certificate (docs/security.md). */
	uint8_t ticket_key[OTA_TICKET_KEY_SIZE];
	uint8_t mgmt_ticket_key[OTA_TICKET_KEY_SIZE];
	pthread_mutex_t ticket_mu;
	bool ticket_mu_made;
	atomic_int inflight;
	atomic_bool stopping;
	atomic_int
	    suspended; /* requests waiting in ota_req_wait() with their connection suspended */
	struct ota_console *console;
	/* hostile clients: refusals counted per window, and the thread that ends the windows
	 * and sweeps the guards (docs/operations.md, "Refusals and limits") */
	struct ota_refusals *refusals;
	pthread_t watch;
	bool watching;
	pthread_mutex_t watch_mu;
	pthread_cond_t watch_cv;
	bool watch_stop;
};

/* Per connection: the identity, settled on the connection's first request. */
struct conn_ctx {
	bool settled;
	bool closing; /* an identity good before went bad: answer, then close the connection */
	uint64_t gen; /* the access generation the identity was settled at */
	enum ota_problem problem; /* OTA_P_NONE when the identity is good */
	char detail[160];
	struct ota_identity id;
	struct ota_guard_conn *gc; /* the connection's deadlines (guard.h); NULL: unguarded */
};

/* ---- helpers for handlers ---- */

/* ---- refused clients: counted per window, audited when of a new kind (refusals.h) ---- */

/* Counts one refusal on /metrics and in the window; true when it is the first of its kind,
 * which the caller then audits on its own. action NULL: a refusal that is no security event
 * (no certificate, a pending device), counted on /metrics only. */
static bool count_refusal(struct listener *l, const char *action, const char *reason,
                          const char *subject, const char *name)
{
	struct ota_refusal x = {.listener = l->name,
	                        .action = action,
	                        .reason = reason,
	                        .subject = subject,
	                        .name = name};

	if (!l->h->refusals)
		return action != NULL;
	return ota_refusals_record(l->h->refusals, &x, (int64_t)time(NULL));
}

/* A connection refused or cut by a limit (guard.h, or libmicrohttpd's own): logged each time,
 * counted, audited when of a new kind. */
static void connection_refused(void *ctx, const char *reason, const char *addr, const char *detail)
{
	struct listener *l = ctx;
	char a[200];

	ota_log_escape(addr, a, sizeof(a));
	const struct ota_log_field f[] = {{"OTA_ADDRESS", a}, {"OTA_REASON", reason}};
	ota_log_fields(LOG_INFO, f, 2, "%s: %s: %s", l->name, a, detail);
	if (!count_refusal(l, "connection.refused", reason, a, NULL))
		return;
	struct ota_audit_entry e = {.actor = a,
	                            .role = "none",
	                            .action = "connection.refused",
	                            .object = reason,
	                            .detail = detail};
	if (ota_audit_append(l->h->deps.store, &e, (int64_t)time(NULL), NULL) != OTA_OK)
		log_err("%s: cannot audit a refused connection", l->name);
}

/* A refused certificate (or none) on cc's connection: a strike against its address, which
 * may block it (guard.h); the block is logged once, its refusals each time. */
static void strike(struct listener *l, const struct conn_ctx *cc)
{
	if (!ota_guard_strike(l->guard, cc->gc))
		return;
	const struct ota_config *cfg = l->h->deps.cfg;
	char a[200];
	ota_log_escape(ota_guard_conn_addr(cc->gc), a, sizeof(a));
	const struct ota_log_field f[] = {{"OTA_ADDRESS", a}, {"OTA_REASON", "address-blocked"}};
	ota_log_fields(LOG_WARNING, f, 2,
	               "%s: %s: blocked for %u s: %u refused client certificates within %u s",
	               l->name, a, cfg->block_seconds, cfg->refused_certificates_per_ip,
	               cfg->block_seconds);
}

/* Who a refused certificate is counted as: its fingerprint once its chain verified (a known
 * issuer's certificate refused for what it names), else the issuer it presents (a flood of
 * certificates from one foreign CA is one kind). */
static void cert_subject(gnutls_x509_crt_t leaf, const char *fpr, char *out, size_t cap)
{
	char dn[256];
	size_t sz = sizeof(dn);

	if (fpr[0]) {
		snprintf(out, cap, "sha256:%s", fpr);
		return;
	}
	if (!leaf || gnutls_x509_crt_get_issuer_dn(leaf, dn, &sz) < 0) {
		snprintf(out, cap, "(no certificate)");
		return;
	}
	char esc[4 * sizeof(dn)];
	snprintf(out, cap, "issuer %s", ota_log_escape(dn, esc, sizeof(esc)));
}

/* A presented token's fingerprint: never the token (a secret), but one per token. */
static void token_subject(const char *authz, char *out, size_t cap)
{
	unsigned char d[32];

	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, authz, strlen(authz), d) < 0) {
		snprintf(out, cap, "token");
		return;
	}
	snprintf(out, cap, "token sha256:%02x%02x%02x%02x%02x%02x%02x%02x", d[0], d[1], d[2], d[3],
	         d[4], d[5], d[6], d[7]);
}

/* ---- client certificates ---- */

static void set_fail(struct conn_ctx *cc, enum ota_problem p, const char *detail)
{
	cc->problem = p;
	snprintf(cc->detail, sizeof(cc->detail), "%s", detail);
}

static void status_text(unsigned status, char *out, size_t cap)
{
	/* Name the common reasons plainly; GnuTLS's own text for the rest. */
	if (status & GNUTLS_CERT_EXPIRED)
		snprintf(out, cap, "certificate expired");
	else if (status & GNUTLS_CERT_NOT_ACTIVATED)
		snprintf(out, cap, "certificate not yet valid");
	else if (status & GNUTLS_CERT_REVOKED)
		snprintf(out, cap, "certificate revoked");
	else if (status & GNUTLS_CERT_PURPOSE_MISMATCH)
		snprintf(out, cap, "certificate lacks the clientAuth purpose");
	else if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA))
		snprintf(out, cap, "certificate not issued by this listener's CA");
	else {
		gnutls_datum_t d = {0};
		if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &d, 0) ==
		    0) {
			snprintf(out, cap, "%s", (const char *)d.data);
			gnutls_free(d.data);
		} else {
			snprintf(out, cap, "certificate not valid (status 0x%x)", status);
		}
	}
}

static bool leaf_has_client_auth(gnutls_x509_crt_t crt)
{
	char oid[128];

	for (unsigned i = 0;; i++) {
		size_t sz = sizeof(oid);
		unsigned critical;
		int rc = gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &sz, &critical);
		if (rc < 0)
			return false;
		if (strcmp(oid, GNUTLS_KP_TLS_WWW_CLIENT) == 0)
			return true;
	}
}

/* Verifies the peer chain and settles the connection's identity. */
/* Whether the subject holds the attribute `oid` more than once. */
static bool attribute_repeated(gnutls_x509_crt_t crt, const char *oid)
{
	char v[8];
	size_t sz = sizeof(v);
	int rc = gnutls_x509_crt_get_dn_by_oid(crt, oid, 1, 0, v, &sz);

	return rc >= 0 || rc == GNUTLS_E_SHORT_MEMORY_BUFFER;
}

/* The problem answering an identity check's result (OTA_P_NONE for OTA_AUTH_OK), and why. */
static enum ota_problem auth_problem(enum ota_auth_result ar, const char **why)
{
	*why = ota_auth_result_text(ar);
	switch (ar) {
	case OTA_AUTH_OK:
		return OTA_P_NONE;
	case OTA_AUTH_BAD_NAME:
		*why = "the certificate's CN is not a valid name (1-64 of A-Z a-z 0-9 . _ -)";
		return OTA_P_CERT_REJECTED;
	case OTA_AUTH_BAD_ROLE:
		*why = "the certificate's OU is not a role (admin, operator, auditor) "
		       "or not the principal's role";
		return OTA_P_CERT_REJECTED;
	case OTA_AUTH_REVOKED:
		return OTA_P_CERT_REVOKED;
	case OTA_AUTH_CONFLICT:
		return OTA_P_IDENTITY_CONFLICT;
	case OTA_AUTH_DECOMMISSIONED:
		return OTA_P_DEVICE_DECOMMISSIONED;
	case OTA_AUTH_PENDING:
		return OTA_P_DEVICE_PENDING;
	case OTA_AUTH_REJECTED:
		return OTA_P_DEVICE_REJECTED;
	case OTA_AUTH_UNKNOWN:
		return OTA_P_DEVICE_UNREGISTERED;
	case OTA_AUTH_DISABLED:
		return OTA_P_PRINCIPAL_DISABLED;
	case OTA_AUTH_ERROR:
	case OTA_AUTH_TOKEN_INVALID:
	case OTA_AUTH_TOKEN_EXPIRED:
	case OTA_AUTH_TOKEN_REVOKED:
		break;
	}
	*why = "identity check failed";
	return OTA_P_INTERNAL;
}

/* The cache key of a presented chain: the SHA-256 of the leaf's DER (its fingerprint, into
 * leaf) for a chain of one, else the SHA-256 of every certificate's DER in turn. 0 on success. */
static int chain_key(const gnutls_datum_t *peers, unsigned n, unsigned char leaf[32],
                     unsigned char key[32])
{
	gnutls_hash_hd_t hd;

	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, peers[0].data, peers[0].size, leaf) < 0)
		return -1;
	if (n == 1) {
		memcpy(key, leaf, 32);
		return 0;
	}
	if (gnutls_hash_init(&hd, GNUTLS_DIG_SHA256) < 0)
		return -1;
	for (unsigned i = 0; i < n; i++)
		if (gnutls_hash(hd, peers[i].data, peers[i].size) < 0) {
			gnutls_hash_deinit(hd, NULL);
			return -1;
		}
	gnutls_hash_deinit(hd, key);
	return 0;
}

/* Remembers a chain that verified with its names, until the first of its certificates or the
 * listener's CAs expires. */
static void remember(struct listener *l, gnutls_x509_crt_t *chain, unsigned n,
                     const unsigned char key[32], const char *cn, const char *ou)
{
	struct ota_idcache_id id;
	int64_t until = l->ca_not_after;

	for (unsigned i = 0; i < n; i++) {
		time_t t = gnutls_x509_crt_get_expiration_time(chain[i]);
		if (t == (time_t)-1)
			return;
		if ((int64_t)t < until)
			until = (int64_t)t;
	}
	snprintf(id.cn, sizeof(id.cn), "%s", cn);
	snprintf(id.ou, sizeof(id.ou), "%s", ou);
	ota_idcache_put(l->ids, key, until, &id);
}

static void settle_identity(struct listener *l, struct MHD_Connection *c, struct conn_ctx *cc)
{
	const union MHD_ConnectionInfo *ci;
	gnutls_session_t s;
	const gnutls_datum_t *peers;
	unsigned npeers = 0, n = 0, status = 0;
	gnutls_x509_crt_t chain[MAX_CHAIN];
	char cn[OTA_ID_MAX + 2] = "", ou[OTA_IDCACHE_OU_MAX] = "", fpr[OTA_HEX256] = "", why[128];
	unsigned char digest[32], key[32];
	size_t sz;
	bool locked = false;

	cc->settled = true;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session) {
		set_fail(cc, OTA_P_CERT_REQUIRED, "no TLS session");
		return;
	}
	s = (gnutls_session_t)ci->tls_session;
	peers = gnutls_certificate_get_peers(s, &npeers);
	if (!peers || npeers == 0) {
		set_fail(cc, OTA_P_CERT_REQUIRED, "no client certificate was presented");
		/* Refused on the device listener; the management listener may still take a token.
		 */
		if (l->kind == OTA_L_DEVICE)
			strike(l, cc);
		return;
	}
	if (npeers > MAX_CHAIN)
		npeers = MAX_CHAIN;
	/* A chain verified before (the device's last poll; a resumed session carries the chain
	 * of its first handshake) is not verified and parsed again: its names come from the
	 * cache. Revocation is still checked below, on every connection (auth.h). */
	if (chain_key(peers, npeers, digest, key) != 0) {
		set_fail(cc, OTA_P_INTERNAL, "cannot hash the certificate");
		return;
	}
	/* The trust list and the cache of what it verified stay one pair until the end. */
	pthread_rwlock_rdlock(&l->tl_lock);
	locked = true;
	struct ota_idcache_id known;
	if (ota_idcache_get(l->ids, key, (int64_t)time(NULL), &known)) {
		snprintf(cn, sizeof(cn), "%s", known.cn);
		snprintf(ou, sizeof(ou), "%s", known.ou);
		goto verified;
	}
	for (n = 0; n < npeers; n++) {
		if (gnutls_x509_crt_init(&chain[n]) < 0)
			break;
		if (gnutls_x509_crt_import(chain[n], &peers[n], GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(chain[n]);
			break;
		}
	}
	if (n != npeers) {
		set_fail(cc, OTA_P_CERT_REJECTED, "the client certificate chain cannot be parsed");
		goto out;
	}
	gnutls_typed_vdata_st purpose = {
	    .type = GNUTLS_DT_KEY_PURPOSE_OID,
	    .data = (void *)GNUTLS_KP_TLS_WWW_CLIENT,
	};
	int rc = gnutls_x509_trust_list_verify_crt2(l->tl, chain, n, &purpose, 1, 0, &status, NULL);
	if (rc < 0 || status != 0) {
		if (rc < 0)
			snprintf(why, sizeof(why), "verification failed: %s", gnutls_strerror(rc));
		else
			status_text(status, why, sizeof(why));
		set_fail(cc,
		         (status & GNUTLS_CERT_REVOKED) ? OTA_P_CERT_REVOKED : OTA_P_CERT_REJECTED,
		         why);
		goto out;
	}
	/* A certificate without any EKU passes GnuTLS's purpose check: demand it explicitly. */
	if (!leaf_has_client_auth(chain[0])) {
		set_fail(cc, OTA_P_CERT_REJECTED, "certificate lacks the clientAuth purpose");
		goto out;
	}
	/* The identity is drawn from the CN and the OU: a subject with two of either is
	 * ambiguous (which one names the caller?) and refused rather than read as its first. */
	if (attribute_repeated(chain[0], GNUTLS_OID_X520_COMMON_NAME)) {
		set_fail(cc, OTA_P_CERT_REJECTED, "the certificate's subject has more than one CN");
		goto out;
	}
	if (attribute_repeated(chain[0], GNUTLS_OID_X520_ORGANIZATIONAL_UNIT_NAME)) {
		set_fail(cc, OTA_P_CERT_REJECTED, "the certificate's subject has more than one OU");
		goto out;
	}
	sz = sizeof(cn);
	if (gnutls_x509_crt_get_dn_by_oid(chain[0], GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &sz) < 0)
		cn[0] = '\0';
	sz = sizeof(ou);
	if (gnutls_x509_crt_get_dn_by_oid(chain[0], GNUTLS_OID_X520_ORGANIZATIONAL_UNIT_NAME, 0, 0,
	                                  ou, &sz) < 0)
		ou[0] = '\0';
	remember(l, chain, n, key, cn, ou);
verified:
	for (unsigned i = 0; i < 32; i++)
		snprintf(fpr + 2 * i, 3, "%02x", digest[i]);

	enum ota_auth_result ar;
	if (l->kind == OTA_L_DEVICE)
		ar = ota_auth_device_policy(l->h->deps.store, (int)l->h->deps.cfg->admission, cn,
		                            fpr, (int64_t)time(NULL), &cc->id);
	else
		ar = ota_auth_operator(l->h->deps.store, cn, ou, fpr, &cc->id);
	const char *why_text = NULL;
	cc->problem = auth_problem(ar, &why_text);
	if (cc->problem != OTA_P_NONE)
		set_fail(cc, cc->problem, why_text);
out:
	if (cc->problem != OTA_P_NONE) {
		const struct ota_log_field f[] = {{"OTA_CN", cn[0] ? cn : NULL},
		                                  {"OTA_OU", ou[0] ? ou : NULL},
		                                  {"OTA_FINGERPRINT", fpr[0] ? fpr : NULL}};
		ota_log_fields(LOG_INFO, f, 3, "%s: refused client %s: %s", l->name,
		               cn[0] ? cn : "(no name)", cc->detail);
		if (cc->problem == OTA_P_CERT_REJECTED || cc->problem == OTA_P_CERT_REVOKED)
			strike(l, cc);
		char subject[1100];
		cert_subject(n > 0 ? chain[0] : NULL, fpr, subject, sizeof(subject));
		const char *slug = ota_problem_info(cc->problem)->slug;
		/* A security event: audited (a pending device was audited when first seen), the
		 * first of its kind in the window on its own, the rest in the window's count. */
		if (cc->problem == OTA_P_DEVICE_PENDING || cc->problem == OTA_P_INTERNAL ||
		    cc->problem == OTA_P_CERT_REQUIRED)
			(void)count_refusal(l, NULL, slug, subject, NULL);
		else {
			/* Who tried: the name the certificate presents even when it failed
			 * verification (escaped: it may hold anything), and no role it was not
			 * given. */
			char shown[OTA_ID_MAX + 2] = "";
			size_t ssz = sizeof(shown);
			if (!cn[0] && n > 0 &&
			    gnutls_x509_crt_get_dn_by_oid(chain[0], GNUTLS_OID_X520_COMMON_NAME, 0,
			                                  0, shown, &ssz) < 0)
				shown[0] = '\0';
			char name[4 * sizeof(shown) + 4 * sizeof(cn)];
			ota_log_escape(cn[0] ? cn : shown, name, sizeof(name));
			if (!count_refusal(l, "auth.refused", slug, subject, name))
				goto counted;
			struct ota_audit_entry e = {
			    .actor = name[0] ? name : "(no name)",
			    .role = l->kind == OTA_L_DEVICE ? "device" : "none",
			    .action = "auth.refused",
			    .device_id = l->kind == OTA_L_DEVICE && cn[0] ? name : NULL,
			    .object = fpr[0] ? fpr : NULL,
			    .detail = cc->detail};
			if (ota_audit_append(l->h->deps.store, &e, (int64_t)time(NULL), NULL) !=
			    OTA_OK)
				log_err("%s: cannot audit a refused client", l->name);
		}
	}
counted:
	for (unsigned i = 0; i < n; i++)
		gnutls_x509_crt_deinit(chain[i]);
	if (locked)
		pthread_rwlock_unlock(&l->tl_lock);
}

/* ---- request life cycle ---- */

/* ---- connection limits and deadlines (guard.h) ---- */

/* Registers a started connection with its listener's guard (its deadlines, its address). */
static void guard_open(struct listener *l, struct MHD_Connection *c, struct conn_ctx *cc,
                       const union MHD_ConnectionInfo *fi)
{
	const union MHD_ConnectionInfo *ai =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	if (cc && fi && fi->connect_fd >= 0)
		cc->gc = ota_guard_open(l->guard, fi->connect_fd, ai ? ai->client_addr : NULL);
}

/* The connection of r enters `phase` (its deadline restarts). */
static void guard_phase(struct listener *l, struct MHD_Connection *c, enum ota_guard_phase phase)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn_ctx *cc = ci ? ci->socket_context : NULL;

	if (cc)
		ota_guard_phase(l->guard, cc->gc, phase);
}

/* libmicrohttpd's accept policy: the per-address limit, with the address named. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct listener *l = cls;

	return ota_guard_admit(l->guard, addr, len) ? MHD_YES : MHD_NO;
}

/* The thread that ends the refusal windows and cuts connections past their deadlines. */
static void *watch(void *arg)
{
	struct ota_http *h = arg;

	pthread_mutex_lock(&h->watch_mu);
	while (!h->watch_stop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 200 * 1000 * 1000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		(void)pthread_cond_timedwait(&h->watch_cv, &h->watch_mu, &until);
		if (h->watch_stop)
			break;
		pthread_mutex_unlock(&h->watch_mu);
		int64_t now_ms = ota_guard_now_ms();
		for (int i = 0; i < 2; i++)
			if (h->l[i].guard)
				ota_guard_sweep(h->l[i].guard, now_ms);
		ota_refusals_tick(h->refusals, (int64_t)time(NULL));
		pthread_mutex_lock(&h->watch_mu);
	}
	pthread_mutex_unlock(&h->watch_mu);
	return NULL;
}

static enum ota_err watch_start(struct ota_http *h, char *msg, size_t msglen)
{
	const struct ota_config *cfg = h->deps.cfg;

	if (ota_refusals_new(h->deps.store, cfg->refusal_window, cfg->refusal_kinds,
	                     &h->refusals) != OTA_OK)
		return OTA_ERR_NOMEM;
	h->deps.refusals = h->refusals;
	for (int i = 0; i < 2; i++) {
		struct listener *l = &h->l[i];
		bool dev = l->kind == OTA_L_DEVICE;
		struct ota_guard_limits lim = {
		    .per_ip = dev ? cfg->max_connections_per_ip : cfg->mgmt_max_connections_per_ip,
		    .header_s = cfg->header_timeout,
		    .body_s = cfg->body_timeout,
		    .strikes = cfg->refused_certificates_per_ip,
		    .block_s = cfg->block_seconds,
		};
		if (ota_guard_new(&lim, connection_refused, l, &l->guard) != OTA_OK)
			return OTA_ERR_NOMEM;
	}
	pthread_mutex_init(&h->watch_mu, NULL);
	pthread_cond_init(&h->watch_cv, NULL);
	if (pthread_create(&h->watch, NULL, watch, h) != 0) {
		snprintf(msg, msglen, "cannot start the connection watch thread");
		return OTA_ERR_NOMEM;
	}
	h->watching = true;
	return OTA_OK;
}

/* After the listeners stopped: ends the watch, writes the open window's summaries. */
static void watch_stop(struct ota_http *h)
{
	if (h->watching) {
		pthread_mutex_lock(&h->watch_mu);
		h->watch_stop = true;
		pthread_cond_signal(&h->watch_cv);
		pthread_mutex_unlock(&h->watch_mu);
		pthread_join(h->watch, NULL);
		pthread_mutex_destroy(&h->watch_mu);
		pthread_cond_destroy(&h->watch_cv);
		h->watching = false;
	}
	ota_refusals_free(h->refusals);
	h->refusals = NULL;
	for (int i = 0; i < 2; i++) {
		ota_guard_free(h->l[i].guard);
		h->l[i].guard = NULL;
	}
}

/* libmicrohttpd refused a connection or a request by a limit of its own: the global
 * connection limit, or the memory of a connection (headers too large). Its message names no
 * address. */
static void mhd_refusal(struct listener *l, const char *msg)
{
	if (strstr(msg, "connection limit"))
		connection_refused(
		    l, "connection-limit", "(not reported)",
		    "connection refused: the listener's connection limit is reached");
	else if (strstr(msg, "pool") || strstr(msg, "too large") || strstr(msg, "too big"))
		connection_refused(l, "memory-limit", "(not reported)",
		                   "request refused: it needs more than the connection's memory");
}

/* The session copies the master key (GnuTLS derives the keys that encrypt tickets from it by
 * time); a copy taken under the lock, so that a key loaded again is never read half. */
static void enable_tickets(struct listener *l, gnutls_session_t s)
{
	struct ota_http *h = l->h;
	uint8_t key[OTA_TICKET_KEY_SIZE];
	gnutls_datum_t k = {key, sizeof(key)};

	pthread_mutex_lock(&h->ticket_mu);
	memcpy(key, l->kind == OTA_L_DEVICE ? h->ticket_key : h->mgmt_ticket_key, sizeof(key));
	pthread_mutex_unlock(&h->ticket_mu);
	if (gnutls_session_ticket_enable_server(s, &k) < 0)
		log_warn("session tickets cannot be enabled on a connection");
	gnutls_memset(key, 0, sizeof(key));
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
	struct listener *l = cls;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		struct conn_ctx *cc = calloc(1, sizeof(struct conn_ctx));
		*socket_context = cc;
		/* Before the TLS handshake: its small records must not wait for the peer's
		 * delayed ACK (Nagle), which costs a new connection ~40 ms. Set once on the
		 * listening socket, which accepted sockets inherit on Linux; per connection
		 * only where that failed. */
		const union MHD_ConnectionInfo *fi =
		    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		int one = 1;
		if (!l->nodelay_inherited && fi && fi->connect_fd >= 0)
			(void)setsockopt(fi->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one,
			                 sizeof(one));
		guard_open(l, c, cc, fi);
		if (l->h->deps.cfg->session_tickets) {
			const union MHD_ConnectionInfo *ci =
			    MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
			if (ci && ci->tls_session)
				enable_tickets(l, (gnutls_session_t)ci->tls_session);
		}
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		struct conn_ctx *cc = *socket_context;
		if (cc)
			ota_guard_close(l->guard, cc->gc);
		free(*socket_context);
		*socket_context = NULL;
	}
}

static struct MHD_Response *json_response(json_t *j, const char *content_type)
{
	/* 15 significant digits: a percent of hundredths (99.99) reads 99.99, not the 17-digit
	 * expansion of the nearest double (docs/rollouts.md). */
	char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
	struct MHD_Response *resp;

	if (!text)
		return NULL;
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return NULL;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	return resp;
}

/* s itself when JSON can carry it (valid UTF-8), else its escaped form (log.h) in buf. */
static const char *representable(const char *s, char *buf, size_t cap)
{
	json_t *t = json_string(s);

	if (t) {
		json_decref(t);
		return s;
	}
	return ota_log_escape(s, buf, cap);
}

/* The last resort when no answer can be built: a fixed problem, never an empty reply. */
static struct MHD_Response *internal_problem(void)
{
	static const char body[] =
	    "{\"type\":\"" OTA_PROBLEM_TYPE_PREFIX "internal\",\"title\":\"Internal error\","
	    "\"status\":500,\"detail\":\"the answer could not be built\"}";
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);

	if (resp)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		                        "application/problem+json");
	return resp;
}

/* Answers 503 storage-unavailable come at a request's pace while the store fails: logged once a
 * window, with the count of the others. */
static struct ota_log_limit storage_answers = OTA_LOG_LIMIT_INIT(10);

static void log_storage_answer(const struct ota_req *r, const struct ota_log_field *f,
                               unsigned status)
{
	unsigned long quiet;

	if (!ota_log_limit_pass(&storage_answers, "", &quiet))
		return;
	if (quiet)
		ota_log_fields(LOG_ERR, f, 4,
		               "%s %s: %u %s (and %lu more such answers since the last line)",
		               r->method, r->url, status, r->detail, quiet);
	else
		ota_log_fields(LOG_ERR, f, 4, "%s %s: %u %s", r->method, r->url, status, r->detail);
}

/* A server error of a request that met a full or failing disk or a database out of reach
 * (common/err.h) is that problem instead: nothing was stored, and the same request may succeed
 * once space or the database returns. */
static void storage_fault_answer(struct ota_req *r)
{
	if (!ota_storage_fault_take())
		return;
	if (r->problem == OTA_P_NONE || ota_problem_info(r->problem)->status < 500 ||
	    r->problem == OTA_P_UNAVAILABLE)
		return;
	char was[sizeof(r->detail)];
	snprintf(was, sizeof(was), "%s", r->detail);
	r->problem = OTA_P_NONE; /* ota_req_fail() keeps the first problem */
	ota_req_fail(r, OTA_P_STORAGE_UNAVAILABLE, "storage full, failing or out of reach: %.200s",
	             was);
}

bool ota_req_admit(struct ota_req *r)
{
	const char *why;

	if (!r->conn_who || r->conn_who->admit == OTA_ADMIT_NONE)
		return true;
	enum ota_auth_result ar =
	    ota_auth_device_admit(r->deps->store, r->conn_who, (int64_t)time(NULL));
	enum ota_problem p = auth_problem(ar, &why);
	if (p == OTA_P_NONE)
		return true;
	ota_req_fail(r, p, "%s", why);
	if (p != OTA_P_INTERNAL) {
		/* Another request admitted or pinned the id first, with another certificate or
		 * into another state: refused as a connection would be (and audited). */
		struct ota_audit_entry e = {.actor = r->conn_who->name,
		                            .role = "device",
		                            .action = "auth.refused",
		                            .device_id = r->conn_who->name,
		                            .object = r->conn_who->fingerprint,
		                            .detail = why};
		if (ota_audit_append(r->deps->store, &e, (int64_t)time(NULL), NULL) != OTA_OK)
			log_err("device: cannot audit a refused client");
	}
	return false;
}

/* Orders a wait against its wake: one lock for every request, held only for a flag and the
 * suspend or resume call (a request's own lock could be freed by the wake it orders). */
static pthread_mutex_t wait_mu = PTHREAD_MUTEX_INITIALIZER;

void ota_req_wait(struct ota_req *r)
{
	pthread_mutex_lock(&wait_mu);
	if (!r->woken) {
		/* Suspended before the wake can resume it: a resume of a connection not
		 * suspended is undefined. Its timeout does not run meanwhile; the work does. */
		MHD_suspend_connection(r->conn);
		r->suspended = true;
		atomic_fetch_add(&r->http->suspended, 1);
	}
	pthread_mutex_unlock(&wait_mu);
	if (!r->suspended) {
		void (*resume)(struct ota_req *) = r->resume;
		r->resume = NULL;
		resume(r);
	}
}

void ota_req_wake(void *arg)
{
	struct ota_req *r = arg;

	pthread_mutex_lock(&wait_mu);
	r->woken = true;
	if (r->suspended) {
		struct ota_http *h = r->http;
		/* The listener's ITC wakes its thread; r may be answered and freed from here. */
		MHD_resume_connection(r->conn);
		atomic_fetch_sub(&h->suspended, 1);
	}
	pthread_mutex_unlock(&wait_mu);
}

/* Queue whatever the request ended with: a problem, a JSON answer or a ready response. */
static enum MHD_Result respond(struct ota_req *r)
{
	struct MHD_Response *resp = NULL;
	unsigned status = r->status;
	enum MHD_Result ret;

	if (r->problem == OTA_P_NONE && !r->response && !r->answer)
		ota_req_fail(r, OTA_P_INTERNAL, "the handler gave no answer");
	/* A device is admitted by its first request that succeeds, and only then. */
	if (r->problem == OTA_P_NONE && r->status >= 200 && r->status < 300)
		(void)ota_req_admit(r);
	storage_fault_answer(r);
	if (r->problem != OTA_P_NONE) {
		const struct ota_problem_info *pi = ota_problem_info(r->problem);
		char type[96], inst[1024], det[1024];
		snprintf(type, sizeof(type), OTA_PROBLEM_TYPE_PREFIX "%s", pi->slug);
		/* The path and the detail may hold bytes JSON cannot: they are escaped then. */
		json_t *j =
		    json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title", pi->title,
		              "status", (int)pi->status, "detail",
		              representable(r->detail[0] ? r->detail : pi->title, det, sizeof(det)),
		              "instance", representable(r->url, inst, sizeof(inst)));
		status = pi->status;
		if (r->response) {
			MHD_destroy_response(r->response);
			r->response = NULL;
		}
		resp = j ? json_response(j, "application/problem+json") : NULL;
		json_decref(j);
		if (resp && r->allow)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
		if (resp && r->content_range[0])
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE,
			                        r->content_range);
		if (resp && r->problem == OTA_P_STORAGE_UNAVAILABLE)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER,
			                        OTA_STORAGE_RETRY_AFTER);
		/* The URL and the detail may hold anything a client sent: the logger escapes
		 * them, and the journal also gets them as fields of their own. */
		const struct ota_log_field f[] = {{"OTA_METHOD", r->method},
		                                  {"OTA_URL", r->url},
		                                  {"OTA_ACTOR", r->who ? r->who->name : NULL},
		                                  {"OTA_DETAIL", r->detail}};
		if (r->problem == OTA_P_STORAGE_UNAVAILABLE)
			log_storage_answer(r, f, status);
		else if (status >= 500)
			ota_log_fields(LOG_ERR, f, 4, "%s %s: %u %s", r->method, r->url, status,
			               r->detail);
		else
			ota_log_fields(LOG_INFO, f, 4, "%s %s by %s: %u %s", r->method, r->url,
			               r->who ? r->who->name : "-", status, r->detail);
	} else if (r->response) {
		resp = r->response;
		r->response = NULL;
	} else {
		resp = json_response(r->answer, "application/json");
		log_debug("%s %s by %s: %u", r->method, r->url, r->who ? r->who->name : "-",
		          status);
	}
	if (!resp) {
		log_err("%s %s: the answer could not be built", r->method, r->url);
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		resp = internal_problem();
	}
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if (r->close) /* the caller's access ended: no further request on this connection */
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	r->queued = true;
	return ret;
}

static uint64_t header_u64(struct MHD_Connection *c, const char *name)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
	char *end;

	if (!v)
		return UINT64_MAX;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || *end || end == v)
		return UINT64_MAX - 1; /* malformed: MHD rejects it before us anyway */
	return n;
}

/* Audits a request refused for its role (a security event). */
static void audit_denied(struct listener *l, struct ota_req *r)
{
	char what[200], url[160];

	snprintf(what, sizeof(what), "%s %s", r->method, representable(r->url, url, sizeof(url)));
	struct ota_audit_entry e = {.actor = r->who->name,
	                            .role = ota_auth_role_name(r->who->role),
	                            .action = "access.denied",
	                            .device_id =
	                                r->who->role == OTA_ROLE_DEVICE ? r->who->name : NULL,
	                            .object = r->who->token_id[0] ? r->who->token_id : NULL,
	                            .detail = what};
	if (ota_audit_append(l->h->deps.store, &e, (int64_t)time(NULL), NULL) != OTA_OK)
		log_err("%s: cannot audit a denied request", l->name);
}

/* A path that is not valid UTF-8 (e.g. "%ff") names nothing: 400, and the refusal is audited
 * with the path escaped. False when refused. */
static bool url_representable(struct listener *l, struct ota_req *r)
{
	char url[160], what[200];
	json_t *t = json_string(r->url);

	if (t) {
		json_decref(t);
		return true;
	}
	ota_log_escape(r->url, url, sizeof(url));
	ota_req_fail(r, OTA_P_INVALID_FIELD, "the request path is not valid UTF-8");
	if (!count_refusal(l, "request.refused", "path-not-utf8", r->who->name, r->who->name))
		return false;
	snprintf(what, sizeof(what), "%s %s: the path is not valid UTF-8", r->method, url);
	struct ota_audit_entry e = {.actor = r->who->name,
	                            .role = ota_auth_role_name(r->who->role),
	                            .action = "request.refused",
	                            .device_id =
	                                r->who->role == OTA_ROLE_DEVICE ? r->who->name : NULL,
	                            .object = r->who->token_id[0] ? r->who->token_id : NULL,
	                            .detail = what};
	if (ota_audit_append(l->h->deps.store, &e, (int64_t)time(NULL), NULL) != OTA_OK)
		log_err("%s: cannot audit a refused request", l->name);
	return false;
}

/* The identity of a request carrying "Authorization"; false (problem set, audited) if bad. */
static bool token_identity(struct listener *l, struct ota_req *r, const char *authz)
{
	enum ota_auth_result ar =
	    ota_auth_token(l->h->deps.store, authz, (int64_t)time(NULL), &r->token_who);
	enum ota_problem p;

	switch (ar) {
	case OTA_AUTH_OK:
		r->who = &r->token_who;
		return true;
	case OTA_AUTH_TOKEN_EXPIRED:
		p = OTA_P_TOKEN_EXPIRED;
		break;
	case OTA_AUTH_TOKEN_REVOKED:
		p = OTA_P_TOKEN_REVOKED;
		r->close = true;
		break;
	case OTA_AUTH_DISABLED:
		p = OTA_P_PRINCIPAL_DISABLED;
		r->close = true;
		break;
	case OTA_AUTH_ERROR:
		ota_req_fail(r, OTA_P_INTERNAL, "identity check failed");
		return false;
	default:
		p = OTA_P_TOKEN_INVALID;
		break;
	}
	ota_req_fail(r, p, "%s", ota_auth_result_text(ar));
	char subject[64];
	token_subject(authz, subject, sizeof(subject));
	if (!count_refusal(l, "auth.refused", ota_problem_info(p)->slug, subject, NULL))
		return false;
	char what[200], url[160];
	snprintf(what, sizeof(what), "%s %s: %s", r->method,
	         representable(r->url, url, sizeof(url)), ota_auth_result_text(ar));
	struct ota_audit_entry e = {.actor = r->token_who.name[0] ? r->token_who.name : "(token)",
	                            .role = "token",
	                            .action = "auth.refused",
	                            .detail = what};
	if (ota_audit_append(l->h->deps.store, &e, (int64_t)time(NULL), NULL) != OTA_OK)
		log_err("%s: cannot audit a refused token", l->name);
	return false;
}

/* True if the request's Content-Type is application/json (parameters such as charset allowed). */
static bool content_type_json(struct MHD_Connection *c)
{
	const char *ct =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	static const char want[] = "application/json";

	if (!ct || strncasecmp(ct, want, sizeof(want) - 1) != 0)
		return false;
	ct += sizeof(want) - 1;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* First call of a request: identity, route, role, declared size. */
static void prepare(struct listener *l, struct ota_req *r)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn_ctx *cc = ci ? ci->socket_context : NULL;
	bool path_known;
	const char *allow;

	if (!cc) {
		ota_req_fail(r, OTA_P_INTERNAL, "no connection context");
		return;
	}
	if (atomic_load(&l->h->stopping)) {
		ota_req_fail(r, OTA_P_UNAVAILABLE, "otad is shutting down");
		return;
	}
	if (l->kind == OTA_L_MANAGEMENT && (r->route = ota_console_route(&l->h->deps, r->url)))
		return; /* the console's static files: no identity (console.c) */
	const char *authz = l->kind == OTA_L_MANAGEMENT
	                        ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	                                                      MHD_HTTP_HEADER_AUTHORIZATION)
	                        : NULL;
	if (authz) {
		/* An API token (auth.h) stands for the caller instead of a client certificate. */
		if (!token_identity(l, r, authz))
			return;
	} else {
		/* Settled once per connection, and again whenever who may connect has changed
		 * since (store.h: the access generation), so that a revocation, decommission or
		 * disable takes effect on the next request of an open connection. */
		uint64_t gen = ota_store_access_generation() + atomic_load(&l->trust_gen);
		if (!cc->settled || cc->gen != gen) {
			bool was_good = cc->settled && cc->problem == OTA_P_NONE;
			cc->gen = gen;
			settle_identity(l, r->conn, cc);
			if (was_good && cc->problem != OTA_P_NONE)
				cc->closing = true;
		}
		if (cc->problem != OTA_P_NONE) {
			ota_req_fail(r, cc->problem, "%s", cc->detail);
			r->close = cc->closing;
			return;
		}
		r->who = r->conn_who = &cc->id;
	}
	if (!url_representable(l, r))
		return;
	r->route = ota_route_match(l->kind, r->method, r->url, r->params, &path_known, &allow);
	if (!r->route) {
		if (path_known) {
			snprintf(r->allow_buf, sizeof(r->allow_buf), "%s", allow);
			r->allow = r->allow_buf;
			ota_req_fail(r, OTA_P_METHOD_NOT_ALLOWED, "%s is not allowed on %s",
			             r->method, r->url);
		} else {
			ota_req_fail(r, OTA_P_NOT_FOUND, "no resource %s", r->url);
		}
		return;
	}
	if (!(r->route->roles & (unsigned)r->who->role)) {
		ota_req_fail(r, OTA_P_ROLE_FORBIDDEN, "role %s may not call %s %s",
		             ota_auth_role_name(r->who->role), r->method, r->route->pattern);
		audit_denied(l, r);
		return;
	}
	uint64_t limit = r->route->body == OTA_BODY_STREAM ? l->h->deps.cfg->image_max
	                                                   : l->h->deps.cfg->body_max;
	if (r->content_length != UINT64_MAX && r->content_length > limit) {
		ota_req_fail(r, OTA_P_BODY_TOO_LARGE, "the body is %llu bytes, the limit is %llu",
		             (unsigned long long)r->content_length, (unsigned long long)limit);
		return;
	}
	/* The device API reads JSON only when it is declared as JSON (docs/device-api.md). */
	if (l->kind == OTA_L_DEVICE && r->route->body == OTA_BODY_JSON &&
	    !content_type_json(r->conn)) {
		ota_req_fail(r, OTA_P_UNSUPPORTED_MEDIA_TYPE,
		             "the body must be sent as Content-Type: application/json");
		return;
	}
	if (r->route->body == OTA_BODY_STREAM)
		r->route->stream_begin(r);
}

static void consume(struct listener *l, struct ota_req *r, const char *data, size_t len)
{
	if (r->problem != OTA_P_NONE || !r->route)
		return; /* discarded */
	switch (r->route->body) {
	case OTA_BODY_NONE:
		break;
	case OTA_BODY_STREAM:
		r->route->stream_data(r, data, len);
		break;
	case OTA_BODY_JSON:
		if (len > l->h->deps.cfg->body_max - r->body_len) {
			ota_req_fail(r, OTA_P_BODY_TOO_LARGE,
			             "the body is over the limit of %llu bytes",
			             (unsigned long long)l->h->deps.cfg->body_max);
			break;
		}
		char *nb = realloc(r->body, r->body_len + len + 1);
		if (!nb) {
			ota_req_fail(r, OTA_P_INTERNAL, "out of memory");
			break;
		}
		r->body = nb;
		memcpy(r->body + r->body_len, data, len);
		r->body_len += len;
		r->body[r->body_len] = '\0';
		break;
	}
}

static void finish(struct ota_req *r)
{
	if (r->problem != OTA_P_NONE)
		return;
	if (r->route->body == OTA_BODY_JSON) {
		json_error_t err;
		r->json = json_loadb(r->body ? r->body : "", r->body_len,
		                     JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
		if (!r->json && json_error_code(&err) == json_error_numeric_overflow) {
			/* Valid JSON whose integer no field accepts (docs/errors.md). */
			ota_req_fail(r, OTA_P_INVALID_FIELD, "line %d column %d: %s", err.line,
			             err.column, err.text);
			return;
		}
		if (!r->json) {
			ota_req_fail(r, OTA_P_MALFORMED_JSON, "line %d column %d: %s", err.line,
			             err.column, err.text);
			return;
		}
		if (!json_is_object(r->json)) {
			ota_req_fail(r, OTA_P_INVALID_FIELD, "the body must be a JSON object");
			return;
		}
	}
	r->route->handle(r);
}

/* The device listener routes the path as sent: its parameters are lowercase hex and ids, so
 * nothing in them needs decoding, and "%2f" or "%00" must not become a slash or an end. */
static size_t keep_raw_path(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	struct listener *l = cls;
	struct ota_req *r = *con_cls;

	(void)version;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		*con_cls = r;
		atomic_fetch_add(&l->h->inflight, 1);
		r->conn = c;
		r->deps = &l->h->deps;
		r->http = l->h;
		r->url = url;
		r->method = method;
		r->content_length = header_u64(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
		(void)
		    ota_storage_fault_take(); /* a note left by an earlier request of the thread */
		prepare(l, r);
		/* A refused request with a body is answered at once (and the connection closed)
		 * rather than reading a body nobody wants; otherwise answer on a later call. */
		bool has_body = (r->content_length != UINT64_MAX && r->content_length != 0) ||
		                MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		                                            MHD_HTTP_HEADER_TRANSFER_ENCODING);
		if (r->problem != OTA_P_NONE && has_body)
			return respond(r);
		guard_phase(l, c,
		            has_body && r->problem == OTA_P_NONE && r->route &&
		                    r->route->body == OTA_BODY_JSON
		                ? OTA_GUARD_BODY
		                : OTA_GUARD_BUSY);
		return MHD_YES;
	}
	if (r->queued) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size) {
		consume(l, r, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->suspended) {
		/* Called again after ota_req_wake() resumed the connection: answer now. */
		void (*resume)(struct ota_req *) = r->resume;
		r->resume = NULL;
		r->suspended = false;
		(void)ota_storage_fault_take(); /* a note of another request of the thread */
		if (resume)
			resume(r);
		return respond(r);
	}
	guard_phase(l, c, OTA_GUARD_BUSY);
	finish(r);
	if (r->resume && !r->queued)
		return MHD_YES; /* suspended: answered when woken (ota_req_wait) */
	return respond(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct listener *l = cls;
	struct ota_req *r = *con_cls;

	(void)toe;
	if (!r)
		return;
	guard_phase(l, c, OTA_GUARD_HEADERS); /* the next request of a kept-alive connection */
	if (r->route && r->route->stream_free)
		r->route->stream_free(r);
	if (r->wait && r->wait_free)
		r->wait_free(r); /* woken but never answered (otad stopping) */
	if (r->response)
		MHD_destroy_response(r->response);
	json_decref(r->answer);
	json_decref(r->json);
	free(r->body);
	free(r);
	*con_cls = NULL;
	atomic_fetch_sub(&l->h->inflight, 1);
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	struct listener *l = cls;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	/* Handshake failures of scanners and old clients are routine: debug level. */
	log_debug("%s: %s", l->name, msg);
	mhd_refusal(l, msg);
}

/* ---- start and stop ---- */

static int parse_listen(const char *s, struct sockaddr_storage *ss, bool *v6)
{
	char host[256];
	const char *colon;
	unsigned long port;
	char *end;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, (size_t)(rb - s - 1));
		host[rb - s - 1] = '\0';
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(host))
			return -1;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
	}
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port > 65535)
		return -1;
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*v6 = false;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*v6 = true;
		return 0;
	}
	return -1;
}

/* The earliest notAfter of the CA certificates in pem: no cached chain outlives it. */
static int ca_expiry(const gnutls_datum_t *pem, int64_t *out)
{
	gnutls_x509_crt_t *cas = NULL;
	unsigned n = 0;
	int rc = -1;

	if (gnutls_x509_crt_list_import2(&cas, &n, pem, GNUTLS_X509_FMT_PEM, 0) < 0)
		return -1;
	*out = INT64_MAX;
	for (unsigned i = 0; i < n; i++) {
		time_t t = gnutls_x509_crt_get_expiration_time(cas[i]);
		if (t != (time_t)-1 && (int64_t)t < *out)
			*out = (int64_t)t;
		gnutls_x509_crt_deinit(cas[i]);
	}
	gnutls_free(cas);
	if (n > 0 && *out != INT64_MAX)
		rc = 0;
	return rc;
}

/* A trust list of the CAs in ca_pem and the listener's CRL, if it has one, into *out. */
static enum ota_err trust_list_new(const char *ca_pem, const struct ota_listener_config *lc,
                                   gnutls_x509_trust_list_t *out, char *msg, size_t msglen)
{
	gnutls_x509_trust_list_t tl;
	enum ota_err rc = OTA_ERR_TLS;
	int n;

	if (gnutls_x509_trust_list_init(&tl, 0) < 0)
		return OTA_ERR_NOMEM;
	gnutls_datum_t ca = {(unsigned char *)ca_pem, (unsigned)strlen(ca_pem)};
	n = gnutls_x509_trust_list_add_trust_mem(tl, &ca, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
	if (n <= 0) {
		snprintf(msg, msglen, "%s: no CA certificate found", lc->ca);
		goto out;
	}
	if (lc->crl[0]) {
		gnutls_datum_t crl_data = {0};
		gnutls_x509_crl_t *crls = NULL;
		unsigned ncrl = 0;
		if (gnutls_load_file(lc->crl, &crl_data) < 0) {
			snprintf(msg, msglen, "%s: cannot read the CRL", lc->crl);
			goto out;
		}
		n = gnutls_x509_crl_list_import2(&crls, &ncrl, &crl_data, GNUTLS_X509_FMT_PEM, 0);
		gnutls_free(crl_data.data);
		if (n < 0 || ncrl == 0) {
			snprintf(msg, msglen, "%s: not a PEM CRL", lc->crl);
			goto out;
		}
		/* The list takes the CRLs; those not signed by the CA are dropped, and then
		 * the count is short: refuse rather than run without the revocations. */
		n = gnutls_x509_trust_list_add_crls(tl, crls, ncrl, GNUTLS_TL_VERIFY_CRL, 0);
		gnutls_free(crls);
		if (n != (int)ncrl) {
			snprintf(msg, msglen, "%s: CRL not issued by the CA in %s", lc->crl,
			         lc->ca);
			goto out;
		}
	}
	*out = tl;
	tl = NULL;
	rc = OTA_OK;
out:
	if (tl)
		gnutls_x509_trust_list_deinit(tl, 1);
	return rc;
}

static enum ota_err load_trust(struct listener *l, const struct ota_listener_config *lc, char *msg,
                               size_t msglen)
{
	l->ca_pem = ota_file_read(lc->ca, OTA_PEM_MAX, NULL);
	if (!l->ca_pem) {
		snprintf(msg, msglen, "%s: cannot read the %s CA", lc->ca, l->name);
		return OTA_ERR_TLS;
	}
	gnutls_datum_t ca = {(unsigned char *)l->ca_pem, (unsigned)strlen(l->ca_pem)};
	enum ota_err rc = trust_list_new(l->ca_pem, lc, &l->tl, msg, msglen);
	if (rc != OTA_OK)
		return rc;
	if (ca_expiry(&ca, &l->ca_not_after) != 0) {
		snprintf(msg, msglen, "%s: cannot read the CA certificates' expiry", lc->ca);
		return OTA_ERR_TLS;
	}
	return OTA_OK;
}

enum ota_err ota_http_reload_crls(struct ota_http *h, char *msg, size_t msglen)
{
	const struct ota_listener_config *lcs[2] = {&h->deps.cfg->device, &h->deps.cfg->management};
	gnutls_x509_trust_list_t fresh[2] = {NULL, NULL};
	enum ota_err rc = OTA_OK;

	/* Both read first: a bad file changes nothing on either listener. */
	for (int i = 0; i < 2 && rc == OTA_OK; i++)
		if (lcs[i]->crl[0])
			rc = trust_list_new(h->l[i].ca_pem, lcs[i], &fresh[i], msg, msglen);
	for (int i = 0; i < 2; i++) {
		struct listener *l = &h->l[i];
		if (!fresh[i])
			continue;
		if (rc == OTA_OK) {
			/* Chains verified under the old list are forgotten with it, and every
			 * connection's identity is settled again at its next request. */
			pthread_rwlock_wrlock(&l->tl_lock);
			gnutls_x509_trust_list_t old = l->tl;
			l->tl = fresh[i];
			fresh[i] = old;
			ota_idcache_clear(l->ids);
			atomic_fetch_add(&l->trust_gen, 1);
			pthread_rwlock_unlock(&l->tl_lock);
		}
		gnutls_x509_trust_list_deinit(fresh[i], 1);
	}
	return rc;
}

enum ota_err ota_http_reload_ticket_key(struct ota_http *h, char *msg, size_t msglen)
{
	uint8_t key[OTA_TICKET_KEY_SIZE];
	const char *path = h->deps.cfg->ticket_key;

	if (!path[0])
		return OTA_OK;
	enum ota_err rc = ota_ticket_key_read(path, key, msg, msglen);
	if (rc != OTA_OK)
		return rc;
	pthread_mutex_lock(&h->ticket_mu);
	memcpy(h->ticket_key, key, sizeof(key));
	pthread_mutex_unlock(&h->ticket_mu);
	gnutls_memset(key, 0, sizeof(key));
	return OTA_OK;
}

static enum ota_err start_listener(struct ota_http *h, struct listener *l,
                                   const struct ota_listener_config *lc, char *msg, size_t msglen)
{
	const struct ota_config *cfg = h->deps.cfg;
	struct sockaddr_storage ss;
	bool v6 = false;
	enum ota_err rc;

	l->h = h;
	/* Writers first: a CRL load must not wait behind a steady flow of handshakes. */
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&l->tl_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	l->lock_made = true;
	if (parse_listen(lc->listen, &ss, &v6) != 0) {
		snprintf(msg, msglen, "%s listen address \"%s\" is not IP:PORT or [IPv6]:PORT",
		         l->name, lc->listen);
		return OTA_ERR_CONFIG;
	}
	rc = load_trust(l, lc, msg, msglen);
	if (rc != OTA_OK)
		return rc;
	/* Devices poll: the device listener's cache is sized to the fleet (tls.identity_cache);
	 * operators are few. */
	if (ota_idcache_new(l->kind == OTA_L_DEVICE
	                        ? cfg->identity_cache
	                        : (cfg->identity_cache < 1024 ? cfg->identity_cache : 1024),
	                    &l->ids) != OTA_OK) {
		snprintf(msg, msglen, "cannot allocate the %s listener's identity cache", l->name);
		return OTA_ERR_NOMEM;
	}
	unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_TLS | MHD_USE_ITC |
	                 MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
	/* The live event stream suspends its connection while it waits (mgmt_events.c). */
	if (l->kind == OTA_L_MANAGEMENT)
		flags |= MHD_ALLOW_SUSPEND_RESUME;
	/* A device report suspends its connection while it waits for its group commit
	 * (ota_req_wait); MHD_USE_ITC above lets the committer's resume wake the thread. */
	if (l->kind == OTA_L_DEVICE)
		flags |= MHD_ALLOW_SUSPEND_RESUME;
	struct MHD_OptionItem opts[] = {
	    {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, l},
	    {MHD_OPTION_THREAD_POOL_SIZE, cfg->threads, NULL},
	    {MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout, NULL},
	    {MHD_OPTION_CONNECTION_LIMIT,
	     l->kind == OTA_L_DEVICE ? cfg->max_connections : cfg->mgmt_max_connections, NULL},
	    /* the per-address limit is the accept policy's: it names whom it refuses */
	    {MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->connection_memory, NULL},
	    {MHD_OPTION_SOCK_ADDR, 0, &ss},
	    {MHD_OPTION_HTTPS_MEM_KEY, 0, h->key_pem},
	    {MHD_OPTION_HTTPS_MEM_CERT, 0, h->cert_pem},
	    {MHD_OPTION_HTTPS_MEM_TRUST, 0, l->ca_pem},
	    /* X25519 first: it is what most clients send a key share for (a group preferred but
	     * without a share costs a HelloRetryRequest and a second key pair), and it is the
	     * cheaper exchange; P-256 and the rest of GnuTLS's NORMAL groups follow, for clients
	     * that offer only those (docs/security.md). */
	    {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)OTA_TLS_PRIORITIES},
	    {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, l},
	    {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, l},
	    {MHD_OPTION_END, 0, NULL},
	    {MHD_OPTION_END, 0, NULL},
	};
	if (l->kind == OTA_L_DEVICE)
		opts[sizeof(opts) / sizeof(opts[0]) - 2] = (struct MHD_OptionItem){
		    MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)keep_raw_path, l};
	l->d = MHD_start_daemon(flags, 0, on_accept, l, on_request, l, MHD_OPTION_ARRAY, opts,
	                        MHD_OPTION_END);
	if (!l->d) {
		snprintf(
		    msg, msglen,
		    "cannot start the %s listener on %s (address in use, or bad key/certificate)",
		    l->name, lc->listen);
		return OTA_ERR_IO;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_BIND_PORT);
	l->port = di ? di->port : 0;
	di = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_LISTEN_FD);
	int one = 1;
	l->nodelay_inherited =
	    di && di->listen_fd != MHD_INVALID_SOCKET &&
	    setsockopt(di->listen_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
	log_notice("%s listener on %s, port %u", l->name, lc->listen, (unsigned)l->port);
	return OTA_OK;
}

enum ota_err ota_http_start(const struct ota_http_deps *deps, struct ota_http **out, char *msg,
                            size_t msglen)
{
	enum ota_err rc = OTA_ERR_NOMEM;
	struct ota_http *h = calloc(1, sizeof(*h));

	*out = NULL;
	if (!h)
		goto out;
	h->deps = *deps;
	rc = ota_console_load(deps->cfg->console_dir,
	                      strcmp(deps->cfg->console_dir, OTA_CONSOLE_DIR) != 0, &h->console,
	                      msg, msglen);
	if (rc != OTA_OK)
		goto out;
	h->deps.console = h->console;
	h->l[0].kind = OTA_L_DEVICE;
	h->l[0].name = "device";
	h->l[1].kind = OTA_L_MANAGEMENT;
	h->l[1].name = "management";
	rc = OTA_ERR_TLS;
	h->cert_pem = ota_file_read(deps->cfg->tls_cert, OTA_PEM_MAX, NULL);
	h->key_pem = ota_file_read(deps->cfg->tls_key, OTA_PEM_MAX, NULL);
	if (!h->cert_pem || !h->key_pem) {
		snprintf(msg, msglen, "cannot read the server certificate %s or key %s",
		         deps->cfg->tls_cert, deps->cfg->tls_key);
		goto out;
	}
	/* The device listener's: the shared key of [tls] ticket_key, else one of this process's
	 * own; the management listener's: always its own. */
	pthread_mutex_init(&h->ticket_mu, NULL);
	h->ticket_mu_made = true;
	if (gnutls_rnd(GNUTLS_RND_KEY, h->ticket_key, sizeof(h->ticket_key)) != 0 ||
	    gnutls_rnd(GNUTLS_RND_KEY, h->mgmt_ticket_key, sizeof(h->mgmt_ticket_key)) != 0) {
		snprintf(msg, msglen, "cannot generate a session ticket key");
		goto out;
	}
	if (deps->cfg->ticket_key[0] &&
	    ota_ticket_key_read(deps->cfg->ticket_key, h->ticket_key, msg, msglen) != OTA_OK)
		goto out;
	rc = watch_start(h, msg, msglen);
	if (rc != OTA_OK)
		goto out;
	rc = start_listener(h, &h->l[0], &deps->cfg->device, msg, msglen);
	if (rc != OTA_OK)
		goto out;
	rc = start_listener(h, &h->l[1], &deps->cfg->management, msg, msglen);
	if (rc != OTA_OK)
		goto out;
	*out = h;
	h = NULL;
out:
	ota_http_stop(h, 0);
	return rc;
}

uint16_t ota_http_device_port(struct ota_http *h)
{
	return h->l[0].port;
}

uint16_t ota_http_management_port(struct ota_http *h)
{
	return h->l[1].port;
}

void ota_http_stop(struct ota_http *h, unsigned grace_seconds)
{
	if (!h)
		return;
	atomic_store(&h->stopping, true);
	for (int i = 0; i < 2; i++) {
		if (h->l[i].d) {
			MHD_socket fd = MHD_quiesce_daemon(h->l[i].d);
			if (fd != MHD_INVALID_SOCKET)
				close(fd);
		}
	}
	/* Requests in flight finish; idle keep-alive connections do not hold the stop. */
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (atomic_load(&h->inflight) > 0) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= (time_t)grace_seconds) {
			log_warn("stopping with %d requests still in flight",
			         atomic_load(&h->inflight));
			break;
		}
		struct timespec ms = {0, 20 * 1000 * 1000};
		nanosleep(&ms, NULL);
	}
	/* A suspended connection must be resumed before its daemon stops: its report is in a
	 * group commit, which ends by itself (answered or failed, never acknowledged unstored). */
	if (atomic_load(&h->suspended) > 0)
		log_notice("stopping: %d reports wait for their commit",
		           atomic_load(&h->suspended));
	while (atomic_load(&h->suspended) > 0) {
		struct timespec ms = {0, 5 * 1000 * 1000};
		nanosleep(&ms, NULL);
	}
	for (int i = 0; i < 2; i++) {
		if (h->l[i].d)
			MHD_stop_daemon(h->l[i].d);
		if (h->l[i].tl)
			gnutls_x509_trust_list_deinit(h->l[i].tl, 1);
		ota_idcache_free(h->l[i].ids);
		if (h->l[i].lock_made)
			pthread_rwlock_destroy(&h->l[i].tl_lock);
		free(h->l[i].ca_pem);
	}
	watch_stop(h);
	gnutls_memset(h->ticket_key, 0, sizeof(h->ticket_key));
	gnutls_memset(h->mgmt_ticket_key, 0, sizeof(h->mgmt_ticket_key));
	if (h->ticket_mu_made)
		pthread_mutex_destroy(&h->ticket_mu);
	free(h->cert_pem);
	free(h->key_pem);
	ota_console_free(h->console);
	free(h);
}
