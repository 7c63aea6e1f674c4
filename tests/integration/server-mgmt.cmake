# Management API and audit log integration tests: a real otad on 127.0.0.1 (ports picked by
# the kernel), the PKI and keys made at test time (server_lib.sh).
if(TARGET ota-sign)
	foreach(t mgmt_roles mgmt_lifecycle audit_log mgmt_openapi mgmt_operations)
		if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/integration/${t}.sh)
			add_test(NAME ${t} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/${t}.sh)
			set_tests_properties(${t} PROPERTIES LABELS integration TIMEOUT 600
				ENVIRONMENT "${OTA_SERVER_IT_ENV};OTA_AUDIT_VERIFY=$<TARGET_FILE:ota-audit-verify>;OTA_DOCS=${CMAKE_SOURCE_DIR}/docs")
		endif()
	endforeach()
endif()
