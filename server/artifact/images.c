/*
 * artifact/images.c - the content-addressed image folder: streamed, hashed, size-limited
 * uploads made durable by fsync and an atomic rename into DATA/images/<sha256>.
 *
 * Several otad may share the folder (instances on one store and one data volume): an upload's
 * temporary file in images/.incoming is locked (flock) for as long as its upload lives, and
 * the sweep at start removes only the files nobody holds, so a starting instance never removes
 * another one's upload in progress.
 */
#include "artifact/artifact.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/log.h"
#include "config/config.h"

struct ota_images {
	char dir[OTA_PATH_MAX];
	char incoming[OTA_PATH_MAX + 16];
	uint64_t max_size;
	pthread_mutex_t lock; /* ota_images_lock() */
};

struct ota_upload {
	struct ota_images *im;
	int fd;
	char tmp[OTA_PATH_MAX + 64];
	uint64_t size;
	EVP_MD_CTX *md;
};

bool ota_sha256_hex_valid(const char *s)
{
	size_t i;

	for (i = 0; s && s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == 64;
}

static int mkdir_p(const char *dir)
{
	if (mkdir(dir, 0750) == 0 || errno == EEXIST)
		return 0;
	return -1;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

enum ota_err ota_images_open(const char *data_dir, uint64_t max_size, struct ota_images **out)
{
	enum ota_err rc = OTA_ERR_NOMEM;
	struct ota_images *im = calloc(1, sizeof(*im));
	DIR *d = NULL;

	*out = NULL;
	if (!im)
		goto out;
	rc = OTA_ERR_IO;
	snprintf(im->dir, sizeof(im->dir), "%s/images", data_dir);
	snprintf(im->incoming, sizeof(im->incoming), "%s/.incoming", im->dir);
	im->max_size = max_size;
	pthread_mutex_init(&im->lock, NULL);
	if (mkdir_p(im->dir) || mkdir_p(im->incoming)) {
		log_err("images: cannot create %s: %s", im->incoming, strerror(errno));
		goto out;
	}
	/* Uploads cut short by a crash or a stop: nothing refers to them, and no process holds
	 * their lock any more (an upload of another instance on this folder does). */
	d = opendir(im->incoming);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			int fd;

			if (e->d_name[0] == '.')
				continue;
			fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			if (fd < 0)
				continue;
			if (flock(fd, LOCK_EX | LOCK_NB) == 0)
				unlinkat(dirfd(d), e->d_name, 0);
			close(fd);
		}
	}
	*out = im;
	im = NULL;
	rc = OTA_OK;
out:
	if (d)
		closedir(d);
	if (im)
		pthread_mutex_destroy(&im->lock);
	free(im);
	return rc;
}

void ota_images_free(struct ota_images *im)
{
	if (im)
		pthread_mutex_destroy(&im->lock);
	free(im);
}

void ota_images_lock(struct ota_images *im)
{
	pthread_mutex_lock(&im->lock);
}

void ota_images_unlock(struct ota_images *im)
{
	pthread_mutex_unlock(&im->lock);
}

enum ota_err ota_upload_begin(struct ota_images *im, struct ota_upload **out)
{
	enum ota_err rc = OTA_ERR_NOMEM;
	struct ota_upload *up = calloc(1, sizeof(*up));

	*out = NULL;
	if (!up)
		goto out;
	up->fd = -1;
	up->im = im;
	up->md = EVP_MD_CTX_new();
	if (!up->md || !EVP_DigestInit_ex(up->md, EVP_sha256(), NULL))
		goto out;
	/* Locked before use; a file another instance's sweep removed before the lock is left for
	 * a new one (the sweep unlinks only under the lock, so a linked locked file stays). */
	for (int tries = 0; tries < 3; tries++) {
		struct stat st;

		snprintf(up->tmp, sizeof(up->tmp), "%s/upload-XXXXXX", im->incoming);
		up->fd = mkostemp(up->tmp, O_CLOEXEC);
		if (up->fd < 0)
			break;
		if (flock(up->fd, LOCK_EX) != 0 || fstat(up->fd, &st) != 0) {
			int err = errno;

			close(up->fd);
			unlink(up->tmp);
			up->fd = -1;
			errno = err;
			break;
		}
		if (st.st_nlink > 0)
			break;
		close(up->fd); /* swept meanwhile: another name */
		up->fd = -1;
		errno = EAGAIN;
	}
	if (up->fd < 0) {
		if (ota_storage_errno(errno))
			ota_storage_fault_note();
		log_err("images: cannot create a temporary file in %s: %s", im->incoming,
		        strerror(errno));
		up->tmp[0] = '\0';
		rc = OTA_ERR_IO;
		goto out;
	}
	*out = up;
	up = NULL;
	rc = OTA_OK;
out:
	ota_upload_abort(up);
	return rc;
}

