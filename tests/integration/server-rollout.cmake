# Staged rollouts end to end: a real otad on 127.0.0.1 and a fleet of real ota-agent processes
# over simulated flash (needs ota-sign for the releases and the POSIX agent).
if(TARGET ota-sign AND TARGET ota-agent)
	add_test(NAME integration_rollout_e2e
		COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/rollout_e2e.sh)
	set_tests_properties(integration_rollout_e2e PROPERTIES LABELS integration TIMEOUT 900
		ENVIRONMENT "${OTA_SERVER_IT_ENV};OTA_AGENT=$<TARGET_FILE:ota-agent>")
endif()
if(TARGET ota-sign)
	# The rollout plan endpoints: counts, skip reasons, windows, nothing changed.
	add_test(NAME integration_rollout_plan
		COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/rollout_plan.sh)
	set_tests_properties(integration_rollout_plan PROPERTIES LABELS integration TIMEOUT 300
		ENVIRONMENT "${OTA_SERVER_IT_ENV}")
	# The web console in a real headless Chromium (Debian's chromium, chromium-driver and
	# python3-selenium) against a real otad and fleet; screenshots into the build folder.
	add_test(NAME integration_console
		COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/console.sh)
	set_tests_properties(integration_console PROPERTIES LABELS integration TIMEOUT 600
		RUN_SERIAL TRUE ENVIRONMENT
		"${OTA_SERVER_IT_ENV};OTA_CONSOLE_DIR=${CMAKE_SOURCE_DIR}/console;CONSOLE_SHOTS=${CMAKE_BINARY_DIR}/console-screenshots")
endif()
