/*
 * ota-loadgen - the load generator behind every benchmark in bench/.
 *
 * Common HTTP load tools cannot present client certificates or speak the device API, so this
 * is a purpose-built instrument: N closed-loop connections (one thread each), each presenting a
 * device certificate minted in memory at start from a CA the bench created, doing a fixed mix
 * of device-API requests (check-in, report, image download) or a plain GET of a path (for
 * nginx). A connection is either kept alive, or opened per request with a full handshake or
 * with TLS session resumption (tickets). With --rate the load is open-loop: each request has a
 * scheduled start and its latency is counted from that schedule, so a stalled server cannot
 * hide its queueing delay (no coordinated omission).
 *
 * It prints requests/s, latency median/p90/p99/max, errors and bytes/s, and a last line of
 * key=value pairs for scripts. It refuses any target that does not resolve to loopback only.
 * With --ack-log it writes every report the server acknowledged as new ("duplicate": false),
 * so the ingest bench can check afterwards that each is stored exactly once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pki.h"

#define MAX_CONNS 1024
#define IO_TIMEOUT_S 10
#define BUF_SIZE (64 * 1024)
#define CAPTURE_MAX 4096
#define HEADER_MAX (16 * 1024)

enum mode { MODE_KEEPALIVE, MODE_NEW, MODE_RESUME };
enum kind { KIND_CHECKIN, KIND_REPORT, KIND_IMAGE, KIND_GET, KIND__COUNT };
static const char *const kind_name[KIND__COUNT] = {"checkin", "report", "image", "get"};

struct device {
	char id[65];
	X509 *cert;
	EVP_PKEY *key;
	SSL_SESSION *sess;        /* last resumable session, owned */
	char deployment[80];      /* learnt from a check-in answer; "" when none */
	atomic_uint_fast64_t seq; /* next report sequence number */
	pthread_mutex_t lock;     /* guards sess and deployment */
};

struct opts {
	char host[256];
	char port[16];
	struct sockaddr_storage bind; /* --bind: the source address (family 0: the kernel's) */
	enum mode mode;
	int conns;
	double duration;
	double warmup;
	long requests;
	double rate;
	unsigned weight[KIND__COUNT];
	const char *get_path;
	const char *server_ca;
	const char *ca_cert, *ca_key;
	const char *cert, *key;
	int ndevices;
	long device_start;
	const char *prefix;
	const char *hw, *version;
	char image_sha[65];
	long long image_size;
	long long range;
	uint64_t seq_base;
	const char *ack_log;
	const char *label;
	const char *device_dir;
	bool mint_only;
	bool prime;
	bool quiet;
};

/* One connection's receive buffer and the TLS state on it. */
struct conn {
	int fd;
	SSL *ssl;
	struct device *dev;
	size_t off, len;
	unsigned char buf[BUF_SIZE];
};

struct response {
	int status;
	long long body_bytes;
	bool close;
	size_t captured;
	char capture[CAPTURE_MAX + 1];
};

struct worker {
	pthread_t thread;
	int index;
	uint64_t rng;
	uint32_t *lat_us; /* latencies of counted requests, microseconds */
	size_t nlat, cap;
	uint64_t ok[KIND__COUNT];
	uint64_t errors, err_connect, err_tls, err_http, err_status;
	uint64_t handshakes, resumed;
	uint64_t bytes;
	uint64_t acked_new, acked_dup;
	char first_error[200];
	bool joined;
};

static struct opts o;
static SSL_CTX *ctx;
static struct device *devices;
static struct addrinfo *target;
static atomic_bool stop_flag;
static atomic_long issued;
static double t_start, t_measure, t_end;
static FILE *ack_file;
static pthread_barrier_t ready, go;
static pthread_mutex_t ack_lock = PTHREAD_MUTEX_INITIALIZER;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("ota-loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: request mix and range offsets only, nothing secret. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static void usage(void)
{
	fputs(
	    "usage: ota-loadgen --target HOST:PORT --server-ca FILE\n"
	    "         (--ca-cert FILE --ca-key FILE [--devices N] [--device-start K] [--prefix P]\n"
	    "          | --cert FILE --key FILE)\n"
	    "         [--mode keepalive|new|resume] [--conns N] [--duration S | --requests N]\n"
	    "         [--warmup S] [--rate R] [--mix checkin:W,report:W,image:W | --get PATH]\n"
	    "         [--image SHA256:SIZE] [--range BYTES] [--hw V] [--version V]\n"
	    "         [--seq-base N] [--ack-log FILE] [--label TEXT] [--quiet] [--prime]\n"
	    "         [--device-dir DIR] [--bind ADDR]\n"
	    "       ota-loadgen --mint-only --ca-cert FILE --ca-key FILE --devices N --device-dir "
	    "DIR\n"
	    "--device-dir keeps each device's key and certificate in DIR/<id>.pem (minted when\n"
	    "absent) and lists 'id sha256-of-certificate' in DIR/fingerprints, so a database can\n"
	    "be filled with devices that later runs present. --prime checks every device in once\n"
	    "before the clock starts. --bind connects from a loopback source address\n"
	    "(e.g. 127.0.0.4), so that one run's connections have an address of their own.\n"
	    "Loads a loopback HTTPS server with device certificates and prints requests/s,\n"
	    "latency median/p90/p99/max, errors and bytes/s; the last line is key=value.\n",
	    stderr);
	exit(2);
}

/* Loopback only: every address the target resolves to must be 127.0.0.0/8 or ::1. */
static void resolve_target(void)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
	int rc = getaddrinfo(o.host, o.port, &hints, &target);
	if (rc != 0)
		die("cannot resolve %s: %s", o.host, gai_strerror(rc));
	for (struct addrinfo *a = target; a; a = a->ai_next) {
		bool loop = false;
		if (a->ai_family == AF_INET) {
			const struct sockaddr_in *s4 = (const void *)a->ai_addr;
			loop = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
		} else if (a->ai_family == AF_INET6) {
			const struct sockaddr_in6 *s6 = (const void *)a->ai_addr;
			loop = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
			       (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) &&
			        s6->sin6_addr.s6_addr[12] == 127);
		}
		if (!loop)
			die("refusing target %s: it does not resolve to a loopback address only",
			    o.host);
	}
}

