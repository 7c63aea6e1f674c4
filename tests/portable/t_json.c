/*
 * Portable tests of the core's JSON tokenizer and writer: strict RFC 8259 syntax, duplicate
 * keys, bounds, getters, unescaping, and the bounded writer's escaping and overflow.
 */
#include <string.h>

#include "ptest.h"

static struct fwa_json_tok tok[64];

static enum fwa_err parse(struct fwa_json *j, const char *s)
{
	return fwa_json_parse(j, s, strlen(s), tok, sizeof tok / sizeof tok[0]);
}

static void accepts_valid_documents(const struct ptest_kit *kit)
{
	static const char *const ok[] = {
	    "{}",
	    "[]",
	    "0",
	    "-0",
	    "1.5e-3",
	    "-12E+4",
	    "\"\"",
	    "true",
	    "false",
	    "null",
	    " \t\r\n{ \"a\" : [ 1 , 2 , { } ] } \n",
	    "[\"\\u00e9\\ud83d\\ude00\\n\\/\"]",
	    "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"",
	    "{\"a\":{\"a\":1}}",
	};
	(void)kit;
	for (unsigned i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct fwa_json j;
		if (!PT_OK(parse(&j, ok[i]))) {
			ptest_out("    input: ");
			ptest_out(ok[i]);
			ptest_out("\n");
		}
	}
}

static void rejects_malformed(const struct ptest_kit *kit)
{
	static const char *const bad[] = {
	    "",
	    " ",
	    "{",
	    "}",
	    "[1,]",
	    "[,1]",
	    "{\"a\":1,}",
	    "{\"a\" 1}",
	    "{a:1}",
	    "{'a':1}",
	    "01",
	    "1.",
	    ".5",
	    "+1",
	    "-",
	    "1e",
	    "0x10",
	    "NaN",
	    "tru",
	    "nul",
	    "True",
	    "\"unterminated",
	    "\"tab\there\"",
	    "\"\\x\"",
	    "\"\\u12\"",
	    "\"\\udc00\"",
	    "\"\\ud800\"",
	    "\"\\ud800\\u0041\"",
	    "\"\xc0\xaf\"",
	    "\"\xed\xa0\x80\"",
	    "\"\xff\"",
	    "{} {}",
	    "[1] x",
	    "/* c */ 1",
	    "{\"a\":1,\"a\":2}",
	    "{\"a\":1,\"\\u0061\":2}",
	    "{\"k\":{\"x\":1,\"y\":2,\"x\":3}}",
	    "[1] [2]",
	    "{} x",
	    "nulll",
	    "\"\x80\"",             /* a continuation byte alone */
	    "\"\xf4\x90\x80\x80\"", /* above U+10FFFF */
	    "[\"a\"\"b\"]",
	    "{\"a\":1 \"b\":2}",
	};
	(void)kit;
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct fwa_json j;
		if (!PT_ERR(parse(&j, bad[i]), FWA_ERR_MALFORMED)) {
			ptest_out("    input: ");
			ptest_out(bad[i]);
			ptest_out("\n");
		}
	}
	/* A NUL after the document is a trailing byte too; inside a string, a control character. */
	struct fwa_json j;
	PT_ERR(fwa_json_parse(&j, "{\"a\":1}", 8, tok, 8), FWA_ERR_MALFORMED);
	PT_ERR(fwa_json_parse(&j, "\"a\0b\"", 5, tok, 8), FWA_ERR_MALFORMED);
}

static void bounds_depth_and_tokens(const struct ptest_kit *kit)
{
	char deep[2 * (FWA_JSON_MAX_DEPTH + 1) + 1];
	struct fwa_json j;
	(void)kit;
	for (unsigned d = FWA_JSON_MAX_DEPTH; d <= FWA_JSON_MAX_DEPTH + 1; d++) {
		memset(deep, '[', d);
		memset(deep + d, ']', d);
		deep[2 * d] = '\0';
		PT_ERR(parse(&j, deep), d <= FWA_JSON_MAX_DEPTH ? FWA_OK : FWA_ERR_TOO_LARGE);
	}
	/* [1,1,1,1] is five tokens. */
	PT_OK(fwa_json_parse(&j, "[1,1,1,1]", 9, tok, 5));
	PT_EQ(j.ntok, 5);
	PT_ERR(fwa_json_parse(&j, "[1,1,1,1]", 9, tok, 4), FWA_ERR_TOO_LARGE);
}

