# Management API and audit log integration tests: a real otad on 127.0.0.1 (ports picked by
# the kernel), the PKI and keys made at test time (server_lib.sh).
add_executable(audit_fill ${CMAKE_CURRENT_SOURCE_DIR}/integration/audit_fill.c)
target_link_libraries(audit_fill PRIVATE ota_audit ota_store)
# mgmt_operations runs the operations guide, which uses otactl.
set(OTA_CTL_ENV "")
if(TARGET otactl)
	set(OTA_CTL_ENV "OTACTL=$<TARGET_FILE:otactl>;")
endif()
if(TARGET ota-sign)
	foreach(t mgmt_roles mgmt_lifecycle audit_log mgmt_openapi mgmt_operations
		audit_export_memory)
		add_test(NAME integration_${t} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/${t}.sh)
		set_tests_properties(integration_${t} PROPERTIES LABELS integration TIMEOUT 600
			ENVIRONMENT "${OTA_SERVER_IT_ENV};OTA_AUDIT_VERIFY=$<TARGET_FILE:ota-audit-verify>;OTA_DOCS=${CMAKE_SOURCE_DIR}/docs;${OTA_CTL_ENV}AUDIT_FILL=$<TARGET_FILE:audit_fill>;ASAN_OPTIONS=quarantine_size_mb=4")
	endforeach()
endif()
