/*
 * Portable tests of the RP2350 port's identity parser (firmware-agent/ports/rp2350/identity.c):
 * what tools/provision.py writes parses into the right fields, and every damaged, missing,
 * repeated or out-of-range record is refused with a reason. The parser is freestanding, so it
 * runs here on the host and on the emulated Cortex-M33 without the Pico SDK.
 */
#include <string.h>

#include "identity.h"
#include "ptest.h"

static uint8_t img[4096];
static size_t img_len;

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

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void begin(void)
{
	memset(img, 0xff, sizeof(img));
	memcpy(img, "FWAIDv1", 8); /* with its NUL */
	img_len = 12;
}

/* A record whose value is s with its NUL (len counts it), or raw bytes when raw_len >= 0. */
static void rec(unsigned tag, const char *s, long raw_len)
{
	size_t n = raw_len >= 0 ? (size_t)raw_len : strlen(s) + 1;
	img[img_len] = (uint8_t)tag;
	img[img_len + 1] = 0;
	img[img_len + 2] = (uint8_t)n;
	img[img_len + 3] = (uint8_t)(n >> 8);
	memcpy(img + img_len + 4, s, n);
	img_len += 4 + n;
}

static void end(void)
{
	put32(img + 8, (uint32_t)(img_len - 12));
	put32(img + img_len, crc32(img, img_len));
	img_len += 4;
}

static const char root[] = "{\"payloadType\":\"application/vnd.ota.root+json\"}";

/* Everything but `skip`, with `port` as the port and `pass` as the passphrase. */
static void all_but(unsigned skip, const char *port, const char *pass)
{
	begin();
	if (skip != FWA_ID_WIFI_SSID)
		rec(FWA_ID_WIFI_SSID, "plant-ota", -1);
	if (skip != FWA_ID_WIFI_PASSWORD)
		rec(FWA_ID_WIFI_PASSWORD, pass, -1);
	if (skip != FWA_ID_SERVER_HOST)
		rec(FWA_ID_SERVER_HOST, "ota.plant.example", -1);
	if (skip != FWA_ID_SERVER_PORT)
		rec(FWA_ID_SERVER_PORT, port, -1);
	if (skip != FWA_ID_HW_VARIANT)
		rec(FWA_ID_HW_VARIANT, "pico2_w", -1);
	if (skip != FWA_ID_SERVER_CA)
		rec(FWA_ID_SERVER_CA,
		    "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n", -1);
	if (skip != FWA_ID_DEVICE_CERT)
		rec(FWA_ID_DEVICE_CERT,
		    "-----BEGIN CERTIFICATE-----\ndev\n-----END CERTIFICATE-----\n", -1);
	if (skip != FWA_ID_DEVICE_KEY)
		rec(FWA_ID_DEVICE_KEY,
		    "-----BEGIN "
		    "PRIVATE KEY-----\nk\n-----END "
		    "PRIVATE KEY-----\n",
		    -1);
	if (skip != FWA_ID_ROOT)
		rec(FWA_ID_ROOT, root, -1);
}

static enum fwa_err parse(struct fwa_rp2350_identity *id)
{
	const char *why = NULL;
	/* The partition is bigger than the records: parse the whole erased tail as well. */
	enum fwa_err e = fwa_rp2350_identity_parse(img, sizeof(img), id, &why);
	if (e != FWA_OK && (why == NULL || why[0] == '\0'))
		return FWA_ERR__COUNT;
	return e;
}

static void parses_a_provisioned_identity(const struct ptest_kit *kit)
{
	struct fwa_rp2350_identity id;
	(void)kit;
	all_but(0, "8443", "correct horse");
	end();
	PT_REQUIRE_OK(parse(&id));
	PT_STR(id.wifi_ssid, "plant-ota");
	PT_STR(id.wifi_password, "correct horse");
	PT_STR(id.server_host, "ota.plant.example");
	PT_EQ(id.server_port, 8443);
	PT_STR(id.host_header, "ota.plant.example:8443");
	PT_STR(id.hw_variant, "pico2_w");
	PT_EQ(id.server_ca_len, strlen(id.server_ca) + 1); /* mbedTLS wants PEM with its NUL */
	PT_EQ(id.device_key_len, strlen(id.device_key) + 1);
	PT_EQ(id.root_len, sizeof(root) - 1);
	PT_MEM(id.root_json, root, sizeof(root));
}

static void open_network_has_empty_passphrase(const struct ptest_kit *kit)
{
	struct fwa_rp2350_identity id;
	(void)kit;
	all_but(0, "443", "");
	end();
	PT_REQUIRE_OK(parse(&id));
	PT_STR(id.wifi_password, "");
}

