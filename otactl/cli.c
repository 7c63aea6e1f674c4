/*
 * otactl/cli.c - the command line: global options (anywhere on the line), the command table
 * with every command's usage and options, --help for each, and the dispatch. A command sees
 * only its own words and options, checked against the table before it runs.
 */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"

const char *ota_ctl_current_sub = "";

#define LIST_OPTS "page-size=,limit="
const struct command ota_ctl_commands[] = {
    {"devices", "list",
     "devices list [--hw-variant V] [--version V] [--tag T] [--admission "
     "pending|approved|rejected]\n"
     "             [--status admitted|decommissioned] [--seen-before UNIX] [--seen-after UNIX]\n"
     "             [--rollout ID] [--page-size N] [--limit N]",
     "list devices, every page",
     "hw-variant=,version=,tag=,admission=,status=,seen-before=,"
     "seen-after=,rollout=," LIST_OPTS,
     0, 0, cmd_devices_list},
    {"devices", "show", "devices show DEVICE", "one device and its deployments", "", 1, 1,
     cmd_devices_show},
    {"devices", "register", "devices register DEVICE [--fingerprint SHA256] [--pending]",
     "pre-register a device", "fingerprint=,pending", 1, 1, cmd_devices_register},
    {"devices", "approve", "devices approve DEVICE...", "admit pending devices", "", 1, 64,
     cmd_devices_approve},
    {"devices", "reject", "devices reject DEVICE...", "refuse devices", "", 1, 64,
     cmd_devices_reject},
    {"devices", "decommission", "devices decommission DEVICE...", "retire devices", "", 1, 64,
     cmd_devices_decommission},
    {"devices", "reprovision", "devices reprovision DEVICE --fingerprint SHA256",
     "pin a new certificate and admit the device again", "fingerprint=", 1, 1,
     cmd_devices_reprovision},
    {"devices", "tag", "devices tag DEVICE TAG...", "add tags to a device", "", 2, 33,
     cmd_devices_tag},
    {"devices", "untag", "devices untag DEVICE TAG...", "remove tags from a device", "", 2, 33,
     cmd_devices_untag},
    {"images", "upload", "images upload FILE", "upload an image (streamed, with progress)", "", 1,
     1, cmd_images_upload},
    {"images", "list", "images list [--page-size N] [--limit N]", "list uploaded images", LIST_OPTS,
     0, 0, cmd_images_list},
    {"images", "delete", "images delete SHA256", "delete an image no release uses", "", 1, 1,
     cmd_images_delete},
    {"releases", "add", "releases add MANIFEST [--image SHA256]",
     "register a signed manifest (its image must be uploaded)", "image=", 1, 1, cmd_releases_add},
    {"releases", "list", "releases list [--page-size N] [--limit N]", "list releases", LIST_OPTS, 0,
     0, cmd_releases_list},
    {"releases", "show", "releases show RELEASE", "one release", "", 1, 1, cmd_releases_show},
    {"releases", "delete", "releases delete RELEASE", "delete a release nothing references", "", 1,
     1, cmd_releases_delete},
    {"deltas", "upload", "deltas upload RELEASE DELTA [--meta FILE]",
     "upload a delta and register its signed metadata (default DELTA.json)", "meta=", 2, 2,
     cmd_deltas_upload},
    {"deltas", "list", "deltas list RELEASE [--page-size N] [--limit N]",
     "list a release's deltas with the failures devices reported", LIST_OPTS, 1, 1,
     cmd_deltas_list},
    {"deltas", "delete", "deltas delete RELEASE DELTA", "delete a delta (and its file)", "", 2, 2,
     cmd_deltas_delete},
    {"roots", "add", "roots add ROOT.json", "upload the next root metadata (admin)", "", 1, 1,
     cmd_roots_add},
    {"deploy", NULL, "deploy DEVICE RELEASE", "deploy a release to one device", "", 2, 2,
     cmd_deploy},
    {"deployments", "show", "deployments show DEPLOYMENT", "a deployment and its events", "", 1, 1,
     cmd_deployments_show},
    {"revoke", NULL, "revoke FINGERPRINT [--reason TEXT]",
     "revoke a client certificate by SHA-256 (admin)", "reason=", 1, 1, cmd_revoke},
    {"rollouts", "create",
     "rollouts create -f ROLLOUT.json\n"
     "rollouts create --name NAME --release RELEASE --stage PERCENT[:k=v,...]... [--hw-variant "
     "V]...\n"
     "             [--baseline VERSION]... [--baseline-range RANGE] [--tag-all T]... [--tag-any "
     "T]...\n"
     "             [--window DAYS@HH:MM+MINUTES[/ZONE]] [--budget MAX] [--budget-per-tag KEY=MAX]\n"
     "             [--retry ATTEMPTS[:BACKOFF_SECONDS]]\n"
     "  stage keys: success=PCT failure=PCT min=N soak=SECONDS approval (e.g. 1:failure=0,min=3)\n"
     "  window: e.g. mon,tue,wed@02:00+120/Europe/Berlin",
     "define a rollout (a draft)",
     "f=,file=,name=,release=,stage=,hw-variant=,baseline=,baseline-range=,tag-all=,tag-any=,"
     "window=,budget=,budget-per-tag=,retry=",
     0, 0, cmd_rollouts_create},
    {"rollouts", "list", "rollouts list [--state STATE] [--page-size N] [--limit N]",
     "list rollouts", "state=," LIST_OPTS, 0, 0, cmd_rollouts_list},
    {"rollouts", "show", "rollouts show ROLLOUT", "a rollout and its progress", "", 1, 1,
     cmd_rollouts_show},
    {"rollouts", "start", "rollouts start ROLLOUT [--reason TEXT]", "draft -> running",
     "reason=", 1, 1, cmd_rollouts_action},
    {"rollouts", "pause", "rollouts pause ROLLOUT [--reason TEXT]", "stop offering the release",
     "reason=", 1, 1, cmd_rollouts_action},
    {"rollouts", "resume", "rollouts resume ROLLOUT [--reason TEXT]", "paused -> running",
     "reason=", 1, 1, cmd_rollouts_action},
    {"rollouts", "approve", "rollouts approve ROLLOUT [--reason TEXT]",
     "start the next stage after an approval wait", "reason=", 1, 1, cmd_rollouts_action},
    {"rollouts", "abort", "rollouts abort ROLLOUT [--reason TEXT]", "end the rollout", "reason=", 1,
     1, cmd_rollouts_action},
    {"rollouts", "rollback", "rollouts rollback ROLLOUT --release RELEASE [--all]",
     "deploy an earlier release to the failed (or all updated) devices, then abort", "release=,all",
     1, 1, cmd_rollouts_rollback},
    {"rollouts", "devices", "rollouts devices ROLLOUT [--state STATE] [--page-size N] [--limit N]",
     "the rollout's devices", "state=," LIST_OPTS, 1, 1, cmd_rollouts_devices},
    {"rollouts", "watch", "rollouts watch ROLLOUT [--interval SECONDS]",
     "follow the stages until the rollout completes (exit 0), halts or is aborted (exit 8)",
     "interval=", 1, 1, cmd_rollouts_watch},
    {"audit", "query",
     "audit query [--since UNIX] [--until UNIX] [--actor A] [--action A] [--device D]\n"
     "            [--rollout R] [--release R] [--page-size N] [--limit N]",
     "audit entries, oldest first",
     "since=,until=,actor=,action=,device=,rollout=,release=," LIST_OPTS, 0, 0, cmd_audit_query},
    {"audit", "export", "audit export FILE", "the whole log as NDJSON (with progress)", "", 1, 1,
     cmd_audit_export},
    {"audit", "verify", "audit verify [EXPORT --pubkey AUDIT.pub]",
     "verify the log on the server, or an export offline (ota-audit-verify)", "pubkey=", 0, 1,
     cmd_audit_verify},
    {"audit", "pubkey", "audit pubkey FILE", "save the audit public key", "", 1, 1,
     cmd_audit_pubkey},
    {"principals", "list", "principals list", "list principals (admin)", LIST_OPTS, 0, 0,
     cmd_principals_list},
    {"principals", "add", "principals add NAME admin|operator|auditor",
     "create a principal, the owner of tokens (admin)", "", 2, 2, cmd_principals_add},
    {"principals", "disable", "principals disable NAME", "refuse its tokens and certificate", "", 1,
     1, cmd_principals_disable},
    {"principals", "enable", "principals enable NAME", "enable a disabled principal", "", 1, 1,
     cmd_principals_enable},
    {"tokens", "list", "tokens list", "list API tokens, without secrets (admin)", LIST_OPTS, 0, 0,
     cmd_tokens_list},
    {"tokens", "create", "tokens create PRINCIPAL --days N [--out FILE]",
     "create a token; its secret is printed once (or written to FILE, mode 0600)", "days=,out=", 1,
     1, cmd_tokens_create},
    {"tokens", "revoke", "tokens revoke TOKEN_ID", "revoke a token", "", 1, 1, cmd_tokens_revoke},
    {"webhooks", "list", "webhooks list", "list webhooks and their delivery state (admin)",
     LIST_OPTS, 0, 0, cmd_webhooks_list},
    {"webhooks", "add", "webhooks add URL TYPE[,TYPE...] [--secret-out FILE]",
     "register a webhook; its signing secret is printed once (or written to FILE, mode 0600)",
     "secret-out=", 2, 2, cmd_webhooks_add},
    {"webhooks", "show", "webhooks show ID", "one webhook: cursor, attempts, last error", "", 1, 1,
     cmd_webhooks_show},
    {"webhooks", "delete", "webhooks delete ID", "stop and delete a webhook", "", 1, 1,
     cmd_webhooks_delete},
    {"webhooks", "redeliver", "webhooks redeliver ID [--from SEQ]",
     "make a webhook active again, from its cursor or from event SEQ", "from=", 1, 1,
     cmd_webhooks_redeliver},
    {"health", NULL, "health", "server status, schema and root versions", "", 0, 0, cmd_health},
    {"metrics", NULL, "metrics", "the Prometheus metrics as text", "", 0, 0, cmd_metrics},
    {"config", "check", "config check",
     "show the configuration in use and the identity and role the server sees", "", 0, 0,
     cmd_config_check},
};
const size_t ota_ctl_commands_count = sizeof(ota_ctl_commands) / sizeof(ota_ctl_commands[0]);

