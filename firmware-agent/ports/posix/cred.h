/*
 * cred.h - the POSIX agent's device credentials and their renewal (the cred_* members of
 * struct fwa_port): the configured certificate and key files, and a pending pair beside them
 * (CERT.new, KEY.new) that a renewal makes. Every file is written to a temporary name, synced
 * and renamed, so a power cut leaves either the old or the new file, never a torn one.
 *
 * Commit order: KEY.new is renamed over KEY first, then CERT.new over CERT. A cut between the
 * two leaves KEY matching CERT.new with no KEY.new, which fwa_cred_settle() completes. Until the
 * commit, the old pair is untouched and the transport falls back to it.
 *
 * Functions return FWA_OK or an fwa_err; messages go to stderr.
 */
#ifndef FWA_POSIX_CRED_H
#define FWA_POSIX_CRED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fwa/err.h"

struct fwa_cred {
	char cert[1024], key[1024];         /* the pair in use */
	char cert_new[1040], key_new[1040]; /* the pending pair */
};

/* Paths of the pair; then completes a commit a power cut interrupted. */
void fwa_cred_init(struct fwa_cred *c, const char *cert, const char *key);
void fwa_cred_settle(struct fwa_cred *c);

/* Both pending files exist (a certificate waits for its first use). */
bool fwa_cred_has_pending(const struct fwa_cred *c);

enum fwa_err fwa_cred_lifetime(const struct fwa_cred *c, int64_t *not_before, int64_t *not_after,
                               bool *pending);
enum fwa_err fwa_cred_csr(struct fwa_cred *c, char *buf, size_t cap, size_t *len);
enum fwa_err fwa_cred_install(struct fwa_cred *c, const char *pem, size_t len);
/* Make the pending pair the pair in use (KEY first, then CERT). */
enum fwa_err fwa_cred_commit(struct fwa_cred *c);

#endif
