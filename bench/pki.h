/*
 * bench/pki.h - device identities for the bench tools (ota-loadgen, ota-fleet-sim): PEM
 * loading and device certificates minted in memory from a CA the bench made a moment
 * earlier. Every failure prints "<prog>: <what>: <OpenSSL's reason>" and exits: these are
 * command-line instruments, not library code.
 */
#ifndef OTA_BENCH_PKI_H
#define OTA_BENCH_PKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>

/* The program name printed before every message; set once in main(). */
extern const char *ota_bench_prog;

/* The exit status of every failure here (default 2); set once in main(). */
extern int ota_bench_exit_status;

/* Print what failed with OpenSSL's queued reason, and exit with ota_bench_exit_status. */
_Noreturn void ota_bench_ossl_die(const char *what);

/* A PEM certificate / private key read from path; the caller frees it. Exits on failure. */
X509 *ota_bench_read_cert(const char *path);
EVP_PKEY *ota_bench_read_key(const char *path);

/*
 * A device certificate as a factory issues it: a new P-256 key, subject CN = id (and
 * O = org unless NULL), clientAuth, valid from an hour ago for a week, signed by ca/ca_key.
 * The caller owns *key and *cert. Exits on failure.
 */
void ota_bench_mint_device(const char *id, const char *org, X509 *ca, EVP_PKEY *ca_key,
                           EVP_PKEY **key, X509 **cert);

#endif
