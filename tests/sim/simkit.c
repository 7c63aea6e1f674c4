/*
 * The agent's simulation kit (see simkit.h): test-time keys and signed documents, an
 * in-process device API double, and a driver for simulated devices on a virtual clock.
 * The double parses requests and writes responses as real HTTP/1.1 bytes, so the agent's own
 * HTTP client, framing and range handling are exercised on every run.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "fwa/crypto_openssl.h"
#include "fwa/json.h"
#include "delta.h"
#include "state.h"
#include "simkit.h"

static void die(const char *what)
{
	fprintf(stderr, "simkit: %s\n", what);
	abort();
}

void kit_keys_make(struct kit_keys *k)
{
	if (ota_key_generate(&k->root) || ota_key_generate(&k->release) ||
	    ota_key_generate(&k->stranger) || ota_key_generate(&k->root2))
		die("key generation failed");
}

void kit_keys_free(struct kit_keys *k)
{
	EVP_PKEY_free(k->root);
	EVP_PKEY_free(k->release);
	EVP_PKEY_free(k->stranger);
	EVP_PKEY_free(k->root2);
}

static void key_info(EVP_PKEY *key, uint8_t spki[FWA_SPKI_P256_LEN], char id[65])
{
	if (ota_key_spki(key, spki, NULL))
		die("spki");
	ota_key_id(fwa_crypto_openssl(), spki, id);
}

/* DSSE envelope of payload signed by each signer. */
static long envelope(const char *type, const char *payload, size_t len, EVP_PKEY *const *signers,
                     unsigned n, char *out, size_t cap)
{
	static char b64[FWA_ENVELOPE_MAX];
	uint8_t digest[32], sig[FWA_SIG_MAX], spki[FWA_SPKI_P256_LEN];
	char id[65], sigb64[128];
	struct fwa_jw w;
	size_t siglen;
	long k;

	k = fwa_base64_encode((const uint8_t *)payload, len, b64, sizeof(b64) - 1);
	if (k < 0)
		return -1;
	b64[k] = '\0';
	fwa_dsse_pae_digest(fwa_crypto_openssl(), type, (const uint8_t *)payload, len, digest);
	fwa_jw_init(&w, out, cap);
	fwa_jw_obj_open(&w);
	fwa_jw_str(&w, "payloadType", type);
	fwa_jw_str(&w, "payload", b64);
	fwa_jw_arr_open(&w, "signatures");
	for (unsigned i = 0; i < n; i++) {
		key_info(signers[i], spki, id);
		if (ota_key_sign_digest(signers[i], digest, sig, &siglen))
			die("sign");
		k = fwa_base64_encode(sig, siglen, sigb64, sizeof(sigb64) - 1);
		sigb64[k] = '\0';
		fwa_jw_obj_open(&w);
		fwa_jw_str(&w, "keyid", id);
		fwa_jw_str(&w, "sig", sigb64);
		fwa_jw_obj_close(&w);
	}
	fwa_jw_arr_close(&w);
	fwa_jw_obj_close(&w);
	return fwa_jw_end(&w);
}

static long root_doc(EVP_PKEY *root, EVP_PKEY *release, EVP_PKEY *time_key, const char *expires,
                     const uint8_t (*cas)[32], unsigned ncas, uint32_t version,
                     EVP_PKEY *const *signers, unsigned nsigners, char *out, size_t cap)
{
	char tid[65], tb64[200];
	uint8_t tspki[FWA_SPKI_P256_LEN];
	char payload[4096], rid[65], lid[65], rb64[200], lb64[200];
	uint8_t rspki[FWA_SPKI_P256_LEN], lspki[FWA_SPKI_P256_LEN];
	struct fwa_jw w;
	long n;

	key_info(root, rspki, rid);
	key_info(release, lspki, lid);
	n = fwa_base64_encode(rspki, sizeof(rspki), rb64, sizeof(rb64) - 1);
	rb64[n] = '\0';
	n = fwa_base64_encode(lspki, sizeof(lspki), lb64, sizeof(lb64) - 1);
	lb64[n] = '\0';
	fwa_jw_init(&w, payload, sizeof(payload));
	fwa_jw_obj_open(&w);
	fwa_jw_str(&w, "_type", "root");
	fwa_jw_str(&w, "spec_version", FWA_SPEC_VERSION);
	fwa_jw_uint(&w, "version", version);
	fwa_jw_str(&w, "expires", expires ? expires : "2100-01-01T00:00:00Z");
	fwa_jw_key(&w, "keys");
	fwa_jw_obj_open(&w);
	fwa_jw_key(&w, rid);
	fwa_jw_obj_open(&w);
	fwa_jw_str(&w, "keytype", "ecdsa-p256");
	fwa_jw_str(&w, "public", rb64);
	fwa_jw_obj_close(&w);
	fwa_jw_key(&w, lid);
	fwa_jw_obj_open(&w);
	fwa_jw_str(&w, "keytype", "ecdsa-p256");
	fwa_jw_str(&w, "public", lb64);
	fwa_jw_obj_close(&w);
	if (time_key) {
		key_info(time_key, tspki, tid);
		n = fwa_base64_encode(tspki, sizeof(tspki), tb64, sizeof(tb64) - 1);
		tb64[n] = '\0';
		fwa_jw_key(&w, tid);
		fwa_jw_obj_open(&w);
		fwa_jw_str(&w, "keytype", "ecdsa-p256");
		fwa_jw_str(&w, "public", tb64);
		fwa_jw_obj_close(&w);
	}
	fwa_jw_obj_close(&w);
	fwa_jw_key(&w, "roles");
	fwa_jw_obj_open(&w);
	fwa_jw_key(&w, "root");
	fwa_jw_obj_open(&w);
	fwa_jw_arr_open(&w, "keyids");
	fwa_jw_str(&w, NULL, rid);
	fwa_jw_arr_close(&w);
	fwa_jw_uint(&w, "threshold", 1);
	fwa_jw_obj_close(&w);
	fwa_jw_key(&w, "release");
	fwa_jw_obj_open(&w);
	fwa_jw_arr_open(&w, "keyids");
	fwa_jw_str(&w, NULL, lid);
	fwa_jw_arr_close(&w);
	fwa_jw_uint(&w, "threshold", 1);
	fwa_jw_obj_close(&w);
	if (time_key) {
		fwa_jw_key(&w, "time");
		fwa_jw_obj_open(&w);
		fwa_jw_arr_open(&w, "keyids");
		fwa_jw_str(&w, NULL, tid);
		fwa_jw_arr_close(&w);
		fwa_jw_uint(&w, "threshold", 1);
		fwa_jw_obj_close(&w);
	}
	fwa_jw_obj_close(&w);
	if (ncas) {
		char hex[65];

		fwa_jw_arr_open(&w, "server_cas");
		for (unsigned i = 0; i < ncas; i++) {
			fwa_hex(cas[i], 32, hex);
			fwa_jw_str(&w, NULL, hex);
		}
		fwa_jw_arr_close(&w);
	}
	fwa_jw_obj_close(&w);
	n = fwa_jw_end(&w);
	if (n < 0)
		die("root payload");
	return envelope(FWA_PAYLOAD_ROOT, payload, (size_t)n, signers, nsigners, out, cap);
}

