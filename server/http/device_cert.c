/*
 * http/device_cert.c - certificate renewal on the device API (docs/device-api.md): a device
 * sends a PKCS#10 request for a key it just made, on its mutual-TLS connection; otad issues a
 * certificate for the device id of that connection with its issuing CA, records it as pending
 * and audits it. The device's first connection with it pins it (auth/auth.c), and only then
 * does the old certificate stop working.
 */
#include "http/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "pki/pki.h"
#include "store/cert_store.h"
#include "store/store.h"

#define CSR_MAX 4096

void ota_h_device_certificate(struct ota_req *r)
{
	const char *csr;
	char fp[65], after[160], *chain = NULL;
	int64_t now = (int64_t)time(NULL), not_after = 0;
	enum ota_err rc;
	json_t *answer;

	if (!ota_json_str(r, r->json, "csr", true, 1, CSR_MAX, &csr))
		return;
	if (!ota_pki_has_issuer(r->deps->pki)) {
		ota_req_fail(r, OTA_P_NOT_FOUND, "this server issues no device certificates");
		return;
	}
	rc = ota_pki_issue(r->deps->pki, r->who->name, csr, strlen(csr), now, &chain, fp,
	                   &not_after);
	if (rc == OTA_ERR_INVALID) {
		ota_req_fail(
		    r, OTA_P_INVALID_FIELD,
		    "\"csr\" must be a PEM certificate request, self-signed, for a P-256 key");
		return;
	}
	if (rc != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot issue the certificate");
		return;
	}
	snprintf(after, sizeof(after), "{\"pending_fingerprint\":\"%s\",\"not_after\":%lld}", fp,
	         (long long)not_after);
	struct ota_audit_entry e = {.actor = r->who->name,
	                            .role = "device",
	                            .action = "device.cert_issue",
	                            .device_id = r->who->name,
	                            .after = after,
	                            .detail = "certificate renewal: pending until first use"};
	/* Bound to succeed now, and it records into the device's row: a device not yet admitted
	 * is admitted first (ota_req_admit), as by a check-in. */
	if (!ota_req_admit(r)) {
		free(chain);
		return;
	}
	rc = ota_store_tx_begin(r->deps->store);
	if (rc == OTA_OK) {
		rc = ota_store_cert_pending_set(r->deps->store, r->who->name, fp, now, not_after);
		if (rc == OTA_OK)
			rc = ota_audit_append(r->deps->store, &e, now, NULL);
		enum ota_err e2 = ota_store_tx_end(r->deps->store, rc == OTA_OK);
		if (rc == OTA_OK)
			rc = e2;
	}
	if (rc != OTA_OK) {
		free(chain);
		ota_req_fail(r, OTA_P_INTERNAL, "cannot record the certificate");
		return;
	}
	answer = json_pack("{s:s, s:s, s:I}", "certificate", chain, "fingerprint", fp, "not_after",
	                   (json_int_t)not_after);
	free(chain);
	if (!answer) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot build the answer");
		return;
	}
	ota_req_json(r, 200, answer);
}
