#!/usr/bin/env bash
# Acceptance (check-in durability, docs/architecture.md "Check-in times"): a check-in that
# repeats the device's state only moves its last_seen, kept in memory and written every
# [device] last_seen_flush seconds; a check-in that changes what the device runs (version,
# slot, boot state) is written before its answer. After a SIGKILL of otad the database has
# every such change, and last_seen lags the last check-in by at most the flush interval.
. "$(dirname "$0")/server_lib.sh"

FLUSH=2
make_pki
write_config
sed -i "s/^poll_jitter = 10$/poll_jitter = 10\nlast_seen_flush = $FLUSH/" "$CONF"
grep -q "^last_seen_flush = $FLUSH$" "$CONF" && ok || fail "config not written"
start_otad

kill_otad() {
	kill -KILL "$OTAD_PID"
	wait "$OTAD_PID" 2>/dev/null || true
	OTAD_PID=
}

# 1. Repeated check-ins for three flush intervals, then SIGKILL right after the last one.
r=$(checkin device-0001)
expect "first check-in" 200 "$(code_of "$r")"
expect "the first check-in's state is written at once" "1.0.0|A|normal" \
	"$(db "SELECT version, active_slot, boot_state FROM devices WHERE id='device-0001'")"
end=$(($(date +%s) + 3 * FLUSH))
while [ "$(date +%s)" -lt "$end" ]; do
	r=$(checkin device-0001)
	[ "$(code_of "$r")" == 200 ] || { fail "repeated check-in: $r"; break; }
done
last=$(date +%s)
r=$(checkin device-0001)
expect "last repeated check-in" 200 "$(code_of "$r")"
r=$(mcurl admin /api/v1/devices/device-0001)
seen=$(jfield "$r" .last_seen)
[ "$seen" -ge "$last" ] && ok || fail "the management API shows last_seen $seen, check-in at $last"
kill_otad
seen=$(db "SELECT last_seen FROM devices WHERE id='device-0001'")
echo "last check-in at $last, last_seen stored $seen (flush every $FLUSH s)"
# Lost: at most the check-ins of the last flush interval (and a second of clock granularity).
[ "$seen" -ge $((last - FLUSH - 1)) ] && ok ||
	fail "last_seen $seen after SIGKILL: more than $FLUSH s of check-ins lost (last at $last)"
expect "integrity after SIGKILL" ok "$(db_integrity)"

# 2. A check-in that changes the device's state, then SIGKILL at once: the change is stored.
start_otad
r=$(checkin device-0001)
expect "check-in after restart" 200 "$(code_of "$r")"
NEW='{"hw_variant":"pico2w","version":"1.1.0","security_floor":2,"root_version":1,"active_slot":"B","boot_state":"trial","last_outcome":{"status":"confirmed","version":"1.1.0"}}'
r=$(checkin device-0001 "$NEW")
expect "changed check-in" 200 "$(code_of "$r")"
kill_otad
expect "the changed state survives SIGKILL" "1.1.0|2|B|trial" \
	"$(db "SELECT version, security_floor, active_slot, boot_state FROM devices WHERE id='device-0001'")"
expect_match "the outcome survives SIGKILL" '"confirmed"' \
	"$(db "SELECT last_outcome FROM devices WHERE id='device-0001'")"

# 3. Back to the first state (a roll back), repeated: written once, then batched again.
start_otad
r=$(checkin device-0001 "$NEW")
expect "same state after restart" 200 "$(code_of "$r")"
r=$(checkin device-0001)
expect "check-in back on 1.0.0" 200 "$(code_of "$r")"
kill_otad
expect "the state change back survives SIGKILL" "1.0.0|1|A|normal" \
	"$(db "SELECT version, security_floor, active_slot, boot_state FROM devices WHERE id='device-0001'")"

# 4. A clean stop writes the times kept in memory.
start_otad
r=$(checkin device-0001)
sleep 1.1
t=$(date +%s)
r=$(checkin device-0001)
expect "check-in before the stop" 200 "$(code_of "$r")"
stop_otad
seen=$(db "SELECT last_seen FROM devices WHERE id='device-0001'")
[ "$seen" -ge "$t" ] && ok || fail "last_seen $seen after a clean stop, check-in at $t"
finish
