/*
 * tests/unit/store_fixture.h - the temporary SQLite store the server's unit tests start from:
 * a fresh folder under /tmp holding otad.db with every migration applied, removed again at
 * teardown. Header-only so each test program includes it without a library of its own.
 */
#ifndef OTA_TEST_STORE_FIXTURE_H
#define OTA_TEST_STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"

#define OTA_TEST_DIR_MAX 64
#define OTA_TEST_PATH_MAX 128

/* Makes /tmp/ota-<tag>-XXXXXX and opens <dir>/otad.db; 0, or -1 with the reason on stderr. */
static inline int ota_test_store_open(const char *tag, char dir[OTA_TEST_DIR_MAX],
                                      char path[OTA_TEST_PATH_MAX], struct ota_store **st)
{
	char msg[256];

	snprintf(dir, OTA_TEST_DIR_MAX, "/tmp/ota-%s-XXXXXX", tag);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return -1;
	}
	snprintf(path, OTA_TEST_PATH_MAX, "%s/otad.db", dir);
	if (ota_store_open(path, st, msg, sizeof(msg)) != OTA_OK) {
		fprintf(stderr, "%s\n", msg);
		return -1;
	}
	return 0;
}

/* Frees the store and removes the folder; 0, or -1 when the folder could not be removed. */
static inline int ota_test_store_close(const char *dir, struct ota_store *st)
{
	char cmd[OTA_TEST_DIR_MAX + 16];

	ota_store_free(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
