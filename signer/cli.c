/*
 * cli.c - the ota-sign command line: keygen, root init, root rotate, release, verify and
 * inspect. Every command checks its own output with the shared verifier before anything is
 * written, writes all-or-nothing, and reports a failure as one line naming the failed rule.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "delta.h"
#include "fwa/crypto_openssl.h"
#include "fwa/delta.h"
#include "signer.h"

#define EXIT_FAIL 1  /* invalid input, failed verification, I/O error */
#define EXIT_USAGE 2 /* bad command line */
#define PASSPHRASE_MAX 1024
#define IMAGE_CHUNK 65536

struct cli {
	FILE *out;
	FILE *err;
	const char *cmd; /* "keygen", "root init", ... for messages */
};

__attribute__((format(printf, 2, 3))) static int failf(struct cli *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(c->err, "%s: ", c->cmd);
	va_start(ap, fmt);
	vfprintf(c->err, fmt, ap);
	va_end(ap);
	fputc('\n', c->err);
	return EXIT_FAIL;
}

__attribute__((format(printf, 2, 3))) static int usagef(struct cli *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(c->err, "%s: ", c->cmd);
	va_start(ap, fmt);
	vfprintf(c->err, fmt, ap);
	va_end(ap);
	fprintf(c->err, " (see ota-sign %s --help)\n", c->cmd);
	return EXIT_USAGE;
}

/* ---- Small parsers ---- */

static bool parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_time(const char *s, int64_t *out)
{
	return fwa_time_parse(s, strlen(s), out) == FWA_OK;
}

static int64_t now(void)
{
	return (int64_t)time(NULL);
}

/*
 * Read a whole regular file of at most `max` bytes, NUL-terminated. Returns 0, or an exit
 * status after printing the reason.
 */
static int read_file(struct cli *c, const char *path, size_t max, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	char *buf = NULL;
	size_t n;
	int rc = EXIT_FAIL;

	if (!f)
		return failf(c, "%s: %s", path, strerror(errno));
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		failf(c, "%s: not a regular file", path);
		goto out;
	}
	buf = malloc(max + 2);
	if (!buf) {
		failf(c, "%s: out of memory", path);
		goto out;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f)) {
		failf(c, "%s: read error", path);
		goto out;
	}
	if (n > max) {
		failf(c, "%s: file over %zu bytes%s", path, max,
		      max == FWA_ENVELOPE_MAX ? " (rule: dsse.size)" : "");
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	fclose(f);
	return rc;
}

/* The first line of a passphrase file, without its line ending; never empty. */
static int read_passphrase(struct cli *c, const char *path, char **out)
{
	char *buf;
	size_t len;
	int rc = read_file(c, path, PASSPHRASE_MAX, &buf, &len);

	if (rc)
		return rc;
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0') {
		OPENSSL_cleanse(buf, len);
		free(buf);
		return failf(c, "%s: empty passphrase", path);
	}
	*out = buf;
	return 0;
}

static void free_passphrase(char *p)
{
	if (p) {
		OPENSSL_cleanse(p, strlen(p));
		free(p);
	}
}

/* SHA-256 and size of a file, streamed. */
static int hash_file(struct cli *c, const char *path, uint64_t *size, uint8_t sha[32])
{
	const struct fwa_crypto *cr = fwa_crypto_openssl();
	struct fwa_sha256 h;
	FILE *f = fopen(path, "rb");
	struct stat st;
	uint8_t *buf = NULL;
	uint64_t total = 0;
	size_t n;
	int rc = EXIT_FAIL;

	if (!f)
		return failf(c, "%s: %s", path, strerror(errno));
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		failf(c, "%s: not a regular file", path);
		goto out;
	}
	buf = malloc(IMAGE_CHUNK);
	if (!buf) {
		failf(c, "%s: out of memory", path);
		goto out;
	}
	cr->sha256_init(&h);
	while ((n = fread(buf, 1, IMAGE_CHUNK, f)) > 0) {
		cr->sha256_update(&h, buf, n);
		total += n;
	}
	cr->sha256_final(&h, sha);
	if (ferror(f)) {
		failf(c, "%s: read error", path);
		goto out;
	}
	*size = total;
	rc = 0;
out:
	free(buf);
	fclose(f);
	return rc;
}

static int load_private_keys(struct cli *c, char **paths, unsigned n, const char *pass,
                             EVP_PKEY **keys)
{
	for (unsigned i = 0; i < n; i++) {
		const char *why;
		if (ota_key_load_private(paths[i], pass, &keys[i], &why))
			return failf(c, "%s: %s", paths[i], why);
	}
	return 0;
}

static void free_keys(EVP_PKEY **keys, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		EVP_PKEY_free(keys[i]);
}

static int load_public_keys(struct cli *c, char **paths, unsigned n,
                            uint8_t spki[][FWA_SPKI_P256_LEN])
{
	for (unsigned i = 0; i < n; i++) {
		const char *why;
		if (ota_key_load_public(paths[i], spki[i], &why))
			return failf(c, "%s: %s", paths[i], why);
	}
	return 0;
}

static int add_path(struct cli *c, char **list, unsigned *n, unsigned max, const char *opt,
                    char *val)
{
	if (*n >= max)
		return usagef(c, "at most %u %s options", max, opt);
	list[(*n)++] = val;
	return 0;
}

/* getopt_long with state reset, so that the library can run several commands in a process. */
static int next_opt(int argc, char **argv, const struct option *opts)
{
	return getopt_long(argc, argv, "", opts, NULL);
}

static void opt_reset(void)
{
	optind = 0;
	opterr = 0;
}

static int bad_opt(struct cli *c, char **argv)
{
	return usagef(c, "unknown option or missing value: %s", argv[optind - 1]);
}

/* ---- keygen ---- */

static const char keygen_help[] =
    "usage: ota-sign keygen --out NAME [--passphrase-file FILE]\n"
    "\n"
    "Generate an ECDSA P-256 key pair: NAME.key (PKCS#8 PEM, mode 0600, encrypted with\n"
    "AES-256 when --passphrase-file is given) and NAME.pub (PEM public key). Prints the key\n"
    "id (hex SHA-256 of the DER SubjectPublicKeyInfo). Never overwrites either file.\n";

static int cmd_keygen(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"out", required_argument, NULL, 'o'},
	    {"passphrase-file", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *name = NULL, *passfile = NULL, *why;
	char *pass = NULL, *keypath = NULL, *pubpath = NULL, *kpem = NULL, *ppem = NULL;
	size_t klen = 0, plen = 0;
	EVP_PKEY *pkey = NULL;
	uint8_t spki[FWA_SPKI_P256_LEN];
	char id[FWA_KEYID_HEX_LEN + 1];
	struct stat st;
	int o, rc = EXIT_FAIL;

	opt_reset();
	while ((o = next_opt(argc, argv, opts)) != -1) {
		switch (o) {
		case 'o':
			name = optarg;
			break;
		case 'p':
			passfile = optarg;
			break;
		case 'h':
			fputs(keygen_help, c->out);
			return 0;
		default:
			return bad_opt(c, argv);
		}
	}
	if (optind != argc)
		return usagef(c, "unexpected argument: %s", argv[optind]);
	if (!name || !*name)
		return usagef(c, "--out NAME is required");
	if (asprintf(&keypath, "%s.key", name) < 0 || asprintf(&pubpath, "%s.pub", name) < 0) {
		keypath = pubpath = NULL;
		failf(c, "out of memory");
		goto out;
	}
	/* Refuse before generating anything, so that no half pair is ever created. */
	if (lstat(keypath, &st) == 0 || lstat(pubpath, &st) == 0) {
		failf(c, "%s.key or %s.pub exists; refusing to overwrite", name, name);
		goto out;
	}
	if (passfile && (rc = read_passphrase(c, passfile, &pass)) != 0)
		goto out;
	rc = EXIT_FAIL;
	if (ota_key_generate(&pkey) || ota_key_spki(pkey, spki, &why) ||
	    ota_key_private_pem(pkey, pass, &kpem, &klen) ||
	    ota_key_public_pem(pkey, &ppem, &plen)) {
		failf(c, "key generation failed");
		goto out;
	}
	if (ota_signer_write_file(keypath, kpem, klen, 0600, &why)) {
		failf(c, "%s: %s", keypath, why);
		goto out;
	}
	if (ota_signer_write_file(pubpath, ppem, plen, 0644, &why)) {
		unlink(keypath);
		failf(c, "%s: %s", pubpath, why);
		goto out;
	}
	ota_key_id(fwa_crypto_openssl(), spki, id);
	fprintf(c->out, "%s\n", id);
	rc = 0;
out:
	if (kpem) {
		OPENSSL_cleanse(kpem, klen);
		OPENSSL_free(kpem);
	}
	OPENSSL_free(ppem);
	EVP_PKEY_free(pkey);
	free_passphrase(pass);
	free(keypath);
	free(pubpath);
	return rc;
}

