/*
 * port_rp2350.c - the agent's port on the RP2350 (Pico 2 W): flash areas from the partition
 * table, boot control through the bootrom (TBYB trial, boot info, explicit buy), the
 * clocks, randomness, the OTP rollback floor and the log. The transport, crypto and watchdog
 * members live in transport_rp2350.c, crypto_rp2350.c and watchdog_rp2350.c, which call
 * nothing in this file. No update logic lives here: the core decides, the port only does what
 * port.h names.
 */
#include <stdio.h>
#include <string.h>

#include "pico/stdlib.h"

#include "boot/bootrom_constants.h"
#include "boot/picobin.h"
#include "boot/picoboot_constants.h"
#include "hardware/flash.h"
#include "hardware/regs/addressmap.h"
#include "hardware/regs/otp_data.h"
#include "hardware/structs/watchdog.h"
#include "hardware/watchdog.h"
#include "pico/bootrom.h"
#include "pico/flash.h"

#include "bootimage.h"
#include "fwa/agent.h"
#include "port_rp2350.h"

/* bootimage.c repeats a few SDK constants to build without it: they must still agree. */
_Static_assert(PICOBIN_IMAGE_TYPE_EXE_TBYB_BITS == 0x8000u, "picobin.h changed");
_Static_assert(PICOBIN_BLOCK_MARKER_START == 0xffffded3u, "picobin.h changed");
_Static_assert(BOOT_DIAGNOSTIC_IMAGE_CONDITION_FAILURE == 0x8000u, "bootrom_constants.h changed");
_Static_assert(BOOT_DIAGNOSTIC_IMAGE_DEF_VERIFIED_OK == 0x1000u, "bootrom_constants.h changed");

/* Marker in watchdog scratch 0 (scratch 4-7 belong to the bootrom) for a reboot we asked for. */
#define SOFT_REBOOT_MAGIC 0x46574152u /* "FWAR" */

/* Rows of the bootrom's default rollback thermometer (picotool's default for --rollback). */
#ifndef FWA_RP2350_ROLLBACK_ROW0
#define FWA_RP2350_ROLLBACK_ROW0 OTP_DATA_DEFAULT_BOOT_VERSION0_ROW
#endif
#ifndef FWA_RP2350_ROLLBACK_ROW1
#define FWA_RP2350_ROLLBACK_ROW1 OTP_DATA_DEFAULT_BOOT_VERSION1_ROW
#endif

/* The bootrom's work area for explicit buy (it may rewrite one 4 KiB sector). */
static uint8_t __attribute__((aligned(4))) buy_workarea[4096];
_Static_assert(sizeof(buy_workarea) >= FWA_RP2350_IMAGE_HEAD, "boot_trial reads the head into it");

static struct fwa_rp2350 *P(void *ctx)
{
	return ctx;
}

/* ---- flash ---- */

struct flash_job {
	bool erase;
	uint32_t off;
	const uint8_t *data;
	uint32_t len;
};

static void flash_job_run(void *arg)
{
	const struct flash_job *j = arg;

	if (j->erase)
		flash_range_erase(j->off, j->len);
	else
		flash_range_program(j->off, j->data, j->len);
}

/*
 * Erase or program [off, off+len) of `area`, which must hold the whole range. Interrupts are
 * off and XIP is down while the flash is written: flash_safe_execute() arranges both.
 */
static enum fwa_err flash_write(const struct fwa_rp2350_flash_area *area, bool erase, uint32_t off,
                                const void *data, uint32_t len, uint32_t align)
{
	if (len == 0 || off % align || len % align || off > area->size || len > area->size - off)
		return FWA_ERR_FLASH;
	struct flash_job j = {erase, area->start + off, data, len};
	return flash_safe_execute(flash_job_run, &j, 1000) == PICO_OK ? FWA_OK : FWA_ERR_FLASH;
}

