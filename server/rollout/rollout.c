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
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/util.h"
#include "fwa/verify.h"

/* ---- semantic versions: precedence is fwa_semver's, the one of the whole product ---- */

static bool semver_ok(const char *s)
{
	return fwa_semver_valid(s, strlen(s));
}

int ota_semver_in_range(const char *version, const char *range)
{
	bool valid = semver_ok(version);
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
		if (!semver_ok(ver) || strcmp(op, "==") == 0)
			return -1;
		n++;
		int c = valid ? fwa_semver_cmp(version, ver) : 2;
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
		ota_say(msg, msglen, "\"name\" is required");
		return OTA_ERR_INVALID;
	}
	if (strlen(s->release_id) != 64) {
		ota_say(msg, msglen, "\"release_id\" must be 64 hex digits");
		return OTA_ERR_INVALID;
	}
	if (s->nbaseline && s->baseline_range[0]) {
		ota_say(msg, msglen,
		        "\"baseline\" is either a set of versions or a range, not both");
		return OTA_ERR_INVALID;
	}
	if (s->baseline_range[0] && ota_semver_in_range("0.0.0", s->baseline_range) < 0) {
		ota_say(msg, msglen,
		        "\"baseline.range\" is not a version range (e.g. \">=1.0.0 <2.0.0\")");
		return OTA_ERR_INVALID;
	}
	for (unsigned i = 0; i < s->nbaseline; i++) {
		if (!semver_ok(s->baseline[i])) {
			ota_say(msg, msglen, "baseline version \"%s\" is not a semantic version",
			        s->baseline[i]);
			return OTA_ERR_INVALID;
		}
	}
	if (s->nstages == 0 || s->nstages > OTA_RO_MAX_STAGES) {
		ota_say(msg, msglen, "a rollout has 1 to %d stages", OTA_RO_MAX_STAGES);
		return OTA_ERR_INVALID;
	}
	for (unsigned i = 0; i < s->nstages; i++) {
		const struct ota_rollout_stage *g = &s->stages[i];
		if (g->percent_bp < 1 || g->percent_bp > OTA_RO_BP ||
		    (i && g->percent_bp <= s->stages[i - 1].percent_bp)) {
			ota_say(
			    msg, msglen,
			    "stage %u: percentages must grow from stage to stage, within 0.01..100",
			    i + 1);
			return OTA_ERR_INVALID;
		}
		if (g->success_pct > 100 || g->failure_pct > 100) {
			ota_say(msg, msglen, "stage %u: thresholds are percentages (0..100)",
			        i + 1);
			return OTA_ERR_INVALID;
		}
	}
	if (s->stages[s->nstages - 1].percent_bp != OTA_RO_BP) {
		ota_say(msg, msglen, "the last stage must cover 100%% of the matching devices");
		return OTA_ERR_INVALID;
	}
	if (s->retry_attempts < 1 || s->retry_attempts > 100) {
		ota_say(msg, msglen, "\"retry.attempts\" must be 1..100 (1 = no retry)");
		return OTA_ERR_INVALID;
	}
	if (s->window_days) {
		bool open;
		if (s->window_days > 0x7f || s->window_start >= 1440 || s->window_duration < 1 ||
		    s->window_duration > 10080) {
			ota_say(msg, msglen,
			        "the window needs days, a start within the day and a "
			        "duration of 1 minute to 7 days");
			return OTA_ERR_INVALID;
		}
		if (!zone_name_valid(s->window_tz) ||
		    ota_rollout_window_open(s, 0, &open) != OTA_OK) {
			ota_say(msg, msglen, "unknown time zone \"%s\"", s->window_tz);
			return OTA_ERR_INVALID;
		}
	}
	if (s->max_active_per_tag && !s->budget_tag_key[0]) {
		ota_say(msg, msglen, "a per-tag budget needs \"budget.tag_key\"");
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
		ota_say(why, whylen, "hardware variant %s is not targeted", d->hw_variant);
		return false;
	}
	if (s->nbaseline) {
		ok = false;
		for (unsigned i = 0; i < s->nbaseline && !ok; i++)
			ok = semver_ok(d->version) &&
			     fwa_semver_cmp(s->baseline[i], d->version) == 0;
		if (!ok) {
			ota_say(why, whylen, "version %s is not in the baseline", d->version);
			return false;
		}
	}
	if (s->baseline_range[0] && ota_semver_in_range(d->version, s->baseline_range) != 1) {
		ota_say(why, whylen, "version %s is outside the baseline range %s", d->version,
		        s->baseline_range);
		return false;
	}
	return ota_rollout_tags_match(s, d, why, whylen);
}

