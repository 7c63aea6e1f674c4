/*
 * json.c - the one JSON reader of the project (signed metadata, check-in answers) and a small
 * bounded writer for what the agent sends. The reader is a strict RFC 8259 tokenizer in the
 * manner of jsmn: tokens point into the caller's text, no heap, no copies; it rejects what a
 * lenient parser would let two readers interpret differently (duplicate keys, invalid UTF-8,
 * lone surrogates, trailing bytes).
 */
#include <stdint.h>
#include <string.h>

#include "fwa/json.h"

struct parser {
	const char *s;
	size_t len;
	size_t pos;
	struct fwa_json_tok *tok;
	unsigned cap;
	unsigned n;
};

/* ---- Unescaped iteration over a validated string token ---- */

struct ustr {
	const char *p;
	const char *e;
	uint8_t buf[4];
	uint8_t bi;
	uint8_t bn;
};

static unsigned hex4(const char *p)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];
		unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
		             : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
		                                    : (unsigned)(c - 'A' + 10);
		v = v << 4 | d;
	}
	return v;
}

static bool ishex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static void ustr_init(struct ustr *u, const struct fwa_json *j, int t)
{
	u->p = j->text + j->tok[t].start;
	u->e = j->text + j->tok[t].end;
	u->bi = u->bn = 0;
}

/* Next byte of the unescaped value, or -1 at its end. The token was validated by the parser. */
static int ustr_next(struct ustr *u)
{
	if (u->bi < u->bn)
		return u->buf[u->bi++];
	if (u->p >= u->e)
		return -1;
	if (*u->p != '\\')
		return (uint8_t)*u->p++;
	char c = u->p[1];
	u->p += 2;
	switch (c) {
	case 'b':
		return '\b';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	case 'u':
		break;
	default:
		return (uint8_t)c; /* " \ / */
	}
	uint32_t cp = hex4(u->p);
	u->p += 4;
	if (cp >= 0xd800 && cp <= 0xdbff) {
		uint32_t lo = hex4(u->p + 2);
		u->p += 6;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	u->bi = 0;
	if (cp < 0x80) {
		u->buf[0] = (uint8_t)cp;
		u->bn = 1;
	} else if (cp < 0x800) {
		u->buf[0] = (uint8_t)(0xc0 | cp >> 6);
		u->buf[1] = (uint8_t)(0x80 | (cp & 0x3f));
		u->bn = 2;
	} else if (cp < 0x10000) {
		u->buf[0] = (uint8_t)(0xe0 | cp >> 12);
		u->buf[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		u->buf[2] = (uint8_t)(0x80 | (cp & 0x3f));
		u->bn = 3;
	} else {
		u->buf[0] = (uint8_t)(0xf0 | cp >> 18);
		u->buf[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
		u->buf[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		u->buf[3] = (uint8_t)(0x80 | (cp & 0x3f));
		u->bn = 4;
	}
	return u->buf[u->bi++];
}

static bool tok_strings_equal(const struct fwa_json *j, int a, int b)
{
	struct ustr ua, ub;
	int ca, cb;

	ustr_init(&ua, j, a);
	ustr_init(&ub, j, b);
	do {
		ca = ustr_next(&ua);
		cb = ustr_next(&ub);
		if (ca != cb)
			return false;
	} while (ca >= 0);
	return true;
}

/* ---- Tokenizer ---- */

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len) {
		char c = p->s[p->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		p->pos++;
	}
}

static enum fwa_err new_tok(struct parser *p, enum fwa_json_type type, unsigned *idx)
{
	if (p->n >= p->cap)
		return FWA_ERR_TOO_LARGE;
	*idx = p->n++;
	struct fwa_json_tok *t = &p->tok[*idx];
	t->type = (uint8_t)type;
	t->pad = 0;
	t->size = 0;
	t->start = (uint32_t)p->pos;
	t->end = (uint32_t)p->pos;
	t->next = 0;
	return FWA_OK;
}

/* Length of the well-formed UTF-8 sequence at s[0..n), or 0 (overlong, surrogate, > U+10FFFF). */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];
	size_t need;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need;
}

static enum fwa_err parse_string(struct parser *p)
{
	unsigned idx;
	enum fwa_err err;

	p->pos++; /* opening quote */
	err = new_tok(p, FWA_JSON_STRING, &idx);
	if (err)
		return err;
	while (p->pos < p->len) {
		uint8_t c = (uint8_t)p->s[p->pos];

		if (c == '"') {
			p->tok[idx].end = (uint32_t)p->pos;
			p->tok[idx].next = p->n;
			p->pos++;
			return FWA_OK;
		}
		if (c < 0x20)
			return FWA_ERR_MALFORMED;
		if (c == '\\') {
			if (p->pos + 1 >= p->len)
				return FWA_ERR_MALFORMED;
			char e = p->s[p->pos + 1];
			if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
			    e == 'r' || e == 't') {
				p->pos += 2;
				continue;
			}
			if (e != 'u' || p->len - p->pos < 6)
				return FWA_ERR_MALFORMED;
			const char *h = p->s + p->pos + 2;
			if (!ishex(h[0]) || !ishex(h[1]) || !ishex(h[2]) || !ishex(h[3]))
				return FWA_ERR_MALFORMED;
			unsigned cp = hex4(h);
			p->pos += 6;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return FWA_ERR_MALFORMED; /* lone low surrogate */
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (p->len - p->pos < 6 || p->s[p->pos] != '\\' ||
				    p->s[p->pos + 1] != 'u')
					return FWA_ERR_MALFORMED;
				h = p->s + p->pos + 2;
				if (!ishex(h[0]) || !ishex(h[1]) || !ishex(h[2]) || !ishex(h[3]))
					return FWA_ERR_MALFORMED;
				unsigned lo = hex4(h);
				if (lo < 0xdc00 || lo > 0xdfff)
					return FWA_ERR_MALFORMED;
				p->pos += 6;
			}
			continue;
		}
		size_t n = utf8_seq((const uint8_t *)p->s + p->pos, p->len - p->pos);
		if (n == 0)
			return FWA_ERR_MALFORMED;
		p->pos += n;
	}
	return FWA_ERR_MALFORMED; /* unterminated */
}

