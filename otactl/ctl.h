/*
 * otactl/ctl.h - the library behind otactl, the operators' and auditors' command line: its
 * configuration (flags > OTACTL_* environment > config file), the HTTPS client of the
 * management API (libcurl, client certificate or bearer token), output (tables, --json,
 * --quiet, one-line problems, progress bars) and the commands. main.c only calls
 * ota_ctl_main(); the tests link this library.
 *
 * Conventions: every function that can fail returns an exit status of enum ota_ctl_exit and
 * has printed one line saying why on stderr ("otactl: ..."); nothing is printed on success
 * except the command's output on stdout. jansson values returned through out-parameters
 * belong to the caller (json_decref).
 */
#ifndef OTA_CTL_H
#define OTA_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Exit statuses, documented in otactl(1) and docs/operations.md. */
enum ota_ctl_exit {
	OTACTL_OK = 0,
	OTACTL_REFUSED = 1,   /* the server refused the request (4xx but 404) */
	OTACTL_USAGE = 2,     /* bad command line or configuration */
	OTACTL_CONNECT = 3,   /* no connection, TLS or certificate failure, timeout */
	OTACTL_NOT_FOUND = 4, /* 404: no such device, release, rollout, ... */
	OTACTL_SERVER = 5,    /* 5xx, or an answer otactl cannot read */
	OTACTL_LOCAL = 6,     /* a local file cannot be read or written */
	OTACTL_VERIFY = 7,    /* audit verification found a fault */
	OTACTL_HALTED = 8,    /* rollouts watch: the rollout halted or was aborted */
};

#define OTACTL_PATH_MAX 1024

/* Where and how to reach the management API. Empty strings are unset. */
struct ota_ctl_config {
	char server[512];
	char ca[OTACTL_PATH_MAX];
	char cert[OTACTL_PATH_MAX];
	char key[OTACTL_PATH_MAX];
	char token_file[OTACTL_PATH_MAX];
	char source[OTACTL_PATH_MAX + 16]; /* the config file read, "" when none */
};

/*
 * Parses a config file's text ("key = value" lines, '#' or ';' comments; keys server, ca,
 * cert, key, token_file). Unknown or duplicate keys, a line without '=' and empty values are
 * errors: OTACTL_USAGE with "NAME:LINE: reason" in msg. Relative paths are made relative to
 * base_dir. Only the keys present are set in out.
 */
int ota_ctl_config_parse(const char *text, const char *name, const char *base_dir,
                         struct ota_ctl_config *out, char *msg, size_t msglen)
    __attribute__((warn_unused_result));

/*
 * Resolves the configuration: the file (config_path when given, else $OTACTL_CONFIG, else
 * $XDG_CONFIG_HOME/otactl/config or ~/.config/otactl/config; only the default may be
 * missing), then OTACTL_SERVER/CA/CERT/KEY/TOKEN_FILE, then the flags in `flags` (its
 * non-empty fields). Returns OTACTL_OK or OTACTL_USAGE with a message in msg.
 */
int ota_ctl_config_resolve(const char *config_path, const struct ota_ctl_config *flags,
                           struct ota_ctl_config *out, char *msg, size_t msglen)
    __attribute__((warn_unused_result));

/* One invocation: configuration, output mode and the HTTP session. */
struct ota_ctl {
	struct ota_ctl_config cfg;
	bool json, quiet;
	bool tty;        /* stderr is a terminal: progress bars are drawn */
	void *curl;      /* CURL *, made on first use */
	char token[128]; /* the bearer token read from token_file, "" when none */
};

/* An answer: status, body (NUL-terminated) and content type. */
struct ota_ctl_resp {
	long status;
	char *body;
	size_t len;
	char ctype[128];
};
void ota_ctl_resp_free(struct ota_ctl_resp *r);

/*
 * Sends METHOD PATH (path and query, URL-encoded by the caller) with an optional JSON body
 * (borrowed). A 2xx answer with a JSON body is returned in *out (when out is not NULL) and
 * OTACTL_OK; anything else prints one line (the problem's title and detail) and returns the
 * exit status of the failure.
 */
