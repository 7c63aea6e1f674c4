/*
 * transport_rp2350.c - the agent's byte-stream transport on the Pico 2 W: Wi-Fi through the
 * cyw43 driver, TCP through lwIP (NO_SYS, poll mode), mutual TLS through lwIP's altcp_tls over
 * mbedTLS. The device presents its ECDSA P-256 key and certificate (a renewed pair waiting for
 * its first use goes first, for a few tries; cred_rp2350.c keeps the pairs); the server must
 * present a certificate chaining to the provisioned CA for the provisioned host name (the CA
 * is pinned: it is the only trust anchor), or, once the trusted root pins server CAs, a chain
 * that verifies up to a CA, sent by the server or provisioned, whose SubjectPublicKeyInfo
 * hashes to a pin. Sessions are resumed across connections when the server offers it, so
 * that a check-in costs one short handshake; never across a change of identity or of pins.
 *
 * The port API is blocking; lwIP is callback-driven. Every blocking member polls the driver
 * until its condition holds or its deadline passes, so nothing here can hang the agent.
 */
#include <stdio.h>
#include <string.h>

#include "lwip/altcp.h"
#include "lwip/altcp_tls.h"
#include "lwip/dns.h"
#include "lwip/pbuf.h"
#include "mbedtls/ctr_drbg.h"
#include "mbedtls/ecp.h"
#include "mbedtls/pk.h"
#include "mbedtls/platform_time.h"
#include "mbedtls/sha256.h"
#include "mbedtls/ssl.h"
#include "mbedtls/x509_crt.h"
#include "pico/cyw43_arch.h"
#include "pico/stdlib.h"

#include "chainpin.h"
#include "port_rp2350.h"

/* Connections that may present a pending pair before the transport falls back to the old. */
#define PENDING_TRIES 3

struct tr {
	bool arch_up;
	struct altcp_tls_config *cfg;         /* the pair in use */
	struct altcp_tls_config *cfg_pending; /* the pending pair, made on first use */
	bool used_pending;                    /* the open connection presents the pending pair */
	unsigned pending_tries;
	uint8_t pins[FWA_MAX_SERVER_CAS][32]; /* the root's server CAs; npins 0: provisioned CA */
	unsigned npins;
	struct fwa_rp2350_chainpin pin; /* the pin check of the chain being verified */
	struct altcp_pcb *pcb;
	struct altcp_tls_session session;
	bool have_session;
	bool connected;
	bool closed;     /* by the peer (orderly) or by an error */
	bool failed;     /* closed by an error */
	struct pbuf *rx; /* received and not yet handed out */
	bool dns_done;
	bool dns_ok;
	ip_addr_t addr;
};

static struct tr tr;

/* mbedTLS's millisecond clock (MBEDTLS_PLATFORM_MS_TIME_ALT), used by lwIP's TLS glue. */
mbedtls_ms_time_t mbedtls_ms_time(void)
{
	return (mbedtls_ms_time_t)(time_us_64() / 1000u);
}

/* ---- polling ---- */

static bool until_passed(absolute_time_t until)
{
	return absolute_time_diff_us(get_absolute_time(), until) <= 0;
}

static void poll_once(absolute_time_t until)
{
	absolute_time_t slice = make_timeout_time_ms(20);

	cyw43_arch_poll();
	cyw43_arch_wait_for_work_until(absolute_time_diff_us(slice, until) < 0 ? slice : until);
}

void fwa_rp2350_poll(struct fwa_rp2350 *p, uint32_t ms)
{
	absolute_time_t until = make_timeout_time_ms(ms);

	(void)p;
	if (!tr.arch_up) {
		sleep_ms(ms);
		return;
	}
	do
		poll_once(until);
	while (!until_passed(until));
}

/* ---- lwIP callbacks ---- */

