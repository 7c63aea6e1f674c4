/*
 * mbedtls_config.h - mbedTLS configuration of the RP2350 agent firmware: a TLS 1.2 client with
 * ECDHE-ECDSA and AES-GCM on P-256 (what otad's device listener offers), X.509 and PEM
 * parsing for the provisioned credentials, key generation and PKCS#10 requests for credential
 * renewal, ECDSA verification for signed metadata, session
 * tickets for resumption with the extended master secret (RFC 7627), so that a resumed
 * session is bound to the handshake that made it. SHA-256 stays in software here (no
 * MBEDTLS_SHA256_ALT), so TLS never competes with the agent for the accelerator.
 *
 * Randomness: the device key's ECDSA signatures in the handshake are deterministic (RFC 6979,
 * HMAC_DRBG over the key and the digest), so no nonce depends on a generator. Everything else
 * (ECDHE keys, client random) comes from lwIP's CTR_DRBG, seeded from the TRNG with its health
 * tests on (entropy_rp2350.c via ALTCP_MBEDTLS_RNG_FN). MBEDTLS_ENTROPY_HARDWARE_ALT stays off:
 * its source would be the SDK's pico_rand, a non-cryptographic PRNG fed raw TRNG samples with
 * the health tests bypassed. tests/unit/test_rp2350_config.c checks these choices on the host.
 *
 * MBEDTLS_HAVE_TIME with a millisecond clock (mbedtls_ms_time() in transport_rp2350.c) is
 * what lwIP's TLS glue needs. MBEDTLS_HAVE_TIME_DATE is off: the device has no trusted
 * calendar clock, so certificate validity periods are not checked on the device; the pinned
 * CA is the trust decision (docs/rp2350.md, "Security notes").
 */
#ifndef FWA_RP2350_MBEDTLS_CONFIG_H
#define FWA_RP2350_MBEDTLS_CONFIG_H

#include <limits.h> /* some mbedTLS sources use INT_MAX without including it */

/* lwIP's TLS glue reads mbedTLS context members that 3.x marks private. */
#define MBEDTLS_ALLOW_PRIVATE_ACCESS

#define MBEDTLS_NO_PLATFORM_ENTROPY
#define MBEDTLS_HAVE_TIME
#define MBEDTLS_PLATFORM_MS_TIME_ALT
#define MBEDTLS_PLATFORM_C

#define MBEDTLS_SSL_IN_CONTENT_LEN 16384
#define MBEDTLS_SSL_OUT_CONTENT_LEN 4096

/* TLS 1.2 client, ECDHE-ECDSA with AES-GCM. */
#define MBEDTLS_SSL_TLS_C
#define MBEDTLS_SSL_CLI_C
#define MBEDTLS_SSL_PROTO_TLS1_2
#define MBEDTLS_SSL_SERVER_NAME_INDICATION
#define MBEDTLS_SSL_SESSION_TICKETS
#define MBEDTLS_SSL_EXTENDED_MASTER_SECRET
#define MBEDTLS_SSL_KEEP_PEER_CERTIFICATE
#define MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED
#define MBEDTLS_SSL_CIPHERSUITES                                                                   \
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,                                           \
	    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384

/* Ciphers and hashes. */
#define MBEDTLS_AES_C
#define MBEDTLS_AES_FEWER_TABLES
#define MBEDTLS_GCM_C
#define MBEDTLS_CIPHER_C
#define MBEDTLS_MD_C
#define MBEDTLS_SHA224_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA256_SMALLER
#define MBEDTLS_SHA384_C
#define MBEDTLS_SHA512_C
#define MBEDTLS_CTR_DRBG_C
#define MBEDTLS_HMAC_DRBG_C
#define MBEDTLS_ENTROPY_C

/* P-256 ECDSA and ECDH. */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECDH_C
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ECDSA_DETERMINISTIC

/* Keys and certificates. */
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_OID_C
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C
#define MBEDTLS_PEM_PARSE_C
#define MBEDTLS_BASE64_C
#define MBEDTLS_X509_USE_C
#define MBEDTLS_X509_CRT_PARSE_C

/* Credential renewal (cred_rp2350.c): a new key in DER, its PKCS#10 request in PEM. */
#define MBEDTLS_PK_WRITE_C
#define MBEDTLS_PEM_WRITE_C
#define MBEDTLS_X509_CREATE_C
#define MBEDTLS_X509_CSR_WRITE_C

#define MBEDTLS_ERROR_C

#endif
