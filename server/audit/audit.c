/*
 * audit/audit.c - the audit log of audit.h: appends onto the hash chain inside the caller's
 * store transaction, the audit key and signed checkpoints of the chain head, filtered queries,
 * the NDJSON export read in bounded pieces, and the verifier shared by the API and the offline
 * command (ota-audit-verify). The log is a part of the store (its entries must commit with the
 * changes they record), so its SQL lives here on the store's connection through
 * store/internal.h, under the store's lock.
 */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/log.h"
#include "store/internal.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define SIG_CONTEXT "ota-audit-checkpoint-v1"
#define OTA_PATH_MAX_AUDIT 1024

struct ota_audit {
	struct ota_store *st;
	EVP_PKEY *key;
	char *pub_pem;
	pthread_mutex_t lock;
};

static const char SQL_HEAD[] = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
static const char SQL_INSERT[] =
    "INSERT INTO audit_log (seq, at, actor, role, action, device_id, rollout_id, release_id, "
    "object, before, after, detail, prev, hash) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
static const char SQL_CP_HEAD[] = "SELECT coalesce(max(seq), 0) FROM audit_checkpoints";
static const char SQL_CP_INSERT[] =
    "INSERT INTO audit_checkpoints (seq, hash, at, sig) VALUES (?1, ?2, ?3, ?4)";
static const char SQL_ROWS[] =
    "SELECT seq, at, actor, role, action, device_id, rollout_id, release_id, object, before, "
    "after, detail, prev, hash FROM audit_log WHERE seq > ?1 AND seq <= ?2 ORDER BY seq "
    "LIMIT ?3";
static const char SQL_CPS[] = "SELECT seq, hash, at, sig FROM audit_checkpoints "
                              "WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3";
static const char SQL_QUERY[] =
    "SELECT seq, at, actor, role, action, device_id, rollout_id, release_id, object, before, "
    "after, detail, prev, hash FROM audit_log WHERE seq > ?1 "
    "AND (?2 = 0 OR at >= ?2) AND (?3 = 0 OR at < ?3) AND (?4 IS NULL OR actor = ?4) "
    "AND (?5 IS NULL OR action = ?5) AND (?6 IS NULL OR device_id = ?6) "
    "AND (?7 IS NULL OR rollout_id = ?7) AND (?8 IS NULL OR release_id = ?8) "
    "ORDER BY seq LIMIT ?9";

/* ---- canonical form and hashing ---- */

static int set_str(json_t *o, const char *k, const char *v)
{
	return json_object_set_new(o, k, v ? json_string(v) : json_null());
}

