#!/usr/bin/env bash
# Deltas end to end: a real otad, real ota-agent processes and a delta made and signed by
# ota-sign at test time. The management API refuses every bad delta and changes nothing;
# device-0001, on the delta's base, gets the delta (far fewer bytes from otad than the full
# image); device-0002, on another version, gets the full image; both end on the target.
# device-0003 is offered a delta whose stored bytes were damaged: it reports "delta failed",
# falls back to the full image of the same deployment and still succeeds, and otad counts the
# failure and never offers that delta to it again. Deleting the delta removes its file.
#
# Needs: OTAD, OTA_SIGN, OTA_AGENT, OTACTL (binaries), OTA_SCRIPTS in the environment.
. "$(dirname "$0")/server_lib.sh"
. "$(dirname "$0")/agent_lib.sh"
: "${OTACTL:?OTACTL must name the otactl binary}"

# derive BASE VERSION SECURITY_VERSION OUT: the base image with a new version and a few
# changed payload bytes (a small code change), its CRCs recomputed (ports/posix/sim.h).
derive() {
	python3 - "$@" <<'PY'
import struct, sys, zlib
base, ver, sv, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
b = bytearray(open(base, 'rb').read())
b[16:81] = ver.encode().ljust(65, b'\0')
struct.pack_into('<I', b, 116, sv)
for off in (2000, 17000, 41000):
    b[256 + off:256 + off + 24] = bytes((x + 1) & 0xff for x in b[256 + off:256 + off + 24])
plen = struct.unpack_from('<I', b, 12)[0]
struct.pack_into('<I', b, 124, zlib.crc32(bytes(b[256:256 + plen])) & 0xffffffff)
struct.pack_into('<I', b, 128, zlib.crc32(bytes(b[0:128])) & 0xffffffff)
open(out, 'wb').write(b)
PY
}
json_post() { mcurl admin "$1" -H 'Content-Type: application/json' --data-binary @"$2"; }
# bytes otad answered device DEV for image SHA (its download log lines)
served() { { grep "device $1: image $2: " "$LOG" || true; } | awk '{s += $(NF-2)} END {print s + 0}'; }

make_pki
write_config
start_otad

"$OTA_AGENT" mkimage --version 1.0.0 --security-version 1 --hw pico2w --size 60000 "$T/base.img"
"$OTA_AGENT" mkimage --version 0.9.0 --security-version 1 --hw pico2w --size 60000 "$T/other.img"
derive "$T/base.img" 1.1.0 2 "$T/target.img"

agent_setup device-0001 "$T/base.img"
agent_setup device-0002 "$T/other.img"
agent_setup device-0003 "$T/base.img"
for d in device-0001 device-0002 device-0003; do
	agent $d once --timeout 60 2>"$T/$d-0.log" || fail "$d first check-in: $(cat "$T/$d-0.log")"
done

rel=$(sim_release "$T/target.img" 1.1.0 2)
rel_other=$(sim_release "$T/other.img" 0.9.1 1 2>/dev/null || true)
"$OTA_SIGN" delta --base "$T/base.img" --target "$T/target.img" --manifest "$T/fw-1.1.0.json" \
	--key "$T/release.key" --out "$T/d.fwad" >/dev/null || fail "ota-sign delta"
dsize=$(stat -c %s "$T/d.fwad")
[ "$dsize" -lt 30000 ] && ok || fail "delta of a small change is $dsize bytes"
r=$(mcurl admin /api/v1/images --data-binary @"$T/d.fwad" -H 'Content-Type: application/octet-stream')
expect "delta file uploaded" 201 "$(code_of "$r")"
dimg=$(jfield "$r" .sha256)
base_sha=$(sha256sum "$T/base.img" | cut -d' ' -f1)

# ---- bad deltas: a clear problem each, nothing changed ----
# a file of the right size whose first unit was altered, and one with a byte more
cp "$T/d.fwad" "$T/bad.fwad"
printf '\x55' | dd of="$T/bad.fwad" bs=1 seek=30 conv=notrunc 2>/dev/null
cmp -s "$T/d.fwad" "$T/bad.fwad" && printf '\xaa' | dd of="$T/bad.fwad" bs=1 seek=30 conv=notrunc 2>/dev/null
{ cat "$T/d.fwad"; printf 'x'; } >"$T/long.fwad"
r=$(mcurl admin /api/v1/images --data-binary @"$T/bad.fwad" -H 'Content-Type: application/octet-stream')
bad=$(jfield "$r" .sha256)
r=$(mcurl admin /api/v1/images --data-binary @"$T/long.fwad" -H 'Content-Type: application/octet-stream')
long=$(jfield "$r" .sha256)
before=$(db_digest)
r=$(json_post "/api/v1/releases/$rel/deltas?image=$bad" "$T/d.fwad.json")
expect "altered unit" "422 delta-mismatch the delta's first unit differs from the metadata's delta.sha256" \
	"$(code_of "$r") $(jfield "$r" .type | sed 's/.*://') $(jfield "$r" .detail)"