/* ---- root init / root rotate ---- */

static const char root_init_help[] =
    "usage: ota-sign root init --root-key PUB... --root-threshold K\n"
    "                          --release-key PUB... --release-threshold K\n"
    "                          --sign KEY... [--expires TIME | --expires-in DAYS]\n"
    "                          [--time-key PUB...] [--server-ca CERT...]\n"
    "                          [--passphrase-file FILE] [--out-dir DIR]\n"
    "\n"
    "--time-key lists the online key(s) whose time tokens devices accept (role time, threshold\n"
    "1); --server-ca pins a CA certificate (PEM) whose chains devices accept from the server.\n"
    "Write DIR/root-1.json (default DIR: .): root metadata version 1 listing the root keys and\n"
    "release keys (PEM public keys, each option repeatable, up to 8 per role) with their\n"
    "thresholds, expiring at TIME (YYYY-MM-DDTHH:MM:SSZ) or after DAYS (default 365), signed\n"
    "by the --sign private keys, which must meet the root threshold.\n";

static const char root_rotate_help[] =
    "usage: ota-sign root rotate --previous ROOT --sign KEY... [--root-key PUB...]\n"
    "                            [--root-threshold K] [--release-key PUB...]\n"
    "                            [--release-threshold K] [--expires TIME | --expires-in DAYS]\n"
    "                            [--time-key PUB... | --no-time-key]\n"
    "                            [--server-ca CERT... | --no-server-ca]\n"
    "                            [--passphrase-file FILE] [--out-dir DIR]\n"
    "\n"
    "Write root-(N+1).json next to ROOT (root-N.json) or in DIR. Roles not given keep the\n"
    "previous root's keys and threshold; giving --release-key replaces the whole release set\n"
    "(this is how a release key is revoked); so does --time-key for the time role, and\n"
    "--server-ca for the server CA set (--no-time-key and --no-server-ca drop them). The new root "
    "must be signed by a threshold of the\n"
    "previous root keys and by a threshold of its own root keys: pass both sets with --sign.\n";

struct root_opts {
	char *root_keys[FWA_MAX_ROLE_KEYS];
	char *release_keys[FWA_MAX_ROLE_KEYS];
	char *sign[FWA_MAX_SIGS];
	char *time_keys[FWA_MAX_ROLE_KEYS];
	char *server_cas[FWA_MAX_SERVER_CAS];
	unsigned nroot, nrelease, nsign, ntime, nserver_cas;
	bool no_time, no_server_ca;
	const char *root_threshold, *release_threshold, *expires, *expires_in;
	const char *passfile, *out_dir, *previous;
};

