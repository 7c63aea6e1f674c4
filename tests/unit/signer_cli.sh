#!/usr/bin/env bash
# The ota-sign binary as a release manager runs it: exit statuses, one-line errors on stderr,
# and the README walk-through end to end. Usage: signer_cli.sh PATH-TO-ota-sign
set -euo pipefail
sign=$(realpath "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

fail() { echo "FAIL: $*" >&2; exit 1; }
expect_status() { # STATUS CMD...
	local want=$1; shift
	set +e; "$@" >out 2>err; local got=$?; set -e
	[ "$got" -eq "$want" ] || fail "$* exited $got, expected $want: $(cat err)"
}

expect_status 0 "$sign" --help
grep -q 'usage: ota-sign' out || fail "no usage text"
expect_status 2 "$sign"
expect_status 2 "$sign" nonsense

for k in root-a root-b release-a release-b; do
	expect_status 0 "$sign" keygen --out "$k"
	grep -Eq '^[0-9a-f]{64}$' out || fail "keygen did not print a key id"
done
[ "$(stat -c %a root-a.key)" = 600 ] || fail "private key mode"
expect_status 0 "$sign" root init --root-key root-a.pub --root-key root-b.pub --root-threshold 2 \
	--release-key release-a.pub --release-key release-b.pub --release-threshold 1 \
	--sign root-a.key --sign root-b.key --expires-in 30
head -c 100000 /dev/urandom >fw.bin
expect_status 0 "$sign" release --image fw.bin --name demo --version 2.0.0-rc.1 \
	--security-version 7 --hw-variant pico2w --key release-a.key --root root-1.json
expect_status 0 "$sign" verify --trusted-root root-1.json --manifest demo-2.0.0-rc.1.manifest.json \
	--image fw.bin --hw-variant pico2w
grep -q '^OK: demo 2.0.0-rc.1' out || fail "verify output: $(cat out)"

head -c 100000 /dev/urandom >other.bin
expect_status 1 "$sign" verify --trusted-root root-1.json --manifest demo-2.0.0-rc.1.manifest.json \
	--image other.bin
[ "$(wc -l <err)" -eq 1 ] || fail "error is not one line"
grep -q '(rule: manifest.image.sha256)' err || fail "hash rule not named: $(cat err)"
expect_status 1 "$sign" inspect fw.bin
[ "$(wc -l <err)" -eq 1 ] || fail "error is not one line"

# Deltas: made from an older image, checked with the agent's decoder, metadata signed.
cp fw.bin fw2.bin
printf 'patched' | dd of=fw2.bin bs=1 seek=5000 conv=notrunc 2>/dev/null
expect_status 0 "$sign" release --image fw2.bin --name demo --version 2.0.1 \
	--security-version 7 --hw-variant pico2w --key release-a.key --root root-1.json
expect_status 0 "$sign" delta --base fw.bin --target fw2.bin \
	--manifest demo-2.0.1.manifest.json --key release-a.key --root root-1.json --out fw2.fwad
grep -q '^wrote fw2.fwad: ' out || fail "delta output: $(cat out)"
[ -s fw2.fwad ] && [ "$(stat -c %s fw2.fwad)" -lt 10000 ] || fail "delta missing or too large"
expect_status 0 "$sign" inspect fw2.fwad.json
grep -q 'application/vnd.ota.delta+json' out || fail "delta metadata type: $(cat out)"
grep -q '^delta: ' out || fail "delta metadata not decoded: $(cat out)"
# The target must be the manifest's image; nothing is written on a refusal.
expect_status 1 "$sign" delta --base fw.bin --target other.bin \
	--manifest demo-2.0.1.manifest.json --key release-a.key --out bad.fwad
[ "$(wc -l <err)" -eq 1 ] || fail "error is not one line"
grep -q 'not the image of' err || fail "wrong target not named: $(cat err)"
[ ! -e bad.fwad ] && [ ! -e bad.fwad.json ] || fail "files written on a refusal"
# An existing output is never replaced; bad LZSS settings are usage errors.
expect_status 1 "$sign" delta --base fw.bin --target fw2.bin \
	--manifest demo-2.0.1.manifest.json --key release-a.key --out fw2.fwad
expect_status 2 "$sign" delta --base fw.bin --target fw2.bin \
	--manifest demo-2.0.1.manifest.json --key release-a.key --out x.fwad --window-bits 13
expect_status 2 "$sign" delta --base fw.bin --target fw2.bin --key release-a.key

# The time role and the server CA pins: set at init, kept, replaced or dropped by rotation.
expect_status 0 "$sign" keygen --out time-a
expect_status 0 "$sign" keygen --out time-b
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
	-out ca.pem -subj /CN=server-ca -days 30 2>/dev/null
pin=$(openssl x509 -in ca.pem -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum | cut -c1-64)
mkdir t
expect_status 0 "$sign" root init --root-key root-a.pub --root-threshold 1 \
	--release-key release-a.pub --release-threshold 1 --time-key time-a.pub \
	--server-ca ca.pem --sign root-a.key --out-dir t
expect_status 0 "$sign" inspect t/root-1.json
grep -q '^time role: threshold 1 of 1' out || fail "time role not shown: $(cat out)"
grep -q "^server CA pin: $pin" out || fail "server CA pin not the SPKI hash: $(cat out)"
expect_status 0 "$sign" root rotate --previous t/root-1.json --sign root-a.key
expect_status 0 "$sign" inspect t/root-2.json
grep -q '^time role' out && grep -q "^server CA pin: $pin" out || fail "rotation dropped extras"
expect_status 0 "$sign" root rotate --previous t/root-2.json --sign root-a.key --no-time-key \
	--no-server-ca
expect_status 0 "$sign" inspect t/root-3.json
! grep -q '^time role\|^server CA pin' out || fail "--no-time-key/--no-server-ca kept them"
# A time key that is also a release key, a time key with no-time-key, a CA that is no certificate.
expect_status 1 "$sign" root rotate --previous t/root-3.json --sign root-a.key \
	--time-key release-a.pub
grep -q 'root.roles.separation' err || fail "shared key not refused: $(cat err)"
expect_status 2 "$sign" root rotate --previous t/root-3.json --sign root-a.key \
	--time-key time-b.pub --no-time-key
expect_status 1 "$sign" root rotate --previous t/root-3.json --sign root-a.key --server-ca fw.bin
grep -q 'root.server_cas' err || fail "bad CA not refused: $(cat err)"
[ ! -e t/root-4.json ] || fail "root written on a refusal"
expect_status 2 "$sign" root init --root-key root-a.pub --root-threshold 1 \
	--release-key release-a.pub --release-threshold 1 --no-time-key --sign root-a.key
echo "signer_cli: all checks passed"
