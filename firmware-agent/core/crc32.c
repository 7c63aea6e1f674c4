/*
 * The CRC-32 that seals every state record, the current format's (core/state.c) and the older
 * agents' ones read for migration (core/state_migrate.c); in its own file so that both use it
 * without depending on each other.
 */
#include "state.h"

uint32_t fwa_crc32(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t crc = 0xffffffffu;
	size_t i;
	int k;

	for (i = 0; i < len; i++) {
		crc ^= p[i];
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}
