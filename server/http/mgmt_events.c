/*
 * http/mgmt_events.c - events out on the management API (docs/events.md): webhooks
 * (register with a secret shown once, list, show, delete, redeliver), each change audited in
 * its transaction, and GET /api/v1/events, the live stream of events as Server-Sent Events.
 *
 * The stream is a content-reader response that never blocks an MHD thread: when it has
 * nothing to send it suspends its connection (MHD_suspend_connection, from the reader) while
 * parked at the event hub, which resumes it when the audit head moves, at each heartbeat and
 * when otad stops. The management listener's pool threads keep serving every other connection
 * meanwhile; [events] max_streams bounds the streams at once.
 */
#include "http/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "common/util.h"
#include "events/event.h"
#include "events/hub.h"
#include "events/webhook.h"
#include "http/mgmt.h"
#include "store/audit_store.h"
#include "store/webhook_store.h"

/* ---- webhooks ---- */

static json_t *types_json(const char *types)
{
	json_t *a = json_array();
	const char *p = types;

	while (a && *p) {
		size_t n = strcspn(p, ",");
		json_array_append_new(a, json_stringn(p, n));
		p += n;
		if (*p == ',')
			p++;
	}
	return a;
}

static json_t *webhook_json(const struct ota_store_webhook *w)
{
	return json_pack("{s:s, s:s, s:o, s:s, s:I, s:I, s:s, s:I, s:I, s:o, s:o}", "id", w->id,
	                 "url", w->url, "types", types_json(w->types), "state",
	                 w->dead ? "dead" : "active", "cursor", (json_int_t)w->cursor, "created_at",
	                 (json_int_t)w->created_at, "created_by", w->created_by, "attempts",
	                 (json_int_t)w->attempts, "delivered", (json_int_t)w->delivered,
	                 "next_attempt_at",
	                 w->next_at && !w->dead ? json_integer(w->next_at) : json_null(),
	                 "last_error", w->last_error[0] ? json_string(w->last_error) : json_null());
}

/* The body's "types": an array of 1..32 patterns, joined with commas into out. */
static bool read_types(struct ota_req *r, char *out, size_t cap)
{
	json_t *a = json_object_get(r->json, "types"), *v;
	size_t i, len = 0;
	const char *why;

	if (!json_is_array(a) || json_array_size(a) < 1 || json_array_size(a) > 32) {
		ota_req_fail(r, OTA_P_INVALID_FIELD,
		             "types: an array of 1 to 32 event types is required");
		return false;
	}
	out[0] = '\0';
	json_array_foreach(a, i, v)
	{
		const char *s = json_string_value(v);
		size_t n = s ? strlen(s) : 0;
		if (!s || n == 0 || len + n + 2 > cap || strchr(s, ',')) {
			ota_req_fail(r, OTA_P_INVALID_FIELD, "types[%zu]: not an event type", i);
			return false;
		}
		len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? "," : "", s);
	}
	if (!ota_event_types_valid(out, &why)) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "types: %s", why);
		return false;
	}
	return true;
}

