#!/usr/bin/env bash
# Installs the Debian packages the project builds, runs and tests with. Idempotent and
# non-interactive: only what is missing is installed, so a second run costs a dpkg query.
set -euo pipefail

pkgs=(
	build-essential cmake pkg-config git procps
	libmicrohttpd-dev libgnutls28-dev gnutls-bin
	libsqlite3-dev sqlite3
	postgresql libpq-dev haproxy
	libjansson-dev libssl-dev openssl
	libdivsufsort-dev
	libsystemd-dev systemd
	libp11-kit-dev p11-kit-modules libengine-pkcs11-openssl softhsm2 opensc
	libcmocka-dev libcurl4-openssl-dev curl jq yq clang-format
	clang libclang-rt-14-dev
	gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm
	nginx apache2-utils
	chromium chromium-driver python3-selenium
	lintian man-db bsdutils
	nodejs
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# npm comes with some builds of nodejs; Debian's own nodejs needs its npm package.
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -ne 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		sudo=sudo
	else
		sudo=
	fi
	echo "install-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

# The API contract test's validator (tests/contract), exactly as its package-lock.json pins it:
# installed once here so that the npm cache holds it and the test runs `npm ci --offline`.
contract=$(cd "$(dirname "$0")/../tests/contract" && pwd)
(cd "$contract" && npm ci --offline --no-audit --no-fund >/dev/null 2>&1) ||
	(cd "$contract" && npm ci --no-audit --no-fund)
