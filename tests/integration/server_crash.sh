#!/usr/bin/env bash
# Acceptance (crash safety): reports stream in from two senders, otad is killed with SIGKILL
# mid-stream and restarted; every report that got a 2xx is present exactly once, retrying them
# all is answered "duplicate", and PRAGMA integrity_check is ok.
. "$(dirname "$0")/server_lib.sh"

make_pki
write_config
start_otad
checkin device-0001 >/dev/null
checkin device-0002 >/dev/null
head -c 2000 /dev/urandom >"$T/img.bin"
rel=$(release_of "$T/img.bin" 1.1.0 2)
dep1=$(deploy device-0001 "$rel")
dep2=$(deploy device-0002 "$rel")

# sender DEVICE DEPLOYMENT FIRST_SEQ: reports until otad stops answering; logs "seq code".
sender() {
	local dev=$1 dep=$2 seq=$3 r code
	while :; do
		r=$(report "$dev" "$dep" "{\"seq\":$seq,\"status\":\"downloading\",\"progress\":$seq}")
		code=$(code_of "$r")
		echo "$seq $code" >>"$T/sent-$dev"
		[ "$code" == 200 ] || break
		seq=$((seq + 1))
	done
}
sender device-0001 "$dep1" 1 &
s1=$!
sender device-0002 "$dep2" 1 &
s2=$!
# Kill once both senders have had a good number of reports acknowledged.
for _ in $(seq 1 400); do
	n1=$(grep -c ' 200$' "$T/sent-device-0001" 2>/dev/null || true)
	n2=$(grep -c ' 200$' "$T/sent-device-0002" 2>/dev/null || true)
	[ "${n1:-0}" -ge 20 ] && [ "${n2:-0}" -ge 20 ] && break
	sleep 0.05
done
kill -KILL "$OTAD_PID"
wait "$OTAD_PID" 2>/dev/null || true
OTAD_PID=
wait "$s1" "$s2" || true

acked1=$(awk '$2 == 200 {print $1}' "$T/sent-device-0001")
acked2=$(awk '$2 == 200 {print $1}' "$T/sent-device-0002")
n=$(($(wc -w <<<"$acked1") + $(wc -w <<<"$acked2")))
[ "$n" -ge 40 ] && ok || fail "only $n reports acknowledged before the kill"
echo "acknowledged before SIGKILL: $n reports"
expect "integrity after SIGKILL" ok "$(db_integrity)"

start_otad
expect "integrity after restart" ok "$(db_integrity)"
check_device() {
	local dev=$1 dep=$2 acked=$3 missing=0 dups=0 seq c r
	for seq in $acked; do
		c=$(db "SELECT count(*) FROM deployment_events WHERE deployment_id='$dep' AND seq=$seq")
		[ "$c" == 1 ] || missing=$((missing + 1))
		r=$(report "$dev" "$dep" "{\"seq\":$seq,\"status\":\"downloading\",\"progress\":$seq}")
		[ "$(jfield "$r" .duplicate)" == true ] || dups=$((dups + 1))
	done
	expect "$dev: acknowledged reports present exactly once" 0 "$missing"
	expect "$dev: acknowledged reports answered duplicate on retry" 0 "$dups"
	# Nothing beyond what was sent exists, and no seq is stored twice.
	expect "$dev: no duplicate rows" 0 \
		"$(db "SELECT count(*) FROM (SELECT seq FROM deployment_events WHERE deployment_id='$dep' GROUP BY seq HAVING count(*) > 1) AS s")"
}
check_device device-0001 "$dep1" "$acked1"
check_device device-0002 "$dep2" "$acked2"
r=$(report device-0001 "$dep1" '{"seq":100000,"status":"downloaded"}')
expect "new reports after restart" "200 false" "$(code_of "$r") $(jfield "$r" .duplicate)"
finish
