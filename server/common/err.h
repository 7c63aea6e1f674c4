/*
 * common/err.h - the server's one error domain. Every server library returns these codes; the
 * HTTP layer alone turns them (and its finer problem types) into statuses, in http/problem.c.
 */
#ifndef OTA_ERR_H
#define OTA_ERR_H

#include <stdbool.h>

#define OTA_WUR __attribute__((warn_unused_result))

enum ota_err {
	OTA_OK = 0,
	OTA_ERR_NOMEM,     /* an allocation failed */
	OTA_ERR_IO,        /* a file or directory operation failed */
	OTA_ERR_DB,        /* the database failed (I/O, corruption, busy past the timeout) */
	OTA_ERR_SCHEMA,    /* the database schema is newer than this otad, or a migration failed */
	OTA_ERR_CONFIG,    /* the configuration is invalid */
	OTA_ERR_INVALID,   /* malformed input: syntax, a wrong type, a value out of range */
	OTA_ERR_TOO_LARGE, /* input over its size limit */
	OTA_ERR_NOT_FOUND, /* the object does not exist */
	OTA_ERR_CONFLICT,  /* the object exists already or is in a state that forbids this */
	OTA_ERR_FORBIDDEN, /* the caller may not do this */
	OTA_ERR_VERIFY,    /* signed metadata failed verification against the trusted root */
	OTA_ERR_MISMATCH,  /* an image differs from its manifest (size or hash) */
	OTA_ERR_TLS,       /* TLS set-up failed (keys, certificates, priorities) */
	OTA_ERR__COUNT
};

/* A short constant description; never NULL, also for out-of-range values. */
const char *ota_strerror(enum ota_err e);

/*
 * Storage faults: a write that failed because the disk is full or failing (SQLite's
 * SQLITE_FULL / SQLITE_IOERR, ENOSPC, EDQUOT or EIO from a file write or flush). The module
 * that meets one notes it on the calling thread; the HTTP layer takes the note when it
 * answers and turns the request's server error into "storage-unavailable" (503, Retry-After):
 * the request may succeed once space returns. Thread-local; never fails.
 */
void ota_storage_fault_note(void);
/* Whether a fault was noted on this thread since the last take; clears the note. */
bool ota_storage_fault_take(void);
/* The same without clearing it. */
bool ota_storage_fault_peek(void);
/* Faults noted in the whole process since it started (a counter for /metrics). */
unsigned long long ota_storage_fault_count(void);
/* Whether errno `e` after a write or flush means a full or failing disk. */
bool ota_storage_errno(int e);

#endif
