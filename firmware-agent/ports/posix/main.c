/*
 * ota-agent: the device agent for Linux-class devices and for simulation. It runs the portable
 * core over the simulated hardware in the state folder (flash file, bootrom with the RP2350
 * rules) and the OpenSSL transport, and offers the tools around it: provisioning a simulated
 * device with its factory image, making simulated images to sign, and showing the device's
 * slots and persisted state.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fwa/agent.h"
#include "fwa/crypto_openssl.h"
#include "sim.h"
#include "tls.h"

#define EXIT_USAGE 64
#define EXIT_BRICKED 3
#define EXIT_TIMEOUT 2

/* The device: simulated hardware first (the sim port members use the first member). */
struct dev {
	struct fwa_sim sim;
	struct fwa_tls tls;
	struct fwa_cred cred;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fputs("usage: ota-agent --config FILE run        poll loop until SIGTERM\n"
	      "       ota-agent --config FILE once [--timeout S]\n"
	      "                                          one full cycle: check in, update, report\n"
	      "       ota-agent --config FILE status     slots, versions, floor, state\n"
	      "       ota-agent --config FILE provision IMAGE\n"
	      "                                          create the simulated flash, IMAGE in slot "
	      "A\n"
	      "       ota-agent mkimage --version V [--security-version N] [--hw H]\n"
	      "                 [--fault none|never-buy|crash-boot|fail-health|buy-fails|\n"
	      "                          regress-after-buy]\n"
	      "                 [--size BYTES] OUT\n",
	      f);
}

static enum fwa_err c_lifetime(void *ctx, int64_t *nb, int64_t *na, bool *pending)
{
	return fwa_cred_lifetime(&((struct dev *)ctx)->cred, nb, na, pending);
}

static enum fwa_err c_csr(void *ctx, char *buf, size_t cap, size_t *len)
{
	return fwa_cred_csr(&((struct dev *)ctx)->cred, buf, cap, len);
}

static enum fwa_err c_install(void *ctx, const char *pem, size_t len)
{
	return fwa_cred_install(&((struct dev *)ctx)->cred, pem, len);
}

static void c_accepted(void *ctx)
{
	fwa_tls_accepted(&((struct dev *)ctx)->tls);
}

static void c_refused(void *ctx)
{
	fwa_tls_refused(&((struct dev *)ctx)->tls);
}

static void t_server_cas(void *ctx, const uint8_t (*pins)[32], unsigned n)
{
	fwa_tls_server_cas(&((struct dev *)ctx)->tls, pins, n);
}

static enum fwa_err t_connect(void *ctx)
{
	return fwa_tls_connect(&((struct dev *)ctx)->tls);
}

static enum fwa_err t_send(void *ctx, const void *buf, size_t len)
{
	return fwa_tls_send(&((struct dev *)ctx)->tls, buf, len);
}

static enum fwa_err t_recv(void *ctx, void *buf, size_t cap, uint32_t timeout_ms, size_t *got)
{
	return fwa_tls_recv(&((struct dev *)ctx)->tls, buf, cap, timeout_ms, got);
}

static void t_close(void *ctx)
{
	fwa_tls_close(&((struct dev *)ctx)->tls);
}

static bool wall(void *ctx, int64_t *out)
{
	(void)ctx;
	*out = (int64_t)time(NULL);
	return true;
}

