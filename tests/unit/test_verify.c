/*
 * test_verify.c - the shared verifier (fwa_verify) with the real OpenSSL crypto port: JSON,
 * base64, time and semver helpers, DSSE envelopes, threshold counting, TUF root rotation,
 * manifest checks and every class of malformed input. Keys are generated at run time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "fwa/crypto_openssl.h"
#include "fwa/json.h"
#include "fwa/verify.h"
#include "signer.h"

#define T_2030 1893456000 /* 2030-01-01T00:00:00Z */
#define T_2026 1767225600 /* 2026-01-01T00:00:00Z */

enum { R1, R2, R3, R4, R5, L1, L2, L3, X1, NKEYS };

static EVP_PKEY *key[NKEYS];
static uint8_t spki[NKEYS][FWA_SPKI_P256_LEN];
static char kid[NKEYS][FWA_KEYID_HEX_LEN + 1];
static const struct fwa_crypto *cr;
static struct fwa_verify_scratch scratch;
static uint8_t image[1000];
static uint8_t image_sha[32];

/* ---- Fixture helpers ---- */

static int setup_keys(void **state)
{
	(void)state;
	cr = fwa_crypto_openssl();
	for (int i = 0; i < NKEYS; i++) {
		if (ota_key_generate(&key[i]) || ota_key_spki(key[i], spki[i], NULL))
			return -1;
		ota_key_id(cr, spki[i], kid[i]);
	}
	for (size_t i = 0; i < sizeof(image); i++)
		image[i] = (uint8_t)(i * 7);
	SHA256(image, sizeof(image), image_sha);
	return 0;
}

static int teardown_keys(void **state)
{
	(void)state;
	for (int i = 0; i < NKEYS; i++)
		EVP_PKEY_free(key[i]);
	return 0;
}

/* A list of key indices, terminated by -1. */
#define K(...) ((const int[]){ __VA_ARGS__, -1 })

static unsigned klist(const int *k, EVP_PKEY **out)
{
	unsigned n = 0;
	for (; *k >= 0; k++)
		out[n++] = key[*k];
	return n;
}

static char *envelope(const char *type, const char *payload, size_t plen, const int *signers,
		      size_t *len)
{
	EVP_PKEY *ks[FWA_MAX_SIGS];
	unsigned n = klist(signers, ks);
	char *out = malloc(FWA_ENVELOPE_MAX + 1);
	const char *why;

	assert_non_null(out);
	assert_int_equal(ota_signer_envelope(type, payload, plen, ks, n, out, FWA_ENVELOPE_MAX + 1,
					     len, &why),
			 FWA_OK);
	return out;
}

static char *root_env(uint32_t version, int64_t expires, const int *rootk, unsigned rth,
		      const int *relk, unsigned lth, const int *signers, size_t *len)
{
	struct ota_root_spec r = { .version = version, .expires = expires };
	char payload[FWA_PAYLOAD_MAX];
	size_t plen;

	for (; *rootk >= 0; rootk++)
		memcpy(r.root_spki[r.nroot++], spki[*rootk], FWA_SPKI_P256_LEN);
	for (; *relk >= 0; relk++)
		memcpy(r.release_spki[r.nrelease++], spki[*relk], FWA_SPKI_P256_LEN);
	r.root_threshold = rth;
	r.release_threshold = lth;
	assert_int_equal(ota_signer_root_payload(&r, payload, sizeof(payload), &plen, NULL), FWA_OK);
	return envelope(FWA_PAYLOAD_ROOT, payload, plen, signers, len);
}

static void default_manifest(struct ota_manifest_spec *m)
{
	memset(m, 0, sizeof(*m));
	m->name = "pico-fw";
	m->version = "1.2.3";
	m->security_version = 3;
	m->nhw = 2;
	m->hw[0] = "pico2w";
	m->hw[1] = "pico2";
	m->image_size = sizeof(image);
	memcpy(m->image_sha256, image_sha, 32);
	m->format = "bin";
	m->created = T_2026;
}

static char *manifest_env(const struct ota_manifest_spec *m, const int *signers, size_t *len)
{
	char payload[FWA_PAYLOAD_MAX];
	size_t plen;

	assert_int_equal(ota_signer_manifest_payload(m, payload, sizeof(payload), &plen, NULL),
			 FWA_OK);
	return envelope(FWA_PAYLOAD_MANIFEST, payload, plen, signers, len);
}

/* The trusted root of most tests: root keys R1-R3 (2 of 3), release keys L1-L3 (2 of 3). */
static void load_root1(struct fwa_root *r)
{
	size_t len;
	const char *why = NULL;
	char *e = root_env(1, T_2030, K(R1, R2, R3), 2, K(L1, L2, L3), 2, K(R1, R2), &len);

	assert_int_equal(fwa_root_load(cr, e, len, r, &scratch, &why), FWA_OK);
	free(e);
}

/* Manifest verification against root 1 of an envelope signed by `signers`. */
static enum fwa_err verify_signed_by(const int *signers, const char **why)
{
	struct fwa_root r;
	struct fwa_manifest m;
	struct ota_manifest_spec spec;
	size_t len;

	load_root1(&r);
	default_manifest(&spec);
	char *e = manifest_env(&spec, signers, &len);
	enum fwa_err err = fwa_manifest_verify(cr, &r, e, len, &m, &scratch, why);
	free(e);
	return err;
}

/* An envelope from raw parts: signatures given as (keyid, DER) pairs. */
struct rawsig {
	const char *keyid;
	const uint8_t *sig;
	size_t len;
};

static char *raw_envelope(const char *type, const void *payload, size_t plen,
			  const struct rawsig *sigs, unsigned n, size_t *len)
{
	static char b64[FWA_ENVELOPE_MAX];
	char *out = malloc(FWA_ENVELOPE_MAX * 2);
	struct fwa_jw w;
	long bn;

	assert_non_null(out);
	bn = fwa_base64_encode(payload, plen, b64, sizeof(b64) - 1);
	assert_true(bn >= 0);
	b64[bn] = '\0';
	fwa_jw_init(&w, out, FWA_ENVELOPE_MAX * 2);
	fwa_jw_obj_open(&w);
	fwa_jw_str(&w, "payloadType", type);
	fwa_jw_str(&w, "payload", b64);
	fwa_jw_arr_open(&w, "signatures");
	for (unsigned i = 0; i < n; i++) {
		char sb[128];
		long sn = fwa_base64_encode(sigs[i].sig, sigs[i].len, sb, sizeof(sb) - 1);
		assert_true(sn >= 0);
		sb[sn] = '\0';
		fwa_jw_obj_open(&w);
		fwa_jw_str(&w, "keyid", sigs[i].keyid);
		fwa_jw_str(&w, "sig", sb);
		fwa_jw_obj_close(&w);
	}
	fwa_jw_arr_close(&w);
	fwa_jw_obj_close(&w);
	long l = fwa_jw_end(&w);
	assert_true(l > 0);
	*len = (size_t)l;
	return out;
}

static void sign_pae(int k, const char *type, const void *payload, size_t plen,
		     uint8_t sig[FWA_SIG_MAX], size_t *slen)
{
	uint8_t d[32];

	fwa_dsse_pae_digest(cr, type, payload, plen, d);
	assert_int_equal(ota_key_sign_digest(key[k], d, sig, slen), FWA_OK);
}

/* Sign an arbitrary payload (valid or not) with keys so that only decoding can fail. */
static char *signed_raw(const char *type, const char *payload, const int *signers, size_t *len)
{
	struct rawsig rs[FWA_MAX_SIGS];
	static uint8_t sigs[FWA_MAX_SIGS][FWA_SIG_MAX];
	unsigned n = 0;

	for (; *signers >= 0; signers++, n++) {
		sign_pae(*signers, type, payload, strlen(payload), sigs[n], &rs[n].len);
		rs[n].keyid = kid[*signers];
		rs[n].sig = sigs[n];
	}
	return raw_envelope(type, payload, strlen(payload), rs, n, len);
}

