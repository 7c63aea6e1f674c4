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
echo "signer_cli: all checks passed"
