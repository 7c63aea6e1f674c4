/*
 * fwa/port.h - the one hardware boundary of the device agent.
 *
 * The core (fwa/agent.h) reaches flash, boot control, watchdog, clocks, randomness, persistent
 * state, the network and crypto only through a struct fwa_port: a table of function pointers
 * and one `void *ctx` passed back to each of them, so that one process can run many agents
 * (the fleet simulator) and a test can count, tear or cut every flash operation.
 *
 * The model is the RP2350 bootrom (docs/agent.md, "Porting"):
 *  - Flash has an A/B partition table. The port decides which partition is the running one and
 *    which is "the other" (rom_get_b_partition / the partition table). The core only ever
 *    erases, programs and reads the INACTIVE slot, at offsets relative to its start.
 *  - A new image is started with a flash-update reboot into the other slot (rom_reboot
 *    FLASH_UPDATE): a try-before-you-buy (TBYB) trial. The running image must buy it
 *    (rom_explicit_buy) before the watchdog fires (about 16.7 s on RP2350), else the bootrom
 *    boots the previous slot again. The core buys before any other A/B pick.
 *  - The security floor: a port with a hardware floor (the OTP rollback thermometer, advanced
 *    by the buy on a secure chip) reports it through hw_floor; otherwise hw_floor is NULL and
 *    the core keeps the floor in its own persistent state.
 *  - Persistent state: two raw areas; the port only reads, erases and programs them. The core
 *    provides the redundancy (two copies, sequence numbers, CRC), see core/state.c.
 *
 * Conventions for every member:
 *  - Functions returning enum fwa_err return FWA_OK or the named error; on error nothing the
 *    core relies on has changed beyond what the operation itself may have partly done (a torn
 *    erase or program is the core's to survive, never the port's to hide).
 *  - Every flash-changing operation (slot_erase, slot_program, state_erase, state_program, and
 *    the bootrom's own writes during buy) goes through these members, so a simulated flash can
 *    count them and cut power before or halfway through operation i.
 *  - Nothing is allocated by the core; buffers passed in are owned by the caller and valid only
 *    for the duration of the call.
 *  - Members marked "optional" may be NULL.
 */
#ifndef FWA_PORT_H
#define FWA_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fwa/err.h"
#include "fwa/verify.h"

enum fwa_log_level {
	FWA_LOG_ERROR = 0,
	FWA_LOG_WARN,
	FWA_LOG_INFO,
	FWA_LOG_DEBUG,
};

/* Why the running image was started (RP2350: from the watchdog and boot info registers). */
enum fwa_reset_reason {
	FWA_RESET_UNKNOWN = 0,
	FWA_RESET_POWER_ON, /* power-on or external reset: RAM and boot registers lost */
	FWA_RESET_WATCHDOG, /* watchdog fired (an unbought trial, a hang) */
	FWA_RESET_SOFTWARE, /* reboot asked by software (reboot, boot_trial) */
};

/* Slot numbers as the device API names them: 0 is "A", 1 is "B". */
enum fwa_slot {
	FWA_SLOT_A = 0,
	FWA_SLOT_B = 1,
};

struct fwa_boot_info {
	uint8_t active_slot;         /* enum fwa_slot the running image was booted from */
	bool trial;                  /* this boot is a TBYB trial with the buy still pending */
	enum fwa_reset_reason reset; /* why this boot happened */
	/*
	 * Optional: why the bootrom did not run the other slot on this boot (RP2350: from the
	 * boot diagnostic), a static string; NULL when nothing is known. The core reports it as
	 * the reason of a rollback that no health check explains.
	 */
	const char *refused;
};

struct fwa_flash_geometry {
	uint32_t slot_size; /* bytes available in the inactive slot for an image */
	uint32_t
	    erase_size; /* erase granule (RP2350: 4096); slot_erase offsets/lengths align to it */
	uint32_t prog_size; /* program granule (RP2350: 256); slot_program offsets align to it */
	uint32_t
	    state_size; /* bytes of each of the two state areas (>= sizeof(struct fwa_state)) */
};

struct fwa_port {
	void *ctx; /* passed as the first argument of every member */

	/* Crypto ops (SHA-256, ECDSA P-256 verify); must not be NULL. Not owned by the core. */
	const struct fwa_crypto *crypto;

	/* ---- Flash: the INACTIVE slot only ---- */

