/*
 * audit_fill.c - test helper: appends N well-formed audit entries (a valid chain) to the
 * database at PATH in one transaction, so that a test can export a large log from a real otad.
 * Usage: audit_fill DB-PATH N. Exit 0 on success.
 */
#include <stdio.h>
#include <stdlib.h>

#include "audit/audit.h"
#include "store/store.h"

int main(int argc, char **argv)
{
	struct ota_store *st = NULL;
	char msg[256] = "", detail[64];
	long n = argc == 3 ? strtol(argv[2], NULL, 10) : 0;
	int rc = 1;

	if (n <= 0) {
		fprintf(stderr, "usage: audit_fill DB-PATH N\n");
		return 2;
	}
	if (ota_store_open(argv[1], &st, msg, sizeof(msg)) != OTA_OK) {
		fprintf(stderr, "audit_fill: %s\n", msg);
		return 1;
	}
	if (ota_store_tx_begin(st) != OTA_OK)
		goto out;
	for (long i = 0; i < n; i++) {
		snprintf(detail, sizeof(detail), "bulk entry %ld", i);
		struct ota_audit_entry e = {.actor = "filler",
		                            .role = "system",
		                            .action = "test.fill",
		                            .device_id = "device-0001",
		                            .after = "{\"n\":1}",
		                            .detail = detail};
		if (ota_audit_append(st, &e, 1000 + i, NULL) != OTA_OK) {
			if (ota_store_tx_end(st, false) != OTA_OK)
				fprintf(stderr, "audit_fill: rollback failed\n");
			goto out;
		}
	}
	if (ota_store_tx_end(st, true) != OTA_OK)
		goto out;
	rc = 0;
out:
	ota_store_free(st);
	return rc;
}
