/*
 * common/util.c - random ids, hex, and reading and atomically writing a whole file (util.h).
 */
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

enum ota_err ota_random(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return OTA_ERR_IO;
		p += n;
		len -= (size_t)n;
	}
	return OTA_OK;
}

void ota_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

enum ota_err ota_id_new(const char *prefix, char *out, size_t cap)
{
	uint8_t rnd[OTA_ID_RANDOM_HEX / 2];
	size_t pl = strlen(prefix);

	if (cap)
		out[0] = '\0';
	if (cap < pl + OTA_ID_RANDOM_HEX + 1)
		return OTA_ERR_INVALID;
	if (ota_random(rnd, sizeof(rnd)) != OTA_OK)
		return OTA_ERR_IO;
	memcpy(out, prefix, pl);
	ota_hex(rnd, sizeof(rnd), out + pl);
	return OTA_OK;
}

char *ota_file_read(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct stat sb;
	char *buf = NULL;

	if (!f)
		return NULL;
	if (fstat(fileno(f), &sb) != 0 || sb.st_size < 0) {
		fclose(f);
		return NULL;
	}
	if ((uint64_t)sb.st_size > max) {
		fclose(f);
		errno = EFBIG;
		return NULL;
	}
	size_t size = (size_t)sb.st_size;
	buf = malloc(size + 1);
	/* One byte more than the size asks for: a file that grew meanwhile is refused. */
	if (buf && (fread(buf, 1, size + 1, f) != size || ferror(f))) {
		free(buf);
		buf = NULL;
		errno = EIO;
	}
	if (buf) {
		buf[size] = '\0';
		if (len)
			*len = size;
	}
	fclose(f);
	return buf;
}

void ota_say(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	if (!msg || !msglen)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
}

/*
 * Writes data into a new temporary file next to path, "PATH.tmp." and 12 random hex digits
 * (a name of this process's own: processes sharing the folder never write into one another's
 * file), created with mode less the umask and synced. The name goes to *tmp (malloc'd). false
 * with errno set and nothing left behind.
 */
static bool write_temp(const char *path, const void *data, size_t len, mode_t mode, char **tmp)
{
	size_t n = strlen(path) + sizeof(".tmp.") + 12;
	uint8_t r[6];
	char hex[13];
	bool ok;
	int fd = -1, e;

	*tmp = malloc(n);
	if (!*tmp) {
		errno = ENOMEM;
		return false;
	}
	for (int tries = 0; fd < 0 && tries < 8; tries++) {
		if (ota_random(r, sizeof(r)) != OTA_OK) {
			errno = EIO;
			break;
		}
		ota_hex(r, sizeof(r), hex);
		snprintf(*tmp, n, "%s.tmp.%s", path, hex);
		fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		e = errno;
		free(*tmp);
		*tmp = NULL;
		errno = e;
		return false;
	}
	ok = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
	e = errno;
	ok = close(fd) == 0 && ok;
	if (!ok) {
		unlink(*tmp);
		free(*tmp);
		*tmp = NULL;
		errno = e;
	}
	return ok;
}

bool ota_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp;
	bool ok;
	int e;

	if (!write_temp(path, data, len, mode, &tmp))
		return false;
	ok = rename(tmp, path) == 0;
	e = errno;
	if (!ok)
		unlink(tmp);
	free(tmp);
	errno = e;
	return ok;
}

int ota_file_create_once(const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp, *dir, *slash;
	int rc, e, fd;

	if (!write_temp(path, data, len, mode, &tmp))
		return -1;
	rc = link(tmp, path) == 0 ? 1 : errno == EEXIST ? 0 : -1;
	e = errno;
	unlink(tmp);
	free(tmp);
	/* The new name made durable: its folder synced. */
	if (rc == 1 && (dir = strdup(path)) != NULL) {
		slash = strrchr(dir, '/');
		if (slash) {
			*slash = '\0';
			fd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd >= 0) {
				(void)fsync(fd);
				close(fd);
			}
		}
		free(dir);
	}
	errno = e;
	return rc;
}
