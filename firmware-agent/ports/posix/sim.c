/*
 * Simulated device hardware for the POSIX port and the power-cut sweep: NOR flash with an A/B
 * partition table, and a bootrom that follows the RP2350 rules the agent is written against.
 * A flash-update reboot boots the other slot as a try-before-you-buy trial with a watchdog
 * deadline; only an explicit buy (which writes a boot record, itself a counted and cuttable
 * flash operation) makes it the slot that boots next; anything else boots the previous slot.
 * As on RP2350, the buy turns the watchdog off before it can fail, and a running trial may
 * re-arm its watchdog for at most one trial period at a time.
 * Every flash-changing operation the agent asks for is counted here, and the sweep can cut
 * power before operation i or halfway through it, or flip one bit of a slot program after it
 * is done (flip_at), so that only reading the slot back shows it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"
#include "state.h"

#define PT_MAGIC "FWAPT001"
#define BR_MAGIC "FWABR001"
#define PT_OFF 0x0000u
#define BR_OFF(i) (0x1000u + (i)*SIM_SECTOR)
#define STATE_OFF(i) (0x3000u + (i)*SIM_SECTOR)

struct pt {
	char magic[8];
	uint32_t slot_size;
	uint32_t slot_off[2];
	uint32_t crc;
};

struct boot_record {
	char magic[8];
	uint32_t seq;
	uint32_t slot;
	uint32_t crc;
};

static const char *const fault_names[SIM_FAULT__COUNT] = {
    "none", "never-buy", "crash-boot", "fail-health", "buy-fails", "regress-after-buy"};

const char *fwa_sim_fault_name(enum sim_fault f)
{
	return (unsigned)f < SIM_FAULT__COUNT ? fault_names[f] : "?";
}

int fwa_sim_fault_parse(const char *s)
{
	for (int i = 0; i < SIM_FAULT__COUNT; i++)
		if (strcmp(s, fault_names[i]) == 0)
			return i;
	return -1;
}

size_t fwa_sim_flash_size(uint32_t slot_size)
{
	return SIM_SLOT0_OFF + 2 * (size_t)slot_size;
}

static uint32_t slot_off(const struct fwa_sim *s, unsigned slot)
{
	return SIM_SLOT0_OFF + slot * s->slot_size;
}

int fwa_sim_open_mem(struct fwa_sim *s, uint32_t slot_size)
{
	memset(s, 0, sizeof(*s));
	if (slot_size == 0 || slot_size % SIM_SECTOR) {
		errno = EINVAL;
		return -1;
	}
	s->flash_size = fwa_sim_flash_size(slot_size);
	s->flash = malloc(s->flash_size);
	if (!s->flash)
		return -1;
	memset(s->flash, 0xff, s->flash_size);
	s->slot_size = slot_size;
	s->pending_trial = -1;
	s->reset = FWA_RESET_POWER_ON;
	s->trial_ms = SIM_TRIAL_MS;
	s->rng = 0x9e3779b97f4a7c15ull;
	return 0;
}

static bool pt_valid(const struct pt *pt)
{
	return memcmp(pt->magic, PT_MAGIC, 8) == 0 &&
	       pt->crc == fwa_crc32(pt, offsetof(struct pt, crc));
}

int fwa_sim_open_file(struct fwa_sim *s, const char *path, bool create, uint32_t slot_size)
{
	struct stat sb;
	struct pt pt;
	int fd, e;
	void *m;

	memset(s, 0, sizeof(*s));
	fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) < 0)
		goto fail;
	if (sb.st_size == 0 && create) {
		if (slot_size == 0 || slot_size % SIM_SECTOR) {
			errno = EINVAL;
			goto fail;
		}
		s->flash_size = fwa_sim_flash_size(slot_size);
		if (ftruncate(fd, (off_t)s->flash_size) < 0)
			goto fail;
	} else {
		s->flash_size = (size_t)sb.st_size;
		if (s->flash_size < SIM_SLOT0_OFF + 2 * SIM_SECTOR) {
			errno = EINVAL;
			goto fail;
		}
	}
	m = mmap(NULL, s->flash_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		goto fail;
	close(fd);
	s->flash = m;
	s->mapped = true;
	if (sb.st_size == 0 && create) {
		memset(s->flash, 0xff, s->flash_size);
		s->slot_size = slot_size;
	} else {
		memcpy(&pt, s->flash + PT_OFF, sizeof(pt));
		if (!pt_valid(&pt) || fwa_sim_flash_size(pt.slot_size) != s->flash_size) {
			fwa_sim_close(s);
			errno = EINVAL;
			return -1;
		}
		s->slot_size = pt.slot_size;
	}
	s->pending_trial = -1;
	s->reset = FWA_RESET_POWER_ON;
	s->trial_ms = SIM_TRIAL_MS;
	s->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	return 0;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

void fwa_sim_close(struct fwa_sim *s)
{
	if (!s->flash)
		return;
	if (s->mapped) {
		msync(s->flash, s->flash_size, MS_SYNC);
		munmap(s->flash, s->flash_size);
	} else {
		free(s->flash);
	}
	s->flash = NULL;
}

uint64_t fwa_sim_now(struct fwa_sim *s)
{
	struct timespec ts;

	if (s->virtual_clock)
		return s->vclock_ms;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void slog(struct fwa_sim *s, int level, const char *msg)
{
	if (level > s->verbose)
		return;
	fprintf(stderr, "%s%s%s\n", s->name ? s->name : "", s->name ? ": " : "", msg);
}

/* ---- counted operations and power cuts ---- */