long kit_root_time(EVP_PKEY *root, EVP_PKEY *release, EVP_PKEY *time_key, const char *expires,
                   uint32_t version, EVP_PKEY *const *signers, unsigned nsigners, char *out,
                   size_t cap)
{
	return root_doc(root, release, time_key, expires, NULL, 0, version, signers, nsigners, out,
	                cap);
}

long kit_root_cas(EVP_PKEY *root, EVP_PKEY *release, const uint8_t (*cas)[32], unsigned ncas,
                  uint32_t version, EVP_PKEY *const *signers, unsigned nsigners, char *out,
                  size_t cap)
{
	return root_doc(root, release, NULL, NULL, cas, ncas, version, signers, nsigners, out, cap);
}

long kit_root(EVP_PKEY *root, EVP_PKEY *release, uint32_t version, EVP_PKEY *const *signers,
              unsigned nsigners, char *out, size_t cap)
{
	return kit_root_time(root, release, NULL, NULL, version, signers, nsigners, out, cap);
}

long kit_manifest(EVP_PKEY *signer, const char *version, uint32_t secver, const char *hw,
                  const uint8_t *image, size_t len, char *out, size_t cap)
{
	char payload[2048], hex[65];
	uint8_t digest[32];
	struct fwa_jw w;
	long n;

	SHA256(image, len, digest);
	fwa_hex(digest, 32, hex);
	fwa_jw_init(&w, payload, sizeof(payload));
	fwa_jw_obj_open(&w);
	fwa_jw_str(&w, "_type", "manifest");
	fwa_jw_str(&w, "spec_version", FWA_SPEC_VERSION);
	fwa_jw_str(&w, "name", "sim-firmware");
	fwa_jw_str(&w, "version", version);
	fwa_jw_uint(&w, "security_version", secver);
	fwa_jw_arr_open(&w, "hw_variants");
	fwa_jw_str(&w, NULL, hw);
	fwa_jw_arr_close(&w);
	fwa_jw_key(&w, "image");
	fwa_jw_obj_open(&w);
	fwa_jw_uint(&w, "size", len);
	fwa_jw_str(&w, "sha256", hex);
	fwa_jw_str(&w, "format", "sim");
	fwa_jw_obj_close(&w);
	fwa_jw_str(&w, "created", "2026-11-01T00:00:00Z");
	fwa_jw_obj_close(&w);
	n = fwa_jw_end(&w);
	if (n < 0)
		die("manifest payload");
	return envelope(FWA_PAYLOAD_MANIFEST, payload, (size_t)n, &signer, 1, out, cap);
}

/* ---- the device API double ---- */

void kit_server_init(struct kit_server *s)
{
	memset(s, 0, sizeof(*s));
	s->drop_after = -1;
}

void kit_server_free(struct kit_server *s)
{
	free(s->out);
	s->out = NULL;
}

void kit_server_offer(struct kit_server *s, const char *version, const char *manifest,
                      size_t manifest_len, uint8_t *image, size_t image_len)
{
	uint8_t digest[32];
	char hex[65];

	s->offer = true;
	snprintf(s->dep_id, sizeof(s->dep_id), "%s", KIT_DEP);
	snprintf(s->target_version, sizeof(s->target_version), "%s", version);
	memcpy(s->manifest, manifest, manifest_len);
	s->manifest_len = manifest_len;
	s->image = image;
	s->image_len = image_len;
	SHA256(image, image_len, digest);
	fwa_hex(digest, 32, hex);
	snprintf(s->image_path, sizeof(s->image_path), "/device/v1/images/%s", hex);
	s->final_status[0] = '\0';
}

void kit_server_offer_delta(struct kit_server *s, const char *meta, size_t meta_len, uint8_t *delta,
                            size_t delta_len, const uint8_t base_sha256[32])
{
	uint8_t digest[32];
	char hex[65];

	memcpy(s->delta_meta, meta, meta_len);
	s->delta_meta_len = meta_len;
	s->delta = delta;
	s->delta_len = delta_len;
	fwa_hex(base_sha256, 32, s->delta_base);
	SHA256(delta, delta_len, digest);
	fwa_hex(digest, 32, hex);
	snprintf(s->delta_path, sizeof(s->delta_path), "/device/v1/images/%s", hex);
}

