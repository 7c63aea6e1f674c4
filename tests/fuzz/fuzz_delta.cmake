list(APPEND FUZZ_LIBS fwa_delta)
