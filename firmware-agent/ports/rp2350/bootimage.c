/*
 * bootimage.c - the RP2350 bootrom's view of an image, freestanding (bootimage.h): the TBYB
 * flag of the first IMAGE_DEF block, and the boot diagnostic as a reason. The constants are
 * the Pico SDK's (boot/picobin.h, boot/bootrom_constants.h), repeated here so that this file
 * builds and is tested without the SDK; the firmware build checks they still agree.
 */
#include <string.h>

#include "bootimage.h"

#define BLOCK_MARKER_START 0xffffded3u /* PICOBIN_BLOCK_MARKER_START */
#define BLOCK_MARKER_END 0xab123579u   /* PICOBIN_BLOCK_MARKER_END */
#define ITEM_IMAGE_TYPE 0x42u          /* PICOBIN_BLOCK_ITEM_1BS_IMAGE_TYPE */
#define ITEM_LAST 0xffu                /* PICOBIN_BLOCK_ITEM_2BS_LAST */
#define ITEM_2BS 0x80u                 /* items whose size takes two bytes */
#define IMAGE_TYPE_BITS 0x000fu        /* PICOBIN_IMAGE_TYPE_IMAGE_TYPE_BITS */
#define IMAGE_TYPE_EXE 0x1u            /* PICOBIN_IMAGE_TYPE_IMAGE_TYPE_EXE */
#define IMAGE_TYPE_TBYB 0x8000u        /* PICOBIN_IMAGE_TYPE_EXE_TBYB_BITS */

#define DIAG_VALID_IMAGE_DEF 0x0008u   /* BOOT_DIAGNOSTIC_VALID_IMAGE_DEF */
#define DIAG_CONSIDERED 0x0020u        /* BOOT_DIAGNOSTIC_CONSIDERED */
#define DIAG_CHOSEN 0x0040u            /* BOOT_DIAGNOSTIC_CHOSEN */
#define DIAG_KEY_FOR_VERIFY 0x0400u    /* BOOT_DIAGNOSTIC_IMAGE_DEF_MATCHING_KEY_FOR_VERIFY */
#define DIAG_HASH_FOR_VERIFY 0x0800u   /* BOOT_DIAGNOSTIC_IMAGE_DEF_HASH_FOR_VERIFY */
#define DIAG_VERIFIED_OK 0x1000u       /* BOOT_DIAGNOSTIC_IMAGE_DEF_VERIFIED_OK */
#define DIAG_CONDITION_FAILURE 0x8000u /* BOOT_DIAGNOSTIC_IMAGE_CONDITION_FAILURE */

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * Walk the items of the block starting at head[at] (its start marker). Returns 1 and the image
 * type flags when the block is well formed and has an image type item, 0 when it is well
 * formed without one, -1 when it is not a well-formed block.
 */
static int block_image_type(const uint8_t *head, size_t len, size_t at, uint32_t *flags)
{
	size_t p = at + 4;
	int found = 0;

	while (p + 4 <= len) {
		uint32_t w = le32(head + p);
		uint32_t type = w & 0xffu;
		uint32_t words = type & ITEM_2BS ? (w >> 8) & 0xffffu : (w >> 8) & 0xffu;

		if (type == ITEM_LAST) {
			/* Then the link to the next block, and the end marker. */
			if (p + 12 > len || le32(head + p + 8) != BLOCK_MARKER_END)
				return -1;
			return found;
		}
		if (words == 0 || words > (len - p) / 4)
			return -1;
		if (type == ITEM_IMAGE_TYPE && words == 1 && !found) {
			*flags = w >> 16;
			found = 1;
		}
		p += (size_t)words * 4;
	}
	return -1;
}

enum fwa_err fwa_rp2350_image_check_tbyb(const uint8_t *head, size_t len, const char **why)
{
	const char *dummy;
	uint32_t flags = 0;

	if (!why)
		why = &dummy;
	if (len > FWA_RP2350_IMAGE_HEAD)
		len = FWA_RP2350_IMAGE_HEAD;
	for (size_t at = 0; head && at + 4 <= len; at += 4) {
		if (le32(head + at) != BLOCK_MARKER_START)
			continue;
		int r = block_image_type(head, len, at, &flags);
		if (r < 0)
			continue; /* the marker's bytes inside code or data: look further */
		if (r == 0)
			continue; /* a block without an image type (a partition table) */
		if ((flags & IMAGE_TYPE_BITS) != IMAGE_TYPE_EXE) {
			*why = "the image is not an executable";
			return FWA_ERR_MALFORMED;
		}
		if (!(flags & IMAGE_TYPE_TBYB)) {
			*why =
			    "the image is not a try-before-you-buy image: it would run without a "
			    "trial";
			return FWA_ERR_BUSY;
		}
		*why = NULL;
		return FWA_OK;
	}
	*why = "no RP2350 image definition in the image's first 4 KiB";
	return FWA_ERR_MALFORMED;
}

const char *fwa_rp2350_diagnostic_reason(uint32_t diagnostic, unsigned slot)
{
	uint32_t d = slot ? diagnostic >> 16 : diagnostic & 0xffffu;

	if (d & DIAG_CHOSEN)
		return NULL;
	if (d & DIAG_CONDITION_FAILURE)
		return "the bootrom refused the trial image: a boot condition failed (rollback "
		       "version below the OTP floor)";
	if ((d & (DIAG_KEY_FOR_VERIFY | DIAG_HASH_FOR_VERIFY)) && !(d & DIAG_VERIFIED_OK))
		return "the bootrom refused the trial image: its signature or hash did not verify";
	if ((d & DIAG_CONSIDERED) && !(d & DIAG_VALID_IMAGE_DEF))
		return "the bootrom refused the trial image: no valid image definition";
	return NULL;
}
