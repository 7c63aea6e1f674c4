#!/usr/bin/env bash
# Acceptance: otad on a full disk (docs/operations.md, "A full disk"). Its data folder is a
# small tmpfs this test mounts and fills. Then a check-in, a device report, an image upload and
# an audited management change each fail with a 503 storage-unavailable problem and
# Retry-After, nothing is acknowledged that was not stored, and the upload leaves no partial
# file; once space returns the same requests succeed without a restart, PRAGMA
# integrity_check is ok and the audit log verifies. A fresh database whose migrations do not
# fit refuses to start with a clear error, and starts once there is room.
# Needs root and tmpfs mounts (skipped, 77, otherwise).
. "$(dirname "$0")/server_lib.sh"

[ "$(id -u)" == 0 ] || { echo "SKIP: needs root to mount a small tmpfs"; exit 77; }
MNT=()
trap 'rc=$?; [ -z "$OTAD_PID" ] || { kill -TERM "$OTAD_PID"; wait "$OTAD_PID" || true; OTAD_PID=; };
	for m in "${MNT[@]}"; do umount -l "$m" 2>/dev/null || true; done; cleanup "$rc"' EXIT
mount_small() { # DIR SIZE
	mkdir -p "$1"
	mount -t tmpfs -o "size=$2" tmpfs "$1" 2>/dev/null || { echo "SKIP: cannot mount tmpfs"; exit 77; }
	MNT+=("$1")
}
fill() { dd if=/dev/zero of="$1/filler" bs=4k 2>/dev/null || true; }
problem_of() { echo "$(code_of "$1") $(jfield "$1" .type)"; }
# retry_after ARGS... : the Retry-After header of a device check-in or management call
headers_of() { local port=$1 name=$2 path=$3; shift 3
	curl -sS -o /dev/null -D - --max-time 20 --cacert "$PKI/device-ca.pem" \
		--cert "$PKI/$name.pem" --key "$PKI/$name.key" "$@" "https://127.0.0.1:$port$path" 2>/dev/null |
		tr -d '\r' | awk -F': ' 'tolower($1) == "retry-after" {print $2}' || true; }

make_pki
mount_small "$DATA" 24m
write_config
start_otad
expect "device-0001 admitted" 200 "$(code_of "$(checkin device-0001)")"
expect "device-0002 admitted" 200 "$(code_of "$(checkin device-0002)")"
head -c 5000 /dev/urandom >"$T/img.bin"
rel=$(release_of "$T/img.bin" 1.1.0 2)
dep=$(deploy device-0002 "$rel")
head -c 300000 /dev/urandom >"$T/big.bin"

# ---- the disk fills ----
fill "$DATA"
STORAGE="503 urn:ota:problem:storage-unavailable"
# Check-ins write the device's state: once the database cannot grow, they fail. (The log may
# still take a few small writes into room it had: try a bounded number.)
got=
for i in $(seq 1 40); do
	r=$(checkin device-0001 "$(jq -c --arg v "1.0.$i" '.version = $v' <<<"$CHECKIN")")
	if [ "$(code_of "$r")" == 503 ]; then got=$r; break; fi
done
expect "check-in on a full disk" "$STORAGE" "$(problem_of "$got")"
expect "check-in: Retry-After" 30 "$(headers_of "$DPORT" device-0001 /device/v1/checkin \
	-H 'Content-Type: application/json' -d "$(jq -c '.version = "1.0.99"' <<<"$CHECKIN")")"
# A check-in that repeats what the row holds writes nothing (its time waits in memory).
expect "repeated check-in on a full disk" 200 "$(code_of "$(checkin device-0001 \
	"$(jq -c --arg v "$(db "SELECT version FROM devices WHERE id = 'device-0001'")" '.version = $v' <<<"$CHECKIN")")")"
before=$(db "SELECT count(*) FROM deployment_events")
r=$(report device-0002 "$dep" '{"seq":1,"status":"downloading","progress":10}')
expect "report on a full disk" "$STORAGE" "$(problem_of "$r")"
expect "report: not stored" "$before" "$(db "SELECT count(*) FROM deployment_events")"
r=$(mcurl admin /api/v1/images --data-binary @"$T/big.bin" -H 'Content-Type: application/octet-stream')
expect "image upload on a full disk" "$STORAGE" "$(problem_of "$r")"
expect "upload: no partial file left" 0 "$(find "$DATA/images/.incoming" -type f | wc -l)"
tags_before=$(db "SELECT count(*) FROM device_tags WHERE device_id = 'device-0001'")
audit_before=$(db "SELECT count(*) FROM audit_log")
r=$(mcurl operator /api/v1/devices/device-0001/tags -X PUT -H 'Content-Type: application/json' \
	-d '{"tags":["full-disk"]}')
expect "audited change on a full disk" "$STORAGE" "$(problem_of "$r")"
expect "change: not applied" "$tags_before" "$(db "SELECT count(*) FROM device_tags WHERE device_id = 'device-0001'")"
expect "change: not audited" "$audit_before" "$(db "SELECT count(*) FROM audit_log")"
expect "/metrics counts the faults" 1 "$(mcurl auditor /metrics | awk '$1 == "ota_storage_faults_total" {print ($2 > 0)}')"
grep -q "503 storage full, failing or out of reach" "$LOG" || fail "the fault is not logged"

# ---- space returns: the same requests succeed, no restart ----
rm -f "$DATA/filler"
expect "check-in after" 200 "$(code_of "$(checkin device-0001)")"
r=$(report device-0002 "$dep" '{"seq":1,"status":"downloading","progress":10}')
expect "report after" 200 "$(code_of "$r")"
expect "report after: stored" $((before + 1)) "$(db "SELECT count(*) FROM deployment_events")"
r=$(mcurl admin /api/v1/images --data-binary @"$T/big.bin" -H 'Content-Type: application/octet-stream')
expect "upload after" 201 "$(code_of "$r")"
r=$(mcurl operator /api/v1/devices/device-0001/tags -X PUT -H 'Content-Type: application/json' \
	-d '{"tags":["full-disk"]}')
expect "change after" 200 "$(code_of "$r")"
expect "integrity_check" ok "$(db 'PRAGMA integrity_check')"
expect "the audit log verifies" true "$(jfield "$(mcurl auditor /api/v1/audit/verify)" .ok)"
stop_otad

# ---- a fresh database whose migrations do not fit ----
FRESH=$T/fresh
mount_small "$FRESH" 1m
fill "$FRESH"
sed -i "s|^data_dir = .*|data_dir = $FRESH|" "$CONF"
rc=0
timeout 60 "$OTAD" --config "$CONF" >"$T/fresh.log" 2>&1 || rc=$?
expect "otad refuses to start on a full disk" 1 "$([ $rc -ne 0 ] && [ $rc -ne 124 ] && echo 1 || echo "0 (status $rc)")"
expect_match "and says why" "(disk is full|No space left)" "$(cat "$T/fresh.log")"
rm -f "$FRESH/filler"
start_otad
expect "starts once there is room" 200 "$(code_of "$(mcurl auditor /api/v1/health)")"
expect "fresh integrity_check" ok "$(sqlite3 "$FRESH/otad.db" 'PRAGMA integrity_check')"
finish
