/*
 * common/err.c - names of the server's error codes, for logs and problem details.
 */
#include "common/err.h"

#include <errno.h>
#include <stdatomic.h>

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

static _Thread_local bool fault_noted;
static atomic_ullong fault_count;

void ota_storage_fault_note(void)
{
	fault_noted = true;
	atomic_fetch_add_explicit(&fault_count, 1, memory_order_relaxed);
}

bool ota_storage_fault_take(void)
{
	bool f = fault_noted;

	fault_noted = false;
	return f;
}

bool ota_storage_fault_peek(void)
{
	return fault_noted;
}

unsigned long long ota_storage_fault_count(void)
{
	return atomic_load_explicit(&fault_count, memory_order_relaxed);
}

bool ota_storage_errno(int e)
{
	return e == ENOSPC || e == EDQUOT || e == EIO || e == EFBIG;
}
