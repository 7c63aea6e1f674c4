/*
 * Portable tests of the RP2350 port's store of renewed credentials
 * (firmware-agent/ports/rp2350/credstore.c): a renewal's steps (pending key, its certificate,
 * the commit) and a second renewal over the first, the identity tag that hides credentials
 * renewed for another provisioning, values that do not fit, and the power-cut sweep: power
 * is cut before, and halfway through, every flash operation of two renewals in a row; each
 * time the store must read back as it was before the interrupted step or as it is after it,
 * never anything else, and redoing the step must end where an uncut run ends. Freestanding,
 * so it runs on the host and on the emulated Cortex-M33.
 */
#include <string.h>

#include "credstore.h"
#include "ptest.h"

#define COPY 4096u
#define PROG 256u

static struct {
	uint8_t mem[2 * COPY];
	unsigned ops; /* erase and program operations so far */
	int cut_at;   /* the operation before (or during) which power goes, -1: never */
	bool torn;    /* the cut operation does half its work */
	bool off;     /* power is gone: every operation fails */
} fl;

static uint8_t rec[COPY], work[COPY];
static const uint8_t tag_a[32] = {1, 2, 3}, tag_b[32] = {9, 9, 9};

/* 0: do the operation; 1: this is the cut one (torn or not); 2: power is gone already. */
static int cut(void)
{
	if (fl.off)
		return 2;
	if (fl.cut_at >= 0 && fl.ops == (unsigned)fl.cut_at) {
		fl.off = true;
		return 1;
	}
	fl.ops++;
	return 0;
}

static enum fwa_err f_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
	(void)ctx;
	if (fl.off || off > sizeof(fl.mem) || len > sizeof(fl.mem) - off)
		return FWA_ERR_FLASH;
	memcpy(buf, fl.mem + off, len);
	return FWA_OK;
}

static enum fwa_err f_erase(void *ctx, uint32_t off, uint32_t len)
{
	int c = cut();

	(void)ctx;
	if (off % COPY || len % COPY || off > sizeof(fl.mem) || len > sizeof(fl.mem) - off)
		return FWA_ERR_FLASH;
	if (c == 1 && fl.torn)
		memset(fl.mem + off + len / 2, 0xff, len / 2);
	if (c)
		return FWA_ERR_FLASH;
	memset(fl.mem + off, 0xff, len);
	return FWA_OK;
}

static enum fwa_err f_program(void *ctx, uint32_t off, const void *data, uint32_t len)
{
	const uint8_t *d = data;
	int c = cut();

	(void)ctx;
	if (off % PROG || len % PROG || off > sizeof(fl.mem) || len > sizeof(fl.mem) - off)
		return FWA_ERR_FLASH;
	/* NOR flash: programming only clears bits; a torn program does the first half. */
	uint32_t n = c == 0 ? len : (c == 1 && fl.torn ? len / 2 : 0);
	for (uint32_t i = 0; i < n; i++)
		fl.mem[off + i] &= d[i];
	return c ? FWA_ERR_FLASH : FWA_OK;
}

static const struct fwa_credstore_flash flash = {NULL, COPY, PROG, f_read, f_erase, f_program};

static void power_on(int cut_at, bool torn)
{
	fl.ops = 0;
	fl.cut_at = cut_at;
	fl.torn = torn;
	fl.off = false;
}

static void blank(void)
{
	memset(fl.mem, 0xff, sizeof(fl.mem));
	power_on(-1, false);
}

static bool val_is(struct fwa_credstore_val v, const char *s)
{
	if (!s)
		return v.len == 0;
	return v.len == strlen(s) + 1 && memcmp(v.p, s, v.len) == 0;
}

/* The store holds exactly these values (NULL: absent). */
static bool holds(const struct fwa_credstore *s, const char *ck, const char *cc, const char *nk,
                  const char *nc)
{
	return val_is(s->cur_key, ck) && val_is(s->cur_cert, cc) && val_is(s->new_key, nk) &&
	       val_is(s->new_cert, nc);
}

