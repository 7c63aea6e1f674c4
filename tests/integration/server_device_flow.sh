#!/usr/bin/env bash
# Acceptance: a device with a valid certificate checks in, is offered exactly its deployment,
# downloads the image in two Range requests that join to the exact bytes, reports each step,
# and is recorded as succeeded only after its confirmed report. Also: another device is offered
# nothing; a device is never targeted with a release for another hardware variant or below
# its floor; a device with an older root gets the newer roots; a stop on SIGTERM is clean.
. "$(dirname "$0")/server_lib.sh"

make_pki
write_config
start_otad

# First check-in admits and pins the device; nothing to do yet.
r=$(checkin device-0001)
expect "first check-in status" 200 "$(code_of "$r")"
expect "first check-in action" none "$(jfield "$r" .action)"
pa=$(jfield "$r" .poll_after)
[ "$pa" -ge 270 ] && [ "$pa" -le 330 ] && ok || fail "poll_after $pa outside 300 +/- 10 %"
# The interval is spread: 8 more check-ins stay within +/- 10 % and do not all ask the same.
declare -A seen=(["$pa"]=1)
for _ in 1 2 3 4 5 6 7 8; do
	pa=$(jfield "$(checkin device-0001)" .poll_after)
	[ "$pa" -ge 270 ] && [ "$pa" -le 330 ] || fail "poll_after $pa outside 300 +/- 10 %"
	seen[$pa]=1
done
[ "${#seen[@]}" -ge 3 ] && ok || fail "poll_after spread over only ${#seen[@]} values in 9 check-ins"
expect "device admitted" "admitted" "$(db "SELECT status FROM devices WHERE id='device-0001'")"
fpr=$(openssl x509 -in "$PKI/device-0001.pem" -outform DER | sha256sum | cut -d' ' -f1)
expect "fingerprint pinned" "$fpr" "$(db "SELECT fingerprint FROM devices WHERE id='device-0001'")"
checkin device-0002 >/dev/null

head -c 200000 /dev/urandom >"$T/img.bin"
sha=$(sha256sum "$T/img.bin" | cut -d' ' -f1)
rel=$(release_of "$T/img.bin" 1.1.0 2)
dep=$(deploy device-0001 "$rel")
expect_match "deployment id" '^d-[0-9a-f]{32}$' "$dep"

# A second deployment for the same device is refused while one is active.
r=$(mcurl admin /api/v1/deployments -d "{\"device_id\":\"device-0001\",\"release_id\":\"$rel\"}")
expect "second active deployment" 409 "$(code_of "$r")"
expect "second active deployment type" "urn:ota:problem:deployment-active" "$(jfield "$r" .type)"

# Other variant and below-floor releases are never targeted.
head -c 1000 /dev/urandom >"$T/other.bin"
rel_other=$(release_of "$T/other.bin" 2.0.0 5 rp2040)
r=$(mcurl admin /api/v1/deployments -d "{\"device_id\":\"device-0002\",\"release_id\":\"$rel_other\"}")
expect "other hw variant refused" "409 urn:ota:problem:hw-variant-mismatch" "$(code_of "$r") $(jfield "$r" .type)"
head -c 1000 /dev/urandom >"$T/old.bin"
rel_old=$(release_of "$T/old.bin" 0.9.0 0)
r=$(mcurl admin /api/v1/deployments -d "{\"device_id\":\"device-0002\",\"release_id\":\"$rel_old\"}")
expect "below floor refused" "409 urn:ota:problem:below-security-floor" "$(code_of "$r") $(jfield "$r" .type)"
expect "no deployment for device-0002" 0 "$(db "SELECT count(*) FROM deployments WHERE device_id='device-0002'")"

# The device is offered exactly its deployment, with the manifest as signed.
r=$(checkin device-0001)
expect "offer action" update "$(jfield "$r" .action)"
expect "offer deployment" "$dep" "$(jfield "$r" .update.deployment_id)"
expect "offer image url" "/device/v1/images/$sha" "$(jfield "$r" .update.image_url)"
expect "offer image size" 200000 "$(jfield "$r" .update.image_size)"
expect "offer manifest payload" "$(jq -r .payload "$T/fw-1.1.0.json")" "$(jfield "$r" .update.manifest.payload)"
expect "offer manifest signature" "$(jq -r '.signatures[0].sig' "$T/fw-1.1.0.json")" "$(jfield "$r" '.update.manifest.signatures[0].sig')"
expect "no roots for a current device" null "$(jfield "$r" .roots)"
r=$(checkin device-0002)
expect "other device offered nothing" none "$(jfield "$r" .action)"

# Two Range requests join to the exact bytes.
url=/device/v1/images/$sha
h1=$(curl -sS --cacert "$PKI/device-ca.pem" --cert "$PKI/device-0001.pem" --key "$PKI/device-0001.key" \
	-r 0-65535 -D - -o "$T/part1" "https://127.0.0.1:$DPORT$url" | tr -d '\r')
