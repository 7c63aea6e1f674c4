/*
 * time.c - RFC 3339 UTC timestamps ("YYYY-MM-DDTHH:MM:SSZ", the only form signed metadata uses)
 * to and from Unix seconds, with civil-calendar arithmetic that needs no libc.
 */
#include <stdint.h>

#include "fwa/verify.h"

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool digits(const char *s, unsigned n, unsigned *out)
{
	unsigned v = 0;

	for (unsigned i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return true;
}

enum fwa_err fwa_time_parse(const char *s, size_t len, int64_t *out)
{
	static const uint8_t mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	unsigned y, mo, d, h, mi, se;

	if (len != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':' || s[19] != 'Z')
		return FWA_ERR_MALFORMED;
	if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
	    !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
		return FWA_ERR_MALFORMED;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
	    se > 59)
		return FWA_ERR_MALFORMED;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return FWA_ERR_MALFORMED;
	*out = days_from_civil(y, mo, d) * 86400 + (int64_t)(h * 3600 + mi * 60 + se);
	return FWA_OK;
}

static void put2(char *o, unsigned v)
{
	o[0] = (char)('0' + v / 10);
	o[1] = (char)('0' + v % 10);
}

void fwa_time_format(int64_t t, char out[21])
{
	/* Clamp to what four year digits can say. */
	if (t < 0)
		t = 0;
	if (t > 253402300799)
		t = 253402300799; /* 9999-12-31T23:59:59Z */
	int64_t days = t / 86400;
	unsigned sec = (unsigned)(t % 86400);
	int64_t y;
	unsigned m, d;

	civil_from_days(days, &y, &m, &d);
	put2(out, (unsigned)(y / 100));
	put2(out + 2, (unsigned)(y % 100));
	out[4] = '-';
	put2(out + 5, m);
	out[7] = '-';
	put2(out + 8, d);
	out[10] = 'T';
	put2(out + 11, sec / 3600);
	out[13] = ':';
	put2(out + 14, sec / 60 % 60);
	out[16] = ':';
	put2(out + 17, sec % 60);
	out[19] = 'Z';
	out[20] = '\0';
}
