/*
 * rollout/rollout.c - the pure half of the rollout engine: the definition's rules and text
 * form, membership by HMAC-SHA-256 of rollout and device ids, semantic-version ranges, the
 * target filter, maintenance windows evaluated from the system time-zone database (TZif files
 * read here, so no thread ever changes TZ), retry backoff and the stage verdict. Nothing here
 * does I/O except reading a zone file, and every function takes the time as an argument.
 */
#include "rollout/rollout.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

static void say(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;
	if (!msg || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
}

/* ---- semantic versions ---- */

struct semver {
	unsigned long long v[3];
	const char *pre; /* after '-', up to '+' or end; NULL when none */
	size_t prelen;
};

static bool semver_parse(const char *s, struct semver *out)
{
	const char *p = s;
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < 3; i++) {
		if (!isdigit((unsigned char)*p) || (p[0] == '0' && isdigit((unsigned char)p[1])))
			return false;
		char *end;
		errno = 0;
		out->v[i] = strtoull(p, &end, 10);
		if (errno)
			return false;
		p = end;
		if (i < 2 && *p++ != '.')
			return false;
	}
	if (*p == '-') {
		out->pre = ++p;
		while (*p && *p != '+')
			p++;
		out->prelen = (size_t)(p - out->pre);
		if (!out->prelen)
			return false;
	}
	if (*p == '+')
		p += strlen(p);
	return *p == '\0';
}

/* SemVer 2.0.0 rule 11 for pre-release identifiers. */
static int pre_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	while (an && bn) {
		size_t al = 0, bl = 0;
		while (al < an && a[al] != '.')
			al++;
		while (bl < bn && b[bl] != '.')
			bl++;
		bool anum = true, bnum = true;
		for (size_t i = 0; i < al; i++)
			anum = anum && isdigit((unsigned char)a[i]);
		for (size_t i = 0; i < bl; i++)
			bnum = bnum && isdigit((unsigned char)b[i]);
		int c;
		if (anum && bnum)
			c = al != bl ? (al < bl ? -1 : 1) : memcmp(a, b, al);
		else if (anum != bnum)
			c = anum ? -1 : 1;
		else {
			c = memcmp(a, b, al < bl ? al : bl);
			if (!c && al != bl)
				c = al < bl ? -1 : 1;
		}
		if (c)
			return c < 0 ? -1 : 1;
		a += al;
		an -= al;
		b += bl;
		bn -= bl;
		if (an) {
			a++;
			an--;
		}
		if (bn) {
			b++;
			bn--;
		}
	}
	return an ? 1 : bn ? -1 : 0;
}

static int semver_cmp(const struct semver *a, const struct semver *b)
{
	for (int i = 0; i < 3; i++)
		if (a->v[i] != b->v[i])
			return a->v[i] < b->v[i] ? -1 : 1;
	if (!a->pre || !b->pre)
		return a->pre ? -1 : b->pre ? 1 : 0;
	return pre_cmp(a->pre, a->prelen, b->pre, b->prelen);
}

int ota_semver_cmp(const char *a, const char *b)
{
	struct semver x, y;
	if (!semver_parse(a, &x) || !semver_parse(b, &y))
		return strcmp(a, b) < 0 ? -1 : strcmp(a, b) > 0;
	return semver_cmp(&x, &y);
}

int ota_semver_in_range(const char *version, const char *range)
{
	struct semver v;
	bool valid = semver_parse(version, &v);
	const char *p = range;
	int n = 0, in = 1;

	while (*p) {
		char tok[80], op[3] = "";
		size_t len = strcspn(p, " ");
		if (len == 0) {
			p++;
			continue;
		}
		if (len >= sizeof(tok))
			return -1;
		memcpy(tok, p, len);
		tok[len] = '\0';
		p += len;
		const char *ver = tok;
		if (tok[0] == '>' || tok[0] == '<' || tok[0] == '=') {
			op[0] = tok[0];
			ver++;
			if (*ver == '=') {
				op[1] = '=';
				ver++;
			}
		}
		struct semver b;
		if (!semver_parse(ver, &b) || strcmp(op, "==") == 0)
			return -1;
		n++;
		int c = valid ? semver_cmp(&v, &b) : 2;
		bool ok;
		if (!valid)
			ok = false;
		else if (strcmp(op, ">=") == 0)
			ok = c >= 0;
		else if (strcmp(op, "<=") == 0)
			ok = c <= 0;
		else if (strcmp(op, ">") == 0)
			ok = c > 0;
		else if (strcmp(op, "<") == 0)
			ok = c < 0;
		else
			ok = c == 0; /* "=" or none */
		if (!ok)
			in = 0;
	}
	return n ? in : -1;
}