static int parse_root_opts(struct cli *c, int argc, char **argv, struct root_opts *ro,
                           const char *help, bool rotate)
{
	static const struct option opts[] = {
	    {"root-key", required_argument, NULL, 'r'},
	    {"root-threshold", required_argument, NULL, 'R'},
	    {"release-key", required_argument, NULL, 'l'},
	    {"release-threshold", required_argument, NULL, 'L'},
	    {"sign", required_argument, NULL, 's'},
	    {"expires", required_argument, NULL, 'e'},
	    {"expires-in", required_argument, NULL, 'E'},
	    {"passphrase-file", required_argument, NULL, 'p'},
	    {"out-dir", required_argument, NULL, 'd'},
	    {"previous", required_argument, NULL, 'P'},
	    {"time-key", required_argument, NULL, 't'},
	    {"server-ca", required_argument, NULL, 'c'},
	    {"no-time-key", no_argument, NULL, 'T'},
	    {"no-server-ca", no_argument, NULL, 'C'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int o, rc;

	opt_reset();
	while ((o = next_opt(argc, argv, opts)) != -1) {
		rc = 0;
		switch (o) {
		case 'r':
			rc = add_path(c, ro->root_keys, &ro->nroot, FWA_MAX_ROLE_KEYS, "--root-key",
			              optarg);
			break;
		case 'l':
			rc = add_path(c, ro->release_keys, &ro->nrelease, FWA_MAX_ROLE_KEYS,
			              "--release-key", optarg);
			break;
		case 's':
			rc = add_path(c, ro->sign, &ro->nsign, FWA_MAX_SIGS, "--sign", optarg);
			break;
		case 'R':
			ro->root_threshold = optarg;
			break;
		case 'L':
			ro->release_threshold = optarg;
			break;
		case 'e':
			ro->expires = optarg;
			break;
		case 'E':
			ro->expires_in = optarg;
			break;
		case 'p':
			ro->passfile = optarg;
			break;
		case 'd':
			ro->out_dir = optarg;
			break;
		case 'P':
			if (!rotate)
				return bad_opt(c, argv);
			ro->previous = optarg;
			break;
		case 't':
			rc = add_path(c, ro->time_keys, &ro->ntime, FWA_MAX_ROLE_KEYS, "--time-key",
			              optarg);
			break;
		case 'c':
			rc = add_path(c, ro->server_cas, &ro->nserver_cas, FWA_MAX_SERVER_CAS,
			              "--server-ca", optarg);
			break;
		case 'T':
		case 'C':
			if (!rotate)
				return bad_opt(c, argv);
			if (o == 'T')
				ro->no_time = true;
			else
				ro->no_server_ca = true;
			break;
		case 'h':
			fputs(help, c->out);
			return -1;
		default:
			return bad_opt(c, argv);
		}
		if (rc)
			return rc;
	}
	if (optind != argc)
		return usagef(c, "unexpected argument: %s", argv[optind]);
	if (rotate && !ro->previous)
		return usagef(c, "--previous ROOT is required");
	if (!rotate && (ro->nroot == 0 || ro->nrelease == 0))
		return usagef(c, "at least one --root-key and one --release-key are required");
	if (!rotate && (!ro->root_threshold || !ro->release_threshold))
		return usagef(c, "--root-threshold and --release-threshold are required");
	if (ro->nsign == 0)
		return usagef(c, "at least one --sign KEY is required");
	if (ro->expires && ro->expires_in)
		return usagef(c, "give --expires or --expires-in, not both");
	if ((ro->no_time && ro->ntime) || (ro->no_server_ca && ro->nserver_cas))
		return usagef(
		    c, "--no-time-key and --no-server-ca exclude --time-key and --server-ca");
	return 0;
}

/* SHA-256 of the SubjectPublicKeyInfo of each PEM CA certificate: the root's server CA pins. */
static int load_server_cas(struct cli *c, char **paths, unsigned n, uint8_t pins[][32])
{
	for (unsigned i = 0; i < n; i++) {
		FILE *f = fopen(paths[i], "r");
		X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
		unsigned char *der = NULL;
		int len = x ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der) : -1;

		if (f)
			fclose(f);
		X509_free(x);
		if (len <= 0) {
			OPENSSL_free(der);
			return failf(c, "%s: not a PEM certificate (rule: root.server_cas)",
			             paths[i]);
		}
		fwa_sha256(fwa_crypto_openssl(), der, (size_t)len, pins[i]);
		OPENSSL_free(der);
	}
	return 0;
}

/* The time role and server CA pins: new when given, dropped when asked, else the previous. */
static int root_extras(struct cli *c, const struct root_opts *ro, const struct fwa_root *prev,
                       struct ota_root_spec *spec)
{
	int rc;

	if (ro->ntime) {
		spec->ntime = ro->ntime;
		if ((rc = load_public_keys(c, (char **)ro->time_keys, ro->ntime, spec->time_spki)))
			return rc;
	} else if (prev && !ro->no_time) {
		spec->ntime = prev->time.nkeys;
		for (unsigned i = 0; i < prev->time.nkeys; i++)
			memcpy(spec->time_spki[i], prev->keys[prev->time.key[i]].spki,
			       FWA_SPKI_P256_LEN);
	}
	/* One job per key: said here, since the payload would list such a key twice. */
	for (unsigned i = 0; i < spec->ntime; i++)
		for (unsigned k = 0; k < spec->nroot + spec->nrelease; k++)
			if (!memcmp(spec->time_spki[i],
			            k < spec->nroot ? spec->root_spki[k]
			                            : spec->release_spki[k - spec->nroot],
			            FWA_SPKI_P256_LEN))
				return failf(c, "a time key is also a root or release key (rule: "
				                "root.roles.separation)");
	if (ro->nserver_cas) {
		spec->nserver_cas = ro->nserver_cas;
		return load_server_cas(c, (char **)ro->server_cas, ro->nserver_cas,
		                       spec->server_ca);
	}
	if (prev && !ro->no_server_ca) {
		spec->nserver_cas = prev->nserver_cas;
		memcpy(spec->server_ca, prev->server_ca, sizeof(spec->server_ca));
	}
	return 0;
}

static int threshold_arg(struct cli *c, const char *s, unsigned nkeys, const char *what,
                         unsigned *out)
{
	uint64_t v;

	if (!parse_uint(s, FWA_MAX_ROLE_KEYS, &v) || v == 0 || v > nkeys)
		return usagef(c,
		              "%s must be an integer from 1 to the number of keys (%u), got '%s'",
		              what, nkeys, s);
	*out = (unsigned)v;
	return 0;
}

static int root_write(struct cli *c, struct root_opts *ro, struct ota_root_spec *spec,
                      const struct fwa_root *prev, const char *default_dir)
{
	const struct fwa_crypto *cr = fwa_crypto_openssl();
	EVP_PKEY *keys[FWA_MAX_SIGS] = {0};
	char *pass = NULL, *payload = NULL, *env = NULL, *path = NULL;
	struct fwa_verify_scratch *s = NULL;
	struct fwa_root *got = NULL;
	size_t plen, elen;
	const char *why;
	int64_t t = now();
	int rc = EXIT_FAIL;

	if (ro->expires) {
		if (!parse_time(ro->expires, &spec->expires)) {
			rc = usagef(c, "--expires must be YYYY-MM-DDTHH:MM:SSZ, got '%s'",
			            ro->expires);
			goto out;
		}
	} else {
		uint64_t days = 365;
		if (ro->expires_in && (!parse_uint(ro->expires_in, 36500, &days) || days == 0)) {
			rc = usagef(c, "--expires-in must be a number of days from 1 to 36500");
			goto out;
		}
		spec->expires = t + (int64_t)days * 86400;
	}
	if (spec->expires <= t) {
		failf(c, "the expiry time is in the past (rule: root.expires)");
		goto out;
	}
	if (ro->passfile && (rc = read_passphrase(c, ro->passfile, &pass)) != 0)
		goto out;
	rc = EXIT_FAIL;
	if ((rc = load_private_keys(c, ro->sign, ro->nsign, pass, keys)) != 0)
		goto out;
	rc = EXIT_FAIL;
	payload = malloc(FWA_PAYLOAD_MAX);
	env = malloc(FWA_ENVELOPE_MAX + 1);
	s = malloc(sizeof(*s));
	got = malloc(sizeof(*got));
	if (!payload || !env || !s || !got) {
		failf(c, "out of memory");
		goto out;
	}
	if (ota_signer_root_payload(spec, payload, FWA_PAYLOAD_MAX, &plen, &why)) {
		failf(c, "%s", why);
		goto out;
	}
	/* The verifier is the judge of what we are about to sign (bounds, duplicates, roles). */
	if (fwa_root_decode(cr, (const uint8_t *)payload, plen, got, s, &why)) {
		failf(c, "%s", why);
		goto out;
	}
	if (ota_signer_envelope(FWA_PAYLOAD_ROOT, payload, plen, keys, ro->nsign, env,
	                        FWA_ENVELOPE_MAX + 1, &elen, &why)) {
		failf(c, "%s", why);
		goto out;
	}
	if (prev ? fwa_root_update(cr, prev, env, elen, got, s, &why)
	         : fwa_root_load(cr, env, elen, got, s, &why)) {
		failf(c, "the signed root does not verify: %s", why);
		goto out;
	}
	if (asprintf(&path, "%s/root-%u.json", ro->out_dir ? ro->out_dir : default_dir,
	             spec->version) < 0) {
		path = NULL;
		failf(c, "out of memory");
		goto out;
	}
	if (ota_signer_write_file(path, env, elen, 0644, &why)) {
		failf(c, "%s: %s", path, why);
		goto out;
	}
	char fp[65], exp[21];
	fwa_hex(got->digest, 32, fp);
	fwa_time_format(got->expires, exp);
	fprintf(c->out, "wrote %s: root version %u, expires %s, fingerprint %s\n", path,
	        got->version, exp, fp);
	rc = 0;
out:
	free_keys(keys, ro->nsign);
	free_passphrase(pass);
	free(payload);
	free(env);
	free(s);
	free(got);
	free(path);
	return rc;
}

static int cmd_root_init(struct cli *c, int argc, char **argv)
{
	struct root_opts ro = {0};
	struct ota_root_spec spec = {.version = 1};
	int rc = parse_root_opts(c, argc, argv, &ro, root_init_help, false);

	if (rc)
		return rc < 0 ? 0 : rc;
	spec.nroot = ro.nroot;
	spec.nrelease = ro.nrelease;
	if ((rc = load_public_keys(c, ro.root_keys, ro.nroot, spec.root_spki)) != 0 ||
	    (rc = load_public_keys(c, ro.release_keys, ro.nrelease, spec.release_spki)) != 0 ||
	    (rc = threshold_arg(c, ro.root_threshold, ro.nroot, "--root-threshold",
	                        &spec.root_threshold)) != 0 ||
	    (rc = threshold_arg(c, ro.release_threshold, ro.nrelease, "--release-threshold",
	                        &spec.release_threshold)) != 0 ||
	    (rc = root_extras(c, &ro, NULL, &spec)) != 0)
		return rc;
	return root_write(c, &ro, &spec, NULL, ".");
}

static int load_root_file(struct cli *c, const char *path, const struct fwa_root *trusted,
                          struct fwa_root *out, struct fwa_verify_scratch *s);

static int cmd_root_rotate(struct cli *c, int argc, char **argv)
{
	struct root_opts ro = {0};
	struct ota_root_spec spec = {0};
	struct fwa_root *prev = NULL;
	struct fwa_verify_scratch *s = NULL;
	char *dcopy = NULL;
	int rc = parse_root_opts(c, argc, argv, &ro, root_rotate_help, true);

	if (rc)
		return rc < 0 ? 0 : rc;
	prev = malloc(sizeof(*prev));
	s = malloc(sizeof(*s));
	dcopy = strdup(ro.previous);
	if (!prev || !s || !dcopy) {
		rc = failf(c, "out of memory");
		goto out;
	}
	if ((rc = load_root_file(c, ro.previous, NULL, prev, s)) != 0)
		goto out;
	if (prev->version == UINT32_MAX) {
		rc = failf(c, "%s: root version cannot grow further", ro.previous);
		goto out;
	}
	spec.version = prev->version + 1;
	/* Each role: new keys when given, else the previous root's. */
	if (ro.nroot) {
		spec.nroot = ro.nroot;
		if ((rc = load_public_keys(c, ro.root_keys, ro.nroot, spec.root_spki)) != 0)
			goto out;
	} else {
		spec.nroot = prev->root.nkeys;
		for (unsigned i = 0; i < prev->root.nkeys; i++)
			memcpy(spec.root_spki[i], prev->keys[prev->root.key[i]].spki,
			       FWA_SPKI_P256_LEN);
	}
	if (ro.nrelease) {
		spec.nrelease = ro.nrelease;
		if ((rc = load_public_keys(c, ro.release_keys, ro.nrelease, spec.release_spki)) !=
		    0)
			goto out;
	} else {
		spec.nrelease = prev->release.nkeys;
		for (unsigned i = 0; i < prev->release.nkeys; i++)
			memcpy(spec.release_spki[i], prev->keys[prev->release.key[i]].spki,
			       FWA_SPKI_P256_LEN);
	}
	if (ro.root_threshold) {
		if ((rc = threshold_arg(c, ro.root_threshold, spec.nroot, "--root-threshold",
		                        &spec.root_threshold)) != 0)
			goto out;
	} else if ((spec.root_threshold = prev->root.threshold) > spec.nroot) {
		rc = usagef(
		    c,
		    "the previous root threshold exceeds the new root keys; give --root-threshold");
		goto out;
	}
	if (ro.release_threshold) {
		if ((rc = threshold_arg(c, ro.release_threshold, spec.nrelease,
		                        "--release-threshold", &spec.release_threshold)) != 0)
			goto out;
	} else if ((spec.release_threshold = prev->release.threshold) > spec.nrelease) {
		rc = usagef(c, "the previous release threshold exceeds the new release keys; give "
		               "--release-threshold");
		goto out;
	}
	if ((rc = root_extras(c, &ro, prev, &spec)) != 0)
		goto out;
	rc = root_write(c, &ro, &spec, prev, dirname(dcopy));
out:
	free(prev);
	free(s);
	free(dcopy);
	return rc;
}

/*
 * Load the private keys (with the passphrase from `passfile`, if any), make `self` a root of
 * exactly those keys with a release threshold of all of them, so that every signature must
 * verify, and sign `payload` as a DSSE envelope of `type` into `env` (FWA_ENVELOPE_MAX + 1
 * bytes). `keys` is the caller's to free with free_keys(). Prints the failure.
 */
static int sign_with_keys(struct cli *c, const char *type, const char *payload, size_t plen,
                          const char *passfile, char **keypaths, unsigned nkeys, EVP_PKEY **keys,
                          struct fwa_root *self, char *env, size_t *elen)
{
	const struct fwa_crypto *cr = fwa_crypto_openssl();
	const char *why = NULL;
	char *pass = NULL;
	int rc;

	if (passfile && (rc = read_passphrase(c, passfile, &pass)) != 0)
		return rc;
	rc = load_private_keys(c, keypaths, nkeys, pass, keys);
	free_passphrase(pass);
	if (rc != 0)
		return rc;
	for (unsigned i = 0; i < nkeys; i++) {
		if (ota_key_spki(keys[i], self->keys[i].spki, &why)) {
			failf(c, "%s: %s", keypaths[i], why);
			return EXIT_FAIL;
		}
		ota_key_id(cr, self->keys[i].spki, self->keys[i].id);
		for (unsigned k = 0; k < i; k++)
			if (strcmp(self->keys[k].id, self->keys[i].id) == 0) {
				failf(c, "%s: the same key is given twice", keypaths[i]);
				return EXIT_FAIL;
			}
		self->release.key[i] = (uint8_t)i;
	}
	self->nkeys = self->release.nkeys = self->release.threshold = (uint8_t)nkeys;
	if (ota_signer_envelope(type, payload, plen, keys, nkeys, env, FWA_ENVELOPE_MAX + 1, elen,
	                        &why)) {
		failf(c, "%s", why);
		return EXIT_FAIL;
	}
	return 0;
}

/* ---- release ---- */

static const char release_help[] =
    "usage: ota-sign release --image FILE --name NAME --version SEMVER --security-version N\n"
    "                        --hw-variant HW... --key KEY... [--format FMT] [--created TIME]\n"
    "                        [--root ROOT] [--passphrase-file FILE] [--out FILE]\n"
    "\n"
    "Write a release manifest for FILE (size and SHA-256), signed by each --key (release keys;\n"
    "the threshold is the root's). FMT defaults to bin, TIME to now, the output to\n"
    "NAME-SEMVER.manifest.json. The signed output is verified before it is written; with\n"
    "--root, also against that root's release keys and threshold.\n";

static int cmd_release(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"image", required_argument, NULL, 'i'},
	    {"name", required_argument, NULL, 'n'},
	    {"version", required_argument, NULL, 'v'},
	    {"security-version", required_argument, NULL, 's'},
	    {"hw-variant", required_argument, NULL, 'w'},
	    {"key", required_argument, NULL, 'k'},
	    {"format", required_argument, NULL, 'f'},
	    {"created", required_argument, NULL, 'c'},
	    {"root", required_argument, NULL, 'r'},
	    {"passphrase-file", required_argument, NULL, 'p'},
	    {"out", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const struct fwa_crypto *cr = fwa_crypto_openssl();
	struct ota_manifest_spec m = {.format = "bin"};
	const char *image = NULL, *secv = NULL, *created = NULL, *rootfile = NULL;
	const char *passfile = NULL, *outpath = NULL, *why;
	char *keypaths[FWA_MAX_ROLE_KEYS], *payload = NULL, *env = NULL;
	char *path = NULL;
	unsigned nkeys = 0;
	EVP_PKEY *keys[FWA_MAX_ROLE_KEYS] = {0};
	struct fwa_verify_scratch *s = NULL;
	struct fwa_root *self = NULL, *root = NULL;
	struct fwa_manifest *got = NULL;
	size_t plen, elen;
	uint64_t v;
	int o, rc;

	opt_reset();
	while ((o = next_opt(argc, argv, opts)) != -1) {
		rc = 0;
		switch (o) {
		case 'i':
			image = optarg;
			break;
		case 'n':
			m.name = optarg;
			break;
		case 'v':
			m.version = optarg;
			break;
		case 's':
			secv = optarg;
			break;
		case 'w':
			if (m.nhw >= FWA_MAX_HW)
				return usagef(c, "at most %d --hw-variant options", FWA_MAX_HW);
			m.hw[m.nhw++] = optarg;
			break;
		case 'k':
			rc = add_path(c, keypaths, &nkeys, FWA_MAX_ROLE_KEYS, "--key", optarg);
			break;
		case 'f':
			m.format = optarg;
			break;
		case 'c':
			created = optarg;
			break;
		case 'r':
			rootfile = optarg;
			break;
		case 'p':
			passfile = optarg;
			break;
		case 'o':
			outpath = optarg;
			break;
		case 'h':
			fputs(release_help, c->out);
			return 0;
		default:
			return bad_opt(c, argv);
		}
		if (rc)
			return rc;
	}
	if (optind != argc)
		return usagef(c, "unexpected argument: %s", argv[optind]);
	if (!image || !m.name || !m.version || !secv || m.nhw == 0 || nkeys == 0)
		return usagef(c, "--image, --name, --version, --security-version, --hw-variant and "
		                 "--key are required");
	if (!parse_uint(secv, UINT32_MAX, &v))
		return usagef(
		    c, "--security-version must be an integer from 0 to 4294967295, got '%s'",
		    secv);
	m.security_version = (uint32_t)v;
	m.created = now();
	if (created && !parse_time(created, &m.created))
		return usagef(c, "--created must be YYYY-MM-DDTHH:MM:SSZ, got '%s'", created);

	rc = EXIT_FAIL;
	payload = malloc(FWA_PAYLOAD_MAX);
	env = malloc(FWA_ENVELOPE_MAX + 1);
	s = malloc(sizeof(*s));
	self = calloc(1, sizeof(*self));
	root = malloc(sizeof(*root));
	got = malloc(sizeof(*got));
	if (!payload || !env || !s || !self || !root || !got) {
		failf(c, "out of memory");
		goto out;
	}
	if ((rc = hash_file(c, image, &m.image_size, m.image_sha256)) != 0)
		goto out;
	rc = EXIT_FAIL;
	if (m.image_size == 0) {
		failf(c, "%s: image is empty (rule: manifest.image.size)", image);
		goto out;
	}
	if (rootfile && (rc = load_root_file(c, rootfile, NULL, root, s)) != 0)
		goto out;
	rc = EXIT_FAIL;
	if (ota_signer_manifest_payload(&m, payload, FWA_PAYLOAD_MAX, &plen, &why) ||
	    fwa_manifest_decode(cr, (const uint8_t *)payload, plen, got, s, &why)) {
		failf(c, "%s", why);
		goto out;
	}
	if ((rc = sign_with_keys(c, FWA_PAYLOAD_MANIFEST, payload, plen, passfile, keypaths, nkeys,
	                         keys, self, env, &elen)) != 0)
		goto out;
	rc = EXIT_FAIL;
	if (fwa_manifest_verify(cr, self, env, elen, got, s, &why)) {
		failf(c, "the signed manifest does not verify: %s", why);
		goto out;
	}
	if (rootfile && fwa_manifest_verify(cr, root, env, elen, got, s, &why)) {
		failf(c, "%s: %s", rootfile, why);
		goto out;
	}
	if (outpath)
		path = strdup(outpath);
	else if (asprintf(&path, "%s-%s.manifest.json", m.name, m.version) < 0)
		path = NULL;
	if (!path) {
		failf(c, "out of memory");
		goto out;
	}
	if (ota_signer_write_file(path, env, elen, 0644, &why)) {
		failf(c, "%s: %s", path, why);
		goto out;
	}
	char hex[65];
	fwa_hex(got->image_sha256, 32, hex);
	fprintf(c->out,
	        "wrote %s: %s %s, security_version %u, %llu bytes, sha256 %s, %u signatures\n",
	        path, got->name, got->version, got->security_version,
	        (unsigned long long)got->image_size, hex, nkeys);
	rc = 0;
out:
	free_keys(keys, nkeys);
	free(payload);
	free(env);
	free(s);
	free(self);
	free(root);
	free(got);
	free(path);
	return rc;
}

/* ---- delta ---- */

/* The decoder's view of memory: the base as the active slot, out as the inactive one. */
struct mem_slots {
	const uint8_t *base;
	size_t blen;
	uint8_t *out;
	size_t olen;
};

static enum fwa_err mem_geometry(void *ctx, struct fwa_flash_geometry *g)
{
	struct mem_slots *m = ctx;

	g->slot_size = (uint32_t)m->olen;
	g->erase_size = FWA_DELTA_SECTOR;
	g->prog_size = FWA_DELTA_SECTOR;
	g->state_size = 0;
	return FWA_OK;
}

static enum fwa_err mem_erase(void *ctx, uint32_t off, uint32_t len)
{
	struct mem_slots *m = ctx;

	if (off > m->olen || len > m->olen - off)
		return FWA_ERR_FLASH;
	memset(m->out + off, 0xff, len);
	return FWA_OK;
}

static enum fwa_err mem_program(void *ctx, uint32_t off, const void *d, uint32_t len)
{
	struct mem_slots *m = ctx;

	if (off > m->olen || len > m->olen - off)
		return FWA_ERR_FLASH;
	memcpy(m->out + off, d, len);
	return FWA_OK;
}

static enum fwa_err mem_active_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
	struct mem_slots *m = ctx;

	if (off > m->blen || len > m->blen - off)
		return FWA_ERR_FLASH;
	memcpy(buf, m->base + off, len);
	return FWA_OK;
}