bool ota_rollout_tags_match(const struct ota_rollout_spec *s, const struct ota_rollout_device *d,
                            char *why, size_t whylen)
{
	bool ok;
	for (unsigned i = 0; i < s->ntags_all; i++) {
		if (!has_tag(d, s->tags_all[i])) {
			ota_say(why, whylen, "tag %s is missing", s->tags_all[i]);
			return false;
		}
	}
	ok = s->ntags_any == 0;
	for (unsigned i = 0; i < s->ntags_any && !ok; i++)
		ok = has_tag(d, s->tags_any[i]);
	if (!ok) {
		ota_say(why, whylen, "none of the tags is present");
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
	size_t size = 0;

	if (!zone_name_valid(tz))
		return OTA_ERR_INVALID;
	if (strcmp(tz, "UTC") == 0 || strcmp(tz, "Etc/UTC") == 0) {
		*offset = 0;
		return OTA_OK;
	}
	snprintf(path, sizeof(path), "%s/%s", dir && dir[0] ? dir : "/usr/share/zoneinfo", tz);
	buf = (unsigned char *)ota_file_read(path, 1 << 20, &size);
	if (!buf || size < 44 || memcmp(buf, "TZif", 4) != 0)
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

int64_t ota_rollout_retry_at(const struct ota_rollout_spec *s, const struct ota_rollout_member *m)
{
	bool again = (m->state == OTA_MS_FAILED || m->state == OTA_MS_ROLLED_BACK) &&
	             m->attempts < s->retry_attempts;
	return again ? m->next_attempt_at : INT64_MAX;
}

bool ota_rollout_retry_due(const struct ota_rollout_spec *s, const struct ota_rollout_member *m,
                           int64_t now)
{
	return ota_rollout_retry_at(s, m) <= now;
}

/* The member state an event (or the deployment's end) means, or -1 for none. */
static int event_state(const char *status, const char *end_status)
{
	if (end_status) {
		if (strcmp(end_status, "succeeded") == 0)
			return OTA_MS_SUCCEEDED;
		if (strcmp(end_status, "cancelled") == 0)
			return OTA_MS_SKIPPED; /* it can no longer take it (variant, floor) */
		if (strcmp(end_status, "rolled_back") == 0)
			return OTA_MS_ROLLED_BACK;
		return OTA_MS_FAILED;
	}
	if (strcmp(status, "downloading") == 0)
		return OTA_MS_DOWNLOADING;
	if (strcmp(status, "downloaded") == 0 || strcmp(status, "installing") == 0 ||
	    strcmp(status, "rebooting") == 0)
		return OTA_MS_INSTALLING;
	if (strcmp(status, "trial") == 0 || strcmp(status, "confirmed") == 0)
		return OTA_MS_TRIAL;
	return -1;
}

bool ota_rollout_member_next(const struct ota_rollout_spec *s, const struct ota_rollout_member *m,
                             const char *status, const char *end_status, int64_t now,
                             enum ota_member_state *to, int64_t *next_attempt_at)
{
	int next = event_state(status, end_status);

	*next_attempt_at = 0;
	if (next < 0 || m->state >= OTA_MS_SUCCEEDED || (enum ota_member_state)next <= m->state)
		return false;
	*to = (enum ota_member_state)next;
	if (*to == OTA_MS_FAILED || *to == OTA_MS_ROLLED_BACK)
		*next_attempt_at = now + ota_rollout_backoff(s, m->attempts);
	return true;
}

/* ---- the verdict ---- */

double ota_rollout_wilson_lower(unsigned failures, unsigned finished, unsigned confidence_pct)
{
	/* One-sided standard normal quantiles. */
	double z = confidence_pct == 90 ? 1.2815516 : confidence_pct == 99 ? 2.3263479 : 1.6448536;
	if (!finished)
		return 0;
	double n = finished, p = (double)failures / n, z2 = z * z;
	double centre = p + z2 / (2 * n);
	double spread = z * sqrt(p * (1 - p) / n + z2 / (4 * n * n));
	double lo = (centre - spread) / (1 + z2 / n);
	return lo < 0 ? 0 : lo;
}

enum ota_verdict ota_rollout_judge(const struct ota_rollout_spec *s, unsigned stage,
                                   const struct ota_stage_counts *c, unsigned ack_failures,
                                   unsigned ack_finished, int64_t stage_started, int64_t now,
                                   char *why, size_t whylen)
{
	if (stage >= s->nstages)
		return OTA_V_HOLD;
	const struct ota_rollout_stage *g = &s->stages[stage];
	unsigned succeeded = c->n[OTA_MS_SUCCEEDED];
	unsigned failures = c->n[OTA_MS_FAILED] + c->n[OTA_MS_ROLLED_BACK];
	unsigned finished = failures + succeeded;
	unsigned active = c->n[OTA_MS_PENDING] + c->n[OTA_MS_DOWNLOADING] +
	                  c->n[OTA_MS_INSTALLING] + c->n[OTA_MS_TRIAL];
	/* Still to finish: members updating and covered devices that have not joined yet. */
	unsigned open = active + c->waiting;
	/* The denominator: every covered device but the skipped and the unreachable. */
	unsigned total = finished + open;
	unsigned f = failures >= ack_failures ? failures - ack_failures : 0;
	unsigned fin = finished >= ack_finished ? finished - ack_finished : 0;

	/* Halting never waits for the soak time. */
	if (g->acceptable_bp && fin >= (g->min_finished ? g->min_finished : 1)) {
		double lo = ota_rollout_wilson_lower(f, fin, g->confidence_pct);
		if (lo * OTA_RO_BP > g->acceptable_bp) {
			ota_say(
			    why, whylen,
			    "statistical halt in stage %u: %u of %u finished devices of stages 1 "
			    "to %u failed; the failure rate is above %.2f%% with %u%% confidence "
			    "(Wilson lower bound %.2f%%)",
			    stage + 1, f, fin, stage + 1, g->acceptable_bp / 100.0,
			    g->confidence_pct, lo * 100);
			return OTA_V_HALT;
		}
	} else if (fin >= (g->min_finished ? g->min_finished : 1) &&
	           (uint64_t)f * 100 > (uint64_t)g->failure_pct * fin) {
		ota_say(why, whylen,
		        "failure threshold passed in stage %u: %u of %u finished devices of stages "
		        "1 to %u failed (more than %u%%)",
		        stage + 1, f, fin, stage + 1, g->failure_pct);
		return OTA_V_HALT;
	}
	/* Health after the confirm: regressions over every covered device (a regression cannot be
	 * undone, so passing the share ends the stage's chance). */
	const struct ota_rollout_post_confirm *pc = &s->post[stage];
	if (pc->on && c->regressed &&
	    (uint64_t)c->regressed * 100 > (uint64_t)pc->max_pct * total) {
		ota_say(why, whylen,
		        "post-confirm regression in stage %u: %u of %u covered devices of stages 1 "
		        "to %u regressed after the confirm (more than %u%%)",
		        stage + 1, c->regressed, total, stage + 1, pc->max_pct);
		return OTA_V_HALT;
	}
	/* A stage covering fewer devices than min_finished needs them all, not more. */
	unsigned need = g->min_finished < total ? g->min_finished : total;
	if (now - stage_started < (int64_t)g->soak_s || finished < need)
		return OTA_V_HOLD;
	/* ... and its latest confirm soaked that long. */
	if (pc->on && c->last_confirmed_at && now - c->last_confirmed_at < (int64_t)pc->soak_s)
		return OTA_V_HOLD;
	if ((uint64_t)succeeded * 100 < (uint64_t)g->success_pct * total)
		return OTA_V_HOLD;
	if (stage + 1 == s->nstages) {
		if (open)
			return OTA_V_HOLD;
		ota_say(why, whylen,
		        "completed: %u of %u covered devices succeeded, %u failed, %u skipped, %u "
		        "unreachable",
		        succeeded, total, failures, c->n[OTA_MS_SKIPPED], c->unreachable);
		return OTA_V_COMPLETE;
	}
	ota_say(why, whylen,
	        "stage %u succeeded: %u of %u covered devices (%u still updating or to join, %u "
	        "skipped, %u unreachable)",
	        stage + 1, succeeded, total, open, c->n[OTA_MS_SKIPPED], c->unreachable);
	return g->auto_advance ? OTA_V_ADVANCE : OTA_V_WAIT_APPROVAL;
}

bool ota_rollout_health_regressed(const struct ota_member_health *h)
{
	return h->watchdog_resets > 0 || h->failed_checks > 0;
}

unsigned ota_rollout_health_soak(const struct ota_rollout_spec *s, unsigned stage)
{
	unsigned soak = 0;
	if (stage < s->nstages && s->post[stage].on)
		return s->post[stage].soak_s;
	for (unsigned i = 0; i < s->nstages; i++)
		if (s->post[i].on && s->post[i].soak_s > soak)
			soak = s->post[i].soak_s;
	return soak;
}
