/*
 * rollout/quiet.c - the devices a set of running rollouts leaves alone (quiet.h).
 */
#include "rollout/quiet.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#define WAYS 4

struct slot {
	uint64_t key; /* 0: empty */
	int64_t until;
};

struct ota_quiet {
	pthread_mutex_t mu;
	struct slot *slots; /* nb buckets of WAYS */
	size_t nb;
	size_t pushed; /* entries in use pushed out since the last growth */
};

static atomic_uint_fast64_t n_skipped, n_walked;

/* The digest's key: random per process, so that no device can pick a key another one has. */
static unsigned char secret[32];
static bool secret_ok;
static pthread_once_t secret_once = PTHREAD_ONCE_INIT;

static void secret_init(void)
{
	secret_ok = RAND_bytes(secret, sizeof(secret)) == 1;
}

static size_t buckets_for(size_t entries)
{
	size_t nb = OTA_QUIET_MIN_ENTRIES / WAYS;
	while (nb * WAYS < entries && nb * WAYS < OTA_QUIET_MAX_ENTRIES)
		nb *= 2;
	return nb;
}

struct ota_quiet *ota_quiet_new(size_t entries)
{
	struct ota_quiet *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->nb = buckets_for(entries);
	q->slots = calloc(q->nb * WAYS, sizeof(*q->slots));
	if (!q->slots) {
		free(q);
		return NULL;
	}
	pthread_mutex_init(&q->mu, NULL);
	return q;
}

void ota_quiet_free(struct ota_quiet *q)
{
	if (!q)
		return;
	pthread_mutex_destroy(&q->mu);
	free(q->slots);
	free(q);
}

size_t ota_quiet_entries(struct ota_quiet *q)
{
	pthread_mutex_lock(&q->mu);
	size_t n = q->nb * WAYS;
	pthread_mutex_unlock(&q->mu);
	return n;
}

static bool put(char *buf, size_t cap, size_t *len, const void *p, size_t n)
{
	if (n > cap - *len)
		return false;
	memcpy(buf + *len, p, n);
	*len += n;
	return true;
}

uint64_t ota_quiet_key(const struct ota_rollout_device *d)
{
	char buf[512];
	size_t len = 0;
	unsigned char md[SHA256_DIGEST_LENGTH];
	unsigned char floor[4] = {
	    (unsigned char)(d->security_floor >> 24), (unsigned char)(d->security_floor >> 16),
	    (unsigned char)(d->security_floor >> 8), (unsigned char)d->security_floor};

	pthread_once(&secret_once, secret_init);
	if (!secret_ok)
		return 0;
	/* Each string with its terminating NUL, so that no two devices' fields run together. */
	bool ok = put(buf, sizeof(buf), &len, secret, sizeof(secret)) &&
	          put(buf, sizeof(buf), &len, d->id, strlen(d->id) + 1) &&
	          put(buf, sizeof(buf), &len, d->hw_variant, strlen(d->hw_variant) + 1) &&
	          put(buf, sizeof(buf), &len, d->version, strlen(d->version) + 1) &&
	          put(buf, sizeof(buf), &len, floor, sizeof(floor));
	if (!ok)
		return 0;
	SHA256((const unsigned char *)buf, len, md);
	uint64_t k = 0;
	for (int i = 0; i < 8; i++)
		k = k << 8 | md[i];
	return k ? k : 1;
}

static struct slot *bucket(struct ota_quiet *q, uint64_t key)
{
	return &q->slots[(key & (q->nb - 1)) * WAYS];
}

bool ota_quiet_now(struct ota_quiet *q, uint64_t key, int64_t now)
{
	bool quiet = false;

	if (key) {
		pthread_mutex_lock(&q->mu);
		struct slot *b = bucket(q, key);
		for (int i = 0; i < WAYS && !quiet; i++)
			quiet = b[i].key == key && now < b[i].until;
		pthread_mutex_unlock(&q->mu);
	}
	atomic_fetch_add_explicit(quiet ? &n_skipped : &n_walked, 1, memory_order_relaxed);
	return quiet;
}

/* Into its bucket: its own slot, else an empty or lapsed one, else the one its key picks. */
static bool place(struct slot *b, uint64_t key, int64_t until, int64_t now)
{
	int free_at = -1;
	for (int i = 0; i < WAYS; i++) {
		if (b[i].key == key) {
			b[i].until = until;
			return true;
		}
		if (free_at < 0 && (b[i].key == 0 || b[i].until <= now))
			free_at = i;
	}
	bool pushed = free_at < 0;
	if (pushed)
		free_at = (int)(key >> 62);
	b[free_at] = (struct slot){.key = key, .until = until};
	return !pushed;
}

/* Twice the buckets, the entries in use kept. */
static void grow(struct ota_quiet *q, int64_t now)
{
	size_t nb = q->nb * 2;
	struct slot *old = q->slots, *s = calloc(nb * WAYS, sizeof(*s));
	if (!s)
		return; /* stays as it is: only slower */
	size_t onb = q->nb;
	q->slots = s;
	q->nb = nb;
	for (size_t i = 0; i < onb * WAYS; i++)
		if (old[i].key && old[i].until > now)
			place(bucket(q, old[i].key), old[i].key, old[i].until, now);
	free(old);
}

void ota_quiet_keep(struct ota_quiet *q, uint64_t key, int64_t now, int64_t until)
{
	if (!key || until <= now)
		return;
	pthread_mutex_lock(&q->mu);
	if (!place(bucket(q, key), key, until, now) && ++q->pushed > q->nb &&
	    q->nb * WAYS < OTA_QUIET_MAX_ENTRIES) {
		q->pushed = 0;
		grow(q, now);
	}
	pthread_mutex_unlock(&q->mu);
}

void ota_quiet_counts(uint64_t *skipped, uint64_t *walked)
{
	*skipped = atomic_load_explicit(&n_skipped, memory_order_relaxed);
	*walked = atomic_load_explicit(&n_walked, memory_order_relaxed);
}
