#!/usr/bin/env bash
# The rollout plan endpoints against a real otad: a small fleet with one device for every skip
# reason checks in with its own certificate; POST /api/v1/rollouts/plan answers the counts per
# stage and per breakdown, the skipped devices and why, the windows of the next 14 days and
# the estimates, and changes nothing (database digest and audit log the same); bad input gets
# a problem; an auditor may not plan a definition; a draft's plan is exact and names the
# devices its first stage then takes; a started rollout has no plan.
. "$(dirname "$0")/server_lib.sh"

make_pki
write_config
start_otad

post() { mcurl admin "$1" -H 'Content-Type: application/json' -d "$2"; }
facts() { # HW VERSION FLOOR
	echo "{\"hw_variant\":\"$1\",\"version\":\"$2\",\"security_floor\":$3,\"root_version\":1,\"active_slot\":\"A\",\"boot_state\":\"normal\"}"
}
dev() { # ID HW VERSION FLOOR [TAG]
	"$OTA_SCRIPTS/dev-pki.sh" "$PKI" device "$1" >/dev/null
	local r
	r=$(checkin "$1" "$(facts "$2" "$3" "$4")")
	expect "$1 checks in" 200 "$(code_of "$r")"
	if [ -n "${5-}" ]; then
		r=$(mcurl admin "/api/v1/devices/$1/tags" -X PUT -H 'Content-Type: application/json' -d "{\"tags\":[\"$5\"]}")
		expect "$1 tagged" 200 "$(code_of "$r")"
	fi
}

for i in 1 2 3 4 5 6; do dev "ok-$i" pico2w 1.0.0 1 "line=$((i % 2))"; done
dev ok-7 pico2w 1.5.0 2 line=1
dev floor pico2w 1.0.0 5 line=1
dev same pico2w 2.0.0 1 line=1
dev esp esp32 1.0.0 1 line=1
dev decom pico2w 1.0.0 1 line=1
dev lab pico2w 1.0.0 1 lab # not targeted: the plan below asks for "line=..." tags
r=$(post /api/v1/devices/decom/decommission '{}')
expect "decommissioned" 200 "$(code_of "$r")"
r=$(post /api/v1/devices '{"id":"pend","admission":"pending"}')
expect "registered pending" 201 "$(code_of "$r")"
r=$(post /api/v1/devices '{"id":"fresh"}')
expect "registered, never seen" 201 "$(code_of "$r")"
# Of a device never seen only its tags are known: they decide whether it is targeted.
for d in pend fresh; do
	r=$(mcurl admin "/api/v1/devices/$d/tags" -X PUT -H 'Content-Type: application/json' -d '{"tags":["line=0"]}')
	expect "$d tagged" 200 "$(code_of "$r")"
done
r=$(post /api/v1/devices '{"id":"untagged"}')
expect "registered, never seen, no tags: not targeted" 201 "$(code_of "$r")"
head -c 2000 /dev/urandom >"$T/v2.bin"
rel=$(release_of "$T/v2.bin" 2.0.0 2)

