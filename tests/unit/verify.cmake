# The shared verifier with the real OpenSSL crypto port; envelopes are built with the signer's
# writer (signer/signer.c), compiled in so that this test does not need ota-sign itself.
add_executable(test_verify ${CMAKE_CURRENT_LIST_DIR}/test_verify.c
	${CMAKE_SOURCE_DIR}/signer/signer.c)
target_include_directories(test_verify PRIVATE ${CMAKE_SOURCE_DIR}/signer)
target_link_libraries(test_verify PRIVATE fwa_crypto_openssl fwa_verify PkgConfig::CMOCKA)
add_test(NAME unit_verify COMMAND test_verify)
set_tests_properties(unit_verify PROPERTIES LABELS unit TIMEOUT 120)
