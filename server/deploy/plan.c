/*
 * deploy/plan.c - the pure half of a rollout plan (plan.h): each device classified as the
 * engine would at its check-ins (target filter, membership stage, life cycle, eligibility),
 * tallies per stage by hardware variant, version and tag, the maintenance windows ahead from
 * the time-zone database, and the duration estimate (docs/rollouts.md gives its formula).
 */
#include "deploy/plan.h"

#include "deploy/deploy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

static const char *const skip_names[OTA_PS__COUNT] = {
    "decommissioned", "pending_admission", "rejected",           "no_report",
    "wrong_variant",  "below_floor",       "already_on_version",
};

const char *ota_plan_skip_name(enum ota_plan_skip s)
{
	return (unsigned)s < OTA_PS__COUNT ? skip_names[s] : "unknown";
}

static void warn(struct ota_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct ota_plan *p, const char *fmt, ...)
{
	va_list ap;
	if (p->nwarnings >= OTA_PLAN_MAX_WARNINGS)
		return;
	va_start(ap, fmt);
	vsnprintf(p->warnings[p->nwarnings++], sizeof(p->warnings[0]), fmt, ap);
	va_end(ap);
}

/* ---- membership ---- */

/*
 * ota_rollout_bucket() for many devices of one rollout: the same HMAC-SHA-256 (RFC 2104 over
 * SHA-256 with the 32-byte key), its inner and outer key blocks absorbed once, so a device
 * costs two SHA-256 finishes instead of a fresh HMAC context (about ten times faster; the unit
 * tests check that both give the same bucket).
 */
struct ota_plan_hmac {
	EVP_MD *md;
	EVP_MD_CTX *inner, *outer, *tmp;
};

static void hmac_free(struct ota_plan_hmac *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->inner);
	EVP_MD_CTX_free(h->outer);
	EVP_MD_CTX_free(h->tmp);
	EVP_MD_free(h->md);
	free(h);
}

static struct ota_plan_hmac *hmac_new(const uint8_t key[32])
{
	struct ota_plan_hmac *h = calloc(1, sizeof(*h));
	unsigned char ipad[64], opad[64];

	if (!h)
		return NULL;
	memset(ipad, 0x36, sizeof(ipad));
	memset(opad, 0x5c, sizeof(opad));
	for (unsigned i = 0; i < 32; i++) {
		ipad[i] ^= key[i];
		opad[i] ^= key[i];
	}
	if (!(h->md = EVP_MD_fetch(NULL, "SHA256", NULL)) || !(h->inner = EVP_MD_CTX_new()) ||
	    !(h->outer = EVP_MD_CTX_new()) || !(h->tmp = EVP_MD_CTX_new()) ||
	    !EVP_DigestInit_ex(h->inner, h->md, NULL) ||
	    !EVP_DigestUpdate(h->inner, ipad, sizeof(ipad)) ||
	    !EVP_DigestInit_ex(h->outer, h->md, NULL) ||
	    !EVP_DigestUpdate(h->outer, opad, sizeof(opad))) {
		hmac_free(h);
		return NULL;
	}
	return h;
}

static unsigned bucket(struct ota_plan *p, const char *device_id)
{
	struct ota_plan_hmac *h = p->hmac;
	unsigned char ih[EVP_MAX_MD_SIZE], mac[EVP_MAX_MD_SIZE];
	unsigned il = 0, ml = 0;
	size_t rl = strlen(p->rollout_id), dl = strlen(device_id);

	if (rl >= OTA_RO_ID_MAX || dl > OTA_ID_MAX)
		return OTA_RO_BP - 1; /* as ota_rollout_bucket: not a valid id, last everywhere */
	if (!EVP_MD_CTX_copy_ex(h->tmp, h->inner) ||
	    !EVP_DigestUpdate(h->tmp, p->rollout_id, rl + 1) || /* the id and its NUL */
	    !EVP_DigestUpdate(h->tmp, device_id, dl) || !EVP_DigestFinal_ex(h->tmp, ih, &il) ||
	    !EVP_MD_CTX_copy_ex(h->tmp, h->outer) || !EVP_DigestUpdate(h->tmp, ih, il) ||
	    !EVP_DigestFinal_ex(h->tmp, mac, &ml) || ml < 4)
		return ota_rollout_bucket(p->key, p->rollout_id, device_id);
	uint32_t v =
	    (uint32_t)mac[0] << 24 | (uint32_t)mac[1] << 16 | (uint32_t)mac[2] << 8 | mac[3];
	return v % OTA_RO_BP;
}

unsigned ota_plan_bucket(struct ota_plan *p, const char *device_id)
{
	return bucket(p, device_id);
}

