/*
 * chainpin.c - the server CA pin rule of the RP2350 transport (chainpin.h): a chain verifies
 * up to a pinned CA when some certificate of it is pinned and none below the lowest such one
 * carries a flag. Freestanding, so that the rule is tested without mbedTLS.
 */
#include "chainpin.h"

void fwa_rp2350_chainpin_reset(struct fwa_rp2350_chainpin *c)
{
	c->anchored = false;
	c->bad = false;
}

bool fwa_rp2350_chainpin_step(struct fwa_rp2350_chainpin *c, bool pinned, bool flagged, int depth)
{
	bool ok;

	if (pinned) {
		/* An anchor: the certificates above it (and their flags) do not count. */
		c->anchored = true;
		c->bad = false;
	} else if (flagged) {
		c->bad = true;
	}
	if (depth > 0)
		return true;
	ok = c->anchored && !c->bad;
	fwa_rp2350_chainpin_reset(c);
	return ok;
}