static enum fwa_err flash_read(const struct fwa_rp2350_flash_area *area, uint32_t off, void *buf,
                               uint32_t len)
{
	if (off > area->size || len > area->size - off)
		return FWA_ERR_FLASH;
	/* Untranslated and uncached: the partition's storage bytes, never a stale cache line. */
	memcpy(buf, (const void *)(XIP_NOCACHE_NOALLOC_NOTRANSLATE_BASE + area->start + off), len);
	return FWA_OK;
}

static enum fwa_err flash_geometry(void *ctx, struct fwa_flash_geometry *out)
{
	struct fwa_rp2350 *p = P(ctx);

	out->slot_size = p->slot_other.size;
	out->erase_size = FLASH_SECTOR_SIZE;
	out->prog_size = FLASH_PAGE_SIZE;
	out->state_size = p->state_area_size;
	return FWA_OK;
}

static enum fwa_err slot_erase(void *ctx, uint32_t off, uint32_t len)
{
	return flash_write(&P(ctx)->slot_other, true, off, NULL, len, FLASH_SECTOR_SIZE);
}

static enum fwa_err slot_program(void *ctx, uint32_t off, const void *data, uint32_t len)
{
	return flash_write(&P(ctx)->slot_other, false, off, data, len, FLASH_PAGE_SIZE);
}

static enum fwa_err slot_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
	return flash_read(&P(ctx)->slot_other, off, buf, len);
}

/* The running partition, read (never written) as the base of a delta update. */
static enum fwa_err active_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
	return flash_read(&P(ctx)->slot_running, off, buf, len);
}

static bool state_area(struct fwa_rp2350 *p, unsigned area, struct fwa_rp2350_flash_area *out)
{
	if (area > 1)
		return false;
	out->start = p->state.start + area * p->state_area_size;
	out->size = p->state_area_size;
	return true;
}

static enum fwa_err state_read(void *ctx, unsigned area, uint32_t off, void *buf, uint32_t len)
{
	struct fwa_rp2350_flash_area a;

	if (!state_area(P(ctx), area, &a))
		return FWA_ERR_FLASH;
	return flash_read(&a, off, buf, len);
}

static enum fwa_err state_erase(void *ctx, unsigned area)
{
	struct fwa_rp2350_flash_area a;

	if (!state_area(P(ctx), area, &a))
		return FWA_ERR_FLASH;
	return flash_write(&a, true, 0, NULL, a.size, FLASH_SECTOR_SIZE);
}

static enum fwa_err state_program(void *ctx, unsigned area, uint32_t off, const void *data,
                                  uint32_t len)
{
	struct fwa_rp2350_flash_area a;

	if (!state_area(P(ctx), area, &a))
		return FWA_ERR_FLASH;
	return flash_write(&a, false, off, data, len, FLASH_PAGE_SIZE);
}

/* The store of renewed credentials: its two copies in the identity partition's cred area. */
static enum fwa_err cred_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
	return flash_read(&P(ctx)->cred, off, buf, len);
}

static enum fwa_err cred_erase(void *ctx, uint32_t off, uint32_t len)
{
	return flash_write(&P(ctx)->cred, true, off, NULL, len, FLASH_SECTOR_SIZE);
}

static enum fwa_err cred_program(void *ctx, uint32_t off, const void *data, uint32_t len)
{
	return flash_write(&P(ctx)->cred, false, off, data, len, FLASH_PAGE_SIZE);
}

/* ---- partition table ---- */

static void area_of(uint32_t loc, struct fwa_rp2350_flash_area *out)
{
	uint32_t first = (loc & PICOBIN_PARTITION_LOCATION_FIRST_SECTOR_BITS) >>
	                 PICOBIN_PARTITION_LOCATION_FIRST_SECTOR_LSB;
	uint32_t last = (loc & PICOBIN_PARTITION_LOCATION_LAST_SECTOR_BITS) >>
	                PICOBIN_PARTITION_LOCATION_LAST_SECTOR_LSB;

	out->start = first * FLASH_SECTOR_SIZE;
	out->size = (last + 1 - first) * FLASH_SECTOR_SIZE;
}

