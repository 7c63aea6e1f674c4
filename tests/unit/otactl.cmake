# otactl's library: configuration, query building, tables, exit statuses, usage refusals.
add_executable(test_otactl ${CMAKE_CURRENT_LIST_DIR}/test_otactl.c)
target_link_libraries(test_otactl PRIVATE ota_ctl PkgConfig::CMOCKA)
add_test(NAME unit_otactl COMMAND test_otactl)
set_tests_properties(unit_otactl PROPERTIES LABELS unit TIMEOUT 120)
