/*
 * audit/verify_main.c - ota-audit-verify: checks an NDJSON audit export offline, with nothing
 * but the export and the audit public key (DATA_DIR/audit.pub, or GET /api/v1/audit/pubkey).
 * Prints the verdict; on a fault, names the first entry that fails and why.
 * Exit status: 0 the export verifies, 1 it does not, 2 usage or unreadable input.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "audit/audit.h"
#include "common/util.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: ota-audit-verify --export FILE --pubkey FILE\n"
	           "  -e, --export FILE   NDJSON export (GET /api/v1/audit/export); - for stdin\n"
	           "  -k, --pubkey FILE   the audit public key, PEM\n"
	           "  -h, --help          this text\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"export", required_argument, NULL, 'e'},
	                                         {"pubkey", required_argument, NULL, 'k'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	const char *exp = NULL, *keyfile = NULL;
	struct ota_audit_verdict v;
	char *pem = NULL;
	FILE *in = NULL;
	int opt, status = 2;

	while ((opt = getopt_long(argc, argv, "e:k:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'e':
			exp = optarg;
			break;
		case 'k':
			keyfile = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!exp || !keyfile || optind != argc) {
		usage(stderr);
		return 2;
	}
	pem = ota_file_read(keyfile, 1 << 20, NULL);
	if (!pem) {
		fprintf(stderr, "ota-audit-verify: cannot read the public key %s\n", keyfile);
		goto out;
	}
	in = exp[0] == '-' && !exp[1] ? stdin : fopen(exp, "r");
	if (!in) {
		fprintf(stderr, "ota-audit-verify: cannot open %s\n", exp);
		goto out;
	}
	if (ota_audit_verify_export(in, pem, &v) != OTA_OK) {
		fprintf(stderr, "ota-audit-verify: %s is not an ECDSA P-256 public key\n", keyfile);
		goto out;
	}
	if (v.ok) {
		printf(
		    "OK: %llu entries, %llu signed checkpoints, the last covering the last entry\n",
		    (unsigned long long)v.entries, (unsigned long long)v.checkpoints);
		status = 0;
	} else if (v.bad_seq) {
		printf("FAILED at entry %llu: %s\n", (unsigned long long)v.bad_seq, v.reason);
		status = 1;
	} else {
		printf("FAILED: %s\n", v.reason);
		status = 1;
	}
out:
	if (in && in != stdin)
		fclose(in);
	free(pem);
	return status;
}
