/*
 * http/console.h - the web console's static files (console.c, docs/console.md): loaded once
 * at start from the configured folder, served under /console/ on the management listener
 * without an identity (they hold no data), with strict security headers. Not for use outside
 * http/.
 */
#ifndef OTA_HTTP_CONSOLE_H
#define OTA_HTTP_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "http/internal.h"

struct ota_console;

/* The Content-Security-Policy of every console answer. */
extern const char ota_console_csp[];

/*
 * Reads every servable file of dir (flat; names of [A-Za-z0-9._-] with a known type; at most
 * 64 files and 4 MiB) into *out, which the caller frees with ota_console_free(). dir "" means
 * no console (*out NULL, OTA_OK). A folder that does not exist is OTA_ERR_CONFIG when
 * required, else *out NULL with a notice (the compiled-in default when not installed). A
 * folder without index.html, or one that cannot be read, is OTA_ERR_CONFIG, msg says why.
 */
OTA_WUR enum ota_err ota_console_load(const char *dir, bool required, struct ota_console **out,
                                      char *msg, size_t msglen);
void ota_console_free(struct ota_console *c);
bool ota_console_has(const struct ota_console *c, const char *name);

/*
 * The route serving url when it is /console or under /console/ and a console is loaded;
 * else NULL. The route needs no identity; any method but GET and HEAD gets 405.
 */
const struct ota_route *ota_console_route(const struct ota_http_deps *deps, const char *url);

#endif
