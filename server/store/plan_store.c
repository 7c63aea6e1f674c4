/*
 * store/plan_store.c - the SQLite side of plan_store.h: the registry read for a rollout plan,
 * in keyset pages of OTA_PLAN_CHUNK devices by id, so the store's lock is never held for a
 * whole fleet. Over every device, a page is two range reads: the devices by the primary key,
 * then the tags of that id range by the device_tags primary key, merged in id order. For one
 * hardware variant, whose ids are spread over the whole table, a device's tags come in its own
 * row instead (group_concat over the device_tags primary key).
 */
#include "store/plan_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/internal.h"

/* Every device, by the primary key, after ?1, at most ?2 (tags: SQL_PLAN_TAGS). */
static const char SQL_PLAN_ALL[] =
    "SELECT d.id, d.status, d.admission, d.hw_variant, d.version, d.security_floor, NULL"
    " FROM devices d WHERE d.id > ?1 ORDER BY d.id LIMIT ?2";
/* The tags of the devices with ids in [?1, ?2], by the device_tags primary key. */
static const char SQL_PLAN_TAGS[] = "SELECT device_id, tag FROM device_tags"
                                    " WHERE device_id >= ?1 AND device_id <= ?2"
                                    " ORDER BY device_id";
/* The devices of one hardware variant ?3, by devices_by_hw_variant, after ?1, at most ?2. */
#define PLAN_HW(TAGS, INDEXED)                                                                     \
	"SELECT d.id, d.status, d.admission, d.hw_variant, d.version, d.security_floor, (" TAGS    \
	" FROM device_tags t WHERE t.device_id = d.id) FROM devices d" INDEXED                     \
	" WHERE d.hw_variant = ?3 AND d.id > ?1 ORDER BY d.id LIMIT ?2"
static const char *const SQL_PLAN_HW[] = {
    PLAN_HW("SELECT group_concat(t.tag, char(10))", " INDEXED BY devices_by_hw_variant"),
    PLAN_HW("SELECT string_agg(t.tag, chr(10))", "")};

/* One device of a page, copied out of the statement so the lock can be released. */
struct row {
	char id[OTA_ID_MAX + 1];
	char status[16], admission[16];
	bool known;
	char hw[33];
	char version[OTA_ID_MAX + 1];
	uint32_t floor;
	char *tags; /* "\n"-separated, malloc'd, or NULL */
};

static void copy(struct ota_sql_stmt *q, int col, char *out, size_t cap)
{
	const char *t = ota_sql_column_text(q, col);
	snprintf(out, cap, "%s", t ? (const char *)t : "");
}

/* Appends tag to row's "\n"-separated tags. */
static bool add_tag(struct row *r, const char *tag)
{
	size_t have = r->tags ? strlen(r->tags) : 0, n = strlen(tag);
	char *t = realloc(r->tags, have + n + 2);
	if (!t)
		return false;
	if (have)
		t[have++] = '\n';
	memcpy(t + have, tag, n + 1);
	r->tags = t;
	return true;
}

/* The tags of rows[0..n) (in id order) by one range read, merged by id. */
static enum ota_err page_tags(struct ota_store *st, struct row *rows, unsigned n)
{
	struct ota_sql_stmt *q = ota_store__stmt(st, SQL_PLAN_TAGS);
	unsigned i = 0;
	int s;

	if (!q)
		return OTA_ERR_DB;
	ota_sql_bind_text(q, 1, rows[0].id);
	ota_sql_bind_text(q, 2, rows[n - 1].id);
	while ((s = ota_sql_step(q)) == OTA_SQL_ROW) {
		const char *dev = ota_sql_column_text(q, 0);
		const char *tag = ota_sql_column_text(q, 1);
		while (dev && i < n && strcmp(rows[i].id, dev) < 0)
			i++;
		if (dev && tag && i < n && strcmp(rows[i].id, dev) == 0 &&
		    !add_tag(&rows[i], tag)) {
			ota_store__done(q);
			return OTA_ERR_NOMEM;
		}
	}
	ota_store__done(q);
	if (s != OTA_SQL_DONE) {
		return ota_store__fail(st, "plan tags");
	}
	return OTA_OK;
}