/* Apply the delta with the agent's own decoder and compare: never sign a delta that fails. */
static int delta_check(struct cli *c, const char *base, size_t blen, const char *tgt, size_t tlen,
                       const uint8_t *delta, size_t dlen, const struct ota_delta_spec *spec)
{
	struct mem_slots m = {(const uint8_t *)base, blen, NULL, 0};
	struct fwa_port port = {0};
	struct fwa_delta_params p = {0};
	struct fwa_delta *d = malloc(sizeof(*d));
	uint8_t *page = malloc(FWA_DELTA_SECTOR);
	size_t used;
	int rc = EXIT_FAIL;

	m.olen = (tlen + FWA_DELTA_SECTOR - 1) / FWA_DELTA_SECTOR * FWA_DELTA_SECTOR;
	m.out = malloc(m.olen);
	if (!d || !page || !m.out) {
		failf(c, "out of memory");
		goto out;
	}
	port.ctx = &m;
	port.crypto = fwa_crypto_openssl();
	port.flash_geometry = mem_geometry;
	port.slot_erase = mem_erase;
	port.slot_program = mem_program;
	port.active_read = mem_active_read;
	p.base_size = spec->base_size;
	p.target_size = spec->target_size;
	p.delta_size = spec->delta_size;
	memcpy(p.head_sha256, spec->delta_sha256, 32);
	if (fwa_delta_begin(d, &port, &p, NULL, page) == FWA_OK)
		for (size_t at = 0; at < dlen && !d->failed; at += used)
			if (fwa_delta_feed(d, delta + at, dlen - at, &used) != FWA_OK)
				break;
	if (!fwa_delta_done(d) || memcmp(m.out, tgt, tlen) != 0) {
		failf(c, "the delta does not decode to the target (%s); nothing written", d->why);
		goto out;
	}
	rc = 0;
out:
	free(d);
	free(page);
	free(m.out);
	return rc;
}