	/* Geometry of the inactive slot and state areas. Constant for the life of a boot. */
	enum fwa_err (*flash_geometry)(void *ctx, struct fwa_flash_geometry *out);
	/*
	 * Erase [off, off+len) of the inactive slot to 0xFF. off and len are multiples of
	 * erase_size and within slot_size, else FWA_ERR_FLASH and nothing is erased.
	 */
	enum fwa_err (*slot_erase)(void *ctx, uint32_t off, uint32_t len);
	/*
	 * Program len bytes at off in the inactive slot (erased before). off and len are multiples
	 * of prog_size (the core pads the last page with 0xFF) and within slot_size, else
	 * FWA_ERR_FLASH. The port may program one page at a time.
	 */
	enum fwa_err (*slot_program)(void *ctx, uint32_t off, const void *data, uint32_t len);
	/* Read len bytes at off of the inactive slot (any alignment); FWA_ERR_FLASH out of range.
	 */
	enum fwa_err (*slot_read)(void *ctx, uint32_t off, void *buf, uint32_t len);
	/*
	 * Optional. Read len bytes at off of the ACTIVE slot (the running image, the base of a
	 * delta update; RP2350: the running partition through XIP); FWA_ERR_FLASH out of range.
	 * NULL when the port cannot: the agent then takes full images only and reports no
	 * active_image_sha256.
	 */
	enum fwa_err (*active_read)(void *ctx, uint32_t off, void *buf, uint32_t len);

	/* ---- Persistent state: two raw areas, area 0 and 1, each state_size bytes ---- */

	/* Read raw bytes; an erased or torn area reads whatever is there. FWA_ERR_FLASH on I/O. */
	enum fwa_err (*state_read)(void *ctx, unsigned area, uint32_t off, void *buf, uint32_t len);
	/* Erase the whole area to 0xFF. */
	enum fwa_err (*state_erase)(void *ctx, unsigned area);
	/* Program bytes into an erased area; off and len multiples of prog_size. */
	enum fwa_err (*state_program)(void *ctx, unsigned area, uint32_t off, const void *data,
	                              uint32_t len);

	/* ---- Boot control (the bootrom) ---- */

	/* How this boot happened: slot, trial with buy pending, reset reason. */
	enum fwa_err (*boot_info)(void *ctx, struct fwa_boot_info *out);
	/*
	 * Flash-update reboot into the inactive slot, whose first image_len bytes hold the new
	 * image, as a TBYB trial (RP2350: rom_reboot(FLASH_UPDATE, 1, slot address, ...)). On
	 * hardware it does not return. A simulated port may return FWA_OK: the reboot is then
	 * pending and the core returns from fwa_agent_step() with `rebooting` set; the caller
	 * must drop the agent and run the boot again. An error means no reboot happens:
	 * FWA_ERR_MALFORMED when the image is not one the bootrom would run as a trial (RP2350:
	 * an executable IMAGE_DEF with the TBYB flag), FWA_ERR_FLASH for anything else; the core
	 * then ends the deployment as failed.
	 */
	enum fwa_err (*boot_trial)(void *ctx, uint32_t image_len);
	/*
	 * Commit the running trial image (RP2350: rom_explicit_buy with a 4 KiB work buffer, which
	 * also advances the OTP rollback floor on a secure chip). FWA_OK when the buy was done;
	 * the core reads boot_info again afterwards and only believes a buy that cleared `trial`.
	 * On RP2350 the bootrom turns the watchdog off before it writes OTP, so after a failed buy
	 * nothing reverts the trial by itself: the core then calls reboot, which must end in the
	 * previous image whatever happens (the RP2350 port arms a short watchdog first).
	 */
	enum fwa_err (*buy)(void *ctx);
	/*
	 * Plain reboot (RP2350: rom_reboot, backed by a short watchdog). During an unbought trial
	 * this abandons the trial: the previous slot boots. Does not return on hardware; a
	 * simulated port may return, as for boot_trial.
	 */
	void (*reboot)(void *ctx);
	/*
	 * Optional. The hardware security floor (RP2350 secure boot: OTP rollback thermometer).
	 * NULL when the device has none: the core keeps the floor in its state.
	 */
	enum fwa_err (*hw_floor)(void *ctx, uint32_t *floor);

	/* ---- Watchdog ---- */

	/*
	 * Feed the watchdog in normal operation. The core never feeds it during an unbought
	 * trial, so that the bootrom's trial deadline stands. Optional.
	 */
	void (*watchdog_feed)(void *ctx);
	/*
	 * Optional. Re-arm the watchdog of an unbought trial to fire ms from now; the port arms at
	 * most its hardware's period (RP2350: about 16.7 s) and returns the milliseconds it armed,
	 * 0 when it armed nothing. The core calls it only during a trial that makes progress (a
	 * health check passed, bytes moved to or from the server), at most once a second, and
	 * never so that the watchdog would fire after the agent's own trial deadline
	 * (fwa_agent_config.trial_deadline_s): a trial lasts at most that long, a hung one at most
	 * one period after its last progress. Safe because an unbought trial image is never chosen
	 * on a normal boot: whenever the watchdog fires, the previous image boots. NULL: the
	 * bootrom's deadline alone bounds the trial.
	 */
	uint32_t (*trial_rearm)(void *ctx, uint32_t ms);