/* ---- the definition ---- */

static bool zone_name_valid(const char *tz)
{
	if (!tz[0] || tz[0] == '/' || strstr(tz, ".."))
		return false;
	for (const char *p = tz; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p))
			return false;
	return true;
}

enum ota_err ota_rollout_spec_check(const struct ota_rollout_spec *s, char *msg, size_t msglen)
{
	if (!s->name[0]) {
		say(msg, msglen, "\"name\" is required");
		return OTA_ERR_INVALID;
	}
	if (strlen(s->release_id) != 64) {
		say(msg, msglen, "\"release_id\" must be 64 hex digits");
		return OTA_ERR_INVALID;
	}
	if (s->nbaseline && s->baseline_range[0]) {
		say(msg, msglen, "\"baseline\" is either a set of versions or a range, not both");
		return OTA_ERR_INVALID;
	}
	if (s->baseline_range[0] && ota_semver_in_range("0.0.0", s->baseline_range) < 0) {
		say(msg, msglen,
		    "\"baseline.range\" is not a version range (e.g. \">=1.0.0 <2.0.0\")");
		return OTA_ERR_INVALID;
	}
	for (unsigned i = 0; i < s->nbaseline; i++) {
		struct semver v;
		if (!semver_parse(s->baseline[i], &v)) {
			say(msg, msglen, "baseline version \"%s\" is not a semantic version",
			    s->baseline[i]);
			return OTA_ERR_INVALID;
		}
	}
	if (s->nstages == 0 || s->nstages > OTA_RO_MAX_STAGES) {
		say(msg, msglen, "a rollout has 1 to %d stages", OTA_RO_MAX_STAGES);
		return OTA_ERR_INVALID;
	}
	for (unsigned i = 0; i < s->nstages; i++) {
		const struct ota_rollout_stage *g = &s->stages[i];
		if (g->percent_bp < 1 || g->percent_bp > OTA_RO_BP ||
		    (i && g->percent_bp <= s->stages[i - 1].percent_bp)) {
			say(msg, msglen,
			    "stage %u: percentages must grow from stage to stage, within 0.01..100",
			    i + 1);
			return OTA_ERR_INVALID;
		}
		if (g->success_pct > 100 || g->failure_pct > 100) {
			say(msg, msglen, "stage %u: thresholds are percentages (0..100)", i + 1);
			return OTA_ERR_INVALID;
		}
	}
	if (s->stages[s->nstages - 1].percent_bp != OTA_RO_BP) {
		say(msg, msglen, "the last stage must cover 100%% of the matching devices");
		return OTA_ERR_INVALID;
	}
	if (s->retry_attempts < 1 || s->retry_attempts > 100) {
		say(msg, msglen, "\"retry.attempts\" must be 1..100 (1 = no retry)");
		return OTA_ERR_INVALID;
	}
	if (s->window_days) {
		bool open;
		if (s->window_days > 0x7f || s->window_start >= 1440 || s->window_duration < 1 ||
		    s->window_duration > 10080) {
			say(msg, msglen,
			    "the window needs days, a start within the day and a "
			    "duration of 1 minute to 7 days");
			return OTA_ERR_INVALID;
		}
		if (!zone_name_valid(s->window_tz) ||
		    ota_rollout_window_open(s, 0, &open) != OTA_OK) {
			say(msg, msglen, "unknown time zone \"%s\"", s->window_tz);
			return OTA_ERR_INVALID;
		}
	}
	if (s->max_active_per_tag && !s->budget_tag_key[0]) {
		say(msg, msglen, "a per-tag budget needs \"budget.tag_key\"");
		return OTA_ERR_INVALID;
	}
	return OTA_OK;
}

