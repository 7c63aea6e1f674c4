# shellcheck shell=bash
# Shared by bench/delta and bench/delta-rp2350 (sourced, not run): the LZSS settings they
# measure and the figures of one image pair.

# The LZSS settings (W:L) measured; the first is the encoder's default (docs/formats.md).
# shellcheck disable=SC2034 # used by the scripts that source this file
DELTA_SETTINGS="10:6 8:4 11:8 12:8 12:10"

# delta_pair TOOL BASE TARGET NAME OUT [W:L ...]: prints the target's full size, gzip -9 and
# xz -9e of it, then one line of TOOL (ota-bench-delta, which decodes each delta again and
# checks it) per setting, and the first setting on the target alone (no base: what the diff
# itself is worth). Writes the delta of the first setting to OUT and leaves the three sizes
# of the target in PAIR_FULL, PAIR_GZIP and PAIR_XZ. Fails when TOOL does.
delta_pair() {
	local tool=$1 base=$2 target=$3 name=$4 out=$5
	shift 5
	PAIR_FULL=$(stat -c %s "$target")
	PAIR_GZIP=$(gzip -9 -c "$target" | wc -c)
	PAIR_XZ=$(xz -9e -c "$target" | wc -c)
	echo "pair $(basename "$base" .bin) -> $name: full image $PAIR_FULL bytes," \
		"gzip -9 $PAIR_GZIP, xz -9e $PAIR_XZ"
	"$tool" "$base" "$target" --out "$out" "$@" | sed "s/^/  $name: /"
	"$tool" /dev/null "$target" "$1" | head -1 | sed "s/^/  $name, no base: /"
}
