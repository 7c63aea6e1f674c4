/*
 * otactl/cmd_admin.c - the auditors' and admins' commands: audit query, export (streamed to
 * a file, with progress), verify (the server's verdict, or an export checked offline by
 * ota-audit-verify), principals and tokens, health, metrics and `config check`.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"

#define PATH_SIZE 4096

static int list_and_print(struct ota_ctl *c, const struct args *a, const char *path,
                          const char *legacy, const struct ota_ctl_col *cols, size_t ncols)
{
	unsigned long long page = 100, max = 0;
	json_t *items;

	if (!arg_uint(a, "page-size", 1000, &page) || !arg_uint(a, "limit", 1000000000, &max) ||
	    page == 0)
		return OTACTL_USAGE;
	int rc = ota_ctl_list(c, path, legacy, (unsigned)page, (size_t)max, &items);
	if (rc != OTACTL_OK)
		return rc;
	ota_ctl_print_list(c, items, cols, ncols);
	json_decref(items);
	return OTACTL_OK;
}

int cmd_audit_query(struct ota_ctl *c, const struct args *a)
{
	static const char *const filters[] = {"since",  "until",   "actor",  "action",
	                                      "device", "rollout", "release"};
	static const struct ota_ctl_col cols[] = {
	    {"SEQ", "seq", COL_STR},          {"AT", "at", COL_TIME},
	    {"ACTOR", "actor", COL_STR},      {"ROLE", "role", COL_STR},
	    {"ACTION", "action", COL_STR},    {"OBJECT", "object", COL_STR},
	    {"DEVICE", "device_id", COL_STR}, {"DETAIL", "detail", COL_STR},
	};
	char path[PATH_SIZE] = "/api/v1/audit";

	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
		const char *v = arg_opt(a, filters[i]);
		if (v && !ota_ctl_query_add(path, sizeof(path), filters[i], v))
			return usage_error(NULL, "--%s: value too long", filters[i]);
	}
	return list_and_print(c, a, path, NULL, cols, sizeof(cols) / sizeof(cols[0]));
}

int cmd_audit_export(struct ota_ctl *c, const struct args *a)
{
	int rc = ota_ctl_download(c, "/api/v1/audit/export", a->pos[0]);

	if (rc == OTACTL_OK && !c->quiet && !c->json)
		printf("audit log exported to %s\n", a->pos[0]);
	return rc;
}

int cmd_audit_pubkey(struct ota_ctl *c, const struct args *a)
{
	return ota_ctl_download(c, "/api/v1/audit/pubkey", a->pos[0]);
}

/* The offline verifier: $OTACTL_AUDIT_VERIFY, else next to otactl, else on PATH. */
static void verifier(char *out, size_t size)
{
	const char *env = getenv("OTACTL_AUDIT_VERIFY");
	char self[PATH_MAX];
	ssize_t n;

	if (env && *env) {
		snprintf(out, size, "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			int w = snprintf(out, size, "%s/ota-audit-verify", self);
			if (w > 0 && (size_t)w < size && access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, size, "ota-audit-verify");
}

int cmd_audit_verify(struct ota_ctl *c, const struct args *a)
{
	if (a->npos == 0) {
		json_t *r = NULL;
		if (arg_opt(a, "pubkey"))
			return usage_error(NULL, "audit verify: --pubkey goes with an export file");
		int rc = ota_ctl_call(c, "GET", "/api/v1/audit/verify", NULL, &r);
		if (rc != OTACTL_OK)
			return rc;
		bool ok = json_is_true(json_object_get(r, "ok"));
		if (c->json)
			ota_ctl_print(c, r);
		else if (!c->quiet && ok)
			printf(
			    "OK: %lld entries, %lld signed checkpoints (verified on the server)\n",
			    (long long)json_integer_value(json_object_get(r, "entries")),
			    (long long)json_integer_value(json_object_get(r, "checkpoints")));
		if (!ok && !c->json)
			ota_ctl_err("FAILED at entry %lld: %s",
			            (long long)json_integer_value(json_object_get(r, "bad_seq")),
			            json_string_value(json_object_get(r, "reason")) ?: "?");
		json_decref(r);
		return ok ? OTACTL_OK : OTACTL_VERIFY;
	}
	const char *pub = arg_opt(a, "pubkey");
	if (!pub)
		return usage_error(NULL, "audit verify EXPORT: --pubkey AUDIT.pub is needed "
		                         "(otactl audit pubkey FILE saves it)");
	char prog[PATH_MAX];
	verifier(prog, sizeof(prog));
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		ota_ctl_err("fork: %s", strerror(errno));
		return OTACTL_LOCAL;
	}
	if (pid == 0) {
		if (c->quiet) {
			int fd = open("/dev/null", O_WRONLY);
			if (fd >= 0)
				dup2(fd, STDOUT_FILENO);
		}
		execlp(prog, prog, "--export", a->pos[0], "--pubkey", pub, (char *)NULL);
		ota_ctl_err("cannot run %s: %s", prog, strerror(errno));
		_exit(127);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) == 127 || WEXITSTATUS(st) == 2)
		return OTACTL_LOCAL;
	return WEXITSTATUS(st) == 0 ? OTACTL_OK : OTACTL_VERIFY;
}

