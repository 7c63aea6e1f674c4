/*
 * bench/pki.c - device identities for the bench tools: PEM loading and device certificates
 * minted in memory (see pki.h). Shared so that the load generator and the fleet simulator
 * present exactly the same kind of certificate as the development PKI's devices.
 */
#include "pki.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

const char *ota_bench_prog = "bench";
int ota_bench_exit_status = 2;

_Noreturn void ota_bench_ossl_die(const char *what)
{
	unsigned long e = ERR_get_error();

	fprintf(stderr, "%s: %s: %s\n", ota_bench_prog, what, e ? ERR_error_string(e, NULL) : "?");
	exit(ota_bench_exit_status);
}

static FILE *open_or_die(const char *path)
{
	FILE *f = fopen(path, "r");

	if (!f) {
		fprintf(stderr, "%s: cannot open %s: %s\n", ota_bench_prog, path, strerror(errno));
		exit(ota_bench_exit_status);
	}
	return f;
}

X509 *ota_bench_read_cert(const char *path)
{
	FILE *f = open_or_die(path);
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);

	fclose(f);
	if (!x)
		ota_bench_ossl_die("cannot read a certificate");
	return x;
}

EVP_PKEY *ota_bench_read_key(const char *path)
{
	FILE *f = open_or_die(path);
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);

	fclose(f);
	if (!k)
		ota_bench_ossl_die("cannot read a private key");
	return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!ext || !X509_add_ext(x, ext, -1))
		ota_bench_ossl_die("cannot add a certificate extension");
	X509_EXTENSION_free(ext);
}

void ota_bench_mint_device(const char *id, const char *org, X509 *ca, EVP_PKEY *ca_key,
                           EVP_PKEY **key, X509 **cert)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	unsigned char serial[16];
	BIGNUM *bn;
	EVP_PKEY *k = EVP_EC_gen("P-256");

	if (!x || !name || !k || RAND_bytes(serial, sizeof(serial)) != 1)
		ota_bench_ossl_die("cannot make a device key");
	serial[0] &= 0x7f; /* a positive serial */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		ota_bench_ossl_die("cannot set a serial");
	BN_free(bn);
	X509_set_version(x, 2);
	if (org)
		X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)org, -1,
		                           -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)id, -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, X509_get_subject_name(ca));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400);
	X509_set_pubkey(x, k);
	add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE");
	add_ext(x, ca, NID_key_usage, "critical,digitalSignature");
	add_ext(x, ca, NID_ext_key_usage, "clientAuth");
	add_ext(x, ca, NID_subject_key_identifier, "hash");
	add_ext(x, ca, NID_authority_key_identifier, "keyid");
	if (!X509_sign(x, ca_key, EVP_sha256()))
		ota_bench_ossl_die("cannot sign a device certificate");
	X509_NAME_free(name);
	*key = k;
	*cert = x;
}
