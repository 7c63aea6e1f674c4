/*
 * Reading the state records of older agents. Format 1 (the first agent) and format 2 (delta
 * updates) are frozen below exactly as those agents wrote them; a device whose agent arrives
 * by an update finds such a record and keeps what it holds: the security floor, the persisted
 * root (which had no time role and no server CA pins), the update in progress, the outcome not
 * yet told and the reports not yet acknowledged, and for format 2 the delta in progress and the
 * health counters. The conversion runs in place in the caller's struct fwa_state, which is
 * larger than any older record: the old bytes are read into its start, checked as the old
 * agent checked them, and each field is moved to its current place from the last to the first
 * (fields were only ever inserted, so none moves backwards), then every byte no old field fills
 * is zeroed. Nothing is written here: the caller writes the converted record into the other
 * area, so the old copy stays valid until the new one is whole.
 */
#include <string.h>

#include "state.h"

/* ---- frozen layouts: never edit these, they are what is in the field ---- */

struct old_key {
	char id[65];
	uint8_t spki[91];
};

struct old_role {
	uint8_t nkeys;
	uint8_t threshold;
	uint8_t key[8];
};

/* The root of formats 1 and 2: no time role, no server CA pins. */
struct old_root {
	uint32_t version;
	int64_t expires;
	uint8_t nkeys;
	struct old_key keys[16];
	struct old_role root;
	struct old_role release;
	uint8_t digest[32];
};

struct old_event {
	uint32_t seq;
	uint32_t progress;
	uint8_t status;
	uint8_t on_target;
	char reason[64];
};

struct old_delta_params {
	uint32_t base_size;
	uint32_t target_size;
	uint32_t delta_size;
	uint8_t head_sha256[32];
};

struct old_delta_ckpt {
	uint32_t in_off;
	uint32_t out_off;
	uint32_t base_pos;
	uint8_t next_sha256[32];
	uint8_t wbits, lbits;
	uint8_t pad[2];
};

/* The fields both formats start with. */
#define OLD_HEAD                                                                                   \
	uint32_t magic;                                                                            \
	uint32_t format;                                                                           \
	uint32_t seq;                                                                              \
	uint32_t floor;                                                                            \
	uint8_t phase;                                                                             \
	uint8_t trial_slot;                                                                        \
	uint8_t outcome;                                                                           \
	uint8_t nevents;                                                                           \
	uint32_t next_seq;                                                                         \
	uint32_t target_secver;                                                                    \
	uint32_t image_size;                                                                       \
	uint32_t dl_offset;                                                                        \
	uint8_t has_root;                                                                          \
	uint8_t outcome_told;                                                                      \
	uint8_t trial_tries;                                                                       \
	uint8_t pad; /* format 2: health_boots (0 before the agent counted health) */              \
	uint8_t image_sha256[32];                                                                  \
	uint8_t manifest_digest[32];                                                               \
	char dep_id[65];                                                                           \
	char base_version[65];                                                                     \
	char target_version[65];                                                                   \
	char image_url[161];                                                                       \
	char outcome_reason[64];

struct old_state_v1 {
	OLD_HEAD
	struct old_event events[8];
	struct old_root root;
	uint32_t crc;
};

struct old_state_v2 {
	OLD_HEAD
	uint8_t delta;
	uint8_t pad2[3]; /* health_wdt, health_failed, health_open (0 before health counting) */
	struct old_delta_params delta_params;
	struct old_delta_ckpt delta_ck;
	char delta_url[161];
	struct old_event events[8];
	struct old_root root;
	uint32_t crc;
};

/* The layouts as the old agents' compilers laid them out (the same on x86-64 and ARM EABI). */
_Static_assert(offsetof(struct old_state_v1, events) == 524 &&
                   offsetof(struct old_state_v1, root) == 1136 &&
                   offsetof(struct old_state_v1, root.digest) == 3669 &&
                   offsetof(struct old_state_v1, crc) == 3704 &&
                   sizeof(struct old_state_v1) == 3712,
               "format 1 layout");
