#!/usr/bin/env bash
# Acceptance of staged rollouts, end to end: a real otad on 127.0.0.1 and a fleet of devices,
# each a real ota-agent with its own certificate over its own simulated flash and bootrom (check
# in, download, install, trial, buy or revert, report every step). A good release rolls
# 1 % -> 10 % -> 100 % to completion, each round offering it to exactly the devices of the
# stage that runs; a bad release (an image that never buys its trial, so the bootrom's watchdog
# reverts it and the device reports rolled_back) halts the rollout at the canary stage with no
# device outside the canary ever offered it; a roll back to a release for other hardware is
# refused, and one to the release the reverted canary runs already re-installs nothing. Progress, devices by state and /metrics are read along the way.
. "$(dirname "$0")/server_lib.sh"
. "$(dirname "$0")/agent_lib.sh"
. "$(dirname "$0")/rollout_lib.sh"

N=${ROLLOUT_DEVICES:-30}
make_pki
write_config
start_otad

"$OTA_AGENT" mkimage --version 1.0.0 --security-version 1 --hw pico2w --size 8192 "$T/v1.img"
"$OTA_AGENT" mkimage --version 2.0.0 --security-version 2 --hw pico2w --size 8192 "$T/v2.img"
"$OTA_AGENT" mkimage --version 3.0.0 --security-version 2 --hw pico2w --size 8192 \
	--fault never-buy "$T/v3.img"
fleet "$N" rd "$T/v1.img"