/* The entry as a JSON object without "hash" (NULL when out of memory or not UTF-8). */
static json_t *entry_json(uint64_t seq, int64_t at, const struct ota_audit_entry *e,
                          const char *prev)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	if (json_object_set_new(o, "seq", json_integer((json_int_t)seq)) ||
	    json_object_set_new(o, "at", json_integer(at)) || set_str(o, "actor", e->actor) ||
	    set_str(o, "role", e->role) || set_str(o, "action", e->action) ||
	    set_str(o, "device_id", e->device_id) || set_str(o, "rollout_id", e->rollout_id) ||
	    set_str(o, "release_id", e->release_id) || set_str(o, "object", e->object) ||
	    set_str(o, "before", e->before) || set_str(o, "after", e->after) ||
	    set_str(o, "detail", e->detail) || set_str(o, "prev", prev)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static void hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* hash = hex SHA-256 of the canonical text of `o` (which has no "hash" member). */
static bool canonical_hash(json_t *o, char out[OTA_HEX256])
{
	char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	unsigned char d[32];
	unsigned dl = 0;
	bool ok;

	if (!text)
		return false;
	ok = EVP_Digest(text, strlen(text), d, &dl, EVP_sha256(), NULL) == 1 && dl == 32;
	free(text);
	if (ok)
		hex(d, 32, out);
	return ok;
}

static bool json_text_ok(const char *s)
{
	json_t *j;

	if (!s)
		return true;
	j = json_loads(s, JSON_DECODE_ANY, NULL);
	json_decref(j);
	return j != NULL;
}

static bool short_enough(const char *s, size_t max)
{
	return !s || strlen(s) <= max;
}

/* ---- append ---- */

enum ota_err ota_audit_append(struct ota_store *st, const struct ota_audit_entry *e, int64_t now,
                              uint64_t *seq_out)
{
	enum ota_err rc = OTA_ERR_INVALID;
	bool own = false;
	json_t *o = NULL;
	char prev[OTA_HEX256] = ZERO_HASH, hash[OTA_HEX256];
	uint64_t seq = 1;
	sqlite3_stmt *q = NULL;
	int s;

	if (!e || !e->actor || !e->actor[0] || !e->action || !e->action[0])
		return OTA_ERR_INVALID;
	if (!short_enough(e->actor, 128) || !short_enough(e->role, 32) ||
	    !short_enough(e->action, 64) || !short_enough(e->device_id, 128) ||
	    !short_enough(e->rollout_id, 128) || !short_enough(e->release_id, 128) ||
	    !short_enough(e->object, 256) || !short_enough(e->before, OTA_AUDIT_TEXT_MAX) ||
	    !short_enough(e->after, OTA_AUDIT_TEXT_MAX) ||
	    !short_enough(e->detail, OTA_AUDIT_TEXT_MAX) || !json_text_ok(e->before) ||
	    !json_text_ok(e->after))
		return OTA_ERR_INVALID;

	ota_store__lock(st);
	if (!ota_store__in_tx(st)) {
		rc = ota_store_tx_begin(st);
		if (rc != OTA_OK)
			goto out;
		own = true;
	}
	rc = OTA_ERR_DB;
	q = ota_store__stmt(st, SQL_HEAD);
	if (!q)
		goto out;
	s = sqlite3_step(q);
	if (s == SQLITE_ROW) {
		seq = (uint64_t)sqlite3_column_int64(q, 0) + 1;
		snprintf(prev, sizeof(prev), "%s", (const char *)sqlite3_column_text(q, 1));
	} else if (s != SQLITE_DONE) {
		log_err("audit: head: %s", sqlite3_errmsg(ota_store__db(st)));
		goto out;
	}
	sqlite3_reset(q);
	q = NULL;
	o = entry_json(seq, now, e, prev);
	if (!o) {
		rc = OTA_ERR_INVALID; /* not UTF-8, or out of memory */
		goto out;
	}
	if (!canonical_hash(o, hash)) {
		rc = OTA_ERR_NOMEM;
		goto out;
	}
	q = ota_store__stmt(st, SQL_INSERT);
	if (!q)
		goto out;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)seq);
	sqlite3_bind_int64(q, 2, now);
	const char *v[] = {e->actor,      e->role,   e->action, e->device_id, e->rollout_id,
	                   e->release_id, e->object, e->before, e->after,     e->detail};
	for (int i = 0; i < 10; i++) {
		if (v[i])
			sqlite3_bind_text(q, 3 + i, v[i], -1, SQLITE_STATIC);
	}
	sqlite3_bind_text(q, 13, prev, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 14, hash, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE) {
		log_err("audit: append %s: %s", e->action, sqlite3_errmsg(ota_store__db(st)));
		goto out;
	}
	if (seq_out)
		*seq_out = seq;
	rc = OTA_OK;
out:
	if (q)
		sqlite3_reset(q);
	json_decref(o);
	if (own) {
		enum ota_err e2 = ota_store_tx_end(st, rc == OTA_OK);
		if (rc == OTA_OK)
			rc = e2;
	}
	ota_store__unlock(st);
	return rc;
}

/* ---- key and checkpoints ---- */

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < 1 << 20 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
			buf[n] = '\0';
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

