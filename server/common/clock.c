/*
 * common/clock.c - otad's decision clock (clock.h): the system time plus an offset that only
 * a test sets, read once at start, so that every rollout decision of one otad sees one clock.
 */
#include "common/clock.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

static int64_t test_offset;

enum ota_err ota_clock_init(int64_t *offset)
{
	const char *v = getenv(OTA_TEST_CLOCK_ENV);
	char *end;

	*offset = 0;
	if (!v || !*v)
		return OTA_OK;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || *end || n > OTA_TEST_CLOCK_MAX || n < -OTA_TEST_CLOCK_MAX)
		return OTA_ERR_INVALID;
	test_offset = (int64_t)n;
	*offset = test_offset;
	return OTA_OK;
}

int64_t ota_clock_now(void)
{
	return (int64_t)time(NULL) + test_offset;
}
