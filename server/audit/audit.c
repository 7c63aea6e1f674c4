/*
 * audit/audit.c - the audit log of audit.h: entries validated, hashed and chained onto the head
 * inside the caller's store transaction, the audit key and signed checkpoints of the chain
 * head, query filters, the NDJSON export read in bounded pieces, and the verification of the
 * database. The rows live behind store/audit_store.h (the log must commit with the changes it
 * records, so it is a part of the store); the format and the verifier are chain.c's.
 */
#include "audit/audit.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "audit/chain.h"
#include "common/log.h"
#include "common/util.h"
#include "store/audit_store.h"

#define OTA_PATH_MAX_AUDIT 1024

struct ota_audit {
	struct ota_store *st;
	EVP_PKEY *key;
	char *pub_pem;
	pthread_mutex_t lock;
};

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

struct seal_ctx {
	const struct ota_audit_entry *e;
	int64_t at;
};

/* The entry's hash, once the store has told its place on the chain. */
static enum ota_err seal(void *ctx, uint64_t seq, const char *prev, char hash[OTA_HEX256])
{
	const struct seal_ctx *c = ctx;
	json_t *o = ota_audit__entry_json(seq, c->at, c->e, prev);
	enum ota_err rc = OTA_OK;

	if (!o)
		return OTA_ERR_INVALID; /* not UTF-8, or out of memory */
	if (!ota_audit__hash(o, hash))
		rc = OTA_ERR_NOMEM;
	json_decref(o);
	return rc;
}

enum ota_err ota_audit_append(struct ota_store *st, const struct ota_audit_entry *e, int64_t now,
                              uint64_t *seq_out)
{
	struct seal_ctx c = {.e = e, .at = now};
	struct ota_store_audit_row r;

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
	r = (struct ota_store_audit_row){.at = now,
	                                 .actor = e->actor,
	                                 .role = e->role,
	                                 .action = e->action,
	                                 .device_id = e->device_id,
	                                 .rollout_id = e->rollout_id,
	                                 .release_id = e->release_id,
	                                 .object = e->object,
	                                 .before = e->before,
	                                 .after = e->after,
	                                 .detail = e->detail};
	return ota_store_audit_append(st, &r, seal, &c, seq_out);
}

/* ---- key and checkpoints ---- */

