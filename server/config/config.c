/*
 * config/config.c - the configuration reader: a table of every key (section, name, type,
 * bounds, where it goes in struct ota_config) drives a strict line parser, so adding a key is
 * one table row and a documented line in etc/otad.conf.
 */
#include "config/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* K_KEYREF: a path, or a PKCS#11 URI ("pkcs11:...") kept as written. */
enum kind { K_PATH, K_KEYREF, K_STR, K_UINT, K_U64, K_BOOL, K_LEVEL, K_ADMISSION, K_BACKEND };

struct key {
	const char *section;
	const char *name;
	enum kind kind;
	size_t off;
	uint64_t min, max;
	bool required;
};

#define OFF(f) offsetof(struct ota_config, f)

static const struct key keys[] = {
    {"server", "data_dir", K_PATH, OFF(data_dir), 0, 0, true},
    {"server", "log_level", K_LEVEL, OFF(log_level), 0, 0, false},
    {"server", "threads", K_UINT, OFF(threads), 1, 64, false},
    {"server", "shutdown_grace", K_UINT, OFF(shutdown_grace), 0, 3600, false},
    /* Where the store lives (docs/scaling.md) */
    {"store", "backend", K_BACKEND, OFF(store_postgresql), 0, 0, false},
    {"store.postgresql", "conninfo", K_STR, OFF(store_pg_conninfo), 0, 0, false},
    {"tls", "cert", K_PATH, OFF(tls_cert), 0, 0, true},
    {"tls", "key", K_PATH, OFF(tls_key), 0, 0, true},
    {"tls", "session_tickets", K_BOOL, OFF(session_tickets), 0, 0, false},
    {"tls", "ticket_key", K_PATH, OFF(ticket_key), 0, 0, false},
    {"tls", "identity_cache", K_UINT, OFF(identity_cache), 0, 10000000, false},
    {"device", "listen", K_STR, OFF(device.listen), 0, 0, false},
    {"device", "ca", K_PATH, OFF(device.ca), 0, 0, true},
    {"device", "crl", K_PATH, OFF(device.crl), 0, 0, false},
    {"device", "poll_interval", K_UINT, OFF(poll_interval), 10, 86400 * 7, false},
    {"device", "poll_jitter", K_UINT, OFF(poll_jitter), 0, 50, false},
    {"device", "admission", K_ADMISSION, OFF(admission), 0, 0, false},
    {"device", "delta_max_percent", K_UINT, OFF(delta_max_percent), 0, 100, false},
    {"device", "last_seen_flush", K_UINT, OFF(last_seen_flush), 1, 3600, false},
    {"management", "listen", K_STR, OFF(management.listen), 0, 0, false},
    {"management", "ca", K_PATH, OFF(management.ca), 0, 0, true},
    {"management", "crl", K_PATH, OFF(management.crl), 0, 0, false},
    {"management", "token_max_days", K_UINT, OFF(token_max_days), 1, 3650, false},
    {"management", "audit_checkpoint_interval", K_UINT, OFF(audit_checkpoint_interval), 1, 86400,
     false},
    {"management", "console", K_PATH, OFF(console_dir), 0, 0, false},
    {"limits", "connection_timeout", K_UINT, OFF(connection_timeout), 1, 3600, false},
    {"limits", "max_connections", K_UINT, OFF(max_connections), 1, 1000000, false},
    {"limits", "max_connections_per_ip", K_UINT, OFF(max_connections_per_ip), 0, 1000000, false},
    {"limits", "body_max", K_U64, OFF(body_max), 1024, 1048576, false},
    {"limits", "image_max", K_U64, OFF(image_max), 1, UINT64_C(1) << 40, false},
    {"limits", "header_timeout", K_UINT, OFF(header_timeout), 1, 3600, false},
    {"limits", "body_timeout", K_UINT, OFF(body_timeout), 1, 3600, false},
    {"limits", "connection_memory", K_UINT, OFF(connection_memory), 8192, 1048576, false},
    {"limits", "mgmt_max_connections", K_UINT, OFF(mgmt_max_connections), 1, 1000000, false},
    {"limits", "mgmt_max_connections_per_ip", K_UINT, OFF(mgmt_max_connections_per_ip), 0, 1000000,
     false},
    {"limits", "refusal_window", K_UINT, OFF(refusal_window), 1, 3600, false},
    {"limits", "refusal_kinds", K_UINT, OFF(refusal_kinds), 1, 65536, false},
    {"limits", "refused_certificates_per_ip", K_UINT, OFF(refused_certificates_per_ip), 0, 1000000,
     false},
    {"limits", "block_seconds", K_UINT, OFF(block_seconds), 1, 86400, false},
    {"trust", "root", K_PATH, OFF(trusted_root), 0, 0, false},
    /* Events out: the live stream and webhooks (docs/events.md) */
    {"events", "heartbeat", K_UINT, OFF(events_heartbeat), 1, 3600, false},
    {"events", "max_streams", K_UINT, OFF(events_max_streams), 0, 1024, false},
    {"webhooks", "threads", K_UINT, OFF(webhook_threads), 1, 16, false},
    {"webhooks", "timeout", K_UINT, OFF(webhook_timeout), 1, 300, false},
    {"webhooks", "max_attempts", K_UINT, OFF(webhook_max_attempts), 1, 1000, false},
    {"webhooks", "backoff_max", K_UINT, OFF(webhook_backoff_max), 1, 86400, false},
    {"webhooks", "allow_http", K_BOOL, OFF(webhook_allow_http), 0, 0, false},
    {"webhooks", "allow_networks", K_STR, OFF(webhook_allow_networks), 0, 0, false},
    {"webhooks", "ca", K_PATH, OFF(webhook_ca), 0, 0, false},
    {"trust", "time_key", K_PATH, OFF(time_key), 0, 0, false},
    {"trust", "issuer_cert", K_PATH, OFF(issuer_cert), 0, 0, false},
    {"trust", "issuer_key", K_KEYREF, OFF(issuer_key), 0, 0, false},
    {"trust", "issued_days", K_UINT, OFF(issued_days), 1, 3650, false},
    {"trust", "issuer_key_pin_file", K_PATH, OFF(issuer_key_pin_file), 0, 0, false},
    {"trust", "pkcs11_module", K_PATH, OFF(pkcs11_module), 0, 0, false},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

void ota_config_defaults(struct ota_config *c)
{
	memset(c, 0, sizeof(*c));
	c->log_level = LOG_INFO;
	c->threads = 2;
	c->shutdown_grace = 10;
	c->session_tickets = true;
	c->identity_cache = 100000;
	snprintf(c->device.listen, sizeof(c->device.listen), "127.0.0.1:8443");
	c->poll_interval = 300;
	c->poll_jitter = 10;
	c->delta_max_percent = 50;
	c->last_seen_flush = 5;
	c->admission = OTA_ADMISSION_AUTO;
	c->token_max_days = 365;
	c->issued_days = 365;
	c->audit_checkpoint_interval = 300;
	snprintf(c->console_dir, sizeof(c->console_dir), "%s", OTA_CONSOLE_DIR);
	snprintf(c->management.listen, sizeof(c->management.listen), "127.0.0.1:9443");
	c->connection_timeout = 30;
	c->max_connections = 4096;
	c->max_connections_per_ip = 1024;
	c->body_max = 16384;
	c->image_max = UINT64_C(1) << 30;
	c->header_timeout = 10;
	c->body_timeout = 10;
	c->connection_memory = 32768;
	c->mgmt_max_connections = 256;
	c->mgmt_max_connections_per_ip = 32;
	c->refusal_window = 60;
	c->refusal_kinds = 256;
	c->refused_certificates_per_ip = 100;
	c->block_seconds = 60;
	c->events_heartbeat = 15;
	c->events_max_streams = 16;
	c->webhook_threads = 2;
	c->webhook_timeout = 10;
	c->webhook_max_attempts = 10;
	c->webhook_backoff_max = 300;
}

static void fail(char *msg, size_t msglen, const char *name, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void fail(char *msg, size_t msglen, const char *name, unsigned line, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (!msg || !msglen)
		return;
	if (line)
		snprintf(msg, msglen, "%s:%u: %s", name, line, why);
	else
		snprintf(msg, msglen, "%s: %s", name, why);
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* Sets the value; returns a reason on failure, NULL on success. */
static const char *set_value(const struct key *k, const char *val, const char *base_dir,
                             struct ota_config *c)
{
	char *dst = (char *)c + k->off;
	uint64_t v;

	switch (k->kind) {
	case K_KEYREF:
	case K_PATH:
		if (*val == '\0' || (k->kind == K_KEYREF && strncmp(val, "pkcs11:", 7) == 0) ||
		    *val == '/' || !base_dir || !*base_dir) {
			if (strlen(val) >= OTA_PATH_MAX)
				return "value too long";
			strcpy(dst, val);
		} else {
			int n = snprintf(dst, OTA_PATH_MAX, "%s/%s", base_dir, val);
			if (n < 0 || n >= OTA_PATH_MAX)
				return "value too long";
		}
		return NULL;
	case K_STR:
		if (strlen(val) >= OTA_PATH_MAX)
			return "value too long";
		strcpy(dst, val);
		return NULL;
	case K_UINT:
	case K_U64:
		if (!parse_u64(val, &v))
			return "expected a non-negative integer";
		if (v < k->min || v > k->max)
			return "value out of range";
		if (k->kind == K_UINT)
			*(unsigned *)(void *)dst = (unsigned)v;
		else
			*(uint64_t *)(void *)dst = v;
		return NULL;
	case K_BOOL:
		if (strcmp(val, "true") == 0 || strcmp(val, "yes") == 0)
			*(bool *)(void *)dst = true;
		else if (strcmp(val, "false") == 0 || strcmp(val, "no") == 0)
			*(bool *)(void *)dst = false;
		else
			return "expected true or false";
		return NULL;
	case K_LEVEL: {
		int l = ota_log_level_parse(val);
		if (l < 0)
			return "expected one of err, warning, notice, info, debug";
		*(int *)(void *)dst = l;
		return NULL;
	}
	case K_ADMISSION:
		if (strcmp(val, "auto") == 0)
			*(enum ota_admission *)(void *)dst = OTA_ADMISSION_AUTO;
		else if (strcmp(val, "pending") == 0)
			*(enum ota_admission *)(void *)dst = OTA_ADMISSION_PENDING;
		else if (strcmp(val, "preregistered") == 0)
			*(enum ota_admission *)(void *)dst = OTA_ADMISSION_PREREGISTERED;
		else
			return "expected one of auto, pending, preregistered";
		return NULL;
	case K_BACKEND:
		if (strcmp(val, "sqlite") == 0)
			*(bool *)(void *)dst = false;
		else if (strcmp(val, "postgresql") == 0)
			*(bool *)(void *)dst = true;
		else
			return "expected sqlite or postgresql";
		return NULL;
	}
	return "internal: unknown key kind";
}

enum ota_err ota_config_parse(const char *text, size_t len, const char *name, const char *base_dir,
                              struct ota_config *out, char *msg, size_t msglen)
{
	enum ota_err rc = OTA_ERR_CONFIG;
	unsigned seen_line[NKEYS] = {0};
	char section[64] = "";
	bool section_known = false;
	unsigned lineno = 0;
	size_t pos = 0;
	char *line = malloc(len + 1);

	if (!line) {
		rc = OTA_ERR_NOMEM;
		fail(msg, msglen, name, 0, "out of memory");
		goto out;
	}
	ota_config_defaults(out);
	while (pos < len) {
		size_t eol = pos;
		while (eol < len && text[eol] != '\n')
			eol++;
		lineno++;
		if (memchr(text + pos, '\0', eol - pos)) {
			fail(msg, msglen, name, lineno, "NUL byte in line");
			goto out;
		}
		memcpy(line, text + pos, eol - pos);
		line[eol - pos] = '\0';
		pos = eol + 1;
		char *s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *end = strchr(s, ']');
			if (!end || end[1] != '\0' || end - s - 1 <= 0 ||
			    (size_t)(end - s - 1) >= sizeof(section)) {
				fail(msg, msglen, name, lineno, "malformed section header");
				goto out;
			}
			*end = '\0';
			snprintf(section, sizeof(section), "%s", trim(s + 1));
			section_known = false;
			for (size_t i = 0; i < NKEYS; i++)
				if (strcmp(keys[i].section, section) == 0)
					section_known = true;
			if (!section_known) {
				fail(msg, msglen, name, lineno, "unknown section [%s]", section);
				goto out;
			}
			continue;
		}
		char *eq = strchr(s, '=');
		if (!eq) {
			fail(msg, msglen, name, lineno, "expected \"key = value\"");
			goto out;
		}
		*eq = '\0';
		char *key = trim(s), *val = trim(eq + 1);
		if (!section_known) {
			fail(msg, msglen, name, lineno, "key \"%s\" outside of a section", key);
			goto out;
		}
		size_t k;
		for (k = 0; k < NKEYS; k++)
			if (strcmp(keys[k].section, section) == 0 && strcmp(keys[k].name, key) == 0)
				break;
		if (k == NKEYS) {
			fail(msg, msglen, name, lineno, "unknown key \"%s\" in [%s]", key, section);
			goto out;
		}
		if (seen_line[k]) {
			fail(msg, msglen, name, lineno,
			     "duplicate key \"%s\" in [%s] (first on line %u)", key, section,
			     seen_line[k]);
			goto out;
		}
		seen_line[k] = lineno;
		const char *why = set_value(&keys[k], val, base_dir, out);
		if (why) {
			fail(msg, msglen, name, lineno, "%s.%s: %s", section, key, why);
			goto out;
		}
	}
	for (size_t k = 0; k < NKEYS; k++) {
		if (keys[k].required && !seen_line[k]) {
			fail(msg, msglen, name, 0, "missing required key %s.%s", keys[k].section,
			     keys[k].name);
			goto out;
		}
	}
	if (out->store_postgresql && !out->store_pg_conninfo[0]) {
		fail(msg, msglen, name, 0,
		     "store.backend = postgresql needs store.postgresql.conninfo");
		goto out;
	}
	if (strcmp(out->device.listen, out->management.listen) == 0 &&
	    !strstr(out->device.listen, ":0")) {
		fail(msg, msglen, name, 0, "device.listen and management.listen must differ");
		goto out;
	}
	rc = OTA_OK;
out:
	free(line);
	return rc;
}

enum ota_err ota_config_load(const char *path, struct ota_config *out, char *msg, size_t msglen)
{
	enum ota_err rc = OTA_ERR_IO;
	char *text = NULL, base[OTA_PATH_MAX];
	size_t len = 0;
	FILE *f = fopen(path, "rb");

	if (!f) {
		fail(msg, msglen, path, 0, "cannot open: %s", strerror(errno));
		goto out;
	}
	if (fseek(f, 0, SEEK_END) != 0 || ftell(f) < 0 || ftell(f) > 1024 * 1024) {
		fail(msg, msglen, path, 0, "cannot read or larger than 1 MiB");
		rc = OTA_ERR_CONFIG;
		goto out;
	}
	len = (size_t)ftell(f);
	rewind(f);
	text = malloc(len + 1);
	if (!text) {
		rc = OTA_ERR_NOMEM;
		goto out;
	}
	if (fread(text, 1, len, f) != len) {
		fail(msg, msglen, path, 0, "read error");
		goto out;
	}
	snprintf(base, sizeof(base), "%s", path);
	char *slash = strrchr(base, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(base, sizeof(base), ".");
	rc = ota_config_parse(text, len, path, base, out, msg, msglen);
out:
	if (f)
		fclose(f);
	free(text);
	return rc;
}