static err_t on_recv(void *arg, struct altcp_pcb *pcb, struct pbuf *p, err_t err)
{
	(void)arg;
	(void)pcb;
	if (!p || err != ERR_OK) {
		if (p)
			pbuf_free(p);
		tr.closed = true;
		return ERR_OK;
	}
	if (tr.rx)
		pbuf_cat(tr.rx, p);
	else
		tr.rx = p;
	return ERR_OK;
}

static void on_err(void *arg, err_t err)
{
	(void)arg;
	(void)err;
	/* lwIP has freed the pcb already. */
	tr.pcb = NULL;
	tr.closed = true;
	tr.failed = true;
}

static err_t on_connected(void *arg, struct altcp_pcb *pcb, err_t err)
{
	(void)arg;
	(void)pcb;
	if (err == ERR_OK)
		tr.connected = true;
	return ERR_OK;
}

static void on_dns(const char *name, const ip_addr_t *addr, void *arg)
{
	(void)name;
	(void)arg;
	tr.dns_done = true;
	tr.dns_ok = addr != NULL;
	if (addr)
		tr.addr = *addr;
}

/* ---- members ---- */

static enum fwa_err arch_start(struct fwa_rp2350 *p)
{
	if (tr.arch_up)
		return FWA_OK;
	if (cyw43_arch_init() != 0)
		return FWA_ERR_TRANSPORT;
	cyw43_arch_enable_sta_mode();
	tr.arch_up = true;
	(void)p;
	return FWA_OK;
}

/*
 * The device certificate must be ECDSA P-256 and the device key its private half: a mismatch
 * (a re-provisioned key with the old certificate) would otherwise show only as handshakes the
 * server refuses. FWA_OK, FWA_ERR_KEY (*why says which), or FWA_ERR_CRYPTO when the key does
 * not parse or memory runs out.
 */
static enum fwa_err check_credentials(const struct fwa_rp2350_pair *pair, const char **why)
{
	static const unsigned char pers[] = "fwa-credentials";
	mbedtls_x509_crt crt;
	mbedtls_pk_context key;
	mbedtls_ctr_drbg_context drbg;
	enum fwa_err err = FWA_ERR_CRYPTO;

	mbedtls_x509_crt_init(&crt);
	mbedtls_pk_init(&key);
	mbedtls_ctr_drbg_init(&drbg);
	if (mbedtls_x509_crt_parse(&crt, pair->cert, pair->cert_len) != 0 ||
	    mbedtls_pk_get_type(&crt.pk) != MBEDTLS_PK_ECKEY ||
	    mbedtls_ecp_keypair_get_group_id(mbedtls_pk_ec(crt.pk)) != MBEDTLS_ECP_DP_SECP256R1) {
		*why = "the device certificate is not an ECDSA P-256 certificate";
		err = FWA_ERR_KEY;
		goto out;
	}
	/* The pair check multiplies with blinding: it needs a generator, seeded from the TRNG. */
	if (mbedtls_ctr_drbg_seed(&drbg, fwa_rp2350_entropy, NULL, pers, sizeof(pers) - 1) != 0) {
		*why = "the TRNG failed its health tests";
		goto out;
	}
	if (mbedtls_pk_parse_key(&key, pair->key, pair->key_len, NULL, 0, mbedtls_ctr_drbg_random,
	                         &drbg) != 0) {
		*why = "the device key does not parse";
		goto out;
	}
	if (mbedtls_pk_check_pair(&crt.pk, &key, mbedtls_ctr_drbg_random, &drbg) != 0) {
		*why = "the device key is not the key of the device certificate";
		err = FWA_ERR_KEY;
		goto out;
	}
	err = FWA_OK;
out:
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_pk_free(&key);
	mbedtls_x509_crt_free(&crt);
	return err;
}