static void put_str(char **buf, size_t *len, size_t *cap, bool *bad, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void put_str(char **buf, size_t *len, size_t *cap, bool *bad, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			*bad = true;
			return;
		}
		if ((size_t)n < *cap - *len) {
			*len += (size_t)n;
			return;
		}
		char *p = realloc(*buf, *cap * 2 + (size_t)n);
		if (!p) {
			*bad = true;
			return;
		}
		*buf = p;
		*cap = *cap * 2 + (size_t)n;
	}
}

char *ota_rollout_spec_encode(const struct ota_rollout_spec *s)
{
	size_t len = 0, cap = 1024;
	bool bad = false;
	char *b = malloc(cap);
	if (!b)
		return NULL;
	b[0] = '\0';
	put_str(&b, &len, &cap, &bad, "name=%s\nrelease=%s\n", s->name, s->release_id);
	for (unsigned i = 0; i < s->nhw; i++)
		put_str(&b, &len, &cap, &bad, "hw=%s\n", s->hw[i]);
	for (unsigned i = 0; i < s->nbaseline; i++)
		put_str(&b, &len, &cap, &bad, "baseline=%s\n", s->baseline[i]);
	if (s->baseline_range[0])
		put_str(&b, &len, &cap, &bad, "range=%s\n", s->baseline_range);
	for (unsigned i = 0; i < s->ntags_all; i++)
		put_str(&b, &len, &cap, &bad, "tag_all=%s\n", s->tags_all[i]);
	for (unsigned i = 0; i < s->ntags_any; i++)
		put_str(&b, &len, &cap, &bad, "tag_any=%s\n", s->tags_any[i]);
	for (unsigned i = 0; i < s->nstages; i++) {
		const struct ota_rollout_stage *g = &s->stages[i];
		put_str(&b, &len, &cap, &bad, "stage=%u,%u,%u,%u,%u,%u\n", g->percent_bp,
		        g->success_pct, g->auto_advance ? 1u : 0u, g->failure_pct, g->min_finished,
		        g->soak_s);
	}
	put_str(&b, &len, &cap, &bad, "retry=%u,%u\n", s->retry_attempts, s->retry_backoff_s);
	if (s->window_days)
		put_str(&b, &len, &cap, &bad, "window=%u,%u,%u,%s\n", s->window_days,
		        s->window_start, s->window_duration, s->window_tz);
	put_str(&b, &len, &cap, &bad, "budget=%u,%u,%s\n", s->max_active, s->max_active_per_tag,
	        s->budget_tag_key);
	if (bad) {
		free(b);
		return NULL;
	}
	return b;
}

static bool copy(char *dst, size_t cap, const char *src)
{
	if (strlen(src) >= cap)
		return false;
	memcpy(dst, src, strlen(src) + 1);
	return true;
}