/* ---- JSON ---- */

static void test_json_valid(void **state)
{
	(void)state;
	static const char s[] = " {\"a\": [1, 2, {\"b\": \"x\\u00e9\\ud83d\\ude00\\n\"}], \"c\": true,"
				" \"d\": 12345, \"e\": null, \"f\": -1.5e3} ";
	struct fwa_json_tok tok[64];
	struct fwa_json j;
	char buf[32];
	size_t n;
	uint64_t v;
	bool b;

	assert_int_equal(fwa_json_parse(&j, s, strlen(s), tok, 64), FWA_OK);
	assert_int_equal(tok[0].type, FWA_JSON_OBJECT);
	assert_int_equal(tok[0].size, 5);
	int a = fwa_json_get(&j, 0, "a");
	assert_int_equal(tok[a].type, FWA_JSON_ARRAY);
	assert_int_equal(tok[a].size, 3);
	int bt = fwa_json_get(&j, fwa_json_at(&j, a, 2), "b");
	assert_int_equal(fwa_json_str(&j, bt, buf, sizeof(buf), &n), FWA_OK);
	assert_string_equal(buf, "x\xc3\xa9\xf0\x9f\x98\x80\n");
	assert_int_equal(n, 8);
	assert_true(fwa_json_str_eq(&j, bt, "x\xc3\xa9\xf0\x9f\x98\x80\n"));
	assert_false(fwa_json_str_eq(&j, bt, "x"));
	assert_int_equal(fwa_json_str(&j, bt, buf, 8, NULL), FWA_ERR_TOO_LARGE);
	assert_int_equal(fwa_json_uint(&j, fwa_json_get(&j, 0, "d"), 12344, &v), FWA_ERR_TOO_LARGE);
	assert_int_equal(fwa_json_uint(&j, fwa_json_get(&j, 0, "d"), 12345, &v), FWA_OK);
	assert_int_equal(v, 12345);
	assert_int_equal(fwa_json_uint(&j, fwa_json_get(&j, 0, "f"), UINT64_MAX, &v), FWA_ERR_MALFORMED);
	assert_int_equal(fwa_json_bool(&j, fwa_json_get(&j, 0, "c"), &b), FWA_OK);
	assert_true(b);
	assert_int_equal(fwa_json_bool(&j, fwa_json_get(&j, 0, "e"), &b), FWA_ERR_MALFORMED);
	assert_int_equal(fwa_json_get(&j, 0, "zz"), -1);
	assert_int_equal(fwa_json_get(&j, a, "a"), -1);
	assert_int_equal(fwa_json_at(&j, a, 3), -1);
	assert_int_equal(fwa_json_str(&j, -1, buf, sizeof(buf), NULL), FWA_ERR_MALFORMED);
	static const char *const allowed[] = { "a", "c", "d", "e", "f", NULL };
	static const char *const fewer[] = { "a", "c", NULL };
	assert_int_equal(fwa_json_only_keys(&j, 0, allowed), FWA_OK);
	assert_int_equal(fwa_json_only_keys(&j, 0, fewer), FWA_ERR_MALFORMED);

	static const char big[] = "18446744073709551615";
	assert_int_equal(fwa_json_parse(&j, big, strlen(big), tok, 64), FWA_OK);
	assert_int_equal(fwa_json_uint(&j, 0, UINT64_MAX, &v), FWA_OK);
	assert_true(v == UINT64_MAX);
	static const char over[] = "18446744073709551616";
	assert_int_equal(fwa_json_parse(&j, over, strlen(over), tok, 64), FWA_OK);
	assert_int_equal(fwa_json_uint(&j, 0, UINT64_MAX, &v), FWA_ERR_TOO_LARGE);
	static const char nul[] = "\"a\\u0000b\"";
	assert_int_equal(fwa_json_parse(&j, nul, strlen(nul), tok, 64), FWA_OK);
	assert_int_equal(fwa_json_str(&j, 0, buf, sizeof(buf), NULL), FWA_ERR_MALFORMED);
}

static void test_json_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", " ", "{", "}", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{'a':1}",
		"01", "1.", ".5", "-", "+1", "1e", "0x10", "NaN", "tru", "nulll", "[1] [2]", "{} x",
		"\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
		"\"\t\"", "\"\x80\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
		"{\"a\":1,\"a\":2}", "{\"a\":1,\"\\u0061\":2}", "[\"a\"\"b\"]", "{\"a\":1 \"b\":2}",
	};
	struct fwa_json_tok tok[64];
	struct fwa_json j;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum fwa_err err = fwa_json_parse(&j, bad[i], strlen(bad[i]), tok, 64);
		if (err != FWA_ERR_MALFORMED)
			fail_msg("case %zu '%s': got %d", i, bad[i], err);
	}
	/* Embedded NUL is a control character, not the end of the text. */
	assert_int_equal(fwa_json_parse(&j, "\"a\0b\"", 5, tok, 64), FWA_ERR_MALFORMED);
}

static void test_json_bounds(void **state)
{
	(void)state;
	struct fwa_json_tok tok[64];
	struct fwa_json j;
	char deep[64];

	/* Depth 16 is accepted, 17 is not. */
	memset(deep, '[', 16);
	memset(deep + 16, ']', 16);
	assert_int_equal(fwa_json_parse(&j, deep, 32, tok, 64), FWA_OK);
	memset(deep, '[', 17);
	memset(deep + 17, ']', 17);
	assert_int_equal(fwa_json_parse(&j, deep, 34, tok, 64), FWA_ERR_TOO_LARGE);
	/* Token capacity. */
	static const char arr[] = "[1,2,3,4]";
	assert_int_equal(fwa_json_parse(&j, arr, strlen(arr), tok, 5), FWA_OK);
	assert_int_equal(fwa_json_parse(&j, arr, strlen(arr), tok, 4), FWA_ERR_TOO_LARGE);
}

static void test_json_writer(void **state)
{
	(void)state;
	char buf[128];
	struct fwa_jw w;

	fwa_jw_init(&w, buf, sizeof(buf));
	fwa_jw_obj_open(&w);
	fwa_jw_str(&w, "k", "v\"\\\n\x01");
	fwa_jw_key(&w, "o");
	fwa_jw_obj_open(&w);
	fwa_jw_uint(&w, "n", 18446744073709551615ull);
	fwa_jw_obj_close(&w);
	fwa_jw_arr_open(&w, "a");
	fwa_jw_str(&w, NULL, "x");
	fwa_jw_bool(&w, NULL, false);
	fwa_jw_uint(&w, NULL, 0);
	fwa_jw_arr_close(&w);
	fwa_jw_obj_close(&w);
	long n = fwa_jw_end(&w);
	static const char want[] =
		"{\"k\":\"v\\\"\\\\\\n\\u0001\",\"o\":{\"n\":18446744073709551615},\"a\":[\"x\",false,0]}";
	assert_int_equal(n, strlen(want));
	assert_memory_equal(buf, want, (size_t)n);

	/* What the writer writes, the reader reads back. */
	struct fwa_json_tok tok[32];
	struct fwa_json j;
	char s[16];
	assert_int_equal(fwa_json_parse(&j, buf, (size_t)n, tok, 32), FWA_OK);
	assert_int_equal(fwa_json_str(&j, fwa_json_get(&j, 0, "k"), s, sizeof(s), NULL), FWA_OK);
	assert_string_equal(s, "v\"\\\n\x01");

	fwa_jw_init(&w, buf, 10);
	fwa_jw_obj_open(&w);
	fwa_jw_str(&w, "key", "a long value");
	fwa_jw_obj_close(&w);
	assert_int_equal(fwa_jw_end(&w), -1);
}

