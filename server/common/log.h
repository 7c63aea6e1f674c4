/*
 * common/log.h - leveled logging to journald when running under systemd, to stderr otherwise.
 * Levels are syslog's. Never log key material, whole certificates or tokens.
 *
 * Every message is escaped by the logger, whatever its arguments hold: a control character
 * (newline, carriage return, escape, ...), DEL, a backslash and every byte that is not part of
 * valid UTF-8 is written as \xNN (a backslash as \\), so that one call is one line and
 * nobody can forge a line by putting a newline in a URL, a header, a certificate name or a
 * device's JSON. Messages longer than 1023 bytes are cut.
 */
#ifndef OTA_LOG_H
#define OTA_LOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

/* Sets the most verbose level printed and the sink. Safe to call again; thread-safe to use. */
void ota_log_init(int max_level, bool journal);
/* True when stderr is connected to the journal (systemd sets JOURNAL_STREAM). */
bool ota_log_under_journal(void);
/* "err", "warning", "notice", "info", "debug" to a level; -1 when unknown. */
int ota_log_level_parse(const char *name);

void ota_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A value from outside (a device, a client) that a message names: under journald it is also
 * sent as its own field NAME=value (NAME: journald's rules, e.g. "OTA_URL"), escaped like the
 * message, so that a query can select on it without parsing the message. */
struct ota_log_field {
	const char *name;
	const char *value; /* NULL: the field is left out */
};
/* ota_log with up to 8 such fields (more are ignored). */
void ota_log_fields(int level, const struct ota_log_field *fields, unsigned nfields,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * What a message becomes under journald, built without sending it (ota_log_journal_entries):
 * entry[0] "MESSAGE=" and the escaped message (one line), entry[1] "PRIORITY=n", then one
 * "NAME=value" per field given with a value, the value escaped like the message (cut to 511
 * bytes). The entries point into this struct; n counts them.
 */
#define OTA_LOG_FIELDS_MAX 8
struct ota_log_journal {
	char message[sizeof("MESSAGE=") + 4 * 1024];
	char priority[16];
	char field[OTA_LOG_FIELDS_MAX][512 + 64];
	const char *entry[2 + OTA_LOG_FIELDS_MAX];
	unsigned n;
};
/* Fills *out from the unescaped `message` and up to OTA_LOG_FIELDS_MAX fields (more are
 * ignored, as are fields without a name or a value). Pure: the journal sink sends exactly
 * these entries. */
void ota_log_journal_entries(int level, const char *message, const struct ota_log_field *fields,
                             unsigned nfields, struct ota_log_journal *out);

/* Escapes `in` as the logger does into out (cap bytes, always terminated; cut if too small).
 * Returns out. */
char *ota_log_escape(const char *in, char *out, size_t cap);

/*
 * A message that repeats at a request's pace while one fault lasts (a store out of reach): a
 * reason passes once, the same reason again only after window_s seconds; *left_out then says
 * how many were held back since it last passed. A new reason passes at once.
 */
struct ota_log_limit {
	pthread_mutex_t mu;
	unsigned window_s;
	int64_t window_end; /* monotonic seconds */
	unsigned long quiet;
	char last[200];
};
#define OTA_LOG_LIMIT_INIT(window_s)                                                               \
	{                                                                                          \
		PTHREAD_MUTEX_INITIALIZER, (window_s), 0, 0, ""                                    \
	}
bool ota_log_limit_pass(struct ota_log_limit *l, const char *reason, unsigned long *left_out);

#define log_err(...) ota_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...) ota_log(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) ota_log(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) ota_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) ota_log(LOG_DEBUG, __VA_ARGS__)

#endif
