/*
 * audit/chain.c - the audit log's format (chain.h): canonical JSON and hashes of entries, the
 * bytes a checkpoint signs, the verifier fed entries and checkpoints in order, and
 * ota_audit_verify_export() on top of it. No database here: ota-audit-verify links this file
 * alone, and audit.c feeds the same verifier from the store.
 */
#include "audit/chain.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <openssl/pem.h>

#define SIG_CONTEXT "ota-audit-checkpoint-v1"

/* ---- canonical form and hashing ---- */

static int set_str(json_t *o, const char *k, const char *v)
{
	return json_object_set_new(o, k, v ? json_string(v) : json_null());
}

/* The entry as a JSON object without "hash" (NULL when out of memory or not UTF-8). */
json_t *ota_audit__entry_json(uint64_t seq, int64_t at, const struct ota_audit_entry *e,
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
bool ota_audit__hash(json_t *o, char out[OTA_HEX256])
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

/* The bytes a checkpoint signs. */
int ota_audit__cp_message(char *buf, size_t cap, uint64_t seq, const char *hash, int64_t at)
{
	return snprintf(buf, cap, SIG_CONTEXT "\n%llu\n%s\n%lld\n", (unsigned long long)seq, hash,
	                (long long)at);
}

/* ---- verification ---- */

static bool vfail(struct ota_audit__verifier *vs, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool vfail(struct ota_audit__verifier *vs, uint64_t seq, const char *fmt, ...)
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
bool ota_audit__verify_entry(struct ota_audit__verifier *vs, json_t *o)
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
	if (!ota_audit__hash(o, want))
		return vfail(vs, seq, "cannot hash the entry");
	if (strcmp(want, hcopy) != 0)
		return vfail(vs, seq, "the entry's content does not match its hash");
	memcpy(vs->last, want, sizeof(vs->last));
	vs->next++;
	vs->v->entries++;
	vs->last_is_cp = false;
	return true;
}

bool ota_audit__verify_checkpoint(struct ota_audit__verifier *vs, uint64_t seq, const char *hash,
                                  int64_t at, const char *sig64)
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
	ota_audit__cp_message(msgbuf, sizeof(msgbuf), seq, hash, at);
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

void ota_audit__verifier_init(struct ota_audit__verifier *vs, EVP_PKEY *pub,
                              struct ota_audit_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->ok = true;
	memset(vs, 0, sizeof(*vs));
	vs->pub = pub;
	vs->v = v;
	vs->next = 1;
	snprintf(vs->last, sizeof(vs->last), "%s", OTA_AUDIT_ZERO_HASH);
}

enum ota_err ota_audit_verify_export(FILE *f, const char *pubkey_pem, struct ota_audit_verdict *v)
{
	struct ota_audit__verifier vs;
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
	ota_audit__verifier_init(&vs, pub, v);
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
			go = ota_audit__verify_entry(&vs, o);
		} else if (strcmp(kind, "checkpoint") == 0) {
			json_t *js = json_object_get(o, "seq"), *ja = json_object_get(o, "at");
			go = json_is_integer(js) && json_is_integer(ja)
			         ? ota_audit__verify_checkpoint(
			               &vs, (uint64_t)json_integer_value(js),
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
