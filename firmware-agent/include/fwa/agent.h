/*
 * fwa/agent.h - the device agent's public API: the update state machine over a struct fwa_port.
 *
 * Freestanding C11: no heap, no stdio. All state lives in a caller-owned struct fwa_agent, and
 * all working memory in a caller-supplied scratch buffer of at least FWA_AGENT_SCRATCH_SIZE
 * bytes (8-byte aligned). Neither is used by any other agent at the same time; many agents may
 * run in one process, each with its own port ctx, struct and scratch.
 *
 * Life of a boot (docs/agent.md has the state machine and what is persisted when):
 *   fwa_agent_init()  once per boot: loads the persisted state (the newer valid of two copies),
 *                     asks the port how this boot happened and settles a pending trial
 *                     (rolled back by the bootrom, or bought before a power loss).
 *   fwa_agent_step()  repeatedly: does whatever is due (trial health checks and buy, sending
 *                     kept reports, check-in, download, install) and says how long to wait
 *                     before the next call, or that the port is rebooting.
 *
 * Errors: functions return FWA_OK or an enum fwa_err (fwa/err.h). The agent never writes a
 * byte to flash for an update before its manifest verified against the trusted root, the
 * hardware variant and the security floor; it buys a trial only when every health check and a
 * report to the server succeeded, and raises the floor only after the buy.
 */
#ifndef FWA_AGENT_H
#define FWA_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fwa/delta.h"
#include "fwa/err.h"
#include "fwa/json.h"
#include "fwa/port.h"
#include "fwa/verify.h"

/* Bounds of persisted and wire fields. */
#define FWA_DEP_ID_MAX 64       /* deployment id characters */
#define FWA_REASON_MAX 63       /* reason text kept for a report (longer text is cut) */
#define FWA_URL_MAX 160         /* image path on the server */
#define FWA_HOST_MAX 128        /* Host header */
#define FWA_OUTBOX_MAX 8        /* reports kept until acknowledged */
#define FWA_HTTP_HEAD_MAX 2048  /* bytes of an HTTP response head */
#define FWA_HTTP_BODY_MAX 49152 /* bytes of a check-in or report answer body */
#define FWA_CHECKIN_MAX_TOKENS 1024

/* Report statuses of the device API (docs/device-api.md). */
enum fwa_status {
	FWA_ST_NONE = 0,
	FWA_ST_DOWNLOADING,
	FWA_ST_DOWNLOADED,
	FWA_ST_INSTALLING,
	FWA_ST_REBOOTING,
	FWA_ST_TRIAL,
	FWA_ST_CONFIRMED,
	FWA_ST_FAILED,
	FWA_ST_ROLLED_BACK,
	FWA_ST__COUNT
};

/* The device API's name of a status ("downloading", ...); "" for FWA_ST_NONE or out of range. */
const char *fwa_status_name(enum fwa_status s);

/* Persisted phases of the update state machine. */
enum fwa_phase {
	FWA_PHASE_IDLE = 0,      /* no update in progress (an outcome may wait to be told) */
	FWA_PHASE_DOWNLOADING,   /* manifest verified; image going into the inactive slot */
	FWA_PHASE_TRIAL_PENDING, /* slot verified in full; flash-update reboot asked for */
	FWA_PHASE_TRIAL,         /* running the trial image, buy pending */
	FWA_PHASE__COUNT
};

/* One report kept in the outbox until the server acknowledged it. */
struct fwa_event {
	uint32_t seq;      /* idempotency key within the deployment, from 1 */
	uint32_t progress; /* bytes downloaded so far */
	uint8_t status;    /* enum fwa_status */
	uint8_t on_target; /* 1: the version running was target_version, 0: base_version */
	char reason[FWA_REASON_MAX + 1];
};

/*
 * The persisted agent state: one record, written alternately into the two port state areas
 * with a sequence number and a CRC-32 (core/state.c). Exposed so that tools can show it
 * (fwa_state_load); change it only through the agent.
 */