/* The private key in the PEM text, checked to be ECDSA P-256; NULL otherwise. */
static EVP_PKEY *key_of_pem(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	if (k && (EVP_PKEY_get_bits(k) != 256 || !EVP_PKEY_is_a(k, "EC"))) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	return k;
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
	/* Read the key, or make it: when another instance made it first, read that one. */
	for (int tries = 0; !a->key && tries < 3; tries++) {
		pem = ota_file_read(path, 1 << 20, NULL);
		if (pem) {
			a->key = key_of_pem(pem);
			if (!a->key) {
				snprintf(msg, msglen, "%s is not an ECDSA P-256 private key", path);
				rc = OTA_ERR_IO;
				goto out;
			}
		} else if (errno == ENOENT) {
			EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
			int made;

			pem = k ? pem_of(k, true) : NULL;
			made = pem ? ota_file_create_once(path, pem, strlen(pem), 0600) : -1;
			if (made < 0) {
				snprintf(msg, msglen, "cannot create the audit key %s: %s", path,
				         strerror(errno));
				EVP_PKEY_free(k);
				rc = OTA_ERR_IO;
				goto out;
			}
			if (made) {
				a->key = k;
				log_notice("audit: generated the audit key %s", path);
			} else {
				EVP_PKEY_free(k); /* another instance's is there: read it */
			}
		} else {
			snprintf(msg, msglen, "cannot read %s: %s", path, strerror(errno));
			rc = OTA_ERR_IO;
			goto out;
		}
		if (pem) {
			OPENSSL_cleanse(pem, strlen(pem));
			free(pem);
			pem = NULL;
		}
	}
	if (!a->key) {
		snprintf(msg, msglen, "cannot read or create the audit key %s", path);
		rc = OTA_ERR_IO;
		goto out;
	}
	a->pub_pem = pem_of(a->key, false);
	if (!a->pub_pem)
		goto out;
	if (!ota_file_write_atomic(pub, a->pub_pem, strlen(a->pub_pem), 0644)) {
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

static char *b64(const unsigned char *d, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	if (out)
		EVP_EncodeBlock((unsigned char *)out, d, (int)n);
	return out;
}

enum ota_err ota_audit_checkpoint(struct ota_audit *a, int64_t now, uint64_t *seq_out)
{
	enum ota_err rc;
	struct ota_store *st = a->st;
	uint64_t head = 0, signed_to = 0;
	char hash[OTA_HEX256] = "", msgbuf[160], *sig64 = NULL;
	unsigned char sig[80];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *md = NULL;

	pthread_mutex_lock(&a->lock);
	/* The head read, signed and recorded in one transaction: no entry slips in between. */
	if (ota_store_tx_begin(st) != OTA_OK) {
		rc = OTA_ERR_DB;
		goto unlock;
	}
	rc = ota_store_audit_head(st, &head, hash);
	if (rc == OTA_OK)
		rc = ota_store_audit_checkpoint_latest(st, &signed_to);
	if (rc != OTA_OK || head == 0 || signed_to == head)
		goto out;
	ota_audit__cp_message(msgbuf, sizeof(msgbuf), head, hash, now);
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
	struct ota_store_audit_checkpoint cp = {.seq = head, .hash = hash, .at = now, .sig = sig64};
	rc = ota_store_audit_checkpoint_add(st, &cp);
out : {
	enum ota_err e2 = ota_store_tx_end(st, rc == OTA_OK);
	if (rc == OTA_OK)
		rc = e2;
}
	if (rc == OTA_OK && seq_out)
		*seq_out = head;
unlock:
	pthread_mutex_unlock(&a->lock);
	EVP_MD_CTX_free(md);
	free(sig64);
	return rc;
}

/* ---- reading ---- */

static void row_of(const struct ota_store_audit_row *s, struct ota_audit_row *r)
{
	r->seq = s->seq;
	r->at = s->at;
	r->e = (struct ota_audit_entry){.actor = s->actor,
	                                .role = s->role,
	                                .action = s->action,
	                                .device_id = s->device_id,
	                                .rollout_id = s->rollout_id,
	                                .release_id = s->release_id,
	                                .object = s->object,
	                                .before = s->before,
	                                .after = s->after,
	                                .detail = s->detail};
	r->prev = s->prev;
	r->hash = s->hash;
}

struct query_ctx {
	int (*fn)(void *ctx, const struct ota_audit_row *row);
	void *ctx;
};

static int query_row(void *ctx, const struct ota_store_audit_row *s)
{
	struct query_ctx *c = ctx;
	struct ota_audit_row r;

	row_of(s, &r);
	return c->fn(c->ctx, &r);
}

enum ota_err ota_audit_query(struct ota_store *st, const struct ota_audit_filter *f,
                             int (*fn)(void *ctx, const struct ota_audit_row *row), void *ctx,
                             bool *more)
{
	struct query_ctx c = {.fn = fn, .ctx = ctx};
	struct ota_store_audit_filter sf = {.after_seq = f->after_seq,
	                                    .since = f->since,
	                                    .until = f->until,
	                                    .actor = f->actor,
	                                    .action = f->action,
	                                    .device_id = f->device_id,
	                                    .rollout_id = f->rollout_id,
	                                    .release_id = f->release_id,
	                                    .limit = f->limit};

	*more = false;
	if (f->limit < 1 || f->limit > 1000)
		return OTA_ERR_INVALID;
	return ota_store_audit_query(st, &sf, query_row, &c, more);
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
	json_t *o = ota_audit__entry_json(r->seq, r->at, &r->e, r->prev);
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

struct fetch_ctx {
	struct ota_audit_export *x;
	uint64_t want; /* the seq of the next entry */
	bool bad;
};

static int fetch_entry(void *ctx, const struct ota_store_audit_row *s)
{
	struct fetch_ctx *c = ctx;
	struct ota_audit_export *x = c->x;
	struct ota_audit_row r;

	if (s->seq != c->want || x->qn >= 2 * BATCH)
		return 1; /* the triggers keep seq dense; a gap is a fault */
	row_of(s, &r);
	x->q[x->qn] = entry_line(&r);
	if (!x->q[x->qn])
		return 1;
	x->qn++;
	c->want++;
	return 0;
}

static int fetch_checkpoint(void *ctx, const struct ota_store_audit_checkpoint *cp)
{
	struct fetch_ctx *c = ctx;
	struct ota_audit_export *x = c->x;

	/* After the entry it covers; another is a fault (a checkpoint of no entry). */
	if (cp->seq != c->want - 1 || !cp->hash || !cp->sig || x->qn >= 2 * BATCH + 1) {
		c->bad = true;
		return 1;
	}
	x->q[x->qn] = checkpoint_line(cp->seq, cp->hash, cp->at, cp->sig);
	if (!x->q[x->qn]) {
		c->bad = true;
		return 1;
	}
	x->qn++;
	return 0;
}

/* Fetch the next batch of entries, each followed by its checkpoint if any, into the queue. */
static bool fetch(struct ota_audit_export *x)
{
	uint64_t upto = x->end - x->next >= BATCH ? x->next + BATCH - 1 : x->end;
	struct fetch_ctx c = {.x = x, .want = x->next};
	bool ok;

	ok = ota_store_audit_walk(x->a->st, x->next - 1, upto, BATCH, fetch_entry, fetch_checkpoint,
	                          &c) == OTA_OK &&
	     !c.bad && c.want == upto + 1;
	if (!ok)
		log_err("audit: export stopped at entry %llu", (unsigned long long)c.want);
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

/* ---- verification of the database ---- */

struct vdb_ctx {
	struct ota_audit__verifier vs;
	uint64_t got; /* entries seen in this walk */
	bool go;
	enum ota_err rc;
};

static int vdb_entry(void *ctx, const struct ota_store_audit_row *s)
{
	struct vdb_ctx *c = ctx;
	struct ota_audit_row r;
	json_t *o;

	row_of(s, &r);
	o = ota_audit__entry_json(r.seq, r.at, &r.e, r.prev);
	if (!o || json_object_set_new(o, "hash", json_string(r.hash ? r.hash : ""))) {
		json_decref(o);
		c->rc = OTA_ERR_NOMEM;
		return 1;
	}
	c->go = ota_audit__verify_entry(&c->vs, o);
	json_decref(o);
	c->got++;
	return !c->go;
}

static int vdb_checkpoint(void *ctx, const struct ota_store_audit_checkpoint *cp)
{
	struct vdb_ctx *c = ctx;

	c->go = ota_audit__verify_checkpoint(&c->vs, cp->seq, cp->hash, cp->at, cp->sig);
	return !c->go;
}

enum ota_err ota_audit_verify_db(struct ota_audit *a, struct ota_audit_verdict *v)
{
	struct vdb_ctx c = {.go = true, .rc = OTA_OK};

	ota_audit__verifier_init(&c.vs, a->key, v);
	while (c.go && c.rc == OTA_OK) {
		uint64_t from = c.vs.next - 1;
		c.got = 0;
		if (ota_store_audit_walk(a->st, from, from + BATCH, BATCH, vdb_entry,
		                         vdb_checkpoint, &c) != OTA_OK) {
			c.rc = OTA_ERR_DB;
			break;
		}
		if (c.got < BATCH)
			break;
	}
	return c.rc;
}
