/*
 * Portable tests of the agent core on a RAM-simulated RP2350-style device: A/B slots and two
 * state areas in RAM with NOR semantics (erase to 0xFF, program only clears bits), the
 * bootrom's TBYB rules (a flash-update reboot runs the other slot as a trial; a reboot before
 * the buy brings the previous slot back), and an in-process server answering check-ins,
 * image downloads (with Range) and reports over the port's transport. Documents are signed
 * at run time with the kit's keys, so the same tests run with real crypto on the host.
 *
 * They cover the update flow end to end, the refusals that must leave the slot untouched, a
 * failed health check rolled back by the "bootrom", a download resumed after a drop, state
 * that survives a reboot, a power cut before every flash operation of an update, and the
 * trial's hard cases: a buy the bootrom refuses after turning the watchdog off, a slow network
 * that outlasts the bootrom's trial watchdog within the agent's own deadline, a trial that
 * hangs, and one that moves without ever finishing; and the buy waits for the acknowledged
 * "trial" report.
 */
#include <string.h>

#include "build.h"
#include "fwa/agent.h"

#define SLOT_SIZE (64u * 1024u)
#define STATE_SIZE (8u * 1024u)
#define IMAGE_SIZE 20000u
#define MAX_EVENTS 32
#define HW "pico2_w"
#define TRIAL_WATCHDOG_MS 16700u /* the bootrom's, and the longest the port re-arms */

/* ---- the simulated device ---- */

struct sim {
	/* Hardware that survives a power cut. */
	uint8_t slot[2][SLOT_SIZE];
	uint8_t state[2][STATE_SIZE];
	unsigned active;     /* slot running now */
	bool trial;          /* running as a TBYB trial, buy pending */
	bool pending_trial;  /* the next boot is a trial of the other slot */
	bool pending_reboot; /* a reboot was asked for */
	enum fwa_reset_reason reset;
	/* Power cut injection: the flash operation numbered cut_at never happens. */
	long flash_ops;
	long cut_at;
	bool powered_off;
	unsigned slot_writes; /* erase + program calls on slots */
	uint64_t now;
	bool healthy;
	/* The trial watchdog, and the trial's faults. */
	bool watchdog_on;
	uint64_t watchdog_at;
	bool pending_watchdog; /* it fired: the next boot is a watchdog reset */
	unsigned rearms;
	uint64_t trial_boot_at;
	bool buy_fails;          /* the bootrom turns the watchdog off, then fails */
	bool hang_in_health;     /* the trial image hangs in its health check */
	bool hung;               /* ... and has: nothing it does takes effect */
	bool refuse_events;      /* the server answers reports with 503 */
	unsigned refuse_403;     /* the server answers this many reports 403 ... */
	const char *refuse_type; /* ... with a problem of this type (a slug) */
	unsigned refused_403;    /* reports so answered */
	unsigned buys;           /* successful buys */
	bool trial_acked_at_buy; /* the server had stored the "trial" report when it bought */
	uint32_t connect_ms;     /* what one connect costs (Wi-Fi, DNS, TLS) */
	bool not_tbyb;           /* the port finds no TBYB flag in the downloaded image */

	/* The server. */
	char *manifest_env; /* envelope offered, or NULL for "none" */
	uint8_t image[IMAGE_SIZE];
	char image_path[96];
	char dep_id[16]; /* deployment offered */
	long drop_after; /* close the image download after this many body bytes; -1 never */
	unsigned ranges; /* image requests with a Range header */
	unsigned checkins;
	char last_checkin[1024]; /* body of the last check-in, NUL-terminated */
	unsigned nstatus;
	char status[MAX_EVENTS][16];
	uint32_t seen_seq[MAX_EVENTS];
	unsigned duplicates;

	/* Signed time: with token_time, check-ins carrying a nonce get a token of time key 6. */
	const char *token_time;
	int token_mode; /* TOKEN_OWN, TOKEN_FOREIGN (another nonce), TOKEN_REPLAY (the previous) */
	char prev_nonce[65];
	unsigned tokens;
	char token_env[1024];
	/* Server CAs: the pins the agent gave the transport; roots offered at check-in. */
	unsigned npins, told_cas;
	uint8_t pin0[32];
	const char *roots_json; /* "[...]" or NULL */

	/* One connection. */
	bool open;
	char req[8192];
	size_t req_len;
	char resp[IMAGE_SIZE + 1024];
	size_t resp_len, resp_pos;
};

enum { TOKEN_OWN, TOKEN_FOREIGN, TOKEN_REPLAY };

static struct sim sim;
static const struct ptest_kit *sim_kit; /* signs time tokens */
static char manifest_env[FWA_ENVELOPE_MAX];
static char root_env[FWA_ENVELOPE_MAX];
static long root_len;
static struct fwa_agent agent;
static _Alignas(8) uint8_t scratch[FWA_AGENT_SCRATCH_SIZE];

static bool flash_op(void)
{
	if (sim.powered_off)
		return false;
	if (sim.flash_ops++ == sim.cut_at) {
		sim.powered_off = true;
		return false;
	}
	return true;
}

static enum fwa_err geometry(void *ctx, struct fwa_flash_geometry *out)
{
	(void)ctx;
	out->slot_size = SLOT_SIZE;
	out->erase_size = 4096;
	out->prog_size = 256;
	out->state_size = STATE_SIZE;
	return FWA_OK;
}

static enum fwa_err slot_erase(void *ctx, uint32_t off, uint32_t len)
{
	(void)ctx;
	if (off % 4096 || len % 4096 || off > SLOT_SIZE || len > SLOT_SIZE - off)
		return FWA_ERR_FLASH;
	if (!flash_op())
		return FWA_ERR_FLASH;
	sim.slot_writes++;
	memset(sim.slot[1 - sim.active] + off, 0xff, len);
	return FWA_OK;
}

static enum fwa_err slot_program(void *ctx, uint32_t off, const void *data, uint32_t len)
{
	const uint8_t *d = data;
	(void)ctx;
	if (off % 256 || len % 256 || off > SLOT_SIZE || len > SLOT_SIZE - off)
		return FWA_ERR_FLASH;
	if (!flash_op())
		return FWA_ERR_FLASH;
	sim.slot_writes++;
	for (uint32_t i = 0; i < len; i++)
		sim.slot[1 - sim.active][off + i] &= d[i]; /* NOR: programming only clears bits */
	return FWA_OK;
}

static enum fwa_err slot_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
	(void)ctx;
	if (sim.powered_off || off > SLOT_SIZE || len > SLOT_SIZE - off)
		return FWA_ERR_FLASH;
	memcpy(buf, sim.slot[1 - sim.active] + off, len);
	return FWA_OK;
}

static enum fwa_err state_read(void *ctx, unsigned area, uint32_t off, void *buf, uint32_t len)
{
	(void)ctx;
	if (sim.powered_off || area > 1 || off > STATE_SIZE || len > STATE_SIZE - off)
		return FWA_ERR_FLASH;
	memcpy(buf, sim.state[area] + off, len);
	return FWA_OK;
}

static enum fwa_err state_erase(void *ctx, unsigned area)
{
	(void)ctx;
	if (area > 1 || !flash_op())
		return FWA_ERR_FLASH;
	memset(sim.state[area], 0xff, STATE_SIZE);
	return FWA_OK;
}

static enum fwa_err state_program(void *ctx, unsigned area, uint32_t off, const void *data,
                                  uint32_t len)
{
	const uint8_t *d = data;
	(void)ctx;
	if (area > 1 || off % 256 || len % 256 || off > STATE_SIZE || len > STATE_SIZE - off)
		return FWA_ERR_FLASH;
	if (!flash_op())
		return FWA_ERR_FLASH;
	for (uint32_t i = 0; i < len; i++)
		sim.state[area][off + i] &= d[i];
	return FWA_OK;
}

static enum fwa_err boot_info(void *ctx, struct fwa_boot_info *out)
{
	(void)ctx;
	if (sim.powered_off)
		return FWA_ERR_FLASH;
	out->active_slot = (uint8_t)sim.active;
	out->trial = sim.trial;
	out->reset = sim.reset;
	return FWA_OK;
}

static enum fwa_err boot_trial(void *ctx, uint32_t image_len)
{
	(void)ctx;
	if (sim.powered_off || image_len == 0 || image_len > SLOT_SIZE)
		return FWA_ERR_FLASH;
	if (sim.not_tbyb)
		return FWA_ERR_MALFORMED;
	sim.pending_trial = true;
	sim.pending_reboot = true;
	return FWA_OK;
}

static enum fwa_err buy(void *ctx)
{
	(void)ctx;
	if (sim.hung || (sim.watchdog_on && sim.now >= sim.watchdog_at))
		return FWA_ERR_BUSY; /* the chip is resetting already */
	sim.watchdog_on = false;     /* rom_explicit_buy turns it off first */
	if (sim.buy_fails)
		return FWA_ERR_FLASH;
	if (sim.powered_off || !flash_op()) /* the bootrom rewrites a flash sector to buy */
		return FWA_ERR_FLASH;
	sim.trial = false;
	sim.buys++;
	sim.trial_acked_at_buy = false;
	for (unsigned i = 0; i < sim.nstatus; i++)
		sim.trial_acked_at_buy =
		    sim.trial_acked_at_buy || strcmp(sim.status[i], "trial") == 0;
	return FWA_OK;
}