/* --bind: a loopback address literal, the source of every connection. */
static void parse_bind(const char *arg)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&o.bind;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&o.bind;

	if (inet_pton(AF_INET, arg, &s4->sin_addr) == 1) {
		if ((ntohl(s4->sin_addr.s_addr) >> 24) != 127)
			die("--bind %s: not a loopback address", arg);
		s4->sin_family = AF_INET;
	} else if (inet_pton(AF_INET6, arg, &s6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			die("--bind %s: not a loopback address", arg);
		s6->sin6_family = AF_INET6;
	} else
		die("--bind wants an IP address literal, got '%s'", arg);
}

static void parse_target(const char *arg)
{
	const char *colon = strrchr(arg, ':');
	const char *h = arg;
	size_t hl;
	if (!colon || colon == arg || !colon[1])
		die("--target wants HOST:PORT, got '%s'", arg);
	hl = (size_t)(colon - arg);
	if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl >= sizeof(o.host) || strlen(colon + 1) >= sizeof(o.port))
		die("--target too long");
	memcpy(o.host, h, hl);
	o.host[hl] = '\0';
	strcpy(o.port, colon + 1);
}

static void parse_mix(const char *arg)
{
	char *copy = strdup(arg), *save = NULL;
	memset(o.weight, 0, sizeof(o.weight));
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':');
		unsigned w = 1;
		int k;
		if (colon) {
			*colon = '\0';
			w = (unsigned)strtoul(colon + 1, NULL, 10);
		}
		for (k = 0; k < KIND_GET; k++)
			if (!strcmp(tok, kind_name[k]))
				break;
		if (k == KIND_GET)
			die("unknown request kind '%s' in --mix (checkin, report, image)", tok);
		o.weight[k] = w;
	}
	free(copy);
}