/*
 * Called at the start of every flash-changing operation. Returns true when this operation is
 * to be torn: the caller does half of it, then calls cut().
 */
static bool op_begin(struct fwa_sim *s)
{
	s->ops++;
	if (s->cut_at == 0 || s->ops != s->cut_at || !s->cut_jmp)
		return false;
	if (s->cut_mode == SIM_CUT_BEFORE)
		longjmp(*s->cut_jmp, 1);
	return s->cut_mode == SIM_CUT_TEAR;
}

static void cut(struct fwa_sim *s)
{
	longjmp(*s->cut_jmp, 1);
}

void fwa_sim_atomic_op(struct fwa_sim *s)
{
	s->ops++;
	if (s->cut_at != 0 && s->ops == s->cut_at && s->cut_jmp && s->cut_mode != SIM_CUT_NONE)
		longjmp(*s->cut_jmp, 1);
}

static void erase_at(struct fwa_sim *s, uint32_t addr)
{
	if (op_begin(s)) {
		memset(s->flash + addr, 0xff, SIM_SECTOR / 2);
		cut(s);
	}
	memset(s->flash + addr, 0xff, SIM_SECTOR);
}

static void program_at(struct fwa_sim *s, uint32_t addr, const uint8_t *data, uint32_t len)
{
	for (uint32_t p = 0; p < len; p += SIM_PAGE) {
		uint32_t n = len - p < SIM_PAGE ? len - p : SIM_PAGE;
		bool tear = op_begin(s);

		if (tear)
			n /= 2;
		for (uint32_t i = 0; i < n; i++)
			s->flash[addr + p + i] &= data[p + i];
		if (tear)
			cut(s);
	}
}

/* ---- images and boot records ---- */

static uint32_t header_crc(const struct sim_image_header *h)
{
	return fwa_crc32(h, offsetof(struct sim_image_header, header_crc));
}

/* A secure chip's bootrom refuses images below its OTP rollback floor. */
static bool bootable(const struct fwa_sim *s, unsigned slot, struct sim_image_header *out)
{
	return fwa_sim_image_valid(s, slot, out) &&
	       (!s->otp_floor_enabled || out->security_version >= s->otp_floor);
}

