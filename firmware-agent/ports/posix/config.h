/*
 * config.h - the POSIX agent's configuration file: `key = value` lines, `#` comments. Parsed
 * once into an immutable struct; unknown keys, duplicate keys, missing required keys and bad
 * values are errors.
 *
 * Keys: server (https://host:port, required), cert, key, ca, root (paths, required),
 * state_dir (required), hw_variant (required), image_format (default "sim"),
 * poll_s (default 300), retry_min_ms (1000), retry_max_ms (300000), trial_ms (16700, the
 * simulated bootrom's trial watchdog), trial_deadline_s (90, at most 600: the agent's own
 * trial deadline), slot_size (262144, only used when the simulated flash is created),
 * health_window_s (86400, 1 to 30 days: how long after a buy health is reported),
 * renew_permille (667: ask for a new certificate after 66.7 % of its lifetime; 0: never),
 * debug (0; 1: debug lines too, e.g. whether each TLS connection resumed its session).
 * Relative paths are taken relative to the directory of the config file.
 */
#ifndef FWA_POSIX_CONFIG_H
#define FWA_POSIX_CONFIG_H

#include <stdint.h>

#define FWA_CFG_PATH_MAX 1024

struct fwa_posix_config {
	char host[256];
	char port[8];
	char host_header[300];
	char cert[FWA_CFG_PATH_MAX];
	char key[FWA_CFG_PATH_MAX];
	char ca[FWA_CFG_PATH_MAX];
	char root[FWA_CFG_PATH_MAX];
	char state_dir[FWA_CFG_PATH_MAX];
	char hw_variant[33];
	char image_format[17];
	uint32_t poll_s;
	uint32_t retry_min_ms;
	uint32_t retry_max_ms;
	uint32_t trial_ms;
	uint32_t trial_deadline_s;
	uint32_t
	    health_window_s; /* health after the confirm, seconds of uptime (0: agent default) */
	uint32_t slot_size;
	uint32_t renew_permille;
	uint32_t debug;
};

/* Parse the file at path into *out. 0 on success; -1 with "path:line: reason" in err. */
int fwa_posix_config_load(const char *path, struct fwa_posix_config *out, char *err, size_t errlen);

#endif
