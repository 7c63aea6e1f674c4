# The core's portable tests (tests/portable) cross-compiled for Cortex-M33 and run under
# qemu-system-arm -M mps2-an505 with semihosting (newlib's rdimon: printf and exit codes).
# Included by firmware-agent/CMakeLists.txt when cross-compiling. Needs no Pico SDK.
#
# Crypto here is the test double of tests/m33/kit_double.c; the host build runs the same
# suites with real OpenSSL crypto (tests/unit/portable.cmake). Every run is bounded by
# `timeout`; a fault, a failed check or a hang fails the test.
set(FWA_M33_DIR ${CMAKE_CURRENT_LIST_DIR}/../../tests/m33)
set(FWA_PTEST_DIR ${CMAKE_CURRENT_LIST_DIR}/../../tests/portable)
set(FWA_M33_TIMEOUT 120 CACHE STRING "Seconds one QEMU test run may take")

find_program(FWA_QEMU_ARM qemu-system-arm)
find_program(FWA_TIMEOUT timeout)
if(NOT FWA_QEMU_ARM OR NOT FWA_TIMEOUT)
	message(FATAL_ERROR "The Cortex-M33 tests need qemu-system-arm and timeout "
		"(scripts/install-deps.sh installs qemu-system-arm)")
endif()

set(FWA_M33_SUITES encoding json semver time dsse root manifest identity delta bootimage credstore
	chainpin agent timetoken)
set(FWA_RP2350_DIR ${CMAKE_CURRENT_LIST_DIR}/../ports/rp2350)

# Start-up, exit path, runner, builders and the crypto double: linked into every program as
# objects, so that the vector table is never dropped by archive member selection.
add_library(fwa_m33_harness OBJECT
	${FWA_M33_DIR}/startup.c
	${FWA_M33_DIR}/main.c
	${FWA_M33_DIR}/kit_double.c
	${FWA_PTEST_DIR}/runner.c
	${FWA_PTEST_DIR}/build.c)
target_include_directories(fwa_m33_harness PUBLIC ${FWA_M33_DIR} ${FWA_PTEST_DIR}
	${CMAKE_CURRENT_LIST_DIR}/../include)

foreach(suite ${FWA_M33_SUITES})
	set(t m33_${suite})
	add_executable(${t} ${FWA_PTEST_DIR}/t_${suite}.c $<TARGET_OBJECTS:fwa_m33_harness>)
	target_include_directories(${t} PRIVATE ${FWA_M33_DIR} ${FWA_PTEST_DIR})
	target_link_libraries(${t} PRIVATE fwa_verify)
	if(suite STREQUAL "agent")
		target_link_libraries(${t} PRIVATE fwa_core)
	elseif(suite STREQUAL "delta")
		target_link_libraries(${t} PRIVATE fwa_delta)
	elseif(suite STREQUAL "identity" OR suite STREQUAL "bootimage" OR
		suite STREQUAL "credstore" OR suite STREQUAL "chainpin")
		# The RP2350 port's identity parser and image checks: freestanding, so they run
		# here without the SDK.
		target_sources(${t} PRIVATE ${FWA_RP2350_DIR}/${suite}.c)
		target_include_directories(${t} PRIVATE ${FWA_RP2350_DIR})
	endif()
	target_link_options(${t} PRIVATE
		-T${FWA_M33_DIR}/mps2-an505.ld --specs=rdimon.specs -nostartfiles
		-Wl,--gc-sections -Wl,-Map=${t}.map)
	set_target_properties(${t} PROPERTIES SUFFIX .elf
		LINK_DEPENDS ${FWA_M33_DIR}/mps2-an505.ld)
	add_test(NAME ${t}
		COMMAND ${FWA_TIMEOUT} --kill-after=5 ${FWA_M33_TIMEOUT}
			${FWA_QEMU_ARM} -M mps2-an505 -cpu cortex-m33 -nodefaults -display none
			-semihosting-config enable=on,target=native
			-kernel $<TARGET_FILE:${t}>)
	set_tests_properties(${t} PROPERTIES LABELS m33
		TIMEOUT ${FWA_M33_TIMEOUT}
		FAIL_REGULAR_EXPRESSION "FAIL |m33: FAULT|m33: unexpected")
endforeach()

# The harness itself: a program that faults must be reported and must fail.
add_executable(m33_selftest_fault ${FWA_M33_DIR}/selftest_fault.c ${FWA_M33_DIR}/startup.c)
target_include_directories(m33_selftest_fault PRIVATE ${FWA_M33_DIR})
target_link_options(m33_selftest_fault PRIVATE
	-T${FWA_M33_DIR}/mps2-an505.ld --specs=rdimon.specs -nostartfiles -Wl,--gc-sections)
set_target_properties(m33_selftest_fault PROPERTIES SUFFIX .elf
	LINK_DEPENDS ${FWA_M33_DIR}/mps2-an505.ld)
set(FWA_M33_SELFTEST_CMD ${FWA_TIMEOUT} --kill-after=5 30 ${FWA_QEMU_ARM} -M mps2-an505
	-cpu cortex-m33 -nodefaults -display none -semihosting-config enable=on,target=native
	-kernel $<TARGET_FILE:m33_selftest_fault>)
add_test(NAME m33_harness_fault_reported COMMAND ${FWA_M33_SELFTEST_CMD})
set_tests_properties(m33_harness_fault_reported PROPERTIES LABELS m33 TIMEOUT 40
	PASS_REGULAR_EXPRESSION "m33: FAULT exception.*bfar=90000000"
	FAIL_REGULAR_EXPRESSION "still running")
add_test(NAME m33_harness_fault_fails COMMAND ${FWA_M33_SELFTEST_CMD})
set_tests_properties(m33_harness_fault_fails PROPERTIES LABELS m33 TIMEOUT 40 WILL_FAIL TRUE)
