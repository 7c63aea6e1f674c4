# otad integration tests: bash + curl + openssl/gnutls-cli + sqlite3 against a real otad on
# 127.0.0.1 (ports chosen by the kernel), with a PKI and signing keys made at test time.
add_executable(notify_listen ${CMAKE_CURRENT_SOURCE_DIR}/integration/notify_listen.c)
set(OTA_SERVER_IT_ENV
	OTAD=$<TARGET_FILE:otad>
	NOTIFY_LISTEN=$<TARGET_FILE:notify_listen>
	OTA_SCRIPTS=${OTA_SCRIPTS})
if(TARGET ota-sign)
	list(APPEND OTA_SERVER_IT_ENV OTA_SIGN=$<TARGET_FILE:ota-sign>)
	set(OTA_SERVER_IT server_device_flow server_refusals server_bad_input server_crash
		server_stall server_config server_lifecycle server_checkin_crash
		server_checkin_rollout_cache server_ticket_key)
else()
	message(STATUS "ota-sign is not built: otad integration tests that sign releases are off")
	set(OTA_SERVER_IT)
endif()
list(APPEND OTA_SERVER_IT server_systemd server_docs)
foreach(t ${OTA_SERVER_IT})
	add_test(NAME integration_${t} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/${t}.sh)
	set_tests_properties(integration_${t} PROPERTIES LABELS integration TIMEOUT 300
		ENVIRONMENT "${OTA_SERVER_IT_ENV}")
endforeach()
# Security findings: each test fails on a server without the fix it covers.
if(TARGET ota-sign)
	foreach(t keepalive_access hostile_input limits image_race)
		add_test(NAME integration_server_${t}
			COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/server_${t}.sh)
		set_tests_properties(integration_server_${t} PROPERTIES LABELS integration TIMEOUT 300
			ENVIRONMENT "${OTA_SERVER_IT_ENV};OTA_TEST_HOOKS=${OTA_TEST_HOOKS}")
	endforeach()
	# A real systemd-journald in a private mount namespace: needs root, skipped (77) without.
	add_test(NAME integration_server_journal
		COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/server_journal.sh)
	set_tests_properties(integration_server_journal PROPERTIES LABELS integration TIMEOUT 300
		SKIP_RETURN_CODE 77 ENVIRONMENT "${OTA_SERVER_IT_ENV}")
endif()
include(${CMAKE_CURRENT_LIST_DIR}/server-rollout.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/server-mgmt.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/server-events.cmake)
# The device API's edges as docs/device-api.md states them.
if(TARGET ota-sign)
	add_test(NAME integration_device_api_edges
		COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/device_api_edges.sh)
	set_tests_properties(integration_device_api_edges PROPERTIES LABELS integration
		TIMEOUT 300 ENVIRONMENT "${OTA_SERVER_IT_ENV}")
endif()
# One device per certificate, and the device life cycle's state rules.
if(TARGET ota-sign)
	add_test(NAME integration_device_identity
		COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/device_identity.sh)
	set_tests_properties(integration_device_identity PROPERTIES LABELS integration
		TIMEOUT 300 ENVIRONMENT "${OTA_SERVER_IT_ENV}")
endif()
# Every answer as docs/openapi.yaml documents it, checked by a JSON Schema 2020-12 validator.
if(TARGET ota-sign)
	add_test(NAME integration_contract
		COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/contract.sh)
	set_tests_properties(integration_contract PROPERTIES LABELS integration
		TIMEOUT 300 ENVIRONMENT "${OTA_SERVER_IT_ENV}")
endif()
include(${CMAKE_CURRENT_LIST_DIR}/server-hostile.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/server-rollout-health.cmake)
# TLS: resumed sessions served as their device, revocations honoured by the verified-chain
# cache, X25519 preferred and P-256 still served.
if(TARGET ota-sign)
	add_test(NAME integration_server_tls_resume
		COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/server_tls_resume.sh)
	set_tests_properties(integration_server_tls_resume PROPERTIES LABELS integration
		TIMEOUT 300 ENVIRONMENT "${OTA_SERVER_IT_ENV}")
endif()
include(${CMAKE_CURRENT_LIST_DIR}/server-scale.cmake)
