# Unit tests of the audit log (and the store transactions it relies on), on temporary SQLite
# files. Under ASan the freed-memory quarantine is kept small so that the constant-memory
# export check measures the export, not the quarantine.
add_executable(test_audit ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit.c)
target_link_libraries(test_audit PRIVATE ota_audit ota_store ota_common PkgConfig::CMOCKA
	PkgConfig::OTA_UT_SQLITE3)
add_test(NAME unit_audit COMMAND test_audit)
set_tests_properties(unit_audit PROPERTIES LABELS unit TIMEOUT 300
	ENVIRONMENT "ASAN_OPTIONS=quarantine_size_mb=1")

# The audit log's rows behind store/audit_store.h, without the audit module.
add_executable(test_audit_store ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit_store.c)
target_link_libraries(test_audit_store PRIVATE ota_store ota_common PkgConfig::CMOCKA)
add_test(NAME unit_audit_store COMMAND test_audit_store)
set_tests_properties(unit_audit_store PROPERTIES LABELS unit TIMEOUT 120)

# Identities: admission policies, operator principals, API tokens.
add_executable(test_auth ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_auth.c)
target_link_libraries(test_auth PRIVATE ota_auth ota_audit ota_store ota_config ota_common
	PkgConfig::CMOCKA)
add_test(NAME unit_auth COMMAND test_auth)
set_tests_properties(unit_auth PROPERTIES LABELS unit TIMEOUT 120)

# The verified-chain cache: expiry, clear, bound and replacement, threads.
add_executable(test_idcache ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_idcache.c)
target_link_libraries(test_idcache PRIVATE ota_auth ota_common PkgConfig::CMOCKA Threads::Threads)
add_test(NAME unit_idcache COMMAND test_idcache)
set_tests_properties(unit_idcache PROPERTIES LABELS unit TIMEOUT 120)
