# otad --migrate-store (docs/scaling.md, "Moving from SQLite to PostgreSQL"): SQLite stores
# filled through otad and by ota-bench-fill, copied into a private PostgreSQL server
# (tests/pg_server.sh), and otad run on the copy.
if(TARGET ota-sign AND TARGET ota-bench-fill)
	add_test(NAME integration_migrate_store
		COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/migrate_store.sh)
	set_tests_properties(integration_migrate_store PROPERTIES LABELS "integration;postgresql"
		TIMEOUT 600 ENVIRONMENT "${OTA_SERVER_IT_ENV};OTA_AUDIT_VERIFY=$<TARGET_FILE:ota-audit-verify>;OTA_BENCH_FILL=$<TARGET_FILE:ota-bench-fill>")
endif()
