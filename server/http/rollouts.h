/*
 * http/rollouts.h - the handlers of the rollout endpoints and of /metrics (mgmt_rollouts.c).
 * Not for use outside http/.
 */
#ifndef OTA_HTTP_ROLLOUTS_H
#define OTA_HTTP_ROLLOUTS_H

#include "http/internal.h"

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

#endif
