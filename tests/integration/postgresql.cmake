# The otad integration tests again on PostgreSQL: each test below runs a second time as
# integration_pg_<subject> (labels integration;postgresql) with OTA_TEST_BACKEND=postgresql, which
# makes tests/integration/server_lib.sh start a private PostgreSQL server (tests/pg_server.sh)
# for the test's store; the SQLite runs carry the label sqlite. Tests of what only SQLite has
# (its file on a full disk, its configuration and schema checks) and of what no store decides
# (journal, systemd, packaging, documentation) stay SQLite's.
find_program(OTA_PG_CONFIG pg_config)
if(NOT OTA_PG_CONFIG)
	message(STATUS "pg_config not found: the PostgreSQL runs of the integration tests are off")
	return()
endif()
# ota_pg_twin(SUBJECT [SCRIPT ARGS...]): integration_SUBJECT again, on PostgreSQL; the script
# is SUBJECT.sh unless given.
function(ota_pg_twin subject)
	set(t integration_${subject})
	if(NOT TEST ${t})
		return()
	endif()
	set(cmd ${ARGN})
	if(NOT cmd)
		set(cmd ${subject}.sh)
	endif()
	list(POP_FRONT cmd script)
	get_test_property(${t} ENVIRONMENT env)
	get_test_property(${t} TIMEOUT timeout)
	if(NOT env)
		set(env "")
	endif()
	add_test(NAME integration_pg_${subject}
		COMMAND bash ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/${script} ${cmd})
	set_tests_properties(integration_pg_${subject} PROPERTIES LABELS "integration;postgresql"
		TIMEOUT ${timeout} ENVIRONMENT "${env};OTA_TEST_BACKEND=postgresql")
	set_property(TEST ${t} APPEND PROPERTY LABELS sqlite)
endfunction()
foreach(subject server_device_flow server_refusals server_bad_input server_crash
		server_checkin_crash server_checkin_rollout_cache server_keepalive_access
		server_image_race server_stall server_lifecycle server_ticket_key server_hostile_input
		server_limits server_blocked_address server_tls_resume server_hostile_load
		device_api_edges device_identity contract events audit_log mgmt_lifecycle
		mgmt_operations mgmt_roles otactl console rollout_e2e rollout_plan rollout_windows_budgets
		delta_e2e agent_e2e agent_renewal agent_renewal_cut agent_renewal_pkcs11 agent_resume)
	ota_pg_twin(${subject})
endforeach()
ota_pg_twin(rollout_canary_statistical rollout_canary.sh statistical)
ota_pg_twin(rollout_canary_regression rollout_canary.sh regression)
ota_pg_twin(server_report_groups server_report_groups.sh ${CMAKE_BINARY_DIR})
ota_pg_twin(audit_export_memory)
# Copying a SQLite store into PostgreSQL.
include(${CMAKE_CURRENT_LIST_DIR}/migrate-store.cmake)
# PostgreSQL failing under otad: out of reach at start and while running, a full connection
# table, a password from a password file, a schema newer than otad, a second instance hearing
# rollout changes through NOTIFY across a restart (server_pg_faults.sh).
if(TARGET ota-sign AND TARGET ota-audit-verify)
	add_test(NAME integration_server_pg_faults
		COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/server_pg_faults.sh)
	set_tests_properties(integration_server_pg_faults PROPERTIES LABELS "integration;postgresql"
		TIMEOUT 600 ENVIRONMENT
		"${OTA_SERVER_IT_ENV};OTA_AUDIT_VERIFY=$<TARGET_FILE:ota-audit-verify>")
endif()
