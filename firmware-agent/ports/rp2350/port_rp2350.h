/*
 * port_rp2350.h - the device agent's hardware boundary (fwa/port.h) on the RP2350 of a
 * Raspberry Pi Pico 2 W, built on the Pico SDK 2.x.
 *
 * What each part of struct fwa_port maps to (docs/rp2350.md has the whole story):
 *  - flash: the A/B partition pair of the partition table (partition_table.json). The running
 *    partition comes from the bootrom's boot info, the other one from rom_get_b_partition();
 *    erase and program go through flash_range_erase/flash_range_program inside
 *    flash_safe_execute, and only ever touch the other partition or the agent's state
 *    partition; reads use the untranslated XIP window.
 *  - boot control: rom_reboot(FLASH_UPDATE) into the other partition for a TBYB trial,
 *    rom_get_sys_info(BOOT_INFO) for "is this a trial with a buy pending", rom_explicit_buy
 *    with a 4 KiB work buffer. The port never calls rom_pick_ab_partition.
 *  - watchdog (watchdog_rp2350.c): armed by the port outside a trial and after the buy, and
 *    fed only on progress: when the core asks (watchdog_feed) and when bytes move over the
 *    transport. During a trial the bootrom's, re-armed only by the core (trial_rearm) up to
 *    the agent's trial deadline; a short backstop behind every reboot, since a failed
 *    rom_explicit_buy leaves it off.
 *  - anti-rollback: with secure boot enabled, the bootrom's OTP rollback thermometer rows are
 *    the hardware floor; otherwise hw_floor is NULL and the core keeps the floor. The
 *    firmware never writes OTP (the bootrom does, during the buy of a signed image).
 *  - transport: Wi-Fi through cyw43 and lwIP (poll mode), mutual TLS through lwIP's altcp_tls
 *    over mbedTLS, the server CA pinned (or the root's server CA pins), credentials from the
 *    identity partition.
 *  - credential renewal (cred_rp2350.c): a new key and its request made by mbedTLS, the
 *    pending and renewed pairs in the identity partition's last 8 KiB (credstore.c).
 *  - crypto: SHA-256 on the RP2350 accelerator (pico_sha256, software mbedTLS when the
 *    accelerator is busy), ECDSA P-256 verification through mbedTLS.
 *
 * Single-threaded: every member runs on the core that calls fwa_agent_step(); Wi-Fi and lwIP
 * run in poll mode from the port's waits and from fwa_rp2350_poll().
 */
#ifndef FWA_PORT_RP2350_H
#define FWA_PORT_RP2350_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fwa/err.h"
#include "credstore.h"
#include "fwa/port.h"
#include "identity.h"

/* Partition ids (partition_table.json) of the agent's state and of the identity. */
#define FWA_RP2350_STATE_PARTITION_ID 0x4657412d53544154ull    /* "FWA-STAT" */
#define FWA_RP2350_IDENTITY_PARTITION_ID 0x4657412d49444e54ull /* "FWA-IDNT" */

/* Watchdog period outside a trial and the longest trial re-arm; the RP2350 allows ~16.7 s. */
#define FWA_RP2350_WATCHDOG_MS 16000u
/* The backstop behind a reboot: fires if rom_reboot did not take the chip down first. */
#define FWA_RP2350_BACKSTOP_MS 200u
/*
 * Bounds of one blocking transport step. The core re-arms a trial's watchdog between steps
 * (at most once a second), so connect + send, and each receive, must stay below
 * FWA_RP2350_WATCHDOG_MS less a second: 9 s + 5 s, and the core's 10 s receive timeout.
 */
#define FWA_RP2350_CONNECT_TIMEOUT_MS 9000u
#define FWA_RP2350_SEND_TIMEOUT_MS 5000u

/*
 * The renewed credentials (cred_rp2350.c, credstore.c): two copies of FWA_RP2350_CRED_COPY
 * bytes in the last two sectors of the identity partition, past the provisioned records
 * (at most 16,400 bytes, which tools/provision.py pads to 20 KiB).
 */
#define FWA_RP2350_CRED_COPY 4096u
#define FWA_RP2350_CRED_OFFSET (24u * 1024u) /* from the start of the identity partition */

/* A key (PEM or DER) and certificate chain (PEM with its NUL), as mbedTLS parses them. */
struct fwa_rp2350_pair {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *cert;
	size_t cert_len;
};

struct fwa_rp2350_flash_area {
	uint32_t start; /* storage offset from the start of flash */
	uint32_t size;
};

/* The port's state; owned by the caller (static storage), one per device. */
struct fwa_rp2350 {
	struct fwa_port port;          /* hand &port to fwa_agent_init() */
	struct fwa_rp2350_identity id; /* the provisioned identity, loaded by init */
	struct fwa_rp2350_flash_area identity;
	struct fwa_rp2350_flash_area slot_other;   /* the inactive partition of the A/B pair */
	struct fwa_rp2350_flash_area slot_running; /* the running one: a delta's base */
	struct fwa_rp2350_flash_area state;        /* the agent's state partition: two areas */
	struct fwa_rp2350_flash_area cred;         /* renewed credentials, in the identity */
	uint32_t state_area_size;
	int part_a, part_b, part_running; /* partition table indices */
	struct fwa_boot_info boot;
	bool secure_boot;
	bool watchdog_armed;
	void *tr; /* transport state (transport_rp2350.c) */
};

