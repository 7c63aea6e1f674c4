/*
 * pki/pkcs11.c - a private key in a PKCS#11 token, for otad's issuing CA. Two libraries share
 * the work. p11-kit parses the RFC 7512 URI and walks the token once at start (module, token,
 * login, object), because its PKCS#11 return codes let each failure get its own message. The key
 * itself is then loaded through libp11's OpenSSL engine ("pkcs11", Debian's
 * libengine-pkcs11-openssl), which yields an EVP_PKEY that X509_sign uses like a key read from a
 * file, while the signing happens in the token.
 *
 * The ENGINE API is deprecated in OpenSSL 3, whose replacement (a pkcs11 provider) Debian 12
 * does not ship. This file is the only one that uses it, and it alone is compiled with
 * OPENSSL_SUPPRESS_DEPRECATED (below) so that the rest of otad still fails to build on any
 * deprecated call. GnuTLS's PKCS#11 keys were the alternative, but their signatures cannot go
 * into OpenSSL's X509 without rebuilding the certificate by hand (docs/security.md).
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* ENGINE_*: see above; before any OpenSSL header */

#include "pki/pkcs11.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#include "common/util.h"

struct ota_pkcs11 {
	ENGINE *engine;
	EVP_PKEY *key;
};

bool ota_pkcs11_is_uri(const char *ref)
{
	return ref && strncmp(ref, "pkcs11:", 7) == 0;
}

/* The PIN: the first line of a file only its owner and group may read; NULL with msg set. */
static char *read_pin(const char *path, const char *what, char *msg, size_t msglen)
{
	struct stat sb;
	size_t len = 0;
	char *pin;

	if (!path[0]) {
		ota_say(msg, msglen, "%s: a PKCS#11 key needs [trust] issuer_key_pin_file", what);
		return NULL;
	}
	if (stat(path, &sb) != 0 || !(pin = ota_file_read(path, 256, &len))) {
		ota_say(msg, msglen, "[trust] issuer_key_pin_file %s: cannot read it", path);
		return NULL;
	}
	if (sb.st_mode & 027) {
		OPENSSL_cleanse(pin, len);
		free(pin);
		ota_say(msg, msglen,
		        "[trust] issuer_key_pin_file %s: writable by its group or open to others "
		        "(at most 0640)",
		        path);
		return NULL;
	}
	pin[strcspn(pin, "\r\n")] = '\0';
	if (!pin[0]) {
		free(pin);
		ota_say(msg, msglen, "[trust] issuer_key_pin_file %s: empty", path);
		return NULL;
	}
	return pin;
}

/* The module set to search: the configured one, or every module p11-kit has registered. */
static CK_FUNCTION_LIST **load_modules(const char *module, const char *what, char *msg,
                                       size_t msglen)
{
	CK_FUNCTION_LIST **mods;
	CK_RV rv;

	if (!module[0]) {
		mods = p11_kit_modules_load_and_initialize(0);
		if (!mods || !mods[0]) {
			free(mods);
			ota_say(msg, msglen,
			        "%s: no PKCS#11 module is registered with p11-kit; set [trust] "
			        "pkcs11_module",
			        what);
			return NULL;
		}
		return mods;
	}
	mods = calloc(2, sizeof(*mods));
	if (!mods) {
		ota_say(msg, msglen, "out of memory");
		return NULL;
	}
	mods[0] = p11_kit_module_load(module, 0);
	if (!mods[0]) {
		free(mods);
		ota_say(msg, msglen, "[trust] pkcs11_module %s: cannot load this PKCS#11 module",
		        module);
		return NULL;
	}
	rv = p11_kit_module_initialize(mods[0]);
	if (rv != CKR_OK) {
		p11_kit_module_release(mods[0]);
		free(mods);
		ota_say(msg, msglen, "[trust] pkcs11_module %s: initialisation failed (CKR 0x%lx)",
		        module, (unsigned long)rv);
		return NULL;
	}
	return mods;
}

static void release_modules(CK_FUNCTION_LIST **mods, bool configured)
{
	if (!mods)
		return;
	if (!configured) {
		p11_kit_modules_finalize_and_release(mods);
		return;
	}
	p11_kit_module_finalize(mods[0]);
	p11_kit_module_release(mods[0]);
	free(mods);
}

