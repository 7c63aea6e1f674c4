/*
 * auth/idcache.c - the verified-chain cache (see idcache.h): a set-associative table, 4 ways,
 * indexed by the chain digest's first bytes (a SHA-256: uniform), least recently used entry
 * replaced, under one mutex.
 */
#include "auth/idcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 4

struct slot {
	unsigned char key[32];
	bool used;
	int64_t not_after;
	uint64_t stamp; /* last use, for the replacement */
	struct ota_idcache_id id;
};

struct ota_idcache {
	pthread_mutex_t mu;
	size_t nsets; /* 0: holds nothing */
	uint64_t clock, hits, misses;
	struct slot *slots; /* nsets * WAYS */
};

enum ota_err ota_idcache_new(unsigned entries, struct ota_idcache **out)
{
	struct ota_idcache *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return OTA_ERR_NOMEM;
	c->nsets = ((size_t)entries + WAYS - 1) / WAYS;
	if (c->nsets) {
		c->slots = calloc(c->nsets * WAYS, sizeof(struct slot));
		if (!c->slots) {
			free(c);
			return OTA_ERR_NOMEM;
		}
	}
	pthread_mutex_init(&c->mu, NULL);
	*out = c;
	return OTA_OK;
}

void ota_idcache_free(struct ota_idcache *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->mu);
	free(c->slots);
	free(c);
}

static struct slot *set_of(struct ota_idcache *c, const unsigned char key[32])
{
	uint64_t h;

	memcpy(&h, key, sizeof(h));
	return &c->slots[(h % c->nsets) * WAYS];
}

bool ota_idcache_get(struct ota_idcache *c, const unsigned char key[32], int64_t now,
                     struct ota_idcache_id *out)
{
	bool found = false;

	if (!c->nsets)
		return false;
	pthread_mutex_lock(&c->mu);
	struct slot *s = set_of(c, key);
	for (int i = 0; i < WAYS; i++) {
		if (!s[i].used || memcmp(s[i].key, key, 32) != 0)
			continue;
		if (now >= s[i].not_after) {
			s[i].used = false; /* the chain expired: verified again, and refused */
			break;
		}
		s[i].stamp = ++c->clock;
		*out = s[i].id;
		found = true;
		break;
	}
	if (found)
		c->hits++;
	else
		c->misses++;
	pthread_mutex_unlock(&c->mu);
	return found;
}

void ota_idcache_put(struct ota_idcache *c, const unsigned char key[32], int64_t not_after,
                     const struct ota_idcache_id *id)
{
	if (!c->nsets)
		return;
	pthread_mutex_lock(&c->mu);
	struct slot *s = set_of(c, key), *victim = &s[0];
	for (int i = 0; i < WAYS; i++) {
		if (s[i].used && memcmp(s[i].key, key, 32) == 0) {
			victim = &s[i]; /* two connections verified it at once */
			break;
		}
		if (!s[i].used) {
			if (victim->used)
				victim = &s[i];
		} else if (victim->used && s[i].stamp < victim->stamp) {
			victim = &s[i];
		}
	}
	memcpy(victim->key, key, 32);
	victim->used = true;
	victim->not_after = not_after;
	victim->stamp = ++c->clock;
	victim->id = *id;
	pthread_mutex_unlock(&c->mu);
}

void ota_idcache_clear(struct ota_idcache *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	if (c->nsets)
		memset(c->slots, 0, c->nsets * WAYS * sizeof(struct slot));
	pthread_mutex_unlock(&c->mu);
}

void ota_idcache_stats(struct ota_idcache *c, uint64_t *hits, uint64_t *misses)
{
	pthread_mutex_lock(&c->mu);
	*hits = c->hits;
	*misses = c->misses;
	pthread_mutex_unlock(&c->mu);
}