enum ota_err ota_rollout_spec_decode(const char *text, struct ota_rollout_spec *s)
{
	memset(s, 0, sizeof(*s));
	while (*text) {
		char line[512];
		size_t n = strcspn(text, "\n");
		if (n >= sizeof(line))
			return OTA_ERR_INVALID;
		memcpy(line, text, n);
		line[n] = '\0';
		text += n + (text[n] == '\n');
		char *v = strchr(line, '=');
		if (!v)
			return OTA_ERR_INVALID;
		*v++ = '\0';
		bool ok = true;
		if (strcmp(line, "name") == 0)
			ok = copy(s->name, sizeof(s->name), v);
		else if (strcmp(line, "release") == 0)
			ok = copy(s->release_id, sizeof(s->release_id), v);
		else if (strcmp(line, "hw") == 0)
			ok = s->nhw < OTA_RO_MAX_LIST && copy(s->hw[s->nhw++], sizeof(s->hw[0]), v);
		else if (strcmp(line, "baseline") == 0)
			ok = s->nbaseline < OTA_RO_MAX_LIST &&
			     copy(s->baseline[s->nbaseline++], sizeof(s->baseline[0]), v);
		else if (strcmp(line, "range") == 0)
			ok = copy(s->baseline_range, sizeof(s->baseline_range), v);
		else if (strcmp(line, "tag_all") == 0)
			ok = s->ntags_all < OTA_RO_MAX_LIST &&
			     copy(s->tags_all[s->ntags_all++], sizeof(s->tags_all[0]), v);
		else if (strcmp(line, "tag_any") == 0)
			ok = s->ntags_any < OTA_RO_MAX_LIST &&
			     copy(s->tags_any[s->ntags_any++], sizeof(s->tags_any[0]), v);
		else if (strcmp(line, "stage") == 0) {
			unsigned a, b, c, d, e, f;
			ok = s->nstages < OTA_RO_MAX_STAGES &&
			     sscanf(v, "%u,%u,%u,%u,%u,%u", &a, &b, &c, &d, &e, &f) == 6;
			if (ok)
				s->stages[s->nstages++] = (struct ota_rollout_stage){
				    .percent_bp = a,
				    .success_pct = b,
				    .auto_advance = c != 0,
				    .failure_pct = d,
				    .min_finished = e,
				    .soak_s = f,
				};
		} else if (strcmp(line, "retry") == 0)
			ok = sscanf(v, "%u,%u", &s->retry_attempts, &s->retry_backoff_s) == 2;
		else if (strcmp(line, "window") == 0) {
			int pos = 0;
			ok = sscanf(v, "%u,%u,%u,%n", &s->window_days, &s->window_start,
			            &s->window_duration, &pos) == 3 &&
			     pos > 0 && copy(s->window_tz, sizeof(s->window_tz), v + pos);
		} else if (strcmp(line, "budget") == 0) {
			int pos = 0;
			ok = sscanf(v, "%u,%u,%n", &s->max_active, &s->max_active_per_tag, &pos) ==
			         2 &&
			     pos > 0 && copy(s->budget_tag_key, sizeof(s->budget_tag_key), v + pos);
		} else
			ok = false;
		if (!ok)
			return OTA_ERR_INVALID;
	}
	return OTA_OK;
}

/* ---- membership ---- */

unsigned ota_rollout_bucket(const uint8_t key[32], const char *rollout_id, const char *device_id)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	size_t rl = strlen(rollout_id), dl = strlen(device_id);
	unsigned char msg[OTA_RO_ID_MAX + OTA_ID_MAX + 2];

	if (rl >= OTA_RO_ID_MAX || dl > OTA_ID_MAX)
		return OTA_RO_BP - 1; /* not a valid id: last in every rollout */
	memcpy(msg, rollout_id, rl);
	msg[rl] = 0;
	memcpy(msg + rl + 1, device_id, dl);
	if (!HMAC(EVP_sha256(), key, 32, msg, rl + 1 + dl, mac, &maclen) || maclen < 4)
		return OTA_RO_BP - 1;
	uint32_t v =
	    (uint32_t)mac[0] << 24 | (uint32_t)mac[1] << 16 | (uint32_t)mac[2] << 8 | mac[3];
	return v % OTA_RO_BP;
}

int ota_rollout_stage_of(const struct ota_rollout_spec *s, unsigned bucket)
{
	for (unsigned i = 0; i < s->nstages; i++)
		if (bucket < s->stages[i].percent_bp)
			return (int)i;
	return -1;
}

/* ---- the target filter ---- */

static bool has_tag(const struct ota_rollout_device *d, const char *tag)
{
	for (unsigned i = 0; i < d->ntags; i++)
		if (strcmp(d->tags[i], tag) == 0)
			return true;
	return false;
}