/* ---- base64, hex, time, semver ---- */

static void test_base64(void **state)
{
	(void)state;
	static const struct {
		const char *plain, *enc;
	} v[] = { { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		  { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" } };
	char enc[32];
	uint8_t dec[32];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		long n = fwa_base64_encode((const uint8_t *)v[i].plain, strlen(v[i].plain), enc,
					   sizeof(enc));
		assert_int_equal(n, strlen(v[i].enc));
		assert_memory_equal(enc, v[i].enc, (size_t)n);
		n = fwa_base64_decode(v[i].enc, strlen(v[i].enc), dec, sizeof(dec));
		assert_int_equal(n, strlen(v[i].plain));
		assert_memory_equal(dec, v[i].plain, (size_t)n);
	}
	static const char *const bad[] = { "Zg", "Zg=", "Z===", "Zg==Zg==", "Zh==", "Zm9=",
					   "Zm 9", "Zm9v\n", "Zm-v", "=Zm9", "Zm=v" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(fwa_base64_decode(bad[i], strlen(bad[i]), dec, sizeof(dec)), -1);
	assert_int_equal(fwa_base64_decode("Zm9vYmFy", 8, dec, 5), -1);
	assert_int_equal(fwa_base64_encode((const uint8_t *)"foo", 3, enc, 3), -1);
}

static void test_hex(void **state)
{
	(void)state;
	static const uint8_t in[] = { 0x00, 0x1f, 0xab, 0xff };
	uint8_t out[4];
	char hex[9];

	fwa_hex(in, 4, hex);
	assert_string_equal(hex, "001fabff");
	assert_int_equal(fwa_unhex("001FABff", 8, out), FWA_OK);
	assert_memory_equal(out, in, 4);
	assert_int_equal(fwa_unhex("001", 3, out), FWA_ERR_MALFORMED);
	assert_int_equal(fwa_unhex("0g", 2, out), FWA_ERR_MALFORMED);
}

static void test_time(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int64_t t;
	} v[] = { { "1970-01-01T00:00:00Z", 0 },
		  { "2000-02-29T12:00:00Z", 951825600 },
		  { "2026-01-01T00:00:00Z", T_2026 },
		  { "2030-01-01T00:00:00Z", T_2030 },
		  { "2038-01-19T03:14:08Z", 2147483648 },
		  { "9999-12-31T23:59:59Z", 253402300799 } };
	char out[21];
	int64_t t;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(fwa_time_parse(v[i].s, 20, &t), FWA_OK);
		assert_true(t == v[i].t);
		fwa_time_format(t, out);
		assert_string_equal(out, v[i].s);
	}
	static const char *const bad[] = {
		"2026-01-01T00:00:00", "2026-01-01 00:00:00Z", "2026-13-01T00:00:00Z",
		"2026-00-01T00:00:00Z", "2026-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
		"2026-04-31T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:60:00Z",
		"2026-01-01T00:00:60Z", "1969-12-31T23:59:59Z", "2026-01-01T00:00:00+00:00",
		"2026-1-01T00:00:00Z ", "2026-01-01t00:00:00Z", "+026-01-01T00:00:00Z",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(fwa_time_parse(bad[i], strlen(bad[i]), &t), FWA_ERR_MALFORMED);
}

static void test_semver(void **state)
{
	(void)state;
	/* SemVer 2.0.0 section 11's example, in increasing precedence. */
	static const char *const order[] = { "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
					      "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
					      "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0",
					      "10.0.0" };
	size_t n = sizeof(order) / sizeof(order[0]);

	for (size_t i = 0; i < n; i++) {
		assert_true(fwa_semver_valid(order[i], strlen(order[i])));
		for (size_t k = 0; k < n; k++) {
			int c = fwa_semver_cmp(order[i], order[k]);
			if ((i < k && c >= 0) || (i == k && c != 0) || (i > k && c <= 0))
				fail_msg("%s vs %s: %d", order[i], order[k], c);
		}
	}
	assert_int_equal(fwa_semver_cmp("1.0.0+build.1", "1.0.0+build.2"), 0);
	assert_true(fwa_semver_valid("1.0.0-x-y.0+exp.sha.5114f85", 27));
	static const char *const bad[] = { "", "1", "1.0", "v1.0.0", "01.0.0", "1.0.0-",
					   "1.0.0-01", "1.0.0+", "1.0.0-a..b", "1.0.0-a_b",
					   "1.0.0 ", "1.0.0.0", "1234567890.0.0" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (fwa_semver_valid(bad[i], strlen(bad[i])))
			fail_msg("'%s' accepted", bad[i]);
	assert_true(fwa_semver_cmp("garbage", "0.0.0") < 0);
	assert_true(fwa_semver_cmp("0.0.0", "garbage") > 0);
}

/* ---- DSSE ---- */

static void test_pae(void **state)
{
	(void)state;
	/* PAE("http://example.com/HelloWorld", "hello world") from the DSSE specification. */
	static const char pae[] = "DSSEv1 29 http://example.com/HelloWorld 11 hello world";
	uint8_t want[32], got[32];

	SHA256((const uint8_t *)pae, strlen(pae), want);
	fwa_dsse_pae_digest(cr, "http://example.com/HelloWorld", (const uint8_t *)"hello world",
			    11, got);
	assert_memory_equal(got, want, 32);
}

static void test_dsse_parse(void **state)
{
	(void)state;
	struct ota_manifest_spec m;
	size_t len;
	const char *why = NULL;

	default_manifest(&m);
	char *e = manifest_env(&m, K(L1, L2), &len);
	assert_int_equal(fwa_dsse_parse(e, len, &scratch, &why), FWA_OK);
	assert_string_equal(scratch.env.payload_type, FWA_PAYLOAD_MANIFEST);
	assert_int_equal(scratch.env.nsigs, 2);
	assert_string_equal(scratch.env.sigs[0].keyid, kid[L1]);
	assert_string_equal(scratch.env.sigs[1].keyid, kid[L2]);
	assert_true(scratch.env.payload_len > 100);
	assert_memory_equal(scratch.env.payload, "{\"_type\":\"manifest\"", 19);

	/* Every truncation of a valid envelope is refused with a reason, never a crash. */
	for (size_t n = 0; n < len - 1; n++) {
		why = NULL;
		if (fwa_dsse_parse(e, n, &scratch, &why) == FWA_OK)
			fail_msg("truncated to %zu bytes accepted", n);
		assert_non_null(why);
	}
	free(e);
}

static void test_dsse_malformed(void **state)
{
	(void)state;
	static const char good_sig[] = "MEUCIQ==";
	char keyid[65], buf[256];
	const char *why;
	static const struct {
		const char *fmt;
		enum fwa_err want;
	} cases[] = {
		{ "[]", FWA_ERR_MALFORMED },
		{ "{\"payloadType\":\"t\",\"payload\":\"e30=\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\"}],\"x\":1}", FWA_ERR_MALFORMED },
		{ "{\"payloadType\":1,\"payload\":\"e30=\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\"}]}", FWA_ERR_MALFORMED },
		{ "{\"payloadType\":\"t\",\"payload\":\"e30\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\"}]}", FWA_ERR_MALFORMED },
		{ "{\"payloadType\":\"t\",\"payload\":\"e3 0=\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\"}]}", FWA_ERR_MALFORMED },
		{ "{\"payloadType\":\"t\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\"}]}", FWA_ERR_MALFORMED },
		{ "{\"payloadType\":\"t\",\"payload\":\"e30=\",\"signatures\":[]}", FWA_ERR_MALFORMED },
		{ "{\"payloadType\":\"t\",\"payload\":\"e30=\",\"signatures\":{}}", FWA_ERR_MALFORMED },
		{ "{\"payloadType\":\"t\",\"payload\":\"e30=\",\"signatures\":[{\"keyid\":\"%s\"}]}", FWA_ERR_MALFORMED },
		{ "{\"payloadType\":\"t\",\"payload\":\"e30=\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"\"}]}", FWA_ERR_MALFORMED },
		{ "{\"payloadType\":\"t\",\"payload\":\"e30=\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\",\"k\":1}]}", FWA_ERR_MALFORMED },
		{ "{\"payloadType\":\"t\",\"payload\":\"e30=\",\"signatures\":[{\"keyid\":\"ABC\",\"sig\":\"%s\"}]}", FWA_ERR_MALFORMED },
		{ "{\"payloadType\":\"t\",\"payload\":\"e30=\",\"payload\":\"e30=\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\"}]}", FWA_ERR_MALFORMED },
		{ "{\"payloadType\":\"0123456789012345678901234567890123456789012345678901234567890123456789\",\"payload\":\"e30=\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\"}]}", FWA_ERR_TOO_LARGE },
	};

	memset(keyid, 'a', 64);
	keyid[64] = '\0';
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		int n = snprintf(buf, sizeof(buf), cases[i].fmt, keyid, good_sig);
#pragma GCC diagnostic pop
		why = NULL;
		enum fwa_err err = fwa_dsse_parse(buf, (size_t)n, &scratch, &why);
		if (err != cases[i].want)
			fail_msg("case %zu: got %d want %d (%s)", i, err, cases[i].want, why ? why : "");
		assert_non_null(why);
		assert_non_null(strstr(why, "(rule: "));
	}
	/* Uppercase hex key ids are refused: one spelling per key. */
	for (int i = 0; i < 64; i++)
		keyid[i] = 'A';
	int n = snprintf(buf, sizeof(buf),
			 "{\"payloadType\":\"t\",\"payload\":\"e30=\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\"}]}",
			 keyid, good_sig);
	assert_int_equal(fwa_dsse_parse(buf, (size_t)n, &scratch, &why), FWA_ERR_MALFORMED);
}

static void test_dsse_oversized(void **state)
{
	(void)state;
	const char *why;
	static char big[FWA_ENVELOPE_MAX + 2];
	uint8_t sig[FWA_SIG_MAX + 8];
	struct rawsig rs[FWA_MAX_SIGS + 1];
	size_t len;

	/* Envelope over 16 KiB. */
	memset(big, ' ', sizeof(big));
	big[0] = '{';
	big[sizeof(big) - 1] = '}';
	assert_int_equal(fwa_dsse_parse(big, sizeof(big), &scratch, &why), FWA_ERR_TOO_LARGE);

	/* Payload over 8 KiB (inside a 16 KiB envelope). */
	static char payload[FWA_PAYLOAD_MAX + 1];
	memset(payload, 'a', sizeof(payload));
	memset(sig, 0x30, sizeof(sig));
	rs[0] = (struct rawsig){ kid[L1], sig, 70 };
	char *e = raw_envelope("t", payload, sizeof(payload), rs, 1, &len);
	assert_int_equal(fwa_dsse_parse(e, len, &scratch, &why), FWA_ERR_TOO_LARGE);
	free(e);
	e = raw_envelope("t", payload, FWA_PAYLOAD_MAX, rs, 1, &len);
	assert_int_equal(fwa_dsse_parse(e, len, &scratch, &why), FWA_OK);
	free(e);

	/* Signature over 72 bytes. */
	rs[0].len = FWA_SIG_MAX + 1;
	e = raw_envelope("t", "{}", 2, rs, 1, &len);
	assert_int_equal(fwa_dsse_parse(e, len, &scratch, &why), FWA_ERR_TOO_LARGE);
	free(e);

	/* More than 16 signatures. */
	for (int i = 0; i <= FWA_MAX_SIGS; i++)
		rs[i] = (struct rawsig){ kid[L1], sig, 70 };
	e = raw_envelope("t", "{}", 2, rs, FWA_MAX_SIGS + 1, &len);
	assert_int_equal(fwa_dsse_parse(e, len, &scratch, &why), FWA_ERR_TOO_LARGE);
	free(e);
	e = raw_envelope("t", "{}", 2, rs, FWA_MAX_SIGS, &len);
	assert_int_equal(fwa_dsse_parse(e, len, &scratch, &why), FWA_OK);
	free(e);
}

/* ---- Manifests ---- */

static void test_manifest_valid(void **state)
{
	(void)state;
	struct fwa_root r;
	struct fwa_manifest m;
	struct ota_manifest_spec spec;
	const char *why = NULL;
	size_t len;

	load_root1(&r);
	default_manifest(&spec);
	char *e = manifest_env(&spec, K(L1, L2), &len);
	assert_int_equal(fwa_manifest_verify(cr, &r, e, len, &m, &scratch, &why), FWA_OK);
	assert_string_equal(m.name, "pico-fw");
	assert_string_equal(m.version, "1.2.3");
	assert_int_equal(m.security_version, 3);
	assert_int_equal(m.nhw, 2);
	assert_string_equal(m.hw[0], "pico2w");
	assert_string_equal(m.hw[1], "pico2");
	assert_int_equal(m.image_size, sizeof(image));
	assert_memory_equal(m.image_sha256, image_sha, 32);
	assert_string_equal(m.image_format, "bin");
	assert_true(m.created == T_2026);
	uint8_t d[32];
	SHA256(scratch.env.payload, scratch.env.payload_len, d);
	assert_memory_equal(m.digest, d, 32);

	assert_int_equal(fwa_manifest_check_target(&m, "pico2w", 3, &why), FWA_OK);
	assert_int_equal(fwa_manifest_check_image(&m, sizeof(image), image_sha, &why), FWA_OK);
	free(e);
}

static void test_manifest_tampered_payload(void **state)
{
	(void)state;
	struct fwa_root r;
	struct fwa_manifest m;
	struct ota_manifest_spec spec;
	const char *why = NULL;
	size_t len;

	load_root1(&r);
	default_manifest(&spec);
	char *e = manifest_env(&spec, K(L1, L2), &len);
	/* Flip one base64 character well inside the payload: other bytes, same signatures. */
	char *p = strstr(e, "\"payload\":\"") + 11 + 40;
	*p = *p == 'A' ? 'B' : 'A';
	assert_int_equal(fwa_manifest_verify(cr, &r, e, len, &m, &scratch, &why), FWA_ERR_THRESHOLD);
	assert_non_null(strstr(why, "rule: manifest.threshold"));
	free(e);

	/* A re-encoded payload with a higher security_version under the old signatures. */
	spec.security_version = 9;
	char payload[FWA_PAYLOAD_MAX];
	size_t plen;
	uint8_t s1[FWA_SIG_MAX], s2[FWA_SIG_MAX];
	size_t l1, l2;
	default_manifest(&spec);
	assert_int_equal(ota_signer_manifest_payload(&spec, payload, sizeof(payload), &plen, NULL), 0);
	sign_pae(L1, FWA_PAYLOAD_MANIFEST, payload, plen, s1, &l1);
	sign_pae(L2, FWA_PAYLOAD_MANIFEST, payload, plen, s2, &l2);
	spec.security_version = 9;
	assert_int_equal(ota_signer_manifest_payload(&spec, payload, sizeof(payload), &plen, NULL), 0);
	struct rawsig rs[2] = { { kid[L1], s1, l1 }, { kid[L2], s2, l2 } };
	e = raw_envelope(FWA_PAYLOAD_MANIFEST, payload, plen, rs, 2, &len);
	assert_int_equal(fwa_manifest_verify(cr, &r, e, len, &m, &scratch, &why), FWA_ERR_THRESHOLD);
	free(e);
}

static void test_manifest_tampered_signature(void **state)
{
	(void)state;
	struct fwa_root r;
	struct fwa_manifest m;
	struct ota_manifest_spec spec;
	char payload[FWA_PAYLOAD_MAX];
	uint8_t s1[FWA_SIG_MAX], s2[FWA_SIG_MAX];
	size_t plen, l1, l2, len;
	const char *why;

	load_root1(&r);
	default_manifest(&spec);
	assert_int_equal(ota_signer_manifest_payload(&spec, payload, sizeof(payload), &plen, NULL), 0);
	sign_pae(L1, FWA_PAYLOAD_MANIFEST, payload, plen, s1, &l1);
	sign_pae(L2, FWA_PAYLOAD_MANIFEST, payload, plen, s2, &l2);
	struct rawsig rs[2] = { { kid[L1], s1, l1 }, { kid[L2], s2, l2 } };
	char *e = raw_envelope(FWA_PAYLOAD_MANIFEST, payload, plen, rs, 2, &len);
	assert_int_equal(fwa_manifest_verify(cr, &r, e, len, &m, &scratch, &why), FWA_OK);
	free(e);

	/* One bit of s in the second signature; then a truncated DER; then L2's under L1's id. */
	s2[l2 - 1] ^= 0x01;
	e = raw_envelope(FWA_PAYLOAD_MANIFEST, payload, plen, rs, 2, &len);
	assert_int_equal(fwa_manifest_verify(cr, &r, e, len, &m, &scratch, &why), FWA_ERR_THRESHOLD);
	free(e);
	s2[l2 - 1] ^= 0x01;
	rs[1].len = l2 - 3;
	e = raw_envelope(FWA_PAYLOAD_MANIFEST, payload, plen, rs, 2, &len);
	assert_int_equal(fwa_manifest_verify(cr, &r, e, len, &m, &scratch, &why), FWA_ERR_THRESHOLD);
	free(e);
	rs[1] = (struct rawsig){ kid[L1], s2, l2 };
	e = raw_envelope(FWA_PAYLOAD_MANIFEST, payload, plen, rs, 2, &len);
	assert_int_equal(fwa_manifest_verify(cr, &r, e, len, &m, &scratch, &why), FWA_ERR_THRESHOLD);
	free(e);
}

static void test_manifest_thresholds(void **state)
{
	(void)state;
	const char *why = NULL;

	/* 2 of 3. */
	assert_int_equal(verify_signed_by(K(L1, L3), &why), FWA_OK);
	assert_int_equal(verify_signed_by(K(L3, L2, L1), &why), FWA_OK);
	assert_int_equal(verify_signed_by(K(L2), &why), FWA_ERR_THRESHOLD);
	/* Unknown key: counts zero. */
	assert_int_equal(verify_signed_by(K(L1, X1), &why), FWA_ERR_THRESHOLD);
	assert_int_equal(verify_signed_by(K(X1), &why), FWA_ERR_THRESHOLD);
	/* Root keys cannot sign releases. */
	assert_int_equal(verify_signed_by(K(L1, R1), &why), FWA_ERR_THRESHOLD);
	assert_int_equal(verify_signed_by(K(R1, R2, R3), &why), FWA_ERR_THRESHOLD);
	/* The same key twice counts once. */
	assert_int_equal(verify_signed_by(K(L1, L1), &why), FWA_ERR_THRESHOLD);
	assert_int_equal(verify_signed_by(K(L2, L2, L2, L2), &why), FWA_ERR_THRESHOLD);
	assert_int_equal(verify_signed_by(K(L1, L1, L2), &why), FWA_OK);

	unsigned n = 99;
	struct fwa_root r;
	struct ota_manifest_spec spec;
	size_t len;
	load_root1(&r);
	default_manifest(&spec);
	char *e = manifest_env(&spec, K(L1, L1, X1, L3, R1), &len);
	assert_int_equal(fwa_dsse_parse(e, len, &scratch, &why), FWA_OK);
	assert_int_equal(fwa_dsse_count(cr, &scratch.env, &r, &r.release, &n, &why), FWA_OK);
	assert_int_equal(n, 2);
	assert_int_equal(fwa_dsse_count(cr, &scratch.env, &r, &r.root, &n, &why), FWA_OK);
	assert_int_equal(n, 1);
	free(e);
}

static void test_manifest_target_and_image(void **state)
{
	(void)state;
	struct fwa_root r;
	struct fwa_manifest m;
	struct ota_manifest_spec spec;
	const char *why = NULL;
	uint8_t sha[32];
	size_t len;

	load_root1(&r);
	default_manifest(&spec);
	char *e = manifest_env(&spec, K(L1, L2), &len);
	assert_int_equal(fwa_manifest_verify(cr, &r, e, len, &m, &scratch, &why), FWA_OK);
	assert_int_equal(fwa_manifest_check_target(&m, "pico2", 0, &why), FWA_OK);
	assert_int_equal(fwa_manifest_check_target(&m, "rp2040", 0, &why), FWA_ERR_HW_VARIANT);
	assert_non_null(strstr(why, "rule: manifest.hw_variants"));
	assert_int_equal(fwa_manifest_check_target(&m, "pico2W", 0, &why), FWA_ERR_HW_VARIANT);
	assert_int_equal(fwa_manifest_check_target(&m, "pico2w", 4, &why), FWA_ERR_ROLLBACK);
	assert_non_null(strstr(why, "rule: manifest.security_version"));
	assert_int_equal(fwa_manifest_check_image(&m, sizeof(image) - 1, image_sha, &why),
			 FWA_ERR_IMAGE_SIZE);
	assert_non_null(strstr(why, "rule: manifest.image.size"));
	memcpy(sha, image_sha, 32);
	sha[31] ^= 0x80;
	assert_int_equal(fwa_manifest_check_image(&m, sizeof(image), sha, &why), FWA_ERR_IMAGE_HASH);
	assert_non_null(strstr(why, "rule: manifest.image.sha256"));
	free(e);
}

static void test_manifest_payload_rules(void **state)
{
	(void)state;
	static const char head[] = "{\"_type\":\"manifest\",\"spec_version\":\"1\",";
	static const char sha[] = "\"0000000000000000000000000000000000000000000000000000000000000000\"";
	static const struct {
		const char *body;
		enum fwa_err want;
		const char *rule;
	} cases[] = {
		{ "\"name\":\"a\",\"version\":\"1.0.0\",\"security_version\":1,\"hw_variants\":[\"x\"],\"image\":{\"size\":1,\"sha256\":%s,\"format\":\"bin\"},\"created\":\"2026-01-01T00:00:00Z\"}", FWA_OK, NULL },
		{ "\"name\":\"a\",\"version\":\"1.0.0\",\"security_version\":1,\"hw_variants\":[\"x\"],\"image\":{\"size\":1,\"sha256\":%s,\"format\":\"bin\"},\"created\":\"2026-01-01T00:00:00Z\",\"extra\":1}", FWA_ERR_MALFORMED, "manifest.keys" },
		{ "\"name\":\"a\",\"version\":\"1.0\",\"security_version\":1,\"hw_variants\":[\"x\"],\"image\":{\"size\":1,\"sha256\":%s,\"format\":\"bin\"},\"created\":\"2026-01-01T00:00:00Z\"}", FWA_ERR_MALFORMED, "manifest.version" },
		{ "\"name\":\"a b\",\"version\":\"1.0.0\",\"security_version\":1,\"hw_variants\":[\"x\"],\"image\":{\"size\":1,\"sha256\":%s,\"format\":\"bin\"},\"created\":\"2026-01-01T00:00:00Z\"}", FWA_ERR_MALFORMED, "manifest.name" },
		{ "\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"version\":\"1.0.0\",\"security_version\":1,\"hw_variants\":[\"x\"],\"image\":{\"size\":1,\"sha256\":%s,\"format\":\"bin\"},\"created\":\"2026-01-01T00:00:00Z\"}", FWA_ERR_TOO_LARGE, "manifest.name" },
		{ "\"name\":\"a\",\"version\":\"1.0.0\",\"security_version\":-1,\"hw_variants\":[\"x\"],\"image\":{\"size\":1,\"sha256\":%s,\"format\":\"bin\"},\"created\":\"2026-01-01T00:00:00Z\"}", FWA_ERR_MALFORMED, "manifest.security_version" },
		{ "\"name\":\"a\",\"version\":\"1.0.0\",\"security_version\":4294967296,\"hw_variants\":[\"x\"],\"image\":{\"size\":1,\"sha256\":%s,\"format\":\"bin\"},\"created\":\"2026-01-01T00:00:00Z\"}", FWA_ERR_MALFORMED, "manifest.security_version" },
		{ "\"name\":\"a\",\"version\":\"1.0.0\",\"security_version\":1,\"hw_variants\":[],\"image\":{\"size\":1,\"sha256\":%s,\"format\":\"bin\"},\"created\":\"2026-01-01T00:00:00Z\"}", FWA_ERR_MALFORMED, "manifest.hw_variants" },
		{ "\"name\":\"a\",\"version\":\"1.0.0\",\"security_version\":1,\"hw_variants\":[\"x\",\"x\"],\"image\":{\"size\":1,\"sha256\":%s,\"format\":\"bin\"},\"created\":\"2026-01-01T00:00:00Z\"}", FWA_ERR_MALFORMED, "manifest.hw_variants" },
		{ "\"name\":\"a\",\"version\":\"1.0.0\",\"security_version\":1,\"hw_variants\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"],\"image\":{\"size\":1,\"sha256\":%s,\"format\":\"bin\"},\"created\":\"2026-01-01T00:00:00Z\"}", FWA_ERR_TOO_LARGE, "manifest.hw_variants" },
		{ "\"name\":\"a\",\"version\":\"1.0.0\",\"security_version\":1,\"hw_variants\":[\"x\"],\"image\":{\"size\":0,\"sha256\":%s,\"format\":\"bin\"},\"created\":\"2026-01-01T00:00:00Z\"}", FWA_ERR_MALFORMED, "manifest.image.size" },
		{ "\"name\":\"a\",\"version\":\"1.0.0\",\"security_version\":1,\"hw_variants\":[\"x\"],\"image\":{\"size\":9007199254740992,\"sha256\":%s,\"format\":\"bin\"},\"created\":\"2026-01-01T00:00:00Z\"}", FWA_ERR_TOO_LARGE, "manifest.image.size" },
		{ "\"name\":\"a\",\"version\":\"1.0.0\",\"security_version\":1,\"hw_variants\":[\"x\"],\"image\":{\"size\":1,\"sha256\":\"00\",\"format\":\"bin\"},\"created\":\"2026-01-01T00:00:00Z\"}%s", FWA_ERR_MALFORMED, "manifest.image.sha256" },
		{ "\"name\":\"a\",\"version\":\"1.0.0\",\"security_version\":1,\"hw_variants\":[\"x\"],\"image\":{\"size\":1,\"sha256\":%s},\"created\":\"2026-01-01T00:00:00Z\"}", FWA_ERR_MALFORMED, "manifest.image.format" },
		{ "\"name\":\"a\",\"version\":\"1.0.0\",\"security_version\":1,\"hw_variants\":[\"x\"],\"image\":{\"size\":1,\"sha256\":%s,\"format\":\"bin\"},\"created\":\"2026-01-01\"}", FWA_ERR_MALFORMED, "manifest.created" },
		{ "\"name\":\"a\",\"version\":\"1.0.0\",\"security_version\":1,\"hw_variants\":[\"x\"],\"image\":{\"size\":1,\"sha256\":%s,\"format\":\"bin\"}}", FWA_ERR_MALFORMED, "manifest.created" },
	};
	struct fwa_manifest m;
	char buf[1024];
	const char *why;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = snprintf(buf, sizeof(buf), "%s", head);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, cases[i].body, sha);
#pragma GCC diagnostic pop
		if (strstr(cases[i].body, "}%s"))
			buf[n - (int)strlen(sha)] = '\0', n -= (int)strlen(sha);
		why = NULL;
		enum fwa_err err = fwa_manifest_decode(cr, (const uint8_t *)buf, (size_t)n, &m,
						       &scratch, &why);
		if (err != cases[i].want)
			fail_msg("case %zu: got %d want %d (%s)", i, err, cases[i].want, why ? why : "");
		if (cases[i].rule && (!why || !strstr(why, cases[i].rule)))
			fail_msg("case %zu: reason '%s' lacks %s", i, why ? why : "", cases[i].rule);
	}
	static const char v2[] = "{\"_type\":\"manifest\",\"spec_version\":\"2\"}";
	assert_int_equal(fwa_manifest_decode(cr, (const uint8_t *)v2, strlen(v2), &m, &scratch, &why),
			 FWA_ERR_SPEC_VERSION);
	static const char rt[] = "{\"_type\":\"root\",\"spec_version\":\"1\"}";
	assert_int_equal(fwa_manifest_decode(cr, (const uint8_t *)rt, strlen(rt), &m, &scratch, &why),
			 FWA_ERR_MALFORMED);
}

