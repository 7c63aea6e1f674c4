#!/usr/bin/env bash
# The end-to-end canary with the two judgements a plain failure count cannot give: a real otad
# on 127.0.0.1 and a fleet of real ota-agent processes over simulated flash.
#   rollout_canary.sh statistical  a release whose image never buys its trial, under the
#       statistical halt (Wilson lower bound above 10 % at 95 %, after 3 finished): the rollout
#       halts in its canary and the reason carries failures, finished and the bound;
#   rollout_canary.sh regression   a release that passes its trial and is bought, then fails
#       its health check and is reset by the watchdog (regress-after-buy), under
#       post_confirm_health (at most 10 % regressed, one hour of soak): every canary device
#       confirms, then reports its regression in its check-ins, and the rollout halts in its
#       canary with the count and the devices named in the reason.
# In both, no device outside the canary is ever offered the release.
. "$(dirname "$0")/server_lib.sh"
. "$(dirname "$0")/agent_lib.sh"
. "$(dirname "$0")/rollout_lib.sh"

MODE=${1:?statistical or regression}
N=${CANARY_DEVICES:-12}
make_pki
write_config
start_otad

"$OTA_AGENT" mkimage --version 1.0.0 --security-version 1 --hw pico2w --size 8192 "$T/v1.img"
case $MODE in
statistical) FAULT=never-buy ;;
regression) FAULT=regress-after-buy ;;
*) echo "unknown mode $MODE"; exit 2 ;;
esac
"$OTA_AGENT" mkimage --version 2.0.0 --security-version 2 --hw pico2w --size 8192 \
	--fault "$FAULT" "$T/v2.img"
fleet "$N" cd "$T/v1.img"
round # first contact admits every device
expect "first contact offers nothing" 0 "${#OFFERED[@]}"
rel=$(sim_release "$T/v2.img" 2.0.0 2)

if [ "$MODE" == statistical ]; then
	rule='{statistical_halt: {acceptable_failure_rate: 10, confidence: 95}, min_finished: 3}'
else
	rule='{post_confirm_health: {max_regression_percent: 10, soak_seconds: 3600}}'
fi
body=$(jq -nc --arg rel "$rel" --argjson rule "$(jq -nc "$rule")" '{name: "canary", release_id: $rel,
	target: {hw_variants: ["pico2w"]},
	stages: [({percent: 50, success_threshold: 100, on_success: "auto", failure_threshold: 100} + $rule),
	         {percent: 100}],
	retry: {attempts: 1}}')
