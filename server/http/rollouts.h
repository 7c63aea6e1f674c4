/*
 * http/rollouts.h - the handlers of the rollout endpoints and of /metrics (mgmt_rollouts.c),
 * and the device path's hooks into the rollout engine (device_api.c calls them). Not for use
 * outside http/.
 */
#ifndef OTA_HTTP_ROLLOUTS_H
#define OTA_HTTP_ROLLOUTS_H

#include "http/internal.h"

struct ota_rollout_spec;
/* A rollout definition from its JSON (unknown keys refused); false with a problem set. */
bool ota_rollout_spec_from_json(struct ota_req *r, json_t *b, struct ota_rollout_spec *s);

void ota_h_rollout_create(struct ota_req *r);
void ota_h_rollout_list(struct ota_req *r);
void ota_h_rollout_get(struct ota_req *r);
void ota_h_rollout_start(struct ota_req *r);
void ota_h_rollout_pause(struct ota_req *r);
void ota_h_rollout_resume(struct ota_req *r);
void ota_h_rollout_approve(struct ota_req *r);
void ota_h_rollout_abort(struct ota_req *r);
void ota_h_rollout_rollback(struct ota_req *r);
void ota_h_rollout_devices(struct ota_req *r);
void ota_h_rollout_device(struct ota_req *r);
void ota_h_metrics(struct ota_req *r);
/* mgmt_plan.c */
void ota_h_rollout_plan(struct ota_req *r);
void ota_h_rollout_draft_plan(struct ota_req *r);

/*
 * At a check-in of a device without an active deployment: let the running rollouts offer it
 * their release. Returns whether a deployment was created; on error sets a problem.
 */
bool ota_rollouts_on_checkin(struct ota_req *r, const char *hw, const char *version,
                             uint32_t floor);
/* After a new event report of deployment_id: judge its rollout (if any) again. */
void ota_rollouts_on_event(struct ota_req *r, const char *deployment_id);

#endif
