#!/usr/bin/env bash
# Runs the operator's and the auditor's day of docs/operations.md exactly as written (the
# shell blocks between its doc-test markers) against a real otad whose devices wait under the
# pending policy, then checks what they did: so the guide and the server cannot drift apart.
source "$(dirname "$0")/server_lib.sh"
: "${OTA_AUDIT_VERIFY:?OTA_AUDIT_VERIFY must name ota-audit-verify}"
: "${OTACTL:?OTACTL must name otactl}"
doc=$(cd "$(dirname "$0")/../.." && pwd)/docs/operations.md

make_pki
write_config
sed -i 's/^\[device\]$/[device]\nadmission = pending/' "$CONF"
start_otad
for d in device-0001 device-0002 device-0003; do checkin $d >/dev/null; done
# The files the operator brings: an image and its manifest, signed offline.
mkdir -p "$T/work" "$T/bin"
head -c 4000 /dev/urandom >"$T/work/fw-1.1.0.bin"
"$OTA_SIGN" release --image "$T/work/fw-1.1.0.bin" --name fw --version 1.1.0 --security-version 2 \
	--hw-variant pico2w --key "$T/release.key" --out "$T/work/fw-1.1.0.json" >/dev/null
ln -s "$OTA_AUDIT_VERIFY" "$T/bin/ota-audit-verify"
ln -s "$OTACTL" "$T/bin/otactl"

block() { # NAME: the shell lines of that doc-test block
	awk -v n="$1" '$0 == "<!-- doc-test: " n " -->" {on = 1; next} on && /^<!-- \/doc-test -->/ {on = 0}
		on && /^```/ {next} on {print}' "$doc"
}
expect_match "the operator's day is in the guide" 'devices list --admission pending' "$(block operator)"
expect_match "the auditor's day is in the guide" 'ota-audit-verify' "$(block auditor)"
script="set -euo pipefail
$(block operator)
$(block auditor)"
out=$(cd "$T/work" && HOME="$T/work" OTA="https://127.0.0.1:$MPORT" PKI="$PKI" PATH="$T/bin:$PATH" bash -c "$script" 2>&1) && rc=0 || rc=$?
expect "the guide's commands all succeed" 0 "$rc"
[ "$rc" -eq 0 ] || echo "$out" | tail -20

expect "device-0002 approved and tagged" "approved line=3,plant-a" "$(db "SELECT admission, (SELECT group_concat(tag) FROM (SELECT tag FROM device_tags WHERE device_id = 'device-0002' ORDER BY tag) AS s) FROM devices WHERE id = 'device-0002'" | tr '|' ' ')"
expect "device-0003 decommissioned" decommissioned "$(db "SELECT status FROM devices WHERE id = 'device-0003'")"
expect "the release is registered" 1 "$(db "SELECT count(*) FROM releases WHERE version = '1.1.0'")"
expect_match "the CI token works" "[0-9a-f]{64} +fw +1.1.0 +2 +pico2w" "$out"
expect_match "the export verifies offline" 'OK: [0-9]+ entries' "$out"
expect "each change is in the audit log" 7 "$(db "SELECT count(DISTINCT action) FROM audit_log WHERE action IN ('device.approve', 'device.tags', 'device.decommission', 'image.upload', 'release.register', 'principal.create', 'token.create')")"
finish
