# Events out (docs/events.md): webhooks to a real HTTPS receiver on 127.0.0.1 (Python's
# http.server over ssl) and the live event stream, against a real otad.
if(TARGET ota-sign)
	add_test(NAME integration_events COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/events.sh)
	set_tests_properties(integration_events PROPERTIES LABELS integration TIMEOUT 600
		ENVIRONMENT "${OTA_SERVER_IT_ENV};ASAN_OPTIONS=quarantine_size_mb=4")
endif()
