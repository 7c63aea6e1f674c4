/*
 * semver.c - Semantic Versioning 2.0.0: validation of release versions and their precedence,
 * which orders releases for people and rollouts (the security_version alone decides what a
 * device may run).
 */
#include <stdint.h>
#include <string.h>

#include "fwa/verify.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_ident(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

/* A numeric identifier: digits, no leading zero unless it is "0". */
static bool numeric(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_digit(s[i]))
			return false;
	return n == 1 || s[0] != '0';
}

/* Dot-separated non-empty identifiers; numeric ones without leading zeros when `pre`. */
static bool idents(const char *s, size_t n, bool pre)
{
	size_t i = 0;

	if (n == 0)
		return false;
	while (i <= n) {
		size_t b = i;
		bool alldig = true;
		while (i < n && s[i] != '.') {
			if (!is_ident(s[i]))
				return false;
			if (!is_digit(s[i]))
				alldig = false;
			i++;
		}
		if (i == b)
			return false;
		if (pre && alldig && !numeric(s + b, i - b))
			return false;
		i++;
	}
	return true;
}

bool fwa_semver_valid(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0 || len > FWA_SEMVER_MAX)
		return false;
	for (int part = 0; part < 3; part++) {
		size_t b = i;
		while (i < len && is_digit(s[i]))
			i++;
		if (!numeric(s + b, i - b) || i - b > 9)
			return false;
		if (part < 2) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
	}
	size_t pre_b = i, pre_e = i;
	if (i < len && s[i] == '-') {
		pre_b = ++i;
		while (i < len && s[i] != '+')
			i++;
		pre_e = i;
		if (!idents(s + pre_b, pre_e - pre_b, true))
			return false;
	}
	if (i < len && s[i] == '+') {
		i++;
		if (!idents(s + i, len - i, false))
			return false;
		i = len;
	}
	return i == len;
}

static uint32_t num(const char *s, size_t n)
{
	uint32_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = v * 10 + (uint32_t)(s[i] - '0');
	return v;
}

/* Length of the leading run of s up to (not including) any of the stop characters. */
static size_t span_to(const char *s, const char *stop)
{
	size_t n = 0;

	while (s[n] && !strchr(stop, s[n]))
		n++;
	return n;
}

static int cmp_u32(uint32_t a, uint32_t b)
{
	return a < b ? -1 : a > b;
}

int fwa_semver_cmp(const char *a, const char *b)
{
	bool va = fwa_semver_valid(a, strlen(a));
	bool vb = fwa_semver_valid(b, strlen(b));

	if (!va || !vb)
		return (int)va - (int)vb;
	for (int part = 0; part < 3; part++) {
		size_t na = span_to(a, ".-+"), nb = span_to(b, ".-+");
		int c = cmp_u32(num(a, na), num(b, nb));
		if (c)
			return c;
		a += na;
		b += nb;
		if (part < 2) {
			a++;
			b++;
		}
	}
	/* A pre-release has lower precedence than the normal version. */
	bool pa = *a == '-', pb = *b == '-';
	if (!pa || !pb)
		return (int)pb - (int)pa;
	a++;
	b++;
	for (;;) {
		size_t na = span_to(a, ".+"), nb = span_to(b, ".+");
		if (na == 0 || nb == 0)
			return na == nb ? 0 : na == 0 ? -1 : 1; /* fewer fields first */
		bool da = numeric(a, na);
		bool db = numeric(b, nb);
		int c;
		if (da && db) {
			c = cmp_u32(num(a, na), num(b, nb));
		} else if (da != db) {
			c = da ? -1 : 1; /* numeric identifiers sort before alphanumeric */
		} else {
			size_t n = na < nb ? na : nb;
			c = memcmp(a, b, n);
			if (c == 0)
				c = na < nb ? -1 : na > nb;
			else
				c = c < 0 ? -1 : 1;
		}
		if (c)
			return c;
		a += na;
		b += nb;
		if (*a == '.')
			a++;
		if (*b == '.')
			b++;
	}
}