static enum fwa_err set_key(struct fwa_credstore *s, const char *k)
{
	return fwa_credstore_set_key(s, k, (uint32_t)strlen(k) + 1);
}

static enum fwa_err set_cert(struct fwa_credstore *s, const char *c)
{
	return fwa_credstore_set_cert(s, c, (uint32_t)strlen(c) + 1);
}

static void lifecycle(const struct ptest_kit *kit)
{
	struct fwa_credstore s;
	(void)kit;

	blank();
	PT_OK(fwa_credstore_open(&s, &flash, tag_a, rec, work));
	PT_CHECK(holds(&s, NULL, NULL, NULL, NULL));
	PT_CHECK(!fwa_credstore_pending(&s));
	/* Nothing to certify or commit yet. */
	PT_ERR(set_cert(&s, "cert-1"), FWA_ERR_BUSY);
	PT_ERR(fwa_credstore_commit(&s), FWA_ERR_BUSY);
	PT_OK(set_key(&s, "key-1"));
	PT_CHECK(holds(&s, NULL, NULL, "key-1", NULL));
	PT_CHECK(!fwa_credstore_pending(&s));
	PT_ERR(fwa_credstore_commit(&s), FWA_ERR_BUSY);
	PT_OK(set_cert(&s, "cert-1"));
	PT_CHECK(fwa_credstore_pending(&s));
	PT_OK(fwa_credstore_commit(&s));
	PT_CHECK(holds(&s, "key-1", "cert-1", NULL, NULL));
	/* A second renewal keeps the pair in use until its commit. */
	PT_OK(set_key(&s, "key-2"));
	PT_OK(set_cert(&s, "cert-2"));
	PT_CHECK(holds(&s, "key-1", "cert-1", "key-2", "cert-2"));
	/* A new key drops a certificate issued for the older one. */
	PT_OK(set_key(&s, "key-3"));
	PT_CHECK(holds(&s, "key-1", "cert-1", "key-3", NULL));
	PT_OK(set_cert(&s, "cert-3"));
	PT_OK(fwa_credstore_commit(&s));
	/* What the flash holds, read again after a reboot. */
	PT_OK(fwa_credstore_open(&s, &flash, tag_a, rec, work));
	PT_CHECK(holds(&s, "key-3", "cert-3", NULL, NULL));
}

static void other_identity(const struct ptest_kit *kit)
{
	struct fwa_credstore s;
	(void)kit;

	blank();
	PT_OK(fwa_credstore_open(&s, &flash, tag_a, rec, work));
	PT_OK(set_key(&s, "key-1"));
	PT_OK(set_cert(&s, "cert-1"));
	PT_OK(fwa_credstore_commit(&s));
	/* Re-provisioned with another pair: the renewed one of the old identity is not used. */
	PT_OK(fwa_credstore_open(&s, &flash, tag_b, rec, work));
	PT_CHECK(holds(&s, NULL, NULL, NULL, NULL));
	PT_OK(set_key(&s, "key-b"));
	PT_OK(set_cert(&s, "cert-b"));
	PT_OK(fwa_credstore_commit(&s));
	PT_CHECK(holds(&s, "key-b", "cert-b", NULL, NULL));
	PT_OK(fwa_credstore_open(&s, &flash, tag_b, rec, work));
	PT_CHECK(holds(&s, "key-b", "cert-b", NULL, NULL));
}