static const struct ota_ctl_col principal_cols[] = {
    {"NAME", "name", COL_STR},          {"ROLE", "role", COL_STR},
    {"DISABLED", "disabled", COL_BOOL}, {"CREATED", "created_at", COL_TIME},
    {"BY", "created_by", COL_STR},
};

int cmd_principals_list(struct ota_ctl *c, const struct args *a)
{
	return list_and_print(c, a, "/api/v1/principals", "principals", principal_cols,
	                      sizeof(principal_cols) / sizeof(principal_cols[0]));
}

static int principal_call(struct ota_ctl *c, const char *path, json_t *body)
{
	json_t *r = NULL;
	int rc = ota_ctl_call(c, "POST", path, body, &r);

	json_decref(body);
	if (rc != OTACTL_OK)
		return rc;
	if (c->json)
		ota_ctl_print(c, r);
	else if (!c->quiet)
		printf("%s: %s%s\n", json_string_value(json_object_get(r, "name")) ?: "?",
		       json_string_value(json_object_get(r, "role")) ?: "?",
		       json_is_true(json_object_get(r, "disabled")) ? ", disabled" : "");
	json_decref(r);
	return OTACTL_OK;
}

int cmd_principals_add(struct ota_ctl *c, const struct args *a)
{
	return principal_call(c, "/api/v1/principals",
	                      json_pack("{s:s, s:s}", "name", a->pos[0], "role", a->pos[1]));
}

int cmd_principals_disable(struct ota_ctl *c, const struct args *a)
{
	char path[PATH_SIZE];

	if (!api_path(path, sizeof(path), "principals/%s/disable", a->pos[0]))
		return usage_error(NULL, "name too long");
	return principal_call(c, path, json_object());
}

int cmd_principals_enable(struct ota_ctl *c, const struct args *a)
{
	char path[PATH_SIZE];

	if (!api_path(path, sizeof(path), "principals/%s/enable", a->pos[0]))
		return usage_error(NULL, "name too long");
	return principal_call(c, path, json_object());
}

int cmd_tokens_list(struct ota_ctl *c, const struct args *a)
{
	static const struct ota_ctl_col cols[] = {
	    {"ID", "id", COL_STR},
	    {"PRINCIPAL", "principal", COL_STR},
	    {"ROLE", "role", COL_STR},
	    {"EXPIRES", "expires_at", COL_TIME},
	    {"REVOKED", "revoked_at", COL_TIME},
	};
	return list_and_print(c, a, "/api/v1/tokens", "tokens", cols,
	                      sizeof(cols) / sizeof(cols[0]));
}

