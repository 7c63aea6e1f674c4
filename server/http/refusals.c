/*
 * http/refusals.c - refusals counted per window (refusals.h): a small table of the window's
 * kinds under one mutex, per-reason counters for /metrics, and the window's summaries built
 * under the lock but appended to the audit log after it is released, so that a refusal flood
 * costs a counter increment per refusal and a few audit entries (and disk flushes) per window.
 */
#include "http/refusals.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit/audit.h"
#include "common/log.h"

#define COUNTERS 64         /* distinct (listener, reason) pairs; reasons are a fixed set */
#define OVERFLOW_KINDS 64   /* room for the "(other)" subject of each reason past max_kinds */
#define SUMMARY_BUDGET 3500 /* bytes of one summary's subject list (OTA_AUDIT_TEXT_MAX) */

struct counter {
	char listener[16];
	char reason[48];
	unsigned long long n;
};

struct kind {
	char listener[16];
	char action[32];
	char reason[48];
	char subject[160];
	char name[80];
	uint64_t count;   /* refusals of the window, the audited first one included */
	uint64_t counted; /* those not audited on their own: the summary's */
	int64_t first, last;
	bool done; /* emitted into a summary being built */
};

struct ota_refusals {
	pthread_mutex_t mu;
	struct ota_store *st;
	unsigned window_s, max_kinds, cap;
	int64_t start; /* of the open window; 0 before the first refusal */
	struct kind *k;
	unsigned n;
	bool overflow_said; /* the window's "table full" warning was logged */
	struct counter c[COUNTERS];
	unsigned nc;
	unsigned long long uncounted; /* refusals no kind could hold (never in practice) */
	atomic_ullong summaries;
};

static void copy(char *dst, size_t cap, const char *s)
{
	snprintf(dst, cap, "%s", s ? s : "");
}

enum ota_err ota_refusals_new(struct ota_store *st, unsigned window_s, unsigned max_kinds,
                              struct ota_refusals **out)
{
	struct ota_refusals *rf = calloc(1, sizeof(*rf));

	*out = NULL;
	if (!rf || window_s == 0 || max_kinds == 0)
		goto fail;
	rf->st = st;
	rf->window_s = window_s;
	rf->max_kinds = max_kinds;
	rf->cap = max_kinds + OVERFLOW_KINDS;
	rf->k = calloc(rf->cap, sizeof(*rf->k));
	if (!rf->k)
		goto fail;
	pthread_mutex_init(&rf->mu, NULL);
	*out = rf;
	return OTA_OK;
fail:
	if (rf)
		free(rf->k);
	free(rf);
	return OTA_ERR_NOMEM;
}

static struct kind *find(struct ota_refusals *rf, const char *listener, const char *action,
                         const char *reason, const char *subject)
{
	for (unsigned i = 0; i < rf->n; i++) {
		struct kind *k = &rf->k[i];
		if (strcmp(k->subject, subject) == 0 && strcmp(k->reason, reason) == 0 &&
		    strcmp(k->action, action) == 0 && strcmp(k->listener, listener) == 0)
			return k;
	}
	return NULL;
}

static struct kind *add(struct ota_refusals *rf, const struct ota_refusal *x, const char *subject,
                        int64_t now)
{
	struct kind *k = &rf->k[rf->n++];

	memset(k, 0, sizeof(*k));
	copy(k->listener, sizeof(k->listener), x->listener);
	copy(k->action, sizeof(k->action), x->action);
	copy(k->reason, sizeof(k->reason), x->reason);
	copy(k->subject, sizeof(k->subject), subject);
	copy(k->name, sizeof(k->name), x->name);
	k->first = now;
	return k;
}