static uint32_t trial_rearm(void *ctx, uint32_t ms)
{
	(void)ctx;
	if (!sim.trial || !sim.watchdog_on || sim.hung || sim.now >= sim.watchdog_at)
		return 0;
	if (ms > TRIAL_WATCHDOG_MS)
		ms = TRIAL_WATCHDOG_MS;
	sim.watchdog_at = sim.now + ms;
	sim.rearms++;
	return ms;
}

static void reboot(void *ctx)
{
	(void)ctx;
	sim.pending_reboot = true;
}

static uint64_t now_ms(void *ctx)
{
	(void)ctx;
	return sim.now;
}

static enum fwa_err random_bytes(void *ctx, void *buf, size_t len)
{
	static uint32_t x = 12345;
	uint8_t *o = buf;
	(void)ctx;
	while (len--) {
		x = x * 1103515245u + 12345u;
		*o++ = (uint8_t)(x >> 16);
	}
	return FWA_OK;
}

/* ---- the in-process server ---- */

/* Append s (and a NUL, not counted) at dst + *n. Callers size dst for what they build. */
static void cat(char *dst, size_t *n, const char *s)
{
	size_t k = strlen(s);
	memcpy(dst + *n, s, k + 1);
	*n += k;
}

static void cat_uint(char *dst, size_t *n, uint64_t v)
{
	char d[21];
	unsigned i = sizeof(d) - 1;
	d[i] = '\0';
	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	cat(dst, n, d + i);
}

static void resp_put(const char *s, size_t n)
{
	if (n > sizeof(sim.resp) - sim.resp_len)
		n = sizeof(sim.resp) - sim.resp_len;
	memcpy(sim.resp + sim.resp_len, s, n);
	sim.resp_len += n;
}

static void resp_str(const char *s)
{
	resp_put(s, strlen(s));
}

static void resp_uint(uint64_t v)
{
	char d[24];
	size_t n = 0;
	cat_uint(d, &n, v);
	resp_put(d, n);
}

static void respond(int status, const char *reason, const char *extra, const void *body, size_t len)
{
	sim.resp_len = sim.resp_pos = 0;
	resp_str("HTTP/1.1 ");
	resp_uint((uint64_t)status);
	resp_str(" ");
	resp_str(reason);
	resp_str("\r\nContent-Length: ");
	resp_uint(len);
	resp_str("\r\nConnection: close\r\n");
	if (extra)
		resp_str(extra);
	resp_str("\r\n");
	resp_put(body, len);
}

static const char *find(const char *hay, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(hay + i, needle, k) == 0)
			return hay + i;
	return NULL;
}

static uint64_t parse_uint(const char *s, const char **end)
{
	uint64_t v = 0;
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (uint64_t)(*s++ - '0');
	if (end)
		*end = s;
	return v;
}

static void record_event(const char *body, size_t len)
{
	struct fwa_json_tok tok[32];
	struct fwa_json j;
	uint64_t seq = 0;
	if (fwa_json_parse(&j, body, len, tok, 32) != FWA_OK ||
	    fwa_json_uint(&j, fwa_json_get(&j, 0, "seq"), 1000, &seq) != FWA_OK)
		return;
	seq |= (uint64_t)(uint8_t)sim.dep_id[4] << 16; /* the key is (deployment, seq) */
	for (unsigned i = 0; i < sim.nstatus; i++) {
		if (sim.seen_seq[i] == seq) {
			sim.duplicates++;
			return;
		}
	}
	if (sim.nstatus < MAX_EVENTS && fwa_json_str(&j, fwa_json_get(&j, 0, "status"),
	                                             sim.status[sim.nstatus], 16, NULL) == FWA_OK)
		sim.seen_seq[sim.nstatus++] = (uint32_t)seq;
}

/*
 * The token of a check-in body (its "nonce"), into sim.token_env ("" when none is given: no
 * nonce, or a replay with no earlier nonce).
 */
static void time_token(const char *b, size_t blen)
{
	static char payload[256];
	struct pt_sig sig = {6, -1, false};
	char nonce[65] = "";
	const char *at = find(b, blen, "\"nonce\":\"");
	size_t n = 0;

	sim.token_env[0] = '\0';
	if (at && (size_t)(b + blen - at) >= 9 + 32) {
		memcpy(nonce, at + 9, 32);
		nonce[32] = '\0';
	}
	char prev[65];
	memcpy(prev, sim.prev_nonce, sizeof(prev));
	memcpy(sim.prev_nonce, nonce, sizeof(nonce));
	const char *for_nonce = sim.token_mode == TOKEN_FOREIGN ? "0123456789abcdef0123456789abcdef"
	                        : sim.token_mode == TOKEN_REPLAY ? prev
	                                                         : nonce;
	if (!for_nonce[0])
		return;
	cat(payload, &n, "{\"_type\":\"time\",\"spec_version\":\"1\",\"time\":\"");
	cat(payload, &n, sim.token_time);
	cat(payload, &n, "\",\"nonce\":\"");
	cat(payload, &n, for_nonce);
	cat(payload, &n, "\"}");
	if (pt_envelope(sim_kit, FWA_PAYLOAD_TIME, payload, n, &sig, 1, sim.token_env,
	                sizeof(sim.token_env)) > 0)
		sim.tokens++;
	else
		sim.token_env[0] = '\0';
}

static void serve(void)
{
	static char body[FWA_ENVELOPE_MAX + 512];
	char path[80];
	const char *end = find(sim.req, sim.req_len, "\r\n\r\n");
	const char *cl = find(sim.req, sim.req_len, "Content-Length: ");
	size_t head = (size_t)(end - sim.req) + 4;
	size_t blen = cl ? (size_t)parse_uint(cl + 16, NULL) : 0;
	const char *b = sim.req + head;

	if (strncmp(sim.req, "POST /device/v1/checkin ", 24) == 0) {
		size_t n = 0;
		sim.checkins++;
		n = blen < sizeof(sim.last_checkin) ? blen : sizeof(sim.last_checkin) - 1;
		memcpy(sim.last_checkin, b, n);
		sim.last_checkin[n] = '\0';
		n = 0;
		if (sim.token_time) {
			time_token(b, blen);
			if (sim.manifest_env && sim.token_env[0]) {
				cat(body, &n, "{\"time_token\":");
				cat(body, &n, sim.token_env);
				cat(body, &n,
				    ",\"action\":\"update\",\"poll_after\":60,\"update\":{"
				    "\"deployment_id\":\"");
				cat(body, &n, sim.dep_id);
				cat(body, &n, "\",\"manifest\":");
				cat(body, &n, sim.manifest_env);
				cat(body, &n, ",\"image_url\":\"");
				cat(body, &n, sim.image_path);
				cat(body, &n, "\"}}");
				respond(200, "OK", "Content-Type: application/json\r\n", body, n);
				return;
			}
		}
		if (!sim.manifest_env && sim.roots_json) {
			cat(body, &n, "{\"action\":\"none\",\"poll_after\":60,\"roots\":");
			cat(body, &n, sim.roots_json);
			cat(body, &n, "}");
			respond(200, "OK", "Content-Type: application/json\r\n", body, n);
			return;
		}
		if (!sim.manifest_env) {
			static const char none[] = "{\"action\":\"none\",\"poll_after\":60}";
			respond(200, "OK", "Content-Type: application/json\r\n", none,
			        sizeof(none) - 1);
			return;
		}
		cat(body, &n,
		    "{\"action\":\"update\",\"poll_after\":60,\"update\":{\"deployment_id\":\"");
		cat(body, &n, sim.dep_id);
		cat(body, &n, "\",\"manifest\":");
		cat(body, &n, sim.manifest_env);
		cat(body, &n, ",\"image_url\":\"");
		cat(body, &n, sim.image_path);
		cat(body, &n, "\"}}");
		respond(200, "OK", "Content-Type: application/json\r\n", body, n);
		return;
	}
	size_t pl = 0;
	cat(path, &pl, "POST /device/v1/deployments/");
	cat(path, &pl, sim.dep_id);
	cat(path, &pl, "/events ");
	if (strncmp(sim.req, path, pl) == 0 && sim.refuse_403) {
		size_t n = 0;
		sim.refuse_403--;
		sim.refused_403++;
		cat(body, &n, "{\"type\":\"urn:ota:problem:");
		cat(body, &n, sim.refuse_type);
		cat(body, &n, "\",\"title\":\"Refused\",\"status\":403}");
		respond(403, "Forbidden", "Content-Type: application/problem+json\r\n", body, n);
		return;
	}
	if (strncmp(sim.req, path, pl) == 0 && sim.refuse_events) {
		respond(503, "Service Unavailable", NULL, "", 0);
		return;
	}
	if (strncmp(sim.req, path, pl) == 0) {
		static const char ack[] = "{\"duplicate\":false,\"deployment_status\":\"active\"}";
		record_event(b, blen);
		respond(200, "OK", "Content-Type: application/json\r\n", ack, sizeof(ack) - 1);
		return;
	}
	if (strncmp(sim.req, "GET ", 4) == 0 &&
	    strncmp(sim.req + 4, sim.image_path, strlen(sim.image_path)) == 0) {
		const char *r = find(sim.req, head, "Range: bytes=");
		uint64_t first = 0;
		if (r) {
			sim.ranges++;
			first = parse_uint(r + 13, NULL);
		}
		if (first >= IMAGE_SIZE) {
			respond(416, "Range Not Satisfiable", NULL, "", 0);
			return;
		}
		if (r) {
			static char cr[80];
			size_t n = 0;
			cat(cr, &n, "Content-Range: bytes ");
			cat_uint(cr, &n, first);
			cat(cr, &n, "-");
			cat_uint(cr, &n, IMAGE_SIZE - 1);
			cat(cr, &n, "/");
			cat_uint(cr, &n, IMAGE_SIZE);
			cat(cr, &n, "\r\n");
			respond(206, "Partial Content", cr, sim.image + first, IMAGE_SIZE - first);
		} else {
			respond(200, "OK", NULL, sim.image, IMAGE_SIZE);
		}
		if (sim.drop_after >= 0) {
			/* Cut the stream after drop_after body bytes: the head stays whole. */
			size_t keep = sim.resp_len - (IMAGE_SIZE - first) + (size_t)sim.drop_after;
			if (keep < sim.resp_len)
				sim.resp_len = keep;
			sim.drop_after = -1;
		}
		return;
	}
	respond(404, "Not Found", NULL, "", 0);
}

