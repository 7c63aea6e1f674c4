/*
 * otactl/output.c - what people and scripts read: aligned tables, "key: value" views, the
 * API's JSON as is (--json), and progress bars on stderr, drawn only on a terminal.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

double ota_ctl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *ota_ctl_cell(json_t *v, enum ota_ctl_col_kind kind, char *buf, size_t size)
{
	buf[0] = '\0';
	if (!v || json_is_null(v))
		return "-";
	switch (kind) {
	case COL_TIME:
		if (json_is_integer(v)) {
			time_t t = (time_t)json_integer_value(v);
			struct tm tm;
			if (gmtime_r(&t, &tm))
				strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
			return buf;
		}
		break;
	case COL_LIST:
		if (json_is_array(v)) {
			size_t i, o = 0;
			json_t *e;
			json_array_foreach(v, i, e)
			{
				const char *s = json_string_value(e);
				int n =
				    snprintf(buf + o, size - o, "%s%s", i ? "," : "", s ? s : "?");
				if (n < 0 || (size_t)n >= size - o)
					break;
				o += (size_t)n;
			}
			return o ? buf : "-";
		}
		break;
	case COL_SHORT:
		if (json_is_string(v)) {
			snprintf(buf, size, "%.12s", json_string_value(v));
			return buf;
		}
		break;
	default:
		break;
	}
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_true(v))
		return "yes";
	if (json_is_false(v))
		return "no";
	if (json_is_integer(v)) {
		snprintf(buf, size, "%lld", (long long)json_integer_value(v));
		return buf;
	}
	if (json_is_real(v)) {
		snprintf(buf, size, "%g", json_real_value(v));
		return buf;
	}
	char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	snprintf(buf, size, "%s", d ? d : "?");
	free(d);
	return buf;
}

/* One cell padded to its column; the last of a row ends the line unpadded. */
static void cell_out(FILE *f, const char *s, size_t w, bool last)
{
	if (last)
		fprintf(f, "%s\n", s);
	else
		fprintf(f, "%-*s  ", (int)w, s);
}

void ota_ctl_table(FILE *f, json_t *items, const struct ota_ctl_col *cols, size_t ncols)
{
	size_t rows = json_array_size(items), w[16] = {0};
	char buf[512];

	if (ncols > 16)
		ncols = 16;
	for (size_t c = 0; c < ncols; c++)
		w[c] = strlen(cols[c].header);
	for (size_t r = 0; r < rows; r++)
		for (size_t c = 0; c < ncols; c++) {
			json_t *v = json_object_get(json_array_get(items, r), cols[c].key);
			size_t n = strlen(ota_ctl_cell(v, cols[c].kind, buf, sizeof(buf)));
			if (n > w[c])
				w[c] = n;
		}
	for (size_t c = 0; c < ncols; c++)
		cell_out(f, cols[c].header, w[c], c + 1 == ncols);
	for (size_t r = 0; r < rows; r++)
		for (size_t c = 0; c < ncols; c++) {
			json_t *v = json_object_get(json_array_get(items, r), cols[c].key);
			cell_out(f, ota_ctl_cell(v, cols[c].kind, buf, sizeof(buf)), w[c],
			         c + 1 == ncols);
		}
}

void ota_ctl_kv(FILE *f, json_t *obj)
{
	const char *k;
	json_t *v;
	size_t w = 0;
	char buf[512];

	if (!json_is_object(obj)) {
		fprintf(f, "%s\n", ota_ctl_cell(obj, COL_STR, buf, sizeof(buf)));
		return;
	}
	json_object_foreach(obj, k, v)
	{
		if (strlen(k) > w)
			w = strlen(k);
	}
	json_object_foreach(obj, k, v)
	{
		const char *key_end = k + strlen(k);
		bool is_time = (key_end - k > 3 && strcmp(key_end - 3, "_at") == 0) ||
		               strcmp(k, "last_seen") == 0 || strcmp(k, "at") == 0;
		if (json_is_object(v) || json_is_array(v)) {
			char *d = json_dumps(v, JSON_COMPACT);
			fprintf(f, "%-*s  %s\n", (int)w + 1, k, d ? d : "?");
			free(d);
			continue;
		}
		fprintf(f, "%s:%*s %s\n", k, (int)(w - strlen(k)) + 1, "",
		        ota_ctl_cell(v, is_time ? COL_TIME : COL_STR, buf, sizeof(buf)));
	}
}

void ota_ctl_print(struct ota_ctl *c, json_t *v)
{
	if (c->json) {
		json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
		fputc('\n', stdout);
		return;
	}
	if (c->quiet)
		return;
	ota_ctl_kv(stdout, v);
}

static void human(double b, char *out, size_t size)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	unsigned u = 0;

	while (b >= 1024 && u < 4) {
		b /= 1024;
		u++;
	}
	snprintf(out, size, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
}

void ota_ctl_progress(struct ota_ctl *c, struct ota_ctl_progress *p, double done, double total)
{
	double now = ota_ctl_now();
	char d[32], t[32], r[32], eta[32] = "";

	if (!c->tty || c->quiet)
		return;
	/* At most ten redraws a second, and always the last one. */
	if (p->drawn && now - p->last_draw < 0.1 && !(total > 0 && done >= total))
		return;
	p->last_draw = now;
	p->drawn = true;
	double el = now - p->started;
	double rate = el > 0 ? done / el : 0;
	human(done, d, sizeof(d));
	human(rate, r, sizeof(r));
	if (total > 0) {
		int pct = (int)(done * 100 / total), fill = pct * 30 / 100;
		char bar[31];
		memset(bar, '#', (size_t)fill);
		memset(bar + fill, '.', (size_t)(30 - fill));
		bar[30] = '\0';
		human(total, t, sizeof(t));
		if (rate > 0 && done < total) {
			long s = (long)((total - done) / rate);
			snprintf(eta, sizeof(eta), " ETA %ld:%02ld", s / 60, s % 60);
		}
		fprintf(stderr, "\r%s [%s] %3d%% %s of %s, %s/s%s\033[K", p->label, bar, pct, d, t,
		        r, eta);
	} else {
		fprintf(stderr, "\r%s %s, %s/s\033[K", p->label, d, r);
	}
	fflush(stderr);
}

void ota_ctl_progress_end(struct ota_ctl *c, struct ota_ctl_progress *p)
{
	if (!c->tty || c->quiet || !p->drawn)
		return;
	fputc('\n', stderr);
	fflush(stderr);
}

void ota_ctl_print_list(struct ota_ctl *c, json_t *items, const struct ota_ctl_col *cols,
                        size_t ncols)
{
	if (c->json) {
		json_t *j = json_pack("{s:O, s:n}", "items", items, "next_cursor");
		ota_ctl_print(c, j);
		json_decref(j);
	} else if (c->quiet) {
		size_t i;
		json_t *e;
		char buf[512];
		json_array_foreach(items, i, e)
		{
			printf("%s\n", ota_ctl_cell(json_object_get(e, cols[0].key), COL_STR, buf,
			                            sizeof(buf)));
		}
	} else {
		ota_ctl_table(stdout, items, cols, ncols);
	}
}