static void count(struct ota_refusals *rf, const char *listener, const char *reason)
{
	for (unsigned i = 0; i < rf->nc; i++) {
		if (strcmp(rf->c[i].reason, reason) == 0 &&
		    strcmp(rf->c[i].listener, listener) == 0) {
			rf->c[i].n++;
			return;
		}
	}
	if (rf->nc == COUNTERS) {
		rf->uncounted++;
		return;
	}
	copy(rf->c[rf->nc].listener, sizeof(rf->c[0].listener), listener);
	copy(rf->c[rf->nc].reason, sizeof(rf->c[0].reason), reason);
	rf->c[rf->nc++].n = 1;
}

bool ota_refusals_record(struct ota_refusals *rf, const struct ota_refusal *x, int64_t now)
{
	const char *subject = x->subject && x->subject[0] ? x->subject : "(unknown)";
	bool fresh = false;

	pthread_mutex_lock(&rf->mu);
	if (!rf->start)
		rf->start = now;
	count(rf, x->listener, x->reason);
	if (!x->action) {
		pthread_mutex_unlock(&rf->mu);
		return false; /* counted on /metrics only */
	}
	struct kind *k = find(rf, x->listener, x->action, x->reason, subject);
	if (!k && rf->n < rf->max_kinds) {
		k = add(rf, x, subject, now);
		fresh = true; /* audited on its own by the caller */
	} else if (!k) {
		if (!rf->overflow_said) {
			rf->overflow_said = true;
			log_warn(
			    "refusals: more than %u kinds in this window: the rest are counted "
			    "as subject (other) of their reason",
			    rf->max_kinds);
		}
		k = find(rf, x->listener, x->action, x->reason, "(other)");
		if (!k && rf->n < rf->cap)
			k = add(rf, x, "(other)", now);
	}
	if (k) {
		k->count++;
		if (!fresh)
			k->counted++;
		k->last = now;
		if (!fresh && x->name && x->name[0])
			copy(k->name, sizeof(k->name), x->name); /* the latest name shown */
	} else {
		rf->uncounted++;
	}
	pthread_mutex_unlock(&rf->mu);
	return fresh;
}

/* The summary of the kinds of one (listener, action, reason) from `from` on; marks them done. */
static char *summary(struct ota_refusals *rf, struct kind *from, uint64_t *total)
{
	json_t *j = json_object(), *subjects = json_array();
	uint64_t left_n = 0, left_count = 0;
	size_t budget = 0;
	char *text = NULL;

	*total = 0;
	if (!j || !subjects)
		goto out;
	for (unsigned i = (unsigned)(from - rf->k); i < rf->n; i++) {
		struct kind *k = &rf->k[i];
		if (k->done || !k->counted || strcmp(k->listener, from->listener) != 0 ||
		    strcmp(k->action, from->action) != 0 || strcmp(k->reason, from->reason) != 0)
			continue;
		k->done = true;
		*total += k->counted;
		size_t need = strlen(k->subject) + strlen(k->name) + 96;
		if (budget + need > SUMMARY_BUDGET) {
			left_n++;
			left_count += k->counted;
			continue;
		}
		budget += need;
		json_array_append_new(subjects,
		                      json_pack("{s:s, s:s?, s:I, s:I, s:I}", "subject", k->subject,
		                                "name", k->name[0] ? k->name : NULL, "count",
		                                (json_int_t)k->counted, "first",
		                                (json_int_t)k->first, "last", (json_int_t)k->last));
	}
	json_object_set_new(j, "listener", json_string(from->listener));
	json_object_set_new(j, "action", json_string(from->action));
	json_object_set_new(j, "reason", json_string(from->reason));
	json_object_set_new(j, "window_start", json_integer(rf->start));
	json_object_set_new(j, "window_seconds", json_integer(rf->window_s));
	json_object_set_new(j, "count", json_integer((json_int_t)*total));
	json_object_set(j, "subjects", subjects);
	json_object_set_new(j, "subjects_left_out", json_integer((json_int_t)left_n));
	json_object_set_new(j, "count_left_out", json_integer((json_int_t)left_count));
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
out:
	json_decref(subjects);
	json_decref(j);
	return text;
}

