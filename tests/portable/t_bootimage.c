/*
 * Portable tests of the RP2350 port's image checks (firmware-agent/ports/rp2350/bootimage.c):
 * the TBYB flag of an image's first IMAGE_DEF block, as the SDK lays it out (a block early in
 * the image: start marker, image type item, last item, link, end marker), with every damaged
 * or missing block refused; and the boot diagnostic word turned into a rollback reason. The
 * checks are freestanding, so they run on the host and on the emulated Cortex-M33.
 */
#include <string.h>

#include "bootimage.h"
#include "ptest.h"

static uint8_t img[FWA_RP2350_IMAGE_HEAD];

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* An image whose block at `at` has an image type item with `flags` (or none). */
static void image(size_t at, bool with_type, uint32_t flags)
{
	size_t p = at;

	for (size_t i = 0; i < sizeof(img); i++)
		img[i] = (uint8_t)(i * 13u + 5u); /* code-like filler */
	put32(img + p, 0xffffded3u);
	p += 4;
	if (with_type) {
		put32(img + p, 0x42u | 1u << 8 | flags << 16);
		p += 4;
	}
	put32(img + p, 0x03u | 2u << 8 | 0u << 16); /* a 2-word item the check skips */
	put32(img + p + 4, 0x12345678u);
	p += 8;
	put32(img + p, 0xffu | (with_type ? 3u : 2u) << 8); /* last item: words of items */
	put32(img + p + 4, 0);                              /* link: a loop of one block */
	put32(img + p + 8, 0xab123579u);
}

static void tbyb_flag(const struct ptest_kit *kit)
{
	const char *why = NULL;
	(void)kit;

	/* The SDK's TBYB executable: EXE, secure, ARM, RP2350, TBYB. */
	image(0x110, true, 0x1u | 0x2u << 4 | 0x1u << 8 | 0x8000u);
	PT_OK(fwa_rp2350_image_check_tbyb(img, sizeof(img), &why));
	/* The same without the flag: it would boot without a trial. */
	image(0x110, true, 0x1u | 0x2u << 4 | 0x1u << 8);
	PT_ERR(fwa_rp2350_image_check_tbyb(img, sizeof(img), &why), FWA_ERR_BUSY);
	PT_CHECK(why && strstr(why, "try-before-you-buy"));
	/* A data image. */
	image(0x110, true, 0x2u | 0x8000u);
	PT_ERR(fwa_rp2350_image_check_tbyb(img, sizeof(img), &why), FWA_ERR_MALFORMED);
	/* A block without an image type only (a partition table), nothing else. */
	image(0x110, false, 0);
	PT_ERR(fwa_rp2350_image_check_tbyb(img, sizeof(img), &why), FWA_ERR_MALFORMED);
	/* No block at all. */
	memset(img, 0, sizeof(img));
	PT_ERR(fwa_rp2350_image_check_tbyb(img, sizeof(img), &why), FWA_ERR_MALFORMED);
	PT_ERR(fwa_rp2350_image_check_tbyb(NULL, 0, &why), FWA_ERR_MALFORMED);
}

static void damaged_blocks(const struct ptest_kit *kit)
{
	(void)kit;

	/* No end marker. */
	image(0x110, true, 0x1u | 0x8000u);
	put32(img + 0x110 + 4 + 4 + 8 + 8, 0);
	PT_ERR(fwa_rp2350_image_check_tbyb(img, sizeof(img), NULL), FWA_ERR_MALFORMED);
	/* An item whose size runs past the head. */
	image(0x110, true, 0x1u | 0x8000u);
	put32(img + 0x110 + 8, 0x03u | 0xffu << 8);
	PT_ERR(fwa_rp2350_image_check_tbyb(img, sizeof(img), NULL), FWA_ERR_MALFORMED);
	/* A zero-sized item would loop for ever. */
	image(0x110, true, 0x1u | 0x8000u);
	put32(img + 0x110 + 8, 0x03u);
	PT_ERR(fwa_rp2350_image_check_tbyb(img, sizeof(img), NULL), FWA_ERR_MALFORMED);
	/* A block cut off by the end of what was read. */
	memset(img, 0, sizeof(img));
	put32(img + sizeof(img) - 8, 0xffffded3u);
	put32(img + sizeof(img) - 4, 0x42u | 1u << 8 | (0x1u | 0x8000u) << 16);
	PT_ERR(fwa_rp2350_image_check_tbyb(img, sizeof(img), NULL), FWA_ERR_MALFORMED);
	image(0x110, true, 0x1u | 0x8000u);
	PT_ERR(fwa_rp2350_image_check_tbyb(img, 0x110 + 20, NULL), FWA_ERR_MALFORMED);
	PT_OK(fwa_rp2350_image_check_tbyb(img, 0x110 + 32, NULL));
	/* A stray marker in code before the real block is passed over. */
	image(0x200, true, 0x1u | 0x8000u);
	put32(img + 0x40, 0xffffded3u);
	PT_OK(fwa_rp2350_image_check_tbyb(img, sizeof(img), NULL));
}

static void diagnostic_reasons(const struct ptest_kit *kit)
{
	(void)kit;

	/* Chosen, or nothing against it: no reason. */
	PT_CHECK(fwa_rp2350_diagnostic_reason(0x0068u, 0) == NULL);
	PT_CHECK(fwa_rp2350_diagnostic_reason(0, 1) == NULL);
	/* Partition B (the high half): a failed boot condition, e.g. the rollback version. */
	const char *r = fwa_rp2350_diagnostic_reason(0x0068u | (0x8000u | 0x0028u) << 16, 1);
	PT_CHECK(r && strstr(r, "OTP floor"));
	PT_CHECK(fwa_rp2350_diagnostic_reason(0x0068u | (0x8000u | 0x0028u) << 16, 0) == NULL);
	/* Partition A (the low half): a signature that did not verify. */
	r = fwa_rp2350_diagnostic_reason(0x0400u | 0x0028u, 0);
	PT_CHECK(r && strstr(r, "signature"));
	PT_CHECK(fwa_rp2350_diagnostic_reason(0x0400u | 0x1000u | 0x0028u, 0) == NULL);
	/* Considered without a valid image definition. */
	r = fwa_rp2350_diagnostic_reason(0x0020u << 16, 1);
	PT_CHECK(r && strstr(r, "no valid image"));
}

static const struct ptest_case cases[] = {
    {"tbyb_flag", tbyb_flag},
    {"damaged_blocks", damaged_blocks},
    {"diagnostic_reasons", diagnostic_reasons},
    {NULL, NULL},
};

const struct ptest_suite ptest_suite = {"bootimage", cases};
