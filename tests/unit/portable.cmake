# The core's portable tests (tests/portable) on the host, with the real OpenSSL crypto port
# and keys generated at run time. The same sources run on an emulated Cortex-M33 with a crypto
# test double (firmware-agent/cmake/m33-tests.cmake); this build is what makes that double
# acceptable.
set(PTEST_DIR ${CMAKE_SOURCE_DIR}/tests/portable)
set(PTEST_SUITES encoding json semver time dsse root manifest identity delta bootimage credstore
	chainpin agent timetoken)
# The RP2350 port's identity parser is freestanding too; its suite compiles it in.
set(PTEST_RP2350_DIR ${CMAKE_SOURCE_DIR}/firmware-agent/ports/rp2350)

add_library(ptest_host STATIC
	${PTEST_DIR}/runner.c
	${PTEST_DIR}/build.c
	${PTEST_DIR}/host/kit_openssl.c)
target_include_directories(ptest_host PUBLIC ${PTEST_DIR} ${PTEST_DIR}/host)
target_link_libraries(ptest_host PUBLIC fwa_crypto_openssl)

foreach(suite ${PTEST_SUITES})
	add_executable(test_portable_${suite} ${PTEST_DIR}/t_${suite}.c ${PTEST_DIR}/host/main.c)
	target_link_libraries(test_portable_${suite} PRIVATE ptest_host)
	if(suite STREQUAL "agent")
		target_link_libraries(test_portable_${suite} PRIVATE fwa_core)
	elseif(suite STREQUAL "delta")
		target_link_libraries(test_portable_${suite} PRIVATE fwa_delta)
	elseif(suite STREQUAL "identity" OR suite STREQUAL "bootimage" OR
		suite STREQUAL "credstore" OR suite STREQUAL "chainpin")
		target_sources(test_portable_${suite} PRIVATE ${PTEST_RP2350_DIR}/${suite}.c)
		target_include_directories(test_portable_${suite} PRIVATE ${PTEST_RP2350_DIR})
	endif()
	add_test(NAME portable_${suite} COMMAND test_portable_${suite})
	set_tests_properties(portable_${suite} PROPERTIES LABELS portable TIMEOUT 120
		FAIL_REGULAR_EXPRESSION "FAIL ")
endforeach()