r=$(json_post "/api/v1/releases/$rel/deltas?image=$long" "$T/d.fwad.json")
expect "a byte more" "422 delta-mismatch" "$(code_of "$r") $(jfield "$r" .type | sed 's/.*://')"
r=$(json_post "/api/v1/releases/$rel/deltas" "$T/d.fwad.json")
expect "no ?image=" "400 invalid-field" "$(code_of "$r") $(jfield "$r" .type | sed 's/.*://')"
r=$(json_post "/api/v1/releases/$rel/deltas?image=$(printf '0%.0s' {1..64})" "$T/d.fwad.json")
expect "unknown delta file" "404 image-not-found" "$(code_of "$r") $(jfield "$r" .type | sed 's/.*://')"
r=$(json_post "/api/v1/releases/$(printf 'a%.0s' {1..64})/deltas?image=$dimg" "$T/d.fwad.json")
expect "unknown release" "404 release-not-found" "$(code_of "$r") $(jfield "$r" .type | sed 's/.*://')"
# the metadata's payload altered: its signature no longer verifies
jq -c '.payload |= (@base64d | sub("\"created\""; "\"created\" ") | @base64)' "$T/d.fwad.json" >"$T/forged.json"
r=$(json_post "/api/v1/releases/$rel/deltas?image=$dimg" "$T/forged.json")
expect "forged metadata" "422 delta-invalid" "$(code_of "$r") $(jfield "$r" .type | sed 's/.*://')"
# signed by a key the root does not trust
(cd "$T" && "$OTA_SIGN" keygen --out stranger >/dev/null)
"$OTA_SIGN" delta --base "$T/base.img" --target "$T/target.img" --manifest "$T/fw-1.1.0.json" \
	--key "$T/stranger.key" --out "$T/s.fwad" >/dev/null || fail "ota-sign delta (stranger)"
r=$(json_post "/api/v1/releases/$rel/deltas?image=$dimg" "$T/s.fwad.json")
expect "untrusted key" "422 delta-invalid" "$(code_of "$r") $(jfield "$r" .type | sed 's/.*://')"
# another file than the one the metadata names (the target image itself)
tsha=$(sha256sum "$T/target.img" | cut -d' ' -f1)
r=$(json_post "/api/v1/releases/$rel/deltas?image=$tsha" "$T/d.fwad.json")
expect "another file" "422 delta-mismatch" "$(code_of "$r") $(jfield "$r" .type | sed 's/.*://')"
# the metadata of another release
if [ -n "$rel_other" ]; then
	r=$(json_post "/api/v1/releases/$rel_other/deltas?image=$dimg" "$T/d.fwad.json")
	expect "another release" "422 delta-mismatch" "$(code_of "$r") $(jfield "$r" .type | sed 's/.*://')"
fi
r=$(mcurl admin "/api/v1/releases/$rel/deltas" -H 'Content-Type: application/json' -d '[1]')
expect "not an envelope" 400 "$(code_of "$r")"
expect "refusals changed nothing" "$before" "$(db_digest)"

# ---- register (otactl deltas upload), list, in use ----
ctl() {
	HOME=$T "$OTACTL" --server "https://127.0.0.1:$MPORT" --ca "$PKI/device-ca.pem" \
		--cert "$PKI/operator.pem" --key "$PKI/operator.key" "$@"
}
did=$(ctl -q deltas upload "$rel" "$T/d.fwad") || fail "otactl deltas upload"
r=$(mcurl admin "/api/v1/releases/$rel/deltas")
expect "delta facts" "$did $base_sha $dsize $dimg" \
	"$(jfield "$r" '.items[0] | "\(.id) \(.base_sha256) \(.size) \(.image_sha256)"')"
expect_match "otactl deltas list" "^$did +$base_sha +$dsize +0 +0 " "$(ctl deltas list "$rel" | sed -n 2p)"
r=$(json_post "/api/v1/releases/$rel/deltas?image=$dimg" "$T/d.fwad.json")
expect "same delta again" "200 $did" "$(code_of "$r") $(jfield "$r" .id)"
r=$(mcurl admin "/api/v1/releases/$rel/deltas")
expect "listed" "200 1 $did" "$(code_of "$r") $(jfield "$r" '.items | length') $(jfield "$r" '.items[0].id')"
r=$(mcurl admin "/api/v1/images/$dimg" -X DELETE)
expect "delta file in use" "409 in-use" "$(code_of "$r") $(jfield "$r" .type | sed 's/.*://')"
expect "audited" 1 "$(db "SELECT count(*) FROM audit_log WHERE action = 'delta.register'")"