static void damaged_and_large(const struct ptest_kit *kit)
{
	static char big[COPY];
	struct fwa_credstore s;
	(void)kit;

	blank();
	PT_OK(fwa_credstore_open(&s, &flash, tag_a, rec, work));
	PT_OK(set_key(&s, "key-1"));
	PT_OK(set_cert(&s, "cert-1"));
	int newest = s.copy;
	/* A flipped bit in the newest copy: the older one (only the key) is what is left. */
	fl.mem[(uint32_t)newest * COPY + FWA_CREDSTORE_HEAD + 2] ^= 0x10;
	PT_OK(fwa_credstore_open(&s, &flash, tag_a, rec, work));
	PT_CHECK(holds(&s, NULL, NULL, "key-1", NULL));
	/* Values that do not fit a copy change nothing. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	unsigned ops = fl.ops;
	PT_ERR(set_cert(&s, big), FWA_ERR_TOO_LARGE);
	PT_EQ(fl.ops, ops);
	PT_CHECK(holds(&s, NULL, NULL, "key-1", NULL));
	/* A failing flash: the store stays what the flash holds. */
	power_on(0, false);
	PT_ERR(set_cert(&s, "cert-1"), FWA_ERR_FLASH);
}

/* Two renewals in a row: the states after each step. */
static const char *const steps[][4] = {
    {NULL, NULL, NULL, NULL}, {NULL, NULL, "k1", NULL}, {NULL, NULL, "k1", "c1"},
    {"k1", "c1", NULL, NULL}, {"k1", "c1", "k2", NULL}, {"k1", "c1", "k2", "c2"},
    {"k2", "c2", NULL, NULL},
};
#define NSTEPS 6

static enum fwa_err do_step(struct fwa_credstore *s, unsigned i)
{
	switch (i) {
	case 0:
		return set_key(s, "k1");
	case 1:
		return set_cert(s, "c1");
	case 3:
		return set_key(s, "k2");
	case 4:
		return set_cert(s, "c2");
	default:
		return fwa_credstore_commit(s);
	}
}

static bool holds_step(const struct fwa_credstore *s, unsigned i)
{
	return holds(s, steps[i][0], steps[i][1], steps[i][2], steps[i][3]);
}

static void power_cut_sweep(const struct ptest_kit *kit)
{
	struct fwa_credstore s;
	unsigned total, cuts = 0;
	(void)kit;

	/* The uncut run: how many flash operations it takes. */
	blank();
	PT_REQUIRE(fwa_credstore_open(&s, &flash, tag_a, rec, work) == FWA_OK);
	for (unsigned i = 0; i < NSTEPS; i++)
		PT_REQUIRE(do_step(&s, i) == FWA_OK && holds_step(&s, i + 1));
	total = fl.ops;
	PT_EQ(total, 2 * NSTEPS); /* an erase and a program per step */

	for (unsigned t = 0; t < 2; t++) {
		for (unsigned at = 0; at < total; at++) {
			unsigned step = at / 2; /* the step whose operation is cut */
			blank();
			power_on((int)at, t == 1);
			PT_REQUIRE(fwa_credstore_open(&s, &flash, tag_a, rec, work) == FWA_OK);
			unsigned i = 0;
			while (i < NSTEPS && do_step(&s, i) == FWA_OK)
				i++;
			PT_EQ(i, step);
			/* Power back: before or after the step, nothing else. */
			power_on(-1, false);
			PT_REQUIRE(fwa_credstore_open(&s, &flash, tag_a, rec, work) == FWA_OK);
			bool before = holds_step(&s, step), after = holds_step(&s, step + 1);
			if (!PT_CHECK(before || after)) {
				ptest_out("    a cut store holds neither state\n");
				return;
			}
			/* Before: the port redoes the step (a new key, the certificate again). */
			for (i = after ? step + 1 : step; i < NSTEPS; i++)
				PT_REQUIRE(do_step(&s, i) == FWA_OK);
			PT_CHECK(holds_step(&s, NSTEPS));
			PT_OK(fwa_credstore_open(&s, &flash, tag_a, rec, work));
			PT_CHECK(holds_step(&s, NSTEPS));
			cuts++;
		}
	}
	PT_EQ(cuts, 2 * total);
}

static const struct ptest_case cases[] = {
    {"lifecycle", lifecycle},
    {"other_identity", other_identity},
    {"damaged_and_large", damaged_and_large},
    {"power_cut_sweep", power_cut_sweep},
    {NULL, NULL},
};

const struct ptest_suite ptest_suite = {"credstore", cases};