static void getters(const struct ptest_kit *kit)
{
	struct fwa_json j;
	char s[16];
	size_t n = 0;
	uint64_t u = 0;
	bool b = false;
	(void)kit;
	PT_REQUIRE_OK(parse(&j, "{\"name\":\"a\\\"b\\u00e9\",\"n\":42,\"big\":18446744073709551615,"
	                        "\"neg\":-1,\"f\":1.0,\"e\":1e3,\"t\":true,\"arr\":[10,[20],30],"
	                        "\"o\":{\"x\":null}}"));
	PT_EQ(tok[0].type, FWA_JSON_OBJECT);
	PT_EQ(tok[0].size, 9);
	int t = fwa_json_get(&j, 0, "name");
	PT_OK(fwa_json_str(&j, t, s, sizeof s, &n));
	PT_STR(s, "a\"b\xc3\xa9");
	PT_EQ(n, 5);
	PT_CHECK(fwa_json_str_eq(&j, t, "a\"b\xc3\xa9"));
	PT_CHECK(!fwa_json_str_eq(&j, t, "a\"b"));
	PT_ERR(fwa_json_str(&j, t, s, 5, NULL), FWA_ERR_TOO_LARGE);
	PT_OK(fwa_json_str(&j, t, s, 6, NULL));

	PT_OK(fwa_json_uint(&j, fwa_json_get(&j, 0, "n"), 100, &u));
	PT_EQ(u, 42);
	PT_ERR(fwa_json_uint(&j, fwa_json_get(&j, 0, "n"), 41, &u), FWA_ERR_TOO_LARGE);
	PT_OK(fwa_json_uint(&j, fwa_json_get(&j, 0, "big"), UINT64_MAX, &u));
	PT_CHECK(u == UINT64_MAX);
	PT_ERR(fwa_json_uint(&j, fwa_json_get(&j, 0, "neg"), 100, &u), FWA_ERR_MALFORMED);
	PT_ERR(fwa_json_uint(&j, fwa_json_get(&j, 0, "f"), 100, &u), FWA_ERR_MALFORMED);
	PT_ERR(fwa_json_uint(&j, fwa_json_get(&j, 0, "e"), 10000, &u), FWA_ERR_MALFORMED);
	PT_ERR(fwa_json_uint(&j, fwa_json_get(&j, 0, "name"), 100, &u), FWA_ERR_MALFORMED);
	PT_OK(fwa_json_bool(&j, fwa_json_get(&j, 0, "t"), &b));
	PT_CHECK(b);
	PT_ERR(fwa_json_bool(&j, fwa_json_get(&j, 0, "n"), &b), FWA_ERR_MALFORMED);
	PT_ERR(fwa_json_bool(&j, fwa_json_get(&j, fwa_json_get(&j, 0, "o"), "x"), &b),
	       FWA_ERR_MALFORMED);
	PT_ERR(fwa_json_str(&j, -1, s, sizeof s, NULL), FWA_ERR_MALFORMED);

	int arr = fwa_json_get(&j, 0, "arr");
	PT_OK(fwa_json_uint(&j, fwa_json_at(&j, arr, 2), 100, &u));
	PT_EQ(u, 30); /* skips the nested array */
	PT_EQ(fwa_json_at(&j, arr, 3), -1);
	PT_EQ(fwa_json_at(&j, 0, 0), -1); /* not an array */
	PT_EQ(fwa_json_get(&j, 0, "missing"), -1);
	PT_EQ(fwa_json_get(&j, arr, "x"), -1); /* not an object */
	int o = fwa_json_get(&j, 0, "o");
	PT_EQ(tok[fwa_json_get(&j, o, "x")].type, FWA_JSON_NULL);
	PT_EQ(fwa_json_get(&j, -1, "x"), -1);
	PT_EQ(fwa_json_get(&j, 1000, "x"), -1);
	/* A value that happens to equal a key is not a key. */
	PT_EQ(fwa_json_get(&j, 0, "a\"b\xc3\xa9"), -1);

	/* One more than UINT64_MAX is too large, not wrapped. */
	PT_REQUIRE_OK(parse(&j, "18446744073709551616"));
	PT_ERR(fwa_json_uint(&j, 0, UINT64_MAX, &u), FWA_ERR_TOO_LARGE);
}

static void str_refuses_nul(const struct ptest_kit *kit)
{
	struct fwa_json j;
	char s[8];
	(void)kit;
	PT_REQUIRE_OK(parse(&j, "\"a\\u0000b\""));
	PT_ERR(fwa_json_str(&j, 0, s, sizeof s, NULL), FWA_ERR_MALFORMED);
	PT_CHECK(!fwa_json_str_eq(&j, 0, "a"));
}

static void only_keys(const struct ptest_kit *kit)
{
	static const char *const allowed[] = {"a", "b", NULL};
	struct fwa_json j;
	(void)kit;
	PT_REQUIRE_OK(parse(&j, "{\"a\":1,\"b\":2}"));
	PT_OK(fwa_json_only_keys(&j, 0, allowed));
	PT_REQUIRE_OK(parse(&j, "{\"a\":1,\"c\":2}"));
	PT_ERR(fwa_json_only_keys(&j, 0, allowed), FWA_ERR_MALFORMED);
	PT_REQUIRE_OK(parse(&j, "{}"));
	PT_OK(fwa_json_only_keys(&j, 0, allowed));
	PT_REQUIRE_OK(parse(&j, "[]"));
	PT_ERR(fwa_json_only_keys(&j, 0, allowed), FWA_ERR_MALFORMED);
}