static bool isdigit_(char c)
{
	return c >= '0' && c <= '9';
}

static enum fwa_err parse_number(struct parser *p)
{
	unsigned idx;
	enum fwa_err err = new_tok(p, FWA_JSON_NUMBER, &idx);
	const char *s = p->s;
	size_t i = p->pos, n = p->len;

	if (err)
		return err;
	if (i < n && s[i] == '-')
		i++;
	if (i >= n || !isdigit_(s[i]))
		return FWA_ERR_MALFORMED;
	if (s[i] == '0') {
		i++;
	} else {
		while (i < n && isdigit_(s[i]))
			i++;
	}
	if (i < n && s[i] == '.') {
		i++;
		if (i >= n || !isdigit_(s[i]))
			return FWA_ERR_MALFORMED;
		while (i < n && isdigit_(s[i]))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || !isdigit_(s[i]))
			return FWA_ERR_MALFORMED;
		while (i < n && isdigit_(s[i]))
			i++;
	}
	p->pos = i;
	p->tok[idx].end = (uint32_t)i;
	p->tok[idx].next = p->n;
	return FWA_OK;
}

static enum fwa_err parse_literal(struct parser *p, const char *word, enum fwa_json_type type)
{
	size_t wl = strlen(word);
	unsigned idx;
	enum fwa_err err;

	if (p->len - p->pos < wl || memcmp(p->s + p->pos, word, wl) != 0)
		return FWA_ERR_MALFORMED;
	err = new_tok(p, type, &idx);
	if (err)
		return err;
	p->pos += wl;
	p->tok[idx].end = (uint32_t)p->pos;
	p->tok[idx].next = p->n;
	return FWA_OK;
}

static enum fwa_err parse_value(struct parser *p, unsigned depth);

static enum fwa_err parse_container(struct parser *p, unsigned depth, bool object)
{
	unsigned idx;
	enum fwa_err err;
	char close = object ? '}' : ']';

	if (depth > FWA_JSON_MAX_DEPTH)
		return FWA_ERR_TOO_LARGE;
	err = new_tok(p, object ? FWA_JSON_OBJECT : FWA_JSON_ARRAY, &idx);
	if (err)
		return err;
	p->pos++;
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		goto done;
	}
	for (;;) {
		if (p->tok[idx].size == UINT16_MAX)
			return FWA_ERR_TOO_LARGE;
		if (object) {
			if (p->pos >= p->len || p->s[p->pos] != '"')
				return FWA_ERR_MALFORMED;
			err = parse_string(p);
			if (err)
				return err;
			skip_ws(p);
			if (p->pos >= p->len || p->s[p->pos] != ':')
				return FWA_ERR_MALFORMED;
			p->pos++;
			skip_ws(p);
		}
		err = parse_value(p, depth + 1);
		if (err)
			return err;
		p->tok[idx].size++;
		skip_ws(p);
		if (p->pos >= p->len)
			return FWA_ERR_MALFORMED;
		if (p->s[p->pos] == ',') {
			p->pos++;
			skip_ws(p);
			continue;
		}
		if (p->s[p->pos] == close) {
			p->pos++;
			break;
		}
		return FWA_ERR_MALFORMED;
	}
