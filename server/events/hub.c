/*
 * events/hub.c - the audit head watcher: a thread that reads the head every
 * OTA_EVENTS_POLL_MS (one indexed read of the newest row), a condition variable for threads
 * that wait (webhook deliverers), and a list of subscribers (live streams) woken by callback.
 */
#include "events/hub.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "store/audit_store.h"

struct ota_events_sub {
	struct ota_events_sub *next;
	void (*wake)(void *ctx);
	void *ctx;
	uint64_t seen;
	bool parked;
	atomic_bool beat;
};

struct ota_events_hub {
	struct ota_store *st;
	unsigned heartbeat_s, max_streams, streams;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t head;
	bool closing, stop;
	struct ota_events_sub *subs;
};

static void deadline_in(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Wake the parked streams (the lock held): those past their seen, or all of them. */
static void wake_parked(struct ota_events_hub *h, bool all, bool beat)
{
	for (struct ota_events_sub *s = h->subs; s; s = s->next) {
		if (s->parked && (all || h->head > s->seen)) {
			s->parked = false;
			if (beat)
				atomic_store(&s->beat, true);
			s->wake(s->ctx);
		}
	}
}

static void *watch(void *arg)
{
	struct ota_events_hub *h = arg;
	struct timespec last_beat, now;

	clock_gettime(CLOCK_MONOTONIC, &last_beat);
	pthread_mutex_lock(&h->mu);
	while (!h->stop) {
		struct timespec ts;
		deadline_in(&ts, OTA_EVENTS_POLL_MS);
		pthread_cond_timedwait(&h->cv, &h->mu, &ts);
		if (h->stop)
			break;
		pthread_mutex_unlock(&h->mu);
		uint64_t seq = 0;
		char hash[OTA_HEX256];
		enum ota_err rc = ota_store_audit_head(h->st, &seq, hash);
		clock_gettime(CLOCK_MONOTONIC, &now);
		pthread_mutex_lock(&h->mu);
		if (rc == OTA_OK && seq > h->head) {
			h->head = seq;
			pthread_cond_broadcast(&h->cv);
			wake_parked(h, false, false);
		}
		if (now.tv_sec - last_beat.tv_sec >= (time_t)h->heartbeat_s) {
			last_beat = now;
			wake_parked(h, true, true);
		}
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

enum ota_err ota_events_hub_start(struct ota_store *st, unsigned heartbeat_s, unsigned max_streams,
                                  struct ota_events_hub **out)
{
	struct ota_events_hub *h = calloc(1, sizeof(*h));
	pthread_condattr_t ca;
	char hash[OTA_HEX256];

	*out = NULL;
	if (!h)
		return OTA_ERR_NOMEM;
	h->st = st;
	h->heartbeat_s = heartbeat_s ? heartbeat_s : 1;
	h->max_streams = max_streams;
	pthread_mutex_init(&h->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (ota_store_audit_head(st, &h->head, hash) != OTA_OK) {
		ota_events_hub_free(h);
		return OTA_ERR_DB;
	}
	if (pthread_create(&h->thread, NULL, watch, h) != 0) {
		ota_events_hub_free(h);
		return OTA_ERR_IO;
	}
	h->started = true;
	*out = h;
	return OTA_OK;
}

uint64_t ota_events_hub_head(struct ota_events_hub *h)
{
	pthread_mutex_lock(&h->mu);
	uint64_t v = h->head;
	pthread_mutex_unlock(&h->mu);
	return v;
}

uint64_t ota_events_hub_wait(struct ota_events_hub *h, uint64_t seen, unsigned timeout_ms)
{
	struct timespec ts;
	uint64_t v;

	deadline_in(&ts, timeout_ms);
	pthread_mutex_lock(&h->mu);
	while (h->head <= seen && !h->closing) {
		if (pthread_cond_timedwait(&h->cv, &h->mu, &ts) == ETIMEDOUT)
			break;
	}
	v = h->head;
	pthread_mutex_unlock(&h->mu);
	return v;
}

struct ota_events_sub *ota_events_hub_subscribe(struct ota_events_hub *h, void (*wake)(void *ctx),
                                                void *ctx, bool *busy)
{
	struct ota_events_sub *s = NULL;

	*busy = false;
	pthread_mutex_lock(&h->mu);
	if (h->closing || h->streams >= h->max_streams) {
		*busy = true;
	} else if ((s = calloc(1, sizeof(*s)))) {
		s->wake = wake;
		s->ctx = ctx;
		s->next = h->subs;
		h->subs = s;
		h->streams++;
	}
	pthread_mutex_unlock(&h->mu);
	return s;
}

void ota_events_hub_unsubscribe(struct ota_events_hub *h, struct ota_events_sub *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&h->mu);
	for (struct ota_events_sub **p = &h->subs; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			h->streams--;
			break;
		}
	}
	pthread_mutex_unlock(&h->mu);
	free(s);
}

bool ota_events_hub_park(struct ota_events_hub *h, struct ota_events_sub *s, uint64_t seen,
                         void (*park)(void *ctx), void *ctx)
{
	bool parked = false;

	pthread_mutex_lock(&h->mu);
	if (!h->closing && h->head <= seen) {
		s->seen = seen;
		s->parked = true;
		park(ctx);
		parked = true;
	}
	pthread_mutex_unlock(&h->mu);
	return parked;
}

bool ota_events_sub_heartbeat(struct ota_events_sub *s)
{
	return atomic_exchange(&s->beat, false);
}

bool ota_events_hub_closing(struct ota_events_hub *h)
{
	pthread_mutex_lock(&h->mu);
	bool v = h->closing;
	pthread_mutex_unlock(&h->mu);
	return v;
}

void ota_events_hub_close(struct ota_events_hub *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	h->closing = true;
	pthread_cond_broadcast(&h->cv);
	wake_parked(h, true, false);
	pthread_mutex_unlock(&h->mu);
}

void ota_events_hub_free(struct ota_events_hub *h)
{
	if (!h)
		return;
	ota_events_hub_close(h);
	if (h->started) {
		pthread_mutex_lock(&h->mu);
		h->stop = true;
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
		pthread_join(h->thread, NULL);
	}
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
}
