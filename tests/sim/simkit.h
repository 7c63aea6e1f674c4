/*
 * simkit.h - the simulation kit of the agent tests: signing keys and signed documents made at
 * test time, an in-process double of the device API (check-in, ranged image download, event
 * reports with idempotency) used as the transport of simulated devices so that the power-cut
 * sweep runs thousands of boots quickly, and a driver that boots a simulated device and steps
 * its real agent core on a virtual clock until it is idle.
 */
#ifndef SIMKIT_H
#define SIMKIT_H

#include <openssl/evp.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fwa/agent.h"
#include "sim.h"

#define KIT_HW "sim"
#define KIT_DEP "d-0001"
#define KIT_MAX_EVENTS 64

struct kit_keys {
	EVP_PKEY *root;
	EVP_PKEY *release;
	EVP_PKEY *stranger; /* trusted by no root */
	EVP_PKEY *root2;    /* the root key of a rotated root */
};

/* Fresh keys; aborts the test program on failure. */
void kit_keys_make(struct kit_keys *k);
void kit_keys_free(struct kit_keys *k);

/* Root metadata envelope: root role {root}, release role {release}, signed by signers. */
long kit_root(EVP_PKEY *root, EVP_PKEY *release, uint32_t version, EVP_PKEY *const *signers,
              unsigned nsigners, char *out, size_t cap);
/* The same with a time role {time_key} (none when NULL) and an expiry (NULL: 2100). */
long kit_root_time(EVP_PKEY *root, EVP_PKEY *release, EVP_PKEY *time_key, const char *expires,
                   uint32_t version, EVP_PKEY *const *signers, unsigned nsigners, char *out,
                   size_t cap);
/* The same with server CA pins (server_cas; none when ncas is 0). */
long kit_root_cas(EVP_PKEY *root, EVP_PKEY *release, const uint8_t (*cas)[32], unsigned ncas,
                  uint32_t version, EVP_PKEY *const *signers, unsigned nsigners, char *out,
                  size_t cap);
/* Manifest envelope for image[0..len), signed by `signer`. */
long kit_manifest(EVP_PKEY *signer, const char *version, uint32_t secver, const char *hw,
                  const uint8_t *image, size_t len, char *out, size_t cap);

/*
 * A new release made from the image `from` the way code changes: its payload (same length)
 * with 96 new bytes inserted at a third (everything after moves) and a byte changed every 6007;
 * header with this version and security version, CRCs fixed. Returns the image length, -1
 * when it does not fit.
 */
long kit_derive(const uint8_t *from, size_t from_len, const char *version, uint32_t secver,
                uint8_t *out, size_t cap);

/*
 * A delta from base to target (signer/delta.c) into *delta (malloc'ed, the caller frees), and
 * its metadata envelope for the release of `manifest`, signed by `signer`, into out. Returns
 * the envelope's length; aborts the test program on failure.
 */
long kit_delta(EVP_PKEY *signer, const char *manifest, size_t manifest_len, const uint8_t *base,
               size_t base_len, const uint8_t *target, size_t target_len, uint8_t **delta,
               size_t *delta_len, char *out, size_t cap);

/* One recorded report. */
struct kit_event {
	uint32_t seq;
	char status[16];
	char reason[80];
	char version[FWA_SEMVER_MAX + 1];
};