enum ota_err ota_upload_write(struct ota_upload *up, const void *data, size_t len)
{
	const char *p = data;

	if (len > up->im->max_size || up->size > up->im->max_size - len)
		return OTA_ERR_TOO_LARGE;
	if (!EVP_DigestUpdate(up->md, data, len))
		return OTA_ERR_NOMEM;
	while (len) {
		ssize_t n = write(up->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0 || ota_storage_errno(errno))
				ota_storage_fault_note();
			log_err("images: write %s: %s", up->tmp, strerror(errno));
			return OTA_ERR_IO;
		}
		p += n;
		len -= (size_t)n;
		up->size += (uint64_t)n;
	}
	return OTA_OK;
}

enum ota_err ota_upload_finish(struct ota_upload *up, char sha256[65], uint64_t *size)
{
	enum ota_err rc = OTA_ERR_NOMEM;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char dst[OTA_PATH_MAX + 80];
	struct stat st;

	if (!EVP_DigestFinal_ex(up->md, md, &mdlen) || mdlen != 32)
		goto out;
	for (unsigned i = 0; i < 32; i++)
		snprintf(sha256 + 2 * i, 3, "%02x", md[i]);
	*size = up->size;
	snprintf(dst, sizeof(dst), "%s/%s", up->im->dir, sha256);
	rc = OTA_ERR_IO;
	if (stat(dst, &st) == 0 && (uint64_t)st.st_size == up->size) {
		rc = OTA_OK; /* the same bytes are there already */
		goto out;
	}
	if (fsync(up->fd) != 0 || fchmod(up->fd, 0640) != 0) {
		if (ota_storage_errno(errno))
			ota_storage_fault_note();
		log_err("images: fsync %s: %s", up->tmp, strerror(errno));
		goto out;
	}
	if (rename(up->tmp, dst) != 0) {
		log_err("images: rename to %s: %s", dst, strerror(errno));
		goto out;
	}
	up->tmp[0] = '\0';
	if (fsync_dir(up->im->dir) != 0) {
		if (ota_storage_errno(errno))
			ota_storage_fault_note();
		log_err("images: fsync %s: %s", up->im->dir, strerror(errno));
		goto out;
	}
	rc = OTA_OK;
out:
	ota_upload_abort(up);
	return rc;
}

void ota_upload_abort(struct ota_upload *up)
{
	if (!up)
		return;
	if (up->fd >= 0)
		close(up->fd);
	if (up->tmp[0])
		unlink(up->tmp);
	EVP_MD_CTX_free(up->md);
	free(up);
}

enum ota_err ota_images_open_file(struct ota_images *im, const char *sha256, int *fd,
                                  uint64_t *size)
{
	char path[OTA_PATH_MAX + 80];
	struct stat st;

	if (!ota_sha256_hex_valid(sha256))
		return OTA_ERR_NOT_FOUND;
	snprintf(path, sizeof(path), "%s/%s", im->dir, sha256);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return errno == ENOENT ? OTA_ERR_NOT_FOUND : OTA_ERR_IO;
	if (fstat(*fd, &st) != 0) {
		close(*fd);
		*fd = -1;
		return OTA_ERR_IO;
	}
	*size = (uint64_t)st.st_size;
	return OTA_OK;
}

enum ota_err ota_images_remove(struct ota_images *im, const char *sha256)
{
	char path[OTA_PATH_MAX + 80];

	if (!ota_sha256_hex_valid(sha256))
		return OTA_ERR_NOT_FOUND;
	snprintf(path, sizeof(path), "%s/%s", im->dir, sha256);
	if (unlink(path) != 0)
		return errno == ENOENT ? OTA_ERR_NOT_FOUND : OTA_ERR_IO;
	return OTA_OK;
}