/* Find the A/B pair, the state and the identity partitions; false when any is missing. */
static bool read_partitions(struct fwa_rp2350 *p, struct fwa_rp2350_flash_area *ab,
                            const char **why)
{
	uint32_t buf[16 * 4 + 1];
	bool have_state = false, have_id = false;
	int n = rom_get_partition_table_info(
	    buf, count_of(buf), PT_INFO_PARTITION_LOCATION_AND_FLAGS | PT_INFO_PARTITION_ID);

	if (n <= 0 || buf[0] != (PT_INFO_PARTITION_LOCATION_AND_FLAGS | PT_INFO_PARTITION_ID)) {
		*why = "no partition table loaded (flash partition_table.json first)";
		return false;
	}
	p->part_a = p->part_b = -1;
	for (int i = 1, part = 0; i + 1 < n; part++) {
		uint32_t loc = buf[i++];
		uint32_t flags = buf[i++];
		uint64_t id = 0;
		struct fwa_rp2350_flash_area a;

		if (flags & PICOBIN_PARTITION_FLAGS_HAS_ID_BITS) {
			if (i + 1 >= n)
				break;
			id = buf[i] | (uint64_t)buf[i + 1] << 32;
			i += 2;
		}
		area_of(loc, &a);
		if (id == FWA_RP2350_STATE_PARTITION_ID) {
			p->state = a;
			have_state = true;
		} else if (id == FWA_RP2350_IDENTITY_PARTITION_ID) {
			p->identity = a;
			have_id = true;
		}
		if (p->part_a < 0 && part < 16) {
			int b = rom_get_b_partition((uint)part);
			if (b >= 0 && b < 16) {
				p->part_a = part;
				p->part_b = b;
			}
		}
		if (part < 2)
			ab[part] = a;
	}
	if (p->part_a != 0 || p->part_b != 1) {
		*why = "partitions 0 and 1 are not an A/B pair";
		return false;
	}
	if (!have_state || !have_id) {
		*why = "the agent-state or identity partition is missing";
		return false;
	}
	return true;
}

/* Copy the identity partition into RAM (the TLS configuration points into it) and parse it. */
static enum fwa_err identity_load(const struct fwa_rp2350_flash_area *area,
                                  struct fwa_rp2350_identity *out, const char **why)
{
	static uint8_t copy[FWA_RP2350_IDENTITY_MAX + 16];
	size_t n = area->size < sizeof(copy) ? area->size : sizeof(copy);

	/* The untranslated, uncached XIP window reads any partition by its storage offset. */
	memcpy(copy, (const void *)(XIP_NOCACHE_NOALLOC_NOTRANSLATE_BASE + area->start), n);
	return fwa_rp2350_identity_parse(copy, n, out, why);
}

/* ---- boot control ---- */

static enum fwa_reset_reason reset_reason(const boot_info_t *bi)
{
	if (watchdog_hw->scratch[0] == SOFT_REBOOT_MAGIC) {
		watchdog_hw->scratch[0] = 0;
		return FWA_RESET_SOFTWARE;
	}
	if ((bi->boot_type & ~BOOT_TYPE_CHAINED_FLAG) == BOOT_TYPE_FLASH_UPDATE)
		return FWA_RESET_SOFTWARE;
	if (watchdog_caused_reboot())
		return FWA_RESET_WATCHDOG;
	return FWA_RESET_POWER_ON;
}

