/*
 * ota-bench-fill - fills an otad database through the store API, for the benchmarks.
 *
 * It records a release (with an image file placed where otad serves images from, and a
 * manifest envelope of the real shape and size, signed by a throwaway key since no device in a
 * benchmark verifies it), admits the devices a load generator will present (their certificate
 * fingerprints come from `ota-loadgen --device-dir`), optionally gives each an active
 * deployment of that release, and adds a synthetic fleet of N more devices, each with a
 * history of finished deployments and their reports. Writes go through ota_store_* calls
 * grouped by ota_store_bulk_begin/end into large transactions, so a million devices take
 * minutes, not hours. With --facts the synthetic devices also have what a check-in reports
 * (variants, versions, a security floor) and tags, and a few are pending or decommissioned,
 * so that a rollout plan has a fleet of some variety to judge. With --conninfo it fills a
 * PostgreSQL store (the same calls, one round trip each) instead of the SQLite file --db.
 * Run it while otad is stopped.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "store/mgmt_store.h"
#include "store/store.h"

#define BULK_DEVICES 20000 /* devices per transaction */

struct fill_opts {
	const char *db;
	const char *conninfo; /* --conninfo: a PostgreSQL store instead of the SQLite file --db */
	const char *data_dir;
	const char *image;
	const char *devices_file;
	const char *hw;
	long fleet;
	long fleet_start;
	int history;
	bool deploy;
	bool facts;
};

