#!/usr/bin/env bash
# Acceptance, end to end: a real otad and two real ota-agent processes on 127.0.0.1, with a
# PKI, signing keys and simulated images made at test time. device-0001 takes a good release
# and is recorded as succeeded only after its confirmed boot; device-0002 takes a release whose
# image never buys its trial, so the simulated bootrom's watchdog brings its old image back,
# and it is recorded as rolled back, running its old version again.
#
# Needs: OTAD, OTA_SIGN, OTA_AGENT (binaries), OTA_SCRIPTS in the environment.
. "$(dirname "$0")/server_lib.sh"
. "$(dirname "$0")/agent_lib.sh"

make_pki
write_config
start_otad

"$OTA_AGENT" mkimage --version 1.0.0 --security-version 1 --hw pico2w --size 30000 "$T/factory.img"
"$OTA_AGENT" mkimage --version 1.1.0 --security-version 2 --hw pico2w --size 70000 "$T/good.img"
"$OTA_AGENT" mkimage --version 1.2.0 --security-version 2 --hw pico2w --size 50000 \
	--fault never-buy "$T/never-buy.img"

agent_setup device-0001 "$T/factory.img"
agent_setup device-0002 "$T/factory.img"
expect "factory image" "version 1.0.0 security_version 1 fault none" "$(status_of device-0001 'slot A')"

# First contact admits both devices; nothing to do yet.
agent device-0001 once --timeout 60 2>"$T/a1-0.log" || fail "device-0001 first check-in: $(cat "$T/a1-0.log")"
agent device-0002 once --timeout 60 2>"$T/a2-0.log" || fail "device-0002 first check-in: $(cat "$T/a2-0.log")"
expect "both admitted" 2 "$(db "SELECT count(*) FROM devices WHERE id IN ('device-0001','device-0002')")"

rel_good=$(sim_release "$T/good.img" 1.1.0 2)
rel_bad=$(sim_release "$T/never-buy.img" 1.2.0 2)
dep1=$(deploy device-0001 "$rel_good")
dep2=$(deploy device-0002 "$rel_bad")

# Both agents run one full cycle at the same time; device-0001 logs its handshakes.
printf 'debug = 1\n' >>"$T/device-0001/agent.conf"
# (the binary itself in the background, so that AGENT_PIDS are the agents' own PIDs)
"$OTA_AGENT" --config "$T/device-0001/agent.conf" once --timeout 120 2>"$T/a1.log" &
AGENT_PIDS+=($!)
"$OTA_AGENT" --config "$T/device-0002/agent.conf" once --timeout 120 2>"$T/a2.log" &
AGENT_PIDS+=($!)
rc1=0; rc2=0
wait "${AGENT_PIDS[0]}" || rc1=$?
wait "${AGENT_PIDS[1]}" || rc2=$?
AGENT_PIDS=()
expect "device-0001 cycle exit status" 0 "$rc1"
expect "device-0002 cycle exit status" 0 "$rc2"

# device-0001: confirmed boot of 1.1.0 from slot B, floor raised, recorded as succeeded.
expect "device-0001 boots" "slot B version 1.1.0" "$(status_of device-0001 boots)"
expect "device-0001 floor" 2 "$(status_of device-0001 floor)"
expect "device-0001 outcome" confirmed "$(status_of device-0001 outcome)"
expect "device-0001 outbox empty" 0 "$(status_of device-0001 outbox)"
expect "device-0002 outbox empty" 0 "$(status_of device-0002 outbox)"
expect "deployment 1 succeeded" succeeded "$(db "SELECT status FROM deployments WHERE id='$dep1'")"
expect "deployment 1 reports" "downloading downloaded installing rebooting trial confirmed" \
	"$(db "SELECT group_concat(status, ' ') FROM (SELECT status FROM deployment_events WHERE deployment_id='$dep1' ORDER BY seq) AS s")"