# new_rollout RELEASE: a started rollout 1 % -> 10 % -> 100 % whose canary and second stage
# both hold devices of this small fleet (a draft is recreated until they do: the keyed hash
# differs per rollout). Sets RID, CANARY, STAGE2.
new_rollout() {
	local rel=$1 body r try
	body=$(jq -nc --arg rel "$rel" '{name: "fw to the fleet", release_id: $rel,
		target: {hw_variants: ["pico2w"]},
		stages: [
		  {percent: 1, success_threshold: 100, on_success: "auto", failure_threshold: 0, min_finished: 1},
		  {percent: 10, success_threshold: 100, on_success: "auto", failure_threshold: 0, min_finished: 1},
		  {percent: 100, success_threshold: 100, on_success: "auto", failure_threshold: 0, min_finished: 1}],
		retry: {attempts: 1}}')
	for try in $(seq 1 40); do
		r=$(post /api/v1/rollouts "$body")
		[ "$(code_of "$r")" == 201 ] || { fail "create rollout: $r"; return 1; }
		RID=$(jfield "$r" .id)
		mapfile -t CANARY < <(members_of "$RID" 1)
		mapfile -t STAGE2 < <(members_of "$RID" 2)
		if [ ${#CANARY[@]} -ge 1 ] && [ ${#STAGE2[@]} -ge 1 ]; then
			r=$(post "/api/v1/rollouts/$RID/start" '{}')
			expect "start" running "$(jfield "$r" .state)"
			return 0
		fi
		post "/api/v1/rollouts/$RID/abort" '{"reason":"draft without a canary in a small fleet"}' >/dev/null
	done
	fail "no rollout with a non-empty canary in 40 tries"
	return 1
}

same_set() { # WHAT "list a" "list b"
	expect "$1" "$(tr ' ' '\n' <<<"$2" | sort | xargs)" "$(tr ' ' '\n' <<<"$3" | sort | xargs)"
}

# First contact admits every device; nothing to do yet.
round strict
expect "first contact offers nothing" 0 "${#OFFERED[@]}"
rel1=$(sim_release "$T/v1.img" 1.0.0 1)
rel2=$(sim_release "$T/v2.img" 2.0.0 2)
rel3=$(sim_release "$T/v3.img" 3.0.0 2)

# Bad definitions are refused with a clear problem and create nothing.
before=$(db "SELECT count(*) FROM rollouts")
r=$(post /api/v1/rollouts "{\"name\":\"x\",\"release_id\":\"$rel2\",\"stages\":[{\"percent\":10},{\"percent\":5}]}")
expect "shrinking stages refused" "400 urn:ota:problem:invalid-field" "$(code_of "$r") $(jfield "$r" .type)"
r=$(post /api/v1/rollouts "{\"name\":\"x\",\"release_id\":\"$rel2\",\"stages\":[{\"percent\":100}],\"colour\":1}")
expect "unknown key refused" "400 urn:ota:problem:invalid-field" "$(code_of "$r") $(jfield "$r" .type)"
r=$(post /api/v1/rollouts "{\"name\":\"x\",\"release_id\":\"$rel2\",\"stages\":[{\"percent\":100}],\"window\":{\"days\":[\"mon\"],\"start\":\"22:00\",\"duration_minutes\":60,\"time_zone\":\"Atlantis/Capital\"}}")
expect "unknown time zone refused" "400 urn:ota:problem:invalid-field" "$(code_of "$r") $(jfield "$r" .type)"
r=$(post /api/v1/rollouts "{\"name\":\"x\",\"release_id\":\"$(printf 'f%.0s' {1..64})\",\"stages\":[{\"percent\":100}]}")
expect "unknown release refused" "404 urn:ota:problem:release-not-found" "$(code_of "$r") $(jfield "$r" .type)"
expect "nothing created" "$before" "$(db "SELECT count(*) FROM rollouts")"
r=$(mcurl auditor /api/v1/rollouts -H 'Content-Type: application/json' -d "{\"name\":\"x\",\"release_id\":\"$rel2\",\"stages\":[{\"percent\":100}]}")
expect "auditor may not create" 403 "$(code_of "$r")"
r=$(mcurl admin /api/v1/rollouts/r-00000000000000000000000000000000)
expect "unknown rollout" 404 "$(code_of "$r")"

# ---- a good release: 1 % -> 10 % -> 100 % ----
new_rollout "$rel2" || exit 1
GOOD=$RID
echo "good rollout $GOOD: canary ${CANARY[*]}; stage 2 ${STAGE2[*]}"
round strict
same_set "round 1 offers exactly the canary" "${CANARY[*]}" "${OFFERED[*]}"
r=$(mcurl admin "/api/v1/rollouts/$GOOD")
expect "after the canary: stage 2" "running 2" "$(jfield "$r" .state) $(jfield "$r" .stage)"
expect "canary counted succeeded" "${#CANARY[@]}" "$(jfield "$r" '.progress.stages[0].devices.succeeded')"
round strict
same_set "round 2 offers exactly stage 2" "${STAGE2[*]}" "${OFFERED[*]}"
expect "after stage 2: stage 3" 3 "$(jfield "$(mcurl admin "/api/v1/rollouts/$GOOD")" .stage)"
round strict
expect "round 3 offers the rest" $((N - ${#CANARY[@]} - ${#STAGE2[@]})) "${#OFFERED[@]}"
round strict
expect "nothing left to offer" 0 "${#OFFERED[@]}"
r=$(mcurl admin "/api/v1/rollouts/$GOOD")
expect "good rollout completed" completed "$(jfield "$r" .state)"
expect "all succeeded" "$N" "$(jfield "$r" .progress.totals.succeeded)"
expect "none updating" 0 "$(jfield "$r" .progress.updating)"
audit() { db "SELECT count(*) FROM audit_log WHERE rollout_id = '$1' AND action = '$2'"; }
expect "audited: two stage advances" 2 "$(audit "$GOOD" rollout.stage.advance)"
expect "audited: completion" 1 "$(audit "$GOOD" rollout.complete)"
expect "audited: a deployment per device" "$N" "$(audit "$GOOD" deployment.create)"
for d in "${DEVS[@]}"; do [ "${VER[$d]}" == 2.0.0 ] || fail "$d runs ${VER[$d]} after the good rollout"; done
expect "fleet on 2.0.0" "$N" "$(db "SELECT count(*) FROM devices WHERE id LIKE 'rd-%' AND version = '2.0.0'")"
r=$(mcurl admin "/api/v1/rollouts/$GOOD/devices?state=succeeded&limit=7")
expect "devices page size" 7 "$(jfield "$r" '.items | length')"
nxt=$(jfield "$r" .next_cursor)
r=$(mcurl admin "/api/v1/rollouts/$GOOD/devices?state=succeeded&limit=1000&cursor=$nxt")
expect "second page holds the rest, the last" "$((N - 7)) null" "$(jfield "$r" '"\(.items | length) \(.next_cursor)"')"
expect "devices in pages of one, each once" "$(db "SELECT device_id FROM rollout_members WHERE rollout_id = '$GOOD' ORDER BY device_id")" \
	"$(walk_pages auditor "/api/v1/rollouts/$GOOD/devices" .device_id)"
expect "a malformed cursor refused" 400 "$(code_of "$(mcurl admin "/api/v1/rollouts/$GOOD/devices?cursor=a%20b")")"
r=$(post "/api/v1/rollouts/$GOOD/resume" '{}')
expect "resume a completed rollout" "409 urn:ota:problem:conflict" "$(code_of "$r") $(jfield "$r" .type)"

# ---- a bad release: halts at the canary, then a roll back ----
new_rollout "$rel3" || exit 1
BAD=$RID
echo "bad rollout $BAD: canary ${CANARY[*]}"
round strict
same_set "bad release offered to the canary only" "${CANARY[*]}" "${OFFERED[*]}"
round strict
expect "nobody offered after the halt" 0 "${#OFFERED[@]}"
r=$(mcurl admin "/api/v1/rollouts/$BAD")
expect "halted" "paused 1" "$(jfield "$r" .state) $(jfield "$r" .stage)"
expect_match "halt reason" "failure threshold" "$(jfield "$r" .reason)"
expect "rolled back counted" "${#CANARY[@]}" "$(jfield "$r" '.progress.stages[0].devices.rolled_back')"
expect_match "top failure reason" "^trial not bought before the watchdog" "$(jfield "$r" '.progress.failure_reasons[0].reason')"
expect "no device outside the canary was offered 3.0.0" "${#CANARY[@]}" \
	"$(db "SELECT count(DISTINCT d.device_id) FROM deployments d WHERE d.release_id = '$rel3'")"
same_set "members are the canary" "${CANARY[*]}" "$(jfield "$(mcurl admin "/api/v1/rollouts/$BAD/devices")" '.items[].device_id' | xargs)"
m=$(mcurl admin /metrics)
expect "metrics" 200 "$(code_of "$m")"
expect_match "metrics: halted rollout" "ota_rollout_state\{rollout=\"$BAD\",state=\"paused\"\} 1" "$(body_of "$m")"
expect_match "metrics: rolled back devices" "ota_rollout_devices\{rollout=\"$BAD\",stage=\"1\",state=\"rolled_back\"\} ${#CANARY[@]}" "$(body_of "$m")"

expect "audited: the halt" 1 "$(audit "$BAD" rollout.halt)"
# Reads never judge nor change anything: the database is the same after them.
before=$(db_digest)
for path in "/api/v1/rollouts/$BAD" "/api/v1/rollouts/$GOOD" /api/v1/rollouts "/api/v1/rollouts/$BAD/devices" /metrics; do
	expect "GET $path" 200 "$(code_of "$(mcurl auditor "$path")")"
done
expect "reads change nothing (database digest)" "$before" "$(db_digest)"
r=$(post "/api/v1/rollouts/$BAD/rollback" "{\"release_id\":\"$rel3\"}")
expect "roll back to its own release refused" 400 "$(code_of "$r")"
# A roll back to a release for other hardware is refused whole, naming why, and changes nothing.
head -c 3000 /dev/urandom >"$T/other.bin"
relx=$(release_of "$T/other.bin" 2.5.0 2 pico2)
before=$(db_digest)
r=$(post "/api/v1/rollouts/$BAD/rollback" "{\"release_id\":\"$relx\",\"devices\":\"all\"}")
expect "roll back to other hardware refused" "409 urn:ota:problem:hw-variant-mismatch" "$(code_of "$r") $(jfield "$r" .type)"
expect_match "the refusal names the variants" "runs on none of the hardware variants" "$(jfield "$r" .detail)"
expect "the refused roll back changed nothing" "$before" "$(db_digest)"
# The canary reverted to 2.0.0 by itself: a roll back to 2.0.0 skips them, saying so.
r=$(post "/api/v1/rollouts/$BAD/rollback" "{\"release_id\":\"$rel2\",\"devices\":\"failed\"}")
expect "roll back" 200 "$(code_of "$r")"
expect "no device needs 2.0.0 again" 0 "$(jfield "$r" .deployments_created)"
expect "each canary device listed" "${#CANARY[@]}" "$(jfield "$r" '.not_roll_back_able | length')"
expect "the reason says it runs the release" "the device runs 2.0.0 already" "$(jfield "$r" '.not_roll_back_able[0].reason')"
expect "rolled back rollout aborted" aborted "$(jfield "$(mcurl admin "/api/v1/rollouts/$BAD")" .state)"
round strict
expect "nothing re-installed" 0 "${#OFFERED[@]}"
for d in "${CANARY[@]}"; do expect "$d still on 2.0.0" 2.0.0 "${VER[$d]}"; done
expect "audited: the roll back" 1 "$(audit "$BAD" rollout.rollback)"
finish