static const char delta_help[] =
    "usage: ota-sign delta --base OLD --target NEW --manifest M --key KEY... --out DELTA\n"
    "                      [--meta FILE] [--root ROOT] [--window-bits W] [--length-bits L]\n"
    "                      [--created TIME] [--passphrase-file FILE]\n"
    "\n"
    "Write a delta that turns the image OLD into NEW (format fwad1, docs/formats.md) and its\n"
    "metadata, signed by each --key (release keys): the release of manifest M (whose image must\n"
    "be NEW), the base's and the target's size and SHA-256, the delta's size and the head of its\n"
    "hash chain. The metadata goes to FILE, by default DELTA.json. The delta is decoded again\n"
    "and compared with NEW, and the metadata verified, before anything is written; with --root,\n"
    "also against that root's release keys and threshold. W (4-12, default 10) and L (2-W,\n"
    "default 6) are the LZSS window and length bits.\n";

static int cmd_delta(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"base", required_argument, NULL, 'b'},
	    {"target", required_argument, NULL, 't'},
	    {"manifest", required_argument, NULL, 'm'},
	    {"key", required_argument, NULL, 'k'},
	    {"out", required_argument, NULL, 'o'},
	    {"meta", required_argument, NULL, 'M'},
	    {"root", required_argument, NULL, 'r'},
	    {"window-bits", required_argument, NULL, 'W'},
	    {"length-bits", required_argument, NULL, 'L'},
	    {"created", required_argument, NULL, 'c'},
	    {"passphrase-file", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const struct fwa_crypto *cr = fwa_crypto_openssl();
	const char *basep = NULL, *tgtp = NULL, *manp = NULL, *outp = NULL, *metap = NULL;
	const char *rootfile = NULL, *created = NULL, *passfile = NULL, *why = NULL;
	char *keypaths[FWA_MAX_ROLE_KEYS], *base = NULL, *tgt = NULL, *man = NULL;
	char *payload = NULL, *env = NULL, *metapath = NULL;
	uint8_t *delta = NULL;
	unsigned nkeys = 0;
	EVP_PKEY *keys[FWA_MAX_ROLE_KEYS] = {0};
	struct fwa_verify_scratch *s = NULL;
	struct fwa_root *self = NULL, *root = NULL;
	struct fwa_manifest *m = NULL;
	struct fwa_delta_meta *got = NULL;
	struct ota_delta_spec spec = {0};
	struct ota_delta_opts dopts = {0};
	struct ota_delta_info info;
	size_t blen, tlen, mlen, dlen, plen, elen;
	uint64_t v;
	int o, rc;

	opt_reset();
	while ((o = next_opt(argc, argv, opts)) != -1) {
		rc = 0;
		switch (o) {
		case 'b':
			basep = optarg;
			break;
		case 't':
			tgtp = optarg;
			break;
		case 'm':
			manp = optarg;
			break;
		case 'k':
			rc = add_path(c, keypaths, &nkeys, FWA_MAX_ROLE_KEYS, "--key", optarg);
			break;
		case 'o':
			outp = optarg;
			break;
		case 'M':
			metap = optarg;
			break;
		case 'r':
			rootfile = optarg;
			break;
		case 'W':
		case 'L':
			if (!parse_uint(optarg, FWA_DELTA_WINDOW_MAX, &v) || v < 2)
				return usagef(c, "--%s must be an integer from 2 to 12, got '%s'",
				              o == 'W' ? "window-bits" : "length-bits", optarg);
			*(o == 'W' ? &dopts.wbits : &dopts.lbits) = (unsigned)v;
			break;
		case 'c':
			created = optarg;
			break;
		case 'p':
			passfile = optarg;
			break;
		case 'h':
			fputs(delta_help, c->out);
			return 0;
		default:
			return bad_opt(c, argv);
		}
		if (rc)
			return rc;
	}
	if (optind != argc)
		return usagef(c, "unexpected argument: %s", argv[optind]);
	if (!basep || !tgtp || !manp || !outp || nkeys == 0)
		return usagef(c, "--base, --target, --manifest, --key and --out are required");
	spec.created = now();
	if (created && !parse_time(created, &spec.created))
		return usagef(c, "--created must be YYYY-MM-DDTHH:MM:SSZ, got '%s'", created);
	if (dopts.lbits && dopts.lbits > (dopts.wbits ? dopts.wbits : OTA_DELTA_WBITS))
		return usagef(c, "--length-bits must not exceed the window bits");
	if (dopts.wbits && dopts.wbits < FWA_DELTA_WINDOW_MIN)
		return usagef(c, "--window-bits must be an integer from 4 to 12");

	rc = EXIT_FAIL;
	payload = malloc(FWA_PAYLOAD_MAX);
	env = malloc(FWA_ENVELOPE_MAX + 1);
	s = malloc(sizeof(*s));
	self = calloc(1, sizeof(*self));
	root = malloc(sizeof(*root));
	m = malloc(sizeof(*m));
	got = malloc(sizeof(*got));
	if (!payload || !env || !s || !self || !root || !m || !got) {
		failf(c, "out of memory");
		goto out;
	}
	if ((rc = read_file(c, basep, UINT32_MAX / 16, &base, &blen)) != 0 ||
	    (rc = read_file(c, tgtp, UINT32_MAX / 16, &tgt, &tlen)) != 0 ||
	    (rc = read_file(c, manp, FWA_ENVELOPE_MAX, &man, &mlen)) != 0)
		goto out;
	rc = EXIT_FAIL;
	if (blen == 0 || tlen == 0) {
		failf(c, "%s: image is empty", blen == 0 ? basep : tgtp);
		goto out;
	}
	if (rootfile && (rc = load_root_file(c, rootfile, NULL, root, s)) != 0)
		goto out;
	rc = EXIT_FAIL;
	/* The release this delta produces: its digest and image, from the manifest M. */
	if (fwa_dsse_parse(man, mlen, s, &why) ||
	    (strcmp(s->env.payload_type, FWA_PAYLOAD_MANIFEST) != 0 &&
	     (why = "not a release manifest (rule: dsse.payloadType)")) ||
	    fwa_manifest_decode(cr, s->env.payload, s->env.payload_len, m, s, &why)) {
		failf(c, "%s: %s", manp, why);
		goto out;
	}
	if (rootfile && fwa_manifest_verify(cr, root, man, mlen, m, s, &why)) {
		failf(c, "%s: %s", manp, why);
		goto out;
	}
	memcpy(spec.release_digest, m->digest, 32);
	spec.base_size = (uint32_t)blen;
	spec.target_size = (uint32_t)tlen;
	fwa_sha256(cr, base, blen, spec.base_sha256);
	fwa_sha256(cr, tgt, tlen, spec.target_sha256);
	if (fwa_manifest_check_image(m, tlen, spec.target_sha256, &why)) {
		failf(c, "%s: not the image of %s: %s", tgtp, manp, why);
		goto out;
	}
	if (ota_delta_encode((const uint8_t *)base, blen, (const uint8_t *)tgt, tlen, &dopts,
	                     &delta, &dlen, &info, &why)) {
		failf(c, "%s", why);
		goto out;
	}
	if (dlen > UINT32_MAX) {
		failf(c, "delta over 4 GiB");
		goto out;
	}
	spec.delta_size = (uint32_t)dlen;
	memcpy(spec.delta_sha256, info.head_sha256, 32);
	if ((rc = delta_check(c, base, blen, tgt, tlen, delta, dlen, &spec)) != 0)
		goto out;
	rc = EXIT_FAIL;
	if (ota_signer_delta_payload(&spec, payload, FWA_PAYLOAD_MAX, &plen, &why) ||
	    fwa_delta_meta_decode(cr, (const uint8_t *)payload, plen, got, s, &why)) {
		failf(c, "%s", why);
		goto out;
	}
	if ((rc = sign_with_keys(c, FWA_PAYLOAD_DELTA, payload, plen, passfile, keypaths, nkeys,
	                         keys, self, env, &elen)) != 0)
		goto out;
	rc = EXIT_FAIL;
	if (fwa_delta_meta_verify(cr, self, env, elen, got, s, &why) ||
	    fwa_delta_meta_check(got, m, &why)) {
		failf(c, "the signed delta metadata does not verify: %s", why);
		goto out;
	}
	if (rootfile && fwa_delta_meta_verify(cr, root, env, elen, got, s, &why)) {
		failf(c, "%s: %s", rootfile, why);
		goto out;
	}
	if (metap)
		metapath = strdup(metap);
	else if (asprintf(&metapath, "%s.json", outp) < 0)
		metapath = NULL;
	if (!metapath) {
		failf(c, "out of memory");
		goto out;
	}
	if (ota_signer_write_file(outp, delta, dlen, 0644, &why)) {
		failf(c, "%s: %s", outp, why);
		goto out;
	}
	if (ota_signer_write_file(metapath, env, elen, 0644, &why)) {
		failf(c, "%s: %s", metapath, why);
		unlink(outp); /* all or nothing: a delta without its metadata is of no use */
		goto out;
	}
	fprintf(c->out,
	        "wrote %s: %zu bytes (%.1f %% of the %zu-byte image), %u units; %s: %u "
	        "signatures\n",
	        outp, dlen, 100.0 * (double)dlen / (double)tlen, tlen, info.units, metapath, nkeys);
	rc = 0;
out:
	free_keys(keys, nkeys);
	free(base);
	free(tgt);
	free(man);
	free(delta);
	free(payload);
	free(env);
	free(s);
	free(self);
	free(root);
	free(m);
	free(got);
	free(metapath);
	return rc;
}

