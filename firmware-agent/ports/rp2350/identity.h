/*
 * identity.h - the device's provisioned identity on the RP2350: Wi-Fi credentials, the
 * server's address, the TLS credentials (device key and certificate, the pinned server CA),
 * the trusted root metadata and the hardware variant, read from the identity partition.
 *
 * Layout of the partition (written by tools/provision.py, docs/rp2350.md "Provisioning"),
 * all integers little-endian:
 *   0   8 bytes  magic "FWAIDv1\0"
 *   8   u32      length L of the records
 *   12  L bytes  records: u8 tag, u8 0, u16 length n, then n bytes of value; every value
 *                ends with a NUL byte that n counts, so that each is a C string
 *   12+L u32     CRC-32 (IEEE 802.3) of bytes 0 .. 12+L-1
 * Every tag below must appear exactly once; unknown tags are an error. Only the Wi-Fi
 * passphrase may be empty (an open network).
 */
#ifndef FWA_RP2350_IDENTITY_H
#define FWA_RP2350_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "fwa/err.h"

#define FWA_RP2350_IDENTITY_MAX 16384 /* bytes of the whole record set */

enum fwa_rp2350_tag {
	FWA_ID_WIFI_SSID = 1,
	FWA_ID_WIFI_PASSWORD = 2,
	FWA_ID_SERVER_HOST = 3, /* DNS name or address; also the TLS server name */
	FWA_ID_SERVER_PORT = 4, /* decimal */
	FWA_ID_HW_VARIANT = 5,
	FWA_ID_SERVER_CA = 6,   /* PEM: the CA that signed otad's device-listener certificate */
	FWA_ID_DEVICE_CERT = 7, /* PEM: this device's certificate (clientAuth) */
	FWA_ID_DEVICE_KEY = 8,  /* PEM: this device's ECDSA P-256 private key */
	FWA_ID_ROOT = 9,        /* the provisioned root metadata envelope (JSON) */
	FWA_ID__COUNT
};

struct fwa_rp2350_identity {
	const char *wifi_ssid;
	const char *wifi_password;
	const char *server_host;
	uint16_t server_port;
	char host_header[136]; /* "host:port" for HTTP */
	const char *hw_variant;
	/* PEM texts with their lengths including the NUL, as mbedTLS wants them. */
	const char *server_ca;
	size_t server_ca_len;
	const char *device_cert;
	size_t device_cert_len;
	const char *device_key;
	size_t device_key_len;
	const char *root_json;
	size_t root_len; /* without the NUL */
};

/*
 * Parse an identity image (as laid out above) held in buf[0..len); the strings point into
 * buf, which must outlive *out. FWA_ERR_MALFORMED for a bad magic, CRC, record or value,
 * FWA_ERR_TOO_LARGE when over FWA_RP2350_IDENTITY_MAX. *why names the problem.
 */
FWA_WUR enum fwa_err fwa_rp2350_identity_parse(const uint8_t *buf, size_t len,
                                               struct fwa_rp2350_identity *out, const char **why);

#endif
