/*
 * test_audit_store.c - the audit log's rows behind store/audit_store.h, on a real temporary
 * SQLite file and without the audit module: the append hands the seal the place on the chain
 * and stores nothing when the seal fails, the head, checkpoints refused twice or for no entry,
 * query filters and pages, and the walk delivering each checkpoint after its entry within a
 * bounded seq range.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store_fixture.h"
#include "store/audit_store.h"
#include "store/store.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

struct fx {
	char dir[OTA_TEST_DIR_MAX];
	char path[OTA_TEST_PATH_MAX];
	struct ota_store *st;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || ota_test_store_open("auditstore", f->dir, f->path, &f->st) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (ota_test_store_close(f->dir, f->st) != 0)
		return -1;
	free(f);
	return 0;
}

/* A seal that records what it was given and makes the hash "<seq as 64 hex digits>". */
struct seal_log {
	uint64_t seq;
	char prev[OTA_HEX256];
	enum ota_err rc; /* what to return */
};

static enum ota_err test_seal(void *ctx, uint64_t seq, const char *prev, char hash[OTA_HEX256])
{
	struct seal_log *l = ctx;

	l->seq = seq;
	snprintf(l->prev, sizeof(l->prev), "%s", prev);
	snprintf(hash, OTA_HEX256, "%064llx", (unsigned long long)seq);
	return l->rc;
}

static void append(struct fx *f, const char *actor, const char *action, const char *device,
                   int64_t at)
{
	struct ota_store_audit_row r = {
	    .at = at, .actor = actor, .action = action, .device_id = device, .detail = "d"};
	struct seal_log l = {.rc = OTA_OK};
	uint64_t seq = 0;

	assert_int_equal(ota_store_audit_append(f->st, &r, test_seal, &l, &seq), OTA_OK);
	assert_int_equal(seq, l.seq);
}

static void checkpoint(struct fx *f, uint64_t seq)
{
	char hash[OTA_HEX256];

	snprintf(hash, sizeof(hash), "%064llx", (unsigned long long)seq);
	struct ota_store_audit_checkpoint c = {.seq = seq, .hash = hash, .at = 10, .sig = "c2ln"};
	assert_int_equal(ota_store_audit_checkpoint_add(f->st, &c), OTA_OK);
}

static void append_hands_the_seal_its_place(void **state)
{
	struct fx *f = *state;
	struct ota_store_audit_row r = {.at = 5, .actor = "admin", .action = "x"};
	struct ota_store_audit_row noactor = {.at = 5, .action = "x"};
	struct seal_log l = {.rc = OTA_OK};
	char hash[OTA_HEX256];
	uint64_t seq = 99;

	assert_int_equal(ota_store_audit_head(f->st, &seq, hash), OTA_OK);
	assert_int_equal(seq, 0);
	assert_string_equal(hash, ZERO_HASH);

	assert_int_equal(ota_store_audit_append(f->st, &r, test_seal, &l, &seq), OTA_OK);
	assert_int_equal(l.seq, 1);
	assert_string_equal(l.prev, ZERO_HASH);
	assert_int_equal(seq, 1);
	assert_int_equal(ota_store_audit_append(f->st, &r, test_seal, &l, NULL), OTA_OK);
	assert_int_equal(l.seq, 2);
	assert_string_equal(l.prev,
	                    "0000000000000000000000000000000000000000000000000000000000000001");
	assert_int_equal(ota_store_audit_head(f->st, &seq, hash), OTA_OK);
	assert_int_equal(seq, 2);
	assert_string_equal(hash,
	                    "0000000000000000000000000000000000000000000000000000000000000002");

	/* A failing seal: its error, nothing stored. A row without actor: refused. */
	l.rc = OTA_ERR_NOMEM;
	assert_int_equal(ota_store_audit_append(f->st, &r, test_seal, &l, NULL), OTA_ERR_NOMEM);
	l.rc = OTA_OK;
	assert_int_equal(ota_store_audit_append(f->st, &noactor, test_seal, &l, NULL),
	                 OTA_ERR_INVALID);
	assert_int_equal(ota_store_audit_head(f->st, &seq, hash), OTA_OK);
	assert_int_equal(seq, 2);

	/* Inside the caller's transaction: gone with its rollback, kept with its commit. */
	assert_int_equal(ota_store_tx_begin(f->st), OTA_OK);
	assert_int_equal(ota_store_audit_append(f->st, &r, test_seal, &l, &seq), OTA_OK);
	assert_int_equal(seq, 3);
	assert_int_equal(ota_store_tx_end(f->st, false), OTA_OK);
	assert_int_equal(ota_store_audit_head(f->st, &seq, hash), OTA_OK);
	assert_int_equal(seq, 2);
	assert_int_equal(ota_store_tx_begin(f->st), OTA_OK);
	assert_int_equal(ota_store_audit_append(f->st, &r, test_seal, &l, &seq), OTA_OK);
	assert_int_equal(ota_store_tx_end(f->st, true), OTA_OK);
	assert_int_equal(ota_store_audit_head(f->st, &seq, hash), OTA_OK);
	assert_int_equal(seq, 3);
}