# ---- device-0001 on the base gets the delta, device-0002 the full image ----
dep1=$(deploy device-0001 "$rel")
dep2=$(deploy device-0002 "$rel")
"$OTA_AGENT" --config "$T/device-0001/agent.conf" once --timeout 120 2>"$T/a1.log" &
AGENT_PIDS+=($!)
"$OTA_AGENT" --config "$T/device-0002/agent.conf" once --timeout 120 2>"$T/a2.log" &
AGENT_PIDS+=($!)
rc1=0; rc2=0
wait "${AGENT_PIDS[0]}" || rc1=$?
wait "${AGENT_PIDS[1]}" || rc2=$?
AGENT_PIDS=()
expect "device-0001 cycle" 0 "$rc1"
expect "device-0002 cycle" 0 "$rc2"
expect "device-0001 boots the target" "slot B version 1.1.0" "$(status_of device-0001 boots)"
expect "device-0002 boots the target" "slot B version 1.1.0" "$(status_of device-0002 boots)"
expect "deployment 1 succeeded" succeeded "$(db "SELECT status FROM deployments WHERE id='$dep1'")"
expect "deployment 2 succeeded" succeeded "$(db "SELECT status FROM deployments WHERE id='$dep2'")"
expect_match "device-0001 took the delta" "update accepted as a delta" "$(cat "$T/a1.log")"
expect "device-0001 no delta failure" 0 \
	"$(db "SELECT count(*) FROM deployment_events WHERE deployment_id='$dep1' AND reason LIKE 'delta%'")"
b1=$(( $(served device-0001 "$dimg") + $(served device-0001 "$tsha") ))
b2=$(( $(served device-0002 "$dimg") + $(served device-0002 "$tsha") ))
expect "device-0001 downloaded the delta alone" "$dsize 0" "$(served device-0001 "$dimg") $(served device-0001 "$tsha")"
expect "device-0002 downloaded the full image alone" "0 $(stat -c %s "$T/target.img")" \
	"$(served device-0002 "$dimg") $(served device-0002 "$tsha")"
[ "$b1" -gt 0 ] && [ $((b1 * 4)) -lt "$b2" ] && ok || fail "delta bytes $b1 not far below full $b2"
echo "delta_e2e: device on the base downloaded $b1 bytes, device on another version $b2"
# the delta's file is served to the device of the deployment only
r=$(dcurl device-0002 "/device/v1/images/$dimg" -o /dev/null)
expect "delta file not served to another device" 404 "$(code_of "$r")"

# ---- device-0003: the stored delta damaged; the device falls back and succeeds ----
python3 - "$DATA/images/$dimg" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[40] ^= 0xff   # inside the first unit: its SHA-256 no longer matches the metadata
open(p, 'wb').write(b)
PY
dep3=$(deploy device-0003 "$rel")
agent device-0003 once --timeout 120 2>"$T/a3.log" || fail "device-0003 cycle: $(tail -5 "$T/a3.log")"
expect "device-0003 boots the target" "slot B version 1.1.0" "$(status_of device-0003 boots)"
expect "deployment 3 succeeded" succeeded "$(db "SELECT status FROM deployments WHERE id='$dep3'")"
expect_match "device-0003 reported the failed delta" "^delta failed: " \
	"$(db "SELECT reason FROM deployment_events WHERE deployment_id='$dep3' AND reason LIKE 'delta%'")"
expect "device-0003 then took the full image" "$(stat -c %s "$T/target.img")" "$(served device-0003 "$tsha")"
r=$(mcurl admin "/api/v1/releases/$rel/deltas")
expect "failure counted" "1 0 1" "$(jfield "$r" '.items[0] | "\(.failed) \(.refused) \(.devices_failed)"')"
# a new deployment of the release: device-0003 is not offered the delta again, device-0001 is
offer_of() {
	checkin "$1" "{\"hw_variant\":\"pico2w\",\"version\":\"1.0.0\",\"security_floor\":1,\"root_version\":1,\"active_slot\":\"A\",\"boot_state\":\"normal\",\"active_image_sha256\":\"$base_sha\"}"
}
deploy device-0003 "$rel" >/dev/null
deploy device-0001 "$rel" >/dev/null
expect "not offered again where it failed" "update null" "$(jfield "$(offer_of device-0003)" '"\(.action) \(.update.delta)"')"
r=$(offer_of device-0001)
expect "still offered elsewhere" "update /device/v1/images/$dimg $dsize" \
	"$(jfield "$r" '"\(.action) \(.update.delta.url) \(.update.delta.size)"')"
r=$(checkin device-0001 "$(jq -c '.active_image_sha256 = "XYZ"' <<<"$CHECKIN")")
expect "bad active_image_sha256" 400 "$(code_of "$r")"

# ---- delete (otactl deltas delete): the record, its file, and the offer go ----
expect "delta deleted" "$did: deleted (and its file)" "$(ctl deltas delete "$rel" "$did")"
[ ! -e "$DATA/images/$dimg" ] && ok || fail "delta file left on disk"
r=$(mcurl admin "/api/v1/releases/$rel/deltas/$did" -X DELETE)
expect "deleted twice" "404 delta-not-found" "$(code_of "$r") $(jfield "$r" .type | sed 's/.*://')"
expect "no longer offered" "update null" "$(jfield "$(offer_of device-0001)" '"\(.action) \(.update.delta)"')"
r=$(dcurl device-0001 "/device/v1/images/$dimg" -o /dev/null)
expect "no longer served" 404 "$(code_of "$r")"
finish