/*
 * Set up the port for this boot: reads the partition table and the boot info, checks that
 * the image runs from one partition of an A/B pair and that the state and identity partitions
 * exist, loads the identity into p->id, arms the watchdog unless this boot is a trial, and
 * prepares the transport (Wi-Fi is joined on the first connect). FWA_ERR_FLASH when the
 * partition table is not the expected one, FWA_ERR_MALFORMED when the identity is missing or
 * damaged, FWA_ERR_KEY when the device certificate is not ECDSA P-256 or the device key is
 * not its key (mbedtls_pk_check_pair), FWA_ERR_CRYPTO when the TLS credentials do not parse.
 * *why (optional) says which.
 */
FWA_WUR enum fwa_err fwa_rp2350_init(struct fwa_rp2350 *p, const char **why);

/* ---- watchdog_rp2350.c ---- */

/* Arm the watchdog for FWA_RP2350_WATCHDOG_MS (outside a trial, and after the buy). */
void fwa_rp2350_watchdog_arm(struct fwa_rp2350 *p);
/*
 * Feed the watchdog because something moved forward (the core's watchdog_feed, and the
 * transport when bytes flow); does nothing during an unbought trial or before it is armed.
 */
void fwa_rp2350_progress(struct fwa_rp2350 *p);
/* The port's trial_rearm (fwa/port.h): re-arm for min(ms, FWA_RP2350_WATCHDOG_MS) in a trial. */
uint32_t fwa_rp2350_trial_rearm(void *ctx, uint32_t ms);
/* Arm a FWA_RP2350_BACKSTOP_MS watchdog that is not paused by a debugger, before a reboot. */
void fwa_rp2350_watchdog_backstop(void);

/* Keep Wi-Fi and lwIP running while the application waits; returns after at most ms. */
void fwa_rp2350_poll(struct fwa_rp2350 *p, uint32_t ms);

/*
 * The TRNG with its health tests on (entropy_rp2350.c; also mbedTLS's entropy source):
 * 0, or nonzero when the TRNG keeps failing its tests.
 */
int fwa_rp2350_entropy(void *ctx, unsigned char *buf, size_t len);

/* The crypto port: SHA-256 on the accelerator, ECDSA P-256 verification by mbedTLS. */
const struct fwa_crypto *fwa_rp2350_crypto(void);

/* ---- cred_rp2350.c: credential renewal ---- */

/*
 * Open the store of renewed credentials over `flash` (the port's cred area), bound to the
 * provisioned certificate. FWA_ERR_FLASH when it cannot be read; *why says so.
 */
FWA_WUR enum fwa_err fwa_rp2350_cred_setup(struct fwa_rp2350 *p,
                                           const struct fwa_credstore_flash *flash,
                                           const char **why);
/*
 * The pair to present: the pair in use (pending false: the committed renewal, else the
 * provisioned pair; always true), or the pending pair (false when none waits). The pointers
 * are valid until the next change of the store.
 */
bool fwa_rp2350_cred_pair(const struct fwa_rp2350 *p, bool pending, struct fwa_rp2350_pair *out);
/* Make the pending pair the pair in use; FWA_ERR_BUSY without one, FWA_ERR_FLASH. */
FWA_WUR enum fwa_err fwa_rp2350_cred_commit(struct fwa_rp2350 *p);
/* The cred_lifetime, cred_csr and cred_install members (fwa/port.h). */
enum fwa_err fwa_rp2350_cred_lifetime(void *ctx, int64_t *not_before, int64_t *not_after,
                                      bool *pending);
enum fwa_err fwa_rp2350_cred_csr(void *ctx, char *buf, size_t cap, size_t *len);
enum fwa_err fwa_rp2350_cred_install(void *ctx, const char *pem, size_t len);

/* Transport members (transport_rp2350.c), installed by fwa_rp2350_init(). */
/*
 * Check the credentials (a P-256 certificate whose key is the device key: FWA_ERR_KEY) and
 * prepare TLS (FWA_ERR_CRYPTO) and Wi-Fi (FWA_ERR_TRANSPORT); *why says which.
 */
FWA_WUR enum fwa_err fwa_rp2350_tr_setup(struct fwa_rp2350 *p, const char **why);
enum fwa_err fwa_rp2350_tr_connect(void *ctx);
enum fwa_err fwa_rp2350_tr_send(void *ctx, const void *buf, size_t len);
enum fwa_err fwa_rp2350_tr_recv(void *ctx, void *buf, size_t cap, uint32_t timeout_ms, size_t *got);
void fwa_rp2350_tr_close(void *ctx);
/*
 * cred_accepted: when the open connection presented the pending pair, commit it and present
 * it from now on (sessions of the old identity are dropped).
 */
void fwa_rp2350_tr_accepted(void *ctx);
/*
 * cred_refused: when the last connection presented the old pair while a pending pair waits,
 * present the pending pair again for its tries (the server may have pinned it already).
 */
void fwa_rp2350_tr_refused(void *ctx);
/*
 * tr_server_cas: from now on a server chain must verify up to a CA whose SubjectPublicKeyInfo
 * hashes to one of the pins (n = 0: the provisioned CA alone); drops the resumable session.
 */
void fwa_rp2350_tr_server_cas(void *ctx, const uint8_t (*pins)[32], unsigned n);
/* Close everything and power Wi-Fi down before a reboot; the next connect starts it again. */
void fwa_rp2350_tr_shutdown(struct fwa_rp2350 *p);

#endif