static void checkpoints_once_and_of_an_entry(void **state)
{
	struct fx *f = *state;
	struct ota_store_audit_checkpoint none = {.seq = 9, .hash = "h", .at = 1, .sig = "s"};
	struct ota_store_audit_checkpoint nosig = {.seq = 1, .hash = "h", .at = 1};
	uint64_t latest = 99;

	assert_int_equal(ota_store_audit_checkpoint_latest(f->st, &latest), OTA_OK);
	assert_int_equal(latest, 0);
	append(f, "admin", "x", NULL, 1);
	append(f, "admin", "x", NULL, 2);
	checkpoint(f, 1);
	checkpoint(f, 2);
	assert_int_equal(ota_store_audit_checkpoint_latest(f->st, &latest), OTA_OK);
	assert_int_equal(latest, 2);
	none.seq = 2;
	assert_int_equal(ota_store_audit_checkpoint_add(f->st, &none), OTA_ERR_CONFLICT);
	none.seq = 9;
	assert_int_equal(ota_store_audit_checkpoint_add(f->st, &none), OTA_ERR_NOT_FOUND);
	assert_int_equal(ota_store_audit_checkpoint_add(f->st, &nosig), OTA_ERR_INVALID);
	assert_int_equal(ota_store_audit_checkpoint_latest(f->st, &latest), OTA_OK);
	assert_int_equal(latest, 2);
}

/* What a query or walk delivered: "e<seq>" and "c<seq>" in order, and when to stop. */
struct seen {
	char log[512];
	unsigned n, stop_at; /* stop_at: return non-zero at the n-th item (0: never) */
};

static int seen_item(struct seen *s, char kind, uint64_t seq)
{
	size_t len = strlen(s->log);

	snprintf(s->log + len, sizeof(s->log) - len, "%s%c%llu", len ? " " : "", kind,
	         (unsigned long long)seq);
	return ++s->n == s->stop_at;
}

static int seen_entry(void *ctx, const struct ota_store_audit_row *r)
{
	assert_non_null(r->actor);
	assert_non_null(r->hash);
	assert_non_null(r->prev);
	return seen_item(ctx, 'e', r->seq);
}

static int seen_checkpoint(void *ctx, const struct ota_store_audit_checkpoint *c)
{
	assert_string_equal(c->sig, "c2ln");
	return seen_item(ctx, 'c', c->seq);
}

