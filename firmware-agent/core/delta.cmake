# The delta decoder: freestanding like the verifier, no heap, at most 16 KiB of working memory;
# the same source builds for the host and Cortex-M33, and the agent core links it.
add_library(fwa_delta STATIC ${CMAKE_CURRENT_LIST_DIR}/delta.c)
target_compile_options(fwa_delta PRIVATE ${FWA_CORE_FLAGS})
target_include_directories(fwa_delta PUBLIC ${CMAKE_CURRENT_LIST_DIR}/../include)
target_link_libraries(fwa_delta PUBLIC fwa_verify)

if(CMAKE_CROSSCOMPILING)
	target_compile_options(fwa_delta PRIVATE -Os -fstack-usage)
	# Code size, the check that it needs nothing beyond string.h, and its working memory
	# (struct fwa_delta is asserted in the source to stay within 16 KiB; -fstack-usage writes
	# each function's frame into delta.c.su beside the object for bench/delta).
	find_program(FWA_SIZE NAMES ${CMAKE_SIZE} arm-none-eabi-size REQUIRED)
	find_program(FWA_NM NAMES ${CMAKE_NM} arm-none-eabi-nm REQUIRED)
	add_custom_target(fwa_delta_size ALL
		COMMAND ${FWA_SIZE} -t $<TARGET_FILE:fwa_delta>
		COMMAND ${CMAKE_COMMAND} -DNM=${FWA_NM} -DLIB=$<TARGET_FILE:fwa_delta>
			-P ${CMAKE_CURRENT_LIST_DIR}/check_symbols.cmake
		DEPENDS fwa_delta
		COMMENT "Code size of the delta decoder (fwa_delta) for ${CMAKE_SYSTEM_PROCESSOR}"
		VERBATIM)
endif()
