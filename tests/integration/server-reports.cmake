# Device reports in group commits with their connections suspended (docs/architecture.md,
# "Group commit"): many at once through the bench load generator, a dropped client and a stop
# while reports wait (through otad's test pause points when built with them).
add_test(NAME integration_server_report_groups
	COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/server_report_groups.sh ${CMAKE_BINARY_DIR})
set_tests_properties(integration_server_report_groups PROPERTIES LABELS integration TIMEOUT 300
	ENVIRONMENT "OTA_TEST_HOOKS=${OTA_TEST_HOOKS}")
