#!/usr/bin/env bash
# Runs otad in the foreground for development: `make run` calls it with the build folder.
# Makes dev/pki (scripts/dev-pki.sh) and dev/keys (signing keys and root-1.json, with ota-sign)
# if absent, writes dev/otad.conf and dev/otactl/config, prints otactl (and curl) lines that
# work as pasted, and runs otad with its SQLite database and images in dev/data. Ctrl-C stops
# it cleanly.
set -euo pipefail

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OTAD=$BUILD/server/otad
SIGN=$BUILD/signer/ota-sign
[ -x "$OTAD" ] || { echo "dev-run: $OTAD is not built (run: make build)" >&2; exit 1; }

DEV=dev
mkdir -p "$DEV/data" "$DEV/keys"
scripts/dev-pki.sh "$DEV/pki" >/dev/null

root_line="# root ="
if [ -x "$SIGN" ]; then
	if [ ! -f "$DEV/keys/root-1.json" ]; then
		(cd "$DEV/keys" &&
			"$ROOT/$SIGN" keygen --out root >/dev/null &&
			"$ROOT/$SIGN" keygen --out release >/dev/null &&
			"$ROOT/$SIGN" root init --root-key root.pub --root-threshold 1 \
				--release-key release.pub --release-threshold 1 --sign root.key \
				--expires-in 3650 --out-dir . >/dev/null)
	fi
	root_line="root = keys/root-1.json"
else
	echo "dev-run: $SIGN is not built; otad runs without a trusted root (no releases)" >&2
fi

cat >"$DEV/otad.conf" <<CONF
# Development configuration written by scripts/dev-run.sh (rewritten on every run).
[server]
data_dir = data
log_level = info
threads = 2

[tls]
cert = pki/server.pem
key = pki/server.key

[device]
listen = 127.0.0.1:8443
ca = pki/device-ca.pem
crl = pki/device-crl.pem
poll_interval = 60

[management]
listen = 127.0.0.1:9443
ca = pki/operator-ca.pem

[limits]
connection_timeout = 30

[trust]
$root_line
CONF

P=$DEV/pki
CTL=$BUILD/otactl/otactl
# otactl's settings for the lines below: the management API, the CA that verifies otad's
# certificate (the device CA issues it in this PKI), and the admin's certificate.
mkdir -p "$DEV/otactl"
cat >"$DEV/otactl/config" <<CONF
# otactl configuration written by scripts/dev-run.sh (rewritten on every run).
server = https://127.0.0.1:9443
ca = ../pki/device-ca.pem
cert = ../pki/admin.pem
key = ../pki/admin.key
CONF
cat <<EOT

otad development server: device API https://127.0.0.1:8443, management API https://127.0.0.1:9443
PKI in $P, signing keys in $DEV/keys, database and images in $DEV/data. Ctrl-C stops it.

Try (from $ROOT, in another terminal):

  # otactl, as admin (settings in $DEV/otactl/config; otactl --help lists every command)
  export OTACTL_CONFIG=$DEV/otactl/config
  $CTL config check

  # a device checks in (admitted on first use, its certificate pinned); this is the device API
  curl -sS -w '\\n' --cacert $P/device-ca.pem --cert $P/device-0001.pem --key $P/device-0001.key \\
    -H 'Content-Type: application/json' \\
    -d '{"hw_variant":"pico2w","version":"1.0.0","security_floor":0,"root_version":1,"active_slot":"A","boot_state":"normal"}' \\
    https://127.0.0.1:8443/device/v1/checkin
  $CTL devices list

  # upload an image, sign its manifest offline, register it, deploy it to device-0001
  # (then check in again: the answer is the update; a device has one deployment at a time)
  v=1.1.\$((\$(date +%s) % 1000000))
  head -c 100000 /dev/urandom > $DEV/fw-\$v.bin
  $CTL images upload $DEV/fw-\$v.bin
  $SIGN release --image $DEV/fw-\$v.bin --name fw --version \$v --security-version 1 --hw-variant pico2w --key $DEV/keys/release.key --out $DEV/fw-\$v.json
  rel=\$($CTL -q releases add $DEV/fw-\$v.json)
  $CTL deploy device-0001 \$rel

  # the same management API without otactl
  curl -sS -w '\\n' --cacert $P/device-ca.pem --cert $P/admin.pem --key $P/admin.key https://127.0.0.1:9443/api/v1/health

EOT
exec "$OTAD" --config "$DEV/otad.conf"
