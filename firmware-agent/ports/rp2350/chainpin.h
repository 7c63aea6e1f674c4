/*
 * chainpin.h - the server CA pin rule of the RP2350 transport, freestanding (tested on the
 * host and on the emulated Cortex-M33: tests/portable/t_chainpin.c).
 *
 * Once the trusted root pins server CAs (docs/formats.md, server_cas), a server chain is
 * accepted only when it verifies up to a pinned CA. mbedTLS builds the chain (the server's
 * certificates, topped by the provisioned CA when they chain to it) and hands each
 * certificate to a verify callback, from the top down to the server's certificate at depth 0,
 * with the flags it found (no parent, a signature that does not verify, the host name at
 * depth 0). The callback feeds each one to fwa_rp2350_chainpin_step(): a pinned certificate is
 * an anchor, so what lies above it does not matter, and every certificate below it must carry
 * no flag.
 */
#ifndef FWA_RP2350_CHAINPIN_H
#define FWA_RP2350_CHAINPIN_H

#include <stdbool.h>

struct fwa_rp2350_chainpin {
	bool anchored; /* a pinned certificate was seen above */
	bool bad;      /* a certificate below the last anchor carried a flag */
};

/* Start a chain (a fresh handshake). */
void fwa_rp2350_chainpin_reset(struct fwa_rp2350_chainpin *c);

/*
 * One certificate at `depth`, in mbedTLS's order (the highest depth first): pinned (its
 * SubjectPublicKeyInfo hashes to a pin) and flagged (mbedTLS found any fault with it). At
 * depth 0 returns whether the chain verifies up to a pinned CA, and starts the next chain;
 * above depth 0 returns true.
 */
bool fwa_rp2350_chainpin_step(struct fwa_rp2350_chainpin *c, bool pinned, bool flagged, int depth);

#endif