/* Writes text to path atomically with mode. */
static bool write_file(const char *path, const char *text, size_t len, mode_t mode)
{
	char tmp[OTA_PATH_MAX_AUDIT];
	int fd;
	bool ok = false;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return false;
	ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (ok)
		ok = rename(tmp, path) == 0;
	if (!ok)
		unlink(tmp);
	return ok;
}

static char *pem_of(EVP_PKEY *k, bool private_key)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL, *p;
	long n;

	if (!b)
		return NULL;
	if ((private_key ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)
	                 : PEM_write_bio_PUBKEY(b, k)) == 1 &&
	    (n = BIO_get_mem_data(b, &p)) > 0) {
		out = malloc((size_t)n + 1);
		if (out) {
			memcpy(out, p, (size_t)n);
			out[n] = '\0';
		}
	}
	BIO_free(b);
	return out;
}

enum ota_err ota_audit_open(struct ota_store *st, const char *data_dir, struct ota_audit **out,
                            char *msg, size_t msglen)
{
	enum ota_err rc = OTA_ERR_NOMEM;
	struct ota_audit *a = calloc(1, sizeof(*a));
	char path[OTA_PATH_MAX_AUDIT], pub[OTA_PATH_MAX_AUDIT];
	char *pem = NULL;

	*out = NULL;
	if (!a)
		goto out;
	pthread_mutex_init(&a->lock, NULL);
	a->st = st;
	snprintf(path, sizeof(path), "%s/audit.key", data_dir);
	snprintf(pub, sizeof(pub), "%s/audit.pub", data_dir);
	pem = read_file(path);
	if (pem) {
		BIO *b = BIO_new_mem_buf(pem, -1);
		a->key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
		if (!a->key || EVP_PKEY_get_bits(a->key) != 256 || !EVP_PKEY_is_a(a->key, "EC")) {
			snprintf(msg, msglen, "%s is not an ECDSA P-256 private key", path);
			rc = OTA_ERR_IO;
			goto out;
		}
	} else if (errno == ENOENT) {
		a->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		free(pem);
		pem = a->key ? pem_of(a->key, true) : NULL;
		if (!pem || !write_file(path, pem, strlen(pem), 0600)) {
			snprintf(msg, msglen, "cannot create the audit key %s: %s", path,
			         strerror(errno));
			rc = OTA_ERR_IO;
			goto out;
		}
		log_notice("audit: generated the audit key %s", path);
	} else {
		snprintf(msg, msglen, "cannot read %s: %s", path, strerror(errno));
		rc = OTA_ERR_IO;
		goto out;
	}
	a->pub_pem = pem_of(a->key, false);
	if (!a->pub_pem)
		goto out;
	if (!write_file(pub, a->pub_pem, strlen(a->pub_pem), 0644)) {
		snprintf(msg, msglen, "cannot write %s: %s", pub, strerror(errno));
		rc = OTA_ERR_IO;
		goto out;
	}
	*out = a;
	a = NULL;
	rc = OTA_OK;
out:
	if (pem) {
		OPENSSL_cleanse(pem, strlen(pem));
		free(pem);
	}
	ota_audit_free(a);
	return rc;
}