static void refuses_damage(const struct ptest_kit *kit)
{
	struct fwa_rp2350_identity id;
	(void)kit;

	/* Never provisioned: erased flash. */
	memset(img, 0xff, sizeof(img));
	PT_ERR(parse(&id), FWA_ERR_MALFORMED);
	/* A flipped bit anywhere in the records. */
	all_but(0, "8443", "correct horse");
	end();
	img[40] ^= 0x04;
	PT_ERR(parse(&id), FWA_ERR_MALFORMED);
	/* A record length that runs past the partition. */
	all_but(0, "8443", "correct horse");
	end();
	put32(img + 8, 0x00100000);
	PT_ERR(parse(&id), FWA_ERR_TOO_LARGE);
	/* Records cut inside a header (CRC made to match). */
	all_but(0, "8443", "correct horse");
	img[img_len++] = FWA_ID_ROOT;
	img[img_len++] = 0;
	end();
	PT_ERR(parse(&id), FWA_ERR_MALFORMED);
}

static void refuses_bad_records(const struct ptest_kit *kit)
{
	struct fwa_rp2350_identity id;
	(void)kit;

	for (unsigned t = 1; t < FWA_ID__COUNT; t++) {
		all_but(t, "8443", "correct horse"); /* each record is required */
		end();
		if (!PT_ERR(parse(&id), FWA_ERR_MALFORMED))
			ptest_out("    (a missing record was accepted)\n");
	}
	all_but(0, "8443", "correct horse");
	rec(FWA_ID_HW_VARIANT, "pico2_w", -1); /* twice */
	end();
	PT_ERR(parse(&id), FWA_ERR_MALFORMED);
	all_but(0, "8443", "correct horse");
	rec(FWA_ID__COUNT, "x", -1); /* unknown tag */
	end();
	PT_ERR(parse(&id), FWA_ERR_MALFORMED);
	all_but(0, "8443", "correct horse");
	rec(0, "x", -1);
	end();
	PT_ERR(parse(&id), FWA_ERR_MALFORMED);

	/* Values must be C strings: NUL-terminated, no NUL inside, not empty. */
	all_but(FWA_ID_HW_VARIANT, "8443", "correct horse");
	rec(FWA_ID_HW_VARIANT, "pico2_w", 7); /* no NUL */
	end();
	PT_ERR(parse(&id), FWA_ERR_MALFORMED);
	all_but(FWA_ID_HW_VARIANT, "8443", "correct horse");
	rec(FWA_ID_HW_VARIANT, "pi\0co", 6);
	end();
	PT_ERR(parse(&id), FWA_ERR_MALFORMED);
	all_but(FWA_ID_HW_VARIANT, "8443", "correct horse");
	rec(FWA_ID_HW_VARIANT, "", -1);
	end();
	PT_ERR(parse(&id), FWA_ERR_MALFORMED);
}

static void refuses_bad_ports_and_hosts(const struct ptest_kit *kit)
{
	static const char *const bad_ports[] = {"0", "65536", "99999999999", "84a3",
	                                        "",  "-1",    " 443"};
	struct fwa_rp2350_identity id;
	char host[140];
	(void)kit;

	for (unsigned i = 0; i < sizeof(bad_ports) / sizeof(bad_ports[0]); i++) {
		all_but(0, bad_ports[i], "correct horse");
		end();
		if (!PT_ERR(parse(&id), FWA_ERR_MALFORMED)) {
			ptest_out("    port: ");
			ptest_out(bad_ports[i]);
			ptest_out("\n");
		}
	}
	all_but(0, "65535", "correct horse");
	end();
	PT_OK(parse(&id));
	PT_EQ(id.server_port, 65535);

	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	all_but(FWA_ID_SERVER_HOST, "443", "correct horse");
	rec(FWA_ID_SERVER_HOST, host, -1);
	end();
	PT_ERR(parse(&id), FWA_ERR_TOO_LARGE);
}

static const struct ptest_case cases[] = {
    {"parses_a_provisioned_identity", parses_a_provisioned_identity},
    {"open_network_has_empty_passphrase", open_network_has_empty_passphrase},
    {"refuses_damage", refuses_damage},
    {"refuses_bad_records", refuses_bad_records},
    {"refuses_bad_ports_and_hosts", refuses_bad_ports_and_hosts},
    {NULL, NULL},
};

const struct ptest_suite ptest_suite = {"identity", cases};
