# Staged rollouts end to end: a real otad on 127.0.0.1 and a simulated fleet speaking the
# device API (needs ota-sign for the releases).
if(TARGET ota-sign)
	foreach(t rollout_e2e)
		add_test(NAME integration_${t} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/${t}.sh)
		set_tests_properties(integration_${t} PROPERTIES LABELS integration TIMEOUT 600
			ENVIRONMENT "${OTA_SERVER_IT_ENV}")
	endforeach()
endif()
