/*
 * identity.c - reads the device's provisioned identity (Wi-Fi, server, TLS credentials,
 * trusted root, hardware variant) from the identity partition: a small record format with a
 * CRC, written once by the host-side provisioning step (tools/provision.py). The firmware
 * only reads these records (the partition's last 8 KiB hold renewed credentials,
 * credstore.c). Freestanding, so that the tests run it on the host and on
 * the emulated Cortex-M33 as well (tests/portable/t_identity.c).
 */
#include <stdbool.h>
#include <string.h>

#include "identity.h"

static const uint8_t magic[8] = {'F', 'W', 'A', 'I', 'D', 'v', '1', 0};

static uint32_t crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	return ~c;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static enum fwa_err bad(const char **why, enum fwa_err e, const char *reason)
{
	if (why)
		*why = reason;
	return e;
}

static bool port_number(const char *s, uint16_t *out)
{
	uint32_t v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint32_t)(*s - '0');
		if (v > 65535)
			return false;
	}
	*out = (uint16_t)v;
	return v != 0;
}

enum fwa_err fwa_rp2350_identity_parse(const uint8_t *buf, size_t len,
                                       struct fwa_rp2350_identity *out, const char **why)
{
	const char *val[FWA_ID__COUNT] = {0};
	size_t vlen[FWA_ID__COUNT] = {0};

	memset(out, 0, sizeof(*out));
	if (len < 16 || memcmp(buf, magic, sizeof(magic)) != 0)
		return bad(why, FWA_ERR_MALFORMED, "identity partition not provisioned (no magic)");
	uint32_t rl = le32(buf + 8);
	if (rl > FWA_RP2350_IDENTITY_MAX || rl > len - 16)
		return bad(why, FWA_ERR_TOO_LARGE, "identity records longer than the partition");
	if (crc32(buf, 12 + rl) != le32(buf + 12 + rl))
		return bad(why, FWA_ERR_MALFORMED, "identity CRC mismatch");
	for (size_t off = 12; off < 12 + rl;) {
		if (12 + rl - off < 4)
			return bad(why, FWA_ERR_MALFORMED, "identity record header cut short");
		unsigned tag = buf[off];
		size_t n = (size_t)buf[off + 2] | (size_t)buf[off + 3] << 8;
		off += 4;
		if (buf[off - 3] != 0 || tag == 0 || tag >= FWA_ID__COUNT)
			return bad(why, FWA_ERR_MALFORMED, "identity record of an unknown kind");
		if (val[tag])
			return bad(why, FWA_ERR_MALFORMED, "identity record given twice");
		if (n < 1 || n > 12 + rl - off || buf[off + n - 1] != 0 ||
		    memchr(buf + off, 0, n - 1) != NULL)
			return bad(why, FWA_ERR_MALFORMED, "identity value is not a C string");
		/* Only the Wi-Fi passphrase may be empty (an open network). */
		if (n == 1 && tag != FWA_ID_WIFI_PASSWORD)
			return bad(why, FWA_ERR_MALFORMED, "identity value empty");
		val[tag] = (const char *)buf + off;
		vlen[tag] = n;
		off += n;
	}
	for (unsigned t = 1; t < FWA_ID__COUNT; t++)
		if (!val[t])
			return bad(why, FWA_ERR_MALFORMED, "identity record missing");
	if (!port_number(val[FWA_ID_SERVER_PORT], &out->server_port))
		return bad(why, FWA_ERR_MALFORMED, "server port is not a number from 1 to 65535");
	if (vlen[FWA_ID_SERVER_HOST] + 7 > sizeof(out->host_header))
		return bad(why, FWA_ERR_TOO_LARGE, "server host name too long");
	out->wifi_ssid = val[FWA_ID_WIFI_SSID];
	out->wifi_password = val[FWA_ID_WIFI_PASSWORD];
	out->server_host = val[FWA_ID_SERVER_HOST];
	out->hw_variant = val[FWA_ID_HW_VARIANT];
	out->server_ca = val[FWA_ID_SERVER_CA];
	out->server_ca_len = vlen[FWA_ID_SERVER_CA];
	out->device_cert = val[FWA_ID_DEVICE_CERT];
	out->device_cert_len = vlen[FWA_ID_DEVICE_CERT];
	out->device_key = val[FWA_ID_DEVICE_KEY];
	out->device_key_len = vlen[FWA_ID_DEVICE_KEY];
	out->root_json = val[FWA_ID_ROOT];
	out->root_len = vlen[FWA_ID_ROOT] - 1;
	/* "host:port", the Host header the server expects. */
	size_t hl = vlen[FWA_ID_SERVER_HOST] - 1;
	memcpy(out->host_header, out->server_host, hl);
	out->host_header[hl++] = ':';
	memcpy(out->host_header + hl, val[FWA_ID_SERVER_PORT], vlen[FWA_ID_SERVER_PORT]);
	return FWA_OK;
}
