/*
 * Unit tests of the agent's persistent state (core/state.c): CRC-32, the alternation between
 * the two areas, recovery from a torn or corrupted copy, sequence wrap-around, and refusal of
 * a geometry that cannot hold the record. The port is two plain memory areas with NOR rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "state.h"

#define AREA 4096u

static uint8_t area[2][AREA];
static unsigned erases, programs;

static enum fwa_err m_read(void *ctx, unsigned a, uint32_t off, void *buf, uint32_t len)
{
	(void)ctx;
	if (a > 1 || off + len > AREA)
		return FWA_ERR_FLASH;
	memcpy(buf, area[a] + off, len);
	return FWA_OK;
}

static enum fwa_err m_erase(void *ctx, unsigned a)
{
	(void)ctx;
	erases++;
	memset(area[a], 0xff, AREA);
	return FWA_OK;
}

static enum fwa_err m_program(void *ctx, unsigned a, uint32_t off, const void *data, uint32_t len)
{
	const uint8_t *d = data;

	(void)ctx;
	if (off % 256 || len % 256 || off + len > AREA)
		return FWA_ERR_FLASH;
	programs += len / 256;
	for (uint32_t i = 0; i < len; i++)
		area[a][off + i] &= d[i];
	return FWA_OK;
}

static struct fwa_port port = {
    .state_read = m_read, .state_erase = m_erase, .state_program = m_program};
static const struct fwa_flash_geometry geo = {
    .slot_size = 65536, .erase_size = 4096, .prog_size = 256, .state_size = AREA};

static int setup(void **state)
{
	(void)state;
	memset(area, 0xff, sizeof(area));
	erases = programs = 0;
	return 0;
}

static void test_crc32(void **state)
{
	(void)state;
	assert_int_equal(fwa_crc32("123456789", 9), 0xcbf43926u);
	assert_int_equal(fwa_crc32("", 0), 0);
}

static void test_fresh_and_alternation(void **state)
{
	struct fwa_state st, got;
	unsigned a = 1, from;

	(void)state;
	assert_int_equal(fwa_state_load(&port, &got, NULL), FWA_ERR_STATE);
	fwa_state_init(&st);
	st.floor = 7;
	assert_int_equal(fwa_state_save(&port, &geo, &st, &a), FWA_OK);
	assert_int_equal(a, 0);
	assert_int_equal(fwa_state_load(&port, &got, &from), FWA_OK);
	assert_int_equal(from, 0);
	assert_int_equal(got.floor, 7);
	assert_int_equal(got.seq, 1);
	st.floor = 8;
	assert_int_equal(fwa_state_save(&port, &geo, &st, &a), FWA_OK);
	assert_int_equal(a, 1);
	assert_int_equal(fwa_state_load(&port, &got, &from), FWA_OK);
	assert_int_equal(from, 1);
	assert_int_equal(got.floor, 8);
	/* One erase and ceil(sizeof / 256) programs per write. */
	assert_int_equal(erases, 2);
	assert_int_equal(programs, 2 * ((sizeof(st) + 255) / 256));
}

static void test_torn_write_keeps_old(void **state)
{
	struct fwa_state st, got;
	unsigned a = 1;

	(void)state;
	fwa_state_init(&st);
	st.floor = 1;
	assert_int_equal(fwa_state_save(&port, &geo, &st, &a), FWA_OK);
	st.floor = 2;
	assert_int_equal(fwa_state_save(&port, &geo, &st, &a), FWA_OK);
	/* The third write goes to area 0; tear it: erased, then half programmed. */
	memset(area[0], 0xff, AREA);
	memcpy(area[0], &st, 300);
	assert_int_equal(fwa_state_load(&port, &got, NULL), FWA_OK);
	assert_int_equal(got.floor, 2);
	/* A flipped bit in the newest copy: the older one wins. */
	assert_int_equal(fwa_state_load(&port, &got, &a), FWA_OK);
	area[1][100] ^= 0x10;
	assert_int_equal(fwa_state_load(&port, &got, NULL), FWA_ERR_STATE);
}

static void test_seq_wraps(void **state)
{
	struct fwa_state st, got;
	unsigned a = 1;

	(void)state;
	fwa_state_init(&st);
	st.seq = 0xfffffffeu;
	st.floor = 1;
	assert_int_equal(fwa_state_save(&port, &geo, &st, &a), FWA_OK); /* seq 0xffffffff */
	st.floor = 2;
	assert_int_equal(fwa_state_save(&port, &geo, &st, &a), FWA_OK); /* seq 0 */
	assert_int_equal(fwa_state_load(&port, &got, NULL), FWA_OK);
	assert_int_equal(got.seq, 0);
	assert_int_equal(got.floor, 2);
}

static void test_bad_geometry(void **state)
{
	struct fwa_state st;
	struct fwa_flash_geometry g = geo;
	unsigned a = 1;

	(void)state;
	fwa_state_init(&st);
	g.state_size = sizeof(st) - 1;
	assert_int_equal(fwa_state_save(&port, &g, &st, &a), FWA_ERR_STATE);
	g = geo;
	g.prog_size = 512;
	assert_int_equal(fwa_state_save(&port, &g, &st, &a), FWA_ERR_STATE);
	assert_int_equal(a, 1);
	assert_int_equal(erases, 0);
}

static void test_invalid_fields_refused(void **state)
{
	struct fwa_state st, got;
	unsigned a = 1;

	(void)state;
	/* A record whose CRC holds but whose phase is out of range is not trusted. */
	fwa_state_init(&st);
	st.phase = FWA_PHASE__COUNT;
	assert_int_equal(fwa_state_save(&port, &geo, &st, &a), FWA_OK);
	assert_int_equal(fwa_state_load(&port, &got, NULL), FWA_ERR_STATE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_crc32, setup),
	    cmocka_unit_test_setup(test_fresh_and_alternation, setup),
	    cmocka_unit_test_setup(test_torn_write_keeps_old, setup),
	    cmocka_unit_test_setup(test_seq_wraps, setup),
	    cmocka_unit_test_setup(test_bad_geometry, setup),
	    cmocka_unit_test_setup(test_invalid_fields_refused, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