struct pending {
	char *after;
	char detail[200];
	char reason[48];
};

void ota_refusals_tick(struct ota_refusals *rf, int64_t now)
{
	struct pending *p = NULL;
	unsigned np = 0;

	pthread_mutex_lock(&rf->mu);
	if (!rf->start || now < rf->start + (int64_t)rf->window_s) {
		pthread_mutex_unlock(&rf->mu);
		return;
	}
	p = calloc(rf->n ? rf->n : 1, sizeof(*p));
	for (unsigned i = 0; p && i < rf->n; i++) {
		struct kind *k = &rf->k[i];
		if (k->done || !k->counted)
			continue;
		uint64_t total = 0;
		char *after = summary(rf, k, &total);
		if (!after)
			continue;
		p[np].after = after;
		copy(p[np].reason, sizeof(p[np].reason), k->reason);
		snprintf(p[np].detail, sizeof(p[np].detail),
		         "%llu more refused (%s) on the %s listener in the %u s window",
		         (unsigned long long)total, k->reason, k->listener, rf->window_s);
		np++;
	}
	/* The next window: kinds active in this one are not new in it (no entry of their own
	 * again); kinds idle for a whole window are forgotten. */
	unsigned kept = 0;
	for (unsigned i = 0; i < rf->n; i++) {
		if (!rf->k[i].count)
			continue;
		struct kind k = rf->k[i];
		k.count = k.counted = 0;
		k.done = false;
		rf->k[kept++] = k;
	}
	rf->n = kept;
	rf->start = kept ? now : 0;
	rf->overflow_said = false;
	pthread_mutex_unlock(&rf->mu);

	for (unsigned i = 0; i < np; i++) {
		struct ota_audit_entry e = {.actor = "otad",
		                            .role = "system",
		                            .action = "refusals.summary",
		                            .object = p[i].reason,
		                            .after = p[i].after,
		                            .detail = p[i].detail};
		if (ota_audit_append(rf->st, &e, now, NULL) != OTA_OK)
			log_err("refusals: cannot audit the window's summary of %s", p[i].reason);
		else
			atomic_fetch_add(&rf->summaries, 1);
		log_notice("refusals: %s", p[i].detail);
		free(p[i].after);
	}
	free(p);
}

void ota_refusals_free(struct ota_refusals *rf)
{
	if (!rf)
		return;
	if (rf->start)
		ota_refusals_tick(rf, rf->start + (int64_t)rf->window_s);
	pthread_mutex_destroy(&rf->mu);
	free(rf->k);
	free(rf);
}

void ota_refusals_metrics(struct ota_refusals *rf,
                          void (*out)(void *ctx, const char *fmt, ...)
                              __attribute__((format(printf, 2, 3))),
                          void *ctx)
{
	out(ctx, "# HELP ota_refused_total Refused connections and requests, by listener and "
	         "reason.\n# TYPE ota_refused_total counter\n");
	pthread_mutex_lock(&rf->mu);
	for (unsigned i = 0; i < rf->nc; i++)
		out(ctx, "ota_refused_total{listener=\"%s\",reason=\"%s\"} %llu\n",
		    rf->c[i].listener, rf->c[i].reason, rf->c[i].n);
	unsigned long long uncounted = rf->uncounted;
	pthread_mutex_unlock(&rf->mu);
	out(ctx,
	    "# HELP ota_refusals_uncounted_total Refusals past every bound of the window's table.\n"
	    "# TYPE ota_refusals_uncounted_total counter\nota_refusals_uncounted_total %llu\n",
	    uncounted);
	out(ctx,
	    "# HELP ota_refusal_summaries_total Audit entries summarising a window of refusals.\n"
	    "# TYPE ota_refusal_summaries_total counter\nota_refusal_summaries_total %llu\n",
	    ota_refusals_summaries(rf));
}

unsigned long long ota_refusals_summaries(struct ota_refusals *rf)
{
	return atomic_load(&rf->summaries);
}
