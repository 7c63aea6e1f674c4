/*
 * common/err.h - the server's one error domain. Every server library returns these codes; the
 * HTTP layer alone turns them (and its finer problem types) into statuses, in http/problem.c.
 */
#ifndef OTA_ERR_H
#define OTA_ERR_H

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

#endif
