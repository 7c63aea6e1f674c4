/*
 * ota-fleet-sim: thousands of simulated devices in one process, each running the real agent
 * core (fwa_agent_step) over its own simulated flash and bootrom (the POSIX port's sim.c, with
 * the RP2350 rules) and its own TLS client identity, against a real otad on loopback. It is
 * the rehearsal of a rollout: devices poll with jitter, take updates end to end (check in,
 * download with resume, install, trial, buy, report) and misbehave at configurable rates.
 *
 * Shape: each device's certificate and key are minted in memory at start from the device CA.
 * Every device's flash is a copy-on-write private mapping of one provisioned factory flash, so
 * a device costs only the pages it wrote. A few worker threads multiplex the devices: device i
 * belongs to worker i % W, each worker keeps its devices in a min-heap by due time and steps
 * one at a time with the one agent scratch it owns (the scratch only lives within a step, so
 * a worker's devices share it). The transport is blocking with timeouts, as on a device.
 *
 * Faults, chosen per device from the seed (deterministic for a given seed and device count):
 *   never-buy    the new image runs its trial but never buys it: the bootrom's watchdog
 *                brings the old image back and the device reports rolled_back;
 *   fail-health  the new image's health check fails: the agent reverts and reports it;
 *   drop         the first image download of each deployment is cut mid-body; the agent
 *                resumes with a Range request;
 *   regress      a post-confirm regression: the new image passes its trial and is bought,
 *                then its health check fails and, after its first check-in of a boot the
 *                watchdog did not start, it hangs until the watchdog resets it; the agent
 *                counts both and reports them in its check-ins' health object.
 *
 * Deltas: every device reports the SHA-256 of its running image at check-in, so a server that
 * offers deltas gives one to the devices on the delta's base and the full image to the others.
 * --other-version V --other-share F starts a fraction F of the fleet from a factory image of
 * version V instead, so that one rollout mixes delta and full updates; the summary counts
 * updates installed from a delta and from a full image.
 *
 * Time: --time-scale S runs every device's clock S times faster than the wall clock (the
 * sim's virtual clock), so the server's poll_after, retries and the trial watchdog pass S
 * times sooner: a fleet rehearses hours of polling in minutes without changing the server.
 *
 * Output: a progress line on stderr once a second; on SIGINT/SIGTERM or --max-seconds, a
 * summary on stdout of "key value" lines. --acks FILE lists every report the server
 * acknowledged (answered 200), "device deployment seq status" a line, for a test to compare
 * with what the server stored. Exit status 0 when devices checked in, 1 when
 * nothing could be measured or the setup failed (a bad argument, a file that cannot be read,
 * a server that is not loopback), 64 when a required argument is missing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "pki.h"
#include "fwa/agent.h"
#include "fwa/crypto_openssl.h"
#include "sim.h"

#define EXIT_USAGE 64
#define MAX_VERSIONS 16
#define CONNECT_TIMEOUT_MS 10000u
/*
 * When a worker falls behind, work that cannot wait goes first: a boot and a running trial
 * (its buy must beat the watchdog), then the next step of an update in progress, and only then
 * polls that are due. Polls slip, trials do not miss their watchdog, and new updates start
 * only as fast as the simulator finishes them.
 */
enum tier { TIER_TRIAL = 0, TIER_UPDATE, TIER_POLL, TIER__COUNT };

enum fault { F_NONE = 0, F_NEVER_BUY, F_FAIL_HEALTH, F_DROP, F_REGRESS, F__COUNT };
static const char *const fault_names[F__COUNT] = {"none", "never-buy", "fail-health", "drop",
                                                  "regress"};

struct opts {
	const char *server;    /* 127.0.0.1:PORT */
	const char *server_ca; /* PEM of the CA that signs otad's certificate */
	const char *ca_cert, *ca_key;
	const char *root; /* provisioned root metadata */
	const char *hw;
	const char *version;       /* factory version */
	const char *other_version; /* factory version of the other share of the fleet */
	double other_share;
	const char *prefix;
	const char *acks; /* file of the acknowledged reports, one a line */
	unsigned secver;
	unsigned devices, threads;
	unsigned image_size, slot_size;
	double rate[F__COUNT];
	double time_scale;
	unsigned max_seconds;
	unsigned start_spread_s; /* first check-ins spread over this many virtual seconds */
	uint64_t seed;
	bool quiet;
};

/* One virtual device. sim must stay first: the sim port members use the first member. */
struct dev {
	struct fwa_sim sim;
	struct fwa_port port;
	struct fwa_agent agent;
	struct fwa_agent_config cfg;
	struct fwa_health_check check;
	char version[FWA_SEMVER_MAX + 1];
	char trial_version[FWA_SEMVER_MAX + 1]; /* regress: the version of the last trial */
	char id[32];
	X509 *cert;
	EVP_PKEY *key;
	SSL_SESSION *session;
	SSL *ssl;
	int fd;
	enum fault fault;
	/* The request under way (a connection carries a poll cycle's requests, one at a time). */
	bool conn_get;       /* it is a GET (an image download) */
	uint64_t conn_bytes; /* bytes of its answer received */
	/* It is a report: its deployment, seq and status, and the first bytes of the answer (a 200
	 * is the agent's acknowledgement). */
	bool conn_report;
	char rep_dep[FWA_DEP_ID_MAX + 1];
	long long rep_seq;
	char rep_status[16];
	char resp_head[16];
	unsigned resp_n;
	uint32_t drop_at;                     /* drop fault: cut a download after this many bytes */
	char dropped_dep[FWA_DEP_ID_MAX + 1]; /* deployment whose download was cut once */
	bool dead;                            /* bricked or could not start */
	uint64_t due;                         /* wall ms of the next step */
	enum tier tier;                       /* the worker heap it waits in */
	_Atomic int vidx;                     /* index into versions[] */
	_Atomic int phase;                    /* enum fwa_phase, or -1 dead */
};

