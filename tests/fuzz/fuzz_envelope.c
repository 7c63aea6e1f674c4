/*
 * fuzz_envelope.c - libFuzzer target for the one parser of signed metadata: the JSON
 * tokenizer and its getters, DSSE envelope parsing, root and manifest decoding, and the full
 * verification paths (root load, rotation, manifest verification) against a fixed trusted
 * root whose keys are in the seed corpus.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fwa/crypto_openssl.h"
#include "fwa/json.h"
#include "fwa/verify.h"

#include "fuzz_envelope_root.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fwa_verify_scratch scratch;
static struct fwa_root trusted, root;
static struct fwa_manifest manifest;
static bool have_trusted;

/* Every getter over every token: offsets must stay inside the text. */
static void walk_json(const char *text, size_t len)
{
	struct fwa_json j;
	char buf[128];
	uint64_t v;
	bool b;

	if (fwa_json_parse(&j, text, len, scratch.tok, FWA_JSON_MAX_TOKENS) != FWA_OK)
		return;
	for (unsigned i = 0; i < j.ntok; i++) {
		(void)fwa_json_str(&j, (int)i, buf, sizeof(buf), NULL);
		(void)fwa_json_str_eq(&j, (int)i, "version");
		(void)fwa_json_uint(&j, (int)i, UINT64_MAX, &v);
		(void)fwa_json_bool(&j, (int)i, &b);
		(void)fwa_json_get(&j, (int)i, "keys");
		(void)fwa_json_at(&j, (int)i, 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct fwa_crypto *c = fwa_crypto_openssl();
	const char *text = (const char *)data;
	static uint8_t payload[FWA_PAYLOAD_MAX];
	const char *why;

	if (!have_trusted) {
		if (fwa_root_load(c, trusted_root_json, strlen(trusted_root_json), &trusted,
		                  &scratch, &why) != FWA_OK)
			__builtin_trap(); /* the embedded root must always load */
		have_trusted = true;
	}

	walk_json(text, size);

	/* As a bare payload. */
	(void)fwa_root_decode(c, data, size, &root, &scratch, &why);
	if (fwa_manifest_decode(c, data, size, &manifest, &scratch, &why) == FWA_OK) {
		(void)fwa_manifest_check_target(&manifest, "pico2w", 3, &why);
		(void)fwa_manifest_check_image(&manifest, 4096, payload, &why);
	}

	/*
	 * As an envelope: its payload through both decoders, then the verification paths a
	 * device and the server run. Those start with the same envelope parse, so they are only
	 * worth running (and their signature checks only worth paying for) when it succeeds.
	 */
	if (fwa_dsse_parse(text, size, &scratch, &why) != FWA_OK)
		return 0;
	size_t n = scratch.env.payload_len;
	bool is_root = strcmp(scratch.env.payload_type, FWA_PAYLOAD_ROOT) == 0;
	memcpy(payload, scratch.env.payload, n);
	(void)fwa_root_decode(c, payload, n, &root, &scratch, &why);
	(void)fwa_manifest_decode(c, payload, n, &manifest, &scratch, &why);
	if (is_root) {
		(void)fwa_root_load(c, text, size, &root, &scratch, &why);
		(void)fwa_root_update(c, &trusted, text, size, &root, &scratch, &why);
	} else {
		(void)fwa_manifest_verify(c, &trusted, text, size, &manifest, &scratch, &why);
	}
	return 0;
}