long kit_derive(const uint8_t *from, size_t from_len, const char *version, uint32_t secver,
                uint8_t *out, size_t cap)
{
	struct sim_image_header h;
	uint32_t plen, at;
	uint8_t *p;
	const uint8_t *f = from + SIM_PAGE;
	long n;

	if (from_len <= SIM_PAGE + 96)
		return -1;
	plen = (uint32_t)(from_len - SIM_PAGE);
	n = fwa_sim_mkimage(version, secver, KIT_HW, SIM_FAULT_NONE, plen, out, cap);
	if (n < 0)
		return -1;
	p = out + SIM_PAGE;
	at = plen / 3;
	memcpy(p, f, at);
	memset(p + at, 0x5a, 96);
	memcpy(p + at + 96, f + at, plen - at - 96);
	for (uint32_t i = 100; i < plen; i += 6007)
		p[i] ^= 0x24;
	memcpy(&h, out, sizeof(h));
	h.payload_crc = fwa_crc32(p, plen);
	h.header_crc = fwa_crc32(&h, offsetof(struct sim_image_header, header_crc));
	memcpy(out, &h, sizeof(h));
	return n;
}

long kit_delta(EVP_PKEY *signer, const char *manifest, size_t manifest_len, const uint8_t *base,
               size_t base_len, const uint8_t *target, size_t target_len, uint8_t **delta,
               size_t *delta_len, char *out, size_t cap)
{
	struct fwa_verify_scratch *vs = malloc(sizeof(*vs));
	struct ota_delta_info info;
	char payload[1024], hex[65];
	uint8_t digest[32];
	const char *why;
	struct fwa_jw w;
	long n;

	if (!vs || fwa_dsse_parse(manifest, manifest_len, vs, &why) != FWA_OK)
		die("delta: manifest");
	SHA256(vs->env.payload, vs->env.payload_len, digest);
	free(vs);
	if (ota_delta_encode(base, base_len, target, target_len, NULL, delta, delta_len, &info,
	                     &why))
		die(why);
	fwa_jw_init(&w, payload, sizeof(payload));
	fwa_jw_obj_open(&w);
	fwa_jw_str(&w, "_type", "delta");
	fwa_jw_str(&w, "spec_version", FWA_SPEC_VERSION);
	fwa_hex(digest, 32, hex);
	fwa_jw_str(&w, "release", hex);
	for (int k = 0; k < 3; k++) {
		const uint8_t *p = k == 0 ? target : k == 1 ? base : NULL;
		size_t len = k == 0 ? target_len : k == 1 ? base_len : *delta_len;

		if (p)
			SHA256(p, len, digest);
		else
			memcpy(digest, info.head_sha256, 32);
		fwa_hex(digest, 32, hex);
		fwa_jw_key(&w, k == 0 ? "target" : k == 1 ? "base" : "delta");
		fwa_jw_obj_open(&w);
		fwa_jw_uint(&w, "size", len);
		fwa_jw_str(&w, "sha256", hex);
		if (!p)
			fwa_jw_str(&w, "format", FWA_DELTA_FORMAT);
		fwa_jw_obj_close(&w);
	}
	fwa_jw_str(&w, "created", "2026-11-01T00:00:00Z");
	fwa_jw_obj_close(&w);
	n = fwa_jw_end(&w);
	if (n < 0)
		die("delta payload");
	n = envelope(FWA_PAYLOAD_DELTA, payload, (size_t)n, &signer, 1, out, cap);
	if (n < 0)
		die("delta envelope");
	return n;
}

static void out_put(struct kit_server *s, const void *p, size_t n)
{
	if (s->out_len + n > s->out_cap) {
		s->out_cap = (s->out_len + n) * 2;
		s->out = realloc(s->out, s->out_cap);
		if (!s->out)
			die("out of memory");
	}
	memcpy(s->out + s->out_len, p, n);
	s->out_len += n;
}

static void respond(struct kit_server *s, int status, const char *extra, const void *body,
                    size_t len)
{
	char head[512];
	int n =
	    snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s%s\r\n", status,
	             len, s->close_each ? "Connection: close\r\n" : "", extra ? extra : "");

	out_put(s, head, (size_t)n);
	out_put(s, body, len);
}

static void json_str(const struct fwa_json *j, int obj, const char *key, char *out, size_t cap)
{
	int t = fwa_json_get(j, obj, key);

	out[0] = '\0';
	if (t >= 0 && fwa_json_str(j, t, out, cap, NULL) != FWA_OK)
		out[0] = '\0';
}

