# ota-sign: every command through the library entry point in a temporary directory, and the
# real binary's exit statuses.
add_executable(test_signer ${CMAKE_CURRENT_LIST_DIR}/test_signer.c)
target_link_libraries(test_signer PRIVATE ota_signer PkgConfig::CMOCKA)
add_test(NAME unit_signer COMMAND test_signer)
set_tests_properties(unit_signer PROPERTIES LABELS unit TIMEOUT 300)

add_test(NAME unit_signer_cli COMMAND ${CMAKE_CURRENT_LIST_DIR}/signer_cli.sh $<TARGET_FILE:ota-sign>)
set_tests_properties(unit_signer_cli PROPERTIES LABELS unit TIMEOUT 120)

# Delta updates: the host encoder against the core's freestanding decoder.
add_executable(test_delta ${CMAKE_CURRENT_LIST_DIR}/test_delta.c)
target_link_libraries(test_delta PRIVATE ota_delta fwa_core fwa_crypto_openssl PkgConfig::CMOCKA)
add_test(NAME unit_delta COMMAND test_delta)
set_tests_properties(unit_delta PROPERTIES LABELS unit TIMEOUT 300)