/* A TLS client configuration presenting `pair`; NULL when it does not parse. */
static struct altcp_tls_config *config_of(const struct fwa_rp2350 *p,
                                          const struct fwa_rp2350_pair *pair)
{
	/* The provisioned CA is the trust anchor; lwipopts.h makes verification required. */
	return altcp_tls_create_config_client_2wayauth(
	    (const u8_t *)p->id.server_ca, p->id.server_ca_len, pair->key, pair->key_len, NULL, 0,
	    pair->cert, pair->cert_len);
}

enum fwa_err fwa_rp2350_tr_setup(struct fwa_rp2350 *p, const char **why)
{
	struct fwa_rp2350_pair pair;
	enum fwa_err err;

	memset(&tr, 0, sizeof(tr));
	p->tr = &tr;
	(void)fwa_rp2350_cred_pair(p, false, &pair);
	err = check_credentials(&pair, why);
	if (err != FWA_OK)
		return err;
	*why = "TLS credentials in the identity partition do not parse";
	tr.cfg = config_of(p, &pair);
	if (!tr.cfg)
		return FWA_ERR_CRYPTO;
	altcp_tls_init_session(&tr.session);
	*why = "the Wi-Fi chip (cyw43) did not start";
	return arch_start(p);
}

static enum fwa_err join_wifi(struct fwa_rp2350 *p, absolute_time_t until)
{
	if (cyw43_tcpip_link_status(&cyw43_state, CYW43_ITF_STA) == CYW43_LINK_UP)
		return FWA_OK;
	int64_t left_ms = absolute_time_diff_us(get_absolute_time(), until) / 1000;
	if (left_ms <= 0)
		return FWA_ERR_TRANSPORT;
	uint32_t auth = p->id.wifi_password[0] ? CYW43_AUTH_WPA2_AES_PSK : CYW43_AUTH_OPEN;
	if (cyw43_arch_wifi_connect_timeout_ms(p->id.wifi_ssid, p->id.wifi_password, auth,
	                                       (uint32_t)left_ms) != 0)
		return FWA_ERR_TRANSPORT;
	return FWA_OK;
}

static enum fwa_err resolve(struct fwa_rp2350 *p, absolute_time_t until)
{
	tr.dns_done = false;
	err_t e = dns_gethostbyname(p->id.server_host, &tr.addr, on_dns, NULL);
	if (e == ERR_OK)
		return FWA_OK;
	if (e != ERR_INPROGRESS)
		return FWA_ERR_TRANSPORT;
	while (!tr.dns_done) {
		if (until_passed(until))
			return FWA_ERR_TRANSPORT;
		poll_once(until);
	}
	return tr.dns_ok ? FWA_OK : FWA_ERR_TRANSPORT;
}

void fwa_rp2350_tr_close(void *ctx)
{
	(void)ctx;
	if (tr.pcb) {
		altcp_arg(tr.pcb, NULL);
		altcp_recv(tr.pcb, NULL);
		altcp_err(tr.pcb, NULL);
		if (altcp_close(tr.pcb) != ERR_OK)
			altcp_abort(tr.pcb);
		tr.pcb = NULL;
	}
	if (tr.rx) {
		pbuf_free(tr.rx);
		tr.rx = NULL;
	}
	tr.connected = tr.closed = tr.failed = false;
}

static bool pinned(const mbedtls_x509_crt *crt)
{
	uint8_t d[32];

	if (mbedtls_sha256(crt->pk_raw.p, crt->pk_raw.len, d, 0) != 0)
		return false;
	for (unsigned i = 0; i < tr.npins; i++)
		if (memcmp(d, tr.pins[i], 32) == 0)
			return true;
	return false;
}

/*
 * With pins, the chain must verify up to a pinned CA (chainpin.h has the rule): mbedTLS calls
 * this for each certificate of the chain it built, from the top down to the server's
 * certificate at depth 0, and fails the handshake on any flag left at the end. The host name
 * flag of the server's certificate always stays.
 */
