/*
 * http/ticket_key.h - the TLS session-ticket master key that several otad instances share, so
 * that a ticket issued by one resumes on another ([tls] ticket_key, otad --ticket-key-generate,
 * docs/operations.md "Several instances behind a load balancer"). The file holds one line: the
 * standard base64 (with padding, 88 characters) of the 64-byte GnuTLS master key, and a
 * newline. It is a regular file that its group cannot write and others cannot read or write
 * (mode at most 0640), like otad's other key files.
 */
#ifndef OTA_TICKET_KEY_H
#define OTA_TICKET_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* The GnuTLS session-ticket master key's size. */
#define OTA_TICKET_KEY_SIZE 64

/*
 * Read and check the key file at path into key. OTA_ERR_TLS with msg set ("ticket key PATH:
 * why") when it cannot be read, is not a regular file, has a looser mode than 0640, or does not
 * hold exactly one line of base64 of 64 bytes; key is then left as it was.
 */
OTA_WUR enum ota_err ota_ticket_key_read(const char *path, uint8_t key[OTA_TICKET_KEY_SIZE],
                                         char *msg, size_t msglen);

/*
 * Write a fresh random key to path: a temporary file of mode 0600, renamed over path (an old
 * key there is replaced at once, never half). OTA_ERR_IO with msg set when it cannot.
 */
OTA_WUR enum ota_err ota_ticket_key_generate(const char *path, char *msg, size_t msglen);

#endif