void ota_h_webhook_create(struct ota_req *r)
{
	struct ota_store_webhook w;
	const char *url;
	char why[400], after[OTA_WEBHOOK_URL_MAX + OTA_WEBHOOK_TYPES_MAX + 200], hash[OTA_HEX256];
	uint8_t key[32];
	enum ota_err e;

	memset(&w, 0, sizeof(w));
	if (!ota_json_str(r, r->json, "url", true, 1, OTA_WEBHOOK_URL_MAX, &url) ||
	    !read_types(r, w.types, sizeof(w.types)))
		return;
	e = ota_webhook_check(r->deps->cfg, url, NULL, 0, why, sizeof(why));
	if (e != OTA_OK) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "url: %s", why);
		return;
	}
	if (ota_id_new("w-", w.id, sizeof(w.id)) != OTA_OK ||
	    ota_random(key, sizeof(key)) != OTA_OK) {
		ota_req_fail(r, OTA_P_INTERNAL, "no randomness for an id or a secret");
		return;
	}
	ota_hex(key, sizeof(key), w.secret);
	snprintf(w.url, sizeof(w.url), "%s", url);
	snprintf(w.created_by, sizeof(w.created_by), "%s", r->who->name);
	w.created_at = (int64_t)time(NULL);
	if (!ota_mgmt_begin(r))
		goto out;
	/* From the head on: the endpoint gets what happens after its registration, starting
	 * with its own registration's entry when it asked for that type. */
	e = ota_store_audit_head(r->deps->store, &w.cursor, hash);
	if (e == OTA_OK)
		e = ota_store_webhook_add(r->deps->store, &w);
	if (e == OTA_OK) {
		/* The origin only: a URL's path often holds a credential of its own. */
		const char *host = strstr(w.url, "://");
		size_t olen = strcspn(host + 3, "/?") + (size_t)(host + 3 - w.url);
		json_t *j = json_pack("{s:s, s:s%, s:o}", "id", w.id, "origin", w.url, olen,
		                      "types", types_json(w.types));
		char *t = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		snprintf(after, sizeof(after), "%s", t ? t : "{}");
		free(t);
		json_decref(j);
		struct ota_audit_entry a = {
		    .action = "webhook.create", .object = w.id, .after = after};
		e = ota_mgmt_audit(r, &a);
	}
	if (!ota_mgmt_end(r, e))
		goto out;
	json_t *j = webhook_json(&w);
	if (j)
		json_object_set_new(j, "secret", json_string(w.secret));
	ota_req_json(r, 201, j);
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(w.secret, sizeof(w.secret));
}

static int list_one(void *ctx, const struct ota_store_webhook *w)
{
	ota_page_add(ctx, webhook_json(w), 0, w->id);
	return 0;
}

void ota_h_webhooks_list(struct ota_req *r)
{
	struct ota_page p;

	if (!ota_page_open(r, &p, OTA_PAGE_ID))
		return;
	ota_page_send(
	    r, &p,
	    ota_store_webhook_list(r->deps->store, p.after.id, p.limit, list_one, &p, &p.more),
	    "webhooks");
}

static bool get_or_fail(struct ota_req *r, const char *id, struct ota_store_webhook *w)
{
	enum ota_err e = ota_store_webhook_get(r->deps->store, id, w);

	if (e == OTA_ERR_NOT_FOUND)
		ota_req_fail(r, OTA_P_NOT_FOUND, "no webhook %s", id);
	else if (e != OTA_OK)
		ota_req_fail(r, OTA_P_INTERNAL, "cannot read webhook %s", id);
	return e == OTA_OK;
}

void ota_h_webhook_get(struct ota_req *r)
{
	struct ota_store_webhook w;

	if (get_or_fail(r, r->params[0], &w))
		ota_req_json(r, 200, webhook_json(&w));
}

void ota_h_webhook_delete(struct ota_req *r)
{
	const char *id = r->params[0];
	enum ota_err e;

	if (!ota_mgmt_begin(r))
		return;
	e = ota_store_webhook_delete(r->deps->store, id);
	if (e == OTA_ERR_NOT_FOUND)
		ota_req_fail(r, OTA_P_NOT_FOUND, "no webhook %s", id);
	if (e == OTA_OK) {
		struct ota_audit_entry a = {.action = "webhook.delete", .object = id};
		e = ota_mgmt_audit(r, &a);
	}
	if (!ota_mgmt_end(r, e))
		return;
	ota_req_json(r, 200, json_pack("{s:s, s:b}", "id", id, "deleted", 1));
}