static int verify_pinned(void *arg, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
	uint32_t name = *flags & MBEDTLS_X509_BADCERT_CN_MISMATCH;
	bool ok = fwa_rp2350_chainpin_step(&tr.pin, pinned(crt), *flags != 0, depth);

	(void)arg;
	*flags = depth == 0 ? name | (ok ? 0 : MBEDTLS_X509_BADCERT_NOT_TRUSTED) : 0;
	return 0;
}

void fwa_rp2350_tr_server_cas(void *ctx, const uint8_t (*pins)[32], unsigned n)
{
	(void)ctx;
	tr.npins = n < FWA_MAX_SERVER_CAS ? n : FWA_MAX_SERVER_CAS;
	memcpy(tr.pins, pins, (size_t)tr.npins * 32);
	/* A session of a server verified under the old set must not be resumed. */
	if (tr.have_session)
		altcp_tls_free_session(&tr.session);
	tr.have_session = false;
}

/*
 * Which pair this connection presents: the pending one while it has tries left (made into a
 * configuration on first use; one that does not parse uses its tries up at once). A refusal
 * of the old pair gives the pending one its tries again (fwa_rp2350_tr_refused).
 */
static struct altcp_tls_config *pick_config(struct fwa_rp2350 *p)
{
	struct fwa_rp2350_pair pair;

	tr.used_pending = false;
	if (tr.pending_tries >= PENDING_TRIES || !fwa_rp2350_cred_pair(p, true, &pair))
		return tr.cfg;
	if (!tr.cfg_pending)
		tr.cfg_pending = config_of(p, &pair);
	if (!tr.cfg_pending) {
		tr.pending_tries = PENDING_TRIES;
		return tr.cfg;
	}
	tr.pending_tries++;
	tr.used_pending = true;
	return tr.cfg_pending;
}

void fwa_rp2350_tr_accepted(void *ctx)
{
	struct fwa_rp2350 *p = ctx;

	if (!tr.used_pending)
		return;
	if (fwa_rp2350_cred_commit(p) != FWA_OK) {
		printf("fwa: cannot commit the renewed certificate\n");
		return;
	}
	/*
	 * The pending configuration presents the pair in use from now on (mbedTLS copied the key
	 * and certificate when it parsed them). The old one is not used by the open connection.
	 */
	altcp_tls_free_config(tr.cfg);
	tr.cfg = tr.cfg_pending;
	tr.cfg_pending = NULL;
	tr.used_pending = false;
	tr.pending_tries = 0;
	/* Sessions of the old identity must not resume under the new one. */
	if (tr.have_session)
		altcp_tls_free_session(&tr.session);
	tr.have_session = false;
	printf("fwa: renewed certificate accepted by the server\n");
}

void fwa_rp2350_tr_refused(void *ctx)
{
	struct fwa_rp2350_pair pair;

	if (tr.used_pending || !fwa_rp2350_cred_pair(ctx, true, &pair))
		return;
	/*
	 * The old pair refused: a pending pair whose first use the server took but whose answer
	 * never arrived is pinned, and only it will do. Back to it, for its tries again.
	 */
	tr.pending_tries = 0;
	printf("fwa: certificate refused; presenting the renewed one again\n");
}

enum fwa_err fwa_rp2350_tr_connect(void *ctx)
{
	struct fwa_rp2350 *p = ctx;
	absolute_time_t until = make_timeout_time_ms(FWA_RP2350_CONNECT_TIMEOUT_MS);
	enum fwa_err err;

