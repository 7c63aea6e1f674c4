# otactl against a real otad on 127.0.0.1 (server_lib.sh: PKI and keys made at test time).
if(TARGET otactl AND TARGET otad AND TARGET ota-sign)
	add_test(NAME integration_otactl COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/otactl.sh)
	set_tests_properties(integration_otactl PROPERTIES LABELS integration TIMEOUT 1200
		ENVIRONMENT "OTAD=$<TARGET_FILE:otad>;OTA_SIGN=$<TARGET_FILE:ota-sign>;OTA_SCRIPTS=${OTA_SCRIPTS};OTACTL=$<TARGET_FILE:otactl>;OTA_AUDIT_VERIFY=$<TARGET_FILE:ota-audit-verify>;ASAN_OPTIONS=quarantine_size_mb=4")
endif()

# The Debian packages (cpack from this build tree), installed into a throw-away root, their man
# pages rendered, lintian; and cmake --install into a DESTDIR.
if(TARGET otactl AND TARGET otad AND TARGET ota-sign AND TARGET ota-agent)
	add_test(NAME integration_packaging
		COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/packaging.sh)
	set_tests_properties(integration_packaging PROPERTIES LABELS integration TIMEOUT 1200
		ENVIRONMENT "OTA_BUILD=${CMAKE_BINARY_DIR};ASAN_OPTIONS=detect_leaks=0")
endif()
