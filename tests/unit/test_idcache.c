/*
 * test_idcache.c - the verified-chain cache (auth/idcache.h): a chain put is found with its
 * names until its notAfter and not after it, clear forgets everything, the memory is bounded
 * (a full set forgets its least recently used entry, never a recently used one), a cache of
 * size 0 holds nothing, and concurrent use from threads keeps every answer whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "auth/idcache.h"

/* A key whose set index (its first 8 bytes) is `set` and whose tail is `tag`. */
static void key_of(unsigned char key[32], uint64_t set, unsigned tag)
{
	memset(key, 0, 32);
	memcpy(key, &set, sizeof(set));
	memcpy(key + 28, &tag, sizeof(tag));
}

static struct ota_idcache_id id_of(const char *cn, const char *ou)
{
	struct ota_idcache_id id;

	snprintf(id.cn, sizeof(id.cn), "%s", cn);
	snprintf(id.ou, sizeof(id.ou), "%s", ou);
	return id;
}

static void found_until_not_after(void **state)
{
	struct ota_idcache *c;
	unsigned char k[32], other[32];
	struct ota_idcache_id got, id = id_of("device-0001", "");
	uint64_t hits, misses;

	(void)state;
	assert_int_equal(ota_idcache_new(64, &c), OTA_OK);
	key_of(k, 7, 1);
	key_of(other, 7, 2);
	assert_false(ota_idcache_get(c, k, 1000, &got));
	ota_idcache_put(c, k, 2000, &id);
	assert_true(ota_idcache_get(c, k, 1999, &got));
	assert_string_equal(got.cn, "device-0001");
	assert_string_equal(got.ou, "");
	assert_false(ota_idcache_get(c, other, 1000, &got)); /* same set, other chain */
	assert_false(ota_idcache_get(c, k, 2000, &got));     /* expired: dropped */
	assert_false(ota_idcache_get(c, k, 1000, &got));     /* and not back with the clock */
	ota_idcache_stats(c, &hits, &misses);
	assert_int_equal(hits, 1);
	assert_int_equal(misses, 4);
	ota_idcache_free(c);
}

static void clear_forgets_everything(void **state)
{
	struct ota_idcache *c;
	unsigned char k[32];
	struct ota_idcache_id got, id = id_of("alice", "admin");

	(void)state;
	assert_int_equal(ota_idcache_new(64, &c), OTA_OK);
	for (unsigned i = 0; i < 16; i++) {
		key_of(k, i, i);
		ota_idcache_put(c, k, 5000, &id);
	}
	key_of(k, 3, 3);
	assert_true(ota_idcache_get(c, k, 10, &got));
	assert_string_equal(got.ou, "admin");
	ota_idcache_clear(c);
	for (unsigned i = 0; i < 16; i++) {
		key_of(k, i, i);
		assert_false(ota_idcache_get(c, k, 10, &got));
	}
	ota_idcache_free(c);
}

static void bounded_least_recently_used_goes(void **state)
{
	struct ota_idcache *c;
	unsigned char k[32];
	struct ota_idcache_id got, id = id_of("d", "");

	(void)state;
	/* 8 entries: two sets of four. Five chains of one set: the least recently used goes. */
	assert_int_equal(ota_idcache_new(8, &c), OTA_OK);
	for (unsigned t = 0; t < 4; t++) {
		key_of(k, 0, t);
		ota_idcache_put(c, k, 5000, &id);
	}
	key_of(k, 0, 0);
	assert_true(ota_idcache_get(c, k, 10, &got)); /* 0 used: 1 is now the oldest */
	key_of(k, 0, 4);
	ota_idcache_put(c, k, 5000, &id);
	unsigned held = 0;
	for (unsigned t = 0; t < 5; t++) {
		key_of(k, 0, t);
		held += ota_idcache_get(c, k, 10, &got);
	}
	assert_int_equal(held, 4);
	key_of(k, 0, 1);
	assert_false(ota_idcache_get(c, k, 10, &got));
	key_of(k, 0, 0);
	assert_true(ota_idcache_get(c, k, 10, &got));
	/* Putting a chain again replaces its entry, not another one. */
	key_of(k, 0, 4);
	ota_idcache_put(c, k, 6000, &id);
	held = 0;
	for (unsigned t = 0; t < 5; t++) {
		key_of(k, 0, t);
		held += ota_idcache_get(c, k, 10, &got);
	}
	assert_int_equal(held, 4);
	/* Thousands of chains never hold more than the 8 entries. */
	for (unsigned t = 0; t < 5000; t++) {
		key_of(k, t * 2654435761u, t);
		ota_idcache_put(c, k, 5000, &id);
	}
	held = 0;
	for (unsigned t = 0; t < 5000; t++) {
		key_of(k, t * 2654435761u, t);
		held += ota_idcache_get(c, k, 10, &got);
	}
	assert_true(held <= 8);
	ota_idcache_free(c);
}

static void size_zero_holds_nothing(void **state)
{
	struct ota_idcache *c;
	unsigned char k[32];
	struct ota_idcache_id got, id = id_of("d", "");

	(void)state;
	assert_int_equal(ota_idcache_new(0, &c), OTA_OK);
	key_of(k, 1, 1);
	ota_idcache_put(c, k, 5000, &id);
	assert_false(ota_idcache_get(c, k, 10, &got));
	ota_idcache_clear(c);
	ota_idcache_free(c);
	ota_idcache_free(NULL);
}

/* Threads put and get chains of one small cache: an answer always carries the names its key
 * was put with (the key's tag is in the name), never a mix. */
static struct ota_idcache *shared;
static void *hammer(void *arg)
{
	unsigned base = (unsigned)(uintptr_t)arg, bad = 0;
	unsigned char k[32];
	struct ota_idcache_id got, id;
	char want[32];

	for (unsigned i = 0; i < 20000; i++) {
		unsigned t = base + i % 97;
		key_of(k, t % 5, t);
		snprintf(want, sizeof(want), "dev-%u", t);
		if (ota_idcache_get(shared, k, 10, &got)) {
			bad += strcmp(got.cn, want) != 0;
		} else {
			id = id_of(want, "");
			ota_idcache_put(shared, k, 5000, &id);
		}
		if (i % 5000 == 4999)
			ota_idcache_clear(shared);
	}
	return (void *)(uintptr_t)bad;
}

static void threads_get_whole_answers(void **state)
{
	pthread_t th[4];

	(void)state;
	assert_int_equal(ota_idcache_new(16, &shared), OTA_OK);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, (void *)(uintptr_t)(i * 50)),
		                 0);
	for (unsigned i = 0; i < 4; i++) {
		void *bad;
		assert_int_equal(pthread_join(th[i], &bad), 0);
		assert_int_equal((uintptr_t)bad, 0);
	}
	ota_idcache_free(shared);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(found_until_not_after),
	    cmocka_unit_test(clear_forgets_everything),
	    cmocka_unit_test(bounded_least_recently_used_goes),
	    cmocka_unit_test(size_zero_holds_nothing),
	    cmocka_unit_test(threads_get_whole_answers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