void ota_audit_free(struct ota_audit *a)
{
	if (!a)
		return;
	EVP_PKEY_free(a->key);
	free(a->pub_pem);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

const char *ota_audit_pubkey_pem(const struct ota_audit *a)
{
	return a->pub_pem;
}

/* The bytes a checkpoint signs. */
static int cp_message(char *buf, size_t cap, uint64_t seq, const char *hash, int64_t at)
{
	return snprintf(buf, cap, SIG_CONTEXT "\n%llu\n%s\n%lld\n", (unsigned long long)seq, hash,
	                (long long)at);
}

static char *b64(const unsigned char *d, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	if (out)
		EVP_EncodeBlock((unsigned char *)out, d, (int)n);
	return out;
}

enum ota_err ota_audit_checkpoint(struct ota_audit *a, int64_t now, uint64_t *seq_out)
{
	enum ota_err rc = OTA_ERR_DB;
	struct ota_store *st = a->st;
	sqlite3_stmt *q;
	uint64_t head = 0, signed_to = 0;
	char hash[OTA_HEX256] = "", msgbuf[160], *sig64 = NULL;
	unsigned char sig[80];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *md = NULL;

	pthread_mutex_lock(&a->lock);
	ota_store__lock(st);
	if (ota_store_tx_begin(st) != OTA_OK)
		goto unlock;
	q = ota_store__stmt(st, SQL_HEAD);
	if (!q)
		goto out;
	if (sqlite3_step(q) == SQLITE_ROW) {
		head = (uint64_t)sqlite3_column_int64(q, 0);
		snprintf(hash, sizeof(hash), "%s", (const char *)sqlite3_column_text(q, 1));
	}
	sqlite3_reset(q);
	q = ota_store__stmt(st, SQL_CP_HEAD);
	if (!q)
		goto out;
	if (sqlite3_step(q) == SQLITE_ROW)
		signed_to = (uint64_t)sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	if (head == 0 || signed_to == head) {
		rc = OTA_OK;
		goto out;
	}
	cp_message(msgbuf, sizeof(msgbuf), head, hash, now);
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, a->key) != 1 ||
	    EVP_DigestSign(md, sig, &siglen, (unsigned char *)msgbuf, strlen(msgbuf)) != 1) {
		log_err("audit: cannot sign a checkpoint");
		rc = OTA_ERR_NOMEM;
		goto out;
	}
	sig64 = b64(sig, siglen);
	if (!sig64) {
		rc = OTA_ERR_NOMEM;
		goto out;
	}
	q = ota_store__stmt(st, SQL_CP_INSERT);
	if (!q)
		goto out;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)head);
	sqlite3_bind_text(q, 2, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, now);
	sqlite3_bind_text(q, 4, sig64, -1, SQLITE_STATIC);
	int s = sqlite3_step(q);
	sqlite3_reset(q);
	if (s != SQLITE_DONE) {
		log_err("audit: checkpoint: %s", sqlite3_errmsg(ota_store__db(st)));
		goto out;
	}
	rc = OTA_OK;
out : {
	enum ota_err e2 = ota_store_tx_end(st, rc == OTA_OK);
	if (rc == OTA_OK)
		rc = e2;
}
	if (rc == OTA_OK && seq_out)
		*seq_out = head;
unlock:
	ota_store__unlock(st);
	pthread_mutex_unlock(&a->lock);
	EVP_MD_CTX_free(md);
	free(sig64);
	return rc;
}

/* ---- reading ---- */

static const char *col(sqlite3_stmt *q, int i)
{
	return (const char *)sqlite3_column_text(q, i);
}

static void row_of(sqlite3_stmt *q, struct ota_audit_row *r)
{
	r->seq = (uint64_t)sqlite3_column_int64(q, 0);
	r->at = sqlite3_column_int64(q, 1);
	r->e.actor = col(q, 2);
	r->e.role = col(q, 3);
	r->e.action = col(q, 4);
	r->e.device_id = col(q, 5);
	r->e.rollout_id = col(q, 6);
	r->e.release_id = col(q, 7);
	r->e.object = col(q, 8);
	r->e.before = col(q, 9);
	r->e.after = col(q, 10);
	r->e.detail = col(q, 11);
	r->prev = col(q, 12);
	r->hash = col(q, 13);
}

static void bind_opt(sqlite3_stmt *q, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(q, i, s, -1, SQLITE_TRANSIENT);
}

