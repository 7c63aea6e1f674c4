# The shared verifier of signed metadata (and the JSON, base64 and time helpers the agent core
# reuses): freestanding, no heap, no stdio; the same sources build for the host and Cortex-M33.
add_library(fwa_verify STATIC
	${CMAKE_CURRENT_LIST_DIR}/err.c
	${CMAKE_CURRENT_LIST_DIR}/json.c
	${CMAKE_CURRENT_LIST_DIR}/encoding.c
	${CMAKE_CURRENT_LIST_DIR}/time.c
	${CMAKE_CURRENT_LIST_DIR}/semver.c
	${CMAKE_CURRENT_LIST_DIR}/dsse.c
	${CMAKE_CURRENT_LIST_DIR}/root.c
	${CMAKE_CURRENT_LIST_DIR}/manifest.c
	${CMAKE_CURRENT_LIST_DIR}/timetoken.c)
target_compile_options(fwa_verify PRIVATE ${FWA_CORE_FLAGS})
target_include_directories(fwa_verify PUBLIC ${CMAKE_CURRENT_LIST_DIR}/../include)

if(CMAKE_CROSSCOMPILING)
	# Size is what counts on the device, whatever the build type (target flags come last).
	target_compile_options(fwa_verify PRIVATE -Os)
	# Print the verifier's code size on every build (a target without outputs always runs), and
	# check that it needs nothing beyond string.h.
	find_program(FWA_SIZE NAMES ${CMAKE_SIZE} arm-none-eabi-size REQUIRED)
	find_program(FWA_NM NAMES ${CMAKE_NM} arm-none-eabi-nm REQUIRED)
	add_custom_target(fwa_verify_size ALL
		COMMAND ${FWA_SIZE} -t $<TARGET_FILE:fwa_verify>
		COMMAND ${CMAKE_COMMAND} -DNM=${FWA_NM} -DLIB=$<TARGET_FILE:fwa_verify>
			-P ${CMAKE_CURRENT_LIST_DIR}/check_symbols.cmake
		DEPENDS fwa_verify
		COMMENT "Code size of the verifier (fwa_verify) for ${CMAKE_SYSTEM_PROCESSOR}"
		VERBATIM)
endif()
