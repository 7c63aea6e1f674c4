# The device agent core: state machine, persistent state, HTTP client, check-in encoding.
# Freestanding like the verifier it links; the same sources build for the host and Cortex-M33.
add_library(fwa_core STATIC
	${CMAKE_CURRENT_LIST_DIR}/agent.c
	${CMAKE_CURRENT_LIST_DIR}/checkin.c
	${CMAKE_CURRENT_LIST_DIR}/crc32.c
	${CMAKE_CURRENT_LIST_DIR}/http.c
	${CMAKE_CURRENT_LIST_DIR}/state.c
	${CMAKE_CURRENT_LIST_DIR}/state_migrate.c)
target_compile_options(fwa_core PRIVATE ${FWA_CORE_FLAGS})
target_include_directories(fwa_core PUBLIC ${CMAKE_CURRENT_LIST_DIR}/../include
	PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(fwa_core PUBLIC fwa_verify fwa_delta)

if(CMAKE_CROSSCOMPILING)
	# Size is what counts on the device, whatever the build type (target flags come last).
	target_compile_options(fwa_core PRIVATE -Os)
	# Print the agent core's code size on every build (docs/agent.md records the figures).
	find_program(FWA_SIZE NAMES ${CMAKE_SIZE} arm-none-eabi-size REQUIRED)
	add_custom_target(fwa_core_size ALL
		COMMAND ${FWA_SIZE} -t $<TARGET_FILE:fwa_core>
		DEPENDS fwa_core
		COMMENT "Code size of the agent core (fwa_core) for ${CMAKE_SYSTEM_PROCESSOR}"
		VERBATIM)
endif()

# The core's module headers (http.h, state.h, checkin.h) for its unit tests and fuzz targets.
add_library(fwa_core_internal INTERFACE)
target_include_directories(fwa_core_internal INTERFACE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(fwa_core_internal INTERFACE fwa_core)