bool fwa_sim_image_valid(const struct fwa_sim *s, unsigned slot, struct sim_image_header *out)
{
	struct sim_image_header h;
	const uint8_t *base = s->flash + slot_off(s, slot);

	memcpy(&h, base, sizeof(h));
	if (memcmp(h.magic, SIM_IMAGE_MAGIC, 8) != 0 || h.header_size != SIM_PAGE ||
	    h.header_crc != header_crc(&h) || h.payload_len > s->slot_size - SIM_PAGE ||
	    memchr(h.version, 0, sizeof(h.version)) == NULL || h.fault >= SIM_FAULT__COUNT)
		return false;
	if (fwa_crc32(base + SIM_PAGE, h.payload_len) != h.payload_crc)
		return false;
	if (out)
		*out = h;
	return true;
}

long fwa_sim_mkimage(const char *version, uint32_t security_version, const char *hw_variant,
                     enum sim_fault fault, uint32_t payload_len, uint8_t *out, size_t cap)
{
	struct sim_image_header h;
	uint64_t x = 1469598103934665603ull;

	if (strlen(version) > FWA_SEMVER_MAX || strlen(hw_variant) > FWA_HW_MAX ||
	    (unsigned)fault >= SIM_FAULT__COUNT || (size_t)payload_len + SIM_PAGE > cap)
		return -1;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, SIM_IMAGE_MAGIC, 8);
	h.header_size = SIM_PAGE;
	h.payload_len = payload_len;
	strcpy(h.version, version);
	strcpy(h.hw_variant, hw_variant);
	h.security_version = security_version;
	h.fault = (uint32_t)fault;
	for (const char *p = version; *p; p++)
		x = (x ^ (uint8_t)*p) * 1099511628211ull;
	for (uint32_t i = 0; i < payload_len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		out[SIM_PAGE + i] = (uint8_t)x;
	}
	h.payload_crc = fwa_crc32(out + SIM_PAGE, payload_len);
	h.header_crc = header_crc(&h);
	memset(out, 0xff, SIM_PAGE);
	memcpy(out, &h, sizeof(h));
	return (long)(SIM_PAGE + payload_len);
}

static bool br_read(const struct fwa_sim *s, unsigned i, struct boot_record *r)
{
	memcpy(r, s->flash + BR_OFF(i), sizeof(*r));
	return memcmp(r->magic, BR_MAGIC, 8) == 0 && r->slot <= 1 &&
	       r->crc == fwa_crc32(r, offsetof(struct boot_record, crc));
}

/* Index of the newest valid boot record, -1 when none. */
static int br_newest(const struct fwa_sim *s, struct boot_record *out)
{
	struct boot_record r[2];
	bool ok0 = br_read(s, 0, &r[0]), ok1 = br_read(s, 1, &r[1]);
	int i;

	if (!ok0 && !ok1)
		return -1;
	i = (ok0 && (!ok1 || (int32_t)(r[0].seq - r[1].seq) > 0)) ? 0 : 1;
	*out = r[i];
	return i;
}

static void br_fill(struct boot_record *r, uint32_t seq, unsigned slot, uint8_t page[SIM_PAGE])
{
	memset(r, 0, sizeof(*r));
	memcpy(r->magic, BR_MAGIC, 8);
	r->seq = seq;
	r->slot = slot;
	r->crc = fwa_crc32(r, offsetof(struct boot_record, crc));
	memset(page, 0xff, SIM_PAGE);
	memcpy(page, r, sizeof(*r));
}

enum fwa_err fwa_sim_provision(struct fwa_sim *s, const uint8_t *image, size_t len)
{
	struct pt pt;
	struct boot_record r;
	uint8_t page[SIM_PAGE];

	if (len == 0 || len > s->slot_size)
		return FWA_ERR_IMAGE_SIZE;
	memset(s->flash, 0xff, s->flash_size);
	memset(&pt, 0, sizeof(pt));
	memcpy(pt.magic, PT_MAGIC, 8);
	pt.slot_size = s->slot_size;
	pt.slot_off[0] = slot_off(s, 0);
	pt.slot_off[1] = slot_off(s, 1);
	pt.crc = fwa_crc32(&pt, offsetof(struct pt, crc));
	memcpy(s->flash + PT_OFF, &pt, sizeof(pt));
	memcpy(s->flash + slot_off(s, 0), image, len);
	br_fill(&r, 1, 0, page);
	memcpy(s->flash + BR_OFF(0), page, SIM_PAGE);
	return FWA_OK;
}

