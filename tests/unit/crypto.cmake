# The host crypto port over OpenSSL: published SHA-256 vectors, ECDSA P-256 verification, other
# curves refused. The verifier's own behaviour is tested by tests/portable (portable.cmake).
add_executable(test_crypto_openssl ${CMAKE_CURRENT_LIST_DIR}/test_crypto_openssl.c)
target_link_libraries(test_crypto_openssl PRIVATE fwa_crypto_openssl fwa_verify PkgConfig::CMOCKA)
add_test(NAME unit_crypto_openssl COMMAND test_crypto_openssl)
set_tests_properties(unit_crypto_openssl PROPERTIES LABELS unit TIMEOUT 120)