expect_match "first range status" 'HTTP/1.1 206' "$h1"
expect_match "first range content-range" 'Content-Range: bytes 0-65535/200000' "$h1"
expect_match "etag" "ETag: \"$sha\"" "$h1"
h2=$(curl -sS --cacert "$PKI/device-ca.pem" --cert "$PKI/device-0001.pem" --key "$PKI/device-0001.key" \
	-r 65536- -H "If-Range: \"$sha\"" -D - -o "$T/part2" "https://127.0.0.1:$DPORT$url" | tr -d '\r')
expect_match "second range content-range" 'Content-Range: bytes 65536-199999/200000' "$h2"
expect "joined image" "$sha" "$(cat "$T/part1" "$T/part2" | sha256sum | cut -d' ' -f1)"
# A stale If-Range gets the whole image; a range past the end is 416.
h3=$(curl -sS --cacert "$PKI/device-ca.pem" --cert "$PKI/device-0001.pem" --key "$PKI/device-0001.key" \
	-r 100- -H 'If-Range: "stale"' -D - -o "$T/full" "https://127.0.0.1:$DPORT$url" | tr -d '\r')
expect_match "stale If-Range gives 200" 'HTTP/1.1 200' "$h3"
expect "stale If-Range gives the whole image" "$sha" "$(sha256sum <"$T/full" | cut -d' ' -f1)"
r=$(dcurl device-0001 "$url" -r 200000-)
expect "range past the end" 416 "$(code_of "$r")"
# Another device may not download it.
r=$(dcurl device-0002 "$url" -o /dev/null)
expect "image of another device's deployment" 404 "$(code_of "$r")"

# Every step is reported; success only after confirmed with the target version.
seq=0
for s in downloading downloaded installing rebooting trial; do
	seq=$((seq + 1))
	r=$(report device-0001 "$dep" "{\"seq\":$seq,\"status\":\"$s\",\"version\":\"1.0.0\",\"progress\":200000}")
	expect "report $s" "200 false active" "$(code_of "$r") $(jfield "$r" .duplicate) $(jfield "$r" .deployment_status)"
	expect "not succeeded after $s" active "$(db "SELECT status FROM deployments WHERE id='$dep'")"
done
r=$(report device-0001 "$dep" '{"seq":5,"status":"trial","version":"1.0.0","progress":200000}')
expect "retried report" "200 true" "$(code_of "$r") $(jfield "$r" .duplicate)"
expect "retried report stored once" 5 "$(db "SELECT count(*) FROM deployment_events WHERE deployment_id='$dep'")"
r=$(report device-0001 "$dep" '{"seq":6,"status":"confirmed","version":"1.1.0"}')
expect "confirmed" "200 succeeded" "$(code_of "$r") $(jfield "$r" .deployment_status)"
expect "recorded succeeded" succeeded "$(db "SELECT status FROM deployments WHERE id='$dep'")"
r=$(mcurl auditor "/api/v1/deployments/$dep")
expect "deployment read back" "200 succeeded 6" "$(code_of "$r") $(jfield "$r" .status) $(jfield "$r" '.events|length')"
r=$(checkin device-0001)
expect "after success nothing to do" none "$(jfield "$r" .action)"

# A confirmed boot of another version is a failure, not a success.
dep2=$(deploy device-0002 "$rel")
r=$(report device-0002 "$dep2" '{"seq":1,"status":"confirmed","version":"1.0.0"}')
expect "confirmed wrong version" failed "$(jfield "$r" .deployment_status)"

# An auditor may read but not write.
r=$(mcurl auditor /api/v1/deployments -d "{\"device_id\":\"device-0003\",\"release_id\":\"$rel\"}")
expect "auditor cannot deploy" "403 urn:ota:problem:forbidden" "$(code_of "$r") $(jfield "$r" .type)"

# Root rotation: a device with an older root gets every newer root, in order.
(cd "$T" && "$OTA_SIGN" root rotate --previous "$T/root-1.json" --sign root.key --out-dir "$T" >/dev/null)
r=$(mcurl admin /api/v1/roots --data-binary @"$T/root-2.json")
expect "root 2 accepted" "201 2" "$(code_of "$r") $(jfield "$r" .version)"
r=$(mcurl admin /api/v1/roots --data-binary @"$T/root-1.json")
expect "root 1 again refused" "422 urn:ota:problem:root-invalid" "$(code_of "$r") $(jfield "$r" .type)"
r=$(checkin device-0003)
expect "older device gets the roots" "1 $(jq -r .payload "$T/root-2.json")" "$(jfield "$r" '.roots|length') $(jfield "$r" '.roots[0].payload')"
r=$(checkin device-0003 "${CHECKIN/\"root_version\":1/\"root_version\":2}")
expect "current device gets no roots" null "$(jfield "$r" .roots)"

# SIGTERM: a clean stop, exit status 0; the roots survive a restart.
stop_otad && ok || fail "otad did not exit 0 on SIGTERM"
expect_match "stopped cleanly" "otad stopped" "$(cat "$LOG")"
start_otad
r=$(mcurl admin /api/v1/health)
expect "root version after restart" 2 "$(jfield "$r" .root_version)"
finish