static void parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"target", 1, 0, 't'},
	    {"mode", 1, 0, 'm'},
	    {"conns", 1, 0, 'c'},
	    {"duration", 1, 0, 'd'},
	    {"requests", 1, 0, 'n'},
	    {"warmup", 1, 0, 'w'},
	    {"rate", 1, 0, 'r'},
	    {"mix", 1, 0, 'x'},
	    {"get", 1, 0, 'g'},
	    {"server-ca", 1, 0, 's'},
	    {"ca-cert", 1, 0, 'A'},
	    {"ca-key", 1, 0, 'K'},
	    {"cert", 1, 0, 'C'},
	    {"key", 1, 0, 'k'},
	    {"devices", 1, 0, 'D'},
	    {"device-start", 1, 0, 'S'},
	    {"prefix", 1, 0, 'p'},
	    {"hw", 1, 0, 'H'},
	    {"version", 1, 0, 'V'},
	    {"image", 1, 0, 'i'},
	    {"range", 1, 0, 'R'},
	    {"seq-base", 1, 0, 'B'},
	    {"ack-log", 1, 0, 'a'},
	    {"label", 1, 0, 'l'},
	    {"quiet", 0, 0, 'q'},
	    {"help", 0, 0, 'h'},
	    {"device-dir", 1, 0, 'E'},
	    {"mint-only", 0, 0, 'M'},
	    {"prime", 0, 0, 'P'},
	    {"bind", 1, 0, 'b'},
	    {0, 0, 0, 0},
	};
	int ch;
	o.mode = MODE_KEEPALIVE;
	o.conns = 16;
	o.ndevices = 0;
	o.prefix = "device-";
	o.hw = "pico2w";
	o.version = "1.0.0";
	o.seq_base = 1;
	o.weight[KIND_CHECKIN] = 1;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 't':
			parse_target(optarg);
			break;
		case 'b':
			parse_bind(optarg);
			break;
		case 'm':
			if (!strcmp(optarg, "keepalive"))
				o.mode = MODE_KEEPALIVE;
			else if (!strcmp(optarg, "new"))
				o.mode = MODE_NEW;
			else if (!strcmp(optarg, "resume"))
				o.mode = MODE_RESUME;
			else
				die("--mode is keepalive, new or resume");
			break;
		case 'c':
			o.conns = atoi(optarg);
			break;
		case 'd':
			o.duration = atof(optarg);
			break;
		case 'n':
			o.requests = atol(optarg);
			break;
		case 'w':
			o.warmup = atof(optarg);
			break;
		case 'r':
			o.rate = atof(optarg);
			break;
		case 'x':
			parse_mix(optarg);
			break;
		case 'g':
			o.get_path = optarg;
			break;
		case 's':
			o.server_ca = optarg;
			break;
		case 'A':
			o.ca_cert = optarg;
			break;
		case 'K':
			o.ca_key = optarg;
			break;
		case 'C':
			o.cert = optarg;
			break;
		case 'k':
			o.key = optarg;
			break;
		case 'D':
			o.ndevices = atoi(optarg);
			break;
		case 'S':
			o.device_start = atol(optarg);
			break;
		case 'p':
			o.prefix = optarg;
			break;
		case 'H':
			o.hw = optarg;
			break;
		case 'V':
			o.version = optarg;
			break;
		case 'i': {
			const char *colon = strchr(optarg, ':');
			if (!colon || colon - optarg != 64)
				die("--image wants SHA256:SIZE");
			memcpy(o.image_sha, optarg, 64);
			o.image_sha[64] = '\0';
			o.image_size = atoll(colon + 1);
			break;
		}
		case 'R':
			o.range = atoll(optarg);
			break;
		case 'B':
			o.seq_base = strtoull(optarg, NULL, 10);
			break;
		case 'a':
			o.ack_log = optarg;
			break;
		case 'l':
			o.label = optarg;
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'E':
			o.device_dir = optarg;
			break;
		case 'M':
			o.mint_only = true;
			break;
		case 'P':
			o.prime = true;
			break;
		default:
			usage();
		}
	}
	if (o.mint_only) {
		if (!o.ca_cert || !o.ca_key || !o.device_dir || o.ndevices <= 0)
			die("--mint-only needs --ca-cert, --ca-key, --devices and --device-dir");
		return;
	}
	if (optind != argc || !o.host[0] || !o.server_ca)
		usage();
	if (o.conns < 1 || o.conns > MAX_CONNS)
		die("--conns must be 1..%d", MAX_CONNS);
	if (o.duration <= 0 && o.requests <= 0)
		die("give --duration or --requests");
	if (o.duration > 0 && o.requests > 0)
		die("give --duration or --requests, not both");
	if (o.warmup < 0 || o.rate < 0 || o.range < 0 || o.seq_base < 1)
		die("--warmup, --rate, --range must be >= 0 and --seq-base >= 1");
	if (!o.cert == !o.ca_cert)
		die("give either --ca-cert/--ca-key (mint devices) or --cert/--key (one device)");
	if ((o.cert && !o.key) || (o.ca_cert && !o.ca_key))
		die("a certificate needs its key");
	if (o.cert)
		o.ndevices = 1;
	if (o.ndevices <= 0)
		o.ndevices = o.conns;
	if (o.get_path && o.get_path[0] != '/')
		die("--get wants an absolute path");
	if (!o.get_path && o.weight[KIND_IMAGE] && (!o.image_sha[0] || o.image_size <= 0))
		die("image requests need --image SHA256:SIZE");
	if (o.get_path) {
		memset(o.weight, 0, sizeof(o.weight));
		o.weight[KIND_GET] = 1;
	}
	if (!o.weight[0] && !o.weight[1] && !o.weight[2] && !o.weight[3])
		die("--mix gives every kind weight 0");
}

/* Loads DIR/<id>.pem into d; false when absent. */
static bool load_device(struct device *d)
{
	char path[4096];
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s.pem", o.device_dir, d->id);
	f = fopen(path, "r");
	if (!f)
		return false;
	d->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	d->cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!d->key || !d->cert)
		die("%s: not a key followed by a certificate", path);
	return true;
}

static void save_device(const struct device *d, FILE *fps)
{
	char path[4096];
	unsigned char md[32];
	unsigned mdlen = 0;
	FILE *f;
	int fd;
	snprintf(path, sizeof(path), "%s/%s.pem", o.device_dir, d->id);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f)
		die("cannot write %s: %s", path, strerror(errno));
	if (!PEM_write_PrivateKey(f, d->key, NULL, NULL, 0, NULL, NULL) ||
	    !PEM_write_X509(f, d->cert))
		ota_bench_ossl_die("cannot write a device file");
	if (fclose(f) != 0)
		die("cannot write %s: %s", path, strerror(errno));
	if (!X509_digest(d->cert, EVP_sha256(), md, &mdlen))
		ota_bench_ossl_die("cannot hash a certificate");
	fprintf(fps, "%s ", d->id);
	for (unsigned i = 0; i < mdlen; i++)
		fprintf(fps, "%02x", md[i]);
	fputc('\n', fps);
}