expect "confirmed with the target version" 1.1.0 \
	"$(db "SELECT version FROM deployment_events WHERE deployment_id='$dep1' AND status='confirmed'")"
expect_match "device-0001 log shows the buy" "trial bought" "$(cat "$T/a1.log")"
# One connection per poll cycle (docs/agent.md, "Connections"): the cycle of the download (a
# check-in, the report downloading, the image, three reports) and the cycle of the trial (its
# report, then the check-in with the outcome) each make one handshake, not one per request.
handshakes=$(grep -cE '^ota-agent: TLS (session resumed|full handshake)' "$T/a1.log" || true)
echo "device-0001 update cycle: $handshakes TLS handshakes for 6 reports, the image and the check-ins"
[ "$handshakes" -ge 1 ] && [ "$handshakes" -le 3 ] ||
	fail "device-0001 made $handshakes handshakes in its update: $(cat "$T/a1.log")"

# device-0002: the trial never bought, the watchdog reverted it; old version runs again.
expect "device-0002 boots" "slot A version 1.0.0" "$(status_of device-0002 boots)"
expect "device-0002 floor" 0 "$(status_of device-0002 floor)"
expect_match "device-0002 outcome" "^rolled_back: trial not bought before the watchdog deadline" \
	"$(status_of device-0002 outcome)"
expect "deployment 2 rolled back" rolled_back "$(db "SELECT status FROM deployments WHERE id='$dep2'")"
expect "deployment 2 reports" "downloading downloaded installing rebooting trial rolled_back" \
	"$(db "SELECT group_concat(status, ' ') FROM (SELECT status FROM deployment_events WHERE deployment_id='$dep2' ORDER BY seq) AS s")"
expect_match "device-0002 log shows the watchdog" "watchdog fired during the trial" "$(cat "$T/a2.log")"

# Next cycles: nothing more to do, and both keep what they run.
agent device-0001 once --timeout 60 2>>"$T/a1.log" || fail "device-0001 next cycle"
agent device-0002 once --timeout 60 2>>"$T/a2.log" || fail "device-0002 next cycle"
expect "device-0001 still on 1.1.0" "slot B version 1.1.0" "$(status_of device-0001 boots)"
expect "device-0002 still on 1.0.0" "slot A version 1.0.0" "$(status_of device-0002 boots)"
expect "no report stored twice" 12 \
	"$(db "SELECT count(*) FROM deployment_events WHERE deployment_id IN ('$dep1','$dep2')")"

# The poll loop: checks in, then waits for its next poll until SIGTERM stops it cleanly.
expect "device-0001 as otad knows it" "1.1.0|2|B|normal" \
	"$(db "SELECT version, security_floor, active_slot, boot_state FROM devices WHERE id='device-0001'")"
expect "device-0002 as otad knows it" "1.0.0|0|A|normal" \
	"$(db "SELECT version, security_floor, active_slot, boot_state FROM devices WHERE id='device-0002'")"
sleep 1.1
t0=$(date +%s)
"$OTA_AGENT" --config "$T/device-0001/agent.conf" run 2>"$T/a1-run.log" &
AGENT_PIDS+=($!)
seen=0
for _ in $(seq 1 100); do
	seen=$(db "SELECT last_seen FROM devices WHERE id='device-0001'")
	[ "$seen" -ge "$t0" ] && break
	sleep 0.1
done
[ "$seen" -ge "$t0" ] && ok || fail "ota-agent run did not check in"
sleep 0.5
kill -0 "${AGENT_PIDS[0]}" 2>/dev/null && ok || fail "ota-agent run exited by itself"
kill -TERM "${AGENT_PIDS[0]}"
rc=0
wait "${AGENT_PIDS[0]}" || rc=$?
AGENT_PIDS=()
expect "ota-agent run stops on SIGTERM" 0 "$rc"
expect "still on 1.1.0 after the poll loop" "slot B version 1.1.0" "$(status_of device-0001 boots)"
finish
