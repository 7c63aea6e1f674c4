/*
 * http/mgmt_audit.c - the audit log on the management API: filtered queries with cursor
 * pages, the NDJSON export streamed through a content-reader callback (bounded memory for any
 * size of log; it starts by signing the chain head), verification of the stored chain and its
 * checkpoints, and the audit public key for offline verification (ota-audit-verify).
 */
#include "http/mgmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

#define EXPORT_BLOCK (64 * 1024)

static json_t *text_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* before / after are JSON texts: answered as JSON values. */
static json_t *json_or_null(const char *s)
{
	json_t *j = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
	return j ? j : json_null();
}

static int row_one(void *ctx, const struct ota_audit_row *row)
{
	json_t *j = json_pack(
	    "{s:I, s:I, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
	    "s:s, s:s}",
	    "seq", (json_int_t)row->seq, "at", (json_int_t)row->at, "actor", row->e.actor, "role",
	    text_or_null(row->e.role), "action", row->e.action, "device_id",
	    text_or_null(row->e.device_id), "rollout_id", text_or_null(row->e.rollout_id),
	    "release_id", text_or_null(row->e.release_id), "object", text_or_null(row->e.object),
	    "before", json_or_null(row->e.before), "after", json_or_null(row->e.after), "detail",
	    text_or_null(row->e.detail), "prev", row->prev, "hash", row->hash);
	ota_page_add(ctx, j, (int64_t)row->seq, NULL);
	return 0;
}

void ota_h_audit_query(struct ota_req *r)
{
	struct ota_audit_filter f = {0};
	struct ota_page p;
	int64_t since, until;

	if (!ota_page_open(r, &p, OTA_PAGE_SEQ) ||
	    !ota_q_int(r, "since", 0, INT64_MAX, 0, &since) ||
	    !ota_q_int(r, "until", 0, INT64_MAX, 0, &until))
		return;
	f.after_seq = (uint64_t)p.after.at;
	f.since = since;
	f.until = until;
	f.limit = p.limit;
	f.actor = ota_q(r, "actor");
	f.action = ota_q(r, "action");
	f.device_id = ota_q(r, "device");
	f.rollout_id = ota_q(r, "rollout");
	f.release_id = ota_q(r, "release");
	const char *strs[] = {f.actor, f.action, f.device_id, f.rollout_id, f.release_id};
	for (unsigned i = 0; i < 5; i++) {
		if (strs[i] && (strs[i][0] == '\0' || strlen(strs[i]) > 128)) {
			ota_req_fail(r, OTA_P_INVALID_FIELD, "a filter is empty or over 128 bytes");
			return;
		}
	}
	ota_page_send(r, &p, ota_audit_query(r->deps->store, &f, row_one, &p, &p.more),
	              "the audit log");
}

static ssize_t export_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	long n;

	(void)pos;
	n = ota_audit_export_read(cls, buf, max);
	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return n;
}

static void export_free(void *cls)
{
	ota_audit_export_free(cls);
}

void ota_h_audit_export(struct ota_req *r)
{
	struct ota_audit_export *x = NULL;
	struct MHD_Response *resp;

	if (ota_audit_export_begin(r->deps->audit, (int64_t)time(NULL), &x) != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot start the export");
		return;
	}
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, EXPORT_BLOCK, export_read, x,
	                                         export_free);
	if (!resp) {
		ota_audit_export_free(x);
		ota_req_fail(r, OTA_P_INTERNAL, "out of memory");
		return;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION,
	                        "attachment; filename=\"audit.ndjson\"");
	log_notice("audit export by %s", r->who->name);
	r->response = resp;
	r->status = 200;
}

void ota_h_audit_verify(struct ota_req *r)
{
	struct ota_audit_verdict v;

	if (ota_audit_verify_db(r->deps->audit, &v) != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read the audit log");
		return;
	}
	if (!v.ok)
		log_err("audit: verification FAILED at entry %llu: %s",
		        (unsigned long long)v.bad_seq, v.reason);
	ota_req_json(r, 200,
	             json_pack("{s:b, s:I, s:I, s:o, s:o}", "ok", v.ok, "entries",
	                       (json_int_t)v.entries, "checkpoints", (json_int_t)v.checkpoints,
	                       "bad_seq",
	                       v.bad_seq ? json_integer((json_int_t)v.bad_seq) : json_null(),
	                       "reason", v.ok ? json_null() : json_string(v.reason)));
}

void ota_h_audit_pubkey(struct ota_req *r)
{
	const char *pem = ota_audit_pubkey_pem(r->deps->audit);
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(strlen(pem), (void *)pem, MHD_RESPMEM_MUST_COPY);

	if (!resp) {
		ota_req_fail(r, OTA_P_INTERNAL, "out of memory");
		return;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-pem-file");
	r->response = resp;
	r->status = 200;
}