static enum fwa_err read_boot_info(struct fwa_rp2350 *p, struct fwa_boot_info *out,
                                   boot_info_t *raw)
{
	boot_info_t bi;

	if (!rom_get_boot_info(&bi))
		return FWA_ERR_FLASH;
	if (bi.partition != p->part_a && bi.partition != p->part_b)
		return FWA_ERR_FLASH; /* not booted from the A/B pair */
	out->active_slot = bi.partition == p->part_b ? FWA_SLOT_B : FWA_SLOT_A;
	out->trial = (bi.tbyb_and_update_info & BOOT_TBYB_AND_UPDATE_FLAG_BUY_PENDING) != 0;
	/* What the bootrom held against the other partition (A in the low half-word, B high). */
	out->refused = fwa_rp2350_diagnostic_reason(bi.boot_diagnostic,
	                                            out->active_slot == FWA_SLOT_A ? 1u : 0u);
	if (raw)
		*raw = bi;
	return FWA_OK;
}

static enum fwa_err boot_info(void *ctx, struct fwa_boot_info *out)
{
	struct fwa_rp2350 *p = P(ctx);
	struct fwa_boot_info now;
	enum fwa_err err = read_boot_info(p, &now, NULL);

	if (err != FWA_OK)
		return err;
	now.reset = p->boot.reset; /* the reason is the boot's, read once at init */
	*out = now;
	return FWA_OK;
}

static enum fwa_err boot_trial(void *ctx, uint32_t image_len)
{
	struct fwa_rp2350 *p = P(ctx);

	if (image_len == 0 || image_len > p->slot_other.size)
		return FWA_ERR_FLASH;
	/*
	 * Only a TBYB image runs as a trial: any other image would be booted, and stay, without
	 * one. The manifest's signature covers these bytes, but a release made from the wrong
	 * build is still caught here, before the reboot.
	 */
	/* The buy's work area is free outside a trial: no second 4 KiB of RAM for this. */
	uint8_t *head = buy_workarea;
	uint32_t n = image_len < FWA_RP2350_IMAGE_HEAD ? image_len : FWA_RP2350_IMAGE_HEAD;
	const char *why = NULL;
	if (flash_read(&p->slot_other, 0, head, n) != FWA_OK)
		return FWA_ERR_FLASH;
	if (fwa_rp2350_image_check_tbyb(head, n, &why) != FWA_OK) {
		printf("fwa: %s\n", why);
		return FWA_ERR_MALFORMED;
	}
	/*
	 * A flash-update boot of the other partition: the bootrom prefers it, runs it as a TBYB
	 * trial and starts the watchdog; without a buy the previous partition boots again. The
	 * delay must be at least 1 ms (0 means "no reboot").
	 */
	fflush(stdout);
	fwa_rp2350_tr_shutdown(p);
	int rc =
	    rom_reboot(REBOOT2_FLAG_REBOOT_TYPE_FLASH_UPDATE | REBOOT2_FLAG_NO_RETURN_ON_SUCCESS,
	               10, XIP_BASE + p->slot_other.start, 0);
	printf("fwa: flash-update reboot refused (%d)\n", rc);
	return FWA_ERR_FLASH;
}

static enum fwa_err buy(void *ctx)
{
	struct fwa_rp2350 *p = P(ctx);
	struct fwa_boot_info now;
	int rc;

	/*
	 * Clears the TBYB flag of the running image (rewriting its first sector), erases the
	 * other partition's first sector on a version downgrade, and on a secure chip advances the
	 * OTP rollback thermometer to this image's rollback version (the bootrom writes OTP; this
	 * firmware never does). May reboot when several OTP rows must be written.
	 */
	rc = rom_explicit_buy(buy_workarea, sizeof(buy_workarea));
	if (rc != BOOTROM_OK) {
		printf("fwa: explicit buy failed (%d)\n", rc);
		return FWA_ERR_FLASH;
	}
	/* Believe the bootrom, not the return code: is the buy still pending? */
	if (read_boot_info(p, &now, NULL) != FWA_OK || now.trial)
		return FWA_ERR_FLASH;
	p->boot.trial = false;
	/* Bought: from now on the application's own watchdog protects against hangs. */
	fwa_rp2350_watchdog_arm(p);
	return FWA_OK;
}

