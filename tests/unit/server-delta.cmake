# Unit tests of the deployment service's delta rules and the delta rows (a real SQLite store).
add_executable(test_deploy_delta ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_deploy_delta.c)
target_link_libraries(test_deploy_delta PRIVATE ota_deploy ota_rollout ota_audit ota_store
	ota_common PkgConfig::CMOCKA)
add_test(NAME unit_deploy_delta COMMAND test_deploy_delta)
set_tests_properties(unit_deploy_delta PROPERTIES LABELS unit TIMEOUT 120)
