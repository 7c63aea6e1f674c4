/*
 * http/ticket_key.c - reading, checking and generating the shared session-ticket master key
 * file (ticket_key.h).
 */
#include "http/ticket_key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "common/util.h"
#include "fwa/verify.h"

/* The base64 of 64 bytes: 88 characters, then a newline; a few bytes more are refused. */
#define B64_LEN 88
#define FILE_MAX (B64_LEN + 2)

enum ota_err ota_ticket_key_read(const char *path, uint8_t key[OTA_TICKET_KEY_SIZE], char *msg,
                                 size_t msglen)
{
	char text[FILE_MAX + 1];
	uint8_t raw[OTA_TICKET_KEY_SIZE + 3];
	struct stat sb;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0) {
		ota_say(msg, msglen, "ticket key %s: cannot open it: %s", path, strerror(errno));
		return OTA_ERR_TLS;
	}
	/* The mode of the file read, not of whatever the path names a moment later. */
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		ota_say(msg, msglen, "ticket key %s: not a regular file", path);
		return OTA_ERR_TLS;
	}
	if (sb.st_mode & 027) {
		close(fd);
		ota_say(msg, msglen,
		        "ticket key %s: mode %04o lets its group write it or others read it "
		        "(at most 0640)",
		        path, (unsigned)(sb.st_mode & 07777));
		return OTA_ERR_TLS;
	}
	do
		n = read(fd, text, sizeof(text));
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0) {
		ota_say(msg, msglen, "ticket key %s: cannot read it: %s", path, strerror(errno));
		return OTA_ERR_TLS;
	}
	size_t len = (size_t)n;
	if (len && text[len - 1] == '\n')
		len--;
	long got = len == B64_LEN ? fwa_base64_decode(text, len, raw, sizeof(raw)) : -1;
	if (got != OTA_TICKET_KEY_SIZE) {
		gnutls_memset(raw, 0, sizeof(raw));
		gnutls_memset(text, 0, sizeof(text));
		ota_say(msg, msglen,
		        "ticket key %s: not one line of base64 of %d bytes (otad "
		        "--ticket-key-generate writes one)",
		        path, OTA_TICKET_KEY_SIZE);
		return OTA_ERR_TLS;
	}
	memcpy(key, raw, OTA_TICKET_KEY_SIZE);
	gnutls_memset(raw, 0, sizeof(raw));
	gnutls_memset(text, 0, sizeof(text));
	return OTA_OK;
}

enum ota_err ota_ticket_key_generate(const char *path, char *msg, size_t msglen)
{
	uint8_t key[OTA_TICKET_KEY_SIZE];
	char text[B64_LEN + 1];
	enum ota_err rc = OTA_OK;

	if (gnutls_rnd(GNUTLS_RND_KEY, key, sizeof(key)) != 0) {
		ota_say(msg, msglen, "ticket key %s: no random bytes to make it", path);
		return OTA_ERR_IO;
	}
	long n = fwa_base64_encode(key, sizeof(key), text, sizeof(text) - 1);
	if (n != B64_LEN) {
		rc = OTA_ERR_IO;
		ota_say(msg, msglen, "ticket key %s: cannot encode it", path);
	} else {
		text[n] = '\n';
		if (!ota_file_write_atomic(path, text, (size_t)n + 1, 0600)) {
			rc = OTA_ERR_IO;
			ota_say(msg, msglen, "ticket key %s: cannot write it: %s", path,
			        strerror(errno));
		}
	}
	gnutls_memset(key, 0, sizeof(key));
	gnutls_memset(text, 0, sizeof(text));
	return rc;
}
