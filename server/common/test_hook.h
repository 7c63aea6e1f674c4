/*
 * common/test_hook.h - pause points for tests that need a race to happen in one exact window
 * (docs/testing.md, "Test hooks"). Compiled in only when otad is built with
 * -DOTA_TEST_HOOKS=ON (the default of Debug builds); otherwise every call is empty.
 *
 * At run time a pause point acts only when otad's environment names a folder in
 * OTAD_TEST_HOOK_DIR and that folder holds "<point>.pause": the call then removes that file,
 * creates "<point>.paused", and waits (at most 60 s) until the test creates
 * "<point>.continue", which it removes before returning. Each pause is armed once.
 */
#ifndef OTA_COMMON_TEST_HOOK_H
#define OTA_COMMON_TEST_HOOK_H

#ifdef OTA_TEST_HOOKS
void ota_test_pause(const char *point);
#else
static inline void ota_test_pause(const char *point)
{
	(void)point;
}
#endif

#endif