static void reboot(void *ctx)
{
	(void)ctx;
	watchdog_hw->scratch[0] = SOFT_REBOOT_MAGIC;
	fflush(stdout);
	/*
	 * A failed rom_explicit_buy leaves the watchdog off: arm a short one first, so that this
	 * boot ends even if rom_reboot refuses. Either way the next boot is a normal one, which
	 * never picks an unbought trial image: the previous image runs.
	 */
	fwa_rp2350_watchdog_backstop();
	rom_reboot(REBOOT2_FLAG_REBOOT_TYPE_NORMAL | REBOOT2_FLAG_NO_RETURN_ON_SUCCESS, 10, 0, 0);
	for (;;)
		tight_loop_contents();
}

/* ---- anti-rollback ---- */

/* One RBIT3 row group: a bit counts when set in at least two of its three copies. */
static bool read_rbit3(uint16_t row, uint32_t *out)
{
	uint32_t raw[3];
	otp_cmd_t cmd = {.flags = row}; /* a raw read (no ECC): 24 bits in each word */

	if (rom_func_otp_access((uint8_t *)raw, sizeof(raw), cmd) != BOOTROM_OK)
		return false;
	*out = ((raw[0] & raw[1]) | (raw[0] & raw[2]) | (raw[1] & raw[2])) & 0xffffffu;
	return true;
}

static enum fwa_err hw_floor(void *ctx, uint32_t *floor)
{
	static const uint16_t rows[] = {FWA_RP2350_ROLLBACK_ROW0, FWA_RP2350_ROLLBACK_ROW1};
	uint32_t v = 0;

	(void)ctx;
	/* The thermometer: version n sets the n lowest bits, 24 per row group. */
	for (unsigned r = 0; r < count_of(rows); r++) {
		uint32_t bits;
		if (!read_rbit3(rows[r], &bits))
			return FWA_ERR_FLASH;
		for (unsigned b = 0; b < 24; b++)
			if (bits & (1u << b))
				v = r * 24 + b + 1;
	}
	*floor = v;
	return FWA_OK;
}

static bool secure_boot_enabled(void)
{
	uint32_t buf[2];

	/* The bootrom's resolved view of OTP CRIT1. */
	if (rom_get_sys_info(buf, count_of(buf), SYS_INFO_CRITICAL) != 2 ||
	    buf[0] != SYS_INFO_CRITICAL)
		return false;
	return (buf[1] & OTP_DATA_CRIT1_SECURE_BOOT_ENABLE_BITS) != 0;
}

/* ---- watchdog, clocks, randomness, log ---- */

static void watchdog_feed(void *ctx)
{
	fwa_rp2350_progress(P(ctx));
}

static uint64_t now_ms(void *ctx)
{
	(void)ctx;
	return time_us_64() / 1000u;
}

/*
 * The TRNG with its health tests (entropy_rp2350.c), not pico_rand: besides retry jitter this
 * draws the signed-time nonce, which must not be predictable.
 */
static enum fwa_err random_bytes(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	return fwa_rp2350_entropy(NULL, buf, len) == 0 ? FWA_OK : FWA_ERR_CRYPTO;
}

static void log_line(void *ctx, enum fwa_log_level level, const char *msg)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};

	(void)ctx;
	printf("fwa %s: %s\n", (unsigned)level < count_of(names) ? names[level] : "?", msg);
}

/* ---- setup ---- */

enum fwa_err fwa_rp2350_init(struct fwa_rp2350 *p, const char **why)
{
	struct fwa_rp2350_flash_area ab[2];
	const char *dummy;
	boot_info_t raw;
	enum fwa_err err;