/* A worker: one heap by due time per tier; the first tier with a device due runs. */
struct worker {
	pthread_t th;
	struct dev **heap[TIER__COUNT];
	size_t n[TIER__COUNT];
	size_t total;
	void *scratch;
};

static struct opts o = {
    .hw = "sim",
    .version = "1.0.0",
    .prefix = "sim-",
    .secver = 1,
    .devices = 100,
    .threads = 16,
    .image_size = 65536,
    .slot_size = 65536,
    .time_scale = 1.0,
    .start_spread_s = 10,
    .seed = 1,
};

static struct dev *devs;
static SSL_CTX *ssl_ctx;
static struct sockaddr_storage server_addr;
static socklen_t server_addrlen;
static char *root_json;
static size_t root_len;
static uint64_t t0_ms;
static volatile sig_atomic_t stop;
static long peak_anon_kib; /* sampled by the main thread */

static pthread_mutex_t ver_lock = PTHREAD_MUTEX_INITIALIZER;
static char versions[MAX_VERSIONS][FWA_SEMVER_MAX + 1];
static _Atomic int nversions;

static pthread_mutex_t acks_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *acks_file;

/* Counters, updated by the workers, read by the progress line and the summary. */
static _Atomic uint64_t c_steps, c_checkins, c_handshakes, c_resumed, c_connect_fail, c_bytes_in,
    c_bytes_out, c_downloads, c_delta_installs, c_trials, c_bought, c_reverts, c_watchdog, c_boots,
    c_drops, c_fault_trials[F__COUNT], c_regress_resets, c_reports_acked;
static _Atomic uint64_t c_err[FWA_ERR__COUNT];

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The devices' clock: the wall clock since start, times the scale. */
static uint64_t virt_ms(uint64_t wall)
{
	return 1000u + (uint64_t)((double)(wall - t0_ms) * o.time_scale);
}