# A canary of at least three devices of this small fleet (the keyed hash differs per rollout).
for try in $(seq 1 40); do
	r=$(post /api/v1/rollouts "$body")
	[ "$(code_of "$r")" == 201 ] || { fail "create rollout: $r"; exit 1; }
	RID=$(jfield "$r" .id)
	mapfile -t CANARY < <(members_of "$RID" 1)
	[ ${#CANARY[@]} -ge 3 ] && [ ${#CANARY[@]} -lt "$N" ] && break
	post "/api/v1/rollouts/$RID/abort" '{"reason":"canary too small for the test"}' >/dev/null
	RID=
done
[ -n "$RID" ] || { fail "no rollout with a canary of 3 in 40 tries"; exit 1; }
expect "the rule is kept in the definition" true \
	"$(jfield "$(mcurl admin "/api/v1/rollouts/$RID")" "[.definition.stages[0] | has(\"$([ "$MODE" == statistical ] && echo statistical_halt || echo post_confirm_health)\")] | .[0]")"
r=$(post "/api/v1/rollouts/$RID/start" '{}')
expect "start" running "$(jfield "$r" .state)"
echo "$MODE canary rollout $RID: ${#CANARY[@]} devices: ${CANARY[*]}"

round
expect "offered to the canary only" "$(printf '%s\n' "${CANARY[@]}" | sort | xargs)" \
	"$(printf '%s\n' "${OFFERED[@]}" | sort | xargs)"
# The ticker judges every 5 s; the report and health paths judge at once.
for _ in $(seq 1 20); do
	r=$(mcurl admin "/api/v1/rollouts/$RID")
	[ "$(jfield "$r" .state)" == paused ] && break
	sleep 1
done
expect "halted in the canary" "paused 1" "$(jfield "$r" .state) $(jfield "$r" .stage)"
reason=$(jfield "$r" .reason)
echo "halt reason: $reason"
halt=$(jfield "$r" '[.verdicts[] | select(.verdict == "halt")][0]')
if [ "$MODE" == statistical ]; then
	re='^statistical halt in stage 1: ([0-9]+) of ([0-9]+) finished devices of stages 1 to 1 failed; the failure rate is above 10.00% with 95% confidence \(Wilson lower bound ([0-9.]+)%\)$'
	expect_match "the reason carries the numbers" "$re" "$reason"
	if [[ $reason =~ $re ]]; then
		f=${BASH_REMATCH[1]} n=${BASH_REMATCH[2]} lb=${BASH_REMATCH[3]}
		expect "failures are the finished (every trial reverts)" "$n" "$f"
		[ "$n" -ge 3 ] || fail "halted before min_finished: $n finished"
		# Halted on the third failure: 3 of 3 at 95 % puts the bound at 52.6 %.
		expect "the bound of $f of $n" 1 "$(awk -v b="$lb" 'BEGIN { print (b > 10 && b <= 100) }')"
	fi
	expect "verdict rule" statistical_halt "$(jq -r .rule <<<"$halt")"
	expect "verdict numbers: failures" 1 "$(jq -r '.numbers.failed >= 3' <<<"$halt" | sed 's/true/1/')"
	expect "rolled back counted" "${#OFFERED[@]}" "$(jfield "$r" '.progress.stages[0].devices.rolled_back')"
	for d in "${CANARY[@]}"; do expect "$d back on 1.0.0" 1.0.0 "${VER[$d]}"; done
else
	re='^post-confirm regression in stage 1: ([0-9]+) of ([0-9]+) covered devices of stages 1 to 1 regressed after the confirm \(more than 10%\): (.*)$'
	expect_match "the reason carries the numbers and the devices" "$re" "$reason"
	if [[ $reason =~ $re ]]; then
		k=${BASH_REMATCH[1]} n=${BASH_REMATCH[2]} named=${BASH_REMATCH[3]}
		expect "covered devices are the canary" "${#CANARY[@]}" "$n"
		expect "halted on the first regression past 10 %" 1 "$(( k * 100 > 10 * n && (k - 1) * 100 <= 10 * n ))"
		for d in ${named//,/ }; do
			[[ " ${CANARY[*]} " == *" $d "* ]] || fail "named $d is not in the canary"
		done
	fi
	expect "verdict rule" post_confirm_regression "$(jq -r .rule <<<"$halt")"
	expect "verdict numbers: regressed" 1 "$(jq -r '.numbers.regressed >= 1' <<<"$halt" | sed 's/true/1/')"
	# Every canary device confirmed: the regression came after the buy.
	expect "canary succeeded" "${#CANARY[@]}" "$(jfield "$r" '.progress.stages[0].devices.succeeded')"
	for d in "${CANARY[@]}"; do expect "$d runs 2.0.0" 2.0.0 "${VER[$d]}"; done
	expect "every canary device regressed (its health reports)" "${#CANARY[@]}" \
		"$(jfield "$r" .progress.post_confirm_health.regressed)"
	expect "the detail lists them" "$(printf '%s\n' "${CANARY[@]}" | sort | xargs)" \
		"$(jfield "$r" '.progress.post_confirm_health.regressed_devices[]' | sort | xargs)"
	expect "their counters are kept" "${#CANARY[@]}" \
		"$(db "SELECT count(*) FROM rollout_members WHERE rollout_id = '$RID' AND health_watchdog_resets >= 1 AND health_failed_checks >= 1 AND health_reboots >= 1")"
	# A malformed health object is refused and changes nothing.
	before=$(db_digest)
	r=$(checkin "${CANARY[0]}" "{\"hw_variant\":\"pico2w\",\"version\":\"2.0.0\",\"security_floor\":2,\"root_version\":1,\"active_slot\":\"B\",\"boot_state\":\"normal\",\"health\":{\"deployment_id\":\"d-1\",\"reboots\":-1,\"watchdog_resets\":0,\"failed_health_checks\":0,\"uptime_seconds\":1}}")
	expect "negative counter refused" "400 urn:ota:problem:invalid-field" "$(code_of "$r") $(jfield "$r" .type)"
	r=$(checkin "${CANARY[0]}" "{\"hw_variant\":\"pico2w\",\"version\":\"2.0.0\",\"security_floor\":2,\"root_version\":1,\"active_slot\":\"B\",\"boot_state\":\"normal\",\"health\":[]}")
	expect "health not an object refused" "400 urn:ota:problem:invalid-field" "$(code_of "$r") $(jfield "$r" .type)"
	expect "refusals changed nothing" "$before" "$(db_digest)"
fi
round
expect "nobody offered after the halt" 0 "${#OFFERED[@]}"
expect "no device outside the canary was offered 2.0.0" "${#CANARY[@]}" \
	"$(db "SELECT count(DISTINCT device_id) FROM deployments WHERE release_id = '$rel'")"
finish