done:
	p->tok[idx].end = (uint32_t)p->pos;
	p->tok[idx].next = p->n;
	if (object) {
		/* Duplicate keys: two readers could each pick a different value. */
		struct fwa_json j = {p->s, p->len, p->tok, p->n};
		unsigned ki = idx + 1;
		for (unsigned a = 0; a < p->tok[idx].size; a++) {
			unsigned kj = p->tok[ki + 1].next;
			for (unsigned b = a + 1; b < p->tok[idx].size; b++) {
				if (tok_strings_equal(&j, (int)ki, (int)kj))
					return FWA_ERR_MALFORMED;
				kj = p->tok[kj + 1].next;
			}
			ki = p->tok[ki + 1].next;
		}
	}
	return FWA_OK;
}

static enum fwa_err parse_value(struct parser *p, unsigned depth)
{
	if (p->pos >= p->len)
		return FWA_ERR_MALFORMED;
	switch (p->s[p->pos]) {
	case '{':
		return parse_container(p, depth, true);
	case '[':
		return parse_container(p, depth, false);
	case '"':
		return parse_string(p);
	case 't':
		return parse_literal(p, "true", FWA_JSON_TRUE);
	case 'f':
		return parse_literal(p, "false", FWA_JSON_FALSE);
	case 'n':
		return parse_literal(p, "null", FWA_JSON_NULL);
	default:
		return parse_number(p);
	}
}

enum fwa_err fwa_json_parse(struct fwa_json *j, const char *text, size_t len,
                            struct fwa_json_tok *tok, unsigned cap)
{
	struct parser p = {text, len, 0, tok, cap, 0};
	enum fwa_err err;

	j->text = text;
	j->len = len;
	j->tok = tok;
	j->ntok = 0;
	if (len >= UINT32_MAX)
		return FWA_ERR_TOO_LARGE;
	skip_ws(&p);
	err = parse_value(&p, 1);
	if (err)
		return err;
	skip_ws(&p);
	if (p.pos != len)
		return FWA_ERR_MALFORMED;
	j->ntok = p.n;
	return FWA_OK;
}

/* ---- Accessors ---- */

static bool valid(const struct fwa_json *j, int t)
{
	return t >= 0 && (unsigned)t < j->ntok;
}

int fwa_json_get(const struct fwa_json *j, int obj, const char *key)
{
	if (!valid(j, obj) || j->tok[obj].type != FWA_JSON_OBJECT)
		return -1;
	unsigned k = (unsigned)obj + 1;
	for (unsigned i = 0; i < j->tok[obj].size; i++) {
		if (fwa_json_str_eq(j, (int)k, key))
			return (int)k + 1;
		k = j->tok[k + 1].next;
	}
	return -1;
}

int fwa_json_at(const struct fwa_json *j, int arr, unsigned i)
{
	if (!valid(j, arr) || j->tok[arr].type != FWA_JSON_ARRAY || i >= j->tok[arr].size)
		return -1;
	unsigned e = (unsigned)arr + 1;
	while (i--)
		e = j->tok[e].next;
	return (int)e;
}

enum fwa_err fwa_json_str(const struct fwa_json *j, int t, char *out, size_t cap, size_t *len)
{
	struct ustr u;
	size_t n = 0;
	int c;

	if (!valid(j, t) || j->tok[t].type != FWA_JSON_STRING)
		return FWA_ERR_MALFORMED;
	if (cap == 0)
		return FWA_ERR_TOO_LARGE;
	ustr_init(&u, j, t);
	while ((c = ustr_next(&u)) >= 0) {
		if (c == 0)
			return FWA_ERR_MALFORMED;
		if (n + 1 >= cap)
			return FWA_ERR_TOO_LARGE;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	if (len)
		*len = n;
	return FWA_OK;
}

bool fwa_json_str_eq(const struct fwa_json *j, int t, const char *s)
{
	struct ustr u;
	int c;

	if (!valid(j, t) || j->tok[t].type != FWA_JSON_STRING)
		return false;
	ustr_init(&u, j, t);
	while ((c = ustr_next(&u)) >= 0) {
		if (*s == '\0' || (uint8_t)*s != c)
			return false;
		s++;
	}
	return *s == '\0';
}

enum fwa_err fwa_json_uint(const struct fwa_json *j, int t, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!valid(j, t) || j->tok[t].type != FWA_JSON_NUMBER)
		return FWA_ERR_MALFORMED;
	for (uint32_t i = j->tok[t].start; i < j->tok[t].end; i++) {
		char c = j->text[i];
		if (!isdigit_(c))
			return FWA_ERR_MALFORMED; /* sign, fraction or exponent */
		unsigned d = (unsigned)(c - '0');
		if (v > (UINT64_MAX - d) / 10)
			return FWA_ERR_TOO_LARGE;
		v = v * 10 + d;
	}
	if (v > max)
		return FWA_ERR_TOO_LARGE;
	*out = v;
	return FWA_OK;
}