static uint64_t virt_to_wall_delay(uint64_t vms)
{
	return (uint64_t)((double)vms / o.time_scale);
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "ota-fleet-sim: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* splitmix64: the per-device random numbers drawn from the seed. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static double unit(uint64_t x)
{
	return (double)(mix(x) >> 11) / 9007199254740992.0;
}

static int version_index(const char *v)
{
	int i, n;

	pthread_mutex_lock(&ver_lock);
	n = atomic_load(&nversions);
	for (i = 0; i < n; i++)
		if (strcmp(versions[i], v) == 0)
			goto out;
	if (n == MAX_VERSIONS) {
		i = MAX_VERSIONS - 1; /* more versions than any rehearsal needs: lumped */
		goto out;
	}
	snprintf(versions[n], sizeof(versions[n]), "%s", v);
	atomic_store(&nversions, n + 1);
	i = n;
out:
	pthread_mutex_unlock(&ver_lock);
	return i;
}

/* ---- the transport: TLS with the device's own certificate, one connection at a time ---- */

static int wait_fd(int fd, short events, uint32_t timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	int r;

	do
		r = poll(&p, 1, (int)timeout_ms);
	while (r < 0 && errno == EINTR);
	return r > 0 ? 0 : -1;
}

static int ssl_wait(struct dev *d, int r, uint32_t timeout_ms)
{
	switch (SSL_get_error(d->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return wait_fd(d->fd, POLLIN, timeout_ms);
	case SSL_ERROR_WANT_WRITE:
		return wait_fd(d->fd, POLLOUT, timeout_ms);
	default:
		return -1;
	}
}

/* A report answered 200 is acknowledged: count it, and list it. */
static void note_report(struct dev *d)
{
	const char *h = d->resp_head;

	if (!d->conn_report || d->rep_seq <= 0 || d->resp_n < 12 || memcmp(h, "HTTP/1.", 7) != 0 ||
	    memcmp(h + 8, " 200", 4) != 0)
		return;
	atomic_fetch_add(&c_reports_acked, 1);
	if (acks_file) {
		pthread_mutex_lock(&acks_lock);
		fprintf(acks_file, "%s %s %lld %s\n", d->id, d->rep_dep, d->rep_seq, d->rep_status);
		pthread_mutex_unlock(&acks_lock);
	}
}

/* The request under way is over (a new one starts, or the connection ends). */
static void request_over(struct dev *d)
{
	note_report(d);
	d->conn_get = false;
	d->conn_bytes = 0;
	d->conn_report = false;
	d->resp_n = 0;
}

static void t_close(void *ctx)
{
	struct dev *d = ctx;

	request_over(d);
	if (d->ssl) {
		/* TLS 1.3 tickets arrive after the handshake: keep the newest resumable one. */
		SSL_SESSION *s = SSL_get1_session(d->ssl);

		if (s && SSL_SESSION_is_resumable(s)) {
			SSL_SESSION_free(d->session);
			d->session = s;
		} else {
			SSL_SESSION_free(s);
		}
		SSL_shutdown(d->ssl);
		SSL_free(d->ssl);
		d->ssl = NULL;
	}
	if (d->fd >= 0) {
		close(d->fd);
		d->fd = -1;
	}
	ERR_clear_error();
}

static enum fwa_err t_connect(void *ctx)
{
	struct dev *d = ctx;
	int r, one = 1, soerr = 0;
	socklen_t sl = sizeof(soerr);

	t_close(d);
	d->fd = socket(server_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (d->fd < 0)
		goto fail;
	setsockopt(d->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(d->fd, (struct sockaddr *)&server_addr, server_addrlen) != 0 &&
	    !(errno == EINPROGRESS && wait_fd(d->fd, POLLOUT, CONNECT_TIMEOUT_MS) == 0 &&
	      getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0))
		goto fail;
	d->ssl = SSL_new(ssl_ctx);
	if (!d->ssl || SSL_set_fd(d->ssl, d->fd) != 1 ||
	    SSL_use_certificate(d->ssl, d->cert) != 1 || SSL_use_PrivateKey(d->ssl, d->key) != 1)
		goto fail;
	if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(d->ssl), "127.0.0.1") != 1)
		goto fail;
	if (d->session)
		SSL_set_session(d->ssl, d->session);
	while ((r = SSL_connect(d->ssl)) != 1)
		if (ssl_wait(d, r, CONNECT_TIMEOUT_MS) < 0)
			goto fail;
	if (SSL_get_verify_result(d->ssl) != X509_V_OK)
		goto fail;
	atomic_fetch_add(&c_handshakes, 1);
	if (SSL_session_reused(d->ssl))
		atomic_fetch_add(&c_resumed, 1);
	return FWA_OK;
fail:
	atomic_fetch_add(&c_connect_fail, 1);
	t_close(d);
	return FWA_ERR_TRANSPORT;
}

/*
 * Reads what a report request carries (the agent sends its head, then its body): the
 * deployment from "POST /device/v1/deployments/{id}/events", seq and status from the JSON.
 */
static void note_request(struct dev *d, const char *p, size_t len)
{
	static const char post[] = "POST /device/v1/deployments/";
	const char *q, *end = p + len;
	size_t n;

	if (len > sizeof(post) && memcmp(p, post, sizeof(post) - 1) == 0) {
		p += sizeof(post) - 1;
		q = memchr(p, '/', (size_t)(end - p));
		n = q ? (size_t)(q - p) : 0;
		if (n == 0 || n >= sizeof(d->rep_dep) || (size_t)(end - q) < 8 ||
		    memcmp(q, "/events ", 8) != 0)
			return;
		memcpy(d->rep_dep, p, n);
		d->rep_dep[n] = '\0';
		d->conn_report = true;
		d->rep_seq = -1;
		d->rep_status[0] = '\0';
		return;
	}
	if (!d->conn_report || d->rep_seq > 0)
		return;
	q = memmem(p, len, "\"seq\":", 6);
	if (q) {
		q += 6;
		while (q < end && *q == ' ')
			q++;
		d->rep_seq = 0;
		while (q < end && *q >= '0' && *q <= '9' && d->rep_seq < (1ll << 58))
			d->rep_seq = d->rep_seq * 10 + (*q++ - '0');
	}
	q = memmem(p, len, "\"status\":\"", 10);
	if (q) {
		q += 10;
		for (n = 0; q + n < end && q[n] != '"' && n + 1 < sizeof(d->rep_status); n++)
			d->rep_status[n] = q[n];
		d->rep_status[n] = '\0';
	}
}

static enum fwa_err t_send(void *ctx, const void *buf, size_t len)
{
	struct dev *d = ctx;
	const char *p = buf;
	size_t done;
	int r;

	if (!d->ssl)
		return FWA_ERR_TRANSPORT;
	bool get = len >= 4 && memcmp(p, "GET ", 4) == 0;
	if (get || (len >= 5 && memcmp(p, "POST ", 5) == 0))
		request_over(d); /* a request head: the next request on this connection */
	if (get)
		d->conn_get = true;
	note_request(d, p, len);
	atomic_fetch_add(&c_bytes_out, len);
	while (len) {
		r = SSL_write_ex(d->ssl, p, len, &done);
		if (r == 1) {
			p += done;
			len -= done;
			continue;
		}
		if (ssl_wait(d, r, CONNECT_TIMEOUT_MS) < 0)
			return FWA_ERR_TRANSPORT;
	}
	return FWA_OK;
}

static enum fwa_err t_recv(void *ctx, void *buf, size_t cap, uint32_t timeout_ms, size_t *got)
{
	struct dev *d = ctx;
	int r;

	*got = 0;
	if (!d->ssl)
		return FWA_ERR_TRANSPORT;
	/* The drop fault: the first download of a deployment loses its connection mid-body. */
	if (d->fault == F_DROP && d->conn_get && d->conn_bytes >= d->drop_at &&
	    strcmp(d->dropped_dep, d->agent.st.dep_id) != 0) {
		snprintf(d->dropped_dep, sizeof(d->dropped_dep), "%s", d->agent.st.dep_id);
		atomic_fetch_add(&c_drops, 1);
		t_close(d);
		return FWA_ERR_TRANSPORT;
	}
	for (;;) {
		r = SSL_read_ex(d->ssl, buf, cap, got);
		if (r == 1) {
			if (d->conn_report && d->resp_n < sizeof(d->resp_head)) {
				size_t k = sizeof(d->resp_head) - d->resp_n;

				k = k < *got ? k : *got;
				memcpy(d->resp_head + d->resp_n, buf, k);
				d->resp_n += (unsigned)k;
			}
			d->conn_bytes += *got;
			atomic_fetch_add(&c_bytes_in, *got);
			return FWA_OK;
		}
		if (SSL_get_error(d->ssl, r) == SSL_ERROR_ZERO_RETURN) {
			*got = 0;
			return FWA_OK;
		}
		if (ssl_wait(d, r, timeout_ms) < 0) {
			if (SSL_get_error(d->ssl, r) == SSL_ERROR_SYSCALL &&
			    ERR_peek_error() == 0) {
				*got = 0;
				return FWA_OK;
			}
			ERR_clear_error();
			return FWA_ERR_TRANSPORT;
		}
	}
}

/* The port's boot_trial, counted: the image is downloaded and verified in full. */
static enum fwa_err (*sim_boot_trial)(void *ctx, uint32_t image_len);
static enum fwa_err (*sim_buy)(void *ctx);

static enum fwa_err p_boot_trial(void *ctx, uint32_t image_len)
{
	enum fwa_err e = sim_boot_trial(ctx, image_len);
	const struct dev *d = ctx;

	if (e == FWA_OK) {
		atomic_fetch_add(&c_downloads, 1);
		if (d->agent.st.delta)
			atomic_fetch_add(&c_delta_installs, 1);
	}
	return e;
}

static enum fwa_err p_buy(void *ctx)
{
	enum fwa_err e = sim_buy(ctx);
	struct dev *d = ctx;

	if (e == FWA_OK && !d->sim.trial)
		atomic_fetch_add(&c_bought, 1);
	return e;
}

static bool p_wall(void *ctx, int64_t *out)
{
	(void)ctx;
	*out = (int64_t)time(NULL);
	return true;
}

/* ---- devices ---- */

/*
 * Boot the device: run the simulated bootrom, give a trial image the device's fault, and
 * start the agent. Returns false when the device cannot run any more (bricked, agent error).
 */
static bool dev_boot(struct dev *d)
{
	d->sim.vclock_ms = virt_ms(wall_ms());
	if (fwa_sim_boot(&d->sim) != FWA_OK) {
		atomic_fetch_add(&c_err[FWA_ERR_FLASH], 1);
		return false;
	}
	atomic_fetch_add(&c_boots, 1);
	if (d->sim.trial) {
		atomic_fetch_add(&c_trials, 1);
		if (d->fault == F_NEVER_BUY)
			d->sim.running.fault = SIM_FAULT_NEVER_BUY;
		else if (d->fault == F_FAIL_HEALTH)
			d->sim.running.fault = SIM_FAULT_FAIL_HEALTH;
		if (d->fault == F_NEVER_BUY || d->fault == F_FAIL_HEALTH)
			atomic_fetch_add(&c_fault_trials[d->fault], 1);
		snprintf(d->trial_version, sizeof(d->trial_version), "%s", d->sim.running.version);
	}
	/* regress: the updated image, in its trial and once bought (the sim fails it after). */
	if (d->fault == F_REGRESS && d->trial_version[0] &&
	    strcmp(d->sim.running.version, d->trial_version) == 0)
		d->sim.running.fault = SIM_FAULT_REGRESS;
	snprintf(d->version, sizeof(d->version), "%s", d->sim.running.version);
	d->cfg.image_size = SIM_PAGE + d->sim.running.payload_len;
	atomic_store(&d->vidx, version_index(d->version));
	return true;
}

static bool dev_start(struct dev *d, void *scratch)
{
	enum fwa_err e;

	if (!dev_boot(d))
		return false;
	e = fwa_agent_init(&d->agent, &d->port, &d->cfg, scratch, FWA_AGENT_SCRATCH_SIZE);
	if (e != FWA_OK) {
		atomic_fetch_add(&c_err[(unsigned)e < FWA_ERR__COUNT ? (unsigned)e : 0], 1);
		return false;
	}
	atomic_store(&d->phase, d->agent.st.phase);
	return true;
}

/* ---- workers ---- */

static void heap_push(struct worker *w, struct dev *d)
{
	struct dev **h = w->heap[d->tier];
	size_t i = w->n[d->tier]++;

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (h[p]->due <= d->due)
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = d;
	w->total++;
}

static struct dev *heap_pop(struct worker *w, enum tier t)
{
	struct dev **h = w->heap[t];
	struct dev *top = h[0], *last = h[--w->n[t]];
	size_t i = 0, n = w->n[t];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && h[c + 1]->due < h[c]->due)
			c++;
		if (last->due <= h[c]->due)
			break;
		h[i] = h[c];
		i = c;
	}
	if (n)
		h[i] = last;
	w->total--;
	return top;
}

