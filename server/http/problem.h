/*
 * http/problem.h - every error a client can get, as RFC 9457 problem details
 * (application/problem+json). Each problem has a stable type "urn:ota:problem:<slug>", one
 * HTTP status and a title; problem.c holds the one table that maps them (docs/errors.md lists
 * it), and ota_problem_from_err() is the one place internal error codes become problems.
 */
#ifndef OTA_HTTP_PROBLEM_H
#define OTA_HTTP_PROBLEM_H

#include "common/err.h"
#include "deploy/deploy.h"

enum ota_problem {
	OTA_P_NONE = 0,
	/* request syntax and size */
	OTA_P_MALFORMED_JSON,
	OTA_P_INVALID_FIELD,
	OTA_P_BODY_TOO_LARGE,
	OTA_P_NOT_FOUND,
	OTA_P_METHOD_NOT_ALLOWED,
	OTA_P_RANGE_NOT_SATISFIABLE,
	/* identity */
	OTA_P_CERT_REQUIRED,
	OTA_P_CERT_REJECTED,
	OTA_P_CERT_REVOKED,
	OTA_P_IDENTITY_CONFLICT,
	OTA_P_DEVICE_DECOMMISSIONED,
	OTA_P_ROLE_FORBIDDEN,
	/* objects */
	OTA_P_DEVICE_NOT_FOUND,
	OTA_P_RELEASE_NOT_FOUND,
	OTA_P_IMAGE_NOT_FOUND,
	OTA_P_DEPLOYMENT_NOT_FOUND,
	OTA_P_NOT_YOUR_DEPLOYMENT,
	/* releases and trust */
	OTA_P_MANIFEST_INVALID,
	OTA_P_IMAGE_MISMATCH,
	OTA_P_ROOT_INVALID,
	OTA_P_NO_TRUSTED_ROOT,
	OTA_P_RELEASE_CONFLICT,
	/* deployments */
	OTA_P_DEVICE_STATE_UNKNOWN,
	OTA_P_HW_VARIANT_MISMATCH,
	OTA_P_BELOW_SECURITY_FLOOR,
	OTA_P_DEPLOYMENT_ACTIVE,
	OTA_P_CONFLICT,
	/* management: identities and the device life cycle */
	OTA_P_DEVICE_PENDING,
	OTA_P_DEVICE_REJECTED,
	OTA_P_DEVICE_UNREGISTERED,
	OTA_P_TOKEN_INVALID,
	OTA_P_TOKEN_EXPIRED,
	OTA_P_TOKEN_REVOKED,
	OTA_P_PRINCIPAL_DISABLED,
	OTA_P_IN_USE,
	OTA_P_UNSUPPORTED_MEDIA_TYPE,
	OTA_P_SEQ_CONFLICT,
	/* deltas (docs/device-api.md, "Delta offers") */
	OTA_P_DELTA_NOT_FOUND,
	OTA_P_DELTA_INVALID,
	OTA_P_DELTA_MISMATCH,
	OTA_P_DELTA_CONFLICT,
	/* the server */
	OTA_P_INTERNAL,
	OTA_P_UNAVAILABLE,
	OTA_P_STORAGE_UNAVAILABLE, /* a full or failing disk, a database out of reach: 503 */
	/* events out (docs/events.md) */
	OTA_P_TOO_MANY_STREAMS,
	OTA_P__COUNT
};

struct ota_problem_info {
	const char *slug;  /* the stable part of the type URI */
	unsigned status;   /* HTTP status */
	const char *title; /* constant summary */
};

/* The table row of p (OTA_P_INTERNAL's for out-of-range values). */
const struct ota_problem_info *ota_problem_info(enum ota_problem p);
/* The problem a generic internal error becomes when a handler has nothing finer. */
enum ota_problem ota_problem_from_err(enum ota_err e);
/* The problem of a release refused by the eligibility rules (deploy/deploy.h). */
enum ota_problem ota_problem_from_eligibility(enum ota_eligibility e);

#define OTA_PROBLEM_TYPE_PREFIX "urn:ota:problem:"

/* Seconds a client is told to wait (Retry-After) when storage is full, failing or out of reach. */
#define OTA_STORAGE_RETRY_AFTER "30"

#endif