/* ---- breakdowns: value -> devices per stage, at most OTA_PLAN_MAX_KEYS values ---- */

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void tally(struct ota_plan_breakdown *b, const char *key, unsigned stage)
{
	const unsigned nslots = sizeof(b->slots) / sizeof(b->slots[0]);
	unsigned i = fnv1a(key) % nslots;

	for (; b->slots[i]; i = (i + 1) % nslots) {
		struct ota_plan_key *k = &b->keys[b->slots[i] - 1];
		if (strcmp(k->key, key) == 0) {
			k->n[stage]++;
			return;
		}
	}
	if (b->nkeys >= OTA_PLAN_MAX_KEYS) {
		b->other[stage]++;
		return;
	}
	struct ota_plan_key *k = &b->keys[b->nkeys];
	memset(k, 0, sizeof(*k));
	snprintf(k->key, sizeof(k->key), "%s", key);
	k->n[stage] = 1;
	b->slots[i] = ++b->nkeys;
}

struct ota_plan *ota_plan_new(const struct ota_rollout_spec *s, const struct ota_release *rel,
                              const char *rollout_id, const uint8_t key[32], unsigned poll_interval)
{
	struct ota_plan *p = calloc(1, sizeof(*p));
	struct ota_plan_breakdown *b[] = {&p->by_hw, &p->by_version, &p->by_tag, &p->by_scope};

	if (!p)
		return NULL;
	for (unsigned i = 0; i < 4; i++) {
		b[i]->keys = calloc(OTA_PLAN_MAX_KEYS, sizeof(*b[i]->keys));
		if (!b[i]->keys) {
			ota_plan_free(p);
			return NULL;
		}
	}
	p->spec = *s;
	p->release = *rel;
	snprintf(p->rollout_id, sizeof(p->rollout_id), "%s", rollout_id);
	memcpy(p->key, key, sizeof(p->key));
	p->poll_interval = poll_interval;
	if (!(p->hmac = hmac_new(key))) {
		ota_plan_free(p);
		return NULL;
	}
	return p;
}

void ota_plan_free(struct ota_plan *p)
{
	if (!p)
		return;
	free(p->by_hw.keys);
	free(p->by_version.keys);
	free(p->by_tag.keys);
	free(p->by_scope.keys);
	hmac_free(p->hmac);
	free(p);
}

/* Eligibility: the deployment service's one rule (ota_deploy_eligible), as a plan's reason. */
static bool plan_eligible(const struct ota_release *rel, const struct ota_plan_device *d,
                          enum ota_plan_skip *why, char *detail, size_t dlen)
{
	struct ota_device_facts f = {.known = true,
	                             .hw_variant = d->hw_variant,
	                             .version = d->version,
	                             .security_floor = d->security_floor};
	switch (ota_deploy_eligible(rel, &f, detail, dlen)) {
	case OTA_ELIGIBLE:
		return true;
	case OTA_INELIGIBLE_HW_VARIANT:
		*why = OTA_PS_WRONG_VARIANT;
		return false;
	case OTA_INELIGIBLE_BELOW_FLOOR:
		*why = OTA_PS_BELOW_FLOOR;
		return false;
	case OTA_INELIGIBLE_SAME_VERSION:
		*why = OTA_PS_ALREADY_ON_VERSION;
		return false;
	case OTA_INELIGIBLE_UNKNOWN:
		break;
	}
	*why = OTA_PS_NO_REPORT;
	return false;
}

static void skip(struct ota_plan *p, const struct ota_plan_device *d, enum ota_plan_skip why,
                 const char *detail)
{
	p->skipped[why]++;
	if (p->nskipped_list >= OTA_PLAN_SKIP_LIST)
		return;
	struct ota_plan_skipped *k = &p->skipped_list[p->nskipped_list++];
	snprintf(k->device_id, sizeof(k->device_id), "%s", d->id);
	k->why = why;
	snprintf(k->detail, sizeof(k->detail), "%s", detail);
}

void ota_plan_add(struct ota_plan *p, const struct ota_plan_device *d)
{
	const struct ota_rollout_spec *s = &p->spec;
	char detail[96] = "";
	enum ota_plan_skip why;

	p->considered++;
	/* The target filter first, over what is known of the device: a device the rollout does
	 * not aim at is no skip. */
	struct ota_rollout_device rd = {
	    .id = d->id,
	    .hw_variant = d->hw_variant,
	    .version = d->version,
	    .security_floor = d->security_floor,
	    .ntags = d->ntags,
	    .tags = d->tags,
	};
	/* Of a device that never checked in only the tags are known: they still decide. */
	if (d->known_state ? !ota_rollout_matches(s, &rd, NULL, 0)
	                   : !ota_rollout_tags_match(s, &rd, NULL, 0)) {
		p->not_targeted++;
		return;
	}
	p->targeted++;
	if (strcmp(d->status, "decommissioned") == 0) {
		skip(p, d, OTA_PS_DECOMMISSIONED, "decommissioned");
		return;
	}
	if (strcmp(d->admission, "pending") == 0) {
		skip(p, d, OTA_PS_PENDING_ADMISSION, "waits for admission");
		return;
	}
	if (strcmp(d->admission, "rejected") == 0) {
		skip(p, d, OTA_PS_REJECTED, "admission rejected");
		return;
	}
	if (!d->known_state) {
		skip(p, d, OTA_PS_NO_REPORT, "has not checked in yet");
		return;
	}
	if (!plan_eligible(&p->release, d, &why, detail, sizeof(detail))) {
		skip(p, d, why, detail);
		return;
	}
	int stage = ota_rollout_stage_of(s, bucket(p, d->id));
	if (stage < 0) {
		p->not_targeted++; /* past the last stage's percentage: never taken */
		p->targeted--;
		return;
	}
	p->covered++;
	p->stages[stage].devices++;
	tally(&p->by_hw, d->hw_variant, (unsigned)stage);
	tally(&p->by_version, d->version, (unsigned)stage);
	size_t kl = strlen(s->budget_tag_key);
	bool scoped = false;
	for (unsigned i = 0; i < d->ntags; i++) {
		tally(&p->by_tag, d->tags[i], (unsigned)stage);
		/* The engine's budget scope: the first tag "key=..." of the per-tag key. */
		if (kl && !scoped && strncmp(d->tags[i], s->budget_tag_key, kl) == 0 &&
		    d->tags[i][kl] == '=') {
			tally(&p->by_scope, d->tags[i], (unsigned)stage);
			scoped = true;
		}
	}
}