static void writer_round_trip(const struct ptest_kit *kit)
{
	char buf[160], s[32];
	struct fwa_jw w;
	struct fwa_json j;
	uint64_t u = 0;
	bool b = true;
	(void)kit;
	fwa_jw_init(&w, buf, sizeof buf);
	fwa_jw_obj_open(&w);
	fwa_jw_str(&w, "s", "q\"b\\n\nc\x01");
	fwa_jw_uint(&w, "u", UINT64_MAX);
	fwa_jw_uint(&w, "z", 0);
	fwa_jw_bool(&w, "b", false);
	fwa_jw_arr_open(&w, "a");
	fwa_jw_str(&w, NULL, "x");
	fwa_jw_uint(&w, NULL, 7);
	fwa_jw_arr_close(&w);
	fwa_jw_key(&w, "o");
	fwa_jw_obj_open(&w);
	fwa_jw_obj_close(&w);
	fwa_jw_obj_close(&w);
	long n = fwa_jw_end(&w);
	PT_REQUIRE(n > 0);
	PT_REQUIRE_OK(fwa_json_parse(&j, buf, (size_t)n, tok, sizeof tok / sizeof tok[0]));
	PT_OK(fwa_json_str(&j, fwa_json_get(&j, 0, "s"), s, sizeof s, NULL));
	PT_STR(s, "q\"b\\n\nc\x01");
	PT_OK(fwa_json_uint(&j, fwa_json_get(&j, 0, "u"), UINT64_MAX, &u));
	PT_CHECK(u == UINT64_MAX);
	PT_OK(fwa_json_uint(&j, fwa_json_get(&j, 0, "z"), 0, &u));
	PT_OK(fwa_json_bool(&j, fwa_json_get(&j, 0, "b"), &b));
	PT_CHECK(!b);
	int a = fwa_json_get(&j, 0, "a");
	PT_EQ(tok[a].size, 2);
	PT_CHECK(fwa_json_str_eq(&j, fwa_json_at(&j, a, 0), "x"));
	PT_EQ(tok[fwa_json_get(&j, 0, "o")].type, FWA_JSON_OBJECT);
}

static void writer_exact_text(const struct ptest_kit *kit)
{
	static const char want[] =
	    "{\"k\":\"v\\\"\\\\\\n\\u0001\",\"o\":{\"n\":18446744073709551615},"
	    "\"a\":[\"x\",false,0]}";
	char buf[128];
	struct fwa_jw w;
	(void)kit;
	fwa_jw_init(&w, buf, sizeof buf);
	fwa_jw_obj_open(&w);
	fwa_jw_str(&w, "k", "v\"\\\n\x01");
	fwa_jw_key(&w, "o");
	fwa_jw_obj_open(&w);
	fwa_jw_uint(&w, "n", UINT64_MAX);
	fwa_jw_obj_close(&w);
	fwa_jw_arr_open(&w, "a");
	fwa_jw_str(&w, NULL, "x");
	fwa_jw_bool(&w, NULL, false);
	fwa_jw_uint(&w, NULL, 0);
	fwa_jw_arr_close(&w);
	fwa_jw_obj_close(&w);
	long n = fwa_jw_end(&w);
	PT_EQ(n, (long)(sizeof want - 1));
	PT_REQUIRE(n == (long)(sizeof want - 1));
	PT_MEM(buf, want, sizeof want - 1);
}

static void writer_overflow(const struct ptest_kit *kit)
{
	char buf[64];
	struct fwa_jw w;
	(void)kit;
	for (size_t cap = 0; cap < 12; cap++) {
		memset(buf, 'Z', sizeof buf);
		fwa_jw_init(&w, buf, cap);
		fwa_jw_obj_open(&w);
		fwa_jw_str(&w, "k", "value");
		fwa_jw_obj_close(&w);
		PT_EQ(fwa_jw_end(&w), -1); /* {"k":"value"} is 13 bytes */
		PT_EQ(buf[cap], 'Z');      /* nothing written past the capacity */
	}
	fwa_jw_init(&w, buf, 13);
	fwa_jw_obj_open(&w);
	fwa_jw_str(&w, "k", "value");
	fwa_jw_obj_close(&w);
	PT_EQ(fwa_jw_end(&w), 13);
	PT_MEM(buf, "{\"k\":\"value\"}", 13);
}

static const struct ptest_case cases[] = {
    {"accepts_valid_documents", accepts_valid_documents},
    {"rejects_malformed", rejects_malformed},
    {"bounds_depth_and_tokens", bounds_depth_and_tokens},
    {"getters", getters},
    {"str_refuses_nul", str_refuses_nul},
    {"only_keys", only_keys},
    {"writer_round_trip", writer_round_trip},
    {"writer_exact_text", writer_exact_text},
    {"writer_overflow", writer_overflow},
    {NULL, NULL},
};

const struct ptest_suite ptest_suite = {"json", cases};
