/*
 * otactl/http.c - the management API over HTTPS with libcurl: one handle per invocation
 * (connections are reused across pages), the server verified against the configured CA,
 * a client certificate and/or a bearer token, streamed uploads and downloads with progress,
 * collection paging, and the one place where failures become exit statuses and one-line
 * messages.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl.h"

void ota_ctl_err(const char *fmt, ...)
{
	va_list ap;

	fputs("otactl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void ota_ctl_resp_free(struct ota_ctl_resp *r)
{
	if (!r)
		return;
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

int ota_ctl_exit_of_status(long status)
{
	if (status >= 200 && status < 300)
		return OTACTL_OK;
	if (status == 404)
		return OTACTL_NOT_FOUND;
	if (status >= 400 && status < 500)
		return OTACTL_REFUSED;
	return OTACTL_SERVER;
}

bool ota_ctl_escape(const char *s, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		bool plain = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		             (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
		             ch == '~';
		if (o + (plain ? 1 : 3) >= size)
			return false;
		if (plain) {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
	return true;
}

bool ota_ctl_query_add(char *path, size_t size, const char *k, const char *v)
{
	char enc[1024];
	size_t n = strlen(path);

	if (!ota_ctl_escape(v, enc, sizeof(enc)))
		return false;
	int w = snprintf(path + n, size - n, "%c%s=%s", strchr(path, '?') ? '&' : '?', k, enc);
	return w >= 0 && (size_t)w < size - n;
}

struct buf {
	char *p;
	size_t len, cap;
};

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;
	size_t add = size * n;

	if (b->len + add + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + add + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return 0;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, add);
	b->len += add;
	b->p[b->len] = '\0';
	return add;
}

/* Reads the bearer token once: the first line of token_file. */
static int load_token(struct ota_ctl *c)
{
	if (c->token[0] || !c->cfg.token_file[0])
		return OTACTL_OK;
	FILE *f = fopen(c->cfg.token_file, "r");
	if (!f) {
		ota_ctl_err("token file %s: %s", c->cfg.token_file, strerror(errno));
		return OTACTL_USAGE;
	}
	char line[256] = "";
	bool ok = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	line[strcspn(line, "\r\n \t")] = '\0';
	if (!ok || strlen(line) >= sizeof(c->token) || !line[0]) {
		ota_ctl_err("token file %s: no token on its first line", c->cfg.token_file);
		return OTACTL_USAGE;
	}
	memcpy(c->token, line, strlen(line) + 1);
	return OTACTL_OK;
}

/* Prepares the handle for one request; headers are returned for the caller to free. */
static int prepare(struct ota_ctl *c, const char *method, const char *path, const char *ctype,
                   struct curl_slist **hdrs, struct buf *body)
{
	char url[4096], h[300];
	int rc = load_token(c);

	if (rc != OTACTL_OK)
		return rc;
	if (!c->curl) {
		c->curl = curl_easy_init();
		if (!c->curl) {
			ota_ctl_err("cannot initialise libcurl");
			return OTACTL_LOCAL;
		}
	}
	CURL *k = c->curl;
	curl_easy_reset(k);
	if ((size_t)snprintf(url, sizeof(url), "%s%s", c->cfg.server, path) >= sizeof(url)) {
		ota_ctl_err("URL too long");
		return OTACTL_USAGE;
	}
	curl_easy_setopt(k, CURLOPT_URL, url);
	curl_easy_setopt(k, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT, 20L);
	curl_easy_setopt(k, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (c->cfg.ca[0])
		curl_easy_setopt(k, CURLOPT_CAINFO, c->cfg.ca);
	if (c->cfg.cert[0]) {
		curl_easy_setopt(k, CURLOPT_SSLCERT, c->cfg.cert);
		curl_easy_setopt(k, CURLOPT_SSLKEY, c->cfg.key);
	}
	curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(k, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(k, CURLOPT_USERAGENT, "otactl/1");
	*hdrs = curl_slist_append(*hdrs, "Accept: application/json, application/problem+json");
	/* No "Expect: 100-continue" pause before a body. */
	*hdrs = curl_slist_append(*hdrs, "Expect:");
	if (ctype) {
		snprintf(h, sizeof(h), "Content-Type: %s", ctype);
		*hdrs = curl_slist_append(*hdrs, h);
	}
	if (c->token[0]) {
		snprintf(h, sizeof(h), "Authorization: Bearer %s", c->token);
		*hdrs = curl_slist_append(*hdrs, h);
	}
	curl_easy_setopt(k, CURLOPT_HTTPHEADER, *hdrs);
	return OTACTL_OK;
}

/* A transfer failed before an HTTP answer: say why, exit 3 (or 6 for a local file). */
static int transport_error(struct ota_ctl *c, CURLcode cc, const char *errbuf)
{
	const char *why = errbuf && errbuf[0] ? errbuf : curl_easy_strerror(cc);

	if (cc == CURLE_READ_ERROR || cc == CURLE_WRITE_ERROR) {
		ota_ctl_err("%s", why);
		return OTACTL_LOCAL;
	}
	ota_ctl_err("cannot reach %s: %s", c->cfg.server, why);
	return OTACTL_CONNECT;
}

/* Prints a failed answer as one line: the problem's title and detail, or the status. */
static int answer_error(const struct ota_ctl_resp *r, const char *method, const char *path)
{
	json_t *j = r->body ? json_loads(r->body, 0, NULL) : NULL;
	const char *title = j ? json_string_value(json_object_get(j, "title")) : NULL;
	const char *detail = j ? json_string_value(json_object_get(j, "detail")) : NULL;
	int rc = ota_ctl_exit_of_status(r->status);

	if (title || detail)
		ota_ctl_err("%s%s%s (HTTP %ld)", title ? title : "", title && detail ? ": " : "",
		            detail ? detail : "", r->status);
	else
		ota_ctl_err("%s %s: HTTP %ld", method, path, r->status);
	json_decref(j);
	return rc;
}

static int perform(struct ota_ctl *c, struct curl_slist *hdrs, struct buf *b,
                   struct ota_ctl_resp *r)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	char *ct = NULL;

	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, errbuf);
	CURLcode cc = curl_easy_perform(c->curl);
	curl_slist_free_all(hdrs);
	r->body = b->p;
	r->len = b->len;
	if (!r->body) {
		r->body = calloc(1, 1);
		if (!r->body)
			return OTACTL_LOCAL;
	}
	if (cc != CURLE_OK)
		return transport_error(c, cc, errbuf);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(c->curl, CURLINFO_CONTENT_TYPE, &ct);
	snprintf(r->ctype, sizeof(r->ctype), "%s", ct ? ct : "");
	return OTACTL_OK;
}

