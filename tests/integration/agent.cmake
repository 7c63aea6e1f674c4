# End-to-end acceptance of the device agent (label integration): a real otad and two real
# ota-agent processes on 127.0.0.1. Needs the server, the signer and the POSIX agent.
if(TARGET otad AND TARGET ota-sign AND TARGET ota-agent)
	add_test(NAME integration_agent_e2e COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/agent_e2e.sh)
	set_tests_properties(integration_agent_e2e PROPERTIES LABELS integration TIMEOUT 300
		ENVIRONMENT "OTAD=$<TARGET_FILE:otad>;OTA_SIGN=$<TARGET_FILE:ota-sign>;OTA_AGENT=$<TARGET_FILE:ota-agent>;OTA_SCRIPTS=${OTA_SCRIPTS}")
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

# Credential renewal and signed time with a real otad and a real ota-agent.
if(TARGET otad AND TARGET ota-sign AND TARGET ota-agent)
	add_test(NAME integration_agent_renewal COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/agent_renewal.sh)
	set_tests_properties(integration_agent_renewal PROPERTIES LABELS integration TIMEOUT 300
		ENVIRONMENT "OTAD=$<TARGET_FILE:otad>;OTA_SIGN=$<TARGET_FILE:ota-sign>;OTA_AGENT=$<TARGET_FILE:ota-agent>;OTA_SCRIPTS=${OTA_SCRIPTS}")
endif()

# The same renewal with the issuing key in a SoftHSM2 token made at test time (PKCS#11).
if(TARGET otad AND TARGET ota-sign AND TARGET ota-agent)
	add_test(NAME integration_agent_renewal_pkcs11
		COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/agent_renewal_pkcs11.sh)
	set_tests_properties(integration_agent_renewal_pkcs11 PROPERTIES LABELS integration TIMEOUT 300
		ENVIRONMENT "OTAD=$<TARGET_FILE:otad>;OTA_SIGN=$<TARGET_FILE:ota-sign>;OTA_AGENT=$<TARGET_FILE:ota-agent>;OTA_SCRIPTS=${OTA_SCRIPTS}")
endif()

# Renewal whose answers are lost after otad pinned the new certificate (a TLS proxy drops them).
if(TARGET otad AND TARGET ota-sign AND TARGET ota-agent)
	add_test(NAME integration_agent_renewal_cut COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/agent_renewal_cut.sh)
	set_tests_properties(integration_agent_renewal_cut PROPERTIES LABELS integration TIMEOUT 300
		ENVIRONMENT "OTAD=$<TARGET_FILE:otad>;OTA_SIGN=$<TARGET_FILE:ota-sign>;OTA_AGENT=$<TARGET_FILE:ota-agent>;OTA_SCRIPTS=${OTA_SCRIPTS}")
endif()

# TLS session resumption across polls of one ota-agent process, dropped on renewal and CA change.
if(TARGET otad AND TARGET ota-sign AND TARGET ota-agent)
	add_test(NAME integration_agent_resume COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/agent_resume.sh)
	set_tests_properties(integration_agent_resume PROPERTIES LABELS integration TIMEOUT 300
		ENVIRONMENT "OTAD=$<TARGET_FILE:otad>;OTA_SIGN=$<TARGET_FILE:ota-sign>;OTA_AGENT=$<TARGET_FILE:ota-agent>;OTA_SCRIPTS=${OTA_SCRIPTS}")
endif()