static void do_checkin(struct kit_server *s, const char *body, size_t len)
{
	static struct fwa_json_tok tok[256];
	static char ans[3 * FWA_ENVELOPE_MAX];
	char active[65], nonce[65];
	struct fwa_json j;
	int t;
	size_t n = 0;

	s->checkins++;
	if (fwa_json_parse(&j, body, len, tok, 256) != FWA_OK) {
		respond(s, 400, NULL, "bad", 3);
		return;
	}
	t = fwa_json_get(&j, 0, "last_outcome");
	if (t >= 0)
		json_str(&j, t, "status", s->last_outcome, sizeof(s->last_outcome));
	json_str(&j, 0, "active_image_sha256", active, sizeof(active));
	json_str(&j, 0, "nonce", nonce, sizeof(nonce));
	n += (size_t)snprintf(ans + n, sizeof(ans) - n,
	                      "{\"action\":\"%s\",\"poll_after\":60,\"server_time\":1795000000",
	                      s->offer ? "update" : "none");
	if (s->offer)
		n += (size_t)snprintf(ans + n, sizeof(ans) - n,
		                      ",\"update\":{\"deployment_id\":\"%s\",\"image_url\":\"%s\","
		                      "\"image_size\":%zu,\"manifest\":%.*s",
		                      s->dep_id, s->image_path, s->image_len, (int)s->manifest_len,
		                      s->manifest);
	if (s->offer && s->delta && strcmp(active, s->delta_base) == 0) {
		s->delta_offers++;
		n += (size_t)snprintf(ans + n, sizeof(ans) - n,
		                      ",\"delta\":{\"url\":\"%s\",\"size\":%zu,\"metadata\":%.*s}",
		                      s->delta_path, s->delta_len, (int)s->delta_meta_len,
		                      s->delta_meta);
	}
	if (s->offer)
		n += (size_t)snprintf(ans + n, sizeof(ans) - n, "}");
	if (s->nroots) {
		n += (size_t)snprintf(ans + n, sizeof(ans) - n, ",\"roots\":[");
		for (unsigned i = 0; i < s->nroots; i++)
			n += (size_t)snprintf(ans + n, sizeof(ans) - n, "%s%.*s", i ? "," : "",
			                      (int)s->roots_len[i], s->roots[i]);
		n += (size_t)snprintf(ans + n, sizeof(ans) - n, "]");
	}
	if (s->time_key && nonce[0] && (s->token_mode != KIT_TOKEN_REPLAY || s->prev_nonce[0])) {
		/* Signed time: for this nonce, another device's, or the previous check-in's. */
		const char *for_nonce = s->token_mode == KIT_TOKEN_FOREIGN
		                            ? "0123456789abcdef0123456789abcdef"
		                        : s->token_mode == KIT_TOKEN_REPLAY ? s->prev_nonce
		                                                            : nonce;
		char payload[200], env[1024];
		int pl = snprintf(payload, sizeof(payload),
		                  "{\"_type\":\"time\",\"spec_version\":\"1\",\"time\":\"%s\","
		                  "\"nonce\":\"%s\"}",
		                  s->token_time, for_nonce);
		long tl = envelope(FWA_PAYLOAD_TIME, payload, (size_t)pl, &s->time_key, 1, env,
		                   sizeof(env));
		if (tl < 0)
			die("time token");
		n += (size_t)snprintf(ans + n, sizeof(ans) - n, ",\"time_token\":%.*s", (int)tl,
		                      env);
		s->tokens++;
	}
	if (nonce[0])
		memcpy(s->prev_nonce, nonce, sizeof(nonce));
	n += (size_t)snprintf(ans + n, sizeof(ans) - n, "}");
	respond(s, 200, "Content-Type: application/json\r\n", ans, n);
}

static void do_event(struct kit_server *s, const char *dep, const char *body, size_t len)
{
	static struct fwa_json_tok tok[64];
	struct fwa_json j;
	struct kit_event e;
	uint64_t seq;
	int t;

	if (strcmp(dep, s->dep_id) != 0) {
		respond(s, 404, NULL, "no", 2);
		return;
	}
	if (fwa_json_parse(&j, body, len, tok, 64) != FWA_OK ||
	    (t = fwa_json_get(&j, 0, "seq")) < 0 || fwa_json_uint(&j, t, UINT32_MAX, &seq)) {
		respond(s, 400, NULL, "bad", 3);
		return;
	}
	for (unsigned i = 0; i < s->nevents; i++)
		if (s->events[i].seq == seq) {
			s->duplicates++;
			respond(s, 200, NULL, "{\"duplicate\":true}", 18);
			return;
		}
	memset(&e, 0, sizeof(e));
	e.seq = (uint32_t)seq;
	json_str(&j, 0, "status", e.status, sizeof(e.status));
	json_str(&j, 0, "reason", e.reason, sizeof(e.reason));
	json_str(&j, 0, "version", e.version, sizeof(e.version));
	if (s->nevents < KIT_MAX_EVENTS)
		s->events[s->nevents++] = e;
	if (s->offer && (strcmp(e.status, "confirmed") == 0 || strcmp(e.status, "failed") == 0 ||
	                 strcmp(e.status, "rolled_back") == 0)) {
		s->offer = false;
		snprintf(s->final_status, sizeof(s->final_status), "%s", e.status);
		snprintf(s->final_reason, sizeof(s->final_reason), "%s", e.reason);
		snprintf(s->final_version, sizeof(s->final_version), "%s", e.version);
		s->succeeded =
		    strcmp(e.status, "confirmed") == 0 && strcmp(e.version, s->target_version) == 0;
	}
	respond(s, 200, NULL, "{\"duplicate\":false}", 19);
}

static void do_image(struct kit_server *s, const char *range_hdr, bool delta)
{
	unsigned long long first = 0;
	const uint8_t *blob = delta ? s->delta : s->image;
	size_t len = delta ? s->delta_len : s->image_len;
	char extra[128];
	size_t body;

	if (delta) {
		s->delta_gets++;
		if (s->delta_gone) {
			respond(s, 404, NULL, "", 0);
			return;
		}
	} else {
		if (s->image_gets < 16)
			s->ranges[s->image_gets] = 0;
		s->image_gets++;
	}
	if (range_hdr && sscanf(range_hdr, "bytes=%llu-", &first) == 1) {
		if (first >= len) {
			respond(s, 416, NULL, "", 0);
			return;
		}
		if (!delta && s->image_gets <= 16)
			s->ranges[s->image_gets - 1] = first;
		snprintf(extra, sizeof(extra), "Content-Range: bytes %llu-%zu/%zu\r\n", first,
		         len - 1, len);
		respond(s, 206, extra, blob + first, len - first);
	} else {
		respond(s, 200, NULL, blob, len);
	}
	body = len - first;
	if (s->drop_after >= 0 && s->drops_left > 0 && (size_t)s->drop_after < body) {
		s->drops_left--;
		s->out_len -= body - (size_t)s->drop_after;
		s->reset_at_end = true;
	}
}

