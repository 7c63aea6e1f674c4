/*
 * cred_rp2350.c - device credential renewal on the RP2350: the pending key is a new ECDSA
 * P-256 key made by mbedTLS (mbedtls_ecp_gen_key, from a CTR_DRBG seeded by the TRNG with its
 * health tests on), its PKCS#10 request is written by mbedTLS (mbedtls_x509write_csr), and the
 * key (DER), the issued certificate chain (PEM) and the commit go through the power-cut safe
 * store of credstore.c in the last two sectors of the identity partition (docs/rp2350.md,
 * "Credential renewal"). The pair in use is the store's current pair once a renewal was
 * committed, else the provisioned one. The transport asks which pair to present and commits.
 */
#include <stdio.h>
#include <string.h>

#include "mbedtls/asn1.h"
#include "mbedtls/base64.h"
#include "mbedtls/ctr_drbg.h"
#include "mbedtls/ecp.h"
#include "mbedtls/oid.h"
#include "mbedtls/pk.h"
#include "mbedtls/sha256.h"
#include "mbedtls/x509_crt.h"
#include "mbedtls/x509_csr.h"

#include "credstore.h"
#include "port_rp2350.h"

static struct fwa_credstore store;
static uint8_t store_rec[FWA_RP2350_CRED_COPY], store_work[FWA_RP2350_CRED_COPY];

enum fwa_err fwa_rp2350_cred_setup(struct fwa_rp2350 *p, const struct fwa_credstore_flash *flash,
                                   const char **why)
{
	uint8_t tag[32];

	/* Bound to the provisioned certificate: re-provisioning hides older renewals. */
	if (mbedtls_sha256((const unsigned char *)p->id.device_cert, p->id.device_cert_len, tag,
	                   0) != 0) {
		*why = "cannot hash the provisioned certificate";
		return FWA_ERR_CRYPTO;
	}
	if (fwa_credstore_open(&store, flash, tag, store_rec, store_work) != FWA_OK) {
		*why = "the renewed credentials cannot be read";
		return FWA_ERR_FLASH;
	}
	return FWA_OK;
}

bool fwa_rp2350_cred_pair(const struct fwa_rp2350 *p, bool pending, struct fwa_rp2350_pair *out)
{
	if (pending) {
		if (!fwa_credstore_pending(&store))
			return false;
		out->key = store.new_key.p;
		out->key_len = store.new_key.len;
		out->cert = store.new_cert.p;
		out->cert_len = store.new_cert.len;
		return true;
	}
	if (store.cur_key.len) {
		out->key = store.cur_key.p;
		out->key_len = store.cur_key.len;
		out->cert = store.cur_cert.p;
		out->cert_len = store.cur_cert.len;
	} else {
		out->key = (const uint8_t *)p->id.device_key;
		out->key_len = p->id.device_key_len;
		out->cert = (const uint8_t *)p->id.device_cert;
		out->cert_len = p->id.device_cert_len;
	}
	return true;
}

enum fwa_err fwa_rp2350_cred_commit(struct fwa_rp2350 *p)
{
	(void)p;
	return fwa_credstore_commit(&store);
}

static int seed(mbedtls_ctr_drbg_context *drbg)
{
	static const unsigned char pers[] = "fwa-renewal";

	return mbedtls_ctr_drbg_seed(drbg, fwa_rp2350_entropy, NULL, pers, sizeof(pers) - 1);
}

static int64_t unix_of(const mbedtls_x509_time *t)
{
	char s[24];
	int64_t v = 0;

	snprintf(s, sizeof(s), "%04d-%02d-%02dT%02d:%02d:%02dZ", t->year, t->mon, t->day, t->hour,
	         t->min, t->sec);
	return fwa_time_parse(s, strlen(s), &v) == FWA_OK ? v : 0;
}

enum fwa_err fwa_rp2350_cred_lifetime(void *ctx, int64_t *not_before, int64_t *not_after,
                                      bool *pending)
{
	struct fwa_rp2350_pair pair;
	mbedtls_x509_crt crt;
	enum fwa_err err = FWA_ERR_CRYPTO;

	mbedtls_x509_crt_init(&crt);
	(void)fwa_rp2350_cred_pair(ctx, false, &pair);
	if (mbedtls_x509_crt_parse(&crt, pair.cert, pair.cert_len) == 0) {
		*not_before = unix_of(&crt.valid_from);
		*not_after = unix_of(&crt.valid_to);
		*pending = fwa_credstore_pending(&store);
		err = *not_before && *not_after ? FWA_OK : FWA_ERR_CRYPTO;
	}
	mbedtls_x509_crt_free(&crt);
	return err;
}

/* "CN=<common name of the certificate in use>" (otad ignores the subject; it names the id). */
static bool subject_of(const struct fwa_rp2350_pair *pair, char *out, size_t cap)
{
	mbedtls_x509_crt crt;
	bool ok = false;

	mbedtls_x509_crt_init(&crt);
	if (mbedtls_x509_crt_parse(&crt, pair->cert, pair->cert_len) == 0)
		for (const mbedtls_x509_name *n = &crt.subject; n && !ok; n = n->next)
			if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0 && n->val.len &&
			    n->val.len + 4 <= cap && !memchr(n->val.p, ',', n->val.len) &&
			    !memchr(n->val.p, '\\', n->val.len) &&
			    !memchr(n->val.p, 0, n->val.len)) {
				memcpy(out, "CN=", 3);
				memcpy(out + 3, n->val.p, n->val.len);
				out[3 + n->val.len] = 0;
				ok = true;
			}
	mbedtls_x509_crt_free(&crt);
	return ok;
}