static enum fwa_err tr_connect(void *ctx)
{
	(void)ctx;
	if (sim.powered_off || sim.hung)
		return FWA_ERR_TRANSPORT;
	sim.now += sim.connect_ms;
	sim.open = true;
	sim.req_len = sim.resp_len = sim.resp_pos = 0;
	return FWA_OK;
}

static enum fwa_err tr_send(void *ctx, const void *buf, size_t len)
{
	(void)ctx;
	if (!sim.open || sim.powered_off || len > sizeof(sim.req) - sim.req_len)
		return FWA_ERR_TRANSPORT;
	memcpy(sim.req + sim.req_len, buf, len);
	sim.req_len += len;
	const char *end = find(sim.req, sim.req_len, "\r\n\r\n");
	if (end) {
		const char *cl = find(sim.req, (size_t)(end - sim.req), "Content-Length: ");
		size_t want =
		    (size_t)(end - sim.req) + 4 + (cl ? (size_t)parse_uint(cl + 16, NULL) : 0);
		if (sim.req_len >= want && sim.resp_len == 0)
			serve();
	}
	return FWA_OK;
}

static enum fwa_err tr_recv(void *ctx, void *buf, size_t cap, uint32_t timeout_ms, size_t *got)
{
	(void)ctx;
	(void)timeout_ms;
	*got = 0;
	if (!sim.open || sim.powered_off)
		return FWA_ERR_TRANSPORT;
	/* Small, uneven pieces: the client must not rely on reads matching writes. */
	size_t n = sim.resp_len - sim.resp_pos;
	if (n > cap)
		n = cap;
	if (n > 1000)
		n = 1000;
	memcpy(buf, sim.resp + sim.resp_pos, n);
	sim.resp_pos += n;
	*got = n;
	return FWA_OK;
}

static void tr_close(void *ctx)
{
	(void)ctx;
	sim.open = false;
}

/* What the agent last told the transport to trust (the root's server CA pins). */
static void tr_server_cas(void *ctx, const uint8_t (*pins)[32], unsigned n)
{
	(void)ctx;
	sim.npins = n;
	sim.told_cas++;
	if (n)
		memcpy(sim.pin0, pins[0], 32);
}

static const struct fwa_port *port(const struct ptest_kit *kit)
{
	static struct fwa_port p;
	p = (struct fwa_port){
	    .ctx = &sim,
	    .crypto = kit->crypto,
	    .flash_geometry = geometry,
	    .slot_erase = slot_erase,
	    .slot_program = slot_program,
	    .slot_read = slot_read,
	    .state_read = state_read,
	    .state_erase = state_erase,
	    .state_program = state_program,
	    .boot_info = boot_info,
	    .boot_trial = boot_trial,
	    .buy = buy,
	    .reboot = reboot,
	    .trial_rearm = trial_rearm,
	    .now_ms = now_ms,
	    .random = random_bytes,
	    .tr_connect = tr_connect,
	    .tr_send = tr_send,
	    .tr_recv = tr_recv,
	    .tr_close = tr_close,
	    .tr_server_cas = tr_server_cas,
	};
	return &p;
}

/* ---- test scaffolding ---- */

static enum fwa_err health(void *ctx)
{
	(void)ctx;
	if (sim.trial && sim.hang_in_health)
		sim.hung = true; /* and "returns" only to show that nothing it does counts */
	return sim.healthy ? FWA_OK : FWA_ERR_HEALTH;
}

static uint32_t trial_deadline_s; /* the agent's trial deadline in boot() (0: default) */
static uint32_t health_window_s;  /* the agent's health window in boot() (0: default) */

static const struct fwa_health_check checks[] = {{"sim-health", health, NULL}};

/* Fresh device: slot A holds version 1.0.0, erased state, server with nothing to offer. */
static bool setup(const struct ptest_kit *kit)
{
	static const unsigned by01[] = {0, 1};
	struct pt_root r = pt_root_default(1);
	uint8_t sha[32];
	char hex[65];

	memset(&sim, 0, sizeof(sim));
	memset(sim.slot, 0xff, sizeof(sim.slot));
	memset(sim.state, 0xff, sizeof(sim.state));
	sim.cut_at = -1;
	sim.drop_after = -1;
	sim.healthy = true;
	sim.reset = FWA_RESET_POWER_ON;
	memcpy(sim.dep_id, "dep-1", 6);
	for (unsigned i = 0; i < IMAGE_SIZE; i++)
		sim.image[i] = (uint8_t)(i * 7u + (i >> 8));
	fwa_sha256(kit->crypto, sim.image, IMAGE_SIZE, sha);
	fwa_hex(sha, 32, hex);
	memcpy(sim.image_path, "/device/v1/images/", 18);
	memcpy(sim.image_path + 18, hex, 65);
	root_len = pt_root_envelope(kit, &r, by01, 2, root_env, sizeof(root_env));
	return root_len > 0;
}

/* Offer a manifest for the simulated image, signed by release keys 3 and 4. */
static bool offer(const struct ptest_kit *kit, const char *version, uint32_t secver,
                  const unsigned *by, unsigned nby)
{
	static const unsigned by34[] = {3, 4};
	struct pt_manifest m = pt_manifest_default(kit);
	m.version = version;
	m.security_version = secver;
	m.size = IMAGE_SIZE;
	fwa_sha256(kit->crypto, sim.image, IMAGE_SIZE, m.sha256);
	if (!by) {
		by = by34;
		nby = 2;
	}
	long n = pt_manifest_envelope(kit, &m, by, nby, manifest_env, sizeof(manifest_env));
	sim.manifest_env = n > 0 ? manifest_env : NULL;
	return n > 0;
}

/* Power on (again): apply what the "bootrom" would do, then start the agent. */
static enum fwa_err boot(const struct ptest_kit *kit, const char *running_version)
{
	static struct fwa_agent_config cfg;
	bool soft = sim.pending_reboot;

	if (sim.pending_trial) {
		sim.active = 1 - sim.active;
		sim.trial = true;
		sim.watchdog_on = true; /* the bootrom arms it for the trial */
		sim.watchdog_at = sim.now + TRIAL_WATCHDOG_MS;
		sim.trial_boot_at = sim.now;
		sim.rearms = 0;
	} else if (sim.trial) {
		/* Not bought before this reboot: the bootrom runs the previous slot again. */
		sim.active = 1 - sim.active;
		sim.trial = false;
	}
	sim.reset = sim.pending_watchdog ? FWA_RESET_WATCHDOG
	            : soft               ? FWA_RESET_SOFTWARE
	                                 : FWA_RESET_POWER_ON;
	if (!sim.trial)
		sim.watchdog_on = false;
	sim.pending_trial = sim.pending_reboot = sim.pending_watchdog = sim.hung = false;
	sim.powered_off = false;
	sim.open = false;
	cfg = (struct fwa_agent_config){
	    .hw_variant = HW,
	    .version = running_version,
	    .host = "ota.test:8443",
	    .image_format = "bin",
	    .root_json = root_env,
	    .root_len = (size_t)root_len,
	    .checks = checks,
	    .nchecks = 1,
	    .poll_s = 60,
	    .retry_min_ms = 100,
	    .retry_max_ms = 1000,
	    .trial_deadline_s = trial_deadline_s,
	    .health_window_s = health_window_s,
	};
	return fwa_agent_init(&agent, port(kit), &cfg, scratch, sizeof(scratch));
}

enum run_end { RUN_IDLE, RUN_REBOOT, RUN_POWER_CUT, RUN_STUCK, RUN_WATCHDOG };

/*
 * Step until the agent is idle with nothing due, asks for a reboot, loses power, or the trial
 * watchdog fires.
 */