static void query_filters_and_pages(void **state)
{
	struct fx *f = *state;
	struct seen s = {0};
	bool more;

	for (int i = 1; i <= 9; i++)
		append(f, i % 3 ? "admin" : "op", i % 2 ? "device.approve" : "rollout.start",
		       i <= 4 ? "dev-a" : "dev-b", 100 * i);
	struct ota_store_audit_filter all = {.limit = 4};
	assert_int_equal(ota_store_audit_query(f->st, &all, seen_entry, &s, &more), OTA_OK);
	assert_string_equal(s.log, "e1 e2 e3 e4");
	assert_true(more);
	memset(&s, 0, sizeof(s));
	all.after_seq = 4;
	all.limit = 5;
	assert_int_equal(ota_store_audit_query(f->st, &all, seen_entry, &s, &more), OTA_OK);
	assert_string_equal(s.log, "e5 e6 e7 e8 e9");
	assert_false(more);

	memset(&s, 0, sizeof(s));
	struct ota_store_audit_filter some = {
	    .actor = "admin", .action = "device.approve", .since = 200, .until = 900, .limit = 10};
	assert_int_equal(ota_store_audit_query(f->st, &some, seen_entry, &s, &more), OTA_OK);
	assert_string_equal(s.log, "e5 e7");
	memset(&s, 0, sizeof(s));
	struct ota_store_audit_filter dev = {.device_id = "dev-a", .limit = 10, .after_seq = 1};
	assert_int_equal(ota_store_audit_query(f->st, &dev, seen_entry, &s, &more), OTA_OK);
	assert_string_equal(s.log, "e2 e3 e4");

	/* A callback stops the walk; a limit of 0 is refused. */
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	all = (struct ota_store_audit_filter){.limit = 10};
	assert_int_equal(ota_store_audit_query(f->st, &all, seen_entry, &s, &more), OTA_OK);
	assert_string_equal(s.log, "e1 e2");
	assert_false(more);
	all.limit = 0;
	assert_int_equal(ota_store_audit_query(f->st, &all, seen_entry, &s, &more),
	                 OTA_ERR_INVALID);
}

static void walk_puts_checkpoints_after_their_entries(void **state)
{
	struct fx *f = *state;
	struct seen s = {0};

	for (int i = 1; i <= 8; i++)
		append(f, "admin", "x", NULL, i);
	checkpoint(f, 2);
	checkpoint(f, 3);
	checkpoint(f, 6);
	checkpoint(f, 8);

	assert_int_equal(ota_store_audit_walk(f->st, 0, 8, 100, seen_entry, seen_checkpoint, &s),
	                 OTA_OK);
	assert_string_equal(s.log, "e1 e2 c2 e3 c3 e4 e5 e6 c6 e7 e8 c8");

	/* A range, bounded by upto and by limit: checkpoints above the last entry wait. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(ota_store_audit_walk(f->st, 2, 6, 3, seen_entry, seen_checkpoint, &s),
	                 OTA_OK);
	assert_string_equal(s.log, "e3 c3 e4 e5");
	memset(&s, 0, sizeof(s));
	assert_int_equal(ota_store_audit_walk(f->st, 5, 7, 100, seen_entry, seen_checkpoint, &s),
	                 OTA_OK);
	assert_string_equal(s.log, "e6 c6 e7");

	/* Entries only; a callback that stops; a limit of 0 refused. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(ota_store_audit_walk(f->st, 0, 3, 100, seen_entry, NULL, &s), OTA_OK);
	assert_string_equal(s.log, "e1 e2 e3");
	memset(&s, 0, sizeof(s));
	s.stop_at = 3;
	assert_int_equal(ota_store_audit_walk(f->st, 0, 8, 100, seen_entry, seen_checkpoint, &s),
	                 OTA_OK);
	assert_string_equal(s.log, "e1 e2 c2");
	assert_int_equal(ota_store_audit_walk(f->st, 0, 8, 0, seen_entry, seen_checkpoint, &s),
	                 OTA_ERR_INVALID);

	/* Past the head: nothing. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(ota_store_audit_walk(f->st, 8, 100, 10, seen_entry, seen_checkpoint, &s),
	                 OTA_OK);
	assert_string_equal(s.log, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(append_hands_the_seal_its_place, setup, teardown),
	    cmocka_unit_test_setup_teardown(checkpoints_once_and_of_an_entry, setup, teardown),
	    cmocka_unit_test_setup_teardown(query_filters_and_pages, setup, teardown),
	    cmocka_unit_test_setup_teardown(walk_puts_checkpoints_after_their_entries, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
