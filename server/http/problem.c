/*
 * http/problem.c - the one mapping from errors to HTTP statuses: the problem table, and the
 * translation of internal error codes into problems.
 */
#include "http/problem.h"

static const struct ota_problem_info table[OTA_P__COUNT] = {
    [OTA_P_NONE] = {"none", 200, "No problem"},
    [OTA_P_MALFORMED_JSON] = {"malformed-json", 400, "The request body is not valid JSON"},
    [OTA_P_INVALID_FIELD] = {"invalid-field", 400,
                             "A field is missing, of the wrong type or out of range"},
    [OTA_P_BODY_TOO_LARGE] = {"body-too-large", 413, "The request body is over the limit"},
    [OTA_P_NOT_FOUND] = {"not-found", 404, "No such resource"},
    [OTA_P_METHOD_NOT_ALLOWED] = {"method-not-allowed", 405,
                                  "The resource does not support this method"},
    [OTA_P_RANGE_NOT_SATISFIABLE] = {"range-not-satisfiable", 416,
                                     "The requested range is outside the image"},
    [OTA_P_CERT_REQUIRED] = {"client-certificate-required", 401,
                             "A client certificate is required"},
    [OTA_P_CERT_REJECTED] = {"client-certificate-rejected", 403,
                             "The client certificate is not valid for this listener"},
    [OTA_P_CERT_REVOKED] = {"client-certificate-revoked", 403,
                            "The client certificate has been revoked"},
    [OTA_P_IDENTITY_CONFLICT] = {"identity-conflict", 403,
                                 "Another certificate is pinned for this device"},
    [OTA_P_DEVICE_DECOMMISSIONED] = {"device-decommissioned", 403,
                                     "The device has been decommissioned"},
    [OTA_P_ROLE_FORBIDDEN] = {"forbidden", 403, "The caller's role may not do this"},
    [OTA_P_DEVICE_NOT_FOUND] = {"device-not-found", 404, "No such device"},
    [OTA_P_RELEASE_NOT_FOUND] = {"release-not-found", 404, "No such release"},
    [OTA_P_IMAGE_NOT_FOUND] = {"image-not-found", 404, "No such image"},
    [OTA_P_DEPLOYMENT_NOT_FOUND] = {"deployment-not-found", 404, "No such deployment"},
    [OTA_P_NOT_YOUR_DEPLOYMENT] = {"not-your-deployment", 403,
                                   "The deployment belongs to another device"},
    [OTA_P_MANIFEST_INVALID] = {"manifest-invalid", 422,
                                "The manifest does not verify against the trusted root"},
    [OTA_P_IMAGE_MISMATCH] = {"image-mismatch", 422,
                              "The image's size or SHA-256 differs from the manifest"},
    [OTA_P_ROOT_INVALID] = {"root-invalid", 422,
                            "The root metadata does not follow the trusted root"},
    [OTA_P_NO_TRUSTED_ROOT] = {"no-trusted-root", 409, "No trusted root is configured"},
    [OTA_P_RELEASE_CONFLICT] = {"release-conflict", 409,
                                "Another release has this name and version"},
    [OTA_P_DEVICE_STATE_UNKNOWN] = {"device-state-unknown", 409,
                                    "The device has not checked in yet"},
    [OTA_P_HW_VARIANT_MISMATCH] = {"hw-variant-mismatch", 409,
                                   "The release does not run on the device's hardware variant"},
    [OTA_P_BELOW_SECURITY_FLOOR] = {"below-security-floor", 409,
                                    "The release's security_version is below the device's floor"},
    [OTA_P_DEPLOYMENT_ACTIVE] = {"deployment-active", 409,
                                 "The device already has an active deployment"},
    [OTA_P_CONFLICT] = {"conflict", 409, "The request conflicts with the current state"},
    [OTA_P_DEVICE_PENDING] = {"device-pending", 403, "The device waits for an operator's approval"},
    [OTA_P_DEVICE_REJECTED] = {"device-rejected", 403, "The device was rejected"},
    [OTA_P_DEVICE_UNREGISTERED] = {"device-unregistered", 403,
                                   "The device is not registered (pre-registration required)"},
    [OTA_P_TOKEN_INVALID] = {"token-invalid", 401, "The bearer token is not valid"},
    [OTA_P_TOKEN_EXPIRED] = {"token-expired", 401, "The bearer token has expired"},
    [OTA_P_TOKEN_REVOKED] = {"token-revoked", 401, "The bearer token has been revoked"},
    [OTA_P_PRINCIPAL_DISABLED] = {"principal-disabled", 403, "The principal is disabled"},
    [OTA_P_IN_USE] = {"in-use", 409, "The object is still referenced"},
    [OTA_P_UNSUPPORTED_MEDIA_TYPE] = {"unsupported-media-type", 415,
                                      "The request body must be application/json"},
    [OTA_P_SEQ_CONFLICT] = {"seq-conflict", 409,
                            "This seq was already reported with a different event"},
    [OTA_P_DELTA_NOT_FOUND] = {"delta-not-found", 404, "No such delta of this release"},
    [OTA_P_DELTA_INVALID] = {"delta-invalid", 422,
                             "The delta metadata does not verify against the trusted root"},
    [OTA_P_DELTA_MISMATCH] = {"delta-mismatch", 422,
                              "The delta metadata does not match the release or the delta file"},
    [OTA_P_DELTA_CONFLICT] = {"delta-conflict", 409,
                              "Another delta of the release is made from this base"},
    [OTA_P_INTERNAL] = {"internal", 500, "Internal server error"},
    [OTA_P_UNAVAILABLE] = {"unavailable", 503, "The server is shutting down"},
    [OTA_P_STORAGE_UNAVAILABLE] =
        {"storage-unavailable", 503,
         "The server's storage is full, failing or out of reach: retry later"},
    [OTA_P_TOO_MANY_STREAMS] = {"too-many-streams", 503,
                                "As many event streams as allowed are open"},
};