static void kill_dev(struct dev *d)
{
	d->dead = true;
	atomic_store(&d->phase, -1);
	t_close(d);
}

/* One agent step; false when the image hung in it (never-buy): the watchdog must end it. */
static bool step_or_hang(struct dev *d, struct fwa_step *st, enum fwa_err *e)
{
	jmp_buf hang;

	if (setjmp(hang)) {
		d->sim.hang_jmp = NULL;
		return false;
	}
	d->sim.hang_jmp = &hang;
	*e = fwa_agent_step(&d->agent, st);
	d->sim.hang_jmp = NULL;
	return true;
}

/* One turn of a device: a watchdog due, or one agent step; then when it is due again. */
static void turn(struct worker *w, struct dev *d)
{
	struct fwa_step st;
	enum fwa_err e;
	uint64_t now = wall_ms(), wait, left;

	d->sim.vclock_ms = virt_ms(now);
	if (fwa_sim_watchdog_due(&d->sim)) {
		atomic_fetch_add(&c_watchdog, 1);
		atomic_fetch_add(&c_reverts, 1);
		fwa_sim_watchdog_reset(&d->sim);
		if (!dev_start(d, w->scratch)) {
			kill_dev(d);
			return;
		}
		d->due = now;
		d->tier = TIER_TRIAL;
		heap_push(w, d);
		return;
	}
	if (!step_or_hang(d, &st, &e)) {
		t_close(d);
		d->due = now + virt_to_wall_delay(fwa_sim_watchdog_left(&d->sim));
		d->tier = TIER_TRIAL;
		heap_push(w, d);
		return;
	}
	atomic_fetch_add(&c_steps, 1);
	if (st.checked_in)
		atomic_fetch_add(&c_checkins, 1);
	/* regress: once bought, the image hangs after a check-in until the watchdog resets it. */
	if (d->sim.running.fault == SIM_FAULT_REGRESS && !d->sim.trial && st.checked_in &&
	    !st.rebooting && d->sim.reset != FWA_RESET_WATCHDOG) {
		atomic_fetch_add(&c_regress_resets, 1);
		t_close(d);
		fwa_sim_watchdog_reset(&d->sim);
		if (!dev_start(d, w->scratch)) {
			kill_dev(d);
			return;
		}
		d->due = wall_ms();
		d->tier = TIER_POLL;
		heap_push(w, d);
		return;
	}
	if (e != FWA_OK)
		atomic_fetch_add(&c_err[(unsigned)e < FWA_ERR__COUNT ? (unsigned)e : 0], 1);
	now = wall_ms();
	d->sim.vclock_ms = virt_ms(now);
	if (st.rebooting) {
		t_close(d);
		if (e == FWA_ERR_HEALTH)
			atomic_fetch_add(&c_reverts, 1);
		if (!dev_start(d, w->scratch)) {
			kill_dev(d);
			return;
		}
		d->due = now;
		d->tier = TIER_TRIAL;
		heap_push(w, d);
		return;
	}
	atomic_store(&d->phase, d->agent.st.phase);
	wait = st.wait_ms;
	left = fwa_sim_watchdog_left(&d->sim);
	if (wait > left)
		wait = left;
	d->due = now + virt_to_wall_delay(wait);
	if (d->sim.trial || d->agent.st.phase == FWA_PHASE_TRIAL)
		d->tier = TIER_TRIAL; /* a trial's reports and buy, or waiting for its revert */
	else if (wait == 0 && !fwa_agent_idle(&d->agent))
		d->tier = TIER_UPDATE;
	else
		d->tier = TIER_POLL;
	heap_push(w, d);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	while (!stop && w->total) {
		uint64_t now = wall_ms(), next = UINT64_MAX;
		int t, run = -1;

		for (t = 0; t < TIER__COUNT && run < 0; t++) {
			if (!w->n[t])
				continue;
			if (w->heap[t][0]->due <= now)
				run = t;
			else if (w->heap[t][0]->due < next)
				next = w->heap[t][0]->due;
		}
		if (run < 0) {
			uint64_t ms = next - now;
			struct timespec ts;

			if (ms > 100)
				ms = 100;
			ts.tv_sec = 0;
			ts.tv_nsec = (long)ms * 1000000L;
			nanosleep(&ts, NULL);
			continue;
		}
		turn(w, heap_pop(w, (enum tier)run));
	}
	return NULL;
}

