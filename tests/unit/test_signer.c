/*
 * test_signer.c - ota-sign end to end, through the same entry point as the binary
 * (ota_signer_main), in a fresh temporary directory: key files and their modes, root init and
 * rotation, releases, verification with its one-line reasons, inspect, malformed input, and
 * that a refused command writes nothing.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "signer.h"

static char dir[256];
static char out_text[65536];
static char err_text[65536];

/* Run ota-sign with the given arguments (NULL-terminated) inside the test directory. */
static int run(const char *first, ...)
{
	char *argv[64];
	int argc = 0;
	va_list ap;
	char *obuf = NULL, *ebuf = NULL;
	size_t olen = 0, elen = 0;

	argv[argc++] = (char *)"ota-sign";
	argv[argc++] = (char *)first;
	va_start(ap, first);
	for (char *a; (a = va_arg(ap, char *)) != NULL;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	FILE *o = open_memstream(&obuf, &olen);
	FILE *e = open_memstream(&ebuf, &elen);
	assert_non_null(o);
	assert_non_null(e);
	int rc = ota_signer_main(argc, argv, o, e);
	fclose(o);
	fclose(e);
	snprintf(out_text, sizeof(out_text), "%s", obuf ? obuf : "");
	snprintf(err_text, sizeof(err_text), "%s", ebuf ? ebuf : "");
	free(obuf);
	free(ebuf);
	return rc;
}

#define RUN(...) run(__VA_ARGS__, (char *)NULL)

static void expect_ok(int rc)
{
	if (rc != 0)
		fail_msg("exit %d: %s", rc, err_text);
}

/* The failure message is exactly one line, and names the rule when `rule` is given. */
static void expect_fail(int rc, const char *needle)
{
	if (rc == 0)
		fail_msg("succeeded, expected a failure with '%s'", needle);
	char *nl = strchr(err_text, '\n');
	if (!nl || nl[1] != '\0')
		fail_msg("not one line: '%s'", err_text);
	if (needle && !strstr(err_text, needle))
		fail_msg("'%s' lacks '%s'", err_text, needle);
}

static bool exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

static void write_text(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static char *read_text(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	static char buf[65536];
	assert_non_null(f);
	*len = fread(buf, 1, sizeof(buf) - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

/* No temporary file left behind in the directory. */
static void expect_no_temp_files(void)
{
	DIR *d = opendir(".");
	struct dirent *de;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] == '.' && strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			fail_msg("temporary file left: %s", de->d_name);
	closedir(d);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ota-sign-test-XXXXXX");
	if (!mkdtemp(dir) || chdir(dir) != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	if (chdir("/") != 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Keys and root 1 used by most tests: root keys r1-r3 (2 of 3), release keys l1-l3 (2 of 3). */
static void make_keys_and_root(void)
{
	static const char *const names[] = {"r1", "r2", "r3", "r4", "l1", "l2", "l3", "x1"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		expect_ok(RUN("keygen", "--out", names[i]));
	expect_ok(RUN("root", "init", "--root-key", "r1.pub", "--root-key", "r2.pub", "--root-key",
	              "r3.pub", "--root-threshold", "2", "--release-key", "l1.pub", "--release-key",
	              "l2.pub", "--release-key", "l3.pub", "--release-threshold", "2", "--sign",
	              "r1.key", "--sign", "r3.key", "--expires", "2099-01-01T00:00:00Z"));
	assert_true(exists("root-1.json"));
	write_text("fw.bin", "firmware image bytes", 20);
}

static void test_help(void **state)
{
	(void)state;
	static const char *const cmds[][2] = {{"keygen", NULL},   {"root", "init"},
	                                      {"root", "rotate"}, {"release", NULL},
	                                      {"verify", NULL},   {"inspect", NULL}};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		int rc =
		    cmds[i][1] ? RUN(cmds[i][0], cmds[i][1], "--help") : RUN(cmds[i][0], "--help");
		assert_int_equal(rc, 0);
		assert_non_null(strstr(out_text, "usage: ota-sign"));
	}
	assert_int_equal(RUN("--help"), 0);
	assert_non_null(strstr(out_text, "root rotate"));
	assert_int_equal(RUN("frobnicate"), 2);
	assert_int_equal(RUN("keygen", "--bogus"), 2);
	assert_int_equal(RUN("verify", "--manifest", "x"), 2);
}

static void test_keygen(void **state)
{
	(void)state;
	struct stat st;
	size_t len;

	expect_ok(RUN("keygen", "--out", "k"));
	assert_int_equal(strlen(out_text), 65);
	assert_int_equal(stat("k.key", &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat("k.pub", &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	char *key = read_text("k.key", &len);
	assert_non_null(strstr(key, "-----BEGIN "
	                            "PRIVATE KEY-----"));
	char before[4096];
	snprintf(before, sizeof(before), "%s", key);

	/* Refuses to overwrite either file, and leaves them untouched. */
	expect_fail(RUN("keygen", "--out", "k"), "refusing to overwrite");
	assert_string_equal(read_text("k.key", &len), before);
	unlink("k.pub");
	expect_fail(RUN("keygen", "--out", "k"), "refusing to overwrite");
	assert_false(exists("k.pub"));

	/* Encrypted with a passphrase: PKCS#8 with AES-256, unusable without it. */
	write_text("pass", "correct horse\n", 14);
	write_text("wrong", "battery staple\n", 15);
	expect_ok(RUN("keygen", "--out", "e", "--passphrase-file", "pass"));
	key = read_text("e.key", &len);
	assert_non_null(strstr(key, "-----BEGIN "
	                            "ENCRYPTED PRIVATE KEY-----"));
	FILE *f = fopen("e.key", "r");
	EVP_PKEY *pk = PEM_read_PrivateKey(f, NULL, NULL, (void *)"correct horse");
	fclose(f);
	assert_non_null(pk);
	EVP_PKEY_free(pk);
	write_text("img", "x", 1);
	expect_fail(RUN("release", "--image", "img", "--name", "a", "--version", "1.0.0",
	                "--security-version", "1", "--hw-variant", "h", "--key", "e.key"),
	            "encrypted");
	expect_fail(RUN("release", "--image", "img", "--name", "a", "--version", "1.0.0",
	                "--security-version", "1", "--hw-variant", "h", "--key", "e.key",
	                "--passphrase-file", "wrong"),
	            "wrong passphrase");
	expect_ok(RUN("release", "--image", "img", "--name", "a", "--version", "1.0.0",
	              "--security-version", "1", "--hw-variant", "h", "--key", "e.key",
	              "--passphrase-file", "pass"));
	write_text("empty", "\n", 1);
	expect_fail(RUN("keygen", "--out", "z", "--passphrase-file", "empty"), "empty passphrase");
	assert_false(exists("z.key"));
	expect_no_temp_files();
}

static void test_walkthrough(void **state)
{
	(void)state;
	make_keys_and_root();
	expect_ok(RUN("release", "--image", "fw.bin", "--name", "pico-fw", "--version", "1.2.3",
	              "--security-version", "3", "--hw-variant", "pico2w", "--hw-variant", "pico2",
	              "--key", "l1.key", "--key", "l2.key", "--root", "root-1.json"));
	assert_true(exists("pico-fw-1.2.3.manifest.json"));
	expect_ok(RUN("verify", "--trusted-root", "root-1.json", "--manifest",
	              "pico-fw-1.2.3.manifest.json", "--image", "fw.bin", "--hw-variant", "pico2w",
	              "--floor", "3"));
	assert_non_null(strstr(out_text, "OK: pico-fw 1.2.3"));
	assert_non_null(strstr(out_text, "signed by 2 of 3"));
	assert_non_null(strstr(out_text, "image matches"));

	/* Rotation 1 -> 2 (replace root key r2 by r4) -> 3 (revoke l3). */
	expect_ok(RUN("root", "rotate", "--previous", "root-1.json", "--root-key", "r1.pub",
	              "--root-key", "r3.pub", "--root-key", "r4.pub", "--sign", "r1.key", "--sign",
	              "r2.key", "--sign", "r4.key", "--expires", "2098-01-01T00:00:00Z"));
	assert_non_null(strstr(out_text, "root-2.json"));
	expect_ok(RUN("root", "rotate", "--previous", "root-2.json", "--release-key", "l1.pub",
	              "--release-key", "l2.pub", "--sign", "r3.key", "--sign", "r4.key",
	              "--expires", "2097-01-01T00:00:00Z"));
	expect_ok(RUN("verify", "--trusted-root", "root-1.json", "--root", "root-2.json", "--root",
	              "root-3.json", "--manifest", "pico-fw-1.2.3.manifest.json"));
	assert_non_null(strstr(out_text, "signed by 2 of 2"));
	assert_non_null(strstr(out_text, "root version 3"));

	/* A release signed with the revoked key no longer verifies under root 3. */
	expect_ok(RUN("release", "--image", "fw.bin", "--name", "pico-fw", "--version", "1.2.4",
	              "--security-version", "3", "--hw-variant", "pico2w", "--key", "l1.key",
	              "--key", "l3.key", "--out", "revoked.json"));
	expect_ok(RUN("verify", "--trusted-root", "root-1.json", "--manifest", "revoked.json"));
	expect_fail(RUN("verify", "--trusted-root", "root-1.json", "--root", "root-2.json",
	                "--root", "root-3.json", "--manifest", "revoked.json"),
	            "verify: revoked.json: signed by 1 of the 2 release keys required by root "
	            "version 3 (rule: manifest.threshold)");

	/* Inspect. */
	expect_ok(RUN("inspect", "root-2.json"));
	assert_non_null(strstr(out_text, "payloadType: application/vnd.ota.root+json"));
	assert_non_null(strstr(out_text, "root version 2"));
	assert_non_null(strstr(out_text, " valid"));
	assert_non_null(strstr(out_text, "not a root key of this root")); /* r2 signed, left */
	expect_ok(RUN("inspect", "pico-fw-1.2.3.manifest.json"));
	assert_non_null(strstr(out_text, "release pico-fw 1.2.3, security_version 3"));
	assert_non_null(strstr(out_text, "hardware variants: pico2w pico2"));
	assert_non_null(strstr(out_text, "\"_type\":\"manifest\""));
	expect_no_temp_files();
}

static void test_rotation_rules(void **state)
{
	(void)state;
	make_keys_and_root();
	/* Signed only by the new keys: refused, nothing written. */
	expect_fail(RUN("root", "rotate", "--previous", "root-1.json", "--root-key", "r4.pub",
	                "--root-threshold", "1", "--sign", "r4.key"),
	            "rule: root.threshold.previous");
	assert_false(exists("root-2.json"));
	/* Signed by the old keys only, below the new root's own threshold. */
	expect_fail(RUN("root", "rotate", "--previous", "root-1.json", "--root-key", "r4.pub",
	                "--root-key", "x1.pub", "--root-threshold", "2", "--sign", "r1.key",
	                "--sign", "r2.key", "--sign", "r4.key"),
	            "rule: root.threshold.self");
	assert_false(exists("root-2.json"));

	/* Skipped version: root 3 directly on top of root 1. */
	expect_ok(RUN("root", "rotate", "--previous", "root-1.json", "--sign", "r1.key", "--sign",
	              "r2.key"));
	expect_ok(RUN("root", "rotate", "--previous", "root-2.json", "--sign", "r1.key", "--sign",
	              "r2.key"));
	expect_fail(RUN("verify", "--trusted-root", "root-1.json", "--root", "root-3.json"),
	            "verify: root-3.json: root version must be 2, got 3 (rule: root.version)");
	expect_fail(RUN("verify", "--trusted-root", "root-1.json", "--root", "root-2.json",
	                "--root", "root-2.json"),
	            "root version must be 3, got 2 (rule: root.version)");
	expect_ok(RUN("verify", "--trusted-root", "root-1.json", "--root", "root-2.json", "--root",
	              "root-3.json"));
	/* root-2.json exists: a second rotation from root 1 does not replace it. */
	size_t len;
	char before[16384];
	snprintf(before, sizeof(before), "%s", read_text("root-2.json", &len));
	expect_fail(RUN("root", "rotate", "--previous", "root-1.json", "--sign", "r1.key", "--sign",
	                "r2.key"),
	            "refusing to overwrite");
	assert_string_equal(read_text("root-2.json", &len), before);
	expect_no_temp_files();
}

static void test_expiry(void **state)
{
	(void)state;
	make_keys_and_root();
	expect_ok(RUN("release", "--image", "fw.bin", "--name", "pico-fw", "--version", "1.0.0",
	              "--security-version", "1", "--hw-variant", "pico2w", "--key", "l1.key",
	              "--key", "l2.key"));
	expect_fail(RUN("verify", "--trusted-root", "root-1.json", "--manifest",
	                "pico-fw-1.0.0.manifest.json", "--at", "2099-01-01T00:00:00Z"),
	            "verify: root-1.json: root version 1 expired at 2099-01-01T00:00:00Z, checked "
	            "at 2099-01-01T00:00:00Z (rule: root.expires)");
	expect_ok(RUN("verify", "--trusted-root", "root-1.json", "--manifest",
	              "pico-fw-1.0.0.manifest.json", "--at", "2098-12-31T23:59:59Z"));
	expect_fail(RUN("verify", "--trusted-root", "root-1.json", "--at", "2099-06-01T00:00:00Z"),
	            "rule: root.expires");
	expect_fail(RUN("root", "init", "--root-key", "r1.pub", "--root-threshold", "1",
	                "--release-key", "l1.pub", "--release-threshold", "1", "--sign", "r1.key",
	                "--expires", "2001-01-01T00:00:00Z", "--out-dir", "/tmp/nonexistent-dir"),
	            "in the past");
	assert_int_equal(RUN("verify", "--trusted-root", "root-1.json", "--at", "tomorrow"), 2);
}

static void test_release_checks(void **state)
{
	(void)state;
	make_keys_and_root();
	/* Threshold not met against the given root: nothing written. */
	expect_fail(RUN("release", "--image", "fw.bin", "--name", "a", "--version", "1.0.0",
	                "--security-version", "1", "--hw-variant", "h", "--key", "l1.key", "--root",
	                "root-1.json"),
	            "rule: manifest.threshold");
	assert_false(exists("a-1.0.0.manifest.json"));
	/* Root keys cannot sign releases. */
	expect_fail(RUN("release", "--image", "fw.bin", "--name", "a", "--version", "1.0.0",
	                "--security-version", "1", "--hw-variant", "h", "--key", "r1.key", "--key",
	                "r2.key", "--root", "root-1.json"),
	            "rule: manifest.threshold");
	/* Field rules from the verifier. */
	expect_fail(RUN("release", "--image", "fw.bin", "--name", "a b", "--version", "1.0.0",
	                "--security-version", "1", "--hw-variant", "h", "--key", "l1.key"),
	            "rule: manifest.name");
	expect_fail(RUN("release", "--image", "fw.bin", "--name", "a", "--version", "1.0",
	                "--security-version", "1", "--hw-variant", "h", "--key", "l1.key"),
	            "rule: manifest.version");
	expect_fail(RUN("release", "--image", "fw.bin", "--name", "a", "--version", "1.0.0",
	                "--security-version", "1", "--hw-variant", "Pico", "--key", "l1.key"),
	            "rule: manifest.hw_variants");
	expect_fail(RUN("release", "--image", "fw.bin", "--name",
	                "a123456789012345678901234567890123456789012345678901234567890123456789",
	                "--version", "1.0.0", "--security-version", "1", "--hw-variant", "h",
	                "--key", "l1.key"),
	            "rule: manifest.name");
	assert_int_equal(RUN("release", "--image", "fw.bin", "--name", "a", "--version", "1.0.0",
	                     "--security-version", "-1", "--hw-variant", "h", "--key", "l1.key"),
	                 2);
	write_text("empty.bin", "", 0);
	expect_fail(RUN("release", "--image", "empty.bin", "--name", "a", "--version", "1.0.0",
	                "--security-version", "1", "--hw-variant", "h", "--key", "l1.key"),
	            "rule: manifest.image.size");
	expect_fail(RUN("release", "--image", "missing.bin", "--name", "a", "--version", "1.0.0",
	                "--security-version", "1", "--hw-variant", "h", "--key", "l1.key"),
	            "missing.bin");
	/* A public key where a private key is needed. */
	expect_fail(RUN("release", "--image", "fw.bin", "--name", "a", "--version", "1.0.0",
	                "--security-version", "1", "--hw-variant", "h", "--key", "l1.pub"),
	            "l1.pub");

	/* Target and image checks at verify time. */
	expect_ok(RUN("release", "--image", "fw.bin", "--name", "a", "--version", "1.0.0",
	              "--security-version", "5", "--hw-variant", "pico2w", "--key", "l1.key",
	              "--key", "l3.key", "--out", "m.json"));
	expect_fail(RUN("verify", "--trusted-root", "root-1.json", "--manifest", "m.json",
	                "--hw-variant", "rp2040"),
	            "verify: m.json: manifest does not list this hardware variant (rule: "
	            "manifest.hw_variants)");
	expect_fail(RUN("verify", "--trusted-root", "root-1.json", "--manifest", "m.json",
	                "--hw-variant", "pico2w", "--floor", "6"),
	            "rule: manifest.security_version");
	write_text("short.bin", "firmware image byte", 19);
	expect_fail(
	    RUN("verify", "--trusted-root", "root-1.json", "--manifest", "m.json", "--image",
	        "short.bin"),
	    "verify: short.bin: image size differs from the manifest (rule: manifest.image.size)");
	write_text("other.bin", "firmware image byteZ", 20);
	expect_fail(RUN("verify", "--trusted-root", "root-1.json", "--manifest", "m.json",
	                "--image", "other.bin"),
	            "verify: other.bin: image SHA-256 differs from the manifest (rule: "
	            "manifest.image.sha256)");
	/* Existing output is never replaced. */
	expect_fail(RUN("release", "--image", "other.bin", "--name", "a", "--version", "1.0.0",
	                "--security-version", "5", "--hw-variant", "pico2w", "--key", "l1.key",
	                "--out", "m.json"),
	            "refusing to overwrite");
	expect_ok(RUN("verify", "--trusted-root", "root-1.json", "--manifest", "m.json", "--image",
	              "fw.bin"));
	expect_no_temp_files();
}

static void test_malformed_input(void **state)
{
	(void)state;
	size_t len;
	make_keys_and_root();
	expect_ok(RUN("release", "--image", "fw.bin", "--name", "a", "--version", "1.0.0",
	              "--security-version", "1", "--hw-variant", "h", "--key", "l1.key", "--key",
	              "l2.key", "--out", "m.json"));
	char good[16384];
	snprintf(good, sizeof(good), "%s", read_text("m.json", &len));

	/* Truncated. */
	write_text("trunc.json", good, len / 2);
	expect_fail(RUN("verify", "--trusted-root", "root-1.json", "--manifest", "trunc.json"),
	            "verify: trunc.json: envelope is not valid JSON (rule: dsse.json)");
	expect_fail(RUN("inspect", "trunc.json"), "rule: dsse.json");
	/* Not JSON at all, and an empty file. */
	write_text("junk.json",
	           "\x7f"
	           "ELF\x02\x01",
	           6);
	expect_fail(RUN("verify", "--trusted-root", "root-1.json", "--manifest", "junk.json"),
	            "rule: dsse.json");
	write_text("empty.json", "", 0);
	expect_fail(RUN("verify", "--trusted-root", "empty.json"), "rule: dsse.json");
	/* Bad base64 in the payload. */
	char bad[16384];
	snprintf(bad, sizeof(bad), "%s", good);
	char *p = strstr(bad, "\"payload\":\"") + 11;
	p[5] = '!';
	write_text("b64.json", bad, len);
	expect_fail(RUN("verify", "--trusted-root", "root-1.json", "--manifest", "b64.json"),
	            "payload missing or not base64 (rule: dsse.payload)");
	/* Unknown payload type: a root given as a manifest, and a foreign type. */
	expect_fail(RUN("verify", "--trusted-root", "root-1.json", "--manifest", "root-1.json"),
	            "rule: dsse.payloadType");
	expect_fail(RUN("verify", "--trusted-root", "m.json"), "rule: dsse.payloadType");
	snprintf(bad, sizeof(bad), "%s", good);
	p = strstr(bad, "manifest+json");
	memcpy(p, "manifest+yaml", 13);
	write_text("type.json", bad, len);
	expect_fail(RUN("inspect", "type.json"), "unknown payload type (rule: dsse.payloadType)");
	/* Oversized: a file over 16 KiB, and an oversized field inside bounds. */
	char *big = malloc(20000);
	memset(big, ' ', 20000);
	big[0] = '{';
	big[19999] = '}';
	write_text("big.json", big, 20000);
	free(big);
	expect_fail(RUN("verify", "--trusted-root", "root-1.json", "--manifest", "big.json"),
	            "rule: dsse.size");
	expect_fail(RUN("inspect", "big.json"), "rule: dsse.size");
	/* Wrong curve: a P-384 public key offered as a root key. */
	EVP_PKEY *p384 = EVP_EC_gen("P-384");
	assert_non_null(p384);
	FILE *f = fopen("p384.pub", "w");
	assert_int_equal(PEM_write_PUBKEY(f, p384), 1);
	fclose(f);
	f = fopen("p384.key", "w");
	assert_int_equal(PEM_write_PKCS8PrivateKey(f, p384, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	EVP_PKEY_free(p384);
	expect_fail(RUN("root", "init", "--root-key", "p384.pub", "--root-threshold", "1",
	                "--release-key", "l1.pub", "--release-threshold", "1", "--sign", "r1.key",
	                "--out-dir", "sub"),
	            "p384.pub: not an ECDSA P-256 key");
	expect_fail(RUN("release", "--image", "fw.bin", "--name", "a", "--version", "1.0.0",
	                "--security-version", "1", "--hw-variant", "h", "--key", "p384.key"),
	            "p384.key: not an ECDSA P-256 private key");
	/* A key file that is not PEM. */
	expect_fail(RUN("root", "init", "--root-key", "fw.bin", "--root-threshold", "1",
	                "--release-key", "l1.pub", "--release-threshold", "1", "--sign", "r1.key"),
	            "fw.bin: not a PEM public key");
	/* Thresholds out of range are usage errors. */
	assert_int_equal(RUN("root", "init", "--root-key", "r1.pub", "--root-threshold", "2",
	                     "--release-key", "l1.pub", "--release-threshold", "1", "--sign",
	                     "r1.key"),
	                 2);
	/* A key in both roles. */
	mkdir("sub", 0755);
	expect_fail(RUN("root", "init", "--root-key", "r1.pub", "--root-threshold", "1",
	                "--release-key", "r1.pub", "--release-threshold", "1", "--sign", "r1.key",
	                "--out-dir", "sub"),
	            "rule:");
	assert_false(exists("sub/root-1.json"));
	expect_no_temp_files();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_help, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keygen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_walkthrough, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotation_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_release_checks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_input, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