static void test_manifest_signed_garbage(void **state)
{
	(void)state;
	struct fwa_root r;
	struct fwa_manifest m;
	const char *why;
	size_t len;

	load_root1(&r);
	/* Signed by enough keys: the payload rules decide. */
	char *e = signed_raw(FWA_PAYLOAD_MANIFEST, "{\"_type\":\"manifest\"", K(L1, L2), &len);
	assert_int_equal(fwa_manifest_verify(cr, &r, e, len, &m, &scratch, &why), FWA_ERR_MALFORMED);
	assert_non_null(strstr(why, "manifest.json"));
	free(e);
	/* Not signed by enough keys: the payload is never parsed. */
	e = signed_raw(FWA_PAYLOAD_MANIFEST, "{\"_type\":\"manifest\"", K(L1), &len);
	assert_int_equal(fwa_manifest_verify(cr, &r, e, len, &m, &scratch, &why), FWA_ERR_THRESHOLD);
	free(e);
}

static void test_payload_type(void **state)
{
	(void)state;
	struct fwa_root r, next;
	struct fwa_manifest m;
	struct ota_manifest_spec spec;
	const char *why;
	size_t len;

	load_root1(&r);
	/* A root where a manifest is expected, and the reverse. */
	char *e = root_env(2, T_2030, K(R1, R2, R3), 2, K(L1, L2, L3), 2, K(R1, R2), &len);
	assert_int_equal(fwa_manifest_verify(cr, &r, e, len, &m, &scratch, &why), FWA_ERR_PAYLOAD_TYPE);
	assert_non_null(strstr(why, "dsse.payloadType"));
	free(e);
	default_manifest(&spec);
	e = manifest_env(&spec, K(R1, R2), &len);
	assert_int_equal(fwa_root_update(cr, &r, e, len, &next, &scratch, &why), FWA_ERR_PAYLOAD_TYPE);
	assert_int_equal(fwa_root_load(cr, e, len, &next, &scratch, &why), FWA_ERR_PAYLOAD_TYPE);
	free(e);
	e = signed_raw("application/json", "{}", K(L1, L2), &len);
	assert_int_equal(fwa_manifest_verify(cr, &r, e, len, &m, &scratch, &why), FWA_ERR_PAYLOAD_TYPE);
	free(e);
}

