/*
 * otactl/cmd.h - the commands' shared parts: a command's parsed arguments (positional
 * words and --options, repeated options kept in order) and the command table.
 */
#ifndef OTA_CTL_CMD_H
#define OTA_CTL_CMD_H

#include "ctl.h"

#define ARGS_MAX 64

struct args {
	const char *pos[ARGS_MAX];
	unsigned npos;
	struct {
		const char *name, *val;
	} opt[ARGS_MAX];
	unsigned nopt;
};

/* The last value of --name, or NULL. */
const char *arg_opt(const struct args *a, const char *name);
/* The i-th value (0-based) of a repeated --name, or NULL. */
const char *arg_nth(const struct args *a, const char *name, unsigned i);
/* Parses an unsigned decimal option value; false (after a message) when malformed. */
bool arg_uint(const struct args *a, const char *name, unsigned long long max,
              unsigned long long *out);

struct command {
	const char *group, *sub; /* sub NULL: the group is the command */
	const char *usage, *summary;
	const char *opts; /* options taken: "name=" (with a value) or "name", comma separated */
	unsigned min_pos, max_pos;
	int (*run)(struct ota_ctl *c, const struct args *a);
};

extern const struct command ota_ctl_commands[];
extern const size_t ota_ctl_commands_count;

/* Usage message for a command, exit 2. */
int usage_error(const struct command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Command implementations, by file. */
int cmd_devices_list(struct ota_ctl *c, const struct args *a);
int cmd_devices_show(struct ota_ctl *c, const struct args *a);
int cmd_devices_register(struct ota_ctl *c, const struct args *a);
int cmd_devices_approve(struct ota_ctl *c, const struct args *a);
int cmd_devices_reject(struct ota_ctl *c, const struct args *a);
int cmd_devices_decommission(struct ota_ctl *c, const struct args *a);
int cmd_devices_reprovision(struct ota_ctl *c, const struct args *a);
int cmd_devices_tag(struct ota_ctl *c, const struct args *a);
int cmd_devices_untag(struct ota_ctl *c, const struct args *a);
int cmd_images_upload(struct ota_ctl *c, const struct args *a);
int cmd_images_list(struct ota_ctl *c, const struct args *a);
int cmd_images_delete(struct ota_ctl *c, const struct args *a);
int cmd_releases_add(struct ota_ctl *c, const struct args *a);
int cmd_releases_list(struct ota_ctl *c, const struct args *a);
int cmd_releases_show(struct ota_ctl *c, const struct args *a);
int cmd_releases_delete(struct ota_ctl *c, const struct args *a);
int cmd_roots_add(struct ota_ctl *c, const struct args *a);
int cmd_deltas_upload(struct ota_ctl *c, const struct args *a);
int cmd_deltas_list(struct ota_ctl *c, const struct args *a);
int cmd_deltas_delete(struct ota_ctl *c, const struct args *a);
int cmd_deploy(struct ota_ctl *c, const struct args *a);
int cmd_deployments_show(struct ota_ctl *c, const struct args *a);
int cmd_revoke(struct ota_ctl *c, const struct args *a);

int cmd_rollouts_create(struct ota_ctl *c, const struct args *a);
int cmd_rollouts_list(struct ota_ctl *c, const struct args *a);
int cmd_rollouts_show(struct ota_ctl *c, const struct args *a);
int cmd_rollouts_action(struct ota_ctl *c, const struct args *a);
int cmd_rollouts_rollback(struct ota_ctl *c, const struct args *a);
int cmd_rollouts_devices(struct ota_ctl *c, const struct args *a);
int cmd_rollouts_watch(struct ota_ctl *c, const struct args *a);

int cmd_audit_query(struct ota_ctl *c, const struct args *a);
int cmd_audit_export(struct ota_ctl *c, const struct args *a);
int cmd_audit_verify(struct ota_ctl *c, const struct args *a);
int cmd_audit_pubkey(struct ota_ctl *c, const struct args *a);
int cmd_principals_list(struct ota_ctl *c, const struct args *a);
int cmd_principals_add(struct ota_ctl *c, const struct args *a);
int cmd_principals_disable(struct ota_ctl *c, const struct args *a);
int cmd_principals_enable(struct ota_ctl *c, const struct args *a);
int cmd_tokens_list(struct ota_ctl *c, const struct args *a);
int cmd_tokens_create(struct ota_ctl *c, const struct args *a);
int cmd_tokens_revoke(struct ota_ctl *c, const struct args *a);
int cmd_webhooks_list(struct ota_ctl *c, const struct args *a);
int cmd_webhooks_add(struct ota_ctl *c, const struct args *a);
int cmd_webhooks_show(struct ota_ctl *c, const struct args *a);
int cmd_webhooks_delete(struct ota_ctl *c, const struct args *a);
int cmd_webhooks_redeliver(struct ota_ctl *c, const struct args *a);
int cmd_health(struct ota_ctl *c, const struct args *a);
int cmd_metrics(struct ota_ctl *c, const struct args *a);
int cmd_config_check(struct ota_ctl *c, const struct args *a);

/* The sub-command word of the running command ("start", "pause", ...). */
extern const char *ota_ctl_current_sub;

/* Builds "/api/v1/<fmt>" with each %s argument percent-encoded. False when too long. */
bool api_path(char *out, size_t size, const char *fmt, ...);

#endif