/* ---- the bootrom ---- */

enum fwa_err fwa_sim_boot(struct fwa_sim *s)
{
	struct boot_record r;
	char msg[160];

	s->booted = false;
	s->trial = false;
	s->refused = NULL;
	for (int tries = 0; tries < 4; tries++) {
		if (s->pending_trial >= 0) {
			unsigned slot = (unsigned)s->pending_trial;

			s->pending_trial = -1;
			if (bootable(s, slot, &s->running)) {
				if (s->running.fault == SIM_FAULT_CRASH_BOOT) {
					snprintf(
					    msg, sizeof(msg),
					    "bootrom: trial image %s in slot %c crashed at boot",
					    s->running.version, 'A' + slot);
					slog(s, 1, msg);
					s->reset = FWA_RESET_WATCHDOG;
					continue;
				}
				s->booted = true;
				s->active = (uint8_t)slot;
				s->trial = true;
				s->trial_deadline_ms = fwa_sim_now(s) + s->trial_ms;
				s->rearms = 0;
				s->trial_boot_ops = s->ops;
				snprintf(msg, sizeof(msg), "bootrom: TBYB trial of %s in slot %c",
				         s->running.version, 'A' + slot);
				slog(s, 1, msg);
				return FWA_OK;
			}
			slog(s, 1, "bootrom: flash-update target invalid; normal boot");
			s->refused = "the bootrom refused the trial image: it does not verify";
		}
		if (br_newest(s, &r) < 0)
			return FWA_ERR_FLASH;
		if (!bootable(s, r.slot, &s->running) || s->running.fault == SIM_FAULT_CRASH_BOOT)
			return FWA_ERR_FLASH; /* bricked: the committed image does not boot */
		s->booted = true;
		s->active = (uint8_t)r.slot;
		snprintf(msg, sizeof(msg), "bootrom: boot %s from slot %c", s->running.version,
		         'A' + r.slot);
		slog(s, 1, msg);
		return FWA_OK;
	}
	return FWA_ERR_FLASH;
}

void fwa_sim_power_cut(struct fwa_sim *s)
{
	s->pending_trial = -1;
	s->reset = FWA_RESET_POWER_ON;
	s->booted = false;
	s->trial = false;
}

void fwa_sim_watchdog_reset(struct fwa_sim *s)
{
	s->pending_trial = -1;
	s->reset = FWA_RESET_WATCHDOG;
	s->booted = false;
	s->trial = false;
}

bool fwa_sim_watchdog_due(struct fwa_sim *s)
{
	return s->booted && s->trial && fwa_sim_now(s) >= s->trial_deadline_ms;
}

uint64_t fwa_sim_watchdog_left(struct fwa_sim *s)
{
	uint64_t now = fwa_sim_now(s);

	if (!s->booted || !s->trial)
		return UINT64_MAX;
	return now >= s->trial_deadline_ms ? 0 : s->trial_deadline_ms - now;
}

/* ---- the port ---- */

static enum fwa_err p_geometry(void *ctx, struct fwa_flash_geometry *out)
{
	struct fwa_sim *s = ctx;

	out->slot_size = s->slot_size;
	out->erase_size = SIM_SECTOR;
	out->prog_size = SIM_PAGE;
	out->state_size = SIM_SECTOR;
	return FWA_OK;
}

static bool range_ok(const struct fwa_sim *s, uint32_t off, uint32_t len)
{
	return s->booted && off <= s->slot_size && len <= s->slot_size - off;
}

static enum fwa_err p_slot_erase(void *ctx, uint32_t off, uint32_t len)
{
	struct fwa_sim *s = ctx;
	uint32_t base = slot_off(s, s->active ? 0 : 1);

	if (!range_ok(s, off, len) || off % SIM_SECTOR || len % SIM_SECTOR)
		return FWA_ERR_FLASH;
	for (uint32_t a = 0; a < len; a += SIM_SECTOR)
		erase_at(s, base + off + a);
	return FWA_OK;
}

