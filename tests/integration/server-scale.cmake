# Scale-out: three otad on one PostgreSQL store and one data folder behind HAProxy (TCP), a
# staged rollout with a budget on 2,000 simulated devices, one instance killed and restarted
# in stage 2 (tests/integration/scale_out.sh). Run alone: its timing assumes the machine's
# cores are its own. Skipped (77) without haproxy.
find_program(OTA_PG_CONFIG pg_config)
if(TARGET ota-sign AND TARGET ota-agent AND TARGET ota-fleet-sim AND OTA_PG_CONFIG)
	add_test(NAME integration_scale_out COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/scale_out.sh)
	set_tests_properties(integration_scale_out PROPERTIES LABELS "integration;postgresql"
		TIMEOUT 1200 RUN_SERIAL TRUE SKIP_RETURN_CODE 77 ENVIRONMENT
		"${OTA_SERVER_IT_ENV};OTA_AGENT=$<TARGET_FILE:ota-agent>;OTA_FLEET_SIM=$<TARGET_FILE:ota-fleet-sim>;OTA_AUDIT_VERIFY=$<TARGET_FILE:ota-audit-verify>;ASAN_OPTIONS=quarantine_size_mb=4")
elseif(TARGET ota-sign)
	message(STATUS "integration_scale_out is off: it needs ota-agent, ota-fleet-sim and pg_config")
endif()