static enum run_end run(unsigned max_steps)
{
	for (unsigned i = 0; i < max_steps; i++) {
		struct fwa_step st;
		if (sim.trial && sim.watchdog_on && sim.now >= sim.watchdog_at) {
			sim.pending_watchdog = true;
			return RUN_WATCHDOG;
		}
		enum fwa_err err = fwa_agent_step(&agent, &st);
		(void)err; /* failures are the agent's to back off; the outcome is checked */
		if (sim.powered_off)
			return RUN_POWER_CUT;
		if (st.rebooting || sim.pending_reboot)
			return RUN_REBOOT;
		if (sim.hung) {
			sim.now += 1000; /* a hung image does nothing until the watchdog */
			continue;
		}
		if (fwa_agent_idle(&agent) && st.wait_ms >= 30000)
			return RUN_IDLE;
		sim.now += st.wait_ms ? st.wait_ms : 1;
	}
	return RUN_STUCK;
}

static bool statuses_are(const char *const *want, unsigned n)
{
	if (sim.nstatus != n)
		return false;
	for (unsigned i = 0; i < n; i++)
		if (strcmp(sim.status[i], want[i]) != 0)
			return false;
	return true;
}

static void show_statuses(void)
{
	ptest_out("    reported:");
	for (unsigned i = 0; i < sim.nstatus; i++) {
		ptest_out(" ");
		ptest_out(sim.status[i]);
	}
	ptest_out("\n");
}

/* ---- cases ---- */

static void nothing_to_do(const struct ptest_kit *kit)
{
	struct fwa_step st;
	PT_REQUIRE(setup(kit));
	PT_REQUIRE_OK(boot(kit, "1.0.0"));
	PT_EQ(run(20), RUN_IDLE);
	PT_EQ(sim.checkins, 1);
	PT_EQ(sim.slot_writes, 0);
	PT_EQ(sim.nstatus, 0);
	/* Due again after poll_after (60 s), not before. */
	sim.now += 30000;
	PT_OK(fwa_agent_step(&agent, &st));
	PT_EQ(sim.checkins, 1);
	PT_CHECK(st.wait_ms > 0 && st.wait_ms <= 30000);
	sim.now += st.wait_ms;
	PT_OK(fwa_agent_step(&agent, &st));
	PT_EQ(sim.checkins, 2);
}

static void full_update(const struct ptest_kit *kit)
{
	static const char *const want[] = {"downloading", "downloaded", "installing",
	                                   "rebooting",   "trial",      "confirmed"};
	struct fwa_state st;

	PT_REQUIRE(setup(kit));
	PT_REQUIRE(offer(kit, "1.1.0", 3, NULL, 0));
	PT_REQUIRE_OK(boot(kit, "1.0.0"));
	PT_REQUIRE(run(50) == RUN_REBOOT);
	PT_CHECK(sim.pending_trial);
	PT_MEM(sim.slot[1], sim.image, IMAGE_SIZE);
	/* The flash-update reboot: slot B runs as a trial, then buys itself. */
	sim.manifest_env = NULL;
	PT_REQUIRE_OK(boot(kit, "1.1.0"));
	PT_EQ(sim.active, 1);
	PT_EQ(run(50), RUN_IDLE);
	PT_CHECK(!sim.trial);
	if (!PT_CHECK(statuses_are(want, 6)))
		show_statuses();
	/* Reports resent after the reboot are duplicates the server stores once. */
	PT_OK(fwa_state_load(port(kit), &st, NULL));
	PT_EQ(st.floor, 3);
	PT_EQ(st.phase, FWA_PHASE_IDLE);
	/* And it stays bought and idle across a power cycle. */
	PT_REQUIRE_OK(boot(kit, "1.1.0"));
	PT_EQ(sim.active, 1);
	PT_EQ(run(20), RUN_IDLE);
	PT_EQ(sim.nstatus, 6);
}

/*
 * Reports answered 403 for who the device is (identity-conflict: a renewed certificate pinned,
 * the old one presented) stay in the outbox and arrive later, each once, in order; a report on
 * another device's deployment (not-your-deployment) is dropped and never sent again.
 */
static void report_refusals_by_type(const struct ptest_kit *kit)
{
	static const char *const want[] = {"downloading", "downloaded", "installing",
	                                   "rebooting",   "trial",      "confirmed"};
	static const char *const types[] = {"identity-conflict", "device-pending",
	                                    "not-your-deployment"};

	for (unsigned t = 0; t < 3; t++) {
		bool dropped = t == 2;

		PT_REQUIRE(setup(kit));
		PT_REQUIRE(offer(kit, "1.1.0", 3, NULL, 0));
		sim.refuse_type = types[t];
		sim.refuse_403 = dropped ? 1 : 4;
		PT_REQUIRE_OK(boot(kit, "1.0.0"));
		PT_REQUIRE(run(100) == RUN_REBOOT);
		sim.manifest_env = NULL;
		PT_REQUIRE_OK(boot(kit, "1.1.0"));
		PT_EQ(run(100), RUN_IDLE);
		PT_CHECK(!sim.trial);
		PT_EQ(sim.buys, 1);
		PT_EQ(sim.refuse_403, 0);
		PT_EQ(sim.refused_403, dropped ? 1 : 4);
		if (!PT_CHECK(dropped ? statuses_are(want + 1, 5) : statuses_are(want, 6)))
			show_statuses();
	}
}

static void failed_health_rolls_back(const struct ptest_kit *kit)
{
	static const char *const want[] = {"downloading", "downloaded", "installing",
	                                   "rebooting",   "trial",      "rolled_back"};
	struct fwa_state st;

	PT_REQUIRE(setup(kit));
	PT_REQUIRE(offer(kit, "1.1.0", 3, NULL, 0));
	PT_REQUIRE_OK(boot(kit, "1.0.0"));
	PT_REQUIRE(run(50) == RUN_REBOOT);
	sim.manifest_env = NULL;
	sim.healthy = false;
	PT_REQUIRE_OK(boot(kit, "1.1.0"));
	PT_EQ(run(50), RUN_REBOOT); /* health fails: reboot without buying */
	PT_CHECK(sim.trial);
	PT_REQUIRE_OK(boot(kit, "1.0.0")); /* the bootrom brings back slot A */
	PT_EQ(sim.active, 0);
	PT_EQ(run(50), RUN_IDLE);
	if (!PT_CHECK(statuses_are(want, 6)))
		show_statuses();
	PT_OK(fwa_state_load(port(kit), &st, NULL));
	PT_EQ(st.floor, 0); /* never raised without a buy */
}

static void refusals_write_nothing(const struct ptest_kit *kit)
{
	static const unsigned by01[] = {0, 1}, by3[] = {3};
	struct fwa_state st;

	/* Signed by root keys, not release keys. */
	PT_REQUIRE(setup(kit));
	PT_REQUIRE(offer(kit, "1.1.0", 3, by01, 2));
	PT_REQUIRE_OK(boot(kit, "1.0.0"));
	run(20);
	PT_EQ(sim.slot_writes, 0);
	PT_EQ(sim.nstatus, 1);
	PT_STR(sim.status[0], "failed");

	/* Below the threshold. */
	PT_REQUIRE(setup(kit));
	PT_REQUIRE(offer(kit, "1.1.0", 3, by3, 1));
	PT_REQUIRE_OK(boot(kit, "1.0.0"));
	run(20);
	PT_EQ(sim.slot_writes, 0);
	PT_STR(sim.status[0], "failed");

	/* Below the floor: first raise it to 3 with an update, then offer security_version 2. */
	PT_REQUIRE(setup(kit));
	PT_REQUIRE(offer(kit, "1.1.0", 3, NULL, 0));
	PT_REQUIRE_OK(boot(kit, "1.0.0"));
	PT_REQUIRE(run(50) == RUN_REBOOT);
	sim.manifest_env = NULL;
	PT_REQUIRE_OK(boot(kit, "1.1.0"));
	PT_REQUIRE(run(50) == RUN_IDLE);
	PT_REQUIRE_OK(fwa_state_load(port(kit), &st, NULL));
	PT_REQUIRE(st.floor == 3);
	unsigned writes = sim.slot_writes, reports = sim.nstatus;
	memcpy(sim.dep_id, "dep-2", 6);
	PT_REQUIRE(offer(kit, "1.0.5", 2, NULL, 0));
	sim.now += 120000;
	run(20);
	PT_EQ(sim.slot_writes, writes);
	PT_EQ(sim.nstatus, reports + 1);
	PT_STR(sim.status[sim.nstatus - 1], "failed");
	PT_OK(fwa_state_load(port(kit), &st, NULL));
	PT_EQ(st.phase, FWA_PHASE_IDLE);
	PT_EQ(st.floor, 3);
}

static void download_resumes_with_range(const struct ptest_kit *kit)
{
	static const char *const want[] = {"downloading", "downloaded", "installing", "rebooting"};
	PT_REQUIRE(setup(kit));
	PT_REQUIRE(offer(kit, "1.1.0", 3, NULL, 0));
	sim.drop_after = 9000; /* the first download breaks after two sectors and a bit */
	PT_REQUIRE_OK(boot(kit, "1.0.0"));
	PT_EQ(run(100), RUN_REBOOT);
	PT_CHECK(sim.ranges >= 1);
	PT_MEM(sim.slot[1], sim.image, IMAGE_SIZE);
	if (!PT_CHECK(statuses_are(want, 4)))
		show_statuses();
}

