/*
 * common/err.c - names of the server's error codes, for logs and problem details.
 */
#include "common/err.h"

static const char *const names[OTA_ERR__COUNT] = {
    [OTA_OK] = "success",
    [OTA_ERR_NOMEM] = "out of memory",
    [OTA_ERR_IO] = "file system error",
    [OTA_ERR_DB] = "database error",
    [OTA_ERR_SCHEMA] = "database schema error",
    [OTA_ERR_CONFIG] = "invalid configuration",
    [OTA_ERR_INVALID] = "invalid input",
    [OTA_ERR_TOO_LARGE] = "input too large",
    [OTA_ERR_NOT_FOUND] = "not found",
    [OTA_ERR_CONFLICT] = "conflict",
    [OTA_ERR_FORBIDDEN] = "forbidden",
    [OTA_ERR_VERIFY] = "verification failed",
    [OTA_ERR_MISMATCH] = "image does not match its manifest",
    [OTA_ERR_TLS] = "TLS error",
};

const char *ota_strerror(enum ota_err e)
{
	if ((unsigned)e >= OTA_ERR__COUNT || !names[e])
		return "unknown error";
	return names[e];
}