/* Reads one page into rows; *n gets how many. */
static enum ota_err page(struct ota_store *st, const char *hw, const char *after, struct row *rows,
                         unsigned *n)
{
	enum ota_err rc = OTA_OK;
	int s;

	*n = 0;
	ota_store__lock(st);
	struct ota_sql_stmt *q =
	    ota_store__stmt(st, hw ? OTA_SQL_PICK(st, SQL_PLAN_HW) : SQL_PLAN_ALL);
	if (!q) {
		ota_store__unlock(st);
		return OTA_ERR_DB;
	}
	ota_sql_bind_text(q, 1, after);
	ota_sql_bind_int64(q, 2, OTA_PLAN_CHUNK);
	if (hw)
		ota_sql_bind_text(q, 3, hw);
	while ((s = ota_sql_step(q)) == OTA_SQL_ROW) {
		struct row *r = &rows[*n];
		copy(q, 0, r->id, sizeof(r->id));
		copy(q, 1, r->status, sizeof(r->status));
		copy(q, 2, r->admission, sizeof(r->admission));
		r->known = !ota_sql_column_is_null(q, 3);
		copy(q, 3, r->hw, sizeof(r->hw));
		copy(q, 4, r->version, sizeof(r->version));
		r->floor = (uint32_t)ota_sql_column_int64(q, 5);
		r->tags = NULL;
		const char *t = ota_sql_column_text(q, 6);
		if (t && !(r->tags = strdup((const char *)t))) {
			rc = OTA_ERR_NOMEM;
			break;
		}
		(*n)++;
	}
	if (rc == OTA_OK && s != OTA_SQL_DONE)
		rc = ota_store__fail(st, "plan devices");
	ota_store__done(q);
	if (rc == OTA_OK && !hw && *n)
		rc = page_tags(st, rows, *n);
	ota_store__unlock(st);
	return rc;
}

/* Calls fn for each row of a page (outside the lock) and frees the rows' tags. */
static void deliver(struct row *rows, unsigned n,
                    void (*fn)(void *ctx, const struct ota_plan_device *d), void *ctx)
{
	for (unsigned i = 0; i < n; i++) {
		struct row *r = &rows[i];
		const char *tags[OTA_PLAN_MAX_TAGS];
		unsigned nt = 0;
		char *save = NULL;
		for (char *t = r->tags ? strtok_r(r->tags, "\n", &save) : NULL;
		     t && nt < OTA_PLAN_MAX_TAGS; t = strtok_r(NULL, "\n", &save))
			tags[nt++] = t;
		struct ota_plan_device d = {
		    .id = r->id,
		    .status = r->status,
		    .admission = r->admission,
		    .known_state = r->known,
		    .hw_variant = r->hw,
		    .version = r->version,
		    .security_floor = r->floor,
		    .ntags = nt,
		    .tags = tags,
		};
		fn(ctx, &d);
		free(r->tags);
		r->tags = NULL;
	}
}

static void free_tags(struct row *rows, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(rows[i].tags);
}

enum ota_err ota_store_plan_devices(struct ota_store *st, const char *const *hw, unsigned nhw,
                                    void (*fn)(void *ctx, const struct ota_plan_device *d),
                                    void *ctx)
{
	enum ota_err rc = OTA_OK;
	struct row *rows = malloc(OTA_PLAN_CHUNK * sizeof(*rows));

	if (!rows)
		return OTA_ERR_NOMEM;
	/* One pass over every device, or one pass per named variant. */
	for (unsigned v = 0; rc == OTA_OK && v < (nhw ? nhw : 1); v++) {
		char after[OTA_ID_MAX + 1] = "";
		unsigned n;
		do {
			rc = page(st, nhw ? hw[v] : NULL, after, rows, &n);
			if (rc != OTA_OK) {
				free_tags(rows, n);
				break;
			}
			if (n)
				snprintf(after, sizeof(after), "%s", rows[n - 1].id);
			deliver(rows, n, fn, ctx);
		} while (n == OTA_PLAN_CHUNK);
	}
	free(rows);
	return rc;
}