int cmd_tokens_create(struct ota_ctl *c, const struct args *a)
{
	unsigned long long days = 0;
	const char *out = arg_opt(a, "out");
	json_t *r = NULL;

	if (!arg_opt(a, "days") || !arg_uint(a, "days", 3650, &days) || days == 0)
		return usage_error(NULL, "tokens create: --days N (1 or more) is needed");
	json_t *body =
	    json_pack("{s:s, s:I}", "principal", a->pos[0], "expires_in_days", (json_int_t)days);
	int rc = ota_ctl_call(c, "POST", "/api/v1/tokens", body, &r);
	json_decref(body);
	if (rc != OTACTL_OK)
		return rc;
	const char *tok = json_string_value(json_object_get(r, "token")) ?: "";
	if (out) {
		/* The secret goes to a file only its owner reads, never to the terminal. */
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		size_t n = strlen(tok);
		if (fd < 0 || write(fd, tok, n) != (ssize_t)n || write(fd, "\n", 1) != 1 ||
		    close(fd) != 0) {
			ota_ctl_err("%s: %s", out, strerror(errno));
			json_decref(r);
			return OTACTL_LOCAL;
		}
		json_object_del(r, "token");
	}
	if (c->json)
		ota_ctl_print(c, r);
	else if (c->quiet)
		printf("%s\n", out ? json_string_value(json_object_get(r, "id")) ?: "" : tok);
	else if (out)
		printf("token %s for %s written to %s\n",
		       json_string_value(json_object_get(r, "id")) ?: "?", a->pos[0], out);
	else
		printf("token %s for %s (shown once): %s\n",
		       json_string_value(json_object_get(r, "id")) ?: "?", a->pos[0], tok);
	json_decref(r);
	return OTACTL_OK;
}

int cmd_tokens_revoke(struct ota_ctl *c, const struct args *a)
{
	char path[PATH_SIZE];
	json_t *r = NULL;

	if (!api_path(path, sizeof(path), "tokens/%s", a->pos[0]))
		return usage_error(NULL, "token id too long");
	int rc = ota_ctl_call(c, "DELETE", path, NULL, &r);
	if (rc == OTACTL_OK && c->json)
		ota_ctl_print(c, r);
	else if (rc == OTACTL_OK && !c->quiet)
		printf("%s: revoked\n", a->pos[0]);
	json_decref(r);
	return rc;
}

int cmd_health(struct ota_ctl *c, const struct args *a)
{
	json_t *r = NULL;
	int rc = ota_ctl_call(c, "GET", "/api/v1/health", NULL, &r);

	(void)a;
	if (rc == OTACTL_OK)
		ota_ctl_print(c, r);
	json_decref(r);
	return rc;
}

int cmd_metrics(struct ota_ctl *c, const struct args *a)
{
	struct ota_ctl_resp r;
	int rc = ota_ctl_call_raw(c, "GET", "/metrics", NULL, 0, NULL, &r);

	(void)a;
	if (rc == OTACTL_OK && !c->quiet)
		fwrite(r.body, 1, r.len, stdout);
	ota_ctl_resp_free(&r);
	return rc;
}

int cmd_config_check(struct ota_ctl *c, const struct args *a)
{
	json_t *r = NULL;

	(void)a;
	if (!c->quiet && !c->json) {
		printf("config file: %s\n", c->cfg.source[0] ? c->cfg.source : "(none)");
		printf("server:      %s\n", c->cfg.server);
		printf("ca:          %s\n", c->cfg.ca[0] ? c->cfg.ca : "(system CAs)");
		if (c->cfg.cert[0])
			printf("certificate: %s (key %s)\n", c->cfg.cert, c->cfg.key);
		if (c->cfg.token_file[0])
			printf("token file:  %s\n", c->cfg.token_file);
		if (!c->cfg.cert[0] && !c->cfg.token_file[0])
			printf("identity:    none configured (set cert and key, or token_file)\n");
	}
	int rc = ota_ctl_call(c, "GET", "/api/v1/health", NULL, &r);
	if (rc != OTACTL_OK)
		return rc;
	if (c->json) {
		json_t *j = json_pack(
		    "{s:s, s:s, s:O?, s:O?}", "config_file", c->cfg.source, "server", c->cfg.server,
		    "caller", json_object_get(r, "caller"), "role", json_object_get(r, "role"));
		ota_ctl_print(c, j);
		json_decref(j);
	} else if (!c->quiet) {
		printf("the server sees: %s, role %s\n",
		       json_string_value(json_object_get(r, "caller")) ?: "?",
		       json_string_value(json_object_get(r, "role")) ?: "?");
	}
	json_decref(r);
	return OTACTL_OK;
}

/* ---- webhooks (docs/events.md) ---- */