/* ---- Roots ---- */

static void test_root_load(void **state)
{
	(void)state;
	struct fwa_root r;
	const char *why = NULL;
	size_t len;

	load_root1(&r);
	assert_int_equal(r.version, 1);
	assert_true(r.expires == T_2030);
	assert_int_equal(r.nkeys, 6);
	assert_int_equal(r.root.nkeys, 3);
	assert_int_equal(r.root.threshold, 2);
	assert_int_equal(r.release.nkeys, 3);
	assert_int_equal(r.release.threshold, 2);
	assert_string_equal(r.keys[r.release.key[2]].id, kid[L3]);
	assert_memory_equal(r.keys[r.root.key[0]].spki, spki[R1], FWA_SPKI_P256_LEN);

	/* Self-signed below its own root threshold, or by release keys. */
	char *e = root_env(1, T_2030, K(R1, R2, R3), 2, K(L1, L2, L3), 2, K(R1, L1, L2), &len);
	assert_int_equal(fwa_root_load(cr, e, len, &r, &scratch, &why), FWA_ERR_THRESHOLD);
	assert_non_null(strstr(why, "root.threshold.self"));
	free(e);
}

static void test_root_expiry(void **state)
{
	(void)state;
	struct fwa_root r;
	const char *why = NULL;

	load_root1(&r);
	assert_int_equal(fwa_root_check_expiry(&r, T_2030 - 1, &why), FWA_OK);
	assert_int_equal(fwa_root_check_expiry(&r, T_2030, &why), FWA_ERR_EXPIRED);
	assert_non_null(strstr(why, "rule: root.expires"));
	assert_int_equal(fwa_root_check_expiry(&r, T_2030 + 86400 * 365, &why), FWA_ERR_EXPIRED);
}

