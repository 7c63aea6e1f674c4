/*
 * The POSIX agent's configuration reader. Strict on purpose (in RAUC's manner): a misspelt key
 * is an error rather than a silently ignored line, and every value is checked for its type
 * and bounds before the agent starts.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fwa/agent.h"

enum kind { K_PATH, K_STR, K_U32, K_URL };

struct key {
	const char *name;
	enum kind kind;
	size_t off;
	size_t cap;
	bool required;
	uint32_t min, max;
};

#define F(m) offsetof(struct fwa_posix_config, m), sizeof(((struct fwa_posix_config *)0)->m)
static const struct key keys[] = {
    {"server", K_URL, F(host), true, 0, 0},
    {"cert", K_PATH, F(cert), true, 0, 0},
    {"key", K_PATH, F(key), true, 0, 0},
    {"ca", K_PATH, F(ca), true, 0, 0},
    {"root", K_PATH, F(root), true, 0, 0},
    {"state_dir", K_PATH, F(state_dir), true, 0, 0},
    {"hw_variant", K_STR, F(hw_variant), true, 0, 0},
    {"image_format", K_STR, F(image_format), false, 0, 0},
    {"poll_s", K_U32, offsetof(struct fwa_posix_config, poll_s), 4, false, 1, 604800},
    {"retry_min_ms", K_U32, offsetof(struct fwa_posix_config, retry_min_ms), 4, false, 10, 3600000},
    {"retry_max_ms", K_U32, offsetof(struct fwa_posix_config, retry_max_ms), 4, false, 10,
     86400000},
    {"trial_ms", K_U32, offsetof(struct fwa_posix_config, trial_ms), 4, false, 100, 600000},
    {"trial_deadline_s", K_U32, offsetof(struct fwa_posix_config, trial_deadline_s), 4, false, 1,
     FWA_TRIAL_DEADLINE_MAX_S},
    {"slot_size", K_U32, offsetof(struct fwa_posix_config, slot_size), 4, false, 8192, 1u << 30},
    {"health_window_s", K_U32, offsetof(struct fwa_posix_config, health_window_s), 4, false, 1,
     30u * 86400u},
    {"renew_permille", K_U32, offsetof(struct fwa_posix_config, renew_permille), 4, false, 0, 999},
    {"debug", K_U32, offsetof(struct fwa_posix_config, debug), 4, false, 0, 1},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

__attribute__((format(printf, 5, 6))) static int err_at(char *err, size_t n, const char *path,
                                                        int line, const char *fmt, ...)
{
	va_list ap;
	int k = snprintf(err, n, "%s:%d: ", path, line);

	va_start(ap, fmt);
	if (k >= 0 && (size_t)k < n)
		vsnprintf(err + k, n - (size_t)k, fmt, ap);
	va_end(ap);
	return -1;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* https://host:port with host a name, IPv4 or [IPv6]. */
static int parse_url(struct fwa_posix_config *c, const char *v)
{
	const char *h, *p;
	size_t hl;

	if (strncmp(v, "https://", 8) != 0)
		return -1;
	h = v + 8;
	if (*h == '[') {
		p = strchr(h, ']');
		if (!p || p[1] != ':')
			return -1;
		hl = (size_t)(p - h - 1);
		h++;
		p += 2;
	} else {
		p = strchr(h, ':');
		if (!p)
			return -1;
		hl = (size_t)(p - h);
		p++;
	}
	if (hl == 0 || hl >= sizeof(c->host) || strlen(p) == 0 || strlen(p) > 5 ||
	    strspn(p, "0123456789") != strlen(p) || atoi(p) < 1 || atoi(p) > 65535)
		return -1;
	memcpy(c->host, h, hl);
	c->host[hl] = '\0';
	strcpy(c->port, p);
	snprintf(c->host_header, sizeof(c->host_header), "%s%s%s:%s", v[8] == '[' ? "[" : "",
	         c->host, v[8] == '[' ? "]" : "", c->port);
	return 0;
}

