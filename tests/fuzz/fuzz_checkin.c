/*
 * libFuzzer target: check-in answers as the agent core decodes them (core/checkin.c), with
 * the agent's token bound. Whatever it accepts must stay inside the input and within the
 * documented bounds (deployment id characters, image path, number of roots).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "checkin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fwa_json_tok tok[FWA_CHECKIN_MAX_TOKENS];
	struct fwa_checkin_answer a;
	const char *text = (const char *)data;
	const char *why = NULL;

	if (size > FWA_HTTP_BODY_MAX)
		return 0;
	if (fwa_checkin_decode(text, size, tok, FWA_CHECKIN_MAX_TOKENS, &a, &why) != FWA_OK) {
		if (!why)
			__builtin_trap();
		return 0;
	}
	if (a.nroots > FWA_MAX_ROOTS || a.poll_after > FWA_POLL_MAX_S)
		__builtin_trap();
	for (unsigned i = 0; i < a.nroots; i++)
		if (a.roots[i].p < text || a.roots[i].p + a.roots[i].len > text + size ||
		    a.roots[i].p[0] != '{')
			__builtin_trap();
	if (a.update) {
		if (!fwa_dep_id_valid(a.deployment_id) || a.image_url[0] != '/' ||
		    strlen(a.image_url) > FWA_URL_MAX || !a.manifest.p || a.manifest.p < text ||
		    a.manifest.p + a.manifest.len > text + size || a.manifest.p[0] != '{' ||
		    a.manifest.p[a.manifest.len - 1] != '}')
			__builtin_trap();
	}
	return 0;
}