static void setup_devices(void)
{
	devices = calloc((size_t)o.ndevices, sizeof(*devices));
	if (!devices)
		die("out of memory");
	if (o.cert) {
		X509_NAME *subj;
		devices[0].cert = ota_bench_read_cert(o.cert);
		devices[0].key = ota_bench_read_key(o.key);
		subj = X509_get_subject_name(devices[0].cert);
		if (X509_NAME_get_text_by_NID(subj, NID_commonName, devices[0].id,
		                              sizeof(devices[0].id)) <= 0)
			die("%s has no common name", o.cert);
	} else {
		X509 *ca = ota_bench_read_cert(o.ca_cert);
		EVP_PKEY *ca_key = ota_bench_read_key(o.ca_key);
		FILE *fps = NULL;
		if (o.device_dir) {
			char path[4096];
			if (mkdir(o.device_dir, 0700) != 0 && errno != EEXIST)
				die("cannot make %s: %s", o.device_dir, strerror(errno));
			snprintf(path, sizeof(path), "%s/fingerprints", o.device_dir);
			fps = fopen(path, "a");
			if (!fps)
				die("cannot write %s: %s", path, strerror(errno));
		}
		for (int i = 0; i < o.ndevices; i++) {
			snprintf(devices[i].id, sizeof(devices[i].id), "%s%06ld", o.prefix,
			         o.device_start + i);
			if (o.device_dir && load_device(&devices[i]))
				continue;
			ota_bench_mint_device(devices[i].id, NULL, ca, ca_key, &devices[i].key,
			                      &devices[i].cert);
			if (fps)
				save_device(&devices[i], fps);
		}
		if (fps && fclose(fps) != 0)
			die("cannot write the fingerprints of %s", o.device_dir);
		X509_free(ca);
		EVP_PKEY_free(ca_key);
	}
	for (int i = 0; i < o.ndevices; i++) {
		atomic_init(&devices[i].seq, o.seq_base);
		pthread_mutex_init(&devices[i].lock, NULL);
	}
}

static void free_devices(void)
{
	for (int i = 0; devices && i < o.ndevices; i++) {
		X509_free(devices[i].cert);
		EVP_PKEY_free(devices[i].key);
		SSL_SESSION_free(devices[i].sess);
		pthread_mutex_destroy(&devices[i].lock);
	}
	free(devices);
	devices = NULL;
}

static void setup_tls(void)
{
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		ota_bench_ossl_die("SSL_CTX_new");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_load_verify_locations(ctx, o.server_ca, NULL) != 1)
		ota_bench_ossl_die("cannot load --server-ca");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* Sessions are kept per device by hand (one identity, one session); no internal cache. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (o.mode != MODE_RESUME)
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
}