	fwa_rp2350_tr_close(ctx);
	err = arch_start(p);
	if (err == FWA_OK)
		err = join_wifi(p, until);
	if (err == FWA_OK)
		err = resolve(p, until);
	if (err != FWA_OK)
		return err;
	tr.pcb = altcp_tls_new(pick_config(p), IP_GET_TYPE(&tr.addr));
	if (!tr.pcb)
		return FWA_ERR_TRANSPORT;
	/* SNI, and the name the server certificate must carry. */
	if (mbedtls_ssl_set_hostname(altcp_tls_context(tr.pcb), p->id.server_host) != 0)
		goto fail;
	fwa_rp2350_chainpin_reset(&tr.pin);
	if (tr.npins)
		mbedtls_ssl_set_verify(altcp_tls_context(tr.pcb), verify_pinned, NULL);
	/* A session is resumed only under the identity that made it. */
	if (tr.have_session && !tr.used_pending)
		(void)altcp_tls_set_session(tr.pcb, &tr.session);
	altcp_arg(tr.pcb, &tr);
	altcp_recv(tr.pcb, on_recv);
	altcp_err(tr.pcb, on_err);
	if (altcp_connect(tr.pcb, &tr.addr, p->id.server_port, on_connected) != ERR_OK)
		goto fail;
	/* on_connected runs once the TLS handshake, certificate checks included, succeeded. */
	while (!tr.connected) {
		if (tr.closed || until_passed(until))
			goto fail;
		poll_once(until);
	}
	if (!tr.used_pending) {
		if (tr.have_session)
			altcp_tls_free_session(&tr.session);
		tr.have_session = altcp_tls_get_session(tr.pcb, &tr.session) == ERR_OK;
	}
	fwa_rp2350_progress(p);
	return FWA_OK;
fail:
	fwa_rp2350_tr_close(ctx);
	return FWA_ERR_TRANSPORT;
}

enum fwa_err fwa_rp2350_tr_send(void *ctx, const void *buf, size_t len)
{
	struct fwa_rp2350 *p = ctx;
	absolute_time_t until = make_timeout_time_ms(FWA_RP2350_SEND_TIMEOUT_MS);
	const uint8_t *b = buf;

	while (len) {
		if (!tr.pcb || tr.closed)
			return FWA_ERR_TRANSPORT;
		u16_t room = altcp_sndbuf(tr.pcb);
		size_t n = len < room ? len : room;
		err_t e = n ? altcp_write(tr.pcb, b, (u16_t)n, TCP_WRITE_FLAG_COPY) : ERR_MEM;
		if (e == ERR_OK) {
			b += n;
			len -= n;
			(void)altcp_output(tr.pcb);
			fwa_rp2350_progress(p);
			continue;
		}
		if (e != ERR_MEM)
			return FWA_ERR_TRANSPORT;
		/* Send buffer full: let the peer acknowledge some. */
		if (until_passed(until))
			return FWA_ERR_TRANSPORT;
		poll_once(until);
	}
	return FWA_OK;
}

enum fwa_err fwa_rp2350_tr_recv(void *ctx, void *buf, size_t cap, uint32_t timeout_ms, size_t *got)
{
	absolute_time_t until = make_timeout_time_ms(timeout_ms);

	*got = 0;
	if (cap == 0)
		return FWA_ERR_TRANSPORT; /* 0 bytes would read as the end of the stream */
	while (!tr.rx) {
		if (tr.closed)
			return tr.failed ? FWA_ERR_TRANSPORT : FWA_OK; /* orderly end: 0 bytes */
		if (!tr.pcb || until_passed(until))
			return FWA_ERR_TRANSPORT;
		poll_once(until);
	}
	size_t want = cap < tr.rx->tot_len ? cap : tr.rx->tot_len;
	u16_t n = pbuf_copy_partial(tr.rx, buf, (u16_t)(want > 0xffff ? 0xffff : want), 0);
	tr.rx = pbuf_free_header(tr.rx, n);
	if (tr.pcb)
		altcp_recved(tr.pcb, n); /* open the window again */
	fwa_rp2350_progress(ctx);
	*got = n;
	return FWA_OK;
}

void fwa_rp2350_tr_shutdown(struct fwa_rp2350 *p)
{
	(void)p;
	fwa_rp2350_tr_close(&tr);
	if (tr.arch_up) {
		cyw43_arch_deinit();
		tr.arch_up = false;
	}
}