static struct fill_opts o;
static struct ota_release history_rel, image_rel;
static int64_t now_unix;

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("ota-bench-fill: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void check(enum ota_err rc, const char *what)
{
	if (rc != OTA_OK)
		die("%s: %s", what, ota_strerror(rc));
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void hex(const unsigned char *b, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static char *b64(const unsigned char *p, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	if (!out)
		die("out of memory");
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

/*
 * A release of the manifest's real shape: payload JSON, DSSE envelope with one ECDSA P-256
 * signature over the pre-authentication encoding, id = SHA-256 of the payload.
 */
static void make_release(struct ota_store *st, struct ota_release *r, const char *version,
                         const char *image_sha, uint64_t image_size)
{
	static const char type[] = "application/vnd.ota.manifest+json";
	char payload[1024], *pae, *env, *p64, *s64, keyid[65];
	unsigned char md[32], sig[80], *spki = NULL;
	size_t siglen = sizeof(sig), pae_len;
	int plen, spki_len;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	bool existed;

	memset(r, 0, sizeof(*r));
	plen = snprintf(
	    payload, sizeof(payload),
	    "{\"_type\":\"release\",\"spec_version\":1,\"name\":\"bench\",\"version\":\"%s\","
	    "\"security_version\":1,\"hw_variants\":[\"%s\"],\"image\":{\"size\":%" PRIu64
	    ",\"sha256\":\"%s\",\"format\":\"bin\"},\"created\":\"2026-01-01T00:00:00Z\"}",
	    version, o.hw, image_size, image_sha);
	pae_len = (size_t)plen + 128;
	pae = malloc(pae_len);
	if (!key || !mc || !pae)
		die("out of memory");
	pae_len = (size_t)snprintf(pae, pae_len, "DSSEv1 %zu %s %d %s", strlen(type), type, plen,
	                           payload);
	if (EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(mc, sig, &siglen, (unsigned char *)pae, pae_len) != 1)
		die("cannot sign the bench manifest");
	spki_len = i2d_PUBKEY(key, &spki);
	if (spki_len <= 0)
		die("cannot encode the bench key");
	EVP_Digest(spki, (size_t)spki_len, md, NULL, EVP_sha256(), NULL);
	hex(md, 32, keyid);
	p64 = b64((unsigned char *)payload, (size_t)plen);
	s64 = b64(sig, siglen);
	env = malloc(strlen(p64) + strlen(s64) + 256);
	if (!env)
		die("out of memory");
	sprintf(env,
	        "{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"%s\","
	        "\"sig\":\"%s\"}]}",
	        type, p64, keyid, s64);
	EVP_Digest(payload, (size_t)plen, md, NULL, EVP_sha256(), NULL);
	hex(md, 32, r->id);
	snprintf(r->name, sizeof(r->name), "bench");
	snprintf(r->version, sizeof(r->version), "%s", version);
	r->security_version = 1;
	snprintf(r->image_sha256, sizeof(r->image_sha256), "%s", image_sha);
	r->image_size = image_size;
	snprintf(r->image_format, sizeof(r->image_format), "bin");
	r->manifest_created = 1767225600;
	r->nhw = 1;
	snprintf(r->hw[0], sizeof(r->hw[0]), "%s", o.hw);
	check(ota_store_image_add(st, image_sha, image_size, now_unix, &existed), "image record");
	check(ota_store_release_add(st, r, env, now_unix, &existed), "release record");
	OPENSSL_free(spki);
	EVP_MD_CTX_free(mc);
	EVP_PKEY_free(key);
	free(pae);
	free(env);
	free(p64);
	free(s64);
}

/* Hashes the image and copies it to DATA_DIR/images/<sha256> (otad's image store). */
static void place_image(char *sha, uint64_t *size)
{
	char dir[4096], path[4200], tmp[4300];
	unsigned char buf[65536], md[32];
	FILE *in = fopen(o.image, "rb"), *out;
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	size_t n;
	if (!in)
		die("cannot read %s: %s", o.image, strerror(errno));
	snprintf(dir, sizeof(dir), "%s/images", o.data_dir);
	if (mkdir(o.data_dir, 0755) != 0 && errno != EEXIST)
		die("cannot make %s: %s", o.data_dir, strerror(errno));
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		die("cannot make %s: %s", dir, strerror(errno));
	snprintf(tmp, sizeof(tmp), "%s/.bench-upload", dir);
	out = fopen(tmp, "wb");
	if (!out || !mc || EVP_DigestInit_ex(mc, EVP_sha256(), NULL) != 1)
		die("cannot write %s", tmp);
	*size = 0;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
		EVP_DigestUpdate(mc, buf, n);
		if (fwrite(buf, 1, n, out) != n)
			die("cannot write %s", tmp);
		*size += n;
	}
	fclose(in);
	if (fclose(out) != 0)
		die("cannot write %s", tmp);
	EVP_DigestFinal_ex(mc, md, NULL);
	EVP_MD_CTX_free(mc);
	hex(md, 32, sha);
	snprintf(path, sizeof(path), "%s/%s", dir, sha);
	if (rename(tmp, path) != 0)
		die("cannot place %s: %s", path, strerror(errno));
}

static void new_deployment_id(char *out)
{
	unsigned char b[16];
	if (RAND_bytes(b, sizeof(b)) != 1)
		die("no randomness");
	out[0] = 'd';
	out[1] = '-';
	hex(b, sizeof(b), out + 2);
}

/* H finished deployments of the history release, each with its three reports. */
static void add_history(struct ota_store *st, const char *device)
{
	static const char *const steps[] = {"downloading", "downloaded", "confirmed"};
	for (int h = 0; h < o.history; h++) {
		char dep[OTA_DEPLOYMENT_ID_MAX];
		bool dup;
		new_deployment_id(dep);
		check(
		    ota_store_deployment_create(st, dep, device, history_rel.id, now_unix - 86400),
		    "deployment");
		for (unsigned s = 0; s < 3; s++) {
			struct ota_event ev = {.seq = s + 1,
			                       .status = steps[s],
			                       .version = history_rel.version,
			                       .progress =
			                           s == 0 ? 0 : (int64_t)history_rel.image_size};
			check(ota_store_event_add(st, dep, device, &ev, now_unix - 86400 + s, &dup),
			      "event");
		}
		check(ota_store_deployment_end(st, dep, "succeeded", "", now_unix - 86400 + 2),
		      "deployment end");
	}
}

static void admit(struct ota_store *st, const char *id, const char *fp)
{
	struct ota_device dev;
	bool created;
	check(ota_store_device_admit(st, id, fp, now_unix - 86400, &dev, &created), "admission");
	if (!created)
		die("device %s exists already: fill a fresh database", id);
	add_history(st, id);
}

static long fill_listed(struct ota_store *st)
{
	FILE *f = fopen(o.devices_file, "r");
	char id[128], fp[128];
	long n = 0;
	if (!f)
		die("cannot read %s: %s", o.devices_file, strerror(errno));
	check(ota_store_bulk_begin(st), "bulk begin");
	while (fscanf(f, "%127s %127s", id, fp) == 2) {
		admit(st, id, fp);
		if (o.deploy) {
			char dep[OTA_DEPLOYMENT_ID_MAX];
			new_deployment_id(dep);
			check(ota_store_deployment_create(st, dep, id, image_rel.id, now_unix),
			      "active deployment");
		}
		n++;
	}
	fclose(f);
	check(ota_store_bulk_end(st, true), "bulk commit");
	return n;
}

/* What device n reported at its last check-in, its tags and its life cycle (--facts). */
static void add_facts(struct ota_store *st, const char *id, long n)
{
	static const char *const versions[] = {"1.0.0", "1.1.0", "0.9.0"};
	char line[32], *tags[2] = {line, "site=berlin"};
	struct ota_device_report r = {
	    .id = id,
	    .hw_variant = n % 4 == 3 ? "pico2" : o.hw,
	    .version = versions[n % 3],
	    .security_floor = n % 97 == 0 ? 5 : 1,
	    .root_version = 1,
	    .active_slot = "A",
	    .boot_state = "normal",
	};
	check(ota_store_device_report(st, &r, now_unix - 3600), "report");
	snprintf(line, sizeof(line), "line=%ld", n % 100);
	check(ota_store_device_set_tags(st, id, (const char *const *)tags, n % 10 == 0 ? 2 : 1),
	      "tags");
	if (n % 1000 == 999)
		check(ota_store_device_set_status(st, id, "decommissioned"), "status");
	else if (n % 500 == 499)
		check(ota_store_device_set_admission(st, id, "pending"), "admission");
}

static void fill_fleet(struct ota_store *st)
{
	double t0 = mono();
	uint64_t x = 0x2545f4914f6cdd1dULL ^ (uint64_t)o.fleet_start;
	for (long i = 0; i < o.fleet; i++) {
		char id[32], fp[OTA_HEX256];
		unsigned char raw[32];
		if (i % BULK_DEVICES == 0)
			check(ota_store_bulk_begin(st), "bulk begin");
		snprintf(id, sizeof(id), "fleet-%07ld", o.fleet_start + i);
		/* A fingerprint no certificate has: these devices never connect. */
		for (int k = 0; k < 4; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			memcpy(raw + 8 * k, &x, 8);
		}
		hex(raw, sizeof(raw), fp);
		admit(st, id, fp);
		if (o.facts)
			add_facts(st, id, o.fleet_start + i);
		if ((i + 1) % BULK_DEVICES == 0 || i + 1 == o.fleet) {
			check(ota_store_bulk_end(st, true), "bulk commit");
			if ((i + 1) % 200000 == 0)
				fprintf(stderr, "ota-bench-fill: %ld devices, %.0f/s\n", i + 1,
				        (double)(i + 1) / (mono() - t0));
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"db", 1, 0, 'd'},      {"data-dir", 1, 0, 'D'}, {"image", 1, 0, 'i'},
	    {"devices", 1, 0, 'f'}, {"fleet", 1, 0, 'n'},    {"fleet-start", 1, 0, 's'},
	    {"history", 1, 0, 'H'}, {"deploy", 0, 0, 'y'},   {"hw", 1, 0, 'w'},
	    {"facts", 0, 0, 'F'},   {"conninfo", 1, 0, 'c'}, {0, 0, 0, 0},
	};
	struct ota_store *st = NULL;
	char msg[256] = "", sha[OTA_HEX256];
	uint64_t size = 0;
	long listed = 0;
	double t0 = mono();
	int ch;

	o.hw = "pico2w";
	o.history = 1;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'd':
			o.db = optarg;
			break;
		case 'D':
			o.data_dir = optarg;
			break;
		case 'i':
			o.image = optarg;
			break;
		case 'f':
			o.devices_file = optarg;
			break;
		case 'n':
			o.fleet = atol(optarg);
			break;
		case 's':
			o.fleet_start = atol(optarg);
			break;
		case 'H':
			o.history = atoi(optarg);
			break;
		case 'y':
			o.deploy = true;
			break;
		case 'w':
			o.hw = optarg;
			break;
		case 'F':
			o.facts = true;
			break;
		case 'c':
			o.conninfo = optarg;
			break;
		default:
			fputs("usage: ota-bench-fill --db FILE | --conninfo STRING\n"
			      "         [--data-dir DIR --image FILE]\n"
			      "         [--devices FINGERPRINTS [--deploy]] [--fleet N] "
			      "[--fleet-start K]\n"
			      "         [--history H] [--hw VARIANT] [--facts]\n",
			      stderr);
			return 2;
		}
	}
	if (!o.db == !o.conninfo || o.fleet < 0 || o.fleet_start < 0 || o.history < 0 ||
	    o.history > 100)
		die("give --db or --conninfo; --fleet, --fleet-start >= 0; --history 0..100");
	if (o.deploy && (!o.image || !o.data_dir || !o.devices_file))
		die("--deploy needs --image, --data-dir and --devices");
	if (o.image && !o.data_dir)
		die("--image needs --data-dir");
	now_unix = (int64_t)time(NULL);
	if (o.conninfo) {
		const struct ota_store_target t = {.backend = OTA_STORE_POSTGRESQL,
		                                   .conninfo = o.conninfo};
		check(ota_store_open_target(&t, &st, msg, sizeof(msg)), msg);
	} else {
		check(ota_store_open(o.db, &st, msg, sizeof(msg)), msg);
	}
	{
		/* The release every history deployment is of (its image is never downloaded). */
		char hist_sha[OTA_HEX256];
		unsigned char md[32];
		EVP_Digest("bench history image", 19, md, NULL, EVP_sha256(), NULL);
		hex(md, 32, hist_sha);
		make_release(st, &history_rel, "0.9.0", hist_sha, 1048576);
	}
	if (o.image) {
		place_image(sha, &size);
		make_release(st, &image_rel, "1.0.0", sha, size);
		printf("image %s:%" PRIu64 "\n", sha, size);
	}
	if (o.devices_file)
		listed = fill_listed(st);
	fill_fleet(st);
	ota_store_free(st);
	printf(
	    "filled %ld listed and %ld fleet devices, %d deployments of history each, in %.1f s\n",
	    listed, o.fleet, o.history, mono() - t0);
	return 0;
}