/* The presented certificate is the pinned one, or the pending one, which is pinned now. */
static bool identity_ok(struct kit_server *s)
{
	if (s->conn_cert == s->pinned && s->conn_key == s->pinned_key)
		return true;
	if (s->pending && s->conn_cert == s->pending && s->conn_key == s->pending_key) {
		s->pinned = s->pending;
		s->pinned_key = s->pending_key;
		s->pending = 0;
		s->pins++;
		return true;
	}
	s->refused++;
	return false;
}

/* {"csr":"KEY:<n>"}: a certificate for key n, pending until its first use. */
static void do_certificate(struct kit_server *s, const char *body, size_t len)
{
	static struct fwa_json_tok tok[16];
	char csr[32], ans[160];
	struct fwa_json j;
	unsigned key;
	int n;

	if (fwa_json_parse(&j, body, len, tok, 16) != FWA_OK) {
		respond(s, 400, NULL, "bad", 3);
		return;
	}
	json_str(&j, 0, "csr", csr, sizeof(csr));
	if (sscanf(csr, "KEY:%u", &key) != 1 || key == 0) {
		respond(s, 400, NULL, "bad", 3);
		return;
	}
	s->pending = ++s->serials;
	s->pending_key = key;
	s->issued++;
	n = snprintf(ans, sizeof(ans), "{\"certificate\":\"CERT:%u:%u:%lld:%lld\"}", s->pending,
	             key, (long long)s->issue_nb, (long long)s->issue_na);
	respond(s, 200, "Content-Type: application/json\r\n", ans, (size_t)n);
}

/* A whole request is in s->in: answer it into s->out. */
static bool handle(struct kit_server *s)
{
	char method[8], path[256], *head_end, *cl, *range;
	size_t head_len, body_len = 0;

	s->in[s->in_len < sizeof(s->in) ? s->in_len : sizeof(s->in) - 1] = '\0';
	head_end = strstr(s->in, "\r\n\r\n");
	if (!head_end)
		return false;
	head_len = (size_t)(head_end - s->in) + 4;
	cl = strstr(s->in, "Content-Length: ");
	if (cl && cl < head_end)
		body_len = strtoul(cl + 16, NULL, 10);
	if (s->in_len < head_len + body_len)
		return false;
	s->requests++;
	if (sscanf(s->in, "%7s %255s", method, path) != 2) {
		respond(s, 400, NULL, "", 0);
		return true;
	}
	range = strstr(s->in, "Range: ");
	if (range && range > head_end)
		range = NULL;
	if (s->issuer && !identity_ok(s)) {
		respond(s, 403, NULL, "pinned", 6);
		return true;
	}
	if (s->issuer && strcmp(method, "POST") == 0 &&
	    strcmp(path, "/device/v1/certificate") == 0) {
		do_certificate(s, s->in + head_len, body_len);
	} else if (strcmp(method, "POST") == 0 && strcmp(path, "/device/v1/checkin") == 0) {
		do_checkin(s, s->in + head_len, body_len);
	} else if (strcmp(method, "POST") == 0 &&
	           strncmp(path, "/device/v1/deployments/", 23) == 0) {
		char dep[80];
		char *slash = strchr(path + 23, '/');

		if (!slash || strcmp(slash, "/events") != 0 || slash - (path + 23) >= 80) {
			respond(s, 404, NULL, "", 0);
			return true;
		}
		snprintf(dep, sizeof(dep), "%.*s", (int)(slash - (path + 23)), path + 23);
		if (s->refuse_reports && s->nevents >= s->refuse_after) {
			char problem[160];
			int n = snprintf(problem, sizeof(problem),
			                 "{\"type\":\"urn:ota:problem:%s\",\"title\":\"Refused\","
			                 "\"status\":403}",
			                 s->refuse_type);

			s->refuse_reports--;
			s->report_refusals++;
			respond(s, 403, "Content-Type: application/problem+json\r\n", problem,
			        (size_t)n);
			return true;
		}
		do_event(s, dep, s->in + head_len, body_len);
	} else if (strcmp(method, "GET") == 0 && strcmp(path, s->image_path) == 0 && s->image) {
		do_image(s, range ? range + 7 : NULL, false);
	} else if (strcmp(method, "GET") == 0 && s->delta && strcmp(path, s->delta_path) == 0) {
		do_image(s, range ? range + 7 : NULL, true);
	} else {
		respond(s, 404, NULL, "", 0);
	}
	return true;
}

static struct kit_server *srv_of(void *ctx)
{
	return ((struct kit_device *)ctx)->srv;
}

void kit_net_slow(struct kit_device *d)
{
	d->net.boot_ms = 1500;       /* cyw43 firmware load and the checks before the agent */
	d->net.wifi_join_ms = 8000;  /* scan, association, WPA2 handshake on a weak signal */
	d->net.dhcp_ms = 4000;       /* a lease with retransmissions */
	d->net.dns_ms = 1000;        /* per connection */
	d->net.tls_ms = 3500;        /* TCP and TLS 1.2: about four P-256 operations, three RTTs */
	d->net.tls_resume_ms = 1500; /* a resumed session: no P-256, two RTTs */
	d->net.rtt_ms = 700;         /* request to the answer's first byte */
}

