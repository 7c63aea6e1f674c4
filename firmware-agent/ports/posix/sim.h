/*
 * sim.h - simulated device hardware for the POSIX port: a NOR flash (file-backed or in
 * memory) with an A/B partition table, a bootrom with the RP2350 rules (flash-update reboot
 * into a try-before-you-buy trial, explicit buy, watchdog trial deadline, revert), the
 * simulated image format, and the power-cut hooks of the sweep.
 *
 * Flash layout (4 KiB sectors, 256-byte pages):
 *   0x00000 partition table      0x01000, 0x02000 boot records (two copies, seq + CRC)
 *   0x03000 agent state area 0   0x04000 agent state area 1
 *   0x10000 slot A               0x10000 + slot_size  slot B
 * Erase sets bytes to 0xFF; program ANDs (NOR): programming over data that was not erased
 * yields garbage, as on real flash.
 *
 * The bootrom "registers" (a pending flash-update target, the reset reason) survive a
 * software or watchdog reboot but not a power cut (fwa_sim_power_cut).
 *
 * Errors: functions returning enum fwa_err give FWA_ERR_FLASH for I/O and layout errors;
 * functions returning int give 0 on success and -1 with errno set.
 */
#ifndef FWA_POSIX_SIM_H
#define FWA_POSIX_SIM_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fwa/agent.h"
#include "fwa/port.h"

#define SIM_SECTOR 4096u
#define SIM_PAGE 256u
#define SIM_SLOT0_OFF 0x10000u
#define SIM_TRIAL_MS 16700u /* RP2350: the watchdog the bootrom arms for a TBYB image */
#define SIM_IMAGE_MAGIC "FWASIMG1"

enum sim_fault {
	SIM_FAULT_NONE = 0,
	SIM_FAULT_NEVER_BUY,   /* the image hangs where it would buy its trial (see hang_jmp) */
	SIM_FAULT_CRASH_BOOT,  /* the image crashes at boot (watchdog reset) */
	SIM_FAULT_FAIL_HEALTH, /* the image's self-test health check fails */
	SIM_FAULT_BUY_FAILS,   /* the bootrom's buy turns the watchdog off, then fails (OTP) */
	/* a post-confirm regression: the trial passes and is bought, then the self-test fails
	 * and (ota-agent) the image hangs once after a check-in, so the watchdog resets it */
	SIM_FAULT_REGRESS,
	SIM_FAULT__COUNT
};

/* Header of a simulated image: the first 256-byte page, followed by payload_len bytes. */
struct sim_image_header {
	char magic[8];
	uint32_t header_size; /* 256 */
	uint32_t payload_len;
	char version[FWA_SEMVER_MAX + 1];
	char hw_variant[FWA_HW_MAX + 1];
	uint8_t pad[2];
	uint32_t security_version;
	uint32_t fault;       /* enum sim_fault */
	uint32_t payload_crc; /* CRC-32 of the payload */
	uint32_t header_crc;  /* CRC-32 of every header byte before this field */
};

/* How an operation index is interrupted. */
enum sim_cut {
	SIM_CUT_NONE = 0,
	SIM_CUT_BEFORE, /* power lost before operation i starts */
	SIM_CUT_TEAR,   /* power lost halfway through operation i */
};

struct fwa_sim {
	uint8_t *flash;
	size_t flash_size;
	uint32_t slot_size;
	bool mapped; /* flash is an mmap of a file */
	/* bootrom registers */
	int pending_trial; /* slot to boot as a trial at the next boot, -1 none */
	enum fwa_reset_reason reset;
	const char *refused; /* why the last flash-update target was not run (this boot) */
	/* this boot */
	bool booted;
	uint8_t active;
	bool trial;
	uint64_t trial_deadline_ms;
	struct sim_image_header running;
	uint32_t trial_ms; /* watchdog period of a trial (default SIM_TRIAL_MS), and its maximum */
	unsigned rearms;   /* instrumentation: trial_rearm calls that armed this boot */
	/* secure boot: an OTP rollback floor the buy advances; images below it do not boot */
	bool otp_floor_enabled;
	uint32_t otp_floor;
	/* clock: real CLOCK_MONOTONIC, or a virtual one the caller advances */
	bool virtual_clock;
	uint64_t vclock_ms;
	/* fault injection: count flash-changing operations, cut power at one of them */
	uint64_t ops;
	uint64_t cut_at; /* 1-based operation index; 0 never */
	enum sim_cut cut_mode;
	jmp_buf *cut_jmp; /* longjmp target (value 1) when power is cut */
	/*
	 * flash fault: right after slot program number flip_at (1-based count of slot_program
	 * calls, 0 never), one bit in the middle of what it programmed reads back inverted, as
	 * a weak or disturbed cell would. Once; the cell is good when programmed again.
	 */
	uint64_t flip_at;
	uint64_t slot_programs; /* instrumentation: slot_program calls so far */
	unsigned flips;         /* instrumentation: bits flipped so far */
	/*
	 * longjmp target (value 1) when the running firmware hangs (SIM_FAULT_NEVER_BUY, at the
	 * buy): nothing runs until the watchdog fires. NULL: the buy returns FWA_OK without
	 * buying instead.
	 */
	jmp_buf *hang_jmp;
	uint64_t trial_boot_ops; /* instrumentation: ops count at the last trial boot */
	uint64_t buy_ops;        /* ops count when buy was last entered */
	uint64_t bought_ms;      /* instrumentation: clock when the last buy succeeded */
	/* randomness and logging */
	uint64_t rng;
	int verbose;      /* 0 quiet, 1 info, 2 debug */
	const char *name; /* log prefix */
};