/* The device API double. */
struct kit_server {
	/* the offered deployment */
	bool offer;
	char dep_id[FWA_DEP_ID_MAX + 1];
	char target_version[FWA_SEMVER_MAX + 1];
	char manifest[FWA_ENVELOPE_MAX];
	size_t manifest_len;
	uint8_t *image; /* served bytes (the caller's) */
	size_t image_len;
	char image_path[100];
	/* an offered delta: given when the check-in's active_image_sha256 is delta_base */
	uint8_t *delta; /* the caller's */
	size_t delta_len;
	char delta_meta[FWA_ENVELOPE_MAX];
	size_t delta_meta_len;
	char delta_path[100];
	char delta_base[65]; /* hex SHA-256 of the base image */
	bool delta_gone;     /* answer 404 to delta downloads */
	unsigned delta_gets;
	unsigned delta_offers;
	char roots[2][FWA_ENVELOPE_MAX]; /* roots offered at check-in */
	size_t roots_len[2];
	unsigned nroots;
	/* signed time: with time_key, a check-in carrying a nonce gets a token of token_time */
	EVP_PKEY *time_key; /* the caller's */
	const char *token_time;
	enum { KIT_TOKEN_OWN, KIT_TOKEN_FOREIGN, KIT_TOKEN_REPLAY } token_mode;
	char prev_nonce[65];
	unsigned tokens;
	/*
	 * certificate renewal (issuer true): certificates are serials, keys numbers; the
	 * connection presents conn_cert; anything but the pinned or the pending certificate is
	 * refused (403, counted in refused), the pending one is pinned on first use.
	 */
	bool issuer;
	uint32_t pinned, pinned_key, pending, pending_key, serials;
	int64_t issue_nb, issue_na;
	unsigned issued, pins, refused;
	uint32_t conn_cert, conn_key;
	/* the CA of the server's chain (has_ca): a device pinning others refuses the connection */
	bool has_ca;
	uint8_t ca[32];
	unsigned ca_refusals;
	/* faults */
	long drop_after;      /* cut image responses after this many body bytes ... */
	int drops_left;       /* ... this many times */
	bool down;            /* refuse connections */
	unsigned cut_answers; /* handle this many requests, then cut before their answers */
	bool close_each;      /* answer every request with Connection: close (no keep-alive) */
	unsigned close_kept;  /* end this many kept connections unanswered at their next request */
	/*
	 * once refuse_after reports are stored, answer the next refuse_reports reports 403 with a
	 * problem of refuse_type (a slug), storing nothing
	 */
	unsigned refuse_reports, refuse_after;
	const char *refuse_type;
	unsigned report_refusals; /* reports so refused */
	/* what the server learned */
	struct kit_event events[KIT_MAX_EVENTS];
	unsigned nevents; /* unique (seq) events stored */
	unsigned duplicates;
	char final_status[16]; /* "" until confirmed / failed / rolled_back arrives */
	char final_reason[80];
	char final_version[FWA_SEMVER_MAX + 1];
	bool succeeded; /* confirmed with version == target_version */
	unsigned checkins;
	unsigned image_gets;
	uint64_t ranges[16];   /* first byte asked by each image GET */
	char last_outcome[16]; /* last_outcome.status from the latest check-in */
	/* the connection */
	unsigned connections; /* connections opened (handshakes) */
	unsigned requests;    /* requests handled */
	bool open;
	bool peer_closed; /* the server ended this connection: the stream is at its end */
	char in[8192];
	size_t in_len;
	char *out;
	size_t out_len, out_pos, out_cap;
	bool reset_at_end; /* this response ends in a connection reset */
};

void kit_server_init(struct kit_server *s);
void kit_server_free(struct kit_server *s);
/* Offer deployment KIT_DEP of this manifest and image (image stays the caller's). */
void kit_server_offer(struct kit_server *s, const char *version, const char *manifest,
                      size_t manifest_len, uint8_t *image, size_t image_len);
/* Also offer this delta (stays the caller's) to devices running the image whose SHA-256 is base. */
void kit_server_offer_delta(struct kit_server *s, const char *meta, size_t meta_len, uint8_t *delta,
                            size_t delta_len, const uint8_t base_sha256[32]);

/*
 * Network timing of a simulated device, in virtual milliseconds (all 0: instant). A connect
 * costs the Wi-Fi join and DHCP once per boot, then DNS and the TCP and TLS handshake; one
 * connect is bounded by connect_timeout_ms as on RP2350 (a join still under way goes on into
 * the next connect). Each request waits rtt_ms for its answer.
 */
struct kit_net {
	uint32_t boot_ms;      /* reset to agent start (RP2350: cyw43 firmware load, checks) */
	uint32_t wifi_join_ms; /* association and WPA2 handshake */
	uint32_t dhcp_ms;
	uint32_t dns_ms;
	uint32_t tls_ms;             /* TCP and full TLS handshake with its P-256 operations */
	uint32_t tls_resume_ms;      /* TCP and a resumed handshake (0: as tls_ms) */
	uint32_t rtt_ms;             /* request sent to first byte of the answer */
	uint32_t connect_timeout_ms; /* 0: 10000 */
	bool stall;                  /* the server accepts connections but never answers */
	bool stall_trial;            /* ... only while the device runs a trial */
	/* this boot */
	uint32_t joined_ms; /* Wi-Fi join and DHCP time spent so far */
	bool answered;      /* the current response's first byte arrived */
	bool session;       /* a TLS session to resume (RAM: lost at every boot) */
	/* what the last trial cost until its buy (for the trial budget figures) */
	uint64_t spent_link, spent_connect, spent_request;
	unsigned connects, connect_timeouts, requests;
};