enum ota_err ota_audit_query(struct ota_store *st, const struct ota_audit_filter *f,
                             int (*fn)(void *ctx, const struct ota_audit_row *row), void *ctx,
                             bool *more)
{
	enum ota_err rc = OTA_ERR_DB;
	sqlite3_stmt *q;
	unsigned n = 0;
	int s;

	*more = false;
	if (f->limit < 1 || f->limit > 1000)
		return OTA_ERR_INVALID;
	ota_store__lock(st);
	q = ota_store__stmt(st, SQL_QUERY);
	if (!q)
		goto out;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)f->after_seq);
	sqlite3_bind_int64(q, 2, f->since);
	sqlite3_bind_int64(q, 3, f->until);
	bind_opt(q, 4, f->actor);
	bind_opt(q, 5, f->action);
	bind_opt(q, 6, f->device_id);
	bind_opt(q, 7, f->rollout_id);
	bind_opt(q, 8, f->release_id);
	sqlite3_bind_int64(q, 9, (sqlite3_int64)f->limit + 1);
	while ((s = sqlite3_step(q)) == SQLITE_ROW) {
		struct ota_audit_row r;
		if (n == f->limit) {
			*more = true;
			break;
		}
		row_of(q, &r);
		n++;
		if (fn(ctx, &r)) {
			s = SQLITE_DONE;
			break;
		}
	}
	if (s != SQLITE_DONE && s != SQLITE_ROW) {
		log_err("audit: query: %s", sqlite3_errmsg(ota_store__db(st)));
		goto out;
	}
	rc = OTA_OK;
out:
	if (q)
		sqlite3_reset(q);
	ota_store__unlock(st);
	return rc;
}

/* ---- export ---- */

#define BATCH 64

struct ota_audit_export {
	struct ota_audit *a;
	uint64_t end;           /* the last entry exported (the head signed at the begin) */
	uint64_t next;          /* the next entry to fetch */
	char *q[2 * BATCH + 1]; /* lines fetched, not yet fully handed out */
	unsigned qh, qn;
	size_t off; /* bytes of q[qh] handed out */
	bool failed;
};

enum ota_err ota_audit_export_begin(struct ota_audit *a, int64_t now, struct ota_audit_export **out)
{
	struct ota_audit_export *x;
	uint64_t head = 0;
	enum ota_err rc;

	*out = NULL;
	rc = ota_audit_checkpoint(a, now, &head);
	if (rc != OTA_OK)
		return rc;
	x = calloc(1, sizeof(*x));
	if (!x)
		return OTA_ERR_NOMEM;
	x->a = a;
	x->end = head;
	x->next = 1;
	*out = x;
	return OTA_OK;
}

static void drop_queue(struct ota_audit_export *x)
{
	for (unsigned i = x->qh; i < x->qn; i++)
		free(x->q[i]);
	x->qh = x->qn = 0;
	x->off = 0;
}

void ota_audit_export_free(struct ota_audit_export *x)
{
	if (!x)
		return;
	drop_queue(x);
	free(x);
}

static char *with_newline(char *text)
{
	char *line = text ? malloc(strlen(text) + 2) : NULL;

	if (line)
		sprintf(line, "%s\n", text);
	free(text);
	return line;
}

/* The NDJSON line of an entry row (malloc'd, with the newline). */
static char *entry_line(const struct ota_audit_row *r)
{
	json_t *o = entry_json(r->seq, r->at, &r->e, r->prev);
	char *text = NULL;

	if (!o)
		return NULL;
	if (json_object_set_new(o, "kind", json_string("entry")) == 0 &&
	    json_object_set_new(o, "hash", json_string(r->hash)) == 0)
		text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	json_decref(o);
	return with_newline(text);
}

static char *checkpoint_line(uint64_t seq, const char *hash, int64_t at, const char *sig)
{
	json_t *o = json_pack("{s:s, s:I, s:s, s:I, s:s}", "kind", "checkpoint", "seq",
	                      (json_int_t)seq, "hash", hash, "at", (json_int_t)at, "sig", sig);
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(o);
	return with_newline(text);
}

