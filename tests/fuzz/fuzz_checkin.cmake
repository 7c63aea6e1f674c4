# fuzz_checkin reaches the agent core's module headers.
list(APPEND FUZZ_LIBS fwa_core_internal)