/*
 * The device's credentials for renewal, persisted as files are (each write atomic and one
 * counted operation, fwa_sim_atomic_op, so the sweep cuts power at each). 0 means none.
 */
struct kit_cred {
	uint32_t cert, cert_key, key; /* the pair in use (cert_key: the key cert is for) */
	int64_t nb, na;               /* validity of cert */
	uint32_t key_new, cert_new, cert_new_key; /* the pending pair */
	int64_t new_nb, new_na;
	uint32_t keys_made;
	/* RAM */
	bool using_pending;
	unsigned pending_tries;
};

/* A simulated device: hardware, its server, and its agent. */
struct kit_device;

/*
 * Marginal Wi-Fi, the trial budget's reference (docs/rp2350.md): Wi-Fi join and DHCP outlast
 * one connect, and a trial outlasts the bootrom's 16.7 s but fits the agent's deadline.
 */
void kit_net_slow(struct kit_device *d);
struct kit_device {
	struct fwa_sim sim; /* first: the sim port members use it */
	struct kit_server *srv;
	struct fwa_port port;
	struct fwa_agent agent;
	struct fwa_agent_config cfg;
	struct fwa_health_check check;
	char version[FWA_SEMVER_MAX + 1];
	char root[FWA_ENVELOPE_MAX];
	size_t root_len;
	void *scratch;
	unsigned boots;
	unsigned steps;
	bool checked_in; /* a check-in was answered since the device was made */
	bool bricked;
	struct kit_net net;
	jmp_buf *wd_jmp;        /* kit_run's: the watchdog fired while the clock advanced */
	uint64_t trial_boot_ms; /* virtual time of the last trial boot (the bootrom's start) */
	uint64_t trial_buy_ms;  /* virtual time its buy took, 0 when it was not bought */
	uint64_t trial_end_ms;  /* virtual time the last trial ended: bought or reverted */
	struct kit_cred cred;   /* with kit_renewal() */
	/* server CAs the agent's root pins (tr_server_cas); none: the provisioned CA, prov_ca */
	uint8_t pins[FWA_MAX_SERVER_CAS][32];
	unsigned npins;
	uint8_t prov_ca[32];
};

/*
 * Certificate renewal on: the device holds certificate 1 (key 1) valid [nb, na) and renews at
 * half its lifetime; the server pins certificate 1 and issues certificates valid [inb, ina).
 */
void kit_renewal(struct kit_device *d, int64_t nb, int64_t na, int64_t inb, int64_t ina);

/*
 * Let ms of virtual time pass on the device; when an unbought trial's watchdog fires in that
 * time, the clock stops there and, inside kit_run, the boot ends as the watchdog's reset.
 */
void kit_advance(struct kit_device *d, uint64_t ms);

/* Device provisioned with `factory` in slot A, trusting `root`, talking to srv. */
void kit_device_init(struct kit_device *d, struct kit_server *srv, const uint8_t *factory,
                     size_t factory_len, const char *root, size_t root_len, uint32_t slot_size);
void kit_device_free(struct kit_device *d);

enum kit_result {
	KIT_IDLE = 0, /* the agent is idle after a successful check-in */
	KIT_CUT,      /* the power was cut at the armed operation */
	KIT_BRICKED,  /* nothing bootable */
	KIT_STUCK,    /* step budget spent before idle */
	KIT_ERROR,    /* the agent refused to start */
};

/*
 * Boot the device (as after power-on, unless the bootrom registers say otherwise) and run it
 * on its virtual clock until the agent is idle, rebooting as it asks and when the watchdog
 * fires (also in the middle of a slow network operation, or when the image hangs), at most
 * max_steps steps. With sim.cut_at armed, returns KIT_CUT after the cut; the
 * caller then calls fwa_sim_power_cut() (kit_power_cut) and runs again.
 */
enum kit_result kit_run(struct kit_device *d, unsigned max_steps);
void kit_power_cut(struct kit_device *d);

/* SHA-256 (OpenSSL) of the running slot's image bytes [0, len). */
void kit_slot_sha256(struct kit_device *d, unsigned slot, size_t len, uint8_t out[32]);

#endif