/* Size of a whole simulated flash for a given slot size. */
size_t fwa_sim_flash_size(uint32_t slot_size);

/* A fresh simulated flash in memory, all 0xFF. -1 on allocation failure. */
int fwa_sim_open_mem(struct fwa_sim *s, uint32_t slot_size);
/*
 * Map the flash file at path; with create, make it (slot_size bytes per slot, all 0xFF)
 * when missing. -1 with errno on failure (ENOENT when missing and not create, EINVAL when
 * the file's partition table is not a simulated one).
 */
int fwa_sim_open_file(struct fwa_sim *s, const char *path, bool create, uint32_t slot_size);
/* Unmap or free the flash. Fine on a zeroed struct. */
void fwa_sim_close(struct fwa_sim *s);

/*
 * Factory provisioning: partition table, the image in slot A, boot record pointing at A, both
 * state areas erased. Not counted as operations. FWA_ERR_IMAGE_SIZE when it does not fit.
 */
FWA_WUR enum fwa_err fwa_sim_provision(struct fwa_sim *s, const uint8_t *image, size_t len);

/*
 * Run the bootrom: a pending flash-update target boots as a trial (deadline armed) when its
 * image is valid; otherwise the slot of the newest valid boot record boots. An image with the
 * crash fault resets through the watchdog. FWA_ERR_FLASH when nothing bootable is left
 * (bricked). On success s->running holds the running image's header.
 */
FWA_WUR enum fwa_err fwa_sim_boot(struct fwa_sim *s);

/* Power lost: the bootrom registers are gone; the next boot is a power-on. */
void fwa_sim_power_cut(struct fwa_sim *s);

/*
 * Count one persistent write that is atomic (a file written under a temporary name, synced,
 * renamed: credentials): a power cut armed at it happens before it, in either cut mode.
 */
void fwa_sim_atomic_op(struct fwa_sim *s);
/* A watchdog reset now (the trial deadline passed, or a hang). */
void fwa_sim_watchdog_reset(struct fwa_sim *s);
/* True when an unbought trial has passed its deadline. */
bool fwa_sim_watchdog_due(struct fwa_sim *s);
/* Milliseconds until the trial deadline (UINT64_MAX when none). */
uint64_t fwa_sim_watchdog_left(struct fwa_sim *s);

uint64_t fwa_sim_now(struct fwa_sim *s);

/* Whether a slot holds a valid image, and its header. */
bool fwa_sim_image_valid(const struct fwa_sim *s, unsigned slot, struct sim_image_header *out);

/*
 * Fill every member of *p but the transport (tr_*) from the simulated hardware: flash, state,
 * boot control, clock, randomness, log. crypto is taken as given. hw_floor is set only when
 * s->otp_floor_enabled (a secure chip). p->ctx is s; a caller that
 * adds a transport with its own state makes s the first member of a larger struct and sets
 * p->ctx to that struct (the sim members only use its first member).
 */
void fwa_sim_port(struct fwa_port *p, struct fwa_sim *s, const struct fwa_crypto *crypto);

/* The health check of a simulated image: fails for SIM_FAULT_FAIL_HEALTH. ctx is the sim. */
enum fwa_err fwa_sim_selftest(void *ctx);

/*
 * Build a simulated image into out[0..cap): header then payload_len pseudo-random bytes
 * seeded by the version. Returns the total length, or -1 when it does not fit or an argument
 * is out of bounds.
 */
long fwa_sim_mkimage(const char *version, uint32_t security_version, const char *hw_variant,
                     enum sim_fault fault, uint32_t payload_len, uint8_t *out, size_t cap);

/*
 * Name of a fault ("none", "never-buy", "crash-boot", "fail-health", "buy-fails") and back
 * (-1 unknown).
 */
const char *fwa_sim_fault_name(enum sim_fault f);
int fwa_sim_fault_parse(const char *s);

#endif
