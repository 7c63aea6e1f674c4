/*
 * config/config.h - otad's configuration: one file of "key = value" lines in [sections],
 * parsed once into an immutable struct. Unknown sections, unknown keys, duplicate keys, bad
 * values and missing required keys are errors that name the line. etc/otad.conf documents
 * every key.
 */
#ifndef OTA_CONFIG_H
#define OTA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define OTA_PATH_MAX 512

/* What happens to a device certificate (valid chain) whose id is not known yet. */
enum ota_admission {
	OTA_ADMISSION_AUTO = 0,      /* admitted (approved) on first sight */
	OTA_ADMISSION_PENDING,       /* recorded as pending until an operator approves it */
	OTA_ADMISSION_PREREGISTERED, /* refused unless registered through the management API */
};

struct ota_listener_config {
	char listen[OTA_PATH_MAX]; /* "host:port", "[v6]:port"; port 0 picks a free port */
	char ca[OTA_PATH_MAX];     /* PEM CA certificate(s) that client certificates chain to */
	char crl[OTA_PATH_MAX];    /* optional PEM CRL of that CA; "" when none */
};

struct ota_config {
	/* [server] */
	char data_dir[OTA_PATH_MAX]; /* SQLite database, images, audit key */
	int log_level;               /* syslog level */
	unsigned threads;            /* worker threads per listener */
	unsigned shutdown_grace;     /* seconds to let requests in flight finish on SIGTERM */
	/* [store], [store.postgresql] */
	bool store_postgresql;                /* backend = postgresql (default sqlite) */
	char store_pg_conninfo[OTA_PATH_MAX]; /* a libpq connection string, no password */
	/* [tls] */
	char tls_cert[OTA_PATH_MAX];
	char tls_key[OTA_PATH_MAX];
	bool session_tickets;
	char ticket_key[OTA_PATH_MAX]; /* the shared session-ticket master key; "": per process */
	unsigned
	    identity_cache; /* verified client chains remembered per listener (auth/idcache.h) */
	/* [device], [management] */
	struct ota_listener_config device;
	unsigned poll_interval;       /* seconds between check-ins */
	unsigned poll_jitter;         /* percent of poll_interval, +/- */
	unsigned delta_max_percent;   /* offer a delta below this % of the image; 0 = never */
	unsigned last_seen_flush;     /* seconds between writes of the check-in times kept */
	enum ota_admission admission; /* [device] admission = auto | pending | preregistered */
	struct ota_listener_config management;
	unsigned token_max_days;            /* longest lifetime of an API token */
	unsigned audit_checkpoint_interval; /* seconds between signed audit checkpoints */
	char console_dir[OTA_PATH_MAX];     /* the web console's files; "": no console */
	/* [limits] */
	unsigned connection_timeout;     /* seconds of inactivity before a connection is closed */
	unsigned max_connections;        /* per listener */
	unsigned max_connections_per_ip; /* 0: no limit */
	uint64_t body_max;               /* bytes of a JSON request body */
	uint64_t image_max;              /* bytes of an uploaded image */
	/* hostile clients (docs/operations.md, "Refusals and limits") */
	unsigned header_timeout;    /* seconds from a connection's start (or its last answer)
	                             * until a request's headers are in */
	unsigned body_timeout;      /* seconds for a JSON request body, once its headers are in */
	unsigned connection_memory; /* bytes of libmicrohttpd's memory pool per connection */
	unsigned mgmt_max_connections;        /* the management listener's own limits */
	unsigned mgmt_max_connections_per_ip; /* 0: no limit */
	unsigned refusal_window;              /* seconds of one window of counted refusals */
	unsigned refusal_kinds;               /* distinct refused subjects one window holds */
	unsigned refused_certificates_per_ip; /* that many refused certificates from an address
	                                       * within block_seconds block it (0: never) */
	unsigned block_seconds;               /* ... for as long */
	/* [trust] */
	char trusted_root[OTA_PATH_MAX]; /* root metadata envelope (version 1 or later); "" */
	/* [events] (docs/events.md) */
	unsigned events_heartbeat;   /* seconds between keep-alive comments of an idle stream */
	unsigned events_max_streams; /* live streams at once; 0: the stream is off */
	/* [webhooks] (docs/events.md) */
	unsigned webhook_threads;                  /* delivery threads */
	unsigned webhook_timeout;                  /* seconds a delivery may take */
	unsigned webhook_max_attempts;             /* failed attempts before an endpoint is dead */
	unsigned webhook_backoff_max;              /* longest wait between attempts, seconds */
	bool webhook_allow_http;                   /* plain http endpoints allowed */
	char webhook_allow_networks[OTA_PATH_MAX]; /* CIDR blocks allowed although not public */
	char webhook_ca[OTA_PATH_MAX];             /* PEM CA bundle; "": the system's */
	char time_key[OTA_PATH_MAX];               /* PEM P-256 key signing time tokens; "": none */
	char issuer_cert[OTA_PATH_MAX]; /* PEM CA certificate issuing renewed device certs */
	char issuer_key[OTA_PATH_MAX];  /* its PEM P-256 key, or a pkcs11: URI; both or neither */
	unsigned issued_days;           /* lifetime of an issued device certificate */
	char issuer_key_pin_file[OTA_PATH_MAX]; /* the token PIN of a pkcs11: issuer_key */
	char pkcs11_module[OTA_PATH_MAX];       /* PKCS#11 module; "": p11-kit's registered ones */
};

/* Fills *out with every default (the values documented in etc/otad.conf). */
void ota_config_defaults(struct ota_config *out);

/*
 * Parse the file at `path` over the defaults. Relative paths in the file are resolved against
 * the file's directory. On error returns OTA_ERR_CONFIG (or OTA_ERR_IO when the file cannot
 * be read) and writes "PATH:LINE: reason" into msg (always NUL-terminated); *out is then
 * unspecified.
 */
OTA_WUR enum ota_err ota_config_load(const char *path, struct ota_config *out, char *msg,
                                     size_t msglen);

/* The same over text in memory; `name` is used in messages, `base_dir` for relative paths. */
OTA_WUR enum ota_err ota_config_parse(const char *text, size_t len, const char *name,
                                      const char *base_dir, struct ota_config *out, char *msg,
                                      size_t msglen);

#endif