static void bad_image_is_never_booted(const struct ptest_kit *kit)
{
	PT_REQUIRE(setup(kit));
	PT_REQUIRE(offer(kit, "1.1.0", 3, NULL, 0));
	sim.image[IMAGE_SIZE / 2] ^= 0x40; /* the server serves other bytes than were signed */
	PT_REQUIRE_OK(boot(kit, "1.0.0"));
	PT_EQ(run(50), RUN_IDLE);
	PT_CHECK(!sim.pending_trial);
	PT_EQ(sim.nstatus, 2);
	PT_STR(sim.status[sim.nstatus - 1], "failed");
}

/*
 * Cut the power before flash operation i, for every i an update performs: after the cut the
 * device boots again (the bootrom's rules apply) and the agent must converge to the new
 * image confirmed, or to the old one with the update reported, never anything else.
 */
static void power_cut_sweep(const struct ptest_kit *kit)
{
	long total;
	unsigned converged = 0, cases = 0;

	/* A clean run counts the flash operations of a whole update. */
	PT_REQUIRE(setup(kit));
	PT_REQUIRE(offer(kit, "1.1.0", 3, NULL, 0));
	PT_REQUIRE_OK(boot(kit, "1.0.0"));
	PT_REQUIRE(run(50) == RUN_REBOOT);
	PT_REQUIRE_OK(boot(kit, "1.1.0"));
	PT_REQUIRE(run(50) == RUN_IDLE);
	total = sim.flash_ops;
	PT_REQUIRE(total > 10);

	for (long cut = 0; cut < total; cut++) {
		bool ok = false;
		PT_REQUIRE(setup(kit));
		PT_REQUIRE(offer(kit, "1.1.0", 3, NULL, 0));
		sim.cut_at = cut;
		/* Boot, run, and after each power cut or reboot boot again, a bounded number of
		 * times. */
		for (unsigned boots = 0; boots < 8; boots++) {
			/* The slot the bootrom will run decides which version boots. */
			unsigned next =
			    sim.pending_trial || sim.trial ? 1 - sim.active : sim.active;
			const char *ver = next == 1 ? "1.1.0" : "1.0.0";
			if (sim.powered_off)
				sim.cut_at = -1; /* one cut per case */
			if (boot(kit, ver) != FWA_OK) {
				if (sim.powered_off)
					continue; /* the cut hit the start-up: boot again */
				break;
			}
			enum run_end e = run(80);
			if (e == RUN_IDLE) {
				ok = true;
				break;
			}
			if (e == RUN_STUCK)
				break;
		}
		struct fwa_state st;
		cases++;
		if (ok && fwa_state_load(port(kit), &st, NULL) == FWA_OK &&
		    st.phase == FWA_PHASE_IDLE && !sim.trial &&
		    ((sim.active == 1 && st.floor == 3 &&
		      memcmp(sim.slot[1], sim.image, IMAGE_SIZE) == 0) ||
		     (sim.active == 0 && st.floor == 0)))
			converged++;
		else {
			char d[24];
			size_t n = 0;
			ptest_out("    no convergence with a power cut before flash operation ");
			cat_uint(d, &n, (uint64_t)cut);
			ptest_out(d);
			ptest_out(ok ? " (idle" : " (not idle");
			ptest_out(sim.active ? ", slot B" : ", slot A");
			ptest_out(sim.trial ? ", trial)" : ")");
			show_statuses();
		}
	}
	PT_EQ(converged, cases);
}

/* Download and flash-update reboot of version 1.1.0; the trial boot is then the caller's. */
static bool to_trial(const struct ptest_kit *kit)
{
	if (!setup(kit) || !offer(kit, "1.1.0", 3, NULL, 0) || boot(kit, "1.0.0") != FWA_OK ||
	    run(50) != RUN_REBOOT)
		return false;
	sim.manifest_env = NULL;
	return true;
}

static void failed_buy_reboots_to_previous(const struct ptest_kit *kit)
{
	static const char *const want[] = {"downloading", "downloaded", "installing",
	                                   "rebooting",   "trial",      "rolled_back"};
	struct fwa_state st;

	trial_deadline_s = 0;
	PT_REQUIRE(to_trial(kit));
	sim.buy_fails = true;
	PT_REQUIRE_OK(boot(kit, "1.1.0"));
	/* The watchdog is off after the failed buy: only the agent's reboot ends the trial. */
	PT_EQ(run(50), RUN_REBOOT);
	PT_CHECK(!sim.watchdog_on);
	PT_CHECK(sim.trial);
	PT_REQUIRE_OK(boot(kit, "1.0.0"));
	PT_EQ(sim.active, 0);
	PT_EQ(run(50), RUN_IDLE);
	if (!PT_CHECK(statuses_are(want, 6)))
		show_statuses();
	PT_OK(fwa_state_load(port(kit), &st, NULL));
	PT_EQ(st.floor, 0);
}

static void slow_trial_within_deadline(const struct ptest_kit *kit)
{
	trial_deadline_s = 0; /* the default, 90 s */
	PT_REQUIRE(to_trial(kit));
	/* Four reports of 6 s connects each, then the buy: longer than the bootrom's 16.7 s. */
	sim.connect_ms = 6000;
	PT_REQUIRE_OK(boot(kit, "1.1.0"));
	PT_EQ(run(100), RUN_IDLE);
	PT_CHECK(!sim.trial);
	PT_EQ(sim.active, 1);
	PT_CHECK(sim.now - sim.trial_boot_at > TRIAL_WATCHDOG_MS);
	PT_CHECK(sim.rearms >= 2 && sim.rearms <= FWA_TRIAL_DEADLINE_DEFAULT_S);
}

static void hung_trial_reverts(const struct ptest_kit *kit)
{
	trial_deadline_s = 0;
	PT_REQUIRE(to_trial(kit));
	sim.hang_in_health = true;
	PT_REQUIRE_OK(boot(kit, "1.1.0"));
	PT_EQ(run(200), RUN_WATCHDOG);
	/* No progress after the hang: one watchdog period, nowhere near the 90 s deadline. */
	PT_CHECK(sim.now - sim.trial_boot_at <= TRIAL_WATCHDOG_MS + 1000);
	sim.hang_in_health = false;
	PT_REQUIRE_OK(boot(kit, "1.0.0"));
	PT_EQ(sim.active, 0);
	PT_EQ(run(50), RUN_IDLE);
	PT_STR(sim.status[sim.nstatus - 1], "rolled_back");
}

static void endless_trial_stops_at_deadline(const struct ptest_kit *kit)
{
	/* Every report is answered, with 503: progress that never finishes. */
	trial_deadline_s = 30;
	PT_REQUIRE(to_trial(kit));
	sim.refuse_events = true;
	sim.connect_ms = 2000;
	PT_REQUIRE_OK(boot(kit, "1.1.0"));
	PT_EQ(run(500), RUN_WATCHDOG);
	PT_CHECK(sim.now - sim.trial_boot_at > TRIAL_WATCHDOG_MS);
	PT_CHECK(sim.now - sim.trial_boot_at <= 30000u + 1000u);
	PT_CHECK(sim.rearms <= 30);
	sim.refuse_events = false;
	trial_deadline_s = 0;
	PT_REQUIRE_OK(boot(kit, "1.0.0"));
	PT_EQ(sim.active, 0);
	PT_EQ(run(50), RUN_IDLE);
	PT_STR(sim.status[sim.nstatus - 1], "rolled_back");
}

/* The trial is bought only once the server has acknowledged its "trial" report: not while
 * reports are refused, and the buy finds the report stored. */
static void buy_only_after_trial_acknowledged(const struct ptest_kit *kit)
{
	enum run_end r;

	trial_deadline_s = 0;
	PT_REQUIRE(to_trial(kit));
	sim.refuse_events = true;
	PT_REQUIRE_OK(boot(kit, "1.1.0"));
	PT_CHECK(sim.trial);
	r = run(12);
	PT_CHECK(r == RUN_STUCK || r == RUN_IDLE);
	PT_EQ(sim.buys, 0);
	PT_CHECK(sim.trial);
	PT_CHECK(sim.watchdog_on);
	sim.refuse_events = false;
	PT_EQ(run(50), RUN_IDLE);
	PT_EQ(sim.buys, 1);
	PT_CHECK(sim.trial_acked_at_buy);
	PT_CHECK(!sim.trial);
	PT_STR(sim.status[sim.nstatus - 1], "confirmed");
}

static void image_without_trial_flag_is_not_booted(const struct ptest_kit *kit)
{
	static const char *const want[] = {"downloading", "downloaded", "installing", "rebooting",
	                                   "failed"};

	trial_deadline_s = 0;
	PT_REQUIRE(setup(kit));
	PT_REQUIRE(offer(kit, "1.1.0", 3, NULL, 0));
	sim.not_tbyb = true;
	PT_REQUIRE_OK(boot(kit, "1.0.0"));
	PT_EQ(run(50), RUN_IDLE);
	PT_CHECK(!sim.pending_trial && !sim.pending_reboot);
	PT_EQ(sim.active, 0);
	if (!PT_CHECK(statuses_are(want, 5)))
		show_statuses();
}

