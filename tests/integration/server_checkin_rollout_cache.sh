#!/usr/bin/env bash
# Acceptance (the check-in's cache of the running rollouts, rollout/engine.c): every change of a
# rollout made through the management API (start, pause, resume, abort, a new rollout) is seen
# by the very next check-in, although check-ins read the running rollouts from memory.
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
finish
