/*
 * main.c - otad: reads the configuration, opens the store (applying migrations), loads the
 * trusted root, starts the listeners, tells systemd it is ready, pings the watchdog, and on
 * SIGTERM or SIGINT stops accepting, lets requests in flight finish, and exits.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "artifact/artifact.h"
#include "audit/audit.h"
#include "common/clock.h"
#include "common/log.h"
#include "config/config.h"
#include "events/hub.h"
#include "events/webhook.h"
#include "http/http.h"
#include "http/ticket_key.h"
#include "rollout/rollout.h"
#include "store/store.h"

/* Seconds between two judgements of the running rollouts (docs/rollouts.md, "When"). */
#define OTA_ROLLOUT_TICK_S 5

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: otad --config FILE [--check-config]\n"
	        "       otad --ticket-key-generate PATH\n"
	        "  -c, --config FILE   configuration (see etc/otad.conf)\n"
	        "  -t, --check-config  validate the configuration and exit\n"
	        "      --list-routes   print every route served (METHOD PATH LISTENER) and exit\n"
	        "      --ticket-key-generate PATH\n"
	        "                      write a fresh session-ticket key ([tls] ticket_key) to\n"
	        "                      PATH (mode 0600, replacing an old key at once) and exit\n"
	        "  -h, --help          this text\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, 't'},
	    {"list-routes", no_argument, NULL, 'L'},
	    {"ticket-key-generate", required_argument, NULL, 'K'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	const char *config_path = NULL;
	bool check_only = false;
	struct ota_config cfg;
	struct ota_store *store = NULL;
	struct ota_images *images = NULL;
	struct ota_trust *trust = NULL;
	struct ota_pki *pki = NULL;
	struct ota_http *http = NULL;
	struct ota_audit *audit = NULL;
	struct ota_events_hub *hub = NULL;
	struct ota_webhooks *webhooks = NULL;
	char msg[512] = "", path[OTA_PATH_MAX + 16];
	int opt, status = 1;
	bool journal = ota_log_under_journal();

	while ((opt = getopt_long(argc, argv, "c:th", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'L':
			ota_http_list_routes(stdout);
			return 0;
		case 'K':
			if (optind != argc) {
				usage(stderr);
				return 2;
			}
			if (ota_ticket_key_generate(optarg, msg, sizeof(msg)) != OTA_OK) {
				fprintf(stderr, "otad: %s\n", msg);
				return 1;
			}
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!config_path || optind != argc) {
		usage(stderr);
		return 2;
	}
	ota_log_init(LOG_INFO, journal);
	if (ota_config_load(config_path, &cfg, msg, sizeof(msg)) != OTA_OK) {
		log_err("configuration: %s", msg);
		return 1;
	}
	if (ota_webhook_config_check(&cfg, msg, sizeof(msg)) != OTA_OK) {
		log_err("configuration: %s: %s", config_path, msg);
		return 1;
	}
	/* The shared ticket key is read again by the listeners; checked here for --check-config. */
	uint8_t tk[OTA_TICKET_KEY_SIZE];
	if (cfg.ticket_key[0] &&
	    ota_ticket_key_read(cfg.ticket_key, tk, msg, sizeof(msg)) != OTA_OK) {
		log_err("configuration: %s: [tls] %s", config_path, msg);
		return 1;
	}
	memset(tk, 0, sizeof(tk));
	if (check_only) {
		printf("%s: configuration OK\n", config_path);
		return 0;
	}
	ota_log_init(cfg.log_level, journal);
	/* The test clock (docs/testing.md): a test feature, off unless its variable is set. */
	int64_t clock_offset;
	if (ota_clock_init(&clock_offset) != OTA_OK) {
		log_err("%s must be an integer of seconds within ten years", OTA_TEST_CLOCK_ENV);
		return 1;
	}
	if (clock_offset)
		log_warn("test clock: %s=%lld: rollout decisions and the device API run %lld s "
		         "off the system clock (a test feature, never for production)",
		         OTA_TEST_CLOCK_ENV, (long long)clock_offset, (long long)clock_offset);

	/* Signals are taken synchronously by the main thread; workers never see them. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (mkdir(cfg.data_dir, 0750) != 0 && errno != EEXIST) {
		log_err("data folder %s: %s", cfg.data_dir, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/otad.db", cfg.data_dir);
	struct ota_store_target target = {
	    .backend = cfg.store_postgresql ? OTA_STORE_POSTGRESQL : OTA_STORE_SQLITE,
	    .path = path,
	    .conninfo = cfg.store_pg_conninfo,
	};
	if (ota_store_open_target(&target, &store, msg, sizeof(msg)) != OTA_OK) {
		log_err("database %s: %s", cfg.store_postgresql ? "(PostgreSQL)" : path, msg);
		goto out;
	}
	if (ota_audit_open(store, cfg.data_dir, &audit, msg, sizeof(msg)) != OTA_OK) {
		log_err("audit key: %s", msg);
		goto out;
	}
	if (ota_images_open(cfg.data_dir, cfg.image_max, &images) != OTA_OK) {
		log_err("image folder in %s cannot be used", cfg.data_dir);
		goto out;
	}
	if (ota_trust_open(store, cfg.trusted_root, &trust, msg, sizeof(msg)) != OTA_OK) {
		log_err("trusted root: %s", msg);
		goto out;
	}
	if (!cfg.trusted_root[0])
		log_warn("no [trust] root configured: releases cannot be registered");
	if (ota_pki_open(&cfg, &pki, msg, sizeof(msg)) != OTA_OK) {
		log_err("%s", msg);
		goto out;
	}
	struct ota_http_deps deps = {.cfg = &cfg, .store = store, .images = images, .trust = trust};
	deps.audit = audit;
	/* Events out (docs/events.md): the audit head watcher, the webhook deliverers. An idle
	 * stream's heartbeat comes before the connection timeout would close it. */
	unsigned beat = cfg.events_heartbeat;
	if (beat > cfg.connection_timeout / 2)
		beat = cfg.connection_timeout / 2 ? cfg.connection_timeout / 2 : 1;
	if (ota_events_hub_start(store, beat, cfg.events_max_streams, &hub) != OTA_OK) {
		log_err("events: cannot start the audit head watcher");
		goto out;
	}
	deps.events = hub;
	if (ota_webhooks_start(&cfg, store, hub, &webhooks, msg, sizeof(msg)) != OTA_OK) {
		log_err("webhooks: %s", msg);
		goto out;
	}
	deps.pki = pki;
	if (ota_http_start(&deps, &http, msg, sizeof(msg)) != OTA_OK) {
		log_err("listeners: %s", msg);
		goto out;
	}
	log_notice("otad ready: device API on port %u, management API on port %u, schema %d",
	           (unsigned)ota_http_device_port(http), (unsigned)ota_http_management_port(http),
	           ota_store_schema_version(store));
	sd_notifyf(0, "READY=1\nSTATUS=serving devices on port %u",
	           (unsigned)ota_http_device_port(http));

	uint64_t wd_usec = 0;
	bool watchdog = sd_watchdog_enabled(0, &wd_usec) > 0;
	time_t last_checkpoint = time(NULL), last_judged = 0;
	time_t last_flush = time(NULL);
	for (;;) {
		/* Wake at half the watchdog interval to ping it, at most every rollout tick. */
		uint64_t wait = watchdog ? wd_usec / 2 : 10000000;
		if (wait > OTA_ROLLOUT_TICK_S * 1000000ull)
			wait = OTA_ROLLOUT_TICK_S * 1000000ull;
		if (wait > cfg.last_seen_flush * 1000000ull)
			wait = cfg.last_seen_flush * 1000000ull;
		struct timespec ts = {(time_t)(wait / 1000000), (long)(wait % 1000000) * 1000};
		int sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			log_notice("signal %d: stopping (grace %u s)", sig, cfg.shutdown_grace);
			break;
		}
		if (sig == SIGHUP) {
			/* The CRLs and the shared ticket key only: the rest of the configuration
			 * needs a restart. */
			char why[512] = "";
			if (ota_http_reload_crls(http, why, sizeof(why)) == OTA_OK)
				log_notice(
				    "SIGHUP: CRLs loaded again (other changes need a restart)");
			else
				log_err(
				    "SIGHUP: the CRLs were not loaded again, the old ones stay: %s",
				    why[0] ? why : "out of memory");
			if (cfg.ticket_key[0]) {
				why[0] = '\0';
				if (ota_http_reload_ticket_key(http, why, sizeof(why)) == OTA_OK)
					log_notice("SIGHUP: ticket key %s loaded again",
					           cfg.ticket_key);
				else
					log_err("SIGHUP: the ticket key was not loaded again, the "
					        "old one stays: %s",
					        why);
			}
		}
		if (watchdog)
			sd_notify(0, "WATCHDOG=1");
		time_t now = time(NULL);
		/* The one place rollouts are judged at their own time (soak ends, silence). */
		if (now - last_judged >= OTA_ROLLOUT_TICK_S) {
			if (ota_rollout_tick(store, ota_clock_now()) != OTA_OK)
				log_err("rollouts: cannot list the running rollouts to judge");
			last_judged = now;
		}
		/* The check-in times kept in memory (store.h, ota_store_seen_flush()). */
		if (now - last_flush >= (time_t)cfg.last_seen_flush) {
			if (ota_store_seen_flush(store) != OTA_OK)
				log_err("store: cannot write the devices' check-in times");
			last_flush = now;
		}
		/* Sign the audit chain's head now and then (nothing when it did not move). */
		if (now - last_checkpoint >= (time_t)cfg.audit_checkpoint_interval) {
			if (ota_audit_checkpoint(audit, (int64_t)now, NULL) != OTA_OK)
				log_err("audit: checkpoint failed");
			last_checkpoint = now;
		}
	}
	sd_notify(0, "STOPPING=1");
	ota_events_hub_close(hub); /* live streams end: they would hold the grace period */
	ota_http_stop(http, cfg.shutdown_grace);
	http = NULL;
	if (ota_store_seen_flush(store) != OTA_OK)
		log_err("store: cannot write the devices' check-in times");
	if (ota_audit_checkpoint(audit, (int64_t)time(NULL), NULL) != OTA_OK)
		log_err("audit: final checkpoint failed");
	log_notice("otad stopped");
	status = 0;
out:
	ota_events_hub_close(hub);
	ota_http_stop(http, 0);
	ota_webhooks_stop(webhooks);
	ota_events_hub_free(hub);
	ota_trust_free(trust);
	ota_pki_free(pki);
	ota_audit_free(audit);
	ota_images_free(images);
	ota_store_free(store);
	return status;
}
