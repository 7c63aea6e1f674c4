# End-to-end acceptance of the device agent (label integration): a real otad and real
# ota-agent processes on 127.0.0.1. Needs the server, the signer and the POSIX agent.
#   agent_e2e             two agents take an update end to end
#   agent_renewal         credential renewal and signed time
#   agent_renewal_pkcs11  the same renewal, the issuing key in a SoftHSM2 token made at test time
#   agent_renewal_cut     renewal whose answers are lost after otad pinned the new certificate
#                         (a TLS proxy drops them)
#   agent_resume          TLS session resumption across polls, dropped on renewal and CA change
if(TARGET otad AND TARGET ota-sign AND TARGET ota-agent)
	foreach(t agent_e2e agent_renewal agent_renewal_pkcs11 agent_renewal_cut agent_resume)
		add_test(NAME integration_${t} COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/${t}.sh)
		set_tests_properties(integration_${t} PROPERTIES LABELS integration TIMEOUT 300
			ENVIRONMENT "OTAD=$<TARGET_FILE:otad>;OTA_SIGN=$<TARGET_FILE:ota-sign>;OTA_AGENT=$<TARGET_FILE:ota-agent>;OTA_SCRIPTS=${OTA_SCRIPTS}")
	endforeach()
endif()

# ota-agent's command line, configuration and bad input (no server needed).
if(TARGET ota-sign AND TARGET ota-agent)
	add_test(NAME integration_agent_cli COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/agent_cli.sh)
	set_tests_properties(integration_agent_cli PROPERTIES LABELS integration TIMEOUT 120
		ENVIRONMENT "OTA_SIGN=$<TARGET_FILE:ota-sign>;OTA_AGENT=$<TARGET_FILE:ota-agent>")
endif()

# Deltas end to end: otad stores and offers a delta, real agents apply it or fall back.
if(TARGET otad AND TARGET ota-sign AND TARGET ota-agent AND TARGET otactl)
	add_test(NAME integration_delta_e2e COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/delta_e2e.sh)
	set_tests_properties(integration_delta_e2e PROPERTIES LABELS integration TIMEOUT 400
		ENVIRONMENT "OTAD=$<TARGET_FILE:otad>;OTA_SIGN=$<TARGET_FILE:ota-sign>;OTA_AGENT=$<TARGET_FILE:ota-agent>;OTACTL=$<TARGET_FILE:otactl>;OTA_SCRIPTS=${OTA_SCRIPTS}")
endif()