static void note_error(struct worker *w, uint64_t *counter, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void note_error(struct worker *w, uint64_t *counter, const char *fmt, ...)
{
	va_list ap;
	w->errors++;
	(*counter)++;
	if (w->first_error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(w->first_error, sizeof(w->first_error), fmt, ap);
	va_end(ap);
}

static void conn_close(struct conn *c, bool clean)
{
	if (c->ssl) {
		if (clean)
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->off = c->len = 0;
	c->dev = NULL;
}

static int conn_open(struct worker *w, struct conn *c, struct device *d)
{
	struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
	int one = 1;
	SSL_SESSION *sess = NULL;
	/* Each address of the target in turn ("localhost" may be ::1 and 127.0.0.1). */
	for (const struct addrinfo *a = target; a; a = a->ai_next) {
		c->fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0)
			continue;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (o.bind.ss_family &&
		    (o.bind.ss_family != a->ai_family ||
		     bind(c->fd, (struct sockaddr *)&o.bind,
		          o.bind.ss_family == AF_INET ? sizeof(struct sockaddr_in)
		                                      : sizeof(struct sockaddr_in6)) != 0)) {
			close(c->fd);
			c->fd = -1;
			continue;
		}
		if (connect(c->fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		close(c->fd);
		c->fd = -1;
	}
	if (c->fd < 0) {
		note_error(w, &w->err_connect, "connect: %s", strerror(errno));
		goto fail;
	}
	c->ssl = SSL_new(ctx);
	if (!c->ssl || SSL_use_certificate(c->ssl, d->cert) != 1 ||
	    SSL_use_PrivateKey(c->ssl, d->key) != 1 || SSL_set_fd(c->ssl, c->fd) != 1) {
		note_error(w, &w->err_tls, "SSL setup failed");
		goto fail;
	}
	if (o.mode == MODE_RESUME) {
		pthread_mutex_lock(&d->lock);
		if (d->sess)
			sess = d->sess, SSL_SESSION_up_ref(sess);
		pthread_mutex_unlock(&d->lock);
		if (sess) {
			SSL_set_session(c->ssl, sess);
			SSL_SESSION_free(sess);
		}
	}
	if (SSL_connect(c->ssl) != 1) {
		unsigned long e = ERR_get_error();
		char msg[160];
		ERR_error_string_n(e, msg, sizeof(msg));
		note_error(w, &w->err_tls, "TLS handshake failed: %s", e ? msg : strerror(errno));
		ERR_clear_error();
		goto fail;
	}
	c->dev = d;
	c->off = c->len = 0;
	return 0;
fail:
	conn_close(c, false);
	return -1;
}

/* Keeps the newest resumable session of the device (TLS 1.3 tickets arrive after the handshake,
 * so this runs once a response has been read). */
static void keep_session(struct conn *c)
{
	SSL_SESSION *s = SSL_get1_session(c->ssl);
	if (!s)
		return;
	if (!SSL_SESSION_is_resumable(s)) {
		SSL_SESSION_free(s);
		return;
	}
	pthread_mutex_lock(&c->dev->lock);
	SSL_SESSION_free(c->dev->sess);
	c->dev->sess = s;
	pthread_mutex_unlock(&c->dev->lock);
}

static int conn_write_all(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		int wr = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
		if (wr <= 0)
			return -1;
		p += wr;
		n -= (size_t)wr;
	}
	return 0;
}

/* Reads more bytes into the buffer; 0 at clean EOF, -1 on error. */
static int conn_fill(struct conn *c)
{
	int rd;
	if (c->off == c->len)
		c->off = c->len = 0;
	if (c->len == sizeof(c->buf)) {
		if (c->off == 0)
			return -1;
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	rd = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
	if (rd <= 0) {
		int e = SSL_get_error(c->ssl, rd);
		ERR_clear_error();
		return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
	}
	c->len += (size_t)rd;
	return 1;
}

/* One CRLF-terminated line (without the CRLF) into out; -1 when over max or on error. */
static int conn_line(struct conn *c, char *out, size_t max)
{
	for (;;) {
		unsigned char *p = c->buf + c->off;
		size_t avail = c->len - c->off;
		unsigned char *nl = memchr(p, '\n', avail);
		if (nl) {
			size_t n = (size_t)(nl - p);
			if (n > 0 && p[n - 1] == '\r')
				n--;
			if (n >= max)
				return -1;
			memcpy(out, p, n);
			out[n] = '\0';
			c->off += (size_t)(nl - p) + 1;
			return 0;
		}
		if (avail >= max || conn_fill(c) <= 0)
			return -1;
	}
}

static void capture(struct response *r, const unsigned char *p, size_t n)
{
	size_t room = CAPTURE_MAX - r->captured;
	if (n > room)
		n = room;
	memcpy(r->capture + r->captured, p, n);
	r->captured += n;
	r->capture[r->captured] = '\0';
}

/* Consumes n body bytes (n < 0: until EOF). */
static int conn_body(struct conn *c, struct response *r, long long n)
{
	while (n != 0) {
		size_t avail = c->len - c->off, take;
		if (avail == 0) {
			int f = conn_fill(c);
			if (f < 0)
				return -1;
			if (f == 0)
				return n < 0 ? 0 : -1;
			continue;
		}
		take = (n < 0 || (unsigned long long)n > avail) ? avail : (size_t)n;
		capture(r, c->buf + c->off, take);
		c->off += take;
		r->body_bytes += (long long)take;
		if (n > 0)
			n -= (long long)take;
	}
	return 0;
}

static int read_response(struct conn *c, struct response *r)
{
	char line[HEADER_MAX];
	long long clen = -1;
	bool chunked = false;
	int minor = 1;
	memset(r, 0, offsetof(struct response, capture) + 1);
	if (conn_line(c, line, sizeof(line)) < 0 ||
	    sscanf(line, "HTTP/1.%d %d", &minor, &r->status) != 2)
		return -1;
	r->close = minor == 0;
	for (;;) {
		if (conn_line(c, line, sizeof(line)) < 0)
			return -1;
		if (!line[0])
			break;
		if (!strncasecmp(line, "Content-Length:", 15))
			clen = atoll(line + 15);
		else if (!strncasecmp(line, "Transfer-Encoding:", 18) &&
		         strcasestr(line, "chunked"))
			chunked = true;
		else if (!strncasecmp(line, "Connection:", 11))
			r->close = strcasestr(line, "close") != NULL;
	}
	if (chunked) {
		for (;;) {
			long long sz;
			if (conn_line(c, line, sizeof(line)) < 0)
				return -1;
			sz = strtoll(line, NULL, 16);
			if (sz < 0)
				return -1;
			if (sz == 0)
				break;
			if (conn_body(c, r, sz) < 0 || conn_line(c, line, sizeof(line)) < 0)
				return -1;
		}
		/* Trailers, then the empty line. */
		do {
			if (conn_line(c, line, sizeof(line)) < 0)
				return -1;
		} while (line[0]);
		return 0;
	}
	if (clen >= 0)
		return conn_body(c, r, clen);
	r->close = true;
	return conn_body(c, r, -1);
}

/* Copies the string value of "key" out of a JSON text (first occurrence); false when absent. */
static bool json_string(const char *text, const char *key, char *out, size_t max)
{
	char pat[64];
	const char *p, *end;
	snprintf(pat, sizeof(pat), "\"%s\"", key);
	p = strstr(text, pat);
	if (!p)
		return false;
	p += strlen(pat);
	while (*p == ' ' || *p == ':')
		p++;
	if (*p != '"')
		return false;
	end = strchr(++p, '"');
	if (!end || (size_t)(end - p) >= max)
		return false;
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = '\0';
	return true;
}

static enum kind pick_kind(struct worker *w, struct device *d)
{
	unsigned total = 0, r;
	for (int k = 0; k < KIND__COUNT; k++)
		total += o.weight[k];
	r = (unsigned)(rng_next(&w->rng) % total);
	for (int k = 0; k < KIND__COUNT; k++) {
		if (r < o.weight[k]) {
			/* A device with no deployment has nothing to report: it checks in instead.
			 */
			if (k == KIND_REPORT && !d->deployment[0])
				return KIND_CHECKIN;
			return (enum kind)k;
		}
		r -= o.weight[k];
	}
	return KIND_CHECKIN;
}

static const char *const report_status[] = {"downloading", "downloading", "downloading",
                                            "downloaded", "installing"};

/* Builds the request into buf; *seq is the report's sequence number (0 for other kinds). */
static int build_request(struct worker *w, struct device *d, enum kind k, char *buf, size_t max,
                         uint64_t *seq, char *dep, size_t dep_max)
{
	char body[512];
	int blen = 0, n;
	const char *conn_hdr = o.mode == MODE_KEEPALIVE ? "keep-alive" : "close";
	*seq = 0;
	dep[0] = '\0';
	switch (k) {
	case KIND_GET:
		return snprintf(buf, max, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: %s\r\n\r\n",
		                o.get_path, o.host, conn_hdr);
	case KIND_IMAGE: {
		char range[96] = "";
		if (o.range > 0 && o.range < o.image_size) {
			long long off =
			    (long long)(rng_next(&w->rng) % (uint64_t)(o.image_size - o.range + 1));
			snprintf(range, sizeof(range), "Range: bytes=%lld-%lld\r\n", off,
			         off + o.range - 1);
		}
		return snprintf(
		    buf, max,
		    "GET /device/v1/images/%s HTTP/1.1\r\nHost: %s\r\n%sConnection: %s\r\n\r\n",
		    o.image_sha, o.host, range, conn_hdr);
	}
	case KIND_REPORT:
		pthread_mutex_lock(&d->lock);
		snprintf(dep, dep_max, "%s", d->deployment);
		pthread_mutex_unlock(&d->lock);
		*seq = atomic_fetch_add(&d->seq, 1);
		blen = snprintf(body, sizeof(body),
		                "{\"seq\":%" PRIu64
		                ",\"status\":\"%s\",\"version\":\"%s\",\"progress\":%" PRIu64 "}",
		                *seq, report_status[*seq % 5], o.version, *seq * 4096);
		n = snprintf(buf, max,
		             "POST /device/v1/deployments/%s/events HTTP/1.1\r\nHost: %s\r\n"
		             "Content-Type: application/json\r\nContent-Length: %d\r\nConnection: "
		             "%s\r\n\r\n%s",
		             dep, o.host, blen, conn_hdr, body);
		return n;
	case KIND_CHECKIN:
	default:
		blen =
		    snprintf(body, sizeof(body),
		             "{\"hw_variant\":\"%s\",\"version\":\"%s\",\"security_floor\":1,"
		             "\"root_version\":1,\"active_slot\":\"A\",\"boot_state\":\"normal\"}",
		             o.hw, o.version);
		return snprintf(buf, max,
		                "POST /device/v1/checkin HTTP/1.1\r\nHost: %s\r\nContent-Type: "
		                "application/json\r\n"
		                "Content-Length: %d\r\nConnection: %s\r\n\r\n%s",
		                o.host, blen, conn_hdr, body);
	}
}

static void record(struct worker *w, double latency)
{
	if (w->nlat == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 65536;
		uint32_t *p = realloc(w->lat_us, cap * sizeof(*p));
		if (!p)
			die("out of memory");
		w->lat_us = p;
		w->cap = cap;
	}
	double us = latency * 1e6;
	w->lat_us[w->nlat++] = us > 4e9 ? UINT32_MAX : (uint32_t)us;
}

/* One request on c (opened as needed): 1 when the connection may carry the next request, 0 when
 * the answer was read but the connection ends (close it cleanly, so that its session stays
 * resumable), -1 when it failed (drop it). */
static int do_request(struct worker *w, struct conn *c, struct device *d, bool counted, double t0)
{
	char req[2048];
	char dep[80];
	uint64_t seq;
	static _Thread_local struct response resp;
	struct response *r = &resp;
	enum kind k = pick_kind(w, d);
	int n;
	bool fresh = c->ssl == NULL;
	if (fresh && conn_open(w, c, d) < 0)
		return -1;
	if (fresh && counted) {
		w->handshakes++;
		if (SSL_session_reused(c->ssl))
			w->resumed++;
	}
	n = build_request(w, d, k, req, sizeof(req), &seq, dep, sizeof(dep));
	if (n <= 0 || (size_t)n >= sizeof(req))
		die("request too long");
	if (conn_write_all(c, req, (size_t)n) < 0) {
		note_error(w, &w->err_http, "send failed on %s", kind_name[k]);
		return -1;
	}
	if (read_response(c, r) < 0) {
		note_error(w, &w->err_http, "bad or missing response to %s", kind_name[k]);
		return -1;
	}
	if (o.mode == MODE_RESUME)
		keep_session(c);
	if (k == KIND_CHECKIN && r->status == 200) {
		char dep_new[80];
		if (json_string(r->capture, "deployment_id", dep_new, sizeof(dep_new))) {
			pthread_mutex_lock(&d->lock);
			snprintf(d->deployment, sizeof(d->deployment), "%s", dep_new);
			pthread_mutex_unlock(&d->lock);
		}
	}
	if (k == KIND_REPORT && r->status == 200) {
		bool dup = strstr(r->capture, "\"duplicate\":true") ||
		           strstr(r->capture, "\"duplicate\": true");
		if (dup)
			w->acked_dup++;
		else
			w->acked_new++;
		if (ack_file && !dup) {
			pthread_mutex_lock(&ack_lock);
			fprintf(ack_file, "%s %s %" PRIu64 "\n", d->id, dep, seq);
			pthread_mutex_unlock(&ack_lock);
		}
	}
	if (counted) {
		double t1 = now_s();
		bool good = (k == KIND_IMAGE || k == KIND_GET)
		                ? (r->status == 200 || r->status == 206)
		                : r->status == 200;
		if (good) {
			w->ok[k]++;
			w->bytes += (uint64_t)r->body_bytes;
			record(w, t1 - t0);
		} else {
			char snippet[120];
			size_t sl =
			    r->captured < sizeof(snippet) - 1 ? r->captured : sizeof(snippet) - 1;
			memcpy(snippet, r->capture, sl);
			snippet[sl] = '\0';
			for (char *p = snippet; *p; p++)
				if (*p == '\n' || *p == '\r')
					*p = ' ';
			note_error(w, &w->err_status, "%s answered %d: %s", kind_name[k], r->status,
			           snippet);
		}
	}
	return r->close ? 0 : 1;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct conn *c = calloc(1, sizeof(*c));
	long next_dev = w->index % o.ndevices;
	double interval = o.rate > 0 ? (double)o.conns / o.rate : 0;
	double sched;
	if (!c)
		die("out of memory");
	c->fd = -1;
	/* Devices with reports in the mix learn their deployment from one check-in first; with
	 * --prime every device makes one request first (admitted, session ticket kept). */
	if (o.weight[KIND_REPORT] || o.prime) {
		for (long i = w->index; i < o.ndevices && !atomic_load(&stop_flag); i += o.conns) {
			struct conn *t = calloc(1, sizeof(*t));
			if (!t)
				die("out of memory");
			t->fd = -1;
			if (conn_open(w, t, &devices[i]) == 0) {
				char req[1024], dep[80];
				uint64_t seq;
				static _Thread_local struct response r;
				int n = build_request(w, &devices[i],
				                      o.get_path ? KIND_GET : KIND_CHECKIN, req,
				                      sizeof(req), &seq, dep, sizeof(dep));
				if (conn_write_all(t, req, (size_t)n) == 0 &&
				    read_response(t, &r) == 0 && r.status == 200 &&
				    json_string(r.capture, "deployment_id", dep, sizeof(dep)))
					snprintf(devices[i].deployment,
					         sizeof(devices[i].deployment), "%s", dep);
				if (o.mode == MODE_RESUME)
					keep_session(t);
			}
			conn_close(t, true);
			free(t);
		}
		/* Learning errors are not part of the measurement. */
		w->errors = w->err_connect = w->err_tls = w->err_http = w->err_status = 0;
		w->first_error[0] = '\0';
	}
	/* The clock starts when every worker is ready. */
	pthread_barrier_wait(&ready);
	pthread_barrier_wait(&go);
	sched = t_start + (o.rate > 0 ? (double)w->index / o.rate : 0);
	while (!atomic_load(&stop_flag)) {
		struct device *d = &devices[next_dev];
		double t0;
		bool counted;
		int keep;
		if (o.requests > 0 && atomic_fetch_add(&issued, 1) >= o.requests)
			break;
		if (o.rate > 0) {
			double now = now_s();
			if (sched > now) {
				struct timespec ts;
				double dt = sched - now;
				ts.tv_sec = (time_t)dt;
				ts.tv_nsec = (long)((dt - (double)ts.tv_sec) * 1e9);
				nanosleep(&ts, NULL);
			}
			t0 = sched;
			sched += interval;
		} else {
			t0 = now_s();
		}
		if (o.duration > 0 && t0 >= t_end)
			break;
		counted = t0 >= t_measure;
		if (o.mode == MODE_KEEPALIVE && c->ssl && c->dev != d)
			conn_close(c, true);
		keep = do_request(w, c, d, counted, t0);
		if (keep <= 0 || o.mode != MODE_KEEPALIVE)
			conn_close(c, keep >= 0);
		if (o.mode != MODE_KEEPALIVE) {
			/* The next connection is the next device of this worker's share. */
			next_dev += o.conns;
			if (next_dev >= o.ndevices)
				next_dev = w->index % o.ndevices;
		}
	}
	conn_close(c, true);
	free(c);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static double pct(const uint32_t *v, size_t n, double p)
{
	size_t i;
	if (n == 0)
		return 0;
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i] / 1000.0;
}

int main(int argc, char **argv)
{
	struct worker *ws;
	uint64_t ok[KIND__COUNT] = {0}, total = 0, errors = 0, e_conn = 0, e_tls = 0, e_http = 0,
	         e_status = 0, hs = 0, resumed = 0, bytes = 0, acked_new = 0, acked_dup = 0;
	size_t nlat = 0;
	uint32_t *all;
	const char *first_error = "";
	double elapsed, t_done;
	const char *mode_name[] = {"keepalive", "new", "resume"};
	ota_bench_prog = "ota-loadgen";
	ota_bench_exit_status = 2;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	if (o.mint_only) {
		setup_devices();
		printf("minted %d devices into %s\n", o.ndevices, o.device_dir);
		free_devices();
		return 0;
	}
	resolve_target();
	setup_tls();
	setup_devices();
	if (o.ack_log) {
		ack_file = fopen(o.ack_log, "w");
		if (!ack_file)
			die("cannot write %s: %s", o.ack_log, strerror(errno));
	}
	ws = calloc((size_t)o.conns, sizeof(*ws));
	if (!ws)
		die("out of memory");
	if (pthread_barrier_init(&ready, NULL, (unsigned)o.conns + 1) != 0 ||
	    pthread_barrier_init(&go, NULL, (unsigned)o.conns + 1) != 0)
		die("cannot make barriers");
	for (int i = 0; i < o.conns; i++) {
		ws[i].index = i;
		ws[i].rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1) ^ (uint64_t)getpid();
		if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0)
			die("cannot start thread %d", i);
	}
	pthread_barrier_wait(&ready);
	t_start = now_s();
	t_measure = t_start + o.warmup;
	t_end = t_measure + o.duration;
	pthread_barrier_wait(&go);
	if (o.duration > 0) {
		/* Workers stop at t_end themselves; this bounds a worker stuck in I/O. */
		while (now_s() < t_end + IO_TIMEOUT_S) {
			struct timespec ts = {0, 50 * 1000 * 1000};
			bool all_done = true;
			nanosleep(&ts, NULL);
			for (int i = 0; i < o.conns; i++) {
				if (ws[i].joined)
					continue;
				if (pthread_tryjoin_np(ws[i].thread, NULL) == 0)
					ws[i].joined = true;
				else
					all_done = false;
			}
			if (all_done)
				break;
		}
		atomic_store(&stop_flag, true);
	}
	for (int i = 0; i < o.conns; i++)
		if (!ws[i].joined)
			pthread_join(ws[i].thread, NULL);
	t_done = now_s();
	if (ack_file)
		fclose(ack_file);

	for (int i = 0; i < o.conns; i++) {
		for (int k = 0; k < KIND__COUNT; k++)
			ok[k] += ws[i].ok[k];
		errors += ws[i].errors;
		e_conn += ws[i].err_connect;
		e_tls += ws[i].err_tls;
		e_http += ws[i].err_http;
		e_status += ws[i].err_status;
		hs += ws[i].handshakes;
		resumed += ws[i].resumed;
		bytes += ws[i].bytes;
		acked_new += ws[i].acked_new;
		acked_dup += ws[i].acked_dup;
		nlat += ws[i].nlat;
		if (!first_error[0] && ws[i].first_error[0])
			first_error = ws[i].first_error;
	}
	all = malloc((nlat ? nlat : 1) * sizeof(*all));
	if (!all)
		die("out of memory");
	nlat = 0;
	for (int i = 0; i < o.conns; i++) {
		if (ws[i].nlat)
			memcpy(all + nlat, ws[i].lat_us, ws[i].nlat * sizeof(*all));
		nlat += ws[i].nlat;
		free(ws[i].lat_us);
	}
	qsort(all, nlat, sizeof(*all), cmp_u32);
	for (int k = 0; k < KIND__COUNT; k++)
		total += ok[k];
	elapsed =
	    o.duration > 0 ? (t_done < t_end ? t_done : t_end) - t_measure : t_done - t_measure;
	if (elapsed <= 0)
		elapsed = 1e-9;

	if (!o.quiet) {
		printf("target        %s:%s  mode %s  conns %d  devices %d%s\n", o.host, o.port,
		       mode_name[o.mode], o.conns, o.ndevices, o.rate > 0 ? "  (open loop)" : "");
		printf("requests      %" PRIu64 " ok in %.2f s (checkin %" PRIu64
		       ", report %" PRIu64 ", image %" PRIu64 ", get %" PRIu64 ")\n",
		       total, elapsed, ok[KIND_CHECKIN], ok[KIND_REPORT], ok[KIND_IMAGE],
		       ok[KIND_GET]);
		printf("throughput    %.0f req/s, %.1f MB/s\n", (double)total / elapsed,
		       (double)bytes / elapsed / 1e6);
		printf("latency ms    median %.2f  p90 %.2f  p99 %.2f  max %.2f\n",
		       pct(all, nlat, 0.5), pct(all, nlat, 0.9), pct(all, nlat, 0.99),
		       nlat ? all[nlat - 1] / 1000.0 : 0);
		if (o.mode != MODE_KEEPALIVE)
			printf("handshakes    %" PRIu64 " (%.0f/s), resumed %" PRIu64 "\n", hs,
			       (double)hs / elapsed, resumed);
		if (o.weight[KIND_REPORT])
			printf("reports       %" PRIu64 " acknowledged new, %" PRIu64
			       " duplicate\n",
			       acked_new, acked_dup);
		printf("errors        %" PRIu64 " (connect %" PRIu64 ", tls %" PRIu64
		       ", http %" PRIu64 ", status %" PRIu64 ")%s%s\n",
		       errors, e_conn, e_tls, e_http, e_status, first_error[0] ? "  first: " : "",
		       first_error);
	}
	printf("result%s%s mode=%s conns=%d requests=%" PRIu64 " errors=%" PRIu64 " seconds=%.3f"
	       " rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f bytes_per_s=%.0f"
	       " handshakes=%" PRIu64 " resumed=%" PRIu64 " acked=%" PRIu64 "\n",
	       o.label ? " label=" : "", o.label ? o.label : "", mode_name[o.mode], o.conns, total,
	       errors, elapsed, (double)total / elapsed, pct(all, nlat, 0.5), pct(all, nlat, 0.9),
	       pct(all, nlat, 0.99), nlat ? all[nlat - 1] / 1000.0 : 0, (double)bytes / elapsed, hs,
	       resumed, acked_new);
	free(all);
	free(ws);
	free_devices();
	freeaddrinfo(target);
	SSL_CTX_free(ctx);
	/* Could not measure: nothing succeeded. */
	return total > 0 ? 0 : 1;
}
