# otad unit tests (cmocka), one program per module, linking the same static libraries as otad.
pkg_check_modules(OTA_UT_SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
foreach(t config routes store artifact guard)
	add_executable(test_server_${t} ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_server_${t}.c)
	target_link_libraries(test_server_${t} PRIVATE ota_http ota_artifact ota_auth ota_store
		ota_config ota_common PkgConfig::CMOCKA PkgConfig::OTA_UT_SQLITE3)
	add_test(NAME unit_server_${t} COMMAND test_server_${t})
	set_tests_properties(unit_server_${t} PROPERTIES LABELS unit TIMEOUT 120)
endforeach()
add_executable(test_server_log ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_server_log.c)
target_link_libraries(test_server_log PRIVATE ota_store ota_common PkgConfig::CMOCKA
	PkgConfig::OTA_UT_SQLITE3)
add_test(NAME unit_server_log COMMAND test_server_log)
set_tests_properties(unit_server_log PROPERTIES LABELS unit TIMEOUT 120)
include(${CMAKE_CURRENT_LIST_DIR}/server-audit.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/server-rollout.cmake)
# Events out (server/events/): type lists, views, signatures, destinations, webhook rows.
add_executable(test_events ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_events.c)
target_link_libraries(test_events PRIVATE ota_events ota_store ota_config ota_common
	PkgConfig::CMOCKA)
add_test(NAME unit_events COMMAND test_events)
set_tests_properties(unit_events PROPERTIES LABELS unit TIMEOUT 120)
include(${CMAKE_CURRENT_LIST_DIR}/server-delta.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/server-pg.cmake)
# otad's online keys (the time key): strict loading, tokens checked with the agent's verifier.
add_executable(test_pki ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_pki.c)
target_link_libraries(test_pki PRIVATE ota_pki ota_signer fwa_crypto_openssl PkgConfig::CMOCKA)
add_test(NAME unit_pki COMMAND test_pki)
set_tests_properties(unit_pki PROPERTIES LABELS unit TIMEOUT 120)