int fwa_posix_config_load(const char *path, struct fwa_posix_config *out, char *err, size_t errlen)
{
	bool seen[NKEYS] = {false};
	char line[2048], dir[FWA_CFG_PATH_MAX];
	const char *slash;
	int lineno = 0, rc = -1;
	FILE *f;

	memset(out, 0, sizeof(*out));
	out->poll_s = 300;
	out->renew_permille = 667;
	out->retry_min_ms = 1000;
	out->retry_max_ms = 300000;
	out->trial_ms = 16700;
	out->trial_deadline_s = FWA_TRIAL_DEADLINE_DEFAULT_S;
	out->slot_size = 262144;
	strcpy(out->image_format, "sim");
	slash = strrchr(path, '/');
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
	f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *k, *v, *eq;
		size_t i;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			err_at(err, errlen, path, lineno, "line too long");
			goto out;
		}
		k = trim(line);
		if (*k == '\0' || *k == '#')
			continue;
		eq = strchr(k, '=');
		if (!eq) {
			err_at(err, errlen, path, lineno, "expected key = value");
			goto out;
		}
		*eq = '\0';
		k = trim(k);
		v = trim(eq + 1);
		for (i = 0; i < NKEYS && strcmp(keys[i].name, k) != 0; i++)
			;
		if (i == NKEYS) {
			err_at(err, errlen, path, lineno, "unknown key '%s'", k);
			goto out;
		}
		if (seen[i]) {
			err_at(err, errlen, path, lineno, "duplicate key '%s'", k);
			goto out;
		}
		seen[i] = true;
		if (*v == '\0') {
			err_at(err, errlen, path, lineno, "empty value for '%s'", k);
			goto out;
		}
		switch (keys[i].kind) {
		case K_URL:
			if (parse_url(out, v) < 0) {
				err_at(err, errlen, path, lineno,
				       "server must be https://host:port");
				goto out;
			}
			break;
		case K_PATH: {
			int n =
			    v[0] == '/'
			        ? snprintf((char *)out + keys[i].off, keys[i].cap, "%s", v)
			        : snprintf((char *)out + keys[i].off, keys[i].cap, "%s/%s", dir, v);
			if (n < 0 || (size_t)n >= keys[i].cap) {
				err_at(err, errlen, path, lineno, "path too long for '%s'", k);
				goto out;
			}
			break;
		}
		case K_STR:
			if (strlen(v) >= keys[i].cap ||
			    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567"
			              "89._-") != strlen(v)) {
				err_at(err, errlen, path, lineno,
				       "'%s' must be 1-%zu of [A-Za-z0-9._-]", k, keys[i].cap - 1);
				goto out;
			}
			strcpy((char *)out + keys[i].off, v);
			break;
		case K_U32: {
			char *end;
			unsigned long n;

			errno = 0;
			n = strtoul(v, &end, 10);
			if (errno || *end || v[0] == '-' || n < keys[i].min || n > keys[i].max) {
				err_at(err, errlen, path, lineno, "'%s' must be an integer %u-%u",
				       k, keys[i].min, keys[i].max);
				goto out;
			}
			*(uint32_t *)(void *)((char *)out + keys[i].off) = (uint32_t)n;
			break;
		}
		}
	}
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].required && !seen[i]) {
			err_at(err, errlen, path, lineno, "missing required key '%s'",
			       keys[i].name);
			goto out;
		}
	if (out->slot_size % 4096) {
		err_at(err, errlen, path, lineno, "slot_size must be a multiple of 4096");
		goto out;
	}
	if (out->retry_min_ms > out->retry_max_ms) {
		err_at(err, errlen, path, lineno, "retry_min_ms is above retry_max_ms");
		goto out;
	}
	rc = 0;
out:
	fclose(f);
	return rc;
}