int ota_ctl_call(struct ota_ctl *c, const char *method, const char *path, json_t *body,
                 json_t **out) __attribute__((warn_unused_result));

/* Like ota_ctl_call, keeping the raw answer (for non-JSON bodies); r is freed by the caller. */
int ota_ctl_call_raw(struct ota_ctl *c, const char *method, const char *path, const char *body,
                     size_t body_len, const char *ctype, struct ota_ctl_resp *r)
    __attribute__((warn_unused_result));

/*
 * POSTs the file at `file` to PATH as application/octet-stream, streamed, with a progress
 * bar on stderr when it is a terminal and not quiet. *out gets the JSON answer.
 */
int ota_ctl_upload(struct ota_ctl *c, const char *path, const char *file, json_t **out)
    __attribute__((warn_unused_result));

/* GETs PATH into the file `file` (written to FILE.part, then renamed), with progress. */
int ota_ctl_download(struct ota_ctl *c, const char *path, const char *file)
    __attribute__((warn_unused_result));

/*
 * Reads a collection in pages: GET PATH (with or without a query) adding limit= and
 * cursor=, following next_cursor (string or integer) until null, up to max items (0: all).
 * Answers in the older shapes ({"<legacy_key>": [...]}) are read as one page. *items gets a
 * new array.
 */
int ota_ctl_list(struct ota_ctl *c, const char *path, const char *legacy_key, unsigned page_size,
                 size_t max, json_t **items) __attribute__((warn_unused_result));

/* Appends "&k=v" (or "?k=v") to the path buffer, URL-encoding v. False when it does not fit. */
bool ota_ctl_query_add(char *path, size_t size, const char *k, const char *v);

/* Percent-encodes s into out (RFC 3986 unreserved kept). False when it does not fit. */
bool ota_ctl_escape(const char *s, char *out, size_t size);

/* Output. */
enum ota_ctl_col_kind { COL_STR, COL_TIME, COL_LIST, COL_BOOL, COL_SHORT };
struct ota_ctl_col {
	const char *header, *key;
	enum ota_ctl_col_kind kind;
};
/* Prints items (an array of objects) as an aligned table with the given columns. */
void ota_ctl_table(FILE *f, json_t *items, const struct ota_ctl_col *cols, size_t ncols);
/* Prints a list: JSON in the API's shape ({"items": ..., "next_cursor": null}) with --json,
 * the first column of each item with --quiet, else a table. */
void ota_ctl_print_list(struct ota_ctl *c, json_t *items, const struct ota_ctl_col *cols,
                        size_t ncols);
/* Prints an object as "key: value" lines (nested values as compact JSON). */
void ota_ctl_kv(FILE *f, json_t *obj);
/* Prints v as the command's answer: JSON with --json, else kv, nothing with --quiet. */
void ota_ctl_print(struct ota_ctl *c, json_t *v);
/* Formats a JSON value for a table cell into buf. */
const char *ota_ctl_cell(json_t *v, enum ota_ctl_col_kind kind, char *buf, size_t size);

/*
 * A progress bar on stderr: done of total bytes (total 0: unknown), bytes/s and ETA.
 * ota_ctl_progress_end() finishes the line. Both do nothing when c->tty is false or quiet.
 */
struct ota_ctl_progress {
	double started, last_draw;
	const char *label;
	bool drawn;
};
void ota_ctl_progress(struct ota_ctl *c, struct ota_ctl_progress *p, double done, double total);
void ota_ctl_progress_end(struct ota_ctl *c, struct ota_ctl_progress *p);
double ota_ctl_now(void);

/* Error line on stderr: "otactl: ..." */
void ota_ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Maps an HTTP status to an exit status (2xx -> OTACTL_OK). */
int ota_ctl_exit_of_status(long status);

/* Runs the command line; returns the exit status. */
int ota_ctl_main(int argc, char **argv);

/* Frees the session (curl handle). */
void ota_ctl_close(struct ota_ctl *c);

#endif