/* ---- verify ---- */

static const char verify_help[] =
    "usage: ota-sign verify --trusted-root ROOT [--root NEWER...] [--manifest M]\n"
    "                       [--image FILE] [--hw-variant HW] [--floor N] [--at TIME]\n"
    "\n"
    "Verify the chain from the trusted ROOT through each NEWER root (in order, each exactly\n"
    "one version up), the newest root's expiry at TIME (default now), then the manifest's\n"
    "release signatures, and optionally the image, the hardware variant and the\n"
    "anti-rollback floor. Exit 0 only when everything holds; otherwise one line names the\n"
    "failed rule.\n";

/*
 * Load a root: self-signed (trusted == NULL) or as the rotation of `trusted`. Prints
 * "<cmd>: <path>: <reason>" on failure.
 */
static int load_root_file(struct cli *c, const char *path, const struct fwa_root *trusted,
                          struct fwa_root *out, struct fwa_verify_scratch *s)
{
	const struct fwa_crypto *cr = fwa_crypto_openssl();
	char *buf;
	size_t len;
	const char *why;
	enum fwa_err err;
	int rc = read_file(c, path, FWA_ENVELOPE_MAX, &buf, &len);

	if (rc)
		return rc;
	err = trusted ? fwa_root_update(cr, trusted, buf, len, out, s, &why)
	              : fwa_root_load(cr, buf, len, out, s, &why);
	if (err == FWA_ERR_ROOT_VERSION)
		rc = failf(c, "%s: root version must be %u, got %u (rule: root.version)", path,
		           trusted->version + 1, out->version);
	else if (err)
		rc = failf(c, "%s: %s", path, why);
	free(buf);
	return rc;
}

