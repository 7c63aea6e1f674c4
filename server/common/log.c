/*
 * common/log.c - the log sink: sd_journal_print() under systemd (priority kept as metadata),
 * otherwise one line per message on stderr with an ISO time and the level.
 */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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
	} levels[] = {{"err", LOG_ERR},	  {"error", LOG_ERR}, {"warning", LOG_WARNING},
		      {"notice", LOG_NOTICE}, {"info", LOG_INFO},  {"debug", LOG_DEBUG}};

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcmp(name, levels[i].name) == 0)
			return levels[i].level;
	return -1;
}

void ota_log(int level, const char *fmt, ...)
{
	static const char *const tag[] = {"emerg", "alert", "crit",	"error",
					  "warning", "notice", "info", "debug"};
	char msg[1024];
	va_list ap;

	if (level > max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (use_journal) {
		sd_journal_print(level, "%s", msg);
		return;
	}
	char ts[32];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ otad %s: %s\n", ts, now.tv_nsec / 1000000L,
		tag[level & 7], msg);
}