void ota_h_webhook_redeliver(struct ota_req *r)
{
	const char *id = r->params[0];
	struct ota_store_webhook w;
	uint64_t from = 0, head = 0;
	char hash[OTA_HEX256], detail[80];
	bool set = json_object_get(r->json, "from_seq") != NULL;
	enum ota_err e;

	if (set && !ota_json_uint(r, r->json, "from_seq", true, 1, INT64_MAX, &from))
		return;
	if (!get_or_fail(r, id, &w))
		return;
	if (!ota_mgmt_begin(r))
		return;
	e = ota_store_audit_head(r->deps->store, &head, hash);
	if (e == OTA_OK && set && from > head + 1) {
		ota_req_fail(r, OTA_P_INVALID_FIELD, "from_seq %llu is past the log's head (%llu)",
		             (unsigned long long)from, (unsigned long long)head);
		e = OTA_ERR_INVALID;
	}
	if (e == OTA_OK)
		e = ota_store_webhook_redeliver(r->deps->store, id, set, set ? from - 1 : 0);
	if (e == OTA_ERR_NOT_FOUND)
		ota_req_fail(r, OTA_P_NOT_FOUND, "no webhook %s", id);
	if (e == OTA_OK) {
		if (set)
			snprintf(detail, sizeof(detail), "from seq %llu", (unsigned long long)from);
		else
			snprintf(detail, sizeof(detail), "from cursor %llu",
			         (unsigned long long)w.cursor);
		struct ota_audit_entry a = {
		    .action = "webhook.redeliver", .object = id, .detail = detail};
		e = ota_mgmt_audit(r, &a);
	}
	if (!ota_mgmt_end(r, e))
		return;
	if (get_or_fail(r, id, &w))
		ota_req_json(r, 200, webhook_json(&w));
}

/* ---- the live stream ---- */

#define SSE_BATCH 100
#define SSE_BLOCK (16 * 1024)

struct sse {
	struct ota_events_hub *hub;
	struct ota_events_sub *sub;
	struct ota_store *st;
	struct MHD_Connection *conn;
	enum ota_event_view view;
	char types[OTA_WEBHOOK_TYPES_MAX + 1]; /* "" : every type the view allows */
	uint64_t after;                        /* the last seq read */
	bool more;
	char *buf;
	size_t len, off, cap;
	bool nomem;
};

static void put(struct sse *s, const char *a, size_t n)
{
	if (s->len + n > s->cap) {
		size_t cap = (s->len + n) * 2;
		char *b = realloc(s->buf, cap);
		if (!b) {
			s->nomem = true;
			return;
		}
		s->buf = b;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, a, n);
	s->len += n;
}

static int sse_one(void *ctx, const struct ota_audit_row *row)
{
	struct sse *s = ctx;
	char head[128];

	s->after = row->seq;
	if (!ota_event_visible(s->view, row->e.action) ||
	    (s->types[0] && !ota_event_types_match(s->types, row->e.action)))
		return 0;
	char *j = ota_event_json(row);
	if (!j) {
		s->nomem = true;
		return 1;
	}
	int n =
	    snprintf(head, sizeof(head),
	             "id: %llu\nevent: %.64s\ndata: ", (unsigned long long)row->seq, row->e.action);
	put(s, head, (size_t)n);
	put(s, j, strlen(j));
	put(s, "\n\n", 2);
	free(j);
	return 0;
}

static void sse_suspend(void *ctx)
{
	MHD_suspend_connection(((struct sse *)ctx)->conn);
}

static void sse_resume(void *ctx)
{
	MHD_resume_connection(((struct sse *)ctx)->conn);
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse *s = cls;

	(void)pos;
	for (;;) {
		if (s->off < s->len) {
			size_t n = s->len - s->off < max ? s->len - s->off : max;
			memcpy(buf, s->buf + s->off, n);
			s->off += n;
			return (ssize_t)n;
		}
		s->off = s->len = 0;
		if (ota_events_hub_closing(s->hub))
			return MHD_CONTENT_READER_END_OF_STREAM;
		struct ota_audit_filter f = {.after_seq = s->after, .limit = SSE_BATCH};
		if (ota_audit_query(s->st, &f, sse_one, s, &s->more) != OTA_OK || s->nomem)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (s->len)
			continue;
		if (s->more)
			continue; /* a batch of entries this stream does not show: read on */
		if (ota_events_sub_heartbeat(s->sub)) {
			put(s, ": heartbeat\n\n", 13);
			continue;
		}
		if (ota_events_hub_park(s->hub, s->sub, s->after, sse_suspend, s))
			return 0; /* suspended: the hub resumes the connection */
	}
}

