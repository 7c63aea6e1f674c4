# Unit tests of the agent core's modules (label unit): HTTP client, persistent state,
# check-in encoding. They link the core and reach its internal headers.
foreach(t http state checkin)
	add_executable(test_agent_${t} ${CMAKE_CURRENT_LIST_DIR}/test_agent_${t}.c)
	target_link_libraries(test_agent_${t} PRIVATE fwa_core_internal PkgConfig::CMOCKA)
	add_test(NAME unit_agent_${t} COMMAND test_agent_${t})
	set_tests_properties(unit_agent_${t} PROPERTIES LABELS unit)
endforeach()

# The RP2350 firmware's TLS configuration (mbedTLS and lwIP options, the TRNG entropy source),
# checked on the host since the firmware itself builds only with the Pico SDK.
set(FWA_RP2350_PORT_DIR ${CMAKE_SOURCE_DIR}/firmware-agent/ports/rp2350)
add_executable(test_rp2350_config ${CMAKE_CURRENT_LIST_DIR}/test_rp2350_config.c)
target_include_directories(test_rp2350_config PRIVATE ${FWA_RP2350_PORT_DIR})
target_compile_definitions(test_rp2350_config PRIVATE FWA_RP2350_DIR="${FWA_RP2350_PORT_DIR}")
target_link_libraries(test_rp2350_config PRIVATE fwa_verify PkgConfig::CMOCKA)
add_test(NAME unit_rp2350_config COMMAND test_rp2350_config)
set_tests_properties(unit_rp2350_config PROPERTIES LABELS unit)

# build.sh refuses a signing key without a rollback version before it needs the SDK (the first
# buy of a versioned image makes the bootrom require versions for good: docs/rp2350.md); with
# a rollback version it goes on to look for the SDK.
foreach(case "0;SIGNING_KEY needs ROLLBACK >= 1" "3;SDK submodules not checked out")
	list(GET case 0 rollback)
	list(GET case 1 expect)
	add_test(NAME unit_rp2350_build_signing_rollback_${rollback}
		COMMAND ${CMAKE_COMMAND} -E env SIGNING_KEY=boot-key.pem ROLLBACK=${rollback}
			PICO_SDK_PATH=${CMAKE_CURRENT_BINARY_DIR}/no-sdk
			${FWA_RP2350_PORT_DIR}/build.sh ${CMAKE_CURRENT_BINARY_DIR}/rp2350-not-built)
	set_tests_properties(unit_rp2350_build_signing_rollback_${rollback} PROPERTIES LABELS unit
		PASS_REGULAR_EXPRESSION "${expect}")
endforeach()
