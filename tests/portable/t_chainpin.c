/*
 * Portable tests of the RP2350 transport's server CA pin rule
 * (firmware-agent/ports/rp2350/chainpin.c): chains as mbedTLS hands them to the verify
 * callback, from the top down to the server's certificate, pass only when they verify up to a
 * pinned certificate: the provisioned CA when pinned, a pinned CA the server sent above or
 * below an unpinned top, and never a chain without a pin or with a flagged certificate below
 * the anchor. Freestanding, so it runs on the host and on the emulated Cortex-M33.
 */
#include "chainpin.h"
#include "ptest.h"

/* Feed a chain given top first: pinned[i] and flagged[i] for depth n-1-i. */
static bool chain(struct fwa_rp2350_chainpin *c, unsigned n, const bool *pinned,
                  const bool *flagged)
{
	bool ok = true;

	for (unsigned i = 0; i < n; i++)
		ok = fwa_rp2350_chainpin_step(c, pinned[i], flagged[i], (int)(n - 1 - i));
	return ok;
}

static void anchors(const struct ptest_kit *kit)
{
	struct fwa_rp2350_chainpin c;
	(void)kit;

	fwa_rp2350_chainpin_reset(&c);
	/* The provisioned CA (trusted by mbedTLS, no flag) is pinned; the server's certificate. */
	PT_CHECK(chain(&c, 2, (const bool[]){true, false}, (const bool[]){false, false}));
	/* A rotated CA the server sends, pinned, on top without a parent (flagged). */
	PT_CHECK(chain(&c, 2, (const bool[]){true, false}, (const bool[]){true, false}));
	/* An unpinned top (the old CA) above a pinned intermediate. */
	PT_CHECK(
	    chain(&c, 3, (const bool[]){false, true, false}, (const bool[]){true, false, false}));
	/* The server's certificate itself pinned. */
	PT_CHECK(chain(&c, 1, (const bool[]){true}, (const bool[]){false}));
}

static void refusals(const struct ptest_kit *kit)
{
	struct fwa_rp2350_chainpin c;
	(void)kit;

	fwa_rp2350_chainpin_reset(&c);
	/* Nothing pinned, even when mbedTLS trusts the provisioned CA. */
	PT_CHECK(!chain(&c, 2, (const bool[]){false, false}, (const bool[]){false, false}));
	/* A pinned top, but the intermediate's signature by it does not verify. */
	PT_CHECK(
	    !chain(&c, 3, (const bool[]){true, false, false}, (const bool[]){false, true, false}));
	/* A pinned top, the server's certificate flagged (a bad signature, the host name). */
	PT_CHECK(!chain(&c, 2, (const bool[]){true, false}, (const bool[]){false, true}));
	/* A pinned certificate above a flagged one above another pin still counts from the lower.
	 */
	PT_CHECK(
	    chain(&c, 3, (const bool[]){true, false, true}, (const bool[]){false, true, false}));
	/* Each chain starts afresh: an anchor of the last handshake does not carry over. */
	PT_CHECK(chain(&c, 1, (const bool[]){true}, (const bool[]){false}));
	PT_CHECK(!chain(&c, 1, (const bool[]){false}, (const bool[]){false}));
	/* Steps above depth 0 decide nothing yet. */
	PT_CHECK(fwa_rp2350_chainpin_step(&c, false, true, 1));
	PT_CHECK(!fwa_rp2350_chainpin_step(&c, false, false, 0));
}

static const struct ptest_case cases[] = {
    {"anchors", anchors},
    {"refusals", refusals},
    {NULL, NULL},
};

const struct ptest_suite ptest_suite = {"chainpin", cases};