	if (!why)
		why = &dummy;
	memset(p, 0, sizeof(*p));
	if (!read_partitions(p, ab, why))
		return FWA_ERR_FLASH;
	err = read_boot_info(p, &p->boot, &raw);
	if (err != FWA_OK) {
		*why = "the running image was not booted from the A/B pair";
		return err;
	}
	p->boot.reset = reset_reason(&raw);
	p->part_running = raw.partition;
	p->slot_other = ab[p->part_running == p->part_a ? 1 : 0];
	p->slot_running = ab[p->part_running == p->part_a ? 0 : 1];
	/*
	 * Two equal state areas, each the fewest whole sectors that hold one struct fwa_state:
	 * every state write erases one area, so smaller is faster and wears less.
	 */
	p->state_area_size = (uint32_t)(sizeof(struct fwa_state) + FLASH_SECTOR_SIZE - 1) /
	                     FLASH_SECTOR_SIZE * FLASH_SECTOR_SIZE;
	if (2 * p->state_area_size > p->state.size) {
		*why = "the agent-state partition is too small for two state copies";
		return FWA_ERR_FLASH;
	}
	err = identity_load(&p->identity, &p->id, why);
	if (err != FWA_OK)
		return err;
	if (p->identity.size < FWA_RP2350_CRED_OFFSET + 2 * FWA_RP2350_CRED_COPY) {
		*why = "the identity partition is too small for renewed credentials (32 KiB)";
		return FWA_ERR_FLASH;
	}
	p->cred.start = p->identity.start + FWA_RP2350_CRED_OFFSET;
	p->cred.size = 2 * FWA_RP2350_CRED_COPY;
	const struct fwa_credstore_flash cf = {p,         FWA_RP2350_CRED_COPY, FLASH_PAGE_SIZE,
	                                       cred_read, cred_erase,           cred_program};
	err = fwa_rp2350_cred_setup(p, &cf, why);
	if (err != FWA_OK)
		return err;
	p->secure_boot = secure_boot_enabled();

	p->port.ctx = p;
	p->port.crypto = fwa_rp2350_crypto();
	p->port.flash_geometry = flash_geometry;
	p->port.slot_erase = slot_erase;
	p->port.slot_program = slot_program;
	p->port.slot_read = slot_read;
	p->port.active_read = active_read;
	p->port.state_read = state_read;
	p->port.state_erase = state_erase;
	p->port.state_program = state_program;
	p->port.boot_info = boot_info;
	p->port.boot_trial = boot_trial;
	p->port.buy = buy;
	p->port.reboot = reboot;
	p->port.hw_floor = p->secure_boot ? hw_floor : NULL;
	p->port.watchdog_feed = watchdog_feed;
	p->port.trial_rearm = fwa_rp2350_trial_rearm;
	p->port.now_ms = now_ms;
	p->port.wall_time =
	    NULL; /* no trusted clock: signed time (a root time key) or server_time */
	p->port.random = random_bytes;
	p->port.tr_connect = fwa_rp2350_tr_connect;
	p->port.tr_send = fwa_rp2350_tr_send;
	p->port.tr_recv = fwa_rp2350_tr_recv;
	p->port.tr_close = fwa_rp2350_tr_close;
	p->port.log = log_line;
	p->port.cred_lifetime = fwa_rp2350_cred_lifetime;
	p->port.cred_csr = fwa_rp2350_cred_csr;
	p->port.cred_install = fwa_rp2350_cred_install;
	p->port.cred_accepted = fwa_rp2350_tr_accepted;
	p->port.cred_refused = fwa_rp2350_tr_refused;
	p->port.tr_server_cas = fwa_rp2350_tr_server_cas;

	/*
	 * During a trial the bootrom's watchdog runs, and only the core re-arms it (for progress,
	 * up to its trial deadline), so that an image that cannot buy itself is abandoned.
	 * Otherwise arm ours now.
	 */
	if (!p->boot.trial)
		fwa_rp2350_watchdog_arm(p);
	err = fwa_rp2350_tr_setup(p, why);
	if (err == FWA_OK)
		*why = NULL;
	return err;
}
