#!/usr/bin/env bash
# Builds the RP2350 agent firmware for the Pico 2 W against a Pico SDK 2.x checkout and
# prints the image sizes. Fails on any compiler warning.
#
#   PICO_SDK_PATH=/path/to/pico-sdk PICOTOOL=/path/to/picotool ports/rp2350/build.sh [build-dir]
#   PICO_SDK_PATH=/path/to/pico-sdk PICO_NO_PICOTOOL=1        ports/rp2350/build.sh [build-dir]
#
# Produces ota-agent-pico2w.elf and .bin, and with picotool also ota-agent-pico2w.uf2 and the
# partition table (partition_table.uf2 and .bin) made from partition_table.json.
#
# Settings (environment): VERSION (semver of the image, default 1.0.0), ROLLBACK (its rollback
# version = the release's security_version, default 0), TBYB (1: an update image, the default;
# 0: the factory image flashed first), SIGNING_KEY (PEM key for secure boot; needs picotool and
# ROLLBACK >= 1), TRIAL_DEADLINE_S (the agent's trial deadline, default 90), BUILD_TYPE
# (default MinSizeRel). Needs Pico SDK 2.1.0 or later; unsigned images are hashed when picotool
# is there. The default build directory is build-rp2350 in the current
# directory. Nothing is downloaded: the SDK (with its cyw43-driver, lwip, mbedtls and tinyusb
# submodules) and picotool must already be on this machine.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build-rp2350}
if [ -n "${SIGNING_KEY:-}" ] && [ "${ROLLBACK:-0}" = 0 ]; then
	# A bought image with a rollback version makes the bootrom require one for good; a signed
	# image without one would leave the OTP floor unused. docs/rp2350.md, "Anti-rollback".
	echo "build.sh: SIGNING_KEY needs ROLLBACK >= 1 (the release's security_version):" \
		"see docs/rp2350.md, Anti-rollback" >&2
	exit 1
fi

: "${PICO_SDK_PATH:?set PICO_SDK_PATH to a Pico SDK checkout (2.1.0 or later) with its submodules}"
for sub in lib/cyw43-driver/src lib/lwip/src lib/mbedtls/library lib/tinyusb/src; do
	if [ ! -d "$PICO_SDK_PATH/$sub" ]; then
		echo "build.sh: $PICO_SDK_PATH/$sub is missing (SDK submodules not checked out)" >&2
		exit 1
	fi
done

args=(-DPICO_SDK_PATH="$PICO_SDK_PATH"
	-DCMAKE_BUILD_TYPE="${BUILD_TYPE:-MinSizeRel}"
	-DFWA_RP2350_VERSION="${VERSION:-1.0.0}"
	-DFWA_RP2350_ROLLBACK="${ROLLBACK:-0}"
	-DFWA_RP2350_TRIAL_DEADLINE_S="${TRIAL_DEADLINE_S:-90}")
if [ "${TBYB:-1}" = 0 ]; then
	args+=(-DFWA_RP2350_TBYB=OFF)
else
	args+=(-DFWA_RP2350_TBYB=ON)
fi

picotool=
if [ "${PICO_NO_PICOTOOL:-0}" = 1 ]; then
	# Never let the SDK fetch and build picotool by itself.
	args+=(-DPICO_NO_PICOTOOL=1)
	if [ -n "${SIGNING_KEY:-}" ]; then
		echo "build.sh: SIGNING_KEY needs picotool" >&2
		exit 1
	fi
else
	: "${PICOTOOL:?set PICOTOOL to the picotool binary, or PICO_NO_PICOTOOL=1}"
	picotool=$(cd "$(dirname "$PICOTOOL")" && pwd)/$(basename "$PICOTOOL")
	if [ ! -x "$picotool" ] || [ ! -f "$(dirname "$picotool")/picotoolConfig.cmake" ]; then
		echo "build.sh: $PICOTOOL is not an installed picotool (picotoolConfig.cmake beside it)" >&2
		exit 1
	fi
	args+=(-Dpicotool_DIR="$(dirname "$picotool")")
fi
if [ -n "${SIGNING_KEY:-}" ]; then
	args+=(-DFWA_RP2350_SIGNING_KEY="$(cd "$(dirname "$SIGNING_KEY")" && pwd)/$(basename "$SIGNING_KEY")")
fi

mkdir -p "$build"
log="$build/build.log"
cmake -S "$here" -B "$build" "${args[@]}" >"$build/configure.log" 2>&1 || {
	cat "$build/configure.log" >&2
	exit 1
}
if grep -q 'CMake Warning' "$build/configure.log"; then
	grep -A4 'CMake Warning' "$build/configure.log" >&2
	echo "build.sh: configure warnings (see above)" >&2
	exit 1
fi
cmake --build "$build" -j "$(nproc)" >"$log" 2>&1 || {
	tail -n 60 "$log" >&2
	exit 1
}
if grep -E -q '(^|: )warning:' "$log"; then
	grep -E '(^|: )warning:' "$log" >&2
	echo "build.sh: the build printed warnings" >&2
	exit 1
fi

app="$build/ota-agent-pico2w"
if [ -n "$picotool" ]; then
	"$picotool" partition create "$here/partition_table.json" "$build/partition_table.uf2"
	"$picotool" partition create "$here/partition_table.json" "$build/partition_table.bin"
fi

sdk=$(sed -n 's/^-- Pico SDK \([0-9.]*\) at .*/\1/p' "$build/configure.log")
echo "Pico SDK $sdk, board pico2_w, version ${VERSION:-1.0.0}, rollback ${ROLLBACK:-0}," \
	"$([ "${TBYB:-1}" = 0 ] && echo "factory (not TBYB)" || echo "TBYB") image"
arm-none-eabi-size "$app.elf"
for f in "$app.elf" "$app.bin" "$app.uf2" "$build/partition_table.uf2" "$build/partition_table.bin"; do
	[ -f "$f" ] && printf '%10d  %s\n' "$(stat -c %s "$f")" "$f"
done
if [ -n "$picotool" ]; then
	"$picotool" info -a "$app.uf2" | grep -E 'tbyb|image type|sdk version|pico_board' | sort -u
fi