struct fwa_state {
	uint32_t magic;     /* FWA_STATE_MAGIC */
	uint32_t format;    /* FWA_STATE_FORMAT */
	uint32_t seq;       /* incremented by every write; the higher valid copy wins */
	uint32_t floor;     /* security floor kept by the core (max'ed with the port's hw_floor) */
	uint8_t phase;      /* enum fwa_phase */
	uint8_t trial_slot; /* enum fwa_slot the trial image was written to */
	uint8_t outcome;    /* final enum fwa_status of dep_id, told at check-in until answered */
	uint8_t nevents;    /* events[0..nevents) wait for acknowledgement */
	uint32_t next_seq;  /* seq of the next event of dep_id */
	uint32_t target_secver;
	uint32_t image_size;
	uint32_t dl_offset;   /* image bytes written and known good in the inactive slot */
	uint8_t has_root;     /* root below holds a root newer than the provisioned one */
	uint8_t outcome_told; /* a check-in carrying the outcome was answered */
	uint8_t trial_tries;  /* flash-update reboots asked for this deployment */
	/* Health after the confirm of dep_id (docs/agent.md): in the bytes format 2 reserved and
	 * always wrote 0, so a record of an older agent reads as "no window open". Each counter
	 * stops at 255. */
	uint8_t health_boots;
	uint8_t image_sha256[32];
	uint8_t manifest_digest[32];
	char dep_id[FWA_DEP_ID_MAX + 1];
	char base_version[FWA_SEMVER_MAX + 1]; /* version running when dep_id started */
	char target_version[FWA_SEMVER_MAX + 1];
	char image_url[FWA_URL_MAX + 1];
	char outcome_reason[FWA_REASON_MAX + 1];
	/* A delta update in progress (delta = 1); dl_offset is then ck.out_off. */
	uint8_t delta;
	uint8_t health_wdt;    /* of health_boots, those the watchdog started */
	uint8_t health_failed; /* health checks failed after the buy */
	uint8_t health_open;   /* 1: the health window of dep_id is open */
	struct fwa_delta_params delta_params;
	struct fwa_delta_ckpt delta_ck; /* where the apply resumes after a power cut */
	char delta_url[FWA_URL_MAX + 1];
	struct fwa_event events[FWA_OUTBOX_MAX];
	struct fwa_root root;
	uint32_t crc; /* CRC-32 of every byte before this field */
};

#define FWA_STATE_MAGIC 0x46574153u /* "FWAS" */
#define FWA_STATE_FORMAT 3u         /* 2: delta updates; 3: root time role and server CA pins */

/* A pluggable health check run during a trial; FWA_OK means healthy. */
struct fwa_health_check {
	const char *name;
	enum fwa_err (*check)(void *ctx);
	void *ctx;
};

/* Configuration; the struct and everything it points to must outlive the agent. */
struct fwa_agent_config {
	const char *hw_variant;   /* this device's hardware variant, 1-32 chars */
	const char *version;      /* semver of the running image */
	const char *host;         /* Host header value for the server, e.g. "ota.example:8443" */
	const char *image_format; /* accepted manifest image_format; NULL accepts any */
	const char *root_json;    /* provisioned root metadata envelope */
	size_t root_len;
	const struct fwa_health_check *checks; /* run in order during a trial; may be NULL */
	unsigned nchecks;
	uint32_t poll_s;        /* poll interval when the server names none (0: 300) */
	uint32_t retry_min_ms;  /* first retry delay after a failure (0: 1000) */
	uint32_t retry_max_ms;  /* retry delay cap (0: 300000) */
	uint32_t io_timeout_ms; /* per receive (0: 10000) */
	/*
	 * Bytes of the running image at the start of the active slot, 0 when unknown. With the
	 * port's active_read, the agent hashes them once per boot, reports the SHA-256 at
	 * check-in (active_image_sha256) and accepts deltas made from that image.
	 */
	uint32_t image_size;
	/*
	 * The agent's own deadline of a trial, in seconds from its start in the trial boot
	 * (0: FWA_TRIAL_DEADLINE_DEFAULT_S; above FWA_TRIAL_DEADLINE_MAX_S fwa_agent_init refuses
	 * it). The port's trial_rearm keeps the watchdog alive up to it while the trial makes
	 * progress; without trial_rearm the bootrom's own deadline is the only one.
	 */
	uint32_t trial_deadline_s;
	/*
	 * Health after the confirm: how long (seconds of one boot's uptime) the agent keeps
	 * counting and reporting reboots, watchdog resets and failed health checks after it bought
	 * an update (0: FWA_HEALTH_WINDOW_DEFAULT_S). A new deployment also ends the window.
	 */
	uint32_t health_window_s;
	/*
	 * Credential renewal: with the port's cred_* members, the agent asks the server for a new
	 * certificate once this many thousandths of the current one's lifetime have passed (by
	 * its wall clock or signed time). 0: never. Above 999 fwa_agent_init refuses it.
	 */
	uint32_t renew_permille;
};

#define FWA_HEALTH_WINDOW_DEFAULT_S 86400u

#define FWA_TRIAL_DEADLINE_DEFAULT_S 90u
#define FWA_TRIAL_DEADLINE_MAX_S 600u

