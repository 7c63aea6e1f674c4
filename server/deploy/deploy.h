/*
 * deploy/deploy.h - the deployment service: the one home of the device path's rules.
 *
 *   - what a checking-in device is offered: its active deployment (manual or a rollout's), or
 *     the release of a running rollout that wants it now (ota_deploy_checkin);
 *   - how a report moves a deployment and its rollout member: the event, the member's state,
 *     the deployment's outcome (success = a confirmed boot of the target version, nothing
 *     less) and its audit entry, in one transaction committed with the concurrent reports
 *     (ota_deploy_report);
 *   - whether a release may go to a device (ota_deploy_eligible), the one rule used by the
 *     check-in, a rollout's join, a manual deployment and a roll back.
 *
 * HTTP handlers parse, call these and render; the rollout engine (server/rollout) decides
 * for rollouts; the store (server/store) applies and reads. Time is passed in.
 *
 * Errors: OTA_ERR_NOT_FOUND (no such device, release, deployment or rollout), OTA_ERR_FORBIDDEN
 * (the deployment is another device's), OTA_ERR_CONFLICT (a state forbids it), OTA_ERR_INVALID
 * (a rule refuses it: see the refusal out-parameters), OTA_ERR_DB, OTA_ERR_NOMEM, OTA_ERR_IO
 * (no randomness). Nothing is changed on error.
 */
#ifndef OTA_DEPLOY_H
#define OTA_DEPLOY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "deploy/eligible.h"
#include "store/rollout_store.h"
#include "store/store.h"

/* ---- eligibility: deploy/eligible.h (the one rule, also used by the rollout engine) ---- */

/* ---- the check-in ---- */

/* The answer: an update to offer, or none. */
struct ota_offer {
	bool update;
	struct ota_deployment dep;
	struct ota_release rel;
	char *envelope; /* the release's DSSE envelope, malloc'd; ota_offer_clear() frees it */
};
void ota_offer_clear(struct ota_offer *o);

/*
 * Record what device c->id reports (store.h), then decide what it is offered: its active deployment
 * if the release may still go to it (else that deployment ends as cancelled, with its rollout
 * member and an audit entry, and nothing is offered), otherwise the release of the first
 * running rollout that wants it now. The caller frees out with ota_offer_clear().
 */
OTA_WUR enum ota_err ota_deploy_checkin(struct ota_store *st, const struct ota_device_report *c,
                                        int64_t now, struct ota_offer *out);

/*
 * Inside the caller's transaction: end the device's active deployment, if it has one, as
 * cancelled with reason, with its rollout member (skipped) and an audit entry (actor otad).
 * OTA_OK when there is none.
 */
OTA_WUR enum ota_err ota_deploy_cancel_active(struct ota_store *st, const char *device_id,
                                              const char *reason, int64_t now);

/* ---- reports ---- */

struct ota_report_result {
	bool duplicate;    /* this (deployment, seq) was stored before: nothing changed */
	bool seq_conflict; /* with OTA_ERR_CONFLICT: the seq was stored with another event */
	char deployment_status[16];
};

/*
 * Store a device's report of one step of its deployment, durably before returning (group
 * commit): the event, its rollout member's new state, and when the report ends the
 * deployment, its outcome and audit entry; then the deployment's rollout is judged again.
 * OTA_ERR_NOT_FOUND: no such deployment; OTA_ERR_FORBIDDEN: it is another device's;
 * OTA_ERR_CONFLICT with out->seq_conflict: ev->seq was stored with another event (nothing
 * changed).
 */
OTA_WUR enum ota_err ota_deploy_report(struct ota_store *st, const char *device_id,
                                       const char *deployment_id, const struct ota_event *ev,
                                       int64_t now, struct ota_report_result *out);

/*
 * The same in two halves, so that no thread waits for the group commit (the device API
 * suspends the report's connection meanwhile). ota_deploy_report_submit() checks the report
 * and queues it for the next group (ota_store_group_submit): OTA_OK with *job, and
 * done(arg) is then called exactly once, on the store's committer thread, once the group is
 * over (done must not call the store; it only wakes whoever finishes the job); otherwise
 * OTA_ERR_NOT_FOUND, OTA_ERR_FORBIDDEN, OTA_ERR_DB or OTA_ERR_NOMEM, *job NULL and done never
 * called. ev's strings must live until the job is finished. ota_deploy_report_finish(), after
 * done, returns what ota_deploy_report() would (notes a storage fault on the calling thread)
 * and frees the job.
 */
struct ota_report_job;
OTA_WUR enum ota_err ota_deploy_report_submit(struct ota_store *st, const char *device_id,
                                              const char *deployment_id, const struct ota_event *ev,
                                              int64_t now, void (*done)(void *arg), void *arg,
                                              struct ota_report_job **job);
OTA_WUR enum ota_err ota_deploy_report_finish(struct ota_store *st, struct ota_report_job *job,
                                              struct ota_report_result *out);

/* ---- operators' deployments ---- */

/* Who asks (an operator), for the audit log. */
struct ota_actor {
	const char *name;
	const char *role;
	const char *detail; /* appended to the entries' detail, e.g. "via token t-..." or NULL */
};

/* Why a manual deployment was refused. */
enum ota_deploy_refusal {
	OTA_DR_NONE,
	OTA_DR_NO_DEVICE,  /* unknown or not admitted */
	OTA_DR_NO_RELEASE, /* unknown release */
	OTA_DR_INELIGIBLE, /* see *elig */
	OTA_DR_BUSY,       /* the device has an active deployment */
};

/*
 * Deploy release_id to device_id, audited as who's. A device that runs the release's version
 * already may get it again (a reinstall). On refusal returns OTA_ERR_INVALID with *refusal
 * (and *elig for OTA_DR_INELIGIBLE) set and why filled; out gets the new deployment.
 */
OTA_WUR enum ota_err ota_deploy_create(struct ota_store *st, const struct ota_actor *who,
                                       const char *device_id, const char *release_id, int64_t now,
                                       struct ota_deployment *out, enum ota_deploy_refusal *refusal,
                                       enum ota_eligibility *elig, char *why, size_t whylen);

/* One device a roll back did not target, and why. */
struct ota_rollback_refusal {
	char device_id[OTA_ID_MAX + 1];
	char reason[128];
};

/*
 * Roll a rollout's failed devices (all = false: failed and rolled_back) or all updated
 * devices (all = true: also succeeded and those mid-update) back to release release_id, then
 * abort the rollout; one transaction, audited as who's. Devices the release may not go to
 * (eligibility: hardware variant, floor; and devices that run its version already) or that
 * are mid-update are listed in *refused (malloc'd, *nrefused entries; the caller frees it);
 * *ndeployed counts deployments created. OTA_ERR_NOT_FOUND (rollout or release; msg says),
 * OTA_ERR_INVALID (the rollout's own release, or one that runs on none of the hardware
 * variants of the rollout's release: then *elig = OTA_INELIGIBLE_HW_VARIANT; msg says),
 * OTA_ERR_CONFLICT (a draft or an aborted rollout).
 */
OTA_WUR enum ota_err ota_deploy_rollback(struct ota_store *st, const struct ota_actor *who,
                                         const char *rollout_id, const char *release_id, bool all,
                                         int64_t now, unsigned *ndeployed,
                                         struct ota_rollback_refusal **refused, unsigned *nrefused,
                                         enum ota_eligibility *elig, char *msg, size_t msglen);

#endif