static void sse_free(void *cls)
{
	struct sse *s = cls;

	ota_events_hub_unsubscribe(s->hub, s->sub);
	log_info("event stream closed: its place is free");
	free(s->buf);
	free(s);
}

static bool parse_seq(const char *v, uint64_t *out)
{
	char *end;
	unsigned long long n;

	if (!v || *v < '0' || *v > '9' || strlen(v) > 19)
		return false;
	n = strtoull(v, &end, 10);
	if (*end)
		return false;
	*out = n;
	return true;
}

void ota_h_events_stream(struct ota_req *r)
{
	struct ota_events_hub *hub = r->deps->events;
	const char *last = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Last-Event-ID");
	const char *after = ota_q(r, "after"), *types = ota_q(r, "types"), *why;
	struct MHD_Response *resp;
	struct sse *s;
	bool busy;

	if (!hub || r->deps->cfg->events_max_streams == 0) {
		ota_req_fail(r, OTA_P_TOO_MANY_STREAMS,
		             "the event stream is off ([events] max_streams = 0)");
		return;
	}
	if (ota_events_hub_closing(hub)) {
		ota_req_fail(r, OTA_P_UNAVAILABLE, "otad is stopping");
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		ota_req_fail(r, OTA_P_INTERNAL, "out of memory");
		return;
	}
	s->hub = hub;
	s->st = r->deps->store;
	s->conn = r->conn;
	s->view = r->who->role == OTA_ROLE_OPERATOR ? OTA_EVENT_VIEW_OPERATOR : OTA_EVENT_VIEW_ALL;
	/* Where to start: after Last-Event-ID (a reconnection), else ?after=, else now. */
	if (last && *last) {
		if (!parse_seq(last, &s->after)) {
			ota_req_fail(r, OTA_P_INVALID_FIELD,
			             "Last-Event-ID: not an event id (a sequence number)");
			goto fail;
		}
	} else if (after) {
		if (!parse_seq(after, &s->after)) {
			ota_req_fail(r, OTA_P_INVALID_FIELD,
			             "after: not an event id (a sequence number)");
			goto fail;
		}
	} else {
		s->after = ota_events_hub_head(hub);
	}
	if (types) {
		if (strlen(types) > OTA_WEBHOOK_TYPES_MAX || !ota_event_types_valid(types, &why)) {
			ota_req_fail(r, OTA_P_INVALID_FIELD, "types: %s",
			             strlen(types) > OTA_WEBHOOK_TYPES_MAX ? "too long" : why);
			goto fail;
		}
		snprintf(s->types, sizeof(s->types), "%s", types);
	}
	s->sub = ota_events_hub_subscribe(hub, sse_resume, s, &busy);
	if (!s->sub) {
		if (busy)
			ota_req_fail(r, OTA_P_TOO_MANY_STREAMS,
			             "%u event streams are open already ([events] max_streams)",
			             r->deps->cfg->events_max_streams);
		else
			ota_req_fail(r, OTA_P_INTERNAL, "out of memory");
		goto fail;
	}
	static const char hello[] = ": otad events\nretry: 2000\n\n";
	put(s, hello, sizeof(hello) - 1);
	resp =
	    MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK, sse_read, s, sse_free);
	if (!resp || s->nomem) {
		if (resp)
			MHD_destroy_response(resp); /* frees s */
		else
			sse_free(s);
		ota_req_fail(r, OTA_P_INTERNAL, "out of memory");
		return;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	log_info("event stream opened by %s after seq %llu", r->who->name,
	         (unsigned long long)s->after);
	r->response = resp;
	r->status = 200;
	return;
fail:
	free(s);
}
