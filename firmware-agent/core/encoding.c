/*
 * encoding.c - base64 (RFC 4648, standard alphabet, padded) and hex, the two text encodings of
 * signed metadata. Decoding is strict: no whitespace, padding required, and non-zero unused
 * bits rejected, so that each byte string has exactly one accepted encoding.
 */
#include <stdint.h>
#include <string.h>

#include "fwa/verify.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long fwa_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
	size_t n = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		int pad = 0;
		bool last = i + 4 == len;

		for (int k = 0; k < 4; k++) {
			if (in[i + k] == '=') {
				/* Padding only at the end of the last quantum, at most two. */
				if (!last || k < 2)
					return -1;
				pad++;
				v[k] = 0;
				continue;
			}
			if (pad)
				return -1;
			v[k] = b64val(in[i + k]);
			if (v[k] < 0)
				return -1;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
		             (uint32_t)v[3];
		size_t nb = 3 - (size_t)pad;
		/* Canonical form: the bits padding leaves unused must be zero. */
		if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
			return -1;
		if (n + nb > cap)
			return -1;
		out[n++] = (uint8_t)(w >> 16);
		if (nb > 1)
			out[n++] = (uint8_t)(w >> 8);
		if (nb > 2)
			out[n++] = (uint8_t)w;
	}
	return (long)n;
}

long fwa_base64_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
	size_t need = (len + 2) / 3 * 4;
	size_t n = 0;

	if (need > cap)
		return -1;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t w = (uint32_t)in[i] << 16;
		size_t rem = len - i;

		if (rem > 1)
			w |= (uint32_t)in[i + 1] << 8;
		if (rem > 2)
			w |= in[i + 2];
		out[n++] = b64[(w >> 18) & 63];
		out[n++] = b64[(w >> 12) & 63];
		out[n++] = rem > 1 ? b64[(w >> 6) & 63] : '=';
		out[n++] = rem > 2 ? b64[w & 63] : '=';
	}
	return (long)n;
}

void fwa_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum fwa_err fwa_unhex(const char *in, size_t hexlen, uint8_t *out)
{
	if (hexlen % 2 != 0)
		return FWA_ERR_MALFORMED;
	for (size_t i = 0; i < hexlen; i += 2) {
		int hi = hexval(in[i]);
		int lo = hexval(in[i + 1]);

		if (hi < 0 || lo < 0)
			return FWA_ERR_MALFORMED;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return FWA_OK;
}