static void test_root_rotation(void **state)
{
	(void)state;
	struct fwa_root r1, r2, r3, bad;
	struct fwa_manifest m;
	struct ota_manifest_spec spec;
	const char *why = NULL;
	size_t len;

	load_root1(&r1);
	/* 1 -> 2: root keys R1, R4, R5 (2 of 3); signed by R1, R2 (old) and R4 (new, with R1). */
	char *e = root_env(2, T_2030, K(R1, R4, R5), 2, K(L1, L2, L3), 2, K(R1, R2, R4), &len);
	assert_int_equal(fwa_root_update(cr, &r1, e, len, &r2, &scratch, &why), FWA_OK);
	assert_int_equal(r2.version, 2);
	free(e);
	/* 2 -> 3: revoke L3, release threshold 2 of 2; signed by R4, R5. */
	e = root_env(3, T_2030, K(R1, R4, R5), 2, K(L1, L2), 2, K(R4, R5), &len);
	assert_int_equal(fwa_root_update(cr, &r2, e, len, &r3, &scratch, &why), FWA_OK);
	assert_int_equal(r3.version, 3);
	assert_int_equal(r3.release.nkeys, 2);
	free(e);
	/* The revoked key no longer counts. */
	default_manifest(&spec);
	e = manifest_env(&spec, K(L1, L3), &len);
	assert_int_equal(fwa_manifest_verify(cr, &r1, e, len, &m, &scratch, &why), FWA_OK);
	assert_int_equal(fwa_manifest_verify(cr, &r3, e, len, &m, &scratch, &why), FWA_ERR_THRESHOLD);
	free(e);
	e = manifest_env(&spec, K(L1, L2), &len);
	assert_int_equal(fwa_manifest_verify(cr, &r3, e, len, &m, &scratch, &why), FWA_OK);
	free(e);

	/* Signed only by the new keys: a stolen-root attempt. */
	e = root_env(2, T_2030, K(R4, R5), 2, K(X1), 1, K(R4, R5), &len);
	assert_int_equal(fwa_root_update(cr, &r1, e, len, &bad, &scratch, &why), FWA_ERR_THRESHOLD);
	assert_non_null(strstr(why, "root.threshold.previous"));
	free(e);
	/* Signed by the old keys only, not by a threshold of its own. */
	e = root_env(2, T_2030, K(R4, R5), 2, K(L1), 1, K(R1, R2), &len);
	assert_int_equal(fwa_root_update(cr, &r1, e, len, &bad, &scratch, &why), FWA_ERR_THRESHOLD);
	assert_non_null(strstr(why, "root.threshold.self"));
	free(e);
	/* Old threshold not met (one old key), new one met. */
	e = root_env(2, T_2030, K(R1, R4, R5), 2, K(L1), 1, K(R1, R4, R5), &len);
	assert_int_equal(fwa_root_update(cr, &r1, e, len, &bad, &scratch, &why), FWA_ERR_THRESHOLD);
	free(e);
	/* Skipped version, and a replay of the same version, and an older one. */
	e = root_env(3, T_2030, K(R1, R2, R3), 2, K(L1), 1, K(R1, R2), &len);
	assert_int_equal(fwa_root_update(cr, &r1, e, len, &bad, &scratch, &why), FWA_ERR_ROOT_VERSION);
	assert_non_null(strstr(why, "rule: root.version"));
	free(e);
	e = root_env(1, T_2030, K(R1, R2, R3), 2, K(L1), 1, K(R1, R2), &len);
	assert_int_equal(fwa_root_update(cr, &r1, e, len, &bad, &scratch, &why), FWA_ERR_ROOT_VERSION);
	free(e);
	e = root_env(1, T_2030, K(R1, R4, R5), 2, K(L1), 1, K(R4, R5), &len);
	assert_int_equal(fwa_root_update(cr, &r2, e, len, &bad, &scratch, &why), FWA_ERR_ROOT_VERSION);
	free(e);
	/* Expired intermediate roots are walked through; only the newest is checked by callers. */
	e = root_env(2, T_2026, K(R1, R2, R3), 2, K(L1), 1, K(R1, R2), &len);
	assert_int_equal(fwa_root_update(cr, &r1, e, len, &bad, &scratch, &why), FWA_OK);
	assert_int_equal(fwa_root_check_expiry(&bad, T_2026 + 1, &why), FWA_ERR_EXPIRED);
	free(e);
}