static enum fwa_err p_slot_program(void *ctx, uint32_t off, const void *data, uint32_t len)
{
	struct fwa_sim *s = ctx;

	if (!range_ok(s, off, len) || off % SIM_PAGE || len % SIM_PAGE)
		return FWA_ERR_FLASH;
	program_at(s, slot_off(s, s->active ? 0 : 1) + off, data, len);
	if (++s->slot_programs == s->flip_at) {
		s->flash[slot_off(s, s->active ? 0 : 1) + off + len / 2] ^= 0x08;
		s->flips++;
	}
	return FWA_OK;
}

static enum fwa_err p_slot_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
	struct fwa_sim *s = ctx;

	if (!range_ok(s, off, len))
		return FWA_ERR_FLASH;
	memcpy(buf, s->flash + slot_off(s, s->active ? 0 : 1) + off, len);
	return FWA_OK;
}

/* The running slot: the base of a delta update. */
static enum fwa_err p_active_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
	struct fwa_sim *s = ctx;

	if (!range_ok(s, off, len))
		return FWA_ERR_FLASH;
	memcpy(buf, s->flash + slot_off(s, s->active) + off, len);
	return FWA_OK;
}

static enum fwa_err p_state_read(void *ctx, unsigned area, uint32_t off, void *buf, uint32_t len)
{
	struct fwa_sim *s = ctx;

	if (area > 1 || off > SIM_SECTOR || len > SIM_SECTOR - off)
		return FWA_ERR_FLASH;
	memcpy(buf, s->flash + STATE_OFF(area) + off, len);
	return FWA_OK;
}

static enum fwa_err p_state_erase(void *ctx, unsigned area)
{
	struct fwa_sim *s = ctx;

	if (area > 1)
		return FWA_ERR_FLASH;
	erase_at(s, STATE_OFF(area));
	return FWA_OK;
}

static enum fwa_err p_state_program(void *ctx, unsigned area, uint32_t off, const void *data,
                                    uint32_t len)
{
	struct fwa_sim *s = ctx;

	if (area > 1 || off > SIM_SECTOR || len > SIM_SECTOR - off || off % SIM_PAGE ||
	    len % SIM_PAGE)
		return FWA_ERR_FLASH;
	program_at(s, STATE_OFF(area) + off, data, len);
	return FWA_OK;
}

static enum fwa_err p_boot_info(void *ctx, struct fwa_boot_info *out)
{
	struct fwa_sim *s = ctx;

	if (!s->booted)
		return FWA_ERR_FLASH;
	out->active_slot = s->active;
	out->trial = s->trial;
	out->reset = s->reset;
	out->refused = s->refused;
	return FWA_OK;
}

static enum fwa_err p_boot_trial(void *ctx, uint32_t image_len)
{
	struct fwa_sim *s = ctx;

	if (!s->booted || image_len == 0 || image_len > s->slot_size)
		return FWA_ERR_FLASH;
	if (s->trial)
		return FWA_ERR_BUSY; /* RP2350: buy before another A/B pick */
	s->pending_trial = s->active ? 0 : 1;
	s->reset = FWA_RESET_SOFTWARE;
	s->booted = false;
	slog(s, 2, "bootrom: flash-update reboot requested");
	return FWA_OK;
}

static enum fwa_err p_buy(void *ctx)
{
	struct fwa_sim *s = ctx;
	struct boot_record r;
	uint8_t page[SIM_PAGE];
	int newest;

