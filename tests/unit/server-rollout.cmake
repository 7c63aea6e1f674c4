# Unit tests of the rollout engine (injected clock, temporary SQLite files, several threads).
find_package(Threads REQUIRED)
add_executable(test_rollout ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_rollout.c)
target_link_libraries(test_rollout PRIVATE ota_deploy ota_rollout ota_audit ota_store ota_common PkgConfig::CMOCKA
	PkgConfig::OTA_UT_SQLITE3 Threads::Threads)
add_test(NAME unit_rollout COMMAND test_rollout)
set_tests_properties(unit_rollout PROPERTIES LABELS unit TIMEOUT 120)

# Unit tests of the deployment service: each eligibility rule, and the operators' paths.
add_executable(test_deploy ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_deploy.c)
target_link_libraries(test_deploy PRIVATE ota_deploy ota_rollout ota_audit ota_store ota_common
	PkgConfig::CMOCKA)
add_test(NAME unit_deploy COMMAND test_deploy)
set_tests_properties(unit_deploy PROPERTIES LABELS unit TIMEOUT 120)

# The rollout plan: counts, skip reasons, estimates and windows on a temporary registry.
add_executable(unit_rollout_plan ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_rollout_plan.c)
target_link_libraries(unit_rollout_plan PRIVATE ota_deploy ota_rollout ota_audit ota_store ota_common
	PkgConfig::CMOCKA Threads::Threads)
add_test(NAME unit_rollout_plan COMMAND unit_rollout_plan)
set_tests_properties(unit_rollout_plan PROPERTIES LABELS unit TIMEOUT 120)

# "Durable before the answer": COMMIT and flush failures injected through an SQLite VFS shim
# in the test, and every acknowledged concurrent report visible from a fresh connection.
add_executable(test_store_faults ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_store_faults.c)
target_link_libraries(test_store_faults PRIVATE ota_deploy ota_rollout ota_audit ota_store
	ota_common PkgConfig::CMOCKA PkgConfig::OTA_UT_SQLITE3 Threads::Threads)
add_test(NAME unit_store_faults COMMAND test_store_faults)
set_tests_properties(unit_store_faults PROPERTIES LABELS unit TIMEOUT 300)

# The statistical halt against the plain threshold on seeded simulated canaries (pure verdict).
add_executable(unit_rollout_halt_sim ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_rollout_halt_sim.c)
target_link_libraries(unit_rollout_halt_sim PRIVATE ota_rollout ota_store ota_common
	PkgConfig::CMOCKA)
add_test(NAME unit_rollout_halt_sim COMMAND unit_rollout_halt_sim)
set_tests_properties(unit_rollout_halt_sim PROPERTIES LABELS unit TIMEOUT 120)
