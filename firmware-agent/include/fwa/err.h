/*
 * fwa/err.h - the agent core's one error domain, shared by the verifier, the agent and the
 * host tools built on them. fwa_strerror() names each code in a few words.
 */
#ifndef FWA_ERR_H
#define FWA_ERR_H

#define FWA_WUR __attribute__((warn_unused_result))

enum fwa_err {
	FWA_OK = 0,
	/* Input. */
	FWA_ERR_MALFORMED,    /* not JSON / base64 / hex, or a field missing or of the wrong type */
	FWA_ERR_TOO_LARGE,    /* input or a field over its bound */
	FWA_ERR_PAYLOAD_TYPE, /* envelope payloadType is not the one expected */
	FWA_ERR_SPEC_VERSION, /* metadata of a spec version this code does not know */
	/* Trust. */
	FWA_ERR_KEY,          /* a key is not ECDSA P-256, or its id is not its SHA-256 */
	FWA_ERR_SIGNATURE,    /* one signature does not verify (crypto port answer) */
	FWA_ERR_THRESHOLD,    /* fewer valid signatures by distinct role keys than the threshold */
	FWA_ERR_ROOT_VERSION, /* next root is not exactly the trusted version + 1 */
	FWA_ERR_EXPIRED,      /* root metadata expired at the time given */
	/* Target. */
	FWA_ERR_HW_VARIANT, /* manifest does not list this hardware variant */
	FWA_ERR_ROLLBACK,   /* security_version below the device's floor */
	FWA_ERR_IMAGE_SIZE, /* image size differs from the manifest */
	FWA_ERR_IMAGE_HASH, /* image SHA-256 differs from the manifest */
	/* Agent and ports. */
	FWA_ERR_CRYPTO,    /* the crypto port failed for a reason other than a bad signature */
	FWA_ERR_FLASH,     /* flash read, erase or program failed */
	FWA_ERR_STATE,     /* persistent state unreadable in both copies */
	FWA_ERR_TRANSPORT, /* connect, send or receive failed or timed out */
	FWA_ERR_HTTP,      /* malformed or unexpected HTTP response */
	FWA_ERR_SERVER,    /* the server answered with an error status */
	FWA_ERR_BUSY,      /* operation not allowed in the agent's current state */
	FWA_ERR_HEALTH,    /* a health check failed */
	FWA_ERR_DELTA,     /* a delta is malformed, fails its hash chain or does not apply */
	FWA_ERR_NONCE,     /* a time token answers another nonce than the one sent */
	FWA_ERR__COUNT
};

/* A short constant description; never NULL, also for out-of-range values. */
const char *fwa_strerror(enum fwa_err e);

#endif