/* The one token that matches the URI: *fn and *slot; false with msg set otherwise. */
static bool find_token(CK_FUNCTION_LIST **mods, P11KitUri *uri, const char *what,
                       CK_FUNCTION_LIST **fn, CK_SLOT_ID *slot, char *msg, size_t msglen)
{
	unsigned found = 0;

	for (size_t m = 0; mods[m]; m++) {
		CK_SLOT_ID slots[64];
		CK_ULONG n = 64;
		CK_INFO info;

		if (mods[m]->C_GetInfo(&info) != CKR_OK ||
		    !p11_kit_uri_match_module_info(uri, &info))
			continue;
		if (mods[m]->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
			continue;
		for (CK_ULONG i = 0; i < n; i++) {
			CK_TOKEN_INFO ti;

			if (mods[m]->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
			    !(ti.flags & CKF_TOKEN_INITIALIZED) ||
			    !p11_kit_uri_match_token_info(uri, &ti))
				continue;
			*fn = mods[m];
			*slot = slots[i];
			found++;
		}
	}
	if (found == 1)
		return true;
	if (found == 0)
		ota_say(msg, msglen, "%s: no token matches the URI (its token= and serial=)", what);
	else
		ota_say(msg, msglen, "%s: %u tokens match the URI; name one (token=, serial=)",
		        what, found);
	return false;
}

/* Login with the PIN and count the private keys the URI's attributes match. */
static bool check_object(CK_FUNCTION_LIST *fn, CK_SLOT_ID slot, P11KitUri *uri, const char *pin,
                         const char *pin_file, const char *what, char *msg, size_t msglen)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[8];
	CK_ULONG nattrs = 0, ntmpl = 0, found = 0;
	CK_ATTRIBUTE *attrs = p11_kit_uri_get_attributes(uri, &nattrs);
	CK_OBJECT_HANDLE objs[2];
	CK_SESSION_HANDLE s;
	bool ok = false, has_class = false;
	CK_RV rv;

	/* p11-kit gives at most a class, a label and an id; a class must be a private key's. */
	for (CK_ULONG i = 0; i < nattrs && ntmpl < 7; i++) {
		if (attrs[i].type == CKA_CLASS) {
			if (attrs[i].ulValueLen != sizeof(cls) ||
			    *(CK_OBJECT_CLASS *)attrs[i].pValue != CKO_PRIVATE_KEY) {
				ota_say(msg, msglen,
				        "%s: the URI names no private key (type=private)", what);
				return false;
			}
			has_class = true;
		}
		tmpl[ntmpl++] = attrs[i];
	}
	if (!has_class)
		tmpl[ntmpl++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
	rv = fn->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (rv != CKR_OK) {
		ota_say(msg, msglen, "%s: cannot open a session on the token (CKR 0x%lx)", what,
		        (unsigned long)rv);
		return false;
	}
	rv = fn->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, (CK_ULONG)strlen(pin));
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_INVALID) {
		ota_say(msg, msglen, "%s: wrong PIN (from [trust] issuer_key_pin_file %s)", what,
		        pin_file);
		goto out;
	}
	if (rv == CKR_PIN_LOCKED) {
		ota_say(msg, msglen, "%s: the token's user PIN is locked", what);
		goto out;
	}
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		ota_say(msg, msglen, "%s: login failed (CKR 0x%lx)", what, (unsigned long)rv);
		goto out;
	}
	if (fn->C_FindObjectsInit(s, tmpl, ntmpl) == CKR_OK) {
		if (fn->C_FindObjects(s, objs, 2, &found) != CKR_OK)
			found = 0;
		fn->C_FindObjectsFinal(s);
	}
	if (found == 1)
		ok = true;
	else if (found == 0)
		ota_say(msg, msglen,
		        "%s: no private key on the token matches the URI (object=, id=)", what);
	else
		ota_say(msg, msglen,
		        "%s: several private keys match the URI; name one (object=, id=)", what);
	fn->C_Logout(s);
out:
	fn->C_CloseSession(s);
	return ok;
}