/* ---- setup, progress and summary ---- */

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static char *slurp(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, max + 1, f);
	fclose(f);
	if (n > max) {
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Loopback only: the simulator never talks to anything else. */
static void parse_server(const char *s)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	unsigned long port;
	char *end;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&server_addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&server_addr;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		die("--server %s: give 127.0.0.1:PORT or [::1]:PORT", s);
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	port = strtoul(colon + 1, &end, 10);
	if (*end || port == 0 || port > 65535)
		die("--server %s: bad port", s);
	memset(&server_addr, 0, sizeof(server_addr));
	if (strcmp(host, "127.0.0.1") == 0) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		server_addrlen = sizeof(*in4);
	} else if (strcmp(host, "[::1]") == 0) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		in6->sin6_addr = in6addr_loopback;
		server_addrlen = sizeof(*in6);
	} else {
		die("refusing server %s: loopback only (127.0.0.1 or [::1])", s);
	}
}

/* The factory flash every device starts from: partition table, factory image in slot A. */
static int factory_flash(const char *version, size_t *size)
{
	struct fwa_sim t;
	uint8_t *img = malloc(o.slot_size);
	long n;
	int fd = -1;

	if (!img)
		die("%s", "out of memory");
	n = fwa_sim_mkimage(version, o.secver, o.hw, SIM_FAULT_NONE, o.image_size - SIM_PAGE, img,
	                    o.slot_size);
	if (n < 0)
		die("%s", "the factory image does not fit --slot-size (or a bad --version/--hw)");
	if (fwa_sim_open_mem(&t, o.slot_size) < 0)
		die("%s", "out of memory");
	if (fwa_sim_provision(&t, img, (size_t)n) != FWA_OK)
		die("%s", "cannot provision the factory flash");
	fd = memfd_create("ota-fleet-sim-flash", MFD_CLOEXEC);
	if (fd < 0 || write(fd, t.flash, t.flash_size) != (ssize_t)t.flash_size)
		die("%s", "cannot write the factory flash");
	*size = t.flash_size;
	fwa_sim_close(&t);
	free(img);
	return fd;
}

static void setup_dev(struct dev *d, unsigned i, int flash_fd, size_t flash_size, X509 *ca,
                      EVP_PKEY *ca_key)
{
	double r = unit(o.seed * 1000003u + i), acc = 0;
	void *m;
	int f;

	memset(d, 0, sizeof(*d));
	d->fd = -1;
	snprintf(d->id, sizeof(d->id), "%s%05u", o.prefix, i + 1);
	for (f = F_NEVER_BUY; f < F__COUNT; f++) {
		acc += o.rate[f];
		if (r < acc) {
			d->fault = (enum fault)f;
			break;
		}
	}
	d->drop_at = 4096u + (uint32_t)(unit(o.seed ^ (0xd0d0ull << 32) ^ i) * (o.image_size / 2));
	m = mmap(NULL, flash_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, flash_fd, 0);
	if (m == MAP_FAILED)
		die("%s", "cannot map a device's flash");
	d->sim.flash = m;
	d->sim.flash_size = flash_size;
	d->sim.slot_size = o.slot_size;
	d->sim.mapped = true;
	d->sim.pending_trial = -1;
	d->sim.reset = FWA_RESET_POWER_ON;
	/* The bootrom's trial watchdog is hardware: it keeps its real 16.7 s at any time scale. */
	d->sim.trial_ms = (uint32_t)(SIM_TRIAL_MS * o.time_scale);
	d->sim.virtual_clock = true;
	d->sim.rng = mix(o.seed ^ ((uint64_t)i << 20)) | 1u;
	d->sim.name = d->id;
	ota_bench_mint_device(d->id, "ota sim", ca, ca_key, &d->key, &d->cert);
	fwa_sim_port(&d->port, &d->sim, fwa_crypto_openssl());
	sim_boot_trial = d->port.boot_trial;
	sim_buy = d->port.buy;
	d->port.ctx = d;
	d->port.boot_trial = p_boot_trial;
	d->port.buy = p_buy;
	d->port.wall_time = p_wall;
	d->port.tr_connect = t_connect;
	d->port.tr_send = t_send;
	d->port.tr_recv = t_recv;
	d->port.tr_close = t_close;
	d->port.log = NULL;
	d->check.name = "selftest";
	d->check.check = fwa_sim_selftest;
	d->check.ctx = &d->sim;
	d->cfg.hw_variant = o.hw;
	d->cfg.version = d->version;
	d->cfg.host = "127.0.0.1";
	d->cfg.image_format = "sim";
	d->cfg.root_json = root_json;
	d->cfg.root_len = root_len;
	d->cfg.checks = &d->check;
	d->cfg.nchecks = 1;
	d->cfg.retry_min_ms = 1000;
	d->cfg.retry_max_ms = 60000;
	d->cfg.io_timeout_ms = CONNECT_TIMEOUT_MS;
}