static char *read_file(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, max + 1, f);
	fclose(f);
	if (n > max) {
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void flash_path(const struct fwa_posix_config *c, char *out, size_t n)
{
	snprintf(out, n, "%s/flash.bin", c->state_dir);
}

static void sleep_ms(uint64_t ms)
{
	while (ms && !stop) {
		uint64_t d = ms > 200 ? 200 : ms;
		struct timespec ts = {(time_t)(d / 1000), (long)(d % 1000) * 1000000L};

		nanosleep(&ts, NULL);
		ms -= d;
	}
}

/*
 * One agent step; false when the simulated image hung during it (sim.hang_jmp), in which case
 * the caller lets the watchdog end the boot.
 */
static bool step_or_hang(struct fwa_agent *agent, struct fwa_sim *sim, struct fwa_step *st,
                         enum fwa_err *err)
{
	jmp_buf hang;

	if (setjmp(hang)) {
		sim->hang_jmp = NULL;
		return false;
	}
	sim->hang_jmp = &hang;
	*err = fwa_agent_step(agent, st);
	sim->hang_jmp = NULL;
	return true;
}

static int cmd_run(const struct fwa_posix_config *c, bool once, unsigned timeout_s)
{
	static struct dev dev;
	struct fwa_port port;
	struct fwa_agent *agent = NULL;
	struct fwa_health_check check = {"selftest", fwa_sim_selftest, &dev.sim};
	struct fwa_agent_config acfg;
	char path[FWA_CFG_PATH_MAX + 16], version[FWA_SEMVER_MAX + 1];
	void *scratch = NULL;
	char *root = NULL;
	size_t root_len = 0;
	uint64_t deadline;
	bool checked_in = false; /* once: a cycle ends idle after an answered check-in */
	int rc = 1, lock = -1;

	root = read_file(c->root, FWA_ENVELOPE_MAX, &root_len);
	if (!root) {
		fprintf(stderr, "ota-agent: %s: %s\n", c->root, strerror(errno));
		return 1;
	}
	/* One device, one agent: a second process on the same flash would interleave writes. */
	snprintf(path, sizeof(path), "%s/lock", c->state_dir);
	lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, "ota-agent: %s: %s\n", path,
		        errno == EWOULDBLOCK ? "another ota-agent runs on this state folder"
		        : errno == ENOENT    ? "no state folder (provision the device first)"
		                             : strerror(errno));
		goto out;
	}
	flash_path(c, path, sizeof(path));
	if (fwa_sim_open_file(&dev.sim, path, false, 0) < 0) {
		fprintf(stderr, "ota-agent: %s: %s (provision the device first)\n", path,
		        strerror(errno));
		goto out;
	}
	dev.sim.trial_ms = c->trial_ms;
	dev.sim.verbose = c->debug ? 2 : 1;
	dev.sim.name = "ota-agent";
	/* Finish a renewal commit a power cut interrupted before the pair is loaded. */
	fwa_cred_init(&dev.cred, c->cert, c->key);
	if (fwa_tls_init(&dev.tls, c->host, c->port, c->cert, c->key, c->ca) < 0) {
		fprintf(stderr, "ota-agent: %s\n", dev.tls.err);
		goto out;
	}
	dev.tls.cred = &dev.cred;
	dev.tls.debug = c->debug != 0;
	fwa_sim_port(&port, &dev.sim, fwa_crypto_openssl());
	port.ctx = &dev;
	port.wall_time = wall;
	port.tr_connect = t_connect;
	port.tr_send = t_send;
	port.tr_recv = t_recv;
	port.tr_close = t_close;
	port.cred_lifetime = c_lifetime;
	port.cred_csr = c_csr;
	port.cred_install = c_install;
	port.cred_accepted = c_accepted;
	port.cred_refused = c_refused;
	port.tr_server_cas = t_server_cas;
	scratch = aligned_alloc(8, (FWA_AGENT_SCRATCH_SIZE + 7) / 8 * 8);
	agent = malloc(sizeof(*agent));
	if (!scratch || !agent) {
		fprintf(stderr, "ota-agent: out of memory\n");
		goto out;
	}
	memset(&acfg, 0, sizeof(acfg));
	acfg.hw_variant = c->hw_variant;
	acfg.version = version;
	acfg.host = c->host_header;
	acfg.image_format = c->image_format;
	acfg.root_json = root;
	acfg.root_len = root_len;
	acfg.checks = &check;
	acfg.nchecks = 1;
	acfg.poll_s = c->poll_s;
	acfg.retry_min_ms = c->retry_min_ms;
	acfg.retry_max_ms = c->retry_max_ms;
	acfg.trial_deadline_s = c->trial_deadline_s;
	acfg.health_window_s = c->health_window_s;
	acfg.renew_permille = c->renew_permille;
	deadline = fwa_sim_now(&dev.sim) + (uint64_t)timeout_s * 1000u;

	for (;;) { /* one iteration per boot */
		struct fwa_step st;
		enum fwa_err err;

		if (fwa_sim_boot(&dev.sim) != FWA_OK) {
			fprintf(stderr, "ota-agent: no bootable image: the device is bricked\n");
			rc = EXIT_BRICKED;
			goto out;
		}
		snprintf(version, sizeof(version), "%s", dev.sim.running.version);
		acfg.image_size = SIM_PAGE + dev.sim.running.payload_len;
		err = fwa_agent_init(agent, &port, &acfg, scratch, FWA_AGENT_SCRATCH_SIZE);
		if (err != FWA_OK) {
			fprintf(stderr, "ota-agent: agent start failed: %s\n", fwa_strerror(err));
			goto out;
		}
		for (;;) {
			uint64_t wait, left;

			if (stop) {
				rc = 0;
				goto out;
			}
			if (fwa_sim_watchdog_due(&dev.sim)) {
				fprintf(stderr, "ota-agent: watchdog fired during the trial\n");
				fwa_sim_watchdog_reset(&dev.sim);
				break;
			}
			if (!step_or_hang(agent, &dev.sim, &st, &err)) {
				/* The image hung: nothing runs until the watchdog fires. */
				sleep_ms(fwa_sim_watchdog_left(&dev.sim));
				continue;
			}
			checked_in |= st.checked_in;
			if (st.rebooting)
				break;
			/* A post-confirm regression: once bought, the image hangs after a check-in
			 * until the watchdog resets it (once per boot the watchdog did not start).
			 */
			if (dev.sim.running.fault == SIM_FAULT_REGRESS && !dev.sim.trial &&
			    st.checked_in && dev.sim.reset != FWA_RESET_WATCHDOG) {
				fprintf(stderr,
				        "ota-agent: image hung after its buy; watchdog reset\n");
				fwa_sim_watchdog_reset(&dev.sim);
				break;
			}
			if (once && checked_in && err == FWA_OK && st.wait_ms > 0 &&
			    fwa_agent_idle(agent)) {
				rc = 0;
				goto out;
			}
			if (once && fwa_sim_now(&dev.sim) >= deadline) {
				fprintf(stderr, "ota-agent: cycle not finished within %u s\n",
				        timeout_s);
				rc = EXIT_TIMEOUT;
				goto out;
			}
			wait = st.wait_ms;
			left = fwa_sim_watchdog_left(&dev.sim);
			if (wait > left)
				wait = left;
			if (once && wait > deadline - fwa_sim_now(&dev.sim))
				wait = deadline - fwa_sim_now(&dev.sim);
			sleep_ms(wait);
		}
	}