bool ota_rollout_matches(const struct ota_rollout_spec *s, const struct ota_rollout_device *d,
                         char *why, size_t whylen)
{
	bool ok = s->nhw == 0;
	for (unsigned i = 0; i < s->nhw && !ok; i++)
		ok = strcmp(s->hw[i], d->hw_variant) == 0;
	if (!ok) {
		say(why, whylen, "hardware variant %s is not targeted", d->hw_variant);
		return false;
	}
	if (s->nbaseline) {
		ok = false;
		for (unsigned i = 0; i < s->nbaseline && !ok; i++)
			ok = ota_semver_cmp(s->baseline[i], d->version) == 0;
		if (!ok) {
			say(why, whylen, "version %s is not in the baseline", d->version);
			return false;
		}
	}
	if (s->baseline_range[0] && ota_semver_in_range(d->version, s->baseline_range) != 1) {
		say(why, whylen, "version %s is outside the baseline range %s", d->version,
		    s->baseline_range);
		return false;
	}
	for (unsigned i = 0; i < s->ntags_all; i++) {
		if (!has_tag(d, s->tags_all[i])) {
			say(why, whylen, "tag %s is missing", s->tags_all[i]);
			return false;
		}
	}
	ok = s->ntags_any == 0;
	for (unsigned i = 0; i < s->ntags_any && !ok; i++)
		ok = has_tag(d, s->tags_any[i]);
	if (!ok) {
		say(why, whylen, "none of the tags is present");
		return false;
	}
	return true;
}

/* ---- time zones (TZif, RFC 8536) ---- */

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

enum ota_err ota_tz_offset(const char *tz, int64_t t, int32_t *offset)
{
	enum ota_err rc = OTA_ERR_INVALID;
	const char *dir = getenv("TZDIR");
	char path[512];
	unsigned char *buf = NULL;
	FILE *f = NULL;
	long size;

	if (!zone_name_valid(tz))
		return OTA_ERR_INVALID;
	if (strcmp(tz, "UTC") == 0 || strcmp(tz, "Etc/UTC") == 0) {
		*offset = 0;
		return OTA_OK;
	}
	snprintf(path, sizeof(path), "%s/%s", dir && dir[0] ? dir : "/usr/share/zoneinfo", tz);
	f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 44 || size > 1 << 20 ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto out;
	buf = malloc((size_t)size);
	if (!buf) {
		rc = OTA_ERR_NOMEM;
		goto out;
	}
	if (fread(buf, 1, (size_t)size, f) != (size_t)size || memcmp(buf, "TZif", 4) != 0)
		goto out;
	/* Version 1 block; for version 2+ skip it and read the 64-bit block. */
	const unsigned char *h = buf;
	size_t tsize = 4;
	uint32_t isut = be32(h + 20), isstd = be32(h + 24), leap = be32(h + 28),
	         timecnt = be32(h + 32), typecnt = be32(h + 36), charcnt = be32(h + 40);
	if (buf[4] >= '2') {
		size_t skip = 44 + (size_t)timecnt * 5 + (size_t)typecnt * 6 + charcnt +
		              (size_t)leap * 8 + isstd + isut;
		if (skip + 44 > (size_t)size)
			goto out;
		h = buf + skip;
		if (memcmp(h, "TZif", 4) != 0)
			goto out;
		tsize = 8;
		isut = be32(h + 20);
		isstd = be32(h + 24);
		leap = be32(h + 28);
		timecnt = be32(h + 32);
		typecnt = be32(h + 36);
		charcnt = be32(h + 40);
	}
	const unsigned char *times = h + 44, *idx = times + (size_t)timecnt * tsize,
	                    *types = idx + timecnt;
	if (typecnt == 0 || (size_t)(types + (size_t)typecnt * 6 - buf) > (size_t)size)
		goto out;
	/* The type in force: after the last transition at or before t; before the first, the
	 * first standard-time type (RFC 8536, section 3.2). */
	unsigned type = 0;
	for (unsigned i = 0; i < typecnt; i++) {
		if (!types[i * 6 + 4]) {
			type = i;
			break;
		}
	}
	for (uint32_t i = 0; i < timecnt; i++) {
		int64_t at = tsize == 8 ? be64(times + (size_t)i * 8)
		                        : (int64_t)(int32_t)be32(times + (size_t)i * 4);
		if (at > t)
			break;
		type = idx[i];
	}
	if (type >= typecnt)
		goto out;
	*offset = (int32_t)be32(types + (size_t)type * 6);
	rc = OTA_OK;
out:
	if (f)
		fclose(f);
	free(buf);
	return rc;
}