/* The URI, parsed strictly: no PIN inside, nothing p11-kit does not know. */
static P11KitUri *parse_uri(const char *text, const char *what, char *msg, size_t msglen)
{
	P11KitUri *uri = p11_kit_uri_new();

	if (!uri) {
		ota_say(msg, msglen, "out of memory");
		return NULL;
	}
	if (p11_kit_uri_parse(text, P11_KIT_URI_FOR_ANY, uri) != P11_KIT_URI_OK ||
	    p11_kit_uri_any_unrecognized(uri)) {
		ota_say(msg, msglen, "%s: not a PKCS#11 URI (RFC 7512) that otad understands",
		        what);
	} else if (p11_kit_uri_get_pin_value(uri) || p11_kit_uri_get_pin_source(uri)) {
		ota_say(msg, msglen,
		        "%s: the URI may not carry the PIN; use [trust] issuer_key_pin_file", what);
	} else {
		return uri;
	}
	p11_kit_uri_free(uri);
	return NULL;
}

/* The key through libp11's engine, after the walk above found it. */
static bool load_engine_key(struct ota_pkcs11 *h, const char *uri, const char *module,
                            const char *pin, const char *what, char *msg, size_t msglen)
{
	unsigned long e;

	ERR_clear_error();
	h->engine = ENGINE_by_id("pkcs11");
	if (!h->engine) {
		ota_say(msg, msglen,
		        "%s: OpenSSL's pkcs11 engine is not installed (libengine-pkcs11-openssl)",
		        what);
		return false;
	}
	if ((module[0] && !ENGINE_ctrl_cmd_string(h->engine, "MODULE_PATH", module, 0)) ||
	    !ENGINE_ctrl_cmd_string(h->engine, "PIN", pin, 0) || !ENGINE_init(h->engine)) {
		ENGINE_free(h->engine);
		h->engine = NULL;
		ota_say(msg, msglen, "%s: OpenSSL's pkcs11 engine does not start", what);
		return false;
	}
	h->key = ENGINE_load_private_key(h->engine, uri, NULL, NULL);
	if (!h->key) {
		e = ERR_peek_last_error();
		ota_say(msg, msglen, "%s: the pkcs11 engine cannot load the key (%s)", what,
		        e ? ERR_reason_error_string(e) : "no reason given");
		return false;
	}
	return true;
}

enum ota_err ota_pkcs11_open(const char *uri_text, const char *module, const char *pin_file,
                             const char *what, struct ota_pkcs11 **out, char *msg, size_t msglen)
{
	enum ota_err rc = OTA_ERR_CONFIG;
	struct ota_pkcs11 *h = NULL;
	CK_FUNCTION_LIST **mods = NULL;
	CK_FUNCTION_LIST *fn = NULL;
	CK_SLOT_ID slot = 0;
	P11KitUri *uri;
	char *pin = NULL;
	bool found;

	*out = NULL;
	uri = parse_uri(uri_text, what, msg, msglen);
	if (!uri)
		goto out;
	pin = read_pin(pin_file, what, msg, msglen);
	if (!pin)
		goto out;
	mods = load_modules(module, what, msg, msglen);
	if (!mods)
		goto out;
	/* The walk finishes (and the modules are finalised) before the engine loads the module
	 * again on its own, so the two never share one initialised module. */
	found = find_token(mods, uri, what, &fn, &slot, msg, msglen) &&
	        check_object(fn, slot, uri, pin, pin_file, what, msg, msglen);
	release_modules(mods, module[0] != '\0');
	if (!found)
		goto out;
	h = calloc(1, sizeof(*h));
	if (!h) {
		ota_say(msg, msglen, "out of memory");
		rc = OTA_ERR_NOMEM;
		goto out;
	}
	if (!load_engine_key(h, uri_text, module, pin, what, msg, msglen))
		goto out;
	*out = h;
	h = NULL;
	rc = OTA_OK;
out:
	ota_pkcs11_free(h);
	if (pin) {
		OPENSSL_cleanse(pin, strlen(pin));
		free(pin);
	}
	p11_kit_uri_free(uri);
	return rc;
}

EVP_PKEY *ota_pkcs11_key(const struct ota_pkcs11 *h)
{
	return h ? h->key : NULL;
}

void ota_pkcs11_free(struct ota_pkcs11 *h)
{
	if (!h)
		return;
	EVP_PKEY_free(h->key);
	if (h->engine) {
		ENGINE_finish(h->engine);
		ENGINE_free(h->engine);
	}
	free(h);
}
