#!/usr/bin/env bash
# Maintenance windows and per-tag budgets of a rollout, end to end: a real otad on 127.0.0.1
# and six real ota-agent processes over simulated flash, three on production line 1 and three
# on line 2 (tags line=1, line=2). The rollout has a daily window opening at 03:00 UTC and a
# budget of one device updating per line. otad runs on the test clock (OTAD_TEST_CLOCK_OFFSET,
# docs/testing.md) set 20 s before the window opens: devices checking in before it are offered
# nothing; once it opened, each round offers exactly one device of each line (the others
# wait for the budget), until the fleet is updated and the rollout completes.
. "$(dirname "$0")/server_lib.sh"
. "$(dirname "$0")/agent_lib.sh"
. "$(dirname "$0")/rollout_lib.sh"

make_pki
write_config
start_otad
"$OTA_AGENT" mkimage --version 1.0.0 --security-version 1 --hw pico2w --size 8192 "$T/v1.img"
"$OTA_AGENT" mkimage --version 2.0.0 --security-version 2 --hw pico2w --size 8192 "$T/v2.img"
fleet 6 wb "$T/v1.img"
round # first contact admits every device
declare -A LINE
for d in "${DEVS[@]}"; do
	n=${d#wb-}
	LINE[$d]=$(( (10#$n - 1) % 2 + 1 ))
	r=$(mcurl admin "/api/v1/devices/$d/tags" -X PUT -H 'Content-Type: application/json' \
		-d "{\"tags\":[\"line=${LINE[$d]}\"]}")
	expect "$d tagged" 200 "$(code_of "$r")"
done
rel=$(sim_release "$T/v2.img" 2.0.0 2)

# otad again, on the test clock: 20 s before today's 03:00 UTC.
W=$(date -u -d 'today 03:00' +%s)
stop_otad
export OTAD_TEST_CLOCK_OFFSET=$(( W - 20 - $(date +%s) ))
start_otad
unset OTAD_TEST_CLOCK_OFFSET
expect_match "otad says it runs on the test clock" "test clock: OTAD_TEST_CLOCK_OFFSET=" "$(cat "$LOG")"
for d in "${DEVS[@]}"; do sed -i "s|^server = .*|server = https://127.0.0.1:$DPORT|" "$T/$d/agent.conf"; done
otad_now() { echo $(( $(date +%s) + OFFSET )); }
OFFSET=$(grep -o 'OTAD_TEST_CLOCK_OFFSET=-\?[0-9]*' "$LOG" | head -1 | cut -d= -f2)

body=$(jq -nc --arg rel "$rel" '{name: "night shift", release_id: $rel,
	target: {hw_variants: ["pico2w"]},
	stages: [{percent: 100, success_threshold: 100, failure_threshold: 0, min_finished: 1}],
	window: {days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], start: "03:00",
	         duration_minutes: 60, time_zone: "UTC"},
	budget: {per_tag: {key: "line", max_updating: 1}}}')
r=$(post /api/v1/rollouts "$body")
expect "created" 201 "$(code_of "$r")"
RID=$(jfield "$r" .id)
r=$(mcurl admin "/api/v1/rollouts/$RID/plan")
expect "the plan's next window opens at 03:00 of the test clock" "$W false" \
	"$(jfield "$r" '"\(.window.openings[0].opens_at) \(.window.openings[0].open_now)"')"
r=$(post "/api/v1/rollouts/$RID/start" '{}')
expect "started" running "$(jfield "$r" .state)"

# Before the window: nothing offered, nothing recorded for the devices.
[ "$(otad_now)" -lt "$W" ] || fail "setup outlasted the 20 s before the window"
round
expect "window closed: nothing offered" 0 "${#OFFERED[@]}"
expect "no member yet" 0 "$(db "SELECT count(*) FROM rollout_members WHERE rollout_id = '$RID'")"

while [ "$(otad_now)" -lt $(( W + 1 )) ]; do sleep 1; done
# Open: one device per line and round, the budget of each line full until it finishes.
seen=()
for k in 1 2 3; do
	round
	lines=$(for d in "${OFFERED[@]}"; do echo "${LINE[$d]}"; done | sort | xargs)
	expect "round $k offers one device of each line" "1 2" "$lines"
	seen+=("${OFFERED[@]}")
done
expect "every device offered once" "$(printf '%s\n' "${DEVS[@]}" | sort | xargs)" \
	"$(printf '%s\n' "${seen[@]}" | sort | xargs)"
round
expect "nothing left" 0 "${#OFFERED[@]}"
for d in "${DEVS[@]}"; do expect "$d on 2.0.0" 2.0.0 "${VER[$d]}"; done
for _ in $(seq 1 20); do
	[ "$(jfield "$(mcurl admin "/api/v1/rollouts/$RID")" .state)" == completed ] && break
	sleep 1
done
expect "completed" completed "$(jfield "$(mcurl admin "/api/v1/rollouts/$RID")" .state)"
# The members were taken in the window, on the test clock.
expect "every join inside the window" 0 \
	"$(db "SELECT count(*) FROM deployments WHERE release_id = '$rel' AND (created_at < $W OR created_at >= $W + 3600)")"
finish