static long rss_kib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t kl = strlen(key);

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, kl) == 0) {
			v = strtol(line + kl, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static void counts(unsigned *per_version, unsigned *per_phase, unsigned *dead)
{
	memset(per_version, 0, sizeof(unsigned) * MAX_VERSIONS);
	memset(per_phase, 0, sizeof(unsigned) * FWA_PHASE__COUNT);
	*dead = 0;
	for (unsigned i = 0; i < o.devices; i++) {
		int p = atomic_load(&devs[i].phase), v = atomic_load(&devs[i].vidx);

		if (p < 0) {
			(*dead)++;
			continue;
		}
		per_version[v]++;
		if (p < FWA_PHASE__COUNT)
			per_phase[p]++;
	}
}

static void progress(uint64_t now, uint64_t *last_checkins, uint64_t *last_ms, bool tty)
{
	unsigned pv[MAX_VERSIONS], pp[FWA_PHASE__COUNT], dead;
	uint64_t ck = atomic_load(&c_checkins);
	double dt = (double)(now - *last_ms) / 1000.0;
	int nv = atomic_load(&nversions);
	char vers[256] = "";
	size_t len = 0;

	counts(pv, pp, &dead);
	for (int i = 0; i < nv && len < sizeof(vers) - 40; i++)
		len +=
		    (size_t)snprintf(vers + len, sizeof(vers) - len, " %s:%u", versions[i], pv[i]);
	fprintf(stderr,
	        "%s[%4.0fs] check-ins %llu (%.0f/s) |%s | downloading %u trial %u | "
	        "updated %llu reverted %llu | %.1f MB in%s",
	        tty ? "\r" : "", (double)(now - t0_ms) / 1000.0, (unsigned long long)ck,
	        dt > 0 ? (double)(ck - *last_checkins) / dt : 0.0, vers, pp[FWA_PHASE_DOWNLOADING],
	        pp[FWA_PHASE_TRIAL] + pp[FWA_PHASE_TRIAL_PENDING],
	        (unsigned long long)atomic_load(&c_bought),
	        (unsigned long long)atomic_load(&c_reverts), (double)atomic_load(&c_bytes_in) / 1e6,
	        tty ? "\033[K" : "\n");
	fflush(stderr);
	*last_checkins = ck;
	*last_ms = now;
}

static void summary(double elapsed, long setup_ms)
{
	static const char *const phase_names[FWA_PHASE__COUNT] = {"idle", "downloading",
	                                                          "trial-pending", "trial"};
	unsigned pv[MAX_VERSIONS], pp[FWA_PHASE__COUNT], dead, fc[F__COUNT] = {0};
	uint64_t ck = atomic_load(&c_checkins);
	int nv = atomic_load(&nversions);

	counts(pv, pp, &dead);
	for (unsigned i = 0; i < o.devices; i++)
		fc[devs[i].fault]++;
	printf("devices %u\n", o.devices);
	for (int i = 0; i < nv; i++)
		printf("version %s %u\n", versions[i], pv[i]);
	for (int i = 0; i < FWA_PHASE__COUNT; i++)
		printf("state %s %u\n", phase_names[i], pp[i]);
	printf("state dead %u\n", dead);
	for (int f = F_NEVER_BUY; f < F__COUNT; f++)
		printf("fault_devices %s %u\n", fault_names[f], fc[f]);
	printf("elapsed_s %.1f\n", elapsed);
	printf("setup_s %.1f\n", (double)setup_ms / 1000.0);
	printf("time_scale %g\n", o.time_scale);
	printf("threads %u\n", o.threads);
	printf("checkins %llu\n", (unsigned long long)ck);
	printf("checkins_per_s %.1f\n", elapsed > 0 ? (double)ck / elapsed : 0.0);
	printf("reports_acknowledged %llu\n", (unsigned long long)atomic_load(&c_reports_acked));
	printf("steps %llu\n", (unsigned long long)atomic_load(&c_steps));
	printf("tls_handshakes %llu\n", (unsigned long long)atomic_load(&c_handshakes));
	printf("tls_resumed %llu\n", (unsigned long long)atomic_load(&c_resumed));
	printf("downloads_completed %llu\n", (unsigned long long)atomic_load(&c_downloads));
	printf("installed_from_delta %llu\n", (unsigned long long)atomic_load(&c_delta_installs));
	printf("installed_from_full_image %llu\n",
	       (unsigned long long)(atomic_load(&c_downloads) - atomic_load(&c_delta_installs)));
	printf("bytes_in %llu\n", (unsigned long long)atomic_load(&c_bytes_in));
	printf("bytes_out %llu\n", (unsigned long long)atomic_load(&c_bytes_out));
	printf("boots %llu\n", (unsigned long long)atomic_load(&c_boots));
	printf("trials %llu\n", (unsigned long long)atomic_load(&c_trials));
	printf("trials_bought %llu\n", (unsigned long long)atomic_load(&c_bought));
	printf("trials_reverted %llu\n", (unsigned long long)atomic_load(&c_reverts));
	printf("failure watchdog_revert %llu\n", (unsigned long long)atomic_load(&c_watchdog));
	printf("failure never_buy_trial %llu\n",
	       (unsigned long long)atomic_load(&c_fault_trials[F_NEVER_BUY]));
	printf("failure fail_health_trial %llu\n",
	       (unsigned long long)atomic_load(&c_fault_trials[F_FAIL_HEALTH]));
	printf("failure download_dropped %llu\n", (unsigned long long)atomic_load(&c_drops));
	printf("failure regress_watchdog_reset %llu\n",
	       (unsigned long long)atomic_load(&c_regress_resets));
	printf("failure connect %llu\n", (unsigned long long)atomic_load(&c_connect_fail));
	for (unsigned e = 1; e < FWA_ERR__COUNT; e++) {
		uint64_t n = atomic_load(&c_err[e]);

		if (n)
			printf("failure step_%s %llu\n", fwa_strerror((enum fwa_err)e),
			       (unsigned long long)n);
	}
	/* VmHWM counts the shared factory flash pages once per device that read them; the
	 * anonymous peak is the memory the fleet really owns (its written flash pages and heap). */
	printf("peak_rss_mib %.1f\n", (double)rss_kib("VmHWM:") / 1024.0);
	printf("peak_anon_mib %.1f\n", (double)peak_anon_kib / 1024.0);
	printf("anon_per_device_kib %.1f\n", o.devices ? (double)peak_anon_kib / o.devices : 0.0);
	printf("scratch_bytes_per_worker %zu\n", (size_t)FWA_AGENT_SCRATCH_SIZE);
	printf("agent_bytes_per_device %zu\n", sizeof(struct dev));
}

static void usage(FILE *f)
{
	fputs(
	    "usage: ota-fleet-sim --server 127.0.0.1:PORT --server-ca FILE --ca-cert FILE\n"
	    "         --ca-key FILE --root FILE [--devices N] [--threads W] [--seed S]\n"
	    "         [--hw VARIANT] [--version V] [--security-version N] [--prefix P]\n"
	    "         [--image-size BYTES] [--slot-size BYTES] [--never-buy RATE]\n"
	    "         [--fail-health RATE] [--drop RATE] [--regress RATE] [--time-scale S]\n"
	    "         [--start-spread SECONDS] [--max-seconds S] [--quiet]\n"
	    "         [--other-version V --other-share F] [--acks FILE]\n"
	    "Runs until SIGINT/SIGTERM or --max-seconds, then prints the summary.\n"
	    "RATE is a fraction of the devices (0..1); faults are drawn per device from --seed.\n",
	    f);
}

static double parse_rate(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (*end || !(v >= 0.0 && v <= 1.0))
		die("bad rate '%s' (a fraction 0..1)", s);
	return v;
}

static unsigned long parse_u(const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || !*s || v > max)
		die("bad number '%s'", s);
	return v;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"server", 1, 0, 's'},
	                                   {"server-ca", 1, 0, 'C'},
	                                   {"ca-cert", 1, 0, 'c'},
	                                   {"ca-key", 1, 0, 'k'},
	                                   {"root", 1, 0, 'r'},
	                                   {"devices", 1, 0, 'n'},
	                                   {"threads", 1, 0, 't'},
	                                   {"seed", 1, 0, 'S'},
	                                   {"hw", 1, 0, 'w'},
	                                   {"version", 1, 0, 'v'},
	                                   {"security-version", 1, 0, 'V'},
	                                   {"prefix", 1, 0, 'p'},
	                                   {"image-size", 1, 0, 'i'},
	                                   {"slot-size", 1, 0, 'z'},
	                                   {"never-buy", 1, 0, 'B'},
	                                   {"fail-health", 1, 0, 'H'},
	                                   {"regress", 1, 0, 'R'},
	                                   {"drop", 1, 0, 'D'},
	                                   {"time-scale", 1, 0, 'T'},
	                                   {"start-spread", 1, 0, 'P'},
	                                   {"max-seconds", 1, 0, 'M'},
	                                   {"quiet", 0, 0, 'q'},
	                                   {"other-version", 1, 0, 'O'},
	                                   {"other-share", 1, 0, 'F'},
	                                   {"acks", 1, 0, 'A'},
	                                   {"help", 0, 0, 'h'},
	                                   {0, 0, 0, 0}};
	struct worker *ws;
	X509 *ca;
	EVP_PKEY *ca_key;
	int flash_fd, other_fd = -1, c;
	size_t flash_size;
	uint64_t start, setup_end, last_ms, last_ck = 0, next_line;
	bool tty = isatty(2);
	char *end;
	ota_bench_prog = "ota-fleet-sim";
	ota_bench_exit_status = 1;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			o.server = optarg;
			break;
		case 'C':
			o.server_ca = optarg;
			break;
		case 'c':
			o.ca_cert = optarg;
			break;
		case 'k':
			o.ca_key = optarg;
			break;
		case 'r':
			o.root = optarg;
			break;
		case 'n':
			o.devices = (unsigned)parse_u(optarg, 1000000);
			break;
		case 't':
			o.threads = (unsigned)parse_u(optarg, 256);
			break;
		case 'S':
			o.seed = parse_u(optarg, ~0ul);
			break;
		case 'w':
			o.hw = optarg;
			break;
		case 'v':
			o.version = optarg;
			break;
		case 'V':
			o.secver = (unsigned)parse_u(optarg, 0xffffffffu);
			break;
		case 'p':
			o.prefix = optarg;
			break;
		case 'i':
			o.image_size = (unsigned)parse_u(optarg, 64u << 20);
			break;
		case 'z':
			o.slot_size = (unsigned)parse_u(optarg, 64u << 20);
			break;
		case 'B':
			o.rate[F_NEVER_BUY] = parse_rate(optarg);
			break;
		case 'R':
			o.rate[F_REGRESS] = parse_rate(optarg);
			break;
		case 'H':
			o.rate[F_FAIL_HEALTH] = parse_rate(optarg);
			break;
		case 'D':
			o.rate[F_DROP] = parse_rate(optarg);
			break;
		case 'O':
			o.other_version = optarg;
			break;
		case 'F':
			o.other_share = parse_rate(optarg);
			break;
		case 'T':
			o.time_scale = strtod(optarg, &end);
			if (*end || !(o.time_scale >= 0.01 && o.time_scale <= 1000))
				die("bad --time-scale '%s' (0.01..1000)", optarg);
			break;
		case 'P':
			o.start_spread_s = (unsigned)parse_u(optarg, 86400);
			break;
		case 'M':
			o.max_seconds = (unsigned)parse_u(optarg, 86400 * 7);
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'A':
			o.acks = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || !o.server || !o.server_ca || !o.ca_cert || !o.ca_key || !o.root ||
	    o.devices == 0 || o.threads == 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (o.rate[F_NEVER_BUY] + o.rate[F_FAIL_HEALTH] + o.rate[F_DROP] + o.rate[F_REGRESS] > 1.0)
		die("%s", "the fault rates add up to more than 1");
	if (o.slot_size % SIM_SECTOR)
		die("--slot-size %u: must be a multiple of 4096", o.slot_size);
	if (o.image_size <= SIM_PAGE)
		die("--image-size %u: must be above 256 (the image header)", o.image_size);
	/* Worded as the agent refuses an image larger than its slot. */
	if (o.image_size > o.slot_size)
		die("--image-size %u: image does not fit the slot (--slot-size %u)", o.image_size,
		    o.slot_size);
	if (strlen(o.prefix) > 20)
		die("%s", "--prefix is too long (20 characters at most)");
	parse_server(o.server);
	if (o.threads > o.devices)
		o.threads = o.devices;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	if (o.acks && !(acks_file = fopen(o.acks, "w")))
		die("cannot write --acks %s: %s", o.acks, strerror(errno));
	root_json = slurp(o.root, FWA_ENVELOPE_MAX, &root_len);
	if (!root_json)
		die("cannot read the root metadata %s", o.root);
	ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (!ssl_ctx)
		ota_bench_ossl_die("SSL_CTX_new");
	SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION);
	SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_CLIENT);
	if (SSL_CTX_load_verify_locations(ssl_ctx, o.server_ca, NULL) != 1)
		ota_bench_ossl_die("cannot load --server-ca");
	SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, NULL);
	ca = ota_bench_read_cert(o.ca_cert);
	ca_key = ota_bench_read_key(o.ca_key);

	start = wall_ms();
	t0_ms = start;
	flash_fd = factory_flash(o.version, &flash_size);
	if (o.other_version && o.other_share > 0)
		other_fd = factory_flash(o.other_version, &flash_size);
	devs = calloc(o.devices, sizeof(*devs));
	ws = calloc(o.threads, sizeof(*ws));
	if (!devs || !ws)
		die("%s", "out of memory");
	for (unsigned i = 0; i < o.devices; i++) {
		bool other = other_fd >= 0 && unit(o.seed ^ (0x07e5ull << 40) ^ i) < o.other_share;

		setup_dev(&devs[i], i, other ? other_fd : flash_fd, flash_size, ca, ca_key);
	}
	close(flash_fd);
	if (other_fd >= 0)
		close(other_fd);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	for (unsigned t = 0; t < o.threads; t++) {
		for (int k = 0; k < TIER__COUNT; k++) {
			ws[t].heap[k] = calloc(o.devices / o.threads + 1, sizeof(struct dev *));
			if (!ws[t].heap[k])
				die("%s", "out of memory");
		}
		ws[t].scratch = aligned_alloc(8, (FWA_AGENT_SCRATCH_SIZE + 7) / 8 * 8);
		if (!ws[t].scratch)
			die("%s", "out of memory");
	}
	setup_end = wall_ms();
	/* The fleet's clock starts now: first check-ins spread over --start-spread. */
	t0_ms = setup_end;
	for (unsigned i = 0; i < o.devices; i++) {
		struct dev *d = &devs[i];
		struct worker *w = &ws[i % o.threads];

		if (!dev_start(d, w->scratch)) {
			kill_dev(d);
			continue;
		}
		d->tier = TIER_POLL;
		d->due = setup_end + virt_to_wall_delay((uint64_t)(unit(o.seed * 7919u + i) *
		                                                   o.start_spread_s * 1000.0));
		heap_push(w, d);
	}
	if (!o.quiet)
		fprintf(stderr,
		        "ota-fleet-sim: %u devices (certificates minted, flash provisioned) in "
		        "%.1f s; %u workers; scratch %zu bytes per worker\n",
		        o.devices, (double)(setup_end - start) / 1000.0, o.threads,
		        (size_t)FWA_AGENT_SCRATCH_SIZE);
	for (unsigned t = 0; t < o.threads; t++)
		if (pthread_create(&ws[t].th, NULL, worker_main, &ws[t]) != 0)
			die("%s", "cannot start a worker thread");
	last_ms = wall_ms();
	next_line = last_ms + (tty ? 1000 : 5000);
	while (!stop) {
		struct timespec ts = {0, 100 * 1000000L};
		uint64_t now;
		long a;

		nanosleep(&ts, NULL);
		now = wall_ms();
		a = rss_kib("RssAnon:");
		if (a > peak_anon_kib)
			peak_anon_kib = a;
		if (o.max_seconds && now - setup_end >= (uint64_t)o.max_seconds * 1000u)
			stop = 1;
		if (!o.quiet && (now >= next_line || stop)) {
			progress(now, &last_ck, &last_ms, tty);
			next_line = now + (tty ? 1000 : 5000);
		}
	}
	if (!o.quiet && tty)
		fputc('\n', stderr);
	for (unsigned t = 0; t < o.threads; t++)
		pthread_join(ws[t].th, NULL);
	summary((double)(wall_ms() - setup_end) / 1000.0, (long)(setup_end - start));
	for (unsigned i = 0; i < o.devices; i++) {
		t_close(&devs[i]);
		SSL_SESSION_free(devs[i].session);
		X509_free(devs[i].cert);
		EVP_PKEY_free(devs[i].key);
		fwa_sim_close(&devs[i].sim);
	}
	if (acks_file && fclose(acks_file) != 0)
		die("cannot write --acks %s: %s", o.acks, strerror(errno));
	for (unsigned t = 0; t < o.threads; t++) {
		for (int k = 0; k < TIER__COUNT; k++)
			free(ws[t].heap[k]);
		free(ws[t].scratch);
	}
	free(ws);
	free(devs);
	free(root_json);
	SSL_CTX_free(ssl_ctx);
	return atomic_load(&c_checkins) > 0 ? 0 : 1;
}
