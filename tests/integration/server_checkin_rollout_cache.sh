#!/usr/bin/env bash
# Acceptance (the check-in's cache of the running rollouts, rollout/engine.c): every change of a
# rollout made through the management API (start, pause, resume, abort, a new rollout) is seen
# by the very next check-in, although check-ins read the running rollouts from memory; a device
# found with nothing due is not walked again (ota_checkin_rollout_walks_total) until a change of
# its tags or of its reported facts, which the next check-in sees.
. "$(dirname "$0")/server_lib.sh"

make_pki
write_config
start_otad
post() { mcurl admin "$1" -H 'Content-Type: application/json' -d "$2"; }
for i in 1 2 3 4 5 6; do
	"$OTA_SCRIPTS/dev-pki.sh" "$PKI" device "device-000$i" >/dev/null
	expect "device-000$i checks in" 200 "$(code_of "$(checkin "device-000$i")")"
done
head -c 2000 /dev/urandom >"$T/img.bin"
rel=$(release_of "$T/img.bin" 1.1.0 2)
action() { jfield "$(checkin "$1")" .action; }
rollout() { # a draft covering every device at once; prints its id
	local body r
	body=$(jq -nc --arg rel "$rel" '{name: "all", release_id: $rel,
		stages: [{percent: 100, success_threshold: 100, on_success: "auto",
		          failure_threshold: 0, min_finished: 1}]}')
	r=$(post /api/v1/rollouts "$body")
	[ "$(code_of "$r")" == 201 ] || { echo "create rollout: $r" >&2; return 1; }
	jfield "$r" .id
}

# A check-in loads the (empty) list of running rollouts into memory first.
expect "no rollout: nothing offered" none "$(action device-0001)"
RID=$(rollout) || exit 1
expect "a draft offers nothing" none "$(action device-0001)"
expect "start" running "$(jfield "$(post "/api/v1/rollouts/$RID/start" '{}')" .state)"
expect "started: the next check-in is offered the release" update "$(action device-0001)"
expect "pause" paused "$(jfield "$(post "/api/v1/rollouts/$RID/pause" '{}')" .state)"
expect "paused: the next check-in of a new device is offered nothing" none "$(action device-0002)"
expect "resume" running "$(jfield "$(post "/api/v1/rollouts/$RID/resume" '{}')" .state)"
expect "resumed: offered again" update "$(action device-0002)"
expect "abort" aborted "$(jfield "$(post "/api/v1/rollouts/$RID/abort" '{"reason":"test"}')" .state)"
expect "aborted: the next check-in is offered nothing" none "$(action device-0003)"
# A second rollout of the same release, started: seen at once as well.
RID2=$(rollout) || exit 1
expect "start the second" running "$(jfield "$(post "/api/v1/rollouts/$RID2/start" '{}')" .state)"
expect "the second rollout offers at the next check-in" update "$(action device-0004)"
# And a pause of that one.
r=$(post "/api/v1/rollouts/$RID2/pause" '{}')
expect "pause the second" paused "$(jfield "$r" .state)"
expect "paused again: nothing offered" none "$(action device-0005)"

# A third rollout for the devices tagged site=berlin; device-0006 has no tags. device-0005 is
# tagged first and stays away: the rollout waits for it, so the ticker cannot complete it (a
# rollout that covers no device is complete) while the test runs.
walks() { mcurl auditor /metrics | awk -v m="ota_checkin_rollout_walks_total{result=\"$1\"}" '$1 == m { print $2 }'; }
body=$(jq -nc --arg rel "$rel" '{name: "berlin", release_id: $rel, target: {tags: {all: ["site=berlin"]}},
	stages: [{percent: 100, success_threshold: 100, on_success: "auto", failure_threshold: 0,
	          min_finished: 1}]}')
tag() { mcurl operator "/api/v1/devices/$1/tags" -X PUT -H 'Content-Type: application/json' -d "$2"; }
expect "tag device-0005" 200 "$(code_of "$(tag device-0005 '{"tags":["site=berlin"]}')")"
r=$(post /api/v1/rollouts "$body")
expect "create the berlin rollout" 201 "$(code_of "$r")"
RID3=$(jfield "$r" .id)
expect "start it" running "$(jfield "$(post "/api/v1/rollouts/$RID3/start" '{}')" .state)"
expect "outside the filter: nothing offered" none "$(action device-0006)"
w0=$(walks walked) s0=$(walks skipped)
for _ in 1 2 3; do
	expect "still outside: nothing offered" none "$(action device-0006)"
done
expect "the three check-ins skipped the walk" "$((s0 + 3))" "$(walks skipped)"
expect "and none walked" "$w0" "$(walks walked)"
expect "tag device-0006" 200 "$(code_of "$(tag device-0006 '{"tags":["site=berlin"]}')")"
expect "tagged: the next check-in is offered the release" update "$(action device-0006)"
expect "that check-in walked" "$((w0 + 1))" "$(walks walked)"
expect "the berlin rollout still runs" running "$(jfield "$(mcurl auditor "/api/v1/rollouts/$RID3")" .state)"
finish
