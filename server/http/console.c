/*
 * http/console.c - the web console's static files (docs/console.md), served under /console/ on
 * the management listener. The folder is read once at start into memory, so a file changed
 * or removed later does not change what is served until a restart, and a request never
 * touches the file system. Every answer carries the console's security headers: a
 * Content-Security-Policy that allows only this origin's scripts and styles (no inline code,
 * no third party), no framing, no MIME sniffing, no referrer.
 *
 * The files need no identity: they hold no data. Everything the console shows comes from the
 * management API, with the caller's token or certificate, under the API's role rules.
 */
#include "http/console.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"

#define MAX_FILES 64
#define MAX_TOTAL (4u << 20)

const char ota_console_csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'";

struct file {
	char name[64];
	const char *type;
	char *data;
	size_t len;
};

struct ota_console {
	unsigned n;
	struct file f[MAX_FILES];
};

static const char *type_of(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	    {".html", "text/html; charset=utf-8"},
	    {".js", "text/javascript; charset=utf-8"},
	    {".css", "text/css; charset=utf-8"},
	    {".svg", "image/svg+xml"},
	    {".png", "image/png"},
	    {".ico", "image/x-icon"},
	    {".json", "application/json"},
	    {".txt", "text/plain; charset=utf-8"},
	};
	const char *dot = strrchr(name, '.');
	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return NULL;
}

/* A file name the console may serve: [A-Za-z0-9._-], not starting with a dot. */
static bool name_ok(const char *s)
{
	if (!s[0] || s[0] == '.' || strlen(s) >= sizeof(((struct file *)0)->name))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return false;
	return true;
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long size;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && size <= (long)MAX_TOTAL &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1)) &&
	    fread(buf, 1, (size_t)size, f) == (size_t)size) {
		*len = (size_t)size;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

void ota_console_free(struct ota_console *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->n; i++)
		free(c->f[i].data);
	free(c);
}

enum ota_err ota_console_load(const char *dir, bool required, struct ota_console **out, char *msg,
                              size_t msglen)
{
	struct ota_console *c = NULL;
	DIR *d = NULL;
	struct dirent *e;
	size_t total = 0;
	enum ota_err rc = OTA_ERR_CONFIG;

	*out = NULL;
	if (!dir[0])
		return OTA_OK;
	d = opendir(dir);
	if (!d) {
		if (!required) {
			log_notice("console: %s not installed: /console/ is off", dir);
			return OTA_OK;
		}
		snprintf(msg, msglen, "console folder %s: %s", dir, strerror(errno));
		return OTA_ERR_CONFIG;
	}
	if (!(c = calloc(1, sizeof(*c)))) {
		rc = OTA_ERR_NOMEM;
		goto out;
	}
	while ((e = readdir(d))) {
		char path[4096];
		struct stat sb;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
			continue;
		if (!name_ok(e->d_name) || !type_of(e->d_name)) {
			log_notice("console: %s is not served (name or type)", path);
			continue;
		}
		if (c->n == MAX_FILES) {
			snprintf(msg, msglen, "console folder %s: more than %d files", dir,
			         MAX_FILES);
			goto out;
		}
		struct file *f = &c->f[c->n];
		memcpy(f->name, e->d_name, strlen(e->d_name) + 1); /* name_ok(): it fits */
		f->type = type_of(e->d_name);
		f->data = read_all(path, &f->len);
		if (!f->data || (total += f->len) > MAX_TOTAL) {
			snprintf(msg, msglen,
			         "console file %s cannot be read or the console is over %u bytes",
			         path, MAX_TOTAL);
			free(f->data);
			goto out;
		}
		c->n++;
	}
	if (!ota_console_has(c, "index.html")) {
		snprintf(msg, msglen, "console folder %s has no index.html", dir);
		goto out;
	}
	log_info("console: %u files (%zu bytes) from %s under /console/", c->n, total, dir);
	*out = c;
	c = NULL;
	rc = OTA_OK;
out:
	if (d)
		closedir(d);
	ota_console_free(c);
	return rc;
}

bool ota_console_has(const struct ota_console *c, const char *name)
{
	for (unsigned i = 0; c && i < c->n; i++)
		if (strcmp(c->f[i].name, name) == 0)
			return true;
	return false;
}

static void headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Content-Security-Policy", ota_console_csp);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
	MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
	MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
}

/* GET/HEAD /console, /console/ and /console/<file>. */
static void serve(struct ota_req *r)
{
	const struct ota_console *c = r->deps->console;
	const char *name = r->url + strlen("/console");
	struct MHD_Response *resp;

	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
		snprintf(r->allow_buf, sizeof(r->allow_buf), "GET, HEAD");
		r->allow = r->allow_buf;
		ota_req_fail(r, OTA_P_METHOD_NOT_ALLOWED, "%s is not allowed on %s", r->method,
		             r->url);
		return;
	}
	if (!*name) { /* "/console": the folder's address, so relative module paths resolve */
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		if (!resp) {
			ota_req_fail(r, OTA_P_INTERNAL, "out of memory");
			return;
		}
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, "/console/");
		headers(resp);
		r->response = resp;
		r->status = 301;
		return;
	}
	name++; /* past "/" */
	if (!*name)
		name = "index.html";
	for (unsigned i = 0; c && i < c->n; i++) {
		const struct file *f = &c->f[i];
		if (strcmp(f->name, name) != 0)
			continue;
		resp = MHD_create_response_from_buffer(f->len, f->data, MHD_RESPMEM_PERSISTENT);
		if (!resp) {
			ota_req_fail(r, OTA_P_INTERNAL, "out of memory");
			return;
		}
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, f->type);
		headers(resp);
		r->response = resp;
		r->status = 200;
		return;
	}
	ota_req_fail(r, OTA_P_NOT_FOUND, "no resource %s", r->url);
}

static const struct ota_route console_route = {
    "GET", "/console/{file}", OTA_L_MANAGEMENT, 0, OTA_BODY_NONE, serve, NULL, NULL, NULL,
};

const struct ota_route *ota_console_route(const struct ota_http_deps *deps, const char *url)
{
	if (!deps->console)
		return NULL;
	if (strcmp(url, "/console") != 0 && strncmp(url, "/console/", 9) != 0)
		return NULL;
	return &console_route;
}
