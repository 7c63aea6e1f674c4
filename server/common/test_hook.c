/*
 * common/test_hook.c - the pause points of test_hook.h, built only with OTA_TEST_HOOKS: a
 * test arms a point with a file, sees otad held there, acts, then lets it go on.
 */
#include "common/test_hook.h"

#ifdef OTA_TEST_HOOKS

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

void ota_test_pause(const char *point)
{
	const char *dir = getenv("OTAD_TEST_HOOK_DIR");
	char arm[512], held[512], go[512];

	if (!dir || !*dir)
		return;
	snprintf(arm, sizeof(arm), "%s/%s.pause", dir, point);
	snprintf(held, sizeof(held), "%s/%s.paused", dir, point);
	snprintf(go, sizeof(go), "%s/%s.continue", dir, point);
	if (unlink(arm) != 0)
		return; /* not armed */
	int fd = open(held, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0)
		close(fd);
	log_notice("test hook: paused at %s", point);
	const struct timespec tick = {0, 10 * 1000 * 1000};
	for (int i = 0; i < 6000 && access(go, F_OK) != 0; i++)
		nanosleep(&tick, NULL);
	unlink(go);
	unlink(held);
	log_notice("test hook: going on from %s", point);
}

#endif