/* A root payload with one field replaced, signed by R1 and R2. */
static enum fwa_err root_payload_case(const char *payload, const char **why)
{
	struct fwa_root r;
	size_t len;
	char *e = signed_raw(FWA_PAYLOAD_ROOT, payload, K(R1, R2), &len);
	enum fwa_err err = fwa_root_load(cr, e, len, &r, &scratch, why);
	free(e);
	return err;
}

static char *b64(const uint8_t *d, size_t n)
{
	static char out[4][256];
	static int i;
	char *o = out[i++ % 4];
	long l = fwa_base64_encode(d, n, o, 255);
	o[l] = '\0';
	return o;
}

static void test_root_payload_rules(void **state)
{
	(void)state;
	char buf[4096];
	const char *why = NULL;
	char *k1 = b64(spki[R1], FWA_SPKI_P256_LEN);
	char *k2 = b64(spki[R2], FWA_SPKI_P256_LEN);
	char *l1 = b64(spki[L1], FWA_SPKI_P256_LEN);

#define ROOT_FMT(keys, roles)                                                                  \
	"{\"_type\":\"root\",\"spec_version\":\"1\",\"version\":1,\"expires\":\"2030-01-01T00:00:00Z\"," \
	"\"keys\":" keys ",\"roles\":" roles "}"
#define KEY(id, pub) "\"" id "\":{\"keytype\":\"ecdsa-p256\",\"public\":\"" pub "\"}"
#define KEYS3 "{" KEY("%s", "%s") "," KEY("%s", "%s") "," KEY("%s", "%s") "}"
#define ROLES(rth, lth) \
	"{\"root\":{\"keyids\":[\"%s\",\"%s\"],\"threshold\":" rth "},\"release\":{\"keyids\":[\"%s\"],\"threshold\":" lth "}}"

	snprintf(buf, sizeof(buf), ROOT_FMT(KEYS3, ROLES("2", "1")), kid[R1], k1, kid[R2], k2,
		 kid[L1], l1, kid[R1], kid[R2], kid[L1]);
	assert_int_equal(root_payload_case(buf, &why), FWA_OK);
	/* Threshold 0 and above the key count. */
	snprintf(buf, sizeof(buf), ROOT_FMT(KEYS3, ROLES("2", "0")), kid[R1], k1, kid[R2], k2,
		 kid[L1], l1, kid[R1], kid[R2], kid[L1]);
	assert_int_equal(root_payload_case(buf, &why), FWA_ERR_MALFORMED);
	assert_non_null(strstr(why, "root.roles.threshold"));
	snprintf(buf, sizeof(buf), ROOT_FMT(KEYS3, ROLES("3", "1")), kid[R1], k1, kid[R2], k2,
		 kid[L1], l1, kid[R1], kid[R2], kid[L1]);
	assert_int_equal(root_payload_case(buf, &why), FWA_ERR_MALFORMED);
	/* A key id that is not the key's SHA-256. */
	snprintf(buf, sizeof(buf), ROOT_FMT(KEYS3, ROLES("2", "1")), kid[R1], k1, kid[R2], k2,
		 kid[X1], l1, kid[R1], kid[R2], kid[X1]);
	assert_int_equal(root_payload_case(buf, &why), FWA_ERR_KEY);
	assert_non_null(strstr(why, "root.keys.keyid"));
	/* A role naming an unlisted key, and a key holding both roles. */
	snprintf(buf, sizeof(buf), ROOT_FMT(KEYS3, ROLES("2", "1")), kid[R1], k1, kid[R2], k2,
		 kid[L1], l1, kid[R1], kid[R2], kid[L2]);
	assert_int_equal(root_payload_case(buf, &why), FWA_ERR_KEY);
	snprintf(buf, sizeof(buf), ROOT_FMT(KEYS3, ROLES("2", "1")), kid[R1], k1, kid[R2], k2,
		 kid[L1], l1, kid[R1], kid[R2], kid[R1]);
	assert_int_equal(root_payload_case(buf, &why), FWA_ERR_KEY);
	assert_non_null(strstr(why, "root.roles.separation"));
	/* The same key id twice in a role. */
	snprintf(buf, sizeof(buf), ROOT_FMT(KEYS3, ROLES("2", "1")), kid[R1], k1, kid[R2], k2,
		 kid[L1], l1, kid[R1], kid[R1], kid[L1]);
	assert_int_equal(root_payload_case(buf, &why), FWA_ERR_MALFORMED);
	/* Unknown member, spec version 2, version 0. */
	static const char *const variants[][2] = {
		{ "\"version\":1,", "\"version\":1,\"consistent_snapshot\":true," },
		{ "\"spec_version\":\"1\"", "\"spec_version\":\"2\"" },
		{ "\"version\":1,", "\"version\":0," },
		{ "\"expires\":\"2030-01-01T00:00:00Z\"", "\"expires\":1893456000" },
		{ "\"keytype\":\"ecdsa-p256\"", "\"keytype\":\"ed25519\"" },
	};
	static const enum fwa_err want[] = { FWA_ERR_MALFORMED, FWA_ERR_SPEC_VERSION,
					     FWA_ERR_MALFORMED, FWA_ERR_MALFORMED, FWA_ERR_KEY };
	char good[4096];
	snprintf(good, sizeof(good), ROOT_FMT(KEYS3, ROLES("2", "1")), kid[R1], k1, kid[R2], k2,
		 kid[L1], l1, kid[R1], kid[R2], kid[L1]);
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		char *at = strstr(good, variants[i][0]);
		assert_non_null(at);
		snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - good), good, variants[i][1],
			 at + strlen(variants[i][0]));
		enum fwa_err err = root_payload_case(buf, &why);
		if (err != want[i])
			fail_msg("variant %zu: got %d want %d (%s)", i, err, want[i], why);
	}
}

