/*
 * http/routes.c - the route table: every endpoint of both listeners, with who may call it and
 * how its body is read. Adding an endpoint is one row here and one handler.
 */
#include <stdio.h>
#include <string.h>

#include "http/events.h"
#include "http/internal.h"
#include "http/mgmt.h"
#include "http/rollouts.h"

#define DEV OTA_L_DEVICE
#define MGMT OTA_L_MANAGEMENT

const struct ota_route ota_routes[] = {
    /* Device API (docs/device-api.md) */
    {"POST", "/device/v1/checkin", DEV, OTA_ROLE_DEVICE, OTA_BODY_JSON, ota_h_checkin, NULL, NULL,
     NULL},
    {"GET", "/device/v1/images/{sha256}", DEV, OTA_ROLE_DEVICE, OTA_BODY_NONE, ota_h_image, NULL,
     NULL, NULL},
    {"HEAD", "/device/v1/images/{sha256}", DEV, OTA_ROLE_DEVICE, OTA_BODY_NONE, ota_h_image, NULL,
     NULL, NULL},
    {"POST", "/device/v1/deployments/{id}/events", DEV, OTA_ROLE_DEVICE, OTA_BODY_JSON, ota_h_event,
     NULL, NULL, NULL},
    {"POST", "/device/v1/certificate", DEV, OTA_ROLE_DEVICE, OTA_BODY_JSON,
     ota_h_device_certificate, NULL, NULL, NULL},
    /* Management API (docs/openapi.yaml) */
    {"GET", "/api/v1/health", MGMT, OTA_ROLES_READ, OTA_BODY_NONE, ota_h_health, NULL, NULL, NULL},
    {"POST", "/api/v1/images", MGMT, OTA_ROLES_WRITE, OTA_BODY_STREAM, ota_h_image_upload,
     ota_h_image_upload_begin, ota_h_image_upload_data, ota_h_image_upload_free},
    {"POST", "/api/v1/releases", MGMT, OTA_ROLES_WRITE, OTA_BODY_JSON, ota_h_release_create, NULL,
     NULL, NULL},
    {"GET", "/api/v1/releases", MGMT, OTA_ROLES_READ, OTA_BODY_NONE, ota_h_release_list, NULL, NULL,
     NULL},
    {"GET", "/api/v1/releases/{id}", MGMT, OTA_ROLES_READ, OTA_BODY_NONE, ota_h_release_get, NULL,
     NULL, NULL},
    {"POST", "/api/v1/roots", MGMT, OTA_ROLE_ADMIN, OTA_BODY_JSON, ota_h_root_create, NULL, NULL,
     NULL},
    {"POST", "/api/v1/deployments", MGMT, OTA_ROLES_WRITE, OTA_BODY_JSON, ota_h_deployment_create,
     NULL, NULL, NULL},
    {"GET", "/api/v1/deployments/{id}", MGMT, OTA_ROLES_READ, OTA_BODY_NONE, ota_h_deployment_get,
     NULL, NULL, NULL},
    {"GET", "/api/v1/devices/{id}", MGMT, OTA_ROLES_READ, OTA_BODY_NONE, ota_h_device_show, NULL,
     NULL, NULL},
    {"POST", "/api/v1/revocations", MGMT, OTA_ROLE_ADMIN, OTA_BODY_JSON, ota_h_revocation_create,
     NULL, NULL, NULL},
    /* Rollouts (docs/rollouts.md) and metrics */
    {"POST", "/api/v1/rollouts", MGMT, OTA_ROLES_WRITE, OTA_BODY_JSON, ota_h_rollout_create, NULL,
     NULL, NULL},
    {"GET", "/api/v1/rollouts", MGMT, OTA_ROLES_READ, OTA_BODY_NONE, ota_h_rollout_list, NULL, NULL,
     NULL},
    {"POST", "/api/v1/rollouts/plan", MGMT, OTA_ROLES_WRITE, OTA_BODY_JSON, ota_h_rollout_plan,
     NULL, NULL, NULL},
    {"GET", "/api/v1/rollouts/{id}/plan", MGMT, OTA_ROLES_READ, OTA_BODY_NONE,
     ota_h_rollout_draft_plan, NULL, NULL, NULL},
    {"GET", "/api/v1/rollouts/{id}", MGMT, OTA_ROLES_READ, OTA_BODY_NONE, ota_h_rollout_get, NULL,
     NULL, NULL},
    {"POST", "/api/v1/rollouts/{id}/start", MGMT, OTA_ROLES_WRITE, OTA_BODY_JSON,
     ota_h_rollout_start, NULL, NULL, NULL},
    {"POST", "/api/v1/rollouts/{id}/pause", MGMT, OTA_ROLES_WRITE, OTA_BODY_JSON,
     ota_h_rollout_pause, NULL, NULL, NULL},
    {"POST", "/api/v1/rollouts/{id}/resume", MGMT, OTA_ROLES_WRITE, OTA_BODY_JSON,
     ota_h_rollout_resume, NULL, NULL, NULL},
    {"POST", "/api/v1/rollouts/{id}/approve", MGMT, OTA_ROLES_WRITE, OTA_BODY_JSON,
     ota_h_rollout_approve, NULL, NULL, NULL},
    {"POST", "/api/v1/rollouts/{id}/abort", MGMT, OTA_ROLES_WRITE, OTA_BODY_JSON,
     ota_h_rollout_abort, NULL, NULL, NULL},
    {"POST", "/api/v1/rollouts/{id}/rollback", MGMT, OTA_ROLES_WRITE, OTA_BODY_JSON,
     ota_h_rollout_rollback, NULL, NULL, NULL},
    {"GET", "/api/v1/rollouts/{id}/devices", MGMT, OTA_ROLES_READ, OTA_BODY_NONE,
     ota_h_rollout_devices, NULL, NULL, NULL},
    {"GET", "/api/v1/rollouts/{id}/devices/{device_id}", MGMT, OTA_ROLES_READ, OTA_BODY_NONE,
     ota_h_rollout_device, NULL, NULL, NULL},
    {"GET", "/metrics", MGMT, OTA_ROLES_READ, OTA_BODY_NONE, ota_h_metrics, NULL, NULL, NULL},
    /* Device life cycle, images and releases, principals and tokens, audit (http/mgmt.h) */
    {"GET", "/api/v1/devices", MGMT, OTA_ROLES_READ, OTA_BODY_NONE, ota_h_devices_list, NULL, NULL,
     NULL},
    {"POST", "/api/v1/devices", MGMT, OTA_ROLES_WRITE, OTA_BODY_JSON, ota_h_device_register, NULL,
     NULL, NULL},
    {"POST", "/api/v1/devices/{id}/approve", MGMT, OTA_ROLES_WRITE, OTA_BODY_JSON,
     ota_h_device_approve, NULL, NULL, NULL},
    {"POST", "/api/v1/devices/{id}/reject", MGMT, OTA_ROLES_WRITE, OTA_BODY_JSON,
     ota_h_device_reject, NULL, NULL, NULL},
    {"POST", "/api/v1/devices/{id}/decommission", MGMT, OTA_ROLES_WRITE, OTA_BODY_JSON,
     ota_h_device_decommission, NULL, NULL, NULL},
    {"POST", "/api/v1/devices/{id}/reprovision", MGMT, OTA_ROLES_WRITE, OTA_BODY_JSON,
     ota_h_device_reprovision, NULL, NULL, NULL},
    {"PUT", "/api/v1/devices/{id}/tags", MGMT, OTA_ROLES_WRITE, OTA_BODY_JSON, ota_h_device_tags,
     NULL, NULL, NULL},
    {"GET", "/api/v1/images", MGMT, OTA_ROLES_READ, OTA_BODY_NONE, ota_h_images_list, NULL, NULL,
     NULL},
    {"DELETE", "/api/v1/images/{sha256}", MGMT, OTA_ROLES_WRITE, OTA_BODY_NONE, ota_h_image_delete,
     NULL, NULL, NULL},
    {"DELETE", "/api/v1/releases/{id}", MGMT, OTA_ROLES_WRITE, OTA_BODY_NONE, ota_h_release_delete,
     NULL, NULL, NULL},
    /* Deltas of a release (http/mgmt_deltas.c) */
    {"POST", "/api/v1/releases/{id}/deltas", MGMT, OTA_ROLES_WRITE, OTA_BODY_JSON,
     ota_h_delta_create, NULL, NULL, NULL},
    {"GET", "/api/v1/releases/{id}/deltas", MGMT, OTA_ROLES_READ, OTA_BODY_NONE, ota_h_delta_list,
     NULL, NULL, NULL},
    {"DELETE", "/api/v1/releases/{id}/deltas/{delta_id}", MGMT, OTA_ROLES_WRITE, OTA_BODY_NONE,
     ota_h_delta_delete, NULL, NULL, NULL},
    {"GET", "/api/v1/principals", MGMT, OTA_ROLE_ADMIN, OTA_BODY_NONE, ota_h_principals_list, NULL,
     NULL, NULL},
    {"POST", "/api/v1/principals", MGMT, OTA_ROLE_ADMIN, OTA_BODY_JSON, ota_h_principal_create,
     NULL, NULL, NULL},
    {"POST", "/api/v1/principals/{name}/disable", MGMT, OTA_ROLE_ADMIN, OTA_BODY_JSON,
     ota_h_principal_disable, NULL, NULL, NULL},
    {"POST", "/api/v1/principals/{name}/enable", MGMT, OTA_ROLE_ADMIN, OTA_BODY_JSON,
     ota_h_principal_enable, NULL, NULL, NULL},
    {"GET", "/api/v1/tokens", MGMT, OTA_ROLE_ADMIN, OTA_BODY_NONE, ota_h_tokens_list, NULL, NULL,
     NULL},
    {"POST", "/api/v1/tokens", MGMT, OTA_ROLE_ADMIN, OTA_BODY_JSON, ota_h_token_create, NULL, NULL,
     NULL},
    {"DELETE", "/api/v1/tokens/{id}", MGMT, OTA_ROLE_ADMIN, OTA_BODY_NONE, ota_h_token_revoke, NULL,
     NULL, NULL},
    {"GET", "/api/v1/audit", MGMT, OTA_ROLE_ADMIN | OTA_ROLE_AUDITOR, OTA_BODY_NONE,
     ota_h_audit_query, NULL, NULL, NULL},
    {"GET", "/api/v1/audit/export", MGMT, OTA_ROLE_ADMIN | OTA_ROLE_AUDITOR, OTA_BODY_NONE,
     ota_h_audit_export, NULL, NULL, NULL},
    {"GET", "/api/v1/audit/verify", MGMT, OTA_ROLE_ADMIN | OTA_ROLE_AUDITOR, OTA_BODY_NONE,
     ota_h_audit_verify, NULL, NULL, NULL},
    {"GET", "/api/v1/audit/pubkey", MGMT, OTA_ROLE_ADMIN | OTA_ROLE_AUDITOR, OTA_BODY_NONE,
     ota_h_audit_pubkey, NULL, NULL, NULL},
    /* Events out: webhooks and the live stream (docs/events.md, http/events.h) */
    {"POST", "/api/v1/webhooks", MGMT, OTA_ROLE_ADMIN, OTA_BODY_JSON, ota_h_webhook_create, NULL,
     NULL, NULL},
    {"GET", "/api/v1/webhooks", MGMT, OTA_ROLE_ADMIN, OTA_BODY_NONE, ota_h_webhooks_list, NULL,
     NULL, NULL},
    {"GET", "/api/v1/webhooks/{id}", MGMT, OTA_ROLE_ADMIN, OTA_BODY_NONE, ota_h_webhook_get, NULL,
     NULL, NULL},
    {"DELETE", "/api/v1/webhooks/{id}", MGMT, OTA_ROLE_ADMIN, OTA_BODY_NONE, ota_h_webhook_delete,
     NULL, NULL, NULL},
    {"POST", "/api/v1/webhooks/{id}/redeliver", MGMT, OTA_ROLE_ADMIN, OTA_BODY_JSON,
     ota_h_webhook_redeliver, NULL, NULL, NULL},
    {"GET", "/api/v1/events", MGMT, OTA_ROLES_READ, OTA_BODY_NONE, ota_h_events_stream, NULL, NULL,
     NULL},
};
const size_t ota_routes_count = sizeof(ota_routes) / sizeof(ota_routes[0]);

