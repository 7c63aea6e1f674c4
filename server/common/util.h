/*
 * common/util.h - the server's small shared utilities: the one generator of random ids and the
 * one whole-file reader and atomic writer, and the writer of error messages into a caller's buffer.
 * Nothing here logs; callers say what failed.
 */
#ifndef OTA_UTIL_H
#define OTA_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

/* Hex digits after the prefix of an id made by ota_id_new(): 16 random bytes. */
#define OTA_ID_RANDOM_HEX 32

/*
 * A fresh random id: `prefix` followed by 32 lowercase hex digits from the kernel's random
 * source (deployments "d-", rollouts "r-"). cap must hold the prefix, 32 digits and a NUL:
 * OTA_ERR_INVALID otherwise; OTA_ERR_IO when no randomness could be had. out is always
 * NUL-terminated when cap > 0.
 */
OTA_WUR enum ota_err ota_id_new(const char *prefix, char *out, size_t cap);

/* Fills buf with len bytes from the kernel's random source. OTA_ERR_IO when it cannot. */
OTA_WUR enum ota_err ota_random(void *buf, size_t len);

/* printf into msg (msglen bytes), the out-parameter of an error message; nothing when msg is
 * NULL or msglen is 0. */
void ota_say(char *msg, size_t msglen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Lowercase hex of len bytes into out (2 * len + 1 bytes). */
void ota_hex(const uint8_t *in, size_t len, char *out);

/*
 * The whole file at `path`, malloc'd and NUL-terminated (binary files may hold NULs; *len, if
 * not NULL, gets the byte count without the NUL). NULL when it cannot be opened or read, or
 * when it is larger than max bytes (errno tells: EFBIG for too large). The caller frees it.
 */
char *ota_file_read(const char *path, size_t max, size_t *len);

/*
 * Writes len bytes to path atomically: a fresh temporary file of this process's own
 * ("PATH.tmp." and random hex digits, so that processes sharing the folder never write into
 * one another's) created with mode (less the umask), written, synced, then renamed over path,
 * so a reader sees the old file or the new one, never a part. false with errno set (and no
 * temporary file left) when any step fails.
 */
bool ota_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/*
 * Creates path with len bytes unless it exists, for a file that must never change once made
 * (a key): written whole to a temporary file as above, then linked to path, which fails when
 * another process made path first. 1 made, 0 path exists already (the caller reads it), -1 on
 * an error (errno set). A reader never sees a part, and path is made only once.
 */
int ota_file_create_once(const char *path, const void *data, size_t len, mode_t mode);

#endif
