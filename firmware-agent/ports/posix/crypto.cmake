# The host crypto port over OpenSSL, with the key helpers the signer and the server share.
find_package(OpenSSL 3.0 REQUIRED COMPONENTS Crypto)
add_library(fwa_crypto_openssl STATIC ${CMAKE_CURRENT_LIST_DIR}/crypto_openssl.c)
target_link_libraries(fwa_crypto_openssl PUBLIC fwa_verify OpenSSL::Crypto)