void kit_advance(struct kit_device *d, uint64_t ms)
{
	uint64_t left = fwa_sim_watchdog_left(&d->sim);

	if (ms < left) {
		d->sim.vclock_ms += ms;
		return;
	}
	d->sim.vclock_ms += left;
	if (d->wd_jmp)
		longjmp(*d->wd_jmp, 1);
}

/* Finish a commit cut between its two renames (the key already is the new one). */
static void cred_settle(struct kit_device *d)
{
	struct kit_cred *c = &d->cred;

	if (!c->key_new && c->cert_new && c->cert_new_key == c->key) {
		fwa_sim_atomic_op(&d->sim);
		c->cert = c->cert_new;
		c->cert_key = c->cert_new_key;
		c->nb = c->new_nb;
		c->na = c->new_na;
		c->cert_new = 0;
	}
}

/* The server's CA is one the agent's root pins, or the provisioned one when it pins none. */
static bool ca_trusted(const struct kit_device *d, const struct kit_server *s)
{
	if (d->npins == 0)
		return memcmp(s->ca, d->prov_ca, 32) == 0;
	for (unsigned i = 0; i < d->npins; i++)
		if (memcmp(s->ca, d->pins[i], 32) == 0)
			return true;
	return false;
}

static void t_server_cas(void *ctx, const uint8_t (*pins)[32], unsigned n)
{
	struct kit_device *d = ctx;

	d->npins = n < FWA_MAX_SERVER_CAS ? n : FWA_MAX_SERVER_CAS;
	memcpy(d->pins, pins, (size_t)d->npins * 32);
}

/* The pair a connection presents: the pending one first, a few times; a pair must match. */
static bool cred_present(struct kit_device *d, struct kit_server *s)
{
	struct kit_cred *c = &d->cred;

	if (!s->issuer)
		return true;
	cred_settle(d);
	c->using_pending =
	    c->cert_new && c->key_new && c->cert_new_key == c->key_new && c->pending_tries < 3;
	if (c->using_pending) {
		c->pending_tries++;
		s->conn_cert = c->cert_new;
		s->conn_key = c->key_new;
		return true;
	}
	s->conn_cert = c->cert;
	s->conn_key = c->key;
	return c->cert_key == c->key; /* else the handshake fails: key and certificate differ */
}

static enum fwa_err t_connect(void *ctx)
{
	struct kit_device *d = ctx;
	struct kit_server *s = srv_of(ctx);
	struct kit_net *n = &d->net;
	uint32_t limit = n->connect_timeout_ms ? n->connect_timeout_ms : 10000u;
	uint32_t link = n->wifi_join_ms + n->dhcp_ms - n->joined_ms;
	uint32_t tls = n->session && n->tls_resume_ms ? n->tls_resume_ms : n->tls_ms;
	uint64_t cost = (uint64_t)link + n->dns_ms + tls;
	bool count = d->sim.trial; /* the budget figures are the trial's, up to its buy */

	if (cost > limit) {
		/* Timed out; the join goes on in the background as far as it got. */
		kit_advance(d, limit);
		n->joined_ms += link < limit ? link : limit;
		if (count) {
			n->spent_link += link < limit ? link : limit;
			n->spent_connect += link < limit ? limit - link : 0;
			n->connect_timeouts++;
		}
		return FWA_ERR_TRANSPORT;
	}
	kit_advance(d, cost);
	n->joined_ms += link;
	if (count) {
		n->spent_link += link;
		n->spent_connect += cost - link;
		n->connects++;
	}
	if (s->down || !cred_present(d, s))
		return FWA_ERR_TRANSPORT;
	if (s->has_ca && !ca_trusted(d, s)) {
		s->ca_refusals++;
		return FWA_ERR_TRANSPORT;
	}
	n->session = true;
	n->answered = false;
	s->connections++;
	s->open = true;
	s->peer_closed = false;
	s->in_len = 0;
	s->out_len = s->out_pos = 0;
	s->reset_at_end = false;
	return FWA_OK;
}

static enum fwa_err t_send(void *ctx, const void *buf, size_t len)
{
	struct kit_server *s = srv_of(ctx);

	if (!s->open || s->peer_closed)
		return FWA_ERR_TRANSPORT;
	if (s->out_len && s->out_pos == s->out_len) {
		/* The answer was read whole: this is the next request on a kept connection. */
		if (s->close_kept) {
			s->close_kept--;
			s->peer_closed = true; /* closed as it arrives: the request is lost */
			return FWA_OK;
		}
		s->in_len = 0;
		s->out_len = s->out_pos = 0;
		((struct kit_device *)ctx)->net.answered = false;
	}
	if (len > sizeof(s->in) - 1 - s->in_len)
		return FWA_ERR_TRANSPORT;
	memcpy(s->in + s->in_len, buf, len);
	s->in_len += len;
	if (s->out_len == 0)
		handle(s);
	return FWA_OK;
}

static enum fwa_err t_recv(void *ctx, void *buf, size_t cap, uint32_t timeout_ms, size_t *got)
{
	struct kit_device *d = ctx;
	struct kit_server *s = srv_of(ctx);
	size_t n;