out:
	fwa_tls_free(&dev.tls);
	fwa_sim_close(&dev.sim);
	if (lock >= 0)
		close(lock);
	free(scratch);
	free(agent);
	free(root);
	return rc;
}

static const char *phase_name(unsigned p)
{
	static const char *const n[] = {"idle", "downloading", "trial-pending", "trial"};

	return p < FWA_PHASE__COUNT ? n[p] : "?";
}

static int cmd_status(const struct fwa_posix_config *c)
{
	struct fwa_sim sim;
	struct fwa_port port;
	struct fwa_state *st = malloc(sizeof(*st));
	char path[FWA_CFG_PATH_MAX + 16];
	struct sim_image_header h;
	enum fwa_err err;
	int rc = 1;

	flash_path(c, path, sizeof(path));
	if (!st)
		return 1;
	if (fwa_sim_open_file(&sim, path, false, 0) < 0) {
		fprintf(stderr, "ota-agent: %s: %s\n", path, strerror(errno));
		free(st);
		return 1;
	}
	for (unsigned s = 0; s < 2; s++) {
		if (fwa_sim_image_valid(&sim, s, &h))
			printf("slot %c: version %s security_version %u fault %s\n", 'A' + s,
			       h.version, h.security_version,
			       fwa_sim_fault_name((enum sim_fault)h.fault));
		else
			printf("slot %c: no valid image\n", 'A' + s);
	}
	if (fwa_sim_boot(&sim) == FWA_OK)
		printf("boots: slot %c version %s\n", 'A' + sim.active, sim.running.version);
	else
		printf("boots: nothing (bricked)\n");
	fwa_sim_port(&port, &sim, fwa_crypto_openssl());
	err = fwa_state_load(&port, st, NULL);
	if (err == FWA_ERR_STATE) {
		printf("state: none (factory)\nfloor: 0\n");
		rc = 0;
	} else if (err == FWA_OK) {
		printf("state: %s\nfloor: %u\nstate_seq: %u\n", phase_name(st->phase), st->floor,
		       st->seq);
		if (st->dep_id[0])
			printf("deployment: %s\n", st->dep_id);
		if (st->target_version[0])
			printf("target: %s (security_version %u)\n", st->target_version,
			       st->target_secver);
		if (st->phase == FWA_PHASE_DOWNLOADING)
			printf("downloaded: %u of %u\n", st->dl_offset, st->image_size);
		if (st->outcome)
			printf("outcome: %s%s%s\n", fwa_status_name(st->outcome),
			       st->outcome_reason[0] ? ": " : "", st->outcome_reason);
		printf("outbox: %u\n", st->nevents);
		if (st->has_root)
			printf("root_version: %u\n", st->root.version);
		rc = 0;
	} else {
		fprintf(stderr, "ota-agent: state unreadable: %s\n", fwa_strerror(err));
	}
	fwa_sim_close(&sim);
	free(st);
	return rc;
}