	if (!s->booted || !s->trial)
		return FWA_ERR_BUSY;
	s->buy_ops = s->ops;
	if (fwa_sim_watchdog_due(s))
		return FWA_ERR_BUSY; /* too late: the watchdog has fired */
	if (s->running.fault == SIM_FAULT_NEVER_BUY) {
		/* This image's firmware hangs instead of buying: only the watchdog ends it. */
		slog(s, 1, "sim: image hangs before its buy");
		if (s->hang_jmp)
			longjmp(*s->hang_jmp, 1);
		return FWA_OK;
	}
	/* rom_explicit_buy turns the watchdog off first: from here on nothing reverts by itself. */
	s->trial_deadline_ms = UINT64_MAX;
	if (s->running.fault == SIM_FAULT_BUY_FAILS) {
		slog(s, 1, "bootrom: explicit buy failed writing OTP; watchdog off");
		return FWA_ERR_FLASH;
	}
	/* rom_explicit_buy: the trial slot becomes the one that boots (two counted ops). */
	newest = br_newest(s, &r);
	br_fill(&r, newest < 0 ? 1 : r.seq + 1, s->active, page);
	erase_at(s, BR_OFF(newest == 0 ? 1 : 0));
	program_at(s, BR_OFF(newest == 0 ? 1 : 0), page, SIM_PAGE);
	s->trial = false;
	s->bought_ms = fwa_sim_now(s);
	if (s->otp_floor_enabled && s->running.security_version > s->otp_floor)
		s->otp_floor = s->running.security_version; /* OTP thermometer: only goes up */
	slog(s, 1, "bootrom: trial bought");
	return FWA_OK;
}

static uint32_t p_trial_rearm(void *ctx, uint32_t ms)
{
	struct fwa_sim *s = ctx;

	if (!s->booted || !s->trial || fwa_sim_watchdog_due(s))
		return 0;
	if (ms > s->trial_ms)
		ms = s->trial_ms; /* one watchdog period at most */
	s->trial_deadline_ms = fwa_sim_now(s) + ms;
	s->rearms++;
	return ms;
}

static enum fwa_err p_hw_floor(void *ctx, uint32_t *floor)
{
	struct fwa_sim *s = ctx;

	*floor = s->otp_floor;
	return FWA_OK;
}

static void p_reboot(void *ctx)
{
	struct fwa_sim *s = ctx;

	s->pending_trial = -1;
	s->reset = FWA_RESET_SOFTWARE;
	s->booted = false;
	slog(s, 2, "bootrom: reboot requested");
}

static uint64_t p_now(void *ctx)
{
	return fwa_sim_now(ctx);
}

static enum fwa_err p_random(void *ctx, void *buf, size_t len)
{
	struct fwa_sim *s = ctx;
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++) {
		s->rng ^= s->rng << 13;
		s->rng ^= s->rng >> 7;
		s->rng ^= s->rng << 17;
		p[i] = (uint8_t)(s->rng >> 24);
	}
	return FWA_OK;
}

static void p_log(void *ctx, enum fwa_log_level level, const char *msg)
{
	struct fwa_sim *s = ctx;

	slog(s, level >= FWA_LOG_DEBUG ? 2 : 1, msg);
}

enum fwa_err fwa_sim_selftest(void *ctx)
{
	struct fwa_sim *s = ctx;

	if (s->running.fault == SIM_FAULT_REGRESS && !s->trial)
		return FWA_ERR_HEALTH; /* healthy in its trial, failing once bought */
	return s->running.fault == SIM_FAULT_FAIL_HEALTH ? FWA_ERR_HEALTH : FWA_OK;
}

void fwa_sim_port(struct fwa_port *p, struct fwa_sim *s, const struct fwa_crypto *crypto)
{
	memset(p, 0, sizeof(*p));
	p->ctx = s;
	p->crypto = crypto;
	p->flash_geometry = p_geometry;
	p->slot_erase = p_slot_erase;
	p->slot_program = p_slot_program;
	p->slot_read = p_slot_read;
	p->active_read = p_active_read;
	p->state_read = p_state_read;
	p->state_erase = p_state_erase;
	p->state_program = p_state_program;
	p->boot_info = p_boot_info;
	p->boot_trial = p_boot_trial;
	p->buy = p_buy;
	p->reboot = p_reboot;
	p->hw_floor = s->otp_floor_enabled ? p_hw_floor : NULL;
	p->trial_rearm = p_trial_rearm;
	p->now_ms = p_now;
	p->random = p_random;
	p->log = p_log;
}