_Static_assert(offsetof(struct old_state_v2, delta) == 524 &&
                   offsetof(struct old_state_v2, delta_params) == 528 &&
                   offsetof(struct old_state_v2, delta_ck) == 572 &&
                   offsetof(struct old_state_v2, delta_url) == 620 &&
                   offsetof(struct old_state_v2, events) == 784 &&
                   offsetof(struct old_state_v2, root) == 1392 &&
                   offsetof(struct old_state_v2, root.digest) == 3925 &&
                   offsetof(struct old_state_v2, crc) == 3960 &&
                   sizeof(struct old_state_v2) == 3968,
               "format 2 layout");
_Static_assert(sizeof(struct old_state_v2) <= sizeof(struct fwa_state) &&
                   sizeof(struct old_state_v1) <= sizeof(struct fwa_state),
               "an old record is converted inside a struct fwa_state");

/* ---- the map from each old field to its current place ---- */

struct move {
	uint16_t from, to, len;
};

/* Old field `of` of `old` into current field `nf`; the sizes must agree. */
#define MOVE(old, of, nf)                                                                          \
	{                                                                                          \
		offsetof(struct old, of), offsetof(struct fwa_state, nf),                          \
		    sizeof(((struct old *)0)->of) +                                                \
		        0 * sizeof(char[sizeof(((struct old *)0)->of) ==                           \
		                                sizeof(((struct fwa_state *)0)->nf)                \
		                            ? 1                                                    \
		                            : -1])                                                 \
	}
#define SAME(old, f) MOVE(old, f, f)

#define HEAD_MOVES(old)                                                                            \
	SAME(old, magic), SAME(old, format), SAME(old, seq), SAME(old, floor), SAME(old, phase),   \
	    SAME(old, trial_slot), SAME(old, outcome), SAME(old, nevents), SAME(old, next_seq),    \
	    SAME(old, target_secver), SAME(old, image_size), SAME(old, dl_offset),                 \
	    SAME(old, has_root), SAME(old, outcome_told), SAME(old, trial_tries)
#define TEXT_MOVES(old)                                                                            \
	SAME(old, image_sha256), SAME(old, manifest_digest), SAME(old, dep_id),                    \
	    SAME(old, base_version), SAME(old, target_version), SAME(old, image_url),              \
	    SAME(old, outcome_reason)
#define TAIL_MOVES(old)                                                                            \
	SAME(old, events), SAME(old, root.version), SAME(old, root.expires),                       \
	    SAME(old, root.nkeys), SAME(old, root.keys), SAME(old, root.root),                     \
	    SAME(old, root.release), SAME(old, root.digest)

/* In increasing order of both offsets; the crc is not moved (the caller sets it). */
static const struct move v1_moves[] = {HEAD_MOVES(old_state_v1), TEXT_MOVES(old_state_v1),
                                       TAIL_MOVES(old_state_v1)};

static const struct move v2_moves[] = {
    HEAD_MOVES(old_state_v2),
    MOVE(old_state_v2, pad, health_boots),
    TEXT_MOVES(old_state_v2),
    SAME(old_state_v2, delta),
    MOVE(old_state_v2, pad2[0], health_wdt),
    MOVE(old_state_v2, pad2[1], health_failed),
    MOVE(old_state_v2, pad2[2], health_open),
    SAME(old_state_v2, delta_params),
    SAME(old_state_v2, delta_ck),
    SAME(old_state_v2, delta_url),
    TAIL_MOVES(old_state_v2),
};

struct old_format {
	uint32_t size;   /* bytes of the record */
	uint32_t crc_at; /* offset of its CRC, which covers every byte before it */
	const struct move *moves;
	unsigned nmoves;
};

static const struct old_format formats[] = {
    {sizeof(struct old_state_v1), offsetof(struct old_state_v1, crc), v1_moves,
     sizeof(v1_moves) / sizeof(v1_moves[0])},
    {sizeof(struct old_state_v2), offsetof(struct old_state_v2, crc), v2_moves,
     sizeof(v2_moves) / sizeof(v2_moves[0])},
};