static int cmd_provision(const struct fwa_posix_config *c, const char *image_path)
{
	struct fwa_sim sim;
	struct sim_image_header h;
	char path[FWA_CFG_PATH_MAX + 16];
	size_t len;
	char *img = read_file(image_path, c->slot_size, &len);
	int rc = 1;

	if (!img) {
		fprintf(stderr, "ota-agent: %s: %s\n", image_path, strerror(errno));
		return 1;
	}
	if (mkdir(c->state_dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "ota-agent: %s: %s\n", c->state_dir, strerror(errno));
		goto out;
	}
	flash_path(c, path, sizeof(path));
	if (remove(path) < 0 && errno != ENOENT) {
		fprintf(stderr, "ota-agent: %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (fwa_sim_open_file(&sim, path, true, c->slot_size) < 0) {
		fprintf(stderr, "ota-agent: %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (fwa_sim_provision(&sim, (const uint8_t *)img, len) != FWA_OK ||
	    !fwa_sim_image_valid(&sim, 0, &h)) {
		fprintf(stderr, "ota-agent: %s is not a simulated image that fits a slot\n",
		        image_path);
		fwa_sim_close(&sim);
		remove(path);
		goto out;
	}
	printf("provisioned %s: slot A runs %s\n", path, h.version);
	fwa_sim_close(&sim);
	rc = 0;
out:
	free(img);
	return rc;
}

static int cmd_mkimage(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"version", required_argument, NULL, 'v'},
	    {"security-version", required_argument, NULL, 's'},
	    {"hw", required_argument, NULL, 'w'},
	    {"fault", required_argument, NULL, 'f'},
	    {"size", required_argument, NULL, 'n'},
	    {NULL, 0, NULL, 0},
	};
	const char *version = NULL, *hw = "sim";
	unsigned long secver = 0, size = 65536;
	int fault = SIM_FAULT_NONE, o;
	uint8_t *buf;
	long len;
	FILE *f;
	char *end;

	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'v':
			version = optarg;
			break;
		case 's':
			errno = 0;
			secver = strtoul(optarg, &end, 10);
			if (errno || *end || secver > UINT32_MAX) {
				fprintf(stderr, "ota-agent: bad --security-version\n");
				return EXIT_USAGE;
			}
			break;
		case 'w':
			hw = optarg;
			break;
		case 'f':
			fault = fwa_sim_fault_parse(optarg);
			if (fault < 0) {
				fprintf(stderr, "ota-agent: unknown fault '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'n':
			errno = 0;
			size = strtoul(optarg, &end, 10);
			if (errno || *end || size > (64u << 20)) {
				fprintf(stderr, "ota-agent: bad --size\n");
				return EXIT_USAGE;
			}
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!version || optind != argc - 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!fwa_semver_valid(version, strlen(version))) {
		fprintf(stderr, "ota-agent: --version must be a semantic version\n");
		return EXIT_USAGE;
	}
	buf = malloc(size + SIM_PAGE);
	if (!buf)
		return 1;
	len = fwa_sim_mkimage(version, (uint32_t)secver, hw, (enum sim_fault)fault, (uint32_t)size,
	                      buf, size + SIM_PAGE);
	if (len < 0) {
		fprintf(stderr, "ota-agent: version or hardware variant too long\n");
		free(buf);
		return EXIT_USAGE;
	}
	f = fopen(argv[optind], "wb");
	if (!f || fwrite(buf, 1, (size_t)len, f) != (size_t)len || fclose(f) != 0) {
		fprintf(stderr, "ota-agent: %s: %s\n", argv[optind], strerror(errno));
		free(buf);
		return 1;
	}
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	struct fwa_posix_config cfg;
	const char *config = NULL;
	char err[512];
	int i = 1;
	unsigned long timeout = 300;
	struct sigaction sa;

	if (argc >= 2 && strcmp(argv[1], "mkimage") == 0)
		return cmd_mkimage(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "--config") == 0) {
		config = argv[2];
		i = 3;
	}
	if (!config || i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (fwa_posix_config_load(config, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "ota-agent: %s\n", err);
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(argv[i], "run") == 0 && i + 1 == argc)
		return cmd_run(&cfg, false, 0);
	if (strcmp(argv[i], "once") == 0) {
		if (i + 3 == argc && strcmp(argv[i + 1], "--timeout") == 0) {
			char *end;

			timeout = strtoul(argv[i + 2], &end, 10);
			if (*end || timeout == 0 || timeout > 86400) {
				fprintf(stderr, "ota-agent: --timeout must be 1-86400 seconds\n");
				return EXIT_USAGE;
			}
		} else if (i + 1 != argc) {
			usage(stderr);
			return EXIT_USAGE;
		}
		return cmd_run(&cfg, true, (unsigned)timeout);
	}
	if (strcmp(argv[i], "status") == 0 && i + 1 == argc)
		return cmd_status(&cfg);
	if (strcmp(argv[i], "provision") == 0 && i + 2 == argc)
		return cmd_provision(&cfg, argv[i + 1]);
	usage(stderr);
	return EXIT_USAGE;
}