/* Wrong curves: a P-384 key listed as a root key, and one presented to the key helpers. */
static void test_wrong_curve(void **state)
{
	(void)state;
	EVP_PKEY *p384 = EVP_EC_gen("P-384");
	unsigned char *der = NULL;
	uint8_t out[FWA_SPKI_P256_LEN], d[32];
	char buf[4096], id[65];
	const char *why = NULL;
	int n;

	assert_non_null(p384);
	assert_int_equal(ota_key_spki(p384, out, &why), FWA_ERR_KEY);
	n = i2d_PUBKEY(p384, &der);
	assert_true(n > 91);
	SHA256(der, (size_t)n, d);
	fwa_hex(d, 32, id);
	snprintf(buf, sizeof(buf),
		 "{\"_type\":\"root\",\"spec_version\":\"1\",\"version\":1,\"expires\":\"2030-01-01T00:00:00Z\","
		 "\"keys\":{\"%s\":{\"keytype\":\"ecdsa-p256\",\"public\":\"%s\"},\"%s\":{\"keytype\":\"ecdsa-p256\",\"public\":\"%s\"}},"
		 "\"roles\":{\"root\":{\"keyids\":[\"%s\"],\"threshold\":1},\"release\":{\"keyids\":[\"%s\"],\"threshold\":1}}}",
		 id, b64(der, (size_t)n), kid[L1], b64(spki[L1], FWA_SPKI_P256_LEN), id, kid[L1]);
	assert_int_equal(root_payload_case(buf, &why), FWA_ERR_KEY);
	assert_non_null(strstr(why, "root.keys.public"));
	/* The port itself refuses a non-P-256 SPKI even if it were handed one. */
	uint8_t fake[FWA_SPKI_P256_LEN];
	memcpy(fake, der, sizeof(fake));
	assert_int_equal(cr->p256_verify(fake, d, (const uint8_t *)"\x30\x06\x02\x01\x01\x02\x01\x01", 8),
			 FWA_ERR_KEY);
	/* A P-256 SPKI whose point is not on the curve: the port says KEY. */
	memcpy(fake, spki[L1], sizeof(fake));
	fake[90] ^= 0x01;
	assert_int_equal(cr->p256_verify(fake, d, (const uint8_t *)"\x30\x06\x02\x01\x01\x02\x01\x01", 8),
			 FWA_ERR_KEY);
	OPENSSL_free(der);
	EVP_PKEY_free(p384);
}

static void test_strerror(void **state)
{
	(void)state;
	for (int e = 0; e < FWA_ERR__COUNT; e++)
		assert_true(strlen(fwa_strerror((enum fwa_err)e)) > 1);
	assert_string_equal(fwa_strerror(FWA_ERR__COUNT), "unknown error");
	assert_string_equal(fwa_strerror((enum fwa_err)-1), "unknown error");
	assert_string_equal(fwa_strerror(FWA_ERR_THRESHOLD), "signature threshold not met");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_valid),
		cmocka_unit_test(test_json_malformed),
		cmocka_unit_test(test_json_bounds),
		cmocka_unit_test(test_json_writer),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_semver),
		cmocka_unit_test(test_pae),
		cmocka_unit_test(test_dsse_parse),
		cmocka_unit_test(test_dsse_malformed),
		cmocka_unit_test(test_dsse_oversized),
		cmocka_unit_test(test_manifest_valid),
		cmocka_unit_test(test_manifest_tampered_payload),
		cmocka_unit_test(test_manifest_tampered_signature),
		cmocka_unit_test(test_manifest_thresholds),
		cmocka_unit_test(test_manifest_target_and_image),
		cmocka_unit_test(test_manifest_payload_rules),
		cmocka_unit_test(test_manifest_signed_garbage),
		cmocka_unit_test(test_payload_type),
		cmocka_unit_test(test_root_load),
		cmocka_unit_test(test_root_expiry),
		cmocka_unit_test(test_root_rotation),
		cmocka_unit_test(test_root_payload_rules),
		cmocka_unit_test(test_wrong_curve),
		cmocka_unit_test(test_strerror),
	};
	return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