static const char global_help[] =
    "Usage: otactl [OPTIONS] COMMAND [ARGS]\n"
    "The command line of the otad management API.\n"
    "\n"
    "Options (anywhere on the line):\n"
    "  --server URL       management API (default https://127.0.0.1:9443)\n"
    "  --ca FILE          CA that verifies the server's certificate\n"
    "  --cert FILE        client certificate (PEM), with --key FILE\n"
    "  --token-file FILE  API token (first line), sent as a bearer token\n"
    "  --config FILE      config file (default ~/.config/otactl/config)\n"
    "  --json             print the API's JSON as is\n"
    "  -q, --quiet        print nothing but what scripts need (ids)\n"
    "  -h, --help         this help, or a command's with COMMAND --help\n"
    "  --version          otactl's version\n"
    "Settings come from the flags, then OTACTL_SERVER, OTACTL_CA, OTACTL_CERT, OTACTL_KEY,\n"
    "OTACTL_TOKEN_FILE, OTACTL_CONFIG, then the config file.\n"
    "\n"
    "Exit status: 0 ok, 1 refused by the server, 2 usage or configuration, 3 connection or\n"
    "TLS failure, 4 not found, 5 server error, 6 local file error, 7 audit verification\n"
    "failed, 8 the watched rollout halted or was aborted.\n"
    "\n"
    "Commands:\n";

