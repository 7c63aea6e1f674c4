# Staged rollouts end to end: a real otad on 127.0.0.1 and a fleet of real ota-agent processes
# over simulated flash (needs ota-sign for the releases and the POSIX agent).
if(TARGET ota-sign AND TARGET ota-agent)
	add_test(NAME integration_rollout_e2e
		COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/rollout_e2e.sh)
	set_tests_properties(integration_rollout_e2e PROPERTIES LABELS integration TIMEOUT 900
		ENVIRONMENT "${OTA_SERVER_IT_ENV};OTA_AGENT=$<TARGET_FILE:ota-agent>")
endif()