enum ota_err ota_rollout_window_open(const struct ota_rollout_spec *s, int64_t now, bool *open)
{
	int32_t off;

	*open = true;
	if (!s->window_days)
		return OTA_OK;
	enum ota_err rc = ota_tz_offset(s->window_tz, now, &off);
	if (rc != OTA_OK)
		return rc;
	int64_t local = now + off;
	int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
	int64_t sod = local - days * 86400;
	int dow = (int)(((days + 3) % 7 + 7) % 7); /* 1970-01-01 was a Thursday; Monday = 0 */
	int64_t minute = sod / 60;

	*open = false;
	for (int d = 0; d < 7; d++) {
		if (!(s->window_days & (1u << d)))
			continue;
		/* Minutes since this weekday's window opened, within one week. */
		int64_t since = (int64_t)((dow - d + 7) % 7) * 1440 + minute - s->window_start;
		if (since < 0)
			since += 7 * 1440;
		if (since < s->window_duration)
			*open = true;
	}
	return OTA_OK;
}

int64_t ota_rollout_backoff(const struct ota_rollout_spec *s, unsigned attempt)
{
	int64_t wait = s->retry_backoff_s;
	for (unsigned i = 1; i < attempt && wait < 7 * 86400; i++)
		wait *= 2;
	return wait > 7 * 86400 ? 7 * 86400 : wait;
}

/* ---- the verdict ---- */

enum ota_verdict ota_rollout_judge(const struct ota_rollout_spec *s, unsigned stage,
                                   const struct ota_stage_counts *c, unsigned ack_failures,
                                   unsigned ack_finished, int64_t stage_started, int64_t now,
                                   char *why, size_t whylen)
{
	if (stage >= s->nstages)
		return OTA_V_HOLD;
	const struct ota_rollout_stage *g = &s->stages[stage];
	unsigned failures = c->n[OTA_MS_FAILED] + c->n[OTA_MS_ROLLED_BACK];
	unsigned finished = failures + c->n[OTA_MS_SUCCEEDED];
	unsigned active = c->n[OTA_MS_PENDING] + c->n[OTA_MS_DOWNLOADING] +
	                  c->n[OTA_MS_INSTALLING] + c->n[OTA_MS_TRIAL];
	unsigned joined = active + finished;
	unsigned f = failures >= ack_failures ? failures - ack_failures : 0;
	unsigned fin = finished >= ack_finished ? finished - ack_finished : 0;

	/* Halting never waits for the soak time. */
	if (fin >= (g->min_finished ? g->min_finished : 1) &&
	    (uint64_t)f * 100 > (uint64_t)g->failure_pct * fin) {
		say(why, whylen,
		    "failure threshold passed in stage %u: %u of %u finished devices failed "
		    "(more than %u%%)",
		    stage + 1, f, fin, g->failure_pct);
		return OTA_V_HALT;
	}
	if (now - stage_started < (int64_t)g->soak_s || finished < g->min_finished)
		return OTA_V_HOLD;
	if ((uint64_t)c->n[OTA_MS_SUCCEEDED] * 100 < (uint64_t)g->success_pct * joined)
		return OTA_V_HOLD;
	if (stage + 1 == s->nstages) {
		if (active)
			return OTA_V_HOLD;
		say(why, whylen, "completed: %u devices succeeded in the last stage",
		    c->n[OTA_MS_SUCCEEDED]);
		return OTA_V_COMPLETE;
	}
	say(why, whylen, "stage %u succeeded: %u of %u devices", stage + 1, c->n[OTA_MS_SUCCEEDED],
	    joined);
	return g->auto_advance ? OTA_V_ADVANCE : OTA_V_WAIT_APPROVAL;
}