/* Working memory; callers size their buffer with FWA_AGENT_SCRATCH_SIZE. */
struct fwa_agent_scratch {
	struct fwa_verify_scratch verify;
	struct fwa_json_tok tok[FWA_CHECKIN_MAX_TOKENS];
	char head[FWA_HTTP_HEAD_MAX];
	char body[FWA_HTTP_BODY_MAX + 1];
	char req[4096];
	_Alignas(8) uint8_t io[4096];
	struct fwa_delta delta; /* the delta decoder (io is its page buffer) */
};
#define FWA_AGENT_SCRATCH_SIZE sizeof(struct fwa_agent_scratch)

/* The agent; members are private to the core. */
struct fwa_agent {
	const struct fwa_port *port;
	const struct fwa_agent_config *cfg;
	struct fwa_agent_scratch *s;
	struct fwa_state st;       /* RAM copy of the persisted state */
	struct fwa_root prov_root; /* provisioned root */
	struct fwa_boot_info boot;
	struct fwa_flash_geometry geo;
	unsigned st_area;  /* area holding st (the newest valid copy) */
	bool st_valid;     /* some copy decoded at init */
	uint32_t acked;    /* events with seq <= acked are acknowledged (RAM only) */
	uint32_t failures; /* consecutive failures, for backoff */
	uint64_t next_checkin_ms;
	uint64_t boot_ms;    /* now_ms at init */
	int64_t server_time; /* last server_time seen, with the now_ms it was seen at */
	uint64_t server_time_ms;
	bool told_outcome;       /* a check-in carrying the outcome was answered */
	bool outcome_saved;      /* ... and that is persisted */
	bool trial_failed;       /* health failed this boot: waiting for the revert */
	uint32_t trial_rearms;   /* trial_rearm calls this boot (at most trial_deadline_s) */
	uint64_t trial_rearm_ms; /* now_ms of the last one */
	bool active_known;       /* active_sha256 holds the running image's SHA-256 */
	uint8_t active_sha256[32];
	/* Signed time (docs/formats.md "Time tokens"): the nonce of the last check-in sent. */
	uint8_t nonce[FWA_NONCE_MIN];
	bool nonce_sent;
	bool has_signed_time; /* signed_time is a verified token's time, seen at ... */
	int64_t signed_time;  /* ... signed_time_ms */
	uint64_t signed_time_ms;
	uint64_t renew_after_ms; /* no renewal request before this now_ms (backoff) */
	bool conn_open;          /* the last answer left its connection open for the next request */
};

/* What fwa_agent_step() asks of its caller. */
struct fwa_step {
	uint32_t wait_ms; /* call fwa_agent_step() again after this long */
	bool rebooting;   /* the port accepted a reboot: drop the agent, boot again */
	bool checked_in;  /* a check-in was answered in this step */
};

/*
 * Start the agent for this boot. scratch must hold FWA_AGENT_SCRATCH_SIZE bytes, 8-aligned.
 * Verifies the provisioned root (FWA_ERR_SIGNATURE etc. when it does not verify), loads the
 * state (a fresh state when neither copy decodes: FWA_OK, first boot; an older agent's record is
 * converted and written back as the current format), reads boot info and
 * settles a pending trial: a trial slot that is running and no longer a trial was bought
 * (confirmed, floor raised); a previous slot running means the bootrom rolled back
 * (rolled_back with a reason). May write the state. FWA_ERR_BUSY when an argument is missing,
 * the scratch is too small or misaligned or trial_deadline_s is above its maximum; FWA_ERR_FLASH /
 * FWA_ERR_STATE on port failures; the agent must not be stepped after an error.
 */
FWA_WUR enum fwa_err fwa_agent_init(struct fwa_agent *a, const struct fwa_port *port,
                                    const struct fwa_agent_config *cfg, void *scratch,
                                    size_t scratch_len);

/*
 * Do what is due now and fill *out. Returns FWA_OK when nothing failed, else the error of the
 * step that failed (already logged, reported when it concerns a deployment, and backed off:
 * out->wait_ms holds the retry delay with jitter). Errors are not fatal: keep stepping.
 */
FWA_WUR enum fwa_err fwa_agent_step(struct fwa_agent *a, struct fwa_step *out);

/* True when no update is in progress and no report waits to be sent. */
bool fwa_agent_idle(const struct fwa_agent *a);

/*
 * Read the persisted state without an agent (for status tools): the newer of the two copies
 * that decode. When neither is of FWA_STATE_FORMAT, an older agent's record (formats 1 and 2)
 * is converted into *out as docs/agent.md ("Older formats") says; nothing is written (the agent
 * writes it back at fwa_agent_init). FWA_ERR_STATE when no copy decodes (never written, or
 * both torn), FWA_ERR_FLASH on read errors. *area (optional) gets the area it came from.
 */
FWA_WUR enum fwa_err fwa_state_load(const struct fwa_port *port, struct fwa_state *out,
                                    unsigned *area);

#endif