	/* ---- Clocks ---- */

	/* Monotonic milliseconds since an arbitrary origin; never goes backwards within a boot. */
	uint64_t (*now_ms)(void *ctx);
	/*
	 * Optional. Wall-clock Unix seconds into *out; false when the device has no trustworthy
	 * clock (the core then uses the server's advisory time for root expiry).
	 */
	bool (*wall_time)(void *ctx, int64_t *out);

	/*
	 * ---- Randomness: jitter of retries, and the nonce of signed time (docs/formats.md),
	 * which must not be predictable: a hardware or cryptographic generator ----
	 */

	enum fwa_err (*random)(void *ctx, void *buf, size_t len);

	/* ---- Byte-stream transport to the configured server: TLS with the device cert ---- */

	/*
	 * Open one connection to the server (TCP + TLS with client certificate, server verified
	 * against the provisioned CA). FWA_ERR_TRANSPORT on any failure. At most one connection is
	 * open at a time; connect while open closes the old one first.
	 */
	enum fwa_err (*tr_connect)(void *ctx);
	/* Send all len bytes; FWA_ERR_TRANSPORT on failure or timeout. */
	enum fwa_err (*tr_send)(void *ctx, const void *buf, size_t len);
	/*
	 * Receive up to cap bytes, waiting at most timeout_ms. *got = bytes received (> 0), or 0
	 * for an orderly end of stream. FWA_ERR_TRANSPORT on error or timeout.
	 */
	enum fwa_err (*tr_recv)(void *ctx, void *buf, size_t cap, uint32_t timeout_ms, size_t *got);
	/* Close the connection; fine when none is open. */
	void (*tr_close)(void *ctx);

	/* ---- Log sink ---- */

	/* Optional. One line, NUL-terminated, without newline; never key material. */
	void (*log)(void *ctx, enum fwa_log_level level, const char *msg);

	/*
	 * ---- Credential renewal (optional: the first four all or none; docs/agent.md) ----
	 *
	 * The device's key pair and certificate are the port's. A renewal makes a *pending* pair:
	 * its key is persisted before the request leaves (cred_csr), its certificate before it is
	 * used (cred_install); tr_connect then presents the pending pair, falling back to the old
	 * one after a few connections that no answer accepted, and back to the pending one when
	 * the old one is refused (cred_refused), until cred_accepted makes it the only pair. A
	 * power cut at any instant leaves the old pair usable, or the new one once it was accepted.
	 */
	/*
	 * Validity of the certificate in use (Unix seconds), and whether a pending pair waits
	 * for its first use. FWA_ERR_CRYPTO when the certificate cannot be read.
	 */
	enum fwa_err (*cred_lifetime)(void *ctx, int64_t *not_before, int64_t *not_after,
	                              bool *pending);
	/*
	 * A PEM PKCS#10 request (NUL-terminated, *len without the NUL) for the pending key, made
	 * and persisted first when there is none; generated by the crypto library, never by hand.
	 * FWA_ERR_TOO_LARGE over cap, FWA_ERR_CRYPTO / FWA_ERR_FLASH on failure.
	 */
	enum fwa_err (*cred_csr)(void *ctx, char *buf, size_t cap, size_t *len);
	/*
	 * Persist the issued certificate chain (PEM) as the pending pair's; FWA_ERR_KEY when it
	 * is not for the pending key, FWA_ERR_FLASH when it cannot be written (nothing changes).
	 */
	enum fwa_err (*cred_install)(void *ctx, const char *pem, size_t len);
	/*
	 * The server answered a request on the current connection: when that connection used the
	 * pending pair, it becomes the device's only pair (the old one is dropped).
	 */
	void (*cred_accepted)(void *ctx);
	/*
	 * The server answered a request on the current connection with 403: it refused the
	 * certificate presented (or the device). When that connection presented the old pair
	 * while a pending pair waits, the server may already have pinned the pending one (its
	 * first use succeeded, but the answer was lost): the next connections present the pending
	 * pair again, as many times as a new one. Optional, but without it a device whose old
	 * pair was refused keeps presenting it until it restarts.
	 */
	void (*cred_refused)(void *ctx);

	/*
	 * Optional. The server CAs the trusted root pins (docs/formats.md, server_cas): SHA-256
	 * of each CA's DER SubjectPublicKeyInfo; n = 0 when the root pins none (then the CA
	 * provisioned with the device). Called at init and whenever a new root changes the set;
	 * from then on tr_connect accepts only a server chain that verifies up to a pinned CA.
	 */
	void (*tr_server_cas)(void *ctx, const uint8_t (*pins)[32], unsigned n);
};

#endif