/* The last check-in carried text (a piece of its health object). */
static bool told(const char *text)
{
	return strstr(sim.last_checkin, text) != NULL;
}

/*
 * Health after the confirm: after the buy the agent counts reboots, watchdog resets and failed
 * health checks, keeps them across boots, reports them in its check-ins until its window ends,
 * and a state of an older agent (the reserved bytes zero) reads as no window.
 */
static void health_after_confirm_counted(const struct ptest_kit *kit)
{
	struct fwa_state st;
	struct fwa_step step;

	PT_REQUIRE(setup(kit));
	health_window_s = 600;
	PT_REQUIRE(offer(kit, "1.1.0", 3, NULL, 0));
	PT_REQUIRE_OK(boot(kit, "1.0.0"));
	PT_CHECK(!told("\"health\"")); /* nothing bought yet */
	PT_REQUIRE(run(50) == RUN_REBOOT);
	sim.manifest_env = NULL;
	PT_REQUIRE_OK(boot(kit, "1.1.0"));
	PT_EQ(run(50), RUN_IDLE);
	PT_REQUIRE(!sim.trial);
	/* The check-in after the buy opens the report, nothing counted yet. */
	PT_CHECK(told("\"health\":{\"deployment_id\":\"dep-1\",\"reboots\":0,"
	              "\"watchdog_resets\":0,\"failed_health_checks\":0,\"uptime_seconds\":"));
	/* The image turns unhealthy: the next check-in counts the failed check. */
	sim.healthy = false;
	sim.now += 60000;
	PT_OK(fwa_agent_step(&agent, &step));
	PT_CHECK(told("\"failed_health_checks\":1,"));
	/* It hangs; the watchdog resets it: one reboot, one watchdog reset, kept across it. */
	sim.pending_watchdog = true;
	PT_REQUIRE_OK(boot(kit, "1.1.0"));
	PT_EQ(run(20), RUN_IDLE);
	PT_CHECK(told("\"reboots\":1,\"watchdog_resets\":1,\"failed_health_checks\":2,"));
	PT_OK(fwa_state_load(port(kit), &st, NULL));
	PT_EQ(st.health_open, 1);
	PT_EQ(st.health_boots, 1);
	PT_EQ(st.health_wdt, 1);
	PT_EQ(st.health_failed, 2);
	/* A power cycle is a reboot but no watchdog reset. */
	sim.healthy = true;
	PT_REQUIRE_OK(boot(kit, "1.1.0"));
	PT_EQ(run(20), RUN_IDLE);
	PT_CHECK(told("\"reboots\":2,\"watchdog_resets\":1,\"failed_health_checks\":2,"));
	/* Once this boot ran the window, the reports stop and the window stays closed. */
	sim.now += 600000;
	PT_OK(fwa_agent_step(&agent, &step));
	PT_CHECK(!told("\"health\""));
	PT_OK(fwa_state_load(port(kit), &st, NULL));
	PT_EQ(st.health_open, 0);
	PT_REQUIRE_OK(boot(kit, "1.1.0"));
	PT_EQ(run(20), RUN_IDLE);
	PT_CHECK(!told("\"health\""));
	health_window_s = 0;
}

/* The root (time key 6, expiring 2030) and an update; the time key says 2031. */
static bool signed_time_setup(const struct ptest_kit *kit, int mode)
{
	static const unsigned by01[] = {0, 1};
	struct pt_root r = pt_root_default(1);

	if (!setup(kit))
		return false;
	r.expires = "2030-01-01T00:00:00Z";
	r.ntime = 1;
	r.time_keys[0] = 6;
	root_len = pt_root_envelope(kit, &r, by01, 2, root_env, sizeof(root_env));
	sim_kit = kit;
	sim.token_time = "2031-01-01T00:00:00Z";
	sim.token_mode = mode;
	return root_len > 0 && offer(kit, "1.1.0", 3, NULL, 0);
}

static void signed_time_decides_expiry(const struct ptest_kit *kit)
{
	/* A token of the time key for this check-in's nonce: the root has expired. */
	PT_REQUIRE(signed_time_setup(kit, TOKEN_OWN));
	PT_REQUIRE_OK(boot(kit, "1.0.0"));
	run(20);
	PT_CHECK(sim.tokens > 0);
	PT_EQ(sim.slot_writes, 0);
	PT_REQUIRE(sim.nstatus >= 1);
	PT_STR(sim.status[0], "failed");

	/* A token for another device's nonce, or a replay of the previous one: no time known. */
	static const int modes[] = {TOKEN_FOREIGN, TOKEN_REPLAY};
	for (unsigned i = 0; i < 2; i++) {
		PT_REQUIRE(signed_time_setup(kit, modes[i]));
		PT_REQUIRE_OK(boot(kit, "1.0.0"));
		/* The first check-in gets no token when replaying (nothing to replay yet). */
		if (modes[i] == TOKEN_REPLAY) {
			char *m = sim.manifest_env;
			sim.manifest_env = NULL;
			PT_REQUIRE(run(20) == RUN_IDLE);
			sim.manifest_env = m;
			sim.now += 120000;
		}
		run(50);
		PT_CHECK(sim.tokens > 0);
		PT_CHECK(sim.slot_writes > 0);
		PT_REQUIRE(sim.nstatus >= 1);
		PT_STR(sim.status[0], "downloading");
	}
}

/*
 * Server CAs come from the root: none pinned by root 1; root 2 pins A and B, root 3 only B,
 * both offered at once (a device that missed a rotation). The transport is told each time.
 */
static void server_cas_follow_the_root(const struct ptest_kit *kit)
{
	static const unsigned by01[] = {0, 1};
	static char roots[2 * FWA_ENVELOPE_MAX + 8];
	static const char two[] =
	    ",\"server_cas\":[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
	    "\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"]";
	static const char one[] =
	    ",\"server_cas\":["
	    "\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"]";
	struct pt_root r = pt_root_default(2);
	struct fwa_state st;
	size_t n = 0;
	long len;

	PT_REQUIRE(setup(kit));
	PT_REQUIRE_OK(boot(kit, "1.0.0"));
	PT_EQ(sim.told_cas, 1);
	PT_EQ(sim.npins, 0);
	roots[n++] = '[';
	r.extra = two;
	len = pt_root_envelope(kit, &r, by01, 2, roots + n, sizeof(roots) - n);
	PT_REQUIRE(len > 0);
	n += (size_t)len;
	roots[n++] = ',';
	r = pt_root_default(3);
	r.extra = one;
	len = pt_root_envelope(kit, &r, by01, 2, roots + n, sizeof(roots) - n);
	PT_REQUIRE(len > 0);
	n += (size_t)len;
	roots[n++] = ']';
	roots[n] = '\0';
	sim.roots_json = roots;
	PT_REQUIRE(run(20) == RUN_IDLE);
	PT_REQUIRE_OK(fwa_state_load(port(kit), &st, NULL));
	PT_EQ(st.root.version, 3);
	PT_EQ(sim.npins, 1);
	PT_EQ(sim.pin0[0], 0xbb);
	/* After a power cut the persisted root says the same. */
	sim.roots_json = NULL;
	sim.npins = 0;
	PT_REQUIRE_OK(boot(kit, "1.0.0"));
	PT_EQ(sim.npins, 1);
	PT_EQ(sim.pin0[31], 0xbb);
}

/* ---- state records of older agents (formats 1 and 2, core/state_migrate.c) ---- */

/*
 * The records are built byte by byte at the offsets the old agents' compilers gave each field
 * (the same for x86-64 and ARM EABI): format 1 is 3,712 bytes with its CRC at 3,704, format 2
 * 3,968 bytes with its CRC at 3,960. Offsets of the fields both share come first.
 */
enum {
	O_MAGIC = 0,
	O_FORMAT = 4,
	O_SEQ = 8,
	O_FLOOR = 12,
	O_PHASE = 16,
	O_TRIAL_SLOT = 17,
	O_OUTCOME = 18,
	O_NEVENTS = 19,
	O_NEXT_SEQ = 20,
	O_TARGET_SECVER = 24,
	O_IMAGE_SIZE = 28,
	O_DL_OFFSET = 32,
	O_HAS_ROOT = 36,
	O_OUTCOME_TOLD = 37,
	O_TRIAL_TRIES = 38,
	O_PAD = 39,
	O_IMAGE_SHA = 40,
	O_MANIFEST_DIGEST = 72,
	O_DEP_ID = 104,
	O_BASE_VERSION = 169,
	O_TARGET_VERSION = 234,
	O_IMAGE_URL = 299,
	O_OUTCOME_REASON = 460,
	/* format 2 only */
	O2_DELTA = 524,
	O2_PAD2 = 525,
	O2_PARAMS = 528,
	O2_CK = 572,
	O2_DELTA_URL = 620,
	EVENT_SIZE = 76,
	KEY_SIZE = 156,
};

struct old_layout {
	uint32_t format, size, crc_at, events, root;
};