	*got = 0;
	if (!s->open)
		return FWA_ERR_TRANSPORT;
	if (s->peer_closed)
		return FWA_OK; /* the end of the stream */
	if (d->net.stall || (d->net.stall_trial && d->sim.trial)) {
		kit_advance(d, timeout_ms);
		return FWA_ERR_TRANSPORT;
	}
	if (s->cut_answers && s->out_len && !s->out_pos) {
		/* The request was handled (and did what it does); its answer never arrives. */
		s->cut_answers--;
		s->open = false;
		return FWA_ERR_TRANSPORT;
	}
	if (!d->net.answered) {
		kit_advance(d, d->net.rtt_ms);
		if (d->sim.trial) {
			d->net.spent_request += d->net.rtt_ms;
			d->net.requests++;
		}
		d->net.answered = true;
	}
	if (s->out_pos == s->out_len)
		return s->reset_at_end || s->out_len == 0 || !s->close_each ? FWA_ERR_TRANSPORT
		                                                            : FWA_OK;
	n = s->out_len - s->out_pos;
	if (n > cap)
		n = cap;
	if (n > 1500)
		n = 1500; /* segment-sized pieces, to exercise reassembly */
	memcpy(buf, s->out + s->out_pos, n);
	s->out_pos += n;
	*got = n;
	return FWA_OK;
}

static void t_close(void *ctx)
{
	struct kit_server *s = srv_of(ctx);

	s->open = false;
	s->in_len = 0;
	s->out_len = s->out_pos = 0;
	((struct kit_device *)ctx)->net.answered = false;
}

/* ---- devices ---- */

void kit_device_init(struct kit_device *d, struct kit_server *srv, const uint8_t *factory,
                     size_t factory_len, const char *root, size_t root_len, uint32_t slot_size)
{
	memset(d, 0, sizeof(*d));
	if (fwa_sim_open_mem(&d->sim, slot_size) < 0)
		die("sim flash");
	if (fwa_sim_provision(&d->sim, factory, factory_len) != FWA_OK)
		die("provision");
	d->sim.virtual_clock = true;
	d->sim.vclock_ms = 1000;
	d->sim.verbose = getenv("KIT_VERBOSE") ? atoi(getenv("KIT_VERBOSE")) : 0;
	d->sim.name = "device";
	d->srv = srv;
	fwa_sim_port(&d->port, &d->sim, fwa_crypto_openssl());
	d->port.ctx = d;
	d->port.tr_connect = t_connect;
	d->port.tr_send = t_send;
	d->port.tr_recv = t_recv;
	d->port.tr_close = t_close;
	d->port.tr_server_cas = t_server_cas;
	if (root_len > sizeof(d->root))
		die("root too large");
	memcpy(d->root, root, root_len);
	d->root_len = root_len;
	d->check.name = "selftest";
	d->check.check = fwa_sim_selftest;
	d->check.ctx = &d->sim;
	d->cfg.hw_variant = KIT_HW;
	d->cfg.version = d->version;
	d->cfg.host = "ota.test:8443";
	d->cfg.image_format = "sim";
	d->cfg.root_json = d->root;
	d->cfg.root_len = d->root_len;
	d->cfg.checks = &d->check;
	d->cfg.nchecks = 1;
	d->cfg.poll_s = 60;
	d->cfg.retry_min_ms = 100;
	d->cfg.retry_max_ms = 2000;
	d->scratch = aligned_alloc(8, (FWA_AGENT_SCRATCH_SIZE + 7) / 8 * 8);
	if (!d->scratch)
		die("scratch");
}

void kit_device_free(struct kit_device *d)
{
	fwa_sim_close(&d->sim);
	free(d->scratch);
	d->scratch = NULL;
}

/* ---- credentials (kit_renewal) ---- */

static enum fwa_err c_lifetime(void *ctx, int64_t *nb, int64_t *na, bool *pending)
{
	struct kit_device *d = ctx;

	cred_settle(d);
	*nb = d->cred.nb;
	*na = d->cred.na;
	*pending = d->cred.cert_new && d->cred.key_new;
	return FWA_OK;
}

static enum fwa_err c_csr(void *ctx, char *buf, size_t cap, size_t *len)
{
	struct kit_device *d = ctx;
	struct kit_cred *c = &d->cred;
	int n;

	if (c->cert_new) { /* a certificate for an older pending key is of no use */
		fwa_sim_atomic_op(&d->sim);
		c->cert_new = 0;
	}
	if (!c->key_new) { /* the new key is persisted before the request leaves */
		fwa_sim_atomic_op(&d->sim);
		c->key_new = ++c->keys_made + 1;
	}
	n = snprintf(buf, cap, "KEY:%u", c->key_new);
	if (n < 0 || (size_t)n >= cap)
		return FWA_ERR_TOO_LARGE;
	*len = (size_t)n;
	return FWA_OK;
}

static enum fwa_err c_install(void *ctx, const char *pem, size_t len)
{
	struct kit_device *d = ctx;
	struct kit_cred *c = &d->cred;
	char text[96];
	unsigned serial, key;
	long long nb, na;

	snprintf(text, sizeof(text), "%.*s", (int)len, pem);
	if (sscanf(text, "CERT:%u:%u:%lld:%lld", &serial, &key, &nb, &na) != 4 || key != c->key_new)
		return FWA_ERR_KEY;
	fwa_sim_atomic_op(&d->sim);
	c->cert_new = serial;
	c->cert_new_key = key;
	c->new_nb = nb;
	c->new_na = na;
	return FWA_OK;
}

static void c_accepted(void *ctx)
{
	struct kit_device *d = ctx;
	struct kit_cred *c = &d->cred;

	if (!c->using_pending)
		return;
	/* The key first, then the certificate (cred_settle finishes a cut between them). */
	fwa_sim_atomic_op(&d->sim);
	c->key = c->key_new;
	c->key_new = 0;
	fwa_sim_atomic_op(&d->sim);
	c->cert = c->cert_new;
	c->cert_key = c->cert_new_key;
	c->nb = c->new_nb;
	c->na = c->new_na;
	c->cert_new = 0;
	c->using_pending = false;
	c->pending_tries = 0;
}

