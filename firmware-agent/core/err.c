/*
 * err.c - names for the agent core's error codes (fwa/err.h), so that every layer above the
 * core (agent log, signer messages, server problem details) words them the same way.
 */
#include "fwa/err.h"

static const char *const names[FWA_ERR__COUNT] = {
    [FWA_OK] = "ok",
    [FWA_ERR_MALFORMED] = "malformed input",
    [FWA_ERR_TOO_LARGE] = "input over its size bound",
    [FWA_ERR_PAYLOAD_TYPE] = "unexpected payload type",
    [FWA_ERR_SPEC_VERSION] = "unknown spec version",
    [FWA_ERR_KEY] = "unusable or mismatched key",
    [FWA_ERR_SIGNATURE] = "invalid signature",
    [FWA_ERR_THRESHOLD] = "signature threshold not met",
    [FWA_ERR_ROOT_VERSION] = "wrong root version",
    [FWA_ERR_EXPIRED] = "root metadata expired",
    [FWA_ERR_HW_VARIANT] = "hardware variant not targeted",
    [FWA_ERR_ROLLBACK] = "security version below floor",
    [FWA_ERR_IMAGE_SIZE] = "image size mismatch",
    [FWA_ERR_IMAGE_HASH] = "image hash mismatch",
    [FWA_ERR_CRYPTO] = "crypto failure",
    [FWA_ERR_FLASH] = "flash operation failed",
    [FWA_ERR_STATE] = "persistent state unreadable",
    [FWA_ERR_TRANSPORT] = "transport failure",
    [FWA_ERR_HTTP] = "malformed HTTP response",
    [FWA_ERR_SERVER] = "server error",
    [FWA_ERR_BUSY] = "not allowed in the current state",
    [FWA_ERR_HEALTH] = "health check failed",
    [FWA_ERR_DELTA] = "delta malformed or not applicable",
    [FWA_ERR_NONCE] = "time token for another nonce",
};

const char *fwa_strerror(enum fwa_err e)
{
	if ((unsigned)e >= FWA_ERR__COUNT || !names[e])
		return "unknown error";
	return names[e];
}
