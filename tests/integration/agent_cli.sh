#!/usr/bin/env bash
# ota-agent's command line and configuration: every bad input gets a clear error and an exit
# status that says so, and changes nothing on the simulated device; provisioning and status
# show what the device holds; an unreachable server leaves the device as it was.
#
# Needs: OTA_AGENT, OTA_SIGN (binaries) in the environment.
set -euo pipefail
: "${OTA_AGENT:?OTA_AGENT must name the ota-agent binary}"
: "${OTA_SIGN:?OTA_SIGN must name the ota-sign binary}"

T=$(mktemp -d "${TMPDIR:-/tmp}/agent-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
FAILS=0
CHECKS=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
ok() { CHECKS=$((CHECKS + 1)); }
expect() { if [ "$2" == "$3" ]; then ok; else fail "$1: expected [$2], got [$3]"; fi; }
expect_match() { if [[ $3 =~ $2 ]]; then ok; else fail "$1: [$3] does not match [$2]"; fi; }
# run CMD...: sets RC and OUT (stdout + stderr)
run() { RC=0; OUT=$("$@" 2>&1) || RC=$?; }

cd "$T"
# Test-time identity and root (nothing here is ever committed).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dev.key -out dev.pem \
	-subj /CN=device-0001 -days 2 2>/dev/null
"$OTA_SIGN" keygen --out root >/dev/null
"$OTA_SIGN" keygen --out release >/dev/null
"$OTA_SIGN" root init --root-key root.pub --root-threshold 1 --release-key release.pub \
	--release-threshold 1 --sign root.key --out-dir "$T" >/dev/null

base_conf() {
	cat <<CONF
server = https://127.0.0.1:1
cert = dev.pem
key = dev.key
ca = dev.pem
root = root-1.json
state_dir = state
hw_variant = pico2w
retry_min_ms = 100
retry_max_ms = 200
CONF
}
base_conf >agent.conf

# mkimage
run "$OTA_AGENT" mkimage --security-version 1 img
expect "mkimage without version" 64 "$RC"
run "$OTA_AGENT" mkimage --version 1.0 img
expect_match "mkimage bad semver" "semantic version" "$OUT"
run "$OTA_AGENT" mkimage --version 1.0.0 --fault sometimes img
expect "mkimage unknown fault" "64" "$RC"
expect_match "mkimage unknown fault message" "unknown fault 'sometimes'" "$OUT"
[ ! -e img ] && ok || fail "a refused mkimage wrote a file"
run "$OTA_AGENT" mkimage --version 1.0.0 --security-version 1 --hw pico2w --size 5000 factory.img
expect "mkimage" 0 "$RC"
expect "image size" 5256 "$(stat -c %s factory.img)"

# configuration
for bad in "colour = blue|unknown key 'colour'" "server = https://127.0.0.1:2|duplicate key 'server'" \
	"poll_s = 0|'poll_s' must be an integer" "image_format = s i m|'image_format' must be" \
	"just words|expected key = value" "slot_size = 12000|slot_size must be a multiple of 4096" \
	"debug = 2|'debug' must be an integer"; do
	line=${bad%%|*} msg=${bad#*|}
	{ base_conf; echo "$line"; } >bad.conf
	run "$OTA_AGENT" --config bad.conf status
	expect "config [$line] status" 1 "$RC"
	expect_match "config [$line] message" "bad.conf:[0-9]+: $msg" "$OUT"
done
base_conf | grep -v '^root' >bad.conf
run "$OTA_AGENT" --config bad.conf status
expect_match "missing key" "missing required key 'root'" "$OUT"
base_conf | sed 's|^server = .*|server = http://127.0.0.1:1|' >bad.conf
run "$OTA_AGENT" --config bad.conf status
expect_match "plain http refused" "server must be https://host:port" "$OUT"
run "$OTA_AGENT" --config agent.conf frobnicate
expect "unknown command" 64 "$RC"

# status before provisioning, a refused provisioning
run "$OTA_AGENT" --config agent.conf once
expect "once unprovisioned" 1 "$RC"
expect_match "once unprovisioned message" "provision the device first" "$OUT"
run "$OTA_AGENT" --config agent.conf status
expect "status unprovisioned" 1 "$RC"
expect_match "status unprovisioned message" "flash.bin" "$OUT"
head -c 3000 /dev/urandom >junk.img
run "$OTA_AGENT" --config agent.conf provision junk.img
expect "provision junk" 1 "$RC"
expect_match "provision junk message" "not a simulated image" "$OUT"
[ ! -e state/flash.bin ] && ok || fail "a refused provisioning left a flash file"

# provisioning and status
run "$OTA_AGENT" --config agent.conf provision factory.img
expect "provision" 0 "$RC"
run "$OTA_AGENT" --config agent.conf status
expect_match "status slot A" "slot A: version 1.0.0 security_version 1 fault none" "$OUT"
expect_match "status slot B" "slot B: no valid image" "$OUT"
expect_match "status boots" "boots: slot A version 1.0.0" "$OUT"
expect_match "status factory state" "state: none \\(factory\\)" "$OUT"
before=$(sha256sum state/flash.bin | cut -d' ' -f1)

# A root that does not verify: refused at start, nothing written.
cp root-1.json root-bad.json
sed -i 's/"sig": *"[A-Za-z0-9+\/]/&A/' root-bad.json
base_conf | sed 's|^root = .*|root = root-bad.json|' >badroot.conf
run "$OTA_AGENT" --config badroot.conf once --timeout 2
expect "bad root exit" 1 "$RC"
expect_match "bad root message" "provisioned root does not verify" "$OUT"

# An unreachable server: the cycle times out, backing off; the device is unchanged.
run "$OTA_AGENT" --config agent.conf once --timeout 2
expect "unreachable server exit" 2 "$RC"
expect_match "unreachable server message" "not finished within 2 s" "$OUT"
expect "flash unchanged" "$before" "$(sha256sum state/flash.bin | cut -d' ' -f1)"
run "$OTA_AGENT" --config agent.conf once --timeout 0
expect "bad timeout" 64 "$RC"

# One agent per device: a second process on the same state folder is refused.
"$OTA_AGENT" --config agent.conf once --timeout 3 2>/dev/null &
first=$!
sleep 0.5
run "$OTA_AGENT" --config agent.conf once --timeout 1
expect "second agent refused" 1 "$RC"
expect_match "second agent message" "another ota-agent runs on this state folder" "$OUT"
wait "$first" || true

echo "$(basename "$0"): $CHECKS checks passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