#define OLD_FORMATS (sizeof(formats) / sizeof(formats[0])) /* formats 1 .. OLD_FORMATS */

_Static_assert(offsetof(struct old_state_v1, phase) == offsetof(struct old_state_v2, phase) &&
                   offsetof(struct old_state_v1, nevents) == offsetof(struct old_state_v2, nevents),
               "the checked fields sit alike in both formats");

static uint32_t get32(const uint8_t *b, size_t at)
{
	uint32_t v;

	memcpy(&v, b + at, sizeof(v));
	return v;
}

/* The format (1..OLD_FORMATS) of the old record in b if it decodes as its agent wanted, else 0. */
static unsigned old_valid(const uint8_t *b)
{
	uint32_t format = get32(b, offsetof(struct old_state_v1, format));
	const struct old_format *f;

	if (get32(b, 0) != FWA_STATE_MAGIC || format < 1 || format > OLD_FORMATS)
		return 0;
	f = &formats[format - 1];
	if (get32(b, f->crc_at) != fwa_crc32(b, f->crc_at) ||
	    b[offsetof(struct old_state_v1, phase)] >= FWA_PHASE__COUNT ||
	    b[offsetof(struct old_state_v1, nevents)] > FWA_OUTBOX_MAX ||
	    b[offsetof(struct old_state_v1, trial_slot)] > 1 ||
	    b[offsetof(struct old_state_v1, outcome)] >= FWA_ST__COUNT)
		return 0;
	return format;
}

/* Read the copy in `area` into b; *format gets its old format, 0 when it is none. */
static enum fwa_err old_read(const struct fwa_port *port, unsigned area, uint8_t *b,
                             unsigned *format)
{
	uint32_t f;

	*format = 0;
	if (port->state_read(port->ctx, area, 0, b, 8) != FWA_OK)
		return FWA_ERR_FLASH;
	f = get32(b, offsetof(struct old_state_v1, format));
	if (get32(b, 0) != FWA_STATE_MAGIC || f < 1 || f > OLD_FORMATS)
		return FWA_OK;
	if (port->state_read(port->ctx, area, 0, b, formats[f - 1].size) != FWA_OK)
		return FWA_ERR_FLASH;
	*format = old_valid(b);
	return FWA_OK;
}

enum fwa_err fwa_state_migrate(const struct fwa_port *port, struct fwa_state *out, unsigned *area,
                               unsigned *from)
{
	uint8_t *b = (uint8_t *)out;
	const struct old_format *f;
	unsigned f0, f1, i;
	uint32_t seq0, seq1, end;

	if (old_read(port, 1, b, &f1) != FWA_OK)
		return FWA_ERR_FLASH;
	seq1 = get32(b, offsetof(struct old_state_v1, seq));
	if (old_read(port, 0, b, &f0) != FWA_OK)
		return FWA_ERR_FLASH;
	seq0 = get32(b, offsetof(struct old_state_v1, seq));
	/* A newer format was written by a newer agent, whatever the sequence numbers say. */
	if (f0 && (f0 > f1 || (f0 == f1 && (int32_t)(seq0 - seq1) > 0))) {
		*area = 0;
	} else if (f1) {
		if (old_read(port, 1, b, &f0) != FWA_OK)
			return FWA_ERR_FLASH;
		if (f0 != f1)
			return FWA_ERR_STATE; /* changed under us: treat as unreadable */
		*area = 1;
	} else {
		return FWA_ERR_STATE;
	}
	*from = f0;
	f = &formats[f0 - 1];
	for (i = f->nmoves; i-- > 0;)
		memmove(b + f->moves[i].to, b + f->moves[i].from, f->moves[i].len);
	for (i = 0, end = 0; i < f->nmoves; i++) {
		memset(b + end, 0, f->moves[i].to - end);
		end = (uint32_t)f->moves[i].to + f->moves[i].len;
	}
	memset(b + end, 0, sizeof(*out) - end);
	out->format = FWA_STATE_FORMAT;
	out->crc = fwa_crc32(out, offsetof(struct fwa_state, crc));
	return FWA_OK;
}