/* Matches path against pattern, copying "{...}" segments into params. */
static bool match(const char *pattern, const char *path, char params[OTA_ROUTE_PARAMS][80])
{
	unsigned np = 0;

	while (*pattern && *path) {
		if (*pattern == '{') {
			const char *pe = strchr(pattern, '}');
			size_t n = strcspn(path, "/");
			if (!pe || n == 0 || n >= 80 || np >= OTA_ROUTE_PARAMS)
				return false;
			memcpy(params[np], path, n);
			params[np++][n] = '\0';
			pattern = pe + 1;
			path += n;
			continue;
		}
		if (*pattern != *path)
			return false;
		pattern++;
		path++;
	}
	return *pattern == '\0' && *path == '\0';
}

const struct ota_route *ota_route_match(enum ota_listener_kind l, const char *method,
                                        const char *path, char params[OTA_ROUTE_PARAMS][80],
                                        bool *path_known, const char **allow)
{
	char scratch[OTA_ROUTE_PARAMS][80];

	/* The Allow list of a 405: every method of the path, in this order. */
	static const char *const methods[] = {"GET",    "HEAD",  "POST", "PUT",
	                                      "DELETE", "PATCH", NULL};
	static _Thread_local char list[48];
	unsigned mask = 0;

	*path_known = false;
	*allow = NULL;
	for (size_t i = 0; i < ota_routes_count; i++) {
		const struct ota_route *rt = &ota_routes[i];
		if (rt->listener != l || !match(rt->pattern, path, scratch))
			continue;
		*path_known = true;
		for (unsigned m = 0; methods[m]; m++)
			if (strcmp(rt->method, methods[m]) == 0)
				mask |= 1u << m;
		if (strcmp(rt->method, method) == 0) {
			memcpy(params, scratch, sizeof(scratch));
			return rt;
		}
	}
	list[0] = '\0';
	for (unsigned m = 0; methods[m]; m++) {
		if (mask & (1u << m)) {
			size_t n = strlen(list);
			snprintf(list + n, sizeof(list) - n, "%s%s", n ? ", " : "", methods[m]);
		}
	}
	if (*path_known)
		*allow = list;
	return NULL;
}