static int cmd_verify(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"trusted-root", required_argument, NULL, 't'},
	    {"root", required_argument, NULL, 'r'},
	    {"manifest", required_argument, NULL, 'm'},
	    {"image", required_argument, NULL, 'i'},
	    {"hw-variant", required_argument, NULL, 'w'},
	    {"floor", required_argument, NULL, 'f'},
	    {"at", required_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	enum { MAX_CHAIN = 64 };
	const struct fwa_crypto *cr = fwa_crypto_openssl();
	const char *trusted = NULL, *manifest = NULL, *image = NULL, *hw = NULL, *floor_s = NULL;
	const char *at_s = NULL, *why, *last;
	char *chain[MAX_CHAIN], *buf = NULL;
	unsigned nchain = 0;
	struct fwa_root *cur = NULL, *next = NULL;
	struct fwa_manifest *m = NULL;
	struct fwa_verify_scratch *s = NULL;
	int64_t at = now();
	uint64_t floor_v = 0;
	size_t len;
	enum fwa_err err;
	int o, rc;

	opt_reset();
	while ((o = next_opt(argc, argv, opts)) != -1) {
		rc = 0;
		switch (o) {
		case 't':
			trusted = optarg;
			break;
		case 'r':
			rc = add_path(c, chain, &nchain, MAX_CHAIN, "--root", optarg);
			break;
		case 'm':
			manifest = optarg;
			break;
		case 'i':
			image = optarg;
			break;
		case 'w':
			hw = optarg;
			break;
		case 'f':
			floor_s = optarg;
			break;
		case 'a':
			at_s = optarg;
			break;
		case 'h':
			fputs(verify_help, c->out);
			return 0;
		default:
			return bad_opt(c, argv);
		}
		if (rc)
			return rc;
	}
	if (optind != argc)
		return usagef(c, "unexpected argument: %s", argv[optind]);
	if (!trusted)
		return usagef(c, "--trusted-root ROOT is required");
	if ((image || hw || floor_s) && !manifest)
		return usagef(c, "--image, --hw-variant and --floor need --manifest");
	if (at_s && !parse_time(at_s, &at))
		return usagef(c, "--at must be YYYY-MM-DDTHH:MM:SSZ, got '%s'", at_s);
	if (floor_s && !parse_uint(floor_s, UINT32_MAX, &floor_v))
		return usagef(c, "--floor must be an integer from 0 to 4294967295");

	rc = EXIT_FAIL;
	cur = malloc(sizeof(*cur));
	next = malloc(sizeof(*next));
	m = malloc(sizeof(*m));
	s = malloc(sizeof(*s));
	if (!cur || !next || !m || !s) {
		failf(c, "out of memory");
		goto out;
	}
	if ((rc = load_root_file(c, trusted, NULL, cur, s)) != 0)
		goto out;
	last = trusted;
	for (unsigned i = 0; i < nchain; i++) {
		if ((rc = load_root_file(c, chain[i], cur, next, s)) != 0)
			goto out;
		struct fwa_root *t = cur;
		cur = next;
		next = t;
		last = chain[i];
	}
	rc = EXIT_FAIL;
	if (fwa_root_check_expiry(cur, at, &why)) {
		char e[21], a[21];
		fwa_time_format(cur->expires, e);
		fwa_time_format(at, a);
		failf(c, "%s: root version %u expired at %s, checked at %s (rule: root.expires)",
		      last, cur->version, e, a);
		goto out;
	}
	if (!manifest) {
		char e[21];
		fwa_time_format(cur->expires, e);
		fprintf(c->out, "OK: root version %u, expires %s\n", cur->version, e);
		rc = 0;
		goto out;
	}
	if ((rc = read_file(c, manifest, FWA_ENVELOPE_MAX, &buf, &len)) != 0)
		goto out;
	rc = EXIT_FAIL;
	err = fwa_manifest_verify(cr, cur, buf, len, m, s, &why);
	if (err == FWA_ERR_THRESHOLD) {
		unsigned n = 0;
		if (fwa_dsse_count(cr, &s->env, cur, &cur->release, &n, NULL))
			n = 0;
		failf(c,
		      "%s: signed by %u of the %u release keys required by root version %u (rule: "
		      "manifest.threshold)",
		      manifest, n, cur->release.threshold, cur->version);
		goto out;
	}
	if (err) {
		failf(c, "%s: %s", manifest, why);
		goto out;
	}
	if (hw && fwa_manifest_check_target(m, hw, (uint32_t)floor_v, &why)) {
		failf(c, "%s: %s", manifest, why);
		goto out;
	}
	if (!hw && floor_s && m->security_version < floor_v) {
		failf(c,
		      "%s: security_version %u below the floor %llu (rule: "
		      "manifest.security_version)",
		      manifest, m->security_version, (unsigned long long)floor_v);
		goto out;
	}
	if (image) {
		uint64_t size;
		uint8_t sha[32];
		if ((rc = hash_file(c, image, &size, sha)) != 0)
			goto out;
		rc = EXIT_FAIL;
		if (fwa_manifest_check_image(m, size, sha, &why)) {
			failf(c, "%s: %s", image, why);
			goto out;
		}
	}
	unsigned n = 0;
	if (fwa_dsse_count(cr, &s->env, cur, &cur->release, &n, NULL))
		n = 0;
	fprintf(c->out,
	        "OK: %s %s, security_version %u, signed by %u of %u release keys (threshold %u) of "
	        "root version %u%s\n",
	        m->name, m->version, m->security_version, n, cur->release.nkeys,
	        cur->release.threshold, cur->version, image ? ", image matches" : "");
	rc = 0;
out:
	free(buf);
	free(cur);
	free(next);
	free(m);
	free(s);
	return rc;
}

/* ---- inspect ---- */

static const char inspect_help[] =
    "usage: ota-sign inspect FILE\n"
    "\n"
    "Print a DSSE envelope's payload type, its signers and its decoded payload. Root metadata\n"
    "also shows which signatures are valid by its own root keys. Nothing here is trusted:\n"
    "use verify for that.\n";