int cmd_webhooks_list(struct ota_ctl *c, const struct args *a)
{
	static const struct ota_ctl_col cols[] = {
	    {"ID", "id", COL_STR},
	    {"URL", "url", COL_STR},
	    {"TYPES", "types", COL_LIST},
	    {"STATE", "state", COL_STR},
	    {"LAST ERROR", "last_error", COL_STR},
	};
	return list_and_print(c, a, "/api/v1/webhooks", NULL, cols, sizeof(cols) / sizeof(cols[0]));
}

int cmd_webhooks_add(struct ota_ctl *c, const struct args *a)
{
	const char *out = arg_opt(a, "secret-out");
	json_t *types = json_array(), *r = NULL;
	const char *p = a->pos[1];

	while (types && *p) {
		size_t n = strcspn(p, ",");
		if (n)
			json_array_append_new(types, json_stringn(p, n));
		p += n + (p[n] == ',');
	}
	json_t *body = json_pack("{s:s, s:o}", "url", a->pos[0], "types", types);
	int rc = ota_ctl_call(c, "POST", "/api/v1/webhooks", body, &r);
	json_decref(body);
	if (rc != OTACTL_OK)
		return rc;
	const char *secret = json_string_value(json_object_get(r, "secret")) ?: "";
	const char *id = json_string_value(json_object_get(r, "id")) ?: "?";
	if (out) {
		/* The secret goes to a file only its owner reads, never to the terminal. */
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		size_t n = strlen(secret);
		if (fd < 0 || write(fd, secret, n) != (ssize_t)n || write(fd, "\n", 1) != 1 ||
		    close(fd) != 0) {
			ota_ctl_err("%s: %s", out, strerror(errno));
			json_decref(r);
			return OTACTL_LOCAL;
		}
		json_object_del(r, "secret");
	}
	if (c->json)
		ota_ctl_print(c, r);
	else if (c->quiet)
		printf("%s\n", out ? id : secret);
	else if (out)
		printf("webhook %s: signing secret written to %s\n", id, out);
	else
		printf("webhook %s: signing secret (shown once): %s\n", id, secret);
	json_decref(r);
	return OTACTL_OK;
}

int cmd_webhooks_show(struct ota_ctl *c, const struct args *a)
{
	char path[PATH_SIZE];
	json_t *r = NULL;

	if (!api_path(path, sizeof(path), "webhooks/%s", a->pos[0]))
		return usage_error(NULL, "webhook id too long");
	int rc = ota_ctl_call(c, "GET", path, NULL, &r);
	if (rc == OTACTL_OK)
		ota_ctl_print(c, r);
	json_decref(r);
	return rc;
}

int cmd_webhooks_delete(struct ota_ctl *c, const struct args *a)
{
	char path[PATH_SIZE];
	json_t *r = NULL;

	if (!api_path(path, sizeof(path), "webhooks/%s", a->pos[0]))
		return usage_error(NULL, "webhook id too long");
	int rc = ota_ctl_call(c, "DELETE", path, NULL, &r);
	if (rc == OTACTL_OK && c->json)
		ota_ctl_print(c, r);
	else if (rc == OTACTL_OK && !c->quiet)
		printf("%s: deleted\n", a->pos[0]);
	json_decref(r);
	return rc;
}

int cmd_webhooks_redeliver(struct ota_ctl *c, const struct args *a)
{
	char path[PATH_SIZE];
	unsigned long long from = 0;
	json_t *r = NULL;

	if (!arg_uint(a, "from", (unsigned long long)INT64_MAX, &from))
		return OTACTL_USAGE;
	if (!api_path(path, sizeof(path), "webhooks/%s/redeliver", a->pos[0]))
		return usage_error(NULL, "webhook id too long");
	json_t *body =
	    arg_opt(a, "from") ? json_pack("{s:I}", "from_seq", (json_int_t)from) : json_object();
	int rc = ota_ctl_call(c, "POST", path, body, &r);
	json_decref(body);
	if (rc == OTACTL_OK && c->json)
		ota_ctl_print(c, r);
	else if (rc == OTACTL_OK && !c->quiet)
		printf("%s: active, delivering after seq %lld\n", a->pos[0],
		       (long long)json_integer_value(json_object_get(r, "cursor")));
	json_decref(r);
	return rc;
}