int ota_ctl_call_raw(struct ota_ctl *c, const char *method, const char *path, const char *body,
                     size_t body_len, const char *ctype, struct ota_ctl_resp *r)
{
	struct curl_slist *hdrs = NULL;
	struct buf b = {0};
	int rc;

	memset(r, 0, sizeof(*r));
	rc = prepare(c, method, path, body ? ctype : NULL, &hdrs, &b);
	if (rc != OTACTL_OK) {
		curl_slist_free_all(hdrs);
		return rc;
	}
	if (body) {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	} else if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	}
	rc = perform(c, hdrs, &b, r);
	if (rc == OTACTL_OK && (r->status < 200 || r->status >= 300))
		rc = answer_error(r, method, path);
	return rc;
}

int ota_ctl_call(struct ota_ctl *c, const char *method, const char *path, json_t *body,
                 json_t **out)
{
	struct ota_ctl_resp r;
	char *text = NULL;
	int rc;

	if (out)
		*out = NULL;
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		if (!text) {
			ota_ctl_err("out of memory");
			return OTACTL_LOCAL;
		}
	}
	rc = ota_ctl_call_raw(c, method, path, text, text ? strlen(text) : 0, "application/json",
	                      &r);
	free(text);
	if (rc == OTACTL_OK && out) {
		json_error_t e;
		*out = r.len ? json_loadb(r.body, r.len, 0, &e) : json_object();
		if (!*out) {
			ota_ctl_err("%s %s: the answer is not JSON: %s", method, path, e.text);
			rc = OTACTL_SERVER;
		}
	}
	ota_ctl_resp_free(&r);
	return rc;
}

struct xfer {
	struct ota_ctl *c;
	struct ota_ctl_progress p;
	bool up;
};

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	struct xfer *x = ud;

	if (x->up)
		ota_ctl_progress(x->c, &x->p, (double)ulnow, (double)ultotal);
	else
		ota_ctl_progress(x->c, &x->p, (double)dlnow, (double)dltotal);
	return 0;
}

int ota_ctl_upload(struct ota_ctl *c, const char *path, const char *file, json_t **out)
{
	struct curl_slist *hdrs = NULL;
	struct buf b = {0};
	struct ota_ctl_resp r = {0};
	struct stat st;
	struct xfer x = {.c = c, .up = true, .p = {.label = "upload"}};
	FILE *f = fopen(file, "rb");
	int rc;

	*out = NULL;
	if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		ota_ctl_err("%s: %s", file, f ? "not a regular file" : strerror(errno));
		if (f)
			fclose(f);
		return OTACTL_LOCAL;
	}
	rc = prepare(c, "POST", path, "application/octet-stream", &hdrs, &b);
	if (rc != OTACTL_OK) {
		curl_slist_free_all(hdrs);
		fclose(f);
		return rc;
	}
	/* Streamed from the file: libcurl's default read callback fread()s READDATA. */
	curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(c->curl, CURLOPT_READDATA, f);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)st.st_size);
	curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, &x);
	x.p.started = ota_ctl_now();
	rc = perform(c, hdrs, &b, &r);
	ota_ctl_progress_end(c, &x.p);
	fclose(f);
	if (rc == OTACTL_OK && (r.status < 200 || r.status >= 300))
		rc = answer_error(&r, "POST", path);
	if (rc == OTACTL_OK) {
		*out = json_loadb(r.body, r.len, 0, NULL);
		if (!*out) {
			ota_ctl_err("POST %s: the answer is not JSON", path);
			rc = OTACTL_SERVER;
		}
	}
	ota_ctl_resp_free(&r);
	return rc;
}