/* The pending key into *key: the stored one, else a new one persisted before it is used. */
static enum fwa_err pending_key(mbedtls_pk_context *key, mbedtls_ctr_drbg_context *drbg)
{
	unsigned char der[160];
	int n;

	if (store.new_key.len) {
		if (mbedtls_pk_parse_key(key, store.new_key.p, store.new_key.len, NULL, 0,
		                         mbedtls_ctr_drbg_random, drbg) == 0)
			return FWA_OK;
		mbedtls_pk_free(key);
		mbedtls_pk_init(key);
	}
	if (mbedtls_pk_setup(key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
	    mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*key),
	                        mbedtls_ctr_drbg_random, drbg) != 0)
		return FWA_ERR_CRYPTO;
	/* mbedtls_pk_write_key_der writes at the end of the buffer. */
	n = mbedtls_pk_write_key_der(key, der, sizeof(der));
	enum fwa_err err = n > 0 ? fwa_credstore_set_key(&store, der + sizeof(der) - n, (uint32_t)n)
	                         : FWA_ERR_CRYPTO;
	memset(der, 0, sizeof(der));
	return err;
}

enum fwa_err fwa_rp2350_cred_csr(void *ctx, char *buf, size_t cap, size_t *len)
{
	struct fwa_rp2350_pair pair;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_pk_context key;
	mbedtls_x509write_csr csr;
	char subject[80];
	enum fwa_err err = FWA_ERR_CRYPTO;

	mbedtls_ctr_drbg_init(&drbg);
	mbedtls_pk_init(&key);
	mbedtls_x509write_csr_init(&csr);
	(void)fwa_rp2350_cred_pair(ctx, false, &pair);
	if (!subject_of(&pair, subject, sizeof(subject)) || seed(&drbg) != 0)
		goto out;
	/* A certificate issued for the pending key before is of no use any more: drop it. */
	if (store.new_cert.len &&
	    (err = fwa_credstore_set_key(&store, store.new_key.p, store.new_key.len)) != FWA_OK)
		goto out;
	err = pending_key(&key, &drbg);
	if (err != FWA_OK)
		goto out;
	err = FWA_ERR_CRYPTO;
	mbedtls_x509write_csr_set_md_alg(&csr, MBEDTLS_MD_SHA256);
	mbedtls_x509write_csr_set_key(&csr, &key);
	if (mbedtls_x509write_csr_set_subject_name(&csr, subject) != 0)
		goto out;
	int rc = mbedtls_x509write_csr_pem(&csr, (unsigned char *)buf, cap, mbedtls_ctr_drbg_random,
	                                   &drbg);
	if (rc == MBEDTLS_ERR_BASE64_BUFFER_TOO_SMALL || rc == MBEDTLS_ERR_ASN1_BUF_TOO_SMALL) {
		err = FWA_ERR_TOO_LARGE;
		goto out;
	}
	if (rc != 0)
		goto out;
	*len = strlen(buf);
	err = FWA_OK;
out:
	mbedtls_x509write_csr_free(&csr);
	mbedtls_pk_free(&key);
	mbedtls_ctr_drbg_free(&drbg);
	return err;
}

enum fwa_err fwa_rp2350_cred_install(void *ctx, const char *pem, size_t len)
{
	mbedtls_ctr_drbg_context drbg;
	mbedtls_pk_context key;
	mbedtls_x509_crt crt;
	enum fwa_err err = FWA_ERR_KEY;

	(void)ctx;
	mbedtls_ctr_drbg_init(&drbg);
	mbedtls_pk_init(&key);
	mbedtls_x509_crt_init(&crt);
	/* PEM with its NUL, as mbedTLS parses it; a P-256 certificate for the pending key. */
	if (!store.new_key.len || pem[len] != 0 || seed(&drbg) != 0 ||
	    mbedtls_x509_crt_parse(&crt, (const unsigned char *)pem, len + 1) != 0 ||
	    mbedtls_pk_get_type(&crt.pk) != MBEDTLS_PK_ECKEY ||
	    mbedtls_ecp_keypair_get_group_id(mbedtls_pk_ec(crt.pk)) != MBEDTLS_ECP_DP_SECP256R1 ||
	    mbedtls_pk_parse_key(&key, store.new_key.p, store.new_key.len, NULL, 0,
	                         mbedtls_ctr_drbg_random, &drbg) != 0 ||
	    mbedtls_pk_check_pair(&crt.pk, &key, mbedtls_ctr_drbg_random, &drbg) != 0)
		goto out;
	err = len + 1 > UINT32_MAX ? FWA_ERR_TOO_LARGE
	                           : fwa_credstore_set_cert(&store, pem, (uint32_t)len + 1);
	if (err == FWA_ERR_TOO_LARGE)
		err = FWA_ERR_FLASH; /* cannot be written: nothing changed */
out:
	mbedtls_x509_crt_free(&crt);
	mbedtls_pk_free(&key);
	mbedtls_ctr_drbg_free(&drbg);
	return err;
}
