# The store's PostgreSQL driver (store/sql_pg.c) and schema (schema/postgresql/) against a real
# PostgreSQL 15 server that tests/unit/sql_pg.sh starts for the test and stops after it.
add_executable(test_sql_pg ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sql_pg.c)
target_link_libraries(test_sql_pg PRIVATE ota_store ota_common PkgConfig::CMOCKA)
add_test(NAME unit_sql_pg
	COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/unit/sql_pg.sh $<TARGET_FILE:test_sql_pg>)
set_tests_properties(unit_sql_pg PROPERTIES LABELS "unit;postgresql" TIMEOUT 180)
