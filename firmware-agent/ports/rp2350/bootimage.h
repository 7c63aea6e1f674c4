/*
 * bootimage.h - what the RP2350 bootrom says of an image, read without the Pico SDK so that
 * it is tested on the host and on the emulated Cortex-M33: the try-before-you-buy flag of an
 * image's IMAGE_DEF block (an image delivered as an update must be a TBYB image, else it would
 * boot without a trial), and the boot diagnostic word turned into the reason a trial image was
 * not run.
 */
#ifndef FWA_RP2350_BOOTIMAGE_H
#define FWA_RP2350_BOOTIMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "fwa/err.h"

/* The bootrom looks for an image's first block within its first 4 KiB. */
#define FWA_RP2350_IMAGE_HEAD 4096u

/*
 * Check the first block of the image whose first len bytes (up to FWA_RP2350_IMAGE_HEAD) are at
 * head: FWA_OK when it is an executable IMAGE_DEF with the TBYB flag. FWA_ERR_MALFORMED when no
 * well-formed block with an image type is found (not an RP2350 image) or the image is not an
 * executable; FWA_ERR_BUSY when it is an executable without the TBYB flag (it would run
 * without a trial). *why (optional) says which. Reads only head[0..len).
 */
FWA_WUR enum fwa_err fwa_rp2350_image_check_tbyb(const uint8_t *head, size_t len, const char **why);

/*
 * The reason, from the boot diagnostic word of a normal boot (rom_get_boot_info), why the
 * bootrom did not run the image in `slot` (0: partition A, the low half-word; 1: B, the high
 * one): no valid image, a signature or hash that did not verify, or a failed boot condition
 * (such as a rollback version below the OTP floor). NULL when the diagnostic says nothing
 * against it. The string is static.
 */
const char *fwa_rp2350_diagnostic_reason(uint32_t diagnostic, unsigned slot);

#endif