struct sink {
	FILE *f;
	struct buf err; /* the body of a failed answer */
	CURL *k;
};

static size_t on_file(char *data, size_t size, size_t n, void *ud)
{
	struct sink *s = ud;
	long status = 0;

	curl_easy_getinfo(s->k, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status >= 300)
		return on_body(data, size, n, &s->err);
	return fwrite(data, size, n, s->f) == n ? size * n : 0;
}

int ota_ctl_download(struct ota_ctl *c, const char *path, const char *file)
{
	struct curl_slist *hdrs = NULL;
	struct buf unused = {0};
	struct ota_ctl_resp r = {0};
	struct xfer x = {.c = c, .up = false, .p = {.label = "download"}};
	char part[OTACTL_PATH_MAX + 8];
	int rc;

	snprintf(part, sizeof(part), "%s.part", file);
	struct sink s = {.f = fopen(part, "wb")};
	if (!s.f) {
		ota_ctl_err("%s: %s", part, strerror(errno));
		return OTACTL_LOCAL;
	}
	rc = prepare(c, "GET", path, NULL, &hdrs, &unused);
	if (rc != OTACTL_OK) {
		curl_slist_free_all(hdrs);
		goto out;
	}
	s.k = c->curl;
	curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_file);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, &x);
	x.p.started = ota_ctl_now();
	rc = perform(c, hdrs, &unused, &r);
	ota_ctl_progress_end(c, &x.p);
	if (rc == OTACTL_OK && (r.status < 200 || r.status >= 300)) {
		struct ota_ctl_resp e = {.status = r.status, .body = s.err.p, .len = s.err.len};
		rc = answer_error(&e, "GET", path);
	}
	if (fclose(s.f) != 0 && rc == OTACTL_OK) {
		ota_ctl_err("%s: %s", part, strerror(errno));
		rc = OTACTL_LOCAL;
	}
	s.f = NULL;
	if (rc == OTACTL_OK && rename(part, file) != 0) {
		ota_ctl_err("%s: %s", file, strerror(errno));
		rc = OTACTL_LOCAL;
	}
out:
	if (s.f)
		fclose(s.f);
	if (rc != OTACTL_OK)
		remove(part);
	free(s.err.p);
	ota_ctl_resp_free(&r);
	return rc;
}

int ota_ctl_list(struct ota_ctl *c, const char *path, const char *legacy_key, unsigned page_size,
                 size_t max, json_t **items)
{
	char page[4096], cur[256] = "", lim[16];
	int rc = OTACTL_OK;
	json_t *all = json_array();

	*items = NULL;
	if (!all)
		return OTACTL_LOCAL;
	if (!page_size)
		page_size = 100;
	for (;;) {
		json_t *ans = NULL;
		unsigned want = page_size;
		if (max && max - json_array_size(all) < want)
			want = (unsigned)(max - json_array_size(all));
		snprintf(page, sizeof(page), "%s", path);
		snprintf(lim, sizeof(lim), "%u", want);
		if (!ota_ctl_query_add(page, sizeof(page), "limit", lim) ||
		    (cur[0] && !ota_ctl_query_add(page, sizeof(page), "cursor", cur))) {
			ota_ctl_err("query too long");
			rc = OTACTL_USAGE;
			break;
		}
		rc = ota_ctl_call(c, "GET", page, NULL, &ans);
		if (rc != OTACTL_OK)
			break;
		json_t *arr = json_object_get(ans, "items");
		bool legacy = false;
		if (!json_is_array(arr) && legacy_key) {
			arr = json_object_get(ans, legacy_key);
			legacy = true;
		}
		if (!json_is_array(arr)) {
			ota_ctl_err("GET %s: the answer has no items", page);
			json_decref(ans);
			rc = OTACTL_SERVER;
			break;
		}
		json_array_extend(all, arr);
		json_t *next = json_object_get(ans, "next_cursor");
		if (legacy || !next || json_is_null(next) || (max && json_array_size(all) >= max) ||
		    json_array_size(arr) == 0) {
			json_decref(ans);
			break;
		}
		if (json_is_integer(next))
			snprintf(cur, sizeof(cur), "%lld", (long long)json_integer_value(next));
		else if (json_is_string(next))
			snprintf(cur, sizeof(cur), "%s", json_string_value(next));
		else {
			ota_ctl_err("GET %s: next_cursor is neither a string nor a number", page);
			json_decref(ans);
			rc = OTACTL_SERVER;
			break;
		}
		json_decref(ans);
	}
	if (rc != OTACTL_OK) {
		json_decref(all);
		return rc;
	}
	if (max)
		while (json_array_size(all) > max)
			json_array_remove(all, json_array_size(all) - 1);
	*items = all;
	return OTACTL_OK;
}

void ota_ctl_close(struct ota_ctl *c)
{
	if (c && c->curl) {
		curl_easy_cleanup(c->curl);
		c->curl = NULL;
	}
}