def() { # extra jq filter on the definition
	jq -nc --arg rel "$rel" "{name: \"<b>plan</b>\", release_id: \$rel,
		target: {tags: {any: [\"line=0\", \"line=1\"]}},
		stages: [{percent: 50, on_success: \"approval\", soak_seconds: 600}, {percent: 100}],
		budget: {max_updating: 2}} | ${1:-.}"
}

digest=$(db_digest)
audit=$(db "SELECT count(*) FROM audit_log")
r=$(post /api/v1/rollouts/plan "$(def)")
expect "plan answers" "200 application/json" "$(code_of "$r") $(ctype_of "$r")"
expect "not exact before create" "false null" "$(jfield "$r" '"\(.exact) \(.rollout_id)"')"
expect "name as given" "<b>plan</b>" "$(jfield "$r" .name)"
expect "devices: considered not_targeted targeted covered skipped" "15 2 13 7 6" \
	"$(jfield "$r" '.devices | "\(.considered) \(.not_targeted) \(.targeted) \(.covered) \(.skipped)"')"
# pend and fresh have no facts yet: pend waits for admission, fresh never reported.
expect "skips by reason" '{"already_on_version":1,"below_floor":1,"decommissioned":1,"no_report":1,"pending_admission":1,"rejected":0,"wrong_variant":1}' \
	"$(jfield "$r" '.skipped.by_reason' | jq -cS .)"
expect "pending named" "pending_admission" "$(jfield "$r" '.skipped.devices[] | select(.device_id == "pend") | .reason')"
expect "below floor named" "below_floor" "$(jfield "$r" '.skipped.devices[] | select(.device_id == "floor") | .reason')"
expect "wrong variant named" "wrong_variant" "$(jfield "$r" '.skipped.devices[] | select(.device_id == "esp") | .reason')"
expect "stages add up" 7 "$(jfield "$r" '[.stages[].devices] | add')"
expect "last stage cumulative" 7 "$(jfield "$r" '.stages[1].cumulative')"
expect "by variant" 7 "$(jfield "$r" '[.stages[].by_hw_variant.pico2w // 0] | add')"
expect "by version" "6 1" "$(jfield "$r" '"\([.stages[].by_version["1.0.0"] // 0] | add) \([.stages[].by_version["1.5.0"] // 0] | add)"')"
expect "by tag" "3 4" "$(jfield "$r" '"\([.stages[].by_tag["line=0"] // 0] | add) \([.stages[].by_tag["line=1"] // 0] | add)"')"
expect "estimate of stage 1: soak or waves of 300 s" true \
	"$(jfield "$r" '.stages[0].estimate | (.seconds == ([((.waves * .poll_interval_seconds)), .soak_seconds] | max)) and .poll_interval_seconds == 300 and .concurrency <= 2 and .waits_for_approval')"
expect "always open without a window" "true 0" "$(jfield "$r" '"\(.window.always_open) \(.window.openings | length)"')"
expect "nothing changed" "$digest" "$(db_digest)"
expect "nothing audited" "$audit" "$(db "SELECT count(*) FROM audit_log")"

# A weekly window: two or three openings in 14 days (three when one is open right now).
r=$(post /api/v1/rollouts/plan "$(def '. + {window: {days: ["mon"], start: "02:00", duration_minutes: 60, time_zone: "Europe/Berlin"}}')")
expect "window plan" 200 "$(code_of "$r")"
expect_match "two Mondays ahead" '^[23]$' "$(jfield "$r" '.window.openings | length')"
expect "each an hour" true "$(jfield "$r" '[.window.openings[] | .closes_at - .opens_at == 3600] | all')"
# Only the named variant's devices are read.
r=$(post /api/v1/rollouts/plan "$(def '.target = {hw_variants: ["pico2w"]}')")
expect "variant plan considers pico2w only" 11 "$(jfield "$r" .devices.considered)"

# Bad input: a problem, nothing changed.
r=$(post /api/v1/rollouts/plan "$(def '.stages = [{percent: 60}, {percent: 50}]')")
expect "shrinking stages" "400 urn:ota:problem:invalid-field" "$(code_of "$r") $(jfield "$r" .type)"
r=$(post /api/v1/rollouts/plan "$(def '. + {colour: 1}')")
expect "unknown key" "400 urn:ota:problem:invalid-field" "$(code_of "$r") $(jfield "$r" .type)"
r=$(post /api/v1/rollouts/plan "$(def '.release_id = ("f" * 64)')")
expect "unknown release" "404 urn:ota:problem:release-not-found" "$(code_of "$r") $(jfield "$r" .type)"
r=$(post /api/v1/rollouts/plan "$(def '.target = {hw_variants: ["esp32"]}')")
expect "variant the release does not run on" "400 urn:ota:problem:invalid-field" "$(code_of "$r") $(jfield "$r" .type)"
r=$(post /api/v1/rollouts/plan '{')
expect "malformed JSON" 400 "$(code_of "$r")"
r=$(mcurl auditor /api/v1/rollouts/plan -H 'Content-Type: application/json' -d "$(def)")
expect "auditor may not plan a definition" 403 "$(code_of "$r")"
expect "nothing changed by refusals" "$digest" "$(db_digest)"

# A draft's plan is exact: its first stage is the devices the started rollout offers (no budget
# here, so all of them at once).
r=$(post /api/v1/rollouts "$(def 'del(.budget)')")
expect "draft created" 201 "$(code_of "$r")"
rid=$(jfield "$r" .id)
r=$(mcurl auditor "/api/v1/rollouts/$rid/plan")
expect "auditor reads a draft's plan" 200 "$(code_of "$r")"
expect "exact" "true $rid" "$(jfield "$r" '"\(.exact) \(.rollout_id)"')"
stage1=$(jfield "$r" '.stages[0].devices')
expect "same totals as before create" 7 "$(jfield "$r" .devices.covered)"
r=$(post "/api/v1/rollouts/$rid/start" '{}')
expect "started" running "$(jfield "$r" .state)"
offered=0
for d in ok-1 ok-2 ok-3 ok-4 ok-5 ok-6 ok-7 floor same esp; do
	r=$(checkin "$d" "$(facts pico2w 1.0.0 1)")
	case $d in esp | floor | same) continue ;; esac
	[ "$(jfield "$r" .action)" == update ] && offered=$((offered + 1))
done
expect "the first stage offered exactly the plan's devices" "$stage1" "$offered"
r=$(mcurl admin "/api/v1/rollouts/$rid/plan")
expect "a running rollout has no plan" "409 urn:ota:problem:conflict" "$(code_of "$r") $(jfield "$r" .type)"
r=$(mcurl admin "/api/v1/rollouts/r-00000000000000000000000000000000/plan")
expect "unknown rollout" 404 "$(code_of "$r")"

finish