/* Fetch the next batch of entries, each followed by its checkpoint if any, into the queue. */
static bool fetch(struct ota_audit_export *x)
{
	struct ota_store *st = x->a->st;
	uint64_t upto = x->end - x->next >= BATCH ? x->next + BATCH - 1 : x->end;
	uint64_t cps[BATCH];
	char *cpl[BATCH];
	unsigned ncp = 0, ci = 0;
	uint64_t want = x->next;
	bool ok = false;
	sqlite3_stmt *q;

	ota_store__lock(st);
	q = ota_store__stmt(st, SQL_CPS);
	if (!q)
		goto out;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)x->next - 1);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)upto);
	sqlite3_bind_int64(q, 3, BATCH);
	while (ncp < BATCH && sqlite3_step(q) == SQLITE_ROW) {
		cps[ncp] = (uint64_t)sqlite3_column_int64(q, 0);
		cpl[ncp] =
		    checkpoint_line(cps[ncp], col(q, 1), sqlite3_column_int64(q, 2), col(q, 3));
		if (!cpl[ncp])
			break;
		ncp++;
	}
	sqlite3_reset(q);
	q = ota_store__stmt(st, SQL_ROWS);
	if (!q)
		goto out;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)x->next - 1);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)upto);
	sqlite3_bind_int64(q, 3, BATCH);
	while (sqlite3_step(q) == SQLITE_ROW) {
		struct ota_audit_row r;
		row_of(q, &r);
		if (r.seq != want)
			break; /* the triggers keep seq dense; a gap is a fault */
		x->q[x->qn] = entry_line(&r);
		if (!x->q[x->qn])
			break;
		x->qn++;
		while (ci < ncp && cps[ci] == r.seq)
			x->q[x->qn++] = cpl[ci++];
		want++;
	}
	sqlite3_reset(q);
	ok = want == upto + 1;
out:
	ota_store__unlock(st);
	for (; ci < ncp; ci++)
		free(cpl[ci]);
	if (!ok)
		log_err("audit: export stopped at entry %llu", (unsigned long long)want);
	x->next = upto + 1;
	return ok;
}

long ota_audit_export_read(struct ota_audit_export *x, char *buf, size_t buflen)
{
	size_t len = 0;

	if (x->failed)
		return -1;
	while (len < buflen) {
		if (x->qh == x->qn) {
			x->qh = x->qn = 0;
			if (x->next > x->end)
				break;
			if (!fetch(x)) {
				drop_queue(x);
				x->failed = true;
				return -1;
			}
			continue;
		}
		const char *line = x->q[x->qh];
		size_t n = strlen(line + x->off);
		if (n > buflen - len)
			n = buflen - len;
		memcpy(buf + len, line + x->off, n);
		len += n;
		x->off += n;
		if (line[x->off] == '\0') {
			free(x->q[x->qh++]);
			x->off = 0;
		}
	}
	return (long)len;
}

/* ---- verification ---- */

struct vstate {
	EVP_PKEY *pub;
	struct ota_audit_verdict *v;
	uint64_t next;         /* the seq expected next */
	char last[OTA_HEX256]; /* hash of the last good entry */
	uint64_t last_cp;      /* seq of the last checkpoint checked */
	bool last_is_cp;       /* the last item fed was a checkpoint of the last entry */
};

