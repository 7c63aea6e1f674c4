/*
 * common/log.c - the log sink: sd_journal_send() under systemd (priority kept as metadata,
 * values from outside as fields of their own), otherwise one line per message on stderr with
 * an ISO time and the level. Every message and field is escaped here (log.h), not by callers.
 */
#include "common/log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sys/uio.h>
#include <systemd/sd-journal.h>

static int max_level = LOG_INFO;
static bool use_journal;

void ota_log_init(int level, bool journal)
{
	max_level = level;
	use_journal = journal;
}

bool ota_log_under_journal(void)
{
	/* JOURNAL_STREAM is "dev:inode" of the journal stream; it must be our stderr. */
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%lu:%lu", &dev, &ino) != 2 || fstat(2, &st) != 0)
		return false;
	return (unsigned long)st.st_dev == dev && (unsigned long)st.st_ino == ino;
}

int ota_log_level_parse(const char *name)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {{"err", LOG_ERR},       {"error", LOG_ERR}, {"warning", LOG_WARNING},
	              {"notice", LOG_NOTICE}, {"info", LOG_INFO}, {"debug", LOG_DEBUG}};

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcmp(name, levels[i].name) == 0)
			return levels[i].level;
	return -1;
}

/* The length of the valid UTF-8 sequence at p (1-4), 0 when it is not one. */
static size_t utf8_len(const unsigned char *p)
{
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		return (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (p[0] >= 0xe0 && p[0] <= 0xef) {
		if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f))
			return 0; /* overlong, or a surrogate */
		return 3;
	}
	if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
			return 0;
		if ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

char *ota_log_escape(const char *in, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0;

	if (cap == 0)
		return out;
	while (*p) {
		size_t n = utf8_len(p);
		if (n == 1 && *p >= 0x20 && *p != 0x7f && *p != '\\') {
			if (o + 1 >= cap)
				break;
			out[o++] = (char)*p++;
		} else if (n == 1 && *p == '\\') {
			if (o + 2 >= cap)
				break;
			out[o++] = '\\';
			out[o++] = '\\';
			p++;
		} else if (n > 1) {
			if (o + n >= cap)
				break;
			memcpy(out + o, p, n);
			o += n;
			p += n;
		} else {
			if (o + 4 >= cap)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
			p++;
		}
	}
	out[o] = '\0';
	return out;
}

void ota_log_journal_entries(int level, const char *message, const struct ota_log_field *fields,
                             unsigned nfields, struct ota_log_journal *out)
{
	static const char msg_key[] = "MESSAGE=";

	out->n = 0;
	memcpy(out->message, msg_key, sizeof(msg_key));
	ota_log_escape(message, out->message + sizeof(msg_key) - 1,
	               sizeof(out->message) - (sizeof(msg_key) - 1));
	snprintf(out->priority, sizeof(out->priority), "PRIORITY=%d", level & 7);
	out->entry[out->n++] = out->message;
	out->entry[out->n++] = out->priority;
	for (unsigned i = 0; i < nfields && i < OTA_LOG_FIELDS_MAX; i++) {
		char v[512];
		if (!fields[i].name || !fields[i].value)
			continue;
		ota_log_escape(fields[i].value, v, sizeof(v));
		snprintf(out->field[i], sizeof(out->field[i]), "%s=%s", fields[i].name, v);
		out->entry[out->n++] = out->field[i];
	}
}

static void emit(int level, const struct ota_log_field *fields, unsigned nfields, const char *fmt,
                 va_list ap)
{
	static const char *const tag[] = {"emerg",   "alert",  "crit", "error",
	                                  "warning", "notice", "info", "debug"};
	char raw[1024], msg[1024 * 4];

	vsnprintf(raw, sizeof(raw), fmt, ap);
	if (use_journal) {
		struct ota_log_journal *j = malloc(sizeof(*j));
		struct iovec iov[2 + OTA_LOG_FIELDS_MAX];

		if (!j) {
			ota_log_escape(raw, msg, sizeof(msg));
			sd_journal_print(level, "%s", msg);
			return;
		}
		ota_log_journal_entries(level, raw, fields, nfields, j);
		for (unsigned i = 0; i < j->n; i++)
			iov[i] = (struct iovec){.iov_base = (void *)j->entry[i],
			                        .iov_len = strlen(j->entry[i])};
		sd_journal_sendv(iov, (int)j->n);
		free(j);
		return;
	}
	ota_log_escape(raw, msg, sizeof(msg));
	char ts[32];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ otad %s: %s\n", ts, now.tv_nsec / 1000000L, tag[level & 7], msg);
}

void ota_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > max_level)
		return;
	va_start(ap, fmt);
	emit(level, NULL, 0, fmt, ap);
	va_end(ap);
}

void ota_log_fields(int level, const struct ota_log_field *fields, unsigned nfields,
                    const char *fmt, ...)
{
	va_list ap;

	if (level > max_level)
		return;
	va_start(ap, fmt);
	emit(level, fields, nfields, fmt, ap);
	va_end(ap);
}

bool ota_log_limit_pass(struct ota_log_limit *l, const char *reason, unsigned long *left_out)
{
	struct timespec ts;
	bool pass;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	pthread_mutex_lock(&l->mu);
	pass = ts.tv_sec >= l->window_end || strncmp(reason, l->last, sizeof(l->last) - 1) != 0;
	*left_out = 0;
	if (pass) {
		*left_out = l->quiet;
		l->quiet = 0;
		l->window_end = ts.tv_sec + l->window_s;
		snprintf(l->last, sizeof(l->last), "%s", reason);
	} else {
		l->quiet++;
	}
	pthread_mutex_unlock(&l->mu);
	return pass;
}
