/*
 * otactl/config.c - where otactl finds the management API and its identity: a strict config
 * file (the same "key = value" style as otad.conf: unknown or duplicate keys are errors with
 * the line number), then OTACTL_* environment variables, then command-line flags, each
 * overriding the one before.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

struct key {
	const char *name, *env;
	size_t off, size;
	bool path;
};

#define F(m) offsetof(struct ota_ctl_config, m), sizeof(((struct ota_ctl_config *)0)->m)
static const struct key keys[] = {
    {"server", "OTACTL_SERVER", F(server), false},
    {"ca", "OTACTL_CA", F(ca), true},
    {"cert", "OTACTL_CERT", F(cert), true},
    {"key", "OTACTL_KEY", F(key), true},
    {"token_file", "OTACTL_TOKEN_FILE", F(token_file), true},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

static bool set(const struct key *k, const char *val, const char *base_dir,
                struct ota_ctl_config *c)
{
	char *dst = (char *)c + k->off;
	int n;

	if (k->path && base_dir && val[0] != '/')
		n = snprintf(dst, k->size, "%s/%s", base_dir, val);
	else
		n = snprintf(dst, k->size, "%s", val);
	return n >= 0 && (size_t)n < k->size;
}

int ota_ctl_config_parse(const char *text, const char *name, const char *base_dir,
                         struct ota_ctl_config *out, char *msg, size_t msglen)
{
	unsigned seen[NKEYS] = {0}, lineno = 0;
	char *copy = strdup(text), *save = NULL, *line;
	int rc = OTACTL_USAGE;

	if (!copy) {
		snprintf(msg, msglen, "%s: out of memory", name);
		return OTACTL_LOCAL;
	}
	/* strsep keeps empty lines, so line numbers stay right. */
	save = copy;
	while ((line = strsep(&save, "\n")) != NULL) {
		lineno++;
		char *s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(msg, msglen, "%s:%u: expected \"key = value\"", name, lineno);
			goto out;
		}
		*eq = '\0';
		char *key = trim(s), *val = trim(eq + 1);
		size_t k;
		for (k = 0; k < NKEYS; k++)
			if (strcmp(keys[k].name, key) == 0)
				break;
		if (k == NKEYS) {
			snprintf(
			    msg, msglen,
			    "%s:%u: unknown key \"%s\" (known: server, ca, cert, key, token_file)",
			    name, lineno, key);
			goto out;
		}
		if (seen[k]) {
			snprintf(msg, msglen, "%s:%u: duplicate key \"%s\" (first on line %u)",
			         name, lineno, key, seen[k]);
			goto out;
		}
		seen[k] = lineno;
		if (*val == '\0') {
			snprintf(msg, msglen, "%s:%u: %s: empty value", name, lineno, key);
			goto out;
		}
		if (!set(&keys[k], val, base_dir, out)) {
			snprintf(msg, msglen, "%s:%u: %s: value too long", name, lineno, key);
			goto out;
		}
	}
	rc = OTACTL_OK;
out:
	free(copy);
	return rc;
}

static int load_file(const char *path, bool must_exist, struct ota_ctl_config *out, char *msg,
                     size_t msglen)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL, dir[OTACTL_PATH_MAX];
	int rc = OTACTL_USAGE;

	if (!f) {
		if (!must_exist && errno == ENOENT)
			return OTACTL_OK;
		snprintf(msg, msglen, "config file %s: %s", path, strerror(errno));
		return OTACTL_USAGE;
	}
	text = calloc(1, 65537);
	if (!text) {
		snprintf(msg, msglen, "out of memory");
		rc = OTACTL_LOCAL;
		goto out;
	}
	size_t n = fread(text, 1, 65536, f);
	if (ferror(f) || !feof(f)) {
		snprintf(msg, msglen, "config file %s: unreadable or larger than 64 KiB", path);
		goto out;
	}
	if (memchr(text, '\0', n)) {
		snprintf(msg, msglen, "config file %s: NUL byte", path);
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	rc = ota_ctl_config_parse(text, path, dir, out, msg, msglen);
	if (rc == OTACTL_OK)
		snprintf(out->source, sizeof(out->source), "%s", path);
out:
	free(text);
	fclose(f);
	return rc;
}

int ota_ctl_config_resolve(const char *config_path, const struct ota_ctl_config *flags,
                           struct ota_ctl_config *out, char *msg, size_t msglen)
{
	char def[OTACTL_PATH_MAX];
	const char *path = config_path;
	bool must_exist = true;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!path || !*path)
		path = getenv("OTACTL_CONFIG");
	if (!path || !*path) {
		const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
		must_exist = false;
		if (xdg && *xdg)
			snprintf(def, sizeof(def), "%s/otactl/config", xdg);
		else if (home && *home)
			snprintf(def, sizeof(def), "%s/.config/otactl/config", home);
		else
			def[0] = '\0';
		path = def;
	}
	if (*path) {
		rc = load_file(path, must_exist, out, msg, msglen);
		if (rc != OTACTL_OK)
			return rc;
	}
	for (size_t k = 0; k < NKEYS; k++) {
		const char *v = getenv(keys[k].env);
		if (v && *v && !set(&keys[k], v, NULL, out)) {
			snprintf(msg, msglen, "%s: value too long", keys[k].env);
			return OTACTL_USAGE;
		}
	}
	for (size_t k = 0; k < NKEYS; k++) {
		const char *v = (const char *)flags + keys[k].off;
		if (*v && !set(&keys[k], v, NULL, out)) {
			snprintf(msg, msglen, "--%s: value too long", keys[k].name);
			return OTACTL_USAGE;
		}
	}
	if (!out->server[0])
		snprintf(out->server, sizeof(out->server), "https://127.0.0.1:9443");
	size_t n = strlen(out->server);
	while (n && out->server[n - 1] == '/')
		out->server[--n] = '\0';
	if (strncmp(out->server, "https://", 8) != 0) {
		snprintf(msg, msglen, "server %s: must be an https:// URL", out->server);
		return OTACTL_USAGE;
	}
	if (!out->cert[0] != !out->key[0]) {
		snprintf(msg, msglen, "a client certificate needs both cert and key");
		return OTACTL_USAGE;
	}
	return OTACTL_OK;
}