const struct ota_problem_info *ota_problem_info(enum ota_problem p)
{
	if ((unsigned)p >= OTA_P__COUNT)
		p = OTA_P_INTERNAL;
	return &table[p];
}

enum ota_problem ota_problem_from_err(enum ota_err e)
{
	switch (e) {
	case OTA_OK:
		return OTA_P_NONE;
	case OTA_ERR_INVALID:
		return OTA_P_INVALID_FIELD;
	case OTA_ERR_TOO_LARGE:
		return OTA_P_BODY_TOO_LARGE;
	case OTA_ERR_NOT_FOUND:
		return OTA_P_NOT_FOUND;
	case OTA_ERR_CONFLICT:
		return OTA_P_CONFLICT;
	case OTA_ERR_FORBIDDEN:
		return OTA_P_ROLE_FORBIDDEN;
	case OTA_ERR_VERIFY:
		return OTA_P_MANIFEST_INVALID;
	case OTA_ERR_MISMATCH:
		return OTA_P_IMAGE_MISMATCH;
	case OTA_ERR_NOMEM:
	case OTA_ERR_IO:
	case OTA_ERR_DB:
	case OTA_ERR_SCHEMA:
	case OTA_ERR_CONFIG:
	case OTA_ERR_TLS:
	case OTA_ERR__COUNT:
		break;
	}
	return OTA_P_INTERNAL;
}

enum ota_problem ota_problem_from_eligibility(enum ota_eligibility e)
{
	switch (e) {
	case OTA_INELIGIBLE_UNKNOWN:
		return OTA_P_DEVICE_STATE_UNKNOWN;
	case OTA_INELIGIBLE_HW_VARIANT:
		return OTA_P_HW_VARIANT_MISMATCH;
	case OTA_INELIGIBLE_BELOW_FLOOR:
		return OTA_P_BELOW_SECURITY_FLOOR;
	case OTA_ELIGIBLE:
	case OTA_INELIGIBLE_SAME_VERSION:
		break;
	}
	return OTA_P_CONFLICT;
}