static bool vfail(struct vstate *vs, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool vfail(struct vstate *vs, uint64_t seq, const char *fmt, ...)
{
	va_list ap;

	vs->v->ok = false;
	vs->v->bad_seq = seq;
	va_start(ap, fmt);
	vsnprintf(vs->v->reason, sizeof(vs->v->reason), fmt, ap);
	va_end(ap);
	return false;
}

/* An entry object with "hash" (and maybe "kind"): consumes o's members "hash" and "kind". */
static bool feed_entry(struct vstate *vs, json_t *o)
{
	json_t *js = json_object_get(o, "seq");
	const char *hash = json_string_value(json_object_get(o, "hash"));
	const char *prev = json_string_value(json_object_get(o, "prev"));
	char want[OTA_HEX256], hcopy[OTA_HEX256];
	uint64_t seq;

	if (!json_is_integer(js) || json_integer_value(js) < 1)
		return vfail(vs, vs->next, "the entry after %llu has no valid seq",
		             (unsigned long long)(vs->next - 1));
	seq = (uint64_t)json_integer_value(js);
	if (seq != vs->next)
		return vfail(vs, vs->next,
		             "an entry is missing or out of order here (found seq %llu)",
		             (unsigned long long)seq);
	if (!hash || strlen(hash) != 64)
		return vfail(vs, seq, "the entry has no hash");
	if (!prev || strcmp(prev, vs->last) != 0)
		return vfail(vs, seq, "prev is not the hash of the entry before");
	snprintf(hcopy, sizeof(hcopy), "%s", hash);
	json_object_del(o, "hash");
	json_object_del(o, "kind");
	if (!canonical_hash(o, want))
		return vfail(vs, seq, "cannot hash the entry");
	if (strcmp(want, hcopy) != 0)
		return vfail(vs, seq, "the entry's content does not match its hash");
	memcpy(vs->last, want, sizeof(vs->last));
	vs->next++;
	vs->v->entries++;
	vs->last_is_cp = false;
	return true;
}

static bool feed_checkpoint(struct vstate *vs, uint64_t seq, const char *hash, int64_t at,
                            const char *sig64)
{
	char msgbuf[160];
	unsigned char sig[160];
	size_t n = sig64 ? strlen(sig64) : 0;
	int dl;
	EVP_MD_CTX *md;
	bool good;

	if (seq != vs->next - 1 || seq == 0)
		return vfail(vs, seq, "checkpoint of entry %llu is not right after that entry",
		             (unsigned long long)seq);
	if (!hash || strcmp(hash, vs->last) != 0)
		return vfail(vs, seq,
		             "checkpoint of entry %llu signs another hash than the entry's",
		             (unsigned long long)seq);
	if (n == 0 || n % 4 || n > 4 * (sizeof(sig) / 3))
		return vfail(vs, seq, "checkpoint of entry %llu has a malformed signature",
		             (unsigned long long)seq);
	dl = EVP_DecodeBlock(sig, (const unsigned char *)sig64, (int)n);
	if (dl < 0)
		return vfail(vs, seq, "checkpoint of entry %llu has a malformed signature",
		             (unsigned long long)seq);
	if (sig64[n - 1] == '=')
		dl--;
	if (sig64[n - 2] == '=')
		dl--;
	cp_message(msgbuf, sizeof(msgbuf), seq, hash, at);
	md = EVP_MD_CTX_new();
	good = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, vs->pub) == 1 &&
	       EVP_DigestVerify(md, sig, (size_t)dl, (unsigned char *)msgbuf, strlen(msgbuf)) == 1;
	EVP_MD_CTX_free(md);
	if (!good)
		return vfail(vs, seq, "the signature of the checkpoint of entry %llu is not valid",
		             (unsigned long long)seq);
	vs->last_cp = seq;
	vs->last_is_cp = true;
	vs->v->checkpoints++;
	return true;
}

static void vinit(struct vstate *vs, EVP_PKEY *pub, struct ota_audit_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->ok = true;
	memset(vs, 0, sizeof(*vs));
	vs->pub = pub;
	vs->v = v;
	vs->next = 1;
	snprintf(vs->last, sizeof(vs->last), "%s", ZERO_HASH);
}

enum ota_err ota_audit_verify_db(struct ota_audit *a, struct ota_audit_verdict *v)
{
	struct ota_store *st = a->st;
	struct vstate vs;
	enum ota_err rc = OTA_OK;
	bool go = true;