/* The old pair refused: back to the pending one, which the server may have pinned. */
static void c_refused(void *ctx)
{
	struct kit_cred *c = &((struct kit_device *)ctx)->cred;

	if (!c->using_pending && c->cert_new && c->key_new)
		c->pending_tries = 0;
}

void kit_renewal(struct kit_device *d, int64_t nb, int64_t na, int64_t inb, int64_t ina)
{
	memset(&d->cred, 0, sizeof(d->cred));
	d->cred.cert = d->cred.cert_key = d->cred.key = 1;
	d->cred.nb = nb;
	d->cred.na = na;
	d->port.cred_lifetime = c_lifetime;
	d->port.cred_csr = c_csr;
	d->port.cred_install = c_install;
	d->port.cred_accepted = c_accepted;
	d->port.cred_refused = c_refused;
	d->cfg.renew_permille = 500;
	d->srv->issuer = true;
	d->srv->pinned = d->srv->pinned_key = d->srv->serials = 1;
	d->srv->issue_nb = inb;
	d->srv->issue_na = ina;
}

void kit_power_cut(struct kit_device *d)
{
	d->cred.using_pending = false;
	d->cred.pending_tries = 0;
	fwa_sim_power_cut(&d->sim);
	d->sim.cut_at = 0;
	d->sim.cut_mode = SIM_CUT_NONE;
	d->checked_in = false; /* the run after the cut must reach the server again */
	t_close(d);
}

/* A trial ended: bought now, or reverted by what ends this boot. */
static void trial_ended(struct kit_device *d, bool bought)
{
	d->trial_end_ms = d->sim.vclock_ms;
	if (bought)
		d->trial_buy_ms = d->sim.vclock_ms;
}

static enum kit_result run(struct kit_device *d, unsigned max_steps)
{
	struct fwa_step st;
	enum fwa_err err;
	volatile unsigned steps = 0;
	jmp_buf wd;

	for (;;) { /* one iteration per boot */
		if (setjmp(wd)) {
			/* The watchdog fired inside a step, or the image hung until it did. */
			d->wd_jmp = NULL;
			d->sim.hang_jmp = NULL;
			if (!fwa_sim_watchdog_due(&d->sim))
				d->sim.vclock_ms += fwa_sim_watchdog_left(&d->sim);
			trial_ended(d, false);
			fwa_sim_watchdog_reset(&d->sim);
			t_close(d);
			continue;
		}
		if (!d->sim.booted) {
			if (fwa_sim_boot(&d->sim) != FWA_OK) {
				d->bricked = true;
				return KIT_BRICKED;
			}
		}
		d->boots++;
		d->net.joined_ms = 0; /* Wi-Fi and TLS sessions start over at every boot */
		d->net.session = false;
		if (d->sim.trial) {
			d->trial_boot_ms = d->sim.vclock_ms;
			d->trial_buy_ms = d->trial_end_ms = 0;
			d->net.spent_link = d->net.spent_connect = d->net.spent_request = 0;
			d->net.connects = d->net.connect_timeouts = d->net.requests = 0;
		}
		d->wd_jmp = &wd;
		d->sim.hang_jmp = &wd;
		kit_advance(d, d->net.boot_ms);
		snprintf(d->version, sizeof(d->version), "%s", d->sim.running.version);
		d->cfg.image_size = SIM_PAGE + d->sim.running.payload_len;
		if (fwa_agent_init(&d->agent, &d->port, &d->cfg, d->scratch,
		                   FWA_AGENT_SCRATCH_SIZE) != FWA_OK)
			return KIT_ERROR;
		for (;;) {
			uint64_t wait, left;

			if (++steps > max_steps)
				return KIT_STUCK;
			d->steps++;
			if (fwa_sim_watchdog_due(&d->sim)) {
				trial_ended(d, false);
				fwa_sim_watchdog_reset(&d->sim);
				t_close(d);
				break;
			}
			bool was_trial = d->sim.trial;
			err = fwa_agent_step(&d->agent, &st);
			d->checked_in |= st.checked_in;
			if (was_trial && !d->sim.trial && d->sim.booted) {
				trial_ended(d, true);
				d->trial_buy_ms = d->sim.bought_ms;
			}
			if (st.rebooting) {
				if (was_trial && !d->trial_end_ms)
					trial_ended(d, false);
				t_close(d);
				break;
			}
			if (d->checked_in && err == FWA_OK && st.wait_ms > 0 &&
			    fwa_agent_idle(&d->agent))
				return KIT_IDLE;
			wait = st.wait_ms;
			left = fwa_sim_watchdog_left(&d->sim);
			if (wait > left)
				wait = left;
			d->sim.vclock_ms += wait;
		}
	}
}

enum kit_result kit_run(struct kit_device *d, unsigned max_steps)
{
	jmp_buf jb;
	enum kit_result r;

	d->sim.cut_jmp = &jb;
	if (setjmp(jb)) {
		d->sim.cut_jmp = NULL;
		d->wd_jmp = NULL;
		d->sim.hang_jmp = NULL;
		return KIT_CUT;
	}
	r = run(d, max_steps);
	d->sim.cut_jmp = NULL;
	d->wd_jmp = NULL; /* run's frame is gone */
	d->sim.hang_jmp = NULL;
	return r;
}

void kit_slot_sha256(struct kit_device *d, unsigned slot, size_t len, uint8_t out[32])
{
	SHA256(d->sim.flash + SIM_SLOT0_OFF + slot * d->sim.slot_size, len, out);
}
