# Staged rollouts end to end: a real otad on 127.0.0.1 and a simulated fleet speaking the
# device API (needs ota-sign for the releases).
if(TARGET ota-sign)
	foreach(t rollout_e2e)
		add_test(NAME ${t} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/${t}.sh)
		set_tests_properties(${t} PROPERTIES LABELS integration TIMEOUT 600
			ENVIRONMENT "${OTA_SERVER_IT_ENV}")
	endforeach()
	# The rollout plan endpoints: counts, skip reasons, windows, nothing changed.
	add_test(NAME integration_rollout_plan
		COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/rollout_plan.sh)
	set_tests_properties(integration_rollout_plan PROPERTIES LABELS integration TIMEOUT 300
		ENVIRONMENT "${OTA_SERVER_IT_ENV}")
endif()

# The web console in a real headless Chromium (Debian's chromium, chromium-driver and
# python3-selenium) against a real otad and fleet; screenshots into the build folder.
if(TARGET ota-sign)
	add_test(NAME integration_console
		COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/console.sh)
	set_tests_properties(integration_console PROPERTIES LABELS integration TIMEOUT 600
		RUN_SERIAL TRUE ENVIRONMENT
		"${OTA_SERVER_IT_ENV};OTA_CONSOLE_DIR=${CMAKE_SOURCE_DIR}/console;CONSOLE_SHOTS=${CMAKE_BINARY_DIR}/console-screenshots")
endif()