static void print_commands(FILE *f, const char *group)
{
	for (size_t i = 0; i < ota_ctl_commands_count; i++) {
		const struct command *k = &ota_ctl_commands[i];
		char name[64];
		if (group && strcmp(group, k->group) != 0)
			continue;
		snprintf(name, sizeof(name), "%s%s%s", k->group, k->sub ? " " : "",
		         k->sub ? k->sub : "");
		fprintf(f, "  %-22s %s\n", name, k->summary);
	}
}

static void print_usage(FILE *f, const struct command *k)
{
	fprintf(f, "Usage: otactl %s\n%s.\n", k->usage, k->summary);
}

int usage_error(const struct command *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("otactl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (cmd)
		fprintf(stderr, "Usage: otactl %s\n", cmd->usage);
	return OTACTL_USAGE;
}

const char *arg_opt(const struct args *a, const char *name)
{
	const char *v = NULL;

	for (unsigned i = 0; i < a->nopt; i++)
		if (strcmp(a->opt[i].name, name) == 0)
			v = a->opt[i].val;
	return v;
}

const char *arg_nth(const struct args *a, const char *name, unsigned n)
{
	for (unsigned i = 0; i < a->nopt; i++)
		if (strcmp(a->opt[i].name, name) == 0 && n-- == 0)
			return a->opt[i].val;
	return NULL;
}

bool arg_uint(const struct args *a, const char *name, unsigned long long max,
              unsigned long long *out)
{
	const char *v = arg_opt(a, name);
	char *end;

	if (!v)
		return true;
	if (*v < '0' || *v > '9' || (*out = strtoull(v, &end, 10), *end) || *out > max) {
		ota_ctl_err("--%s %s: expected a whole number up to %llu", name, v, max);
		return false;
	}
	return true;
}

bool api_path(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	size_t o = 0;
	bool ok = true;

	va_start(ap, fmt);
	o = (size_t)snprintf(out, size, "/api/v1/");
	for (const char *p = fmt; *p && ok; p++) {
		if (p[0] == '%' && p[1] == 's') {
			if (!ota_ctl_escape(va_arg(ap, const char *), out + o, size - o))
				ok = false;
			o += strlen(out + o);
			p++;
		} else if (o + 1 < size) {
			out[o++] = *p;
			out[o] = '\0';
		} else {
			ok = false;
		}
	}
	va_end(ap);
	return ok;
}

/* Is --name (with or without a value) one of the command's options? */
static int opt_kind(const char *opts, const char *name, size_t len)
{
	const char *p = opts;

	while (p && *p) {
		size_t n = strcspn(p, ",=");
		if (n == len && strncmp(p, name, len) == 0)
			return p[n] == '=' ? 2 : 1;
		p += n;
		if (*p == '=')
			p++;
		if (*p == ',')
			p++;
	}
	return 0;
}

static const struct command *find(const char *group, const char *sub, bool *group_known)
{
	*group_known = false;
	for (size_t i = 0; i < ota_ctl_commands_count; i++) {
		const struct command *k = &ota_ctl_commands[i];
		if (strcmp(k->group, group) != 0)
			continue;
		*group_known = true;
		if (!k->sub || (sub && strcmp(k->sub, sub) == 0))
			return k;
	}
	return NULL;
}

int ota_ctl_main(int argc, char **argv)
{
	struct ota_ctl c = {0};
	struct ota_ctl_config flags = {0};
	const char *config = NULL;
	const char *words[ARGS_MAX * 2];
	unsigned nwords = 0;
	bool help = false;
	char msg[1200];
	int rc;

	/* Global options are taken anywhere; the rest are the command's words. */
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		struct {
			const char *name;
			char *dst;
			size_t size;
		} g[] = {{"--server", flags.server, sizeof(flags.server)},
		         {"--ca", flags.ca, sizeof(flags.ca)},
		         {"--cert", flags.cert, sizeof(flags.cert)},
		         {"--key", flags.key, sizeof(flags.key)},
		         {"--token-file", flags.token_file, sizeof(flags.token_file)}};
		bool taken = false;
		for (size_t k = 0; k < sizeof(g) / sizeof(g[0]); k++) {
			size_t n = strlen(g[k].name);
			if (strncmp(s, g[k].name, n) != 0 || (s[n] != '\0' && s[n] != '='))
				continue;
			const char *v = s[n] == '=' ? s + n + 1 : (i + 1 < argc ? argv[++i] : NULL);
			if (!v || !*v)
				return usage_error(NULL, "%s needs a value", g[k].name);
			if ((size_t)snprintf(g[k].dst, g[k].size, "%s", v) >= g[k].size)
				return usage_error(NULL, "%s: value too long", g[k].name);
			taken = true;
		}
		if (taken)
			continue;
		if (strcmp(s, "--config") == 0 || strncmp(s, "--config=", 9) == 0) {
			config = s[8] == '=' ? s + 9 : (i + 1 < argc ? argv[++i] : NULL);
			if (!config || !*config)
				return usage_error(NULL, "--config needs a value");
		} else if (strcmp(s, "--json") == 0) {
			c.json = true;
		} else if (strcmp(s, "-q") == 0 || strcmp(s, "--quiet") == 0) {
			c.quiet = true;
		} else if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
			help = true;
		} else if (strcmp(s, "--version") == 0) {
			printf("otactl %s\n", OTACTL_VERSION);
			return OTACTL_OK;
		} else {
			if (nwords >= sizeof(words) / sizeof(words[0]))
				return usage_error(NULL, "too many arguments");
			words[nwords++] = s;
		}
	}
	if (nwords == 0 || strcmp(words[0], "help") == 0) {
		FILE *f = help || nwords ? stdout : stderr;
		const struct command *k = NULL;
		bool gk = false;
		if (nwords >= 2)
			k = find(words[1], nwords >= 3 ? words[2] : NULL, &gk);
		if (k && (k->sub == NULL || nwords >= 3)) {
			print_usage(stdout, k);
			return OTACTL_OK;
		}
		fputs(global_help, f);
		print_commands(f, gk ? words[1] : NULL);
		return help || nwords ? OTACTL_OK : OTACTL_USAGE;
	}
	bool group_known;
	const struct command *cmd = find(words[0], nwords > 1 ? words[1] : NULL, &group_known);
	if (!cmd) {
		if (!group_known)
			return usage_error(
			    NULL, "unknown command \"%s\" (otactl --help lists them)", words[0]);
		if (help) {
			printf("Usage: otactl %s SUBCOMMAND ...\n", words[0]);
			print_commands(stdout, words[0]);
			return OTACTL_OK;
		}
		fprintf(stderr, "otactl: %s: %s%s\n", words[0],
		        nwords > 1 ? "unknown subcommand " : "a subcommand is needed",
		        nwords > 1 ? words[1] : "");
		print_commands(stderr, words[0]);
		return OTACTL_USAGE;
	}
	if (help) {
		print_usage(stdout, cmd);
		return OTACTL_OK;
	}
	ota_ctl_current_sub = cmd->sub ? cmd->sub : cmd->group;

	/* The command's own words and options. */
	struct args a = {0};
	bool only_pos = false;
	for (unsigned i = cmd->sub ? 2 : 1; i < nwords; i++) {
		const char *s = words[i];
		if (!only_pos && strcmp(s, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (!only_pos && s[0] == '-' && s[1] != '\0') {
			const char *name = s + (s[1] == '-' ? 2 : 1);
			const char *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			int kind = opt_kind(cmd->opts, name, len);
			if (!kind)
				return usage_error(cmd, "unknown option %.*s",
				                   (int)len + (s[1] == '-' ? 2 : 1), s);
			const char *v = NULL;
			if (kind == 2) {
				v = eq ? eq + 1 : (i + 1 < nwords ? words[++i] : NULL);
				if (!v)
					return usage_error(cmd, "option %s needs a value", s);
			} else if (eq) {
				return usage_error(cmd, "option %.*s takes no value", (int)len + 2,
				                   s);
			}
			if (a.nopt >= ARGS_MAX)
				return usage_error(cmd, "too many options");
			/* Stored under the name without dashes or value; names are static. */
			static char names[ARGS_MAX][32];
			snprintf(names[a.nopt], sizeof(names[0]), "%.*s", (int)len, name);
			a.opt[a.nopt].name = names[a.nopt];
			a.opt[a.nopt].val = kind == 2 ? v : "";
			a.nopt++;
			continue;
		}
		if (a.npos >= ARGS_MAX)
			return usage_error(cmd, "too many arguments");
		a.pos[a.npos++] = s;
	}
	if (a.npos < cmd->min_pos || a.npos > cmd->max_pos)
		return usage_error(cmd, "%s%s%s: expected %u%s argument%s, got %u", cmd->group,
		                   cmd->sub ? " " : "", cmd->sub ? cmd->sub : "", cmd->min_pos,
		                   cmd->max_pos > cmd->min_pos ? " or more" : "",
		                   cmd->min_pos == 1 && cmd->max_pos == 1 ? "" : "s", a.npos);

	rc = ota_ctl_config_resolve(config, &flags, &c.cfg, msg, sizeof(msg));
	if (rc != OTACTL_OK) {
		ota_ctl_err("%s", msg);
		return rc;
	}
	c.tty = isatty(STDERR_FILENO) == 1;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		ota_ctl_err("cannot initialise libcurl");
		return OTACTL_LOCAL;
	}
	rc = cmd->run(&c, &a);
	ota_ctl_close(&c);
	curl_global_cleanup();
	return rc;
}
