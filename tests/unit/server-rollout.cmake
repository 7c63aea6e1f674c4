# Unit tests of the rollout engine (injected clock, temporary SQLite files, several threads).
find_package(Threads REQUIRED)
add_executable(test_rollout ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_rollout.c)
target_link_libraries(test_rollout PRIVATE ota_rollout ota_audit ota_store ota_common PkgConfig::CMOCKA
	PkgConfig::OTA_UT_SQLITE3 Threads::Threads)
add_test(NAME unit_rollout COMMAND test_rollout)
set_tests_properties(unit_rollout PROPERTIES LABELS unit TIMEOUT 120)
