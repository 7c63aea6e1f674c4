/*
 * common/clock.h - the time of otad's rollout decisions and device API (Unix seconds): the
 * system clock, shifted by the test clock offset when one is set. The offset exists only so
 * that integration tests can run a maintenance window, a soak or a backoff at a time of their
 * choosing without waiting for it (docs/testing.md, "Test clock"); it is read once from the
 * environment variable OTAD_TEST_CLOCK_OFFSET, is 0 when that is unset, and is never set by the
 * packages, the systemd unit or the configuration file.
 */
#ifndef OTA_CLOCK_H
#define OTA_CLOCK_H

#include <stdint.h>

#include "common/err.h"

#define OTA_TEST_CLOCK_ENV "OTAD_TEST_CLOCK_OFFSET"
#define OTA_TEST_CLOCK_MAX 315576000 /* ten years, either way */

/*
 * Reads OTAD_TEST_CLOCK_OFFSET once (a decimal integer of seconds, sign allowed, at most ten
 * years either way) into *offset, and makes ota_clock_now() apply it. OTA_ERR_INVALID when it is
 * set but malformed or out of range (the clock stays unshifted). Call before threads start.
 */
OTA_WUR enum ota_err ota_clock_init(int64_t *offset);

/* time(NULL) plus the test offset (0 unless ota_clock_init() read one). */
int64_t ota_clock_now(void);

#endif
