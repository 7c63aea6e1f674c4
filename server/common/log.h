/*
 * common/log.h - leveled logging to journald when running under systemd, to stderr otherwise.
 * Levels are syslog's. Never log key material, whole certificates or tokens.
 */
#ifndef OTA_LOG_H
#define OTA_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* Sets the most verbose level printed and the sink. Safe to call again; thread-safe to use. */
void ota_log_init(int max_level, bool journal);
/* True when stderr is connected to the journal (systemd sets JOURNAL_STREAM). */
bool ota_log_under_journal(void);
/* "err", "warning", "notice", "info", "debug" to a level; -1 when unknown. */
int ota_log_level_parse(const char *name);

void ota_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) ota_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...) ota_log(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) ota_log(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) ota_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) ota_log(LOG_DEBUG, __VA_ARGS__)

#endif