void ota_plan_add_cb(void *ctx, const struct ota_plan_device *d)
{
	ota_plan_add(ctx, d);
}

/* ---- estimate ---- */

/*
 * How many of a stage's devices may update at once: the overall budget, and with a per-tag
 * budget max_per_tag for each value of its key the stage's devices carry (devices without the
 * key are not held by it).
 */
static unsigned concurrency(const struct ota_plan *p, unsigned stage)
{
	const struct ota_rollout_spec *s = &p->spec;
	uint64_t c = p->stages[stage].devices;

	if (s->max_active && s->max_active < c)
		c = s->max_active;
	if (s->max_active_per_tag) {
		uint64_t scoped = p->by_scope.other[stage], values = p->by_scope.other[stage];
		for (unsigned i = 0; i < p->by_scope.nkeys; i++) {
			unsigned n = p->by_scope.keys[i].n[stage];
			scoped += n;
			values += n > 0;
		}
		uint64_t cap = values * s->max_active_per_tag + (p->stages[stage].devices - scoped);
		if (cap < c)
			c = cap;
	}
	return (unsigned)c;
}

/* The UTC instant of local time `local` (seconds as if UTC) in zone tz. */
static enum ota_err local_to_utc(const char *tz, int64_t local, int64_t *utc)
{
	int32_t off;
	enum ota_err rc = ota_tz_offset(tz, local, &off);
	if (rc == OTA_OK)
		rc = ota_tz_offset(tz, local - off, &off);
	*utc = local - off;
	return rc;
}

static enum ota_err windows(struct ota_plan *p, int64_t now)
{
	const struct ota_rollout_spec *s = &p->spec;
	int32_t off;

	if (!s->window_days)
		return OTA_OK;
	enum ota_err rc = ota_tz_offset(s->window_tz, now, &off);
	if (rc != OTA_OK)
		return rc;
	int64_t local = now + off;
	int64_t today = (local >= 0 ? local / 86400 : -((-local + 86399) / 86400));
	int64_t end = now + (int64_t)OTA_PLAN_WINDOW_DAYS * 86400;
	/* A window lasts up to a week: start a week back to list the one open now. */
	for (int64_t day = today - 7; day <= today + OTA_PLAN_WINDOW_DAYS; day++) {
		int dow = (int)(((day + 3) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
		int64_t opens;
		if (!(s->window_days & (1u << dow)))
			continue;
		rc =
		    local_to_utc(s->window_tz, day * 86400 + (int64_t)s->window_start * 60, &opens);
		if (rc != OTA_OK)
			return rc;
		int64_t closes = opens + (int64_t)s->window_duration * 60;
		if (closes <= now || opens >= end || p->nwindows >= OTA_PLAN_MAX_WINDOWS)
			continue;
		p->windows[p->nwindows++] = (struct ota_plan_window){opens, closes};
	}
	return OTA_OK;
}

enum ota_err ota_plan_finish(struct ota_plan *p, int64_t now)
{
	const struct ota_rollout_spec *s = &p->spec;
	unsigned cum = 0;

	for (unsigned i = 0; i < s->nstages; i++) {
		struct ota_plan_stage *g = &p->stages[i];
		cum += g->devices;
		g->cumulative = cum;
		g->concurrency = concurrency(p, i);
		g->waves = g->concurrency ? (g->devices + g->concurrency - 1) / g->concurrency : 0;
		g->estimate_s = (int64_t)g->waves * p->poll_interval;
		if (g->estimate_s < (int64_t)s->stages[i].soak_s)
			g->estimate_s = s->stages[i].soak_s;
		if (g->devices == 0)
			warn(p, "stage %u takes no device", i + 1);
		else if (g->devices < s->stages[i].min_finished)
			warn(p,
			     "stage %u takes %u devices but needs %u finished to be judged: it "
			     "will not advance by itself",
			     i + 1, g->devices, s->stages[i].min_finished);
	}
	if (p->targeted && p->covered == 0)
		warn(p, "every targeted device would be skipped");
	return windows(p, now);
}
