# Rollout judgements end to end with real ota-agent processes (needs ota-sign and the POSIX
# agent): the canary under the statistical halt and under a post-confirm regression, and
# maintenance windows with per-tag budgets on otad's test clock.
if(TARGET ota-sign AND TARGET ota-agent)
	foreach(mode statistical regression)
		add_test(NAME integration_rollout_canary_${mode}
			COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/rollout_canary.sh ${mode})
		set_tests_properties(integration_rollout_canary_${mode} PROPERTIES LABELS integration
			TIMEOUT 900 ENVIRONMENT "${OTA_SERVER_IT_ENV};OTA_AGENT=$<TARGET_FILE:ota-agent>")
	endforeach()
	add_test(NAME integration_rollout_windows_budgets
		COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/rollout_windows_budgets.sh)
	set_tests_properties(integration_rollout_windows_budgets PROPERTIES LABELS integration
		TIMEOUT 900 ENVIRONMENT "${OTA_SERVER_IT_ENV};OTA_AGENT=$<TARGET_FILE:ota-agent>")
endif()
