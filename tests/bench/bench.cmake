# Benchmarks: a smoke run of every bench script (seconds each, a tiny fleet), asserting only
# that each measured something: a script exits non-zero when it could not. The full runs are
# for people (docs/performance.md), never for CI. Plus the load generator's loopback guard.
set(bench_scripts compare-nginx fleet-scale ingest rollout-plan hostile)
if(TARGET ota-fleet-sim)
	list(APPEND bench_scripts fleet-sim) # needs the POSIX agent and the signer too
	# The simulator refuses a server that is not loopback before it mints or sends anything.
	add_test(NAME bench_fleet_sim_refuses_remote
		COMMAND ota-fleet-sim --server 192.0.2.1:443 --server-ca /nonexistent
			--ca-cert /nonexistent --ca-key /nonexistent --root /nonexistent)
	set_tests_properties(bench_fleet_sim_refuses_remote PROPERTIES LABELS bench
		PASS_REGULAR_EXPRESSION "refusing server 192.0.2.1:443")
endif()
if(TARGET ota-bench-delta)
	list(APPEND bench_scripts delta) # needs arm-none-eabi-gcc and qemu-system-arm too
endif()
foreach(script ${bench_scripts})
	add_test(NAME bench_smoke_${script}
		COMMAND ${CMAKE_SOURCE_DIR}/bench/${script} --smoke --build ${CMAKE_BINARY_DIR})
	set_tests_properties(bench_smoke_${script} PROPERTIES LABELS bench TIMEOUT 300)
endforeach()
# Several otad instances on one PostgreSQL behind HAProxy: needs PostgreSQL 15 (tests/pg_server.sh)
# and haproxy; its smoke also runs ota-bench-fill --conninfo and otad on the PostgreSQL store.
find_program(OTA_BENCH_HAPROXY haproxy PATHS /usr/sbin /sbin)
find_program(OTA_BENCH_PG_CONFIG pg_config)
if(OTA_BENCH_HAPROXY AND OTA_BENCH_PG_CONFIG)
	add_test(NAME bench_smoke_scale-out
		COMMAND ${CMAKE_SOURCE_DIR}/bench/scale-out --smoke --build ${CMAKE_BINARY_DIR})
	set_tests_properties(bench_smoke_scale-out PROPERTIES LABELS "bench;postgresql" TIMEOUT 300)
endif()
# The fleet simulator compresses device time (x5 in the smoke) but keeps the bootrom's trial
# watchdog at its real 16.7 s, as the hardware does: a healthy device whose trial (reports over
# TLS to an ASan otad, then the buy) is starved of CPU for that long is reverted by the
# watchdog, does not retry (one attempt), and the smoke's "80% on the release" fails. Beside
# another test under ctest -j2 on a 2-core machine that happened once; the smoke runs alone.
if(TARGET ota-fleet-sim)
	set_tests_properties(bench_smoke_fleet-sim PROPERTIES RUN_SERIAL TRUE)
endif()

# A target that is not loopback is refused before anything is sent.
add_test(NAME bench_loadgen_refuses_remote
	COMMAND ota-loadgen --target 192.0.2.1:443 --server-ca /nonexistent --cert /nonexistent
		--key /nonexistent --requests 1)
set_tests_properties(bench_loadgen_refuses_remote PROPERTIES LABELS bench
	PASS_REGULAR_EXPRESSION "refusing target 192.0.2.1")
add_test(NAME bench_loadgen_refuses_remote_source
	COMMAND ota-loadgen --bind 192.0.2.7 --target 127.0.0.1:443 --server-ca /nonexistent
		--cert /nonexistent --key /nonexistent --requests 1)
set_tests_properties(bench_loadgen_refuses_remote_source PROPERTIES LABELS bench
	PASS_REGULAR_EXPRESSION "--bind 192.0.2.7: not a loopback address")