static const struct old_layout old_v1 = {1, 3712, 3704, 524, 1136};
static const struct old_layout old_v2 = {2, 3968, 3960, 784, 1392};

static uint8_t old_rec[4096];

/* CRC-32 (IEEE, reflected), as the old agents computed it over every byte before their CRC. */
static uint32_t crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	return ~c;
}

static void put32(uint32_t at, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		old_rec[at + i] = (uint8_t)(v >> (8 * i)); /* both targets are little-endian */
}

static void put_str(uint32_t at, const char *s)
{
	memcpy(old_rec + at, s, strlen(s) + 1);
}

static struct fwa_root old_root; /* root version 2, what the old records persist */

/*
 * A record an old agent of `lay` would have written in the middle of an update of dep-7 (a
 * delta update for format 2), with a newer root, two reports waiting and an earlier outcome.
 */
static bool old_record(const struct ptest_kit *kit, const struct old_layout *lay, uint32_t seq)
{
	static const unsigned by01[] = {0, 1};
	static char env[FWA_ENVELOPE_MAX];
	struct pt_root pr = pt_root_default(2);
	const char *why = NULL;
	uint32_t r = lay->root;
	long n;

	n = pt_root_envelope(kit, &pr, by01, 2, env, sizeof(env));
	if (n <= 0 || fwa_root_load(kit->crypto, env, (size_t)n, &old_root,
	                            &((struct fwa_agent_scratch *)scratch)->verify, &why) != FWA_OK)
		return false;
	memset(old_rec, 0, sizeof(old_rec));
	put32(O_MAGIC, FWA_STATE_MAGIC);
	put32(O_FORMAT, lay->format);
	put32(O_SEQ, seq);
	put32(O_FLOOR, 5);
	old_rec[O_PHASE] = FWA_PHASE_DOWNLOADING;
	old_rec[O_TRIAL_SLOT] = 1;
	old_rec[O_OUTCOME] = FWA_ST_CONFIRMED;
	old_rec[O_NEVENTS] = 2;
	put32(O_NEXT_SEQ, 3);
	put32(O_TARGET_SECVER, 6);
	put32(O_IMAGE_SIZE, IMAGE_SIZE);
	put32(O_DL_OFFSET, 8192);
	old_rec[O_HAS_ROOT] = 1;
	old_rec[O_OUTCOME_TOLD] = 0;
	old_rec[O_TRIAL_TRIES] = 1;
	for (unsigned i = 0; i < 32; i++) {
		old_rec[O_IMAGE_SHA + i] = (uint8_t)(0xa0 + i);
		old_rec[O_MANIFEST_DIGEST + i] = (uint8_t)(0x10 + i);
	}
	put_str(O_DEP_ID, "dep-7");
	put_str(O_BASE_VERSION, "1.0.0");
	put_str(O_TARGET_VERSION, "1.2.0");
	put_str(O_IMAGE_URL, "/device/v1/images/abc");
	put_str(O_OUTCOME_REASON, "update confirmed");
	if (lay->format == 2) {
		old_rec[O_PAD] = 2; /* health counters of an agent that counted them */
		old_rec[O2_DELTA] = 1;
		old_rec[O2_PAD2] = 1;
		old_rec[O2_PAD2 + 1] = 0;
		old_rec[O2_PAD2 + 2] = 1;
		put32(O2_PARAMS, 20000);     /* base_size */
		put32(O2_PARAMS + 4, 20480); /* target_size */
		put32(O2_PARAMS + 8, 3000);  /* delta_size */
		memset(old_rec + O2_PARAMS + 12, 0x5a, 32);
		put32(O2_CK, 1500);     /* in_off */
		put32(O2_CK + 4, 8192); /* out_off */
		put32(O2_CK + 8, 4100); /* base_pos */
		memset(old_rec + O2_CK + 12, 0xc3, 32);
		old_rec[O2_CK + 44] = 11; /* wbits */
		old_rec[O2_CK + 45] = 4;  /* lbits */
		put_str(O2_DELTA_URL, "/device/v1/deltas/xyz");
	}
	for (unsigned i = 0; i < 2; i++) {
		uint32_t e = lay->events + i * EVENT_SIZE;
		put32(e, i + 1);
		put32(e + 4, i * 4096);
		old_rec[e + 8] = FWA_ST_DOWNLOADING;
		old_rec[e + 9] = 0;
		put_str(e + 10, i ? "second" : "first");
	}
	put32(r, old_root.version);
	memcpy(old_rec + r + 8, &old_root.expires, 8);
	old_rec[r + 16] = old_root.nkeys;
	for (unsigned k = 0; k < 16; k++) {
		memcpy(old_rec + r + 17 + k * KEY_SIZE, old_root.keys[k].id, 65);
		memcpy(old_rec + r + 17 + k * KEY_SIZE + 65, old_root.keys[k].spki, 91);
	}
	memcpy(old_rec + r + 2513, &old_root.root, 10);
	memcpy(old_rec + r + 2523, &old_root.release, 10);
	memcpy(old_rec + r + 2533, old_root.digest, 32);
	put32(lay->crc_at, crc32(old_rec, lay->crc_at));
	return true;
}

/* Program old_rec into a state area as the old agent did: erased, padded with 0xff. */
static void old_program(unsigned area, const struct old_layout *lay)
{
	memset(sim.state[area], 0xff, STATE_SIZE);
	memcpy(sim.state[area], old_rec, lay->size);
}

/* The state of old_record(), field by field, in the current format. */
static void check_migrated(const struct fwa_state *st, const struct old_layout *lay, uint32_t seq)
{
	static const struct fwa_role none;
	uint8_t zero[32] = {0};

	PT_EQ(st->magic, FWA_STATE_MAGIC);
	PT_EQ(st->format, FWA_STATE_FORMAT);
	PT_EQ(st->seq, seq);
	PT_EQ(st->floor, 5);
	PT_EQ(st->phase, FWA_PHASE_DOWNLOADING);
	PT_EQ(st->trial_slot, 1);
	PT_EQ(st->outcome, FWA_ST_CONFIRMED);
	PT_EQ(st->nevents, 2);
	PT_EQ(st->next_seq, 3);
	PT_EQ(st->target_secver, 6);
	PT_EQ(st->image_size, IMAGE_SIZE);
	PT_EQ(st->dl_offset, 8192);
	PT_EQ(st->has_root, 1);
	PT_EQ(st->outcome_told, 0);
	PT_EQ(st->trial_tries, 1);
	PT_EQ(st->image_sha256[0], 0xa0);
	PT_EQ(st->image_sha256[31], 0xa0 + 31);
	PT_EQ(st->manifest_digest[31], 0x10 + 31);
	PT_STR(st->dep_id, "dep-7");
	PT_STR(st->base_version, "1.0.0");
	PT_STR(st->target_version, "1.2.0");
	PT_STR(st->image_url, "/device/v1/images/abc");
	PT_STR(st->outcome_reason, "update confirmed");
	for (unsigned i = 0; i < 2; i++) {
		PT_EQ(st->events[i].seq, i + 1);
		PT_EQ(st->events[i].progress, i * 4096);
		PT_EQ(st->events[i].status, FWA_ST_DOWNLOADING);
		PT_EQ(st->events[i].on_target, 0);
		PT_STR(st->events[i].reason, i ? "second" : "first");
	}
	PT_EQ(st->events[2].seq, 0);
	PT_EQ(st->root.version, 2);
	PT_EQ(st->root.expires, old_root.expires);
	PT_EQ(st->root.nkeys, old_root.nkeys);
	PT_MEM(st->root.keys, old_root.keys, sizeof(old_root.keys));
	PT_MEM(&st->root.root, &old_root.root, sizeof(old_root.root));
	PT_MEM(&st->root.release, &old_root.release, sizeof(old_root.release));
	PT_MEM(st->root.digest, old_root.digest, 32);
	/* An old root names no time key and pins no server CA. */
	PT_MEM(&st->root.time, &none, sizeof(none));
	PT_EQ(st->root.nserver_cas, 0);
	PT_MEM(st->root.server_ca, zero, 32);
	PT_MEM(st->root.server_ca[1], zero, 32);
	if (lay->format == 1) {
		PT_EQ(st->delta, 0);
		PT_EQ(st->delta_params.target_size, 0);
		PT_EQ(st->delta_ck.out_off, 0);
		PT_EQ(st->delta_url[0], 0);
		PT_EQ(st->health_boots, 0);
		PT_EQ(st->health_open, 0);
		return;
	}
	PT_EQ(st->health_boots, 2);
	PT_EQ(st->health_wdt, 1);
	PT_EQ(st->health_failed, 0);
	PT_EQ(st->health_open, 1);
	PT_EQ(st->delta, 1);
	PT_EQ(st->delta_params.base_size, 20000);
	PT_EQ(st->delta_params.target_size, 20480);
	PT_EQ(st->delta_params.delta_size, 3000);
	PT_EQ(st->delta_params.head_sha256[31], 0x5a);
	PT_EQ(st->delta_ck.in_off, 1500);
	PT_EQ(st->delta_ck.out_off, 8192);
	PT_EQ(st->delta_ck.base_pos, 4100);
	PT_EQ(st->delta_ck.next_sha256[0], 0xc3);
	PT_EQ(st->delta_ck.wbits, 11);
	PT_EQ(st->delta_ck.lbits, 4);
	PT_STR(st->delta_url, "/device/v1/deltas/xyz");
}

