/*
 * http/events.h - the handlers of events out (mgmt_events.c, docs/events.md): webhook
 * registration and redelivery, and the live stream of events (Server-Sent Events). Not for use
 * outside http/.
 */
#ifndef OTA_HTTP_EVENTS_H
#define OTA_HTTP_EVENTS_H

#include "http/internal.h"

void ota_h_webhook_create(struct ota_req *r);
void ota_h_webhooks_list(struct ota_req *r);
void ota_h_webhook_get(struct ota_req *r);
void ota_h_webhook_delete(struct ota_req *r);
void ota_h_webhook_redeliver(struct ota_req *r);
void ota_h_events_stream(struct ota_req *r);

#endif