enum fwa_err fwa_json_bool(const struct fwa_json *j, int t, bool *out)
{
	if (!valid(j, t))
		return FWA_ERR_MALFORMED;
	if (j->tok[t].type == FWA_JSON_TRUE)
		*out = true;
	else if (j->tok[t].type == FWA_JSON_FALSE)
		*out = false;
	else
		return FWA_ERR_MALFORMED;
	return FWA_OK;
}

enum fwa_err fwa_json_only_keys(const struct fwa_json *j, int obj, const char *const *allowed)
{
	if (!valid(j, obj) || j->tok[obj].type != FWA_JSON_OBJECT)
		return FWA_ERR_MALFORMED;
	unsigned k = (unsigned)obj + 1;
	for (unsigned i = 0; i < j->tok[obj].size; i++) {
		bool ok = false;
		for (const char *const *a = allowed; *a; a++) {
			if (fwa_json_str_eq(j, (int)k, *a)) {
				ok = true;
				break;
			}
		}
		if (!ok)
			return FWA_ERR_MALFORMED;
		k = j->tok[k + 1].next;
	}
	return FWA_OK;
}

/* ---- Writer ---- */

void fwa_jw_init(struct fwa_jw *w, char *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
	w->overflow = false;
	w->need_comma = false;
}

static void put(struct fwa_jw *w, char c)
{
	if (w->len >= w->cap) {
		w->overflow = true;
		return;
	}
	w->buf[w->len++] = c;
}

static void sep(struct fwa_jw *w)
{
	if (w->need_comma)
		put(w, ',');
	w->need_comma = false;
}

static void put_str(struct fwa_jw *w, const char *s)
{
	static const char digits[] = "0123456789abcdef";

	put(w, '"');
	for (; *s; s++) {
		uint8_t c = (uint8_t)*s;
		if (c == '"' || c == '\\') {
			put(w, '\\');
			put(w, (char)c);
		} else if (c == '\n') {
			put(w, '\\');
			put(w, 'n');
		} else if (c < 0x20 || c == 0x7f) {
			put(w, '\\');
			put(w, 'u');
			put(w, '0');
			put(w, '0');
			put(w, digits[c >> 4]);
			put(w, digits[c & 15]);
		} else {
			put(w, (char)c);
		}
	}
	put(w, '"');
}

void fwa_jw_key(struct fwa_jw *w, const char *key)
{
	sep(w);
	put_str(w, key);
	put(w, ':');
}

static void begin_value(struct fwa_jw *w, const char *key)
{
	if (key)
		fwa_jw_key(w, key);
	else
		sep(w);
}

void fwa_jw_obj_open(struct fwa_jw *w)
{
	sep(w);
	put(w, '{');
}

void fwa_jw_obj_close(struct fwa_jw *w)
{
	put(w, '}');
	w->need_comma = true;
}

void fwa_jw_arr_open(struct fwa_jw *w, const char *key)
{
	begin_value(w, key);
	put(w, '[');
}

void fwa_jw_arr_close(struct fwa_jw *w)
{
	put(w, ']');
	w->need_comma = true;
}

void fwa_jw_str(struct fwa_jw *w, const char *key, const char *val)
{
	begin_value(w, key);
	put_str(w, val);
	w->need_comma = true;
}

void fwa_jw_uint(struct fwa_jw *w, const char *key, uint64_t val)
{
	char d[20];
	int n = 0;

	begin_value(w, key);
	do {
		d[n++] = (char)('0' + val % 10);
		val /= 10;
	} while (val);
	while (n)
		put(w, d[--n]);
	w->need_comma = true;
}

void fwa_jw_bool(struct fwa_jw *w, const char *key, bool val)
{
	const char *s = val ? "true" : "false";

	begin_value(w, key);
	while (*s)
		put(w, *s++);
	w->need_comma = true;
}

long fwa_jw_end(struct fwa_jw *w)
{
	if (w->overflow)
		return -1;
	return (long)w->len;
}