static void print_root(struct cli *c, const struct fwa_root *r, const struct fwa_dsse *env)
{
	const struct fwa_crypto *cr = fwa_crypto_openssl();
	char t[21], fp[65];
	uint8_t digest[32];

	fwa_time_format(r->expires, t);
	fwa_hex(r->digest, 32, fp);
	fprintf(c->out, "root version %u, expires %s, fingerprint %s\n", r->version, t, fp);
	fprintf(c->out, "root role: threshold %u of %u\n", r->root.threshold, r->root.nkeys);
	for (unsigned i = 0; i < r->root.nkeys; i++)
		fprintf(c->out, "  %s\n", r->keys[r->root.key[i]].id);
	fprintf(c->out, "release role: threshold %u of %u\n", r->release.threshold,
	        r->release.nkeys);
	for (unsigned i = 0; i < r->release.nkeys; i++)
		fprintf(c->out, "  %s\n", r->keys[r->release.key[i]].id);
	if (r->time.nkeys)
		fprintf(c->out, "time role: threshold 1 of %u\n", r->time.nkeys);
	for (unsigned i = 0; i < r->time.nkeys; i++)
		fprintf(c->out, "  %s\n", r->keys[r->time.key[i]].id);
	for (unsigned i = 0; i < r->nserver_cas; i++) {
		char pin[65];
		fwa_hex(r->server_ca[i], 32, pin);
		fprintf(c->out, "server CA pin: %s\n", pin);
	}
	fwa_dsse_pae_digest(cr, env->payload_type, env->payload, env->payload_len, digest);
	fprintf(c->out, "signatures by this root's own keys:\n");
	for (unsigned i = 0; i < env->nsigs; i++) {
		const char *state = "not a root key of this root";
		for (unsigned k = 0; k < r->root.nkeys; k++) {
			const struct fwa_key *key = &r->keys[r->root.key[k]];
			if (strcmp(key->id, env->sigs[i].keyid) == 0)
				state = cr->p256_verify(key->spki, digest, env->sigs[i].sig,
				                        env->sigs[i].sig_len) == FWA_OK
				            ? "valid"
				            : "INVALID";
		}
		fprintf(c->out, "  %s %s\n", env->sigs[i].keyid, state);
	}
}

static void print_manifest(struct cli *c, const struct fwa_manifest *m)
{
	char t[21], hex[65];

	fwa_time_format(m->created, t);
	fwa_hex(m->image_sha256, 32, hex);
	fprintf(c->out, "release %s %s, security_version %u, created %s\n", m->name, m->version,
	        m->security_version, t);
	fprintf(c->out, "hardware variants:");
	for (unsigned i = 0; i < m->nhw; i++)
		fprintf(c->out, " %s", m->hw[i]);
	fprintf(c->out, "\nimage: %llu bytes, format %s, sha256 %s\n",
	        (unsigned long long)m->image_size, m->image_format, hex);
}

static int cmd_inspect(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const struct fwa_crypto *cr = fwa_crypto_openssl();
	struct fwa_verify_scratch *s = NULL;
	struct fwa_root *r = NULL;
	struct fwa_manifest *m = NULL;
	char *buf = NULL;
	const char *why;
	size_t len;
	int o, rc;

	opt_reset();
	while ((o = next_opt(argc, argv, opts)) != -1) {
		if (o == 'h') {
			fputs(inspect_help, c->out);
			return 0;
		}
		return bad_opt(c, argv);
	}
	if (argc - optind != 1)
		return usagef(c, "exactly one FILE is required");
	const char *path = argv[optind];
	if ((rc = read_file(c, path, FWA_ENVELOPE_MAX, &buf, &len)) != 0)
		return rc;
	rc = EXIT_FAIL;
	s = malloc(sizeof(*s));
	r = malloc(sizeof(*r));
	m = malloc(sizeof(*m));
	if (!s || !r || !m) {
		failf(c, "out of memory");
		goto out;
	}
	if (fwa_dsse_parse(buf, len, s, &why)) {
		failf(c, "%s: %s", path, why);
		goto out;
	}
	fprintf(c->out, "payloadType: %s\nsignatures: %u\n", s->env.payload_type, s->env.nsigs);
	for (unsigned i = 0; i < s->env.nsigs; i++)
		fprintf(c->out, "  keyid %s\n", s->env.sigs[i].keyid);
	fprintf(c->out, "payload (%zu bytes):\n", s->env.payload_len);
	fwrite(s->env.payload, 1, s->env.payload_len, c->out);
	fputc('\n', c->out);
	if (strcmp(s->env.payload_type, FWA_PAYLOAD_ROOT) == 0) {
		/* Decoding reuses the token array only; the envelope stays intact for print_root.
		 */
		if (fwa_root_decode(cr, s->env.payload, s->env.payload_len, r, s, &why)) {
			failf(c, "%s: %s", path, why);
			goto out;
		}
		print_root(c, r, &s->env);
	} else if (strcmp(s->env.payload_type, FWA_PAYLOAD_MANIFEST) == 0) {
		if (fwa_manifest_decode(cr, s->env.payload, s->env.payload_len, m, s, &why)) {
			failf(c, "%s: %s", path, why);
			goto out;
		}
		print_manifest(c, m);
	} else if (strcmp(s->env.payload_type, FWA_PAYLOAD_DELTA) == 0) {
		struct fwa_delta_meta dm;

		if (fwa_delta_meta_decode(cr, s->env.payload, s->env.payload_len, &dm, s, &why)) {
			failf(c, "%s: %s", path, why);
			goto out;
		}
		fprintf(c->out, "delta: %u bytes from a %u-byte base to a %u-byte image\n",
		        dm.delta_size, dm.base_size, dm.target_size);
	} else {
		failf(c, "%s: unknown payload type (rule: dsse.payloadType)", path);
		goto out;
	}
	rc = 0;
out:
	free(buf);
	free(s);
	free(r);
	free(m);
	return rc;
}

/* ---- dispatch ---- */

static const char main_help[] =
    "usage: ota-sign COMMAND [OPTIONS]   (ota-sign COMMAND --help for each)\n"
    "\n"
    "Offline signing of OTA metadata: keys, root of trust, release manifests.\n"
    "\n"
    "  keygen        generate a P-256 key pair (NAME.key, NAME.pub)\n"
    "  root init     write root-1.json: root and release keys with thresholds\n"
    "  root rotate   write root-(N+1).json, signed by the old and the new root keys\n"
    "  release       write a signed release manifest for an image\n"
    "  delta         write a delta from one image to a release's, with signed metadata\n"
    "  verify        verify a root chain, a manifest and an image\n"
    "  inspect       print an envelope's payload and signers\n";

int ota_signer_main(int argc, char **argv, FILE *out, FILE *err)
{
	struct cli c = {out, err, "ota-sign"};

	if (argc < 2)
		return usagef(&c, "a command is required");
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(main_help, out);
		return 0;
	}
	if (strcmp(cmd, "keygen") == 0) {
		c.cmd = "keygen";
		return cmd_keygen(&c, argc - 1, argv + 1);
	}
	if (strcmp(cmd, "release") == 0) {
		c.cmd = "release";
		return cmd_release(&c, argc - 1, argv + 1);
	}
	if (strcmp(cmd, "delta") == 0) {
		c.cmd = "delta";
		return cmd_delta(&c, argc - 1, argv + 1);
	}
	if (strcmp(cmd, "verify") == 0) {
		c.cmd = "verify";
		return cmd_verify(&c, argc - 1, argv + 1);
	}
	if (strcmp(cmd, "inspect") == 0) {
		c.cmd = "inspect";
		return cmd_inspect(&c, argc - 1, argv + 1);
	}
	if (strcmp(cmd, "root") == 0) {
		const char *sub = argc > 2 ? argv[2] : "";
		if (strcmp(sub, "init") == 0) {
			c.cmd = "root init";
			return cmd_root_init(&c, argc - 2, argv + 2);
		}
		if (strcmp(sub, "rotate") == 0) {
			c.cmd = "root rotate";
			return cmd_root_rotate(&c, argc - 2, argv + 2);
		}
		if (strcmp(sub, "--help") == 0) {
			fputs(root_init_help, out);
			fputc('\n', out);
			fputs(root_rotate_help, out);
			return 0;
		}
		c.cmd = "root";
		return usagef(&c, "expected 'init' or 'rotate'");
	}
	return usagef(&c, "unknown command '%s'", cmd);
}
