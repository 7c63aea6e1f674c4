# otad under hostile clients and failing disks: the limits, the counted refusals, and full
# file systems (docs/operations.md, "Refusals and limits" and "A full disk").
if(TARGET ota-sign)
	foreach(t hostile_load blocked_address disk_full)
		add_test(NAME integration_server_${t}
			COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/server_${t}.sh)
		set_tests_properties(integration_server_${t} PROPERTIES LABELS integration TIMEOUT 300
			SKIP_RETURN_CODE 77 ENVIRONMENT "${OTA_SERVER_IT_ENV}")
	endforeach()
endif()