	vinit(&vs, a->key, v);
	while (go && rc == OTA_OK) {
		uint64_t from = vs.next - 1, got = 0;
		uint64_t cps[BATCH];
		char cph[BATCH][OTA_HEX256], *cps64[BATCH];
		int64_t cpat[BATCH];
		unsigned ncp = 0, ci = 0;

		ota_store__lock(st);
		sqlite3_stmt *q = ota_store__stmt(st, SQL_CPS);
		if (!q) {
			rc = OTA_ERR_DB;
			ota_store__unlock(st);
			break;
		}
		sqlite3_bind_int64(q, 1, (sqlite3_int64)from);
		sqlite3_bind_int64(q, 2, (sqlite3_int64)(from + BATCH));
		sqlite3_bind_int64(q, 3, BATCH);
		while (ncp < BATCH && sqlite3_step(q) == SQLITE_ROW) {
			cps[ncp] = (uint64_t)sqlite3_column_int64(q, 0);
			snprintf(cph[ncp], OTA_HEX256, "%s", col(q, 1));
			cpat[ncp] = sqlite3_column_int64(q, 2);
			cps64[ncp] = strdup(col(q, 3) ? col(q, 3) : "");
			ncp++;
		}
		sqlite3_reset(q);
		q = ota_store__stmt(st, SQL_ROWS);
		if (!q) {
			rc = OTA_ERR_DB;
		} else {
			sqlite3_bind_int64(q, 1, (sqlite3_int64)from);
			sqlite3_bind_int64(q, 2, (sqlite3_int64)(from + BATCH));
			sqlite3_bind_int64(q, 3, BATCH);
			while (go && sqlite3_step(q) == SQLITE_ROW) {
				struct ota_audit_row r;
				row_of(q, &r);
				json_t *o = entry_json(r.seq, r.at, &r.e, r.prev);
				if (!o || json_object_set_new(o, "hash",
				                              json_string(r.hash ? r.hash : ""))) {
					json_decref(o);
					rc = OTA_ERR_NOMEM;
					break;
				}
				go = feed_entry(&vs, o);
				json_decref(o);
				got++;
				while (go && ci < ncp && cps[ci] <= r.seq) {
					go = feed_checkpoint(&vs, cps[ci], cph[ci], cpat[ci],
					                     cps64[ci]);
					ci++;
				}
			}
			sqlite3_reset(q);
		}
		ota_store__unlock(st);
		for (unsigned i = 0; i < ncp; i++)
			free(cps64[i]);
		if (got < BATCH)
			break;
	}
	return rc;
}

enum ota_err ota_audit_verify_export(FILE *f, const char *pubkey_pem, struct ota_audit_verdict *v)
{
	struct vstate vs;
	BIO *b = BIO_new_mem_buf(pubkey_pem, -1);
	EVP_PKEY *pub = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned long long lineno = 0;
	bool go = true;

	BIO_free(b);
	if (!pub || !EVP_PKEY_is_a(pub, "EC")) {
		EVP_PKEY_free(pub);
		return OTA_ERR_INVALID;
	}
	vinit(&vs, pub, v);
	while (go && (n = getline(&line, &cap, f)) >= 0) {
		json_error_t err;
		json_t *o;
		const char *kind;

		lineno++;
		o = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, &err);
		kind = json_string_value(json_object_get(o, "kind"));
		if (!o || !json_is_object(o) || !kind) {
			go = vfail(&vs, vs.next, "line %llu is not an audit export line", lineno);
		} else if (strcmp(kind, "entry") == 0) {
			go = feed_entry(&vs, o);
		} else if (strcmp(kind, "checkpoint") == 0) {
			json_t *js = json_object_get(o, "seq"), *ja = json_object_get(o, "at");
			go = json_is_integer(js) && json_is_integer(ja)
			         ? feed_checkpoint(&vs, (uint64_t)json_integer_value(js),
			                           json_string_value(json_object_get(o, "hash")),
			                           json_integer_value(ja),
			                           json_string_value(json_object_get(o, "sig")))
			         : vfail(&vs, vs.next, "line %llu: malformed checkpoint", lineno);
		} else {
			go = vfail(&vs, vs.next, "line %llu has an unknown kind", lineno);
		}
		json_decref(o);
	}
	free(line);
	if (go && !vs.last_is_cp)
		vfail(&vs, 0,
		      "the export does not end with a signed checkpoint of its last entry "
		      "(%llu entries read): it was cut or extended",
		      (unsigned long long)vs.v->entries);
	EVP_PKEY_free(pub);
	return OTA_OK;
}