/* A raw copy holds a whole record of the current format. */
static bool area_is_current(unsigned area)
{
	uint32_t format, crc;

	memcpy(&format, sim.state[area] + 4, 4);
	memcpy(&crc, sim.state[area] + offsetof(struct fwa_state, crc), 4);
	return format == FWA_STATE_FORMAT &&
	       crc == crc32(sim.state[area], offsetof(struct fwa_state, crc));
}

/*
 * A record of format 1 or 2 is read as the current format with everything that maps across
 * kept, and the agent writes it back into the other area, leaving the old copy as it was.
 */
static void old_formats_migrate(const struct ptest_kit *kit)
{
	static const struct old_layout *const lays[] = {&old_v1, &old_v2};
	struct fwa_state st;
	unsigned area = 9;

	for (unsigned i = 0; i < 2; i++) {
		PT_REQUIRE(setup(kit));
		PT_REQUIRE(old_record(kit, lays[i], 41));
		old_program(0, lays[i]);
		PT_REQUIRE_OK(fwa_state_load(port(kit), &st, &area));
		PT_EQ(area, 0);
		check_migrated(&st, lays[i], 41);
		PT_CHECK(!area_is_current(1)); /* loading alone writes nothing */

		/* The agent writes it back as format 3 into area 1; area 0 keeps the old record. */
		PT_REQUIRE_OK(boot(kit, "1.0.0"));
		PT_CHECK(area_is_current(1));
		PT_MEM(sim.state[0], old_rec, lays[i]->size);
		PT_REQUIRE_OK(fwa_state_load(port(kit), &st, &area));
		PT_EQ(area, 1);
		check_migrated(&st, lays[i], 42);
	}

	/* Of two old copies the newer format wins whatever the seq, then the higher seq. */
	PT_REQUIRE(setup(kit));
	PT_REQUIRE(old_record(kit, &old_v1, 900));
	old_program(0, &old_v1);
	PT_REQUIRE(old_record(kit, &old_v2, 3));
	old_program(1, &old_v2);
	PT_REQUIRE_OK(fwa_state_load(port(kit), &st, &area));
	PT_EQ(area, 1);
	check_migrated(&st, &old_v2, 3);
	PT_REQUIRE(old_record(kit, &old_v2, 4));
	old_program(0, &old_v2);
	PT_REQUIRE_OK(fwa_state_load(port(kit), &st, &area));
	PT_EQ(area, 0);
	PT_EQ(st.seq, 4);
	/* A current copy wins over any old one. */
	PT_REQUIRE_OK(boot(kit, "1.0.0"));
	PT_CHECK(area_is_current(1));
	PT_REQUIRE(old_record(kit, &old_v2, 77));
	old_program(0, &old_v2);
	PT_REQUIRE_OK(fwa_state_load(port(kit), &st, &area));
	PT_EQ(area, 1);
	PT_EQ(st.seq, 5);
}

/* An old record that does not decode as its agent required is no state, as before. */
static void corrupt_old_record_refused(const struct ptest_kit *kit)
{
	static const struct old_layout *const lays[] = {&old_v1, &old_v2};
	struct fwa_state st;

	for (unsigned i = 0; i < 2; i++) {
		/* A flipped bit, a torn tail, a phase out of range, an unknown older format. */
		for (unsigned bad = 0; bad < 4; bad++) {
			PT_REQUIRE(setup(kit));
			PT_REQUIRE(old_record(kit, lays[i], 41));
			if (bad == 0)
				old_rec[600] ^= 0x08;
			if (bad == 2) {
				old_rec[O_PHASE] = FWA_PHASE__COUNT;
				put32(lays[i]->crc_at, crc32(old_rec, lays[i]->crc_at));
			}
			if (bad == 3) {
				put32(O_FORMAT, 0);
				put32(lays[i]->crc_at, crc32(old_rec, lays[i]->crc_at));
			}
			old_program(0, lays[i]);
			if (bad == 1)
				memset(sim.state[0] + 3072, 0xff, lays[i]->size - 3072);
			PT_ERR(fwa_state_load(port(kit), &st, NULL), FWA_ERR_STATE);
			/* The agent starts fresh: floor 0, no root of its own. */
			PT_REQUIRE_OK(boot(kit, "1.0.0"));
			PT_EQ(agent.st.floor, 0);
			PT_EQ(agent.st.has_root, 0);
		}
	}
}

/*
 * Cut the power before each flash operation of the write-back: the next boot finds either the
 * old record, which migrates again, or the new one; either way the same state.
 */
static void migration_power_cut(const struct ptest_kit *kit)
{
	static const struct old_layout *const lays[] = {&old_v1, &old_v2};
	unsigned cases = 0;

	for (unsigned i = 0; i < 2; i++) {
		long total;
		struct fwa_state st;

		PT_REQUIRE(setup(kit));
		PT_REQUIRE(old_record(kit, lays[i], 41));
		old_program(0, lays[i]);
		PT_REQUIRE_OK(boot(kit, "1.0.0"));
		total = sim.flash_ops;
		PT_REQUIRE(total >= 2);
		for (long cut = 0; cut < total; cut++) {
			PT_REQUIRE(setup(kit));
			PT_REQUIRE(old_record(kit, lays[i], 41));
			old_program(0, lays[i]);
			sim.cut_at = cut;
			PT_CHECK(boot(kit, "1.0.0") != FWA_OK); /* the cut stops the start-up */
			PT_CHECK(sim.powered_off);
			PT_MEM(sim.state[0], old_rec,
			       lays[i]->size); /* the old copy is untouched */
			sim.cut_at = -1;
			PT_REQUIRE_OK(boot(kit, "1.0.0"));
			PT_CHECK(area_is_current(1));
			PT_REQUIRE_OK(fwa_state_load(port(kit), &st, NULL));
			check_migrated(&st, lays[i], 42);
			cases++;
		}
	}
	PT_CHECK(cases >= 4);
}

/*
 * What migrated is what the agent goes by: a format 1 record of an idle device with floor 5
 * makes the new agent refuse a release of security version 3 (the provisioned state would
 * take it) and take one of 6, verified against the persisted root.
 */
static void migrated_floor_holds(const struct ptest_kit *kit)
{
	struct fwa_state st;

	PT_REQUIRE(setup(kit));
	PT_REQUIRE(old_record(kit, &old_v1, 41));
	old_rec[O_PHASE] = FWA_PHASE_IDLE;
	old_rec[O_NEVENTS] = 0;
	old_rec[O_OUTCOME] = FWA_ST_NONE;
	put32(old_v1.crc_at, crc32(old_rec, old_v1.crc_at));
	old_program(0, &old_v1);
	PT_REQUIRE(offer(kit, "1.1.0", 3, NULL, 0));
	PT_REQUIRE_OK(boot(kit, "1.0.0"));
	run(20);
	PT_EQ(sim.slot_writes, 0);
	PT_REQUIRE(sim.nstatus == 1);
	PT_STR(sim.status[0], "failed");
	PT_REQUIRE_OK(fwa_state_load(port(kit), &st, NULL));
	PT_EQ(st.floor, 5);
	PT_EQ(st.root.version, 2);

	memcpy(sim.dep_id, "dep-2", 6);
	PT_REQUIRE(offer(kit, "1.1.0", 6, NULL, 0));
	sim.now += 120000;
	PT_EQ(run(50), RUN_REBOOT);
	PT_CHECK(sim.pending_trial);
	PT_MEM(sim.slot[1], sim.image, IMAGE_SIZE);
}

static const struct ptest_case cases[] = {
    {"nothing_to_do", nothing_to_do},
    {"full_update", full_update},
    {"report_refusals_by_type", report_refusals_by_type},
    {"failed_health_rolls_back", failed_health_rolls_back},
    {"refusals_write_nothing", refusals_write_nothing},
    {"download_resumes_with_range", download_resumes_with_range},
    {"bad_image_is_never_booted", bad_image_is_never_booted},
    {"power_cut_sweep", power_cut_sweep},
    {"failed_buy_reboots_to_previous", failed_buy_reboots_to_previous},
    {"slow_trial_within_deadline", slow_trial_within_deadline},
    {"hung_trial_reverts", hung_trial_reverts},
    {"endless_trial_stops_at_deadline", endless_trial_stops_at_deadline},
    {"image_without_trial_flag_is_not_booted", image_without_trial_flag_is_not_booted},
    {"buy_only_after_trial_acknowledged", buy_only_after_trial_acknowledged},
    {"health_after_confirm_counted", health_after_confirm_counted},
    {"signed_time_decides_expiry", signed_time_decides_expiry},
    {"server_cas_follow_the_root", server_cas_follow_the_root},
    {"old_formats_migrate", old_formats_migrate},
    {"corrupt_old_record_refused", corrupt_old_record_refused},
    {"migration_power_cut", migration_power_cut},
    {"migrated_floor_holds", migrated_floor_holds},
    {NULL, NULL},
};

const struct ptest_suite ptest_suite = {"agent", cases};
