#!/usr/bin/env bash
# Acceptance: otad answers as docs/openapi.yaml says. A real otad with a few devices is called
# as each kind of client; every answer (status, content type, body) is recorded and then
# validated against the spec with a JSON Schema 2020-12 validator (tests/contract, Ajv, pinned
# by its package-lock.json and installed with `npm ci --offline` from the npm cache that
# scripts/install-deps.sh fills). Any undocumented status, content type or body shape fails; the
# schemas' `required` lists make a missing field fail too. Percents come back as sent, and
# rollout and principal writes answer what GET answers.
. "$(dirname "$0")/server_lib.sh"

HERE=$(cd "$(dirname "$0")/.." && pwd)
SPEC=$HERE/../docs/openapi.yaml
VALIDATOR=$T/contract
mkdir -p "$VALIDATOR"
cp "$HERE/contract/package.json" "$HERE/contract/package-lock.json" "$HERE/contract/validate.mjs" "$VALIDATOR/"
(cd "$VALIDATOR" && npm ci --offline --no-audit --no-fund >/dev/null 2>&1) ||
	{ echo "FAIL: npm ci --offline in tests/contract (run scripts/install-deps.sh)"; exit 1; }

make_pki
write_config
# Certificate renewal needs an issuing CA (an intermediate of the device CA), in [trust],
# the last section write_config writes.
"$OTA_SCRIPTS/dev-pki.sh" "$PKI" renewal >/dev/null
"$OTA_SCRIPTS/dev-pki.sh" "$PKI" device device-9001 >/dev/null
printf 'issuer_cert = %s\nissuer_key = %s\n' "$PKI/device-issuer.pem" "$PKI/device-issuer.key" >>"$CONF"
# Webhooks to loopback are registered below (nothing listens there: deliveries just fail).
printf '\n[webhooks]\nallow_networks = 127.0.0.0/8\n' >>"$CONF"
start_otad
REC=$T/records.jsonl
: >"$REC"

# call WHO METHOD PATH [curl args]: WHO is a device or operator certificate name (device-*
# goes to the device listener), "-" for none. Records the answer.
call() {
	local who=$1 method=$2 path=$3; shift 3
	local port=$MPORT id=() out=$T/body
	[[ $who == device-* || $who == new-* ]] && port=$DPORT
	[ "$who" != - ] && id=(--cert "$PKI/$who.pem" --key "$PKI/$who.key")
	local meta m=()
	[ "$method" == HEAD ] && m=(-I) || m=(-X "$method")
	meta=$(curl -sS --max-time 20 --cacert "$PKI/device-ca.pem" "${id[@]}" "${m[@]}" -o "$out" \
		-w '%{http_code} %{content_type}' "$@" "https://127.0.0.1:$port$path" 2>/dev/null || true)
	jq -nc --arg m "$method" --arg p "$path" --argjson s "${meta%% *}" --arg c "${meta#* }" \
		--rawfile b "$out" '{method:$m, path:$p, status:$s, content_type:$c, body:$b}' >>"$REC"
	cat "$out"
}
J=(-H 'Content-Type: application/json')

# Device API.
call device-0001 POST /device/v1/checkin "${J[@]}" -d "$CHECKIN" >/dev/null
call device-0002 POST /device/v1/checkin "${J[@]}" -d "$CHECKIN" >/dev/null
call device-0001 POST /device/v1/checkin "${J[@]}" -d '[1]' >/dev/null
call device-0001 POST /device/v1/checkin -d "$CHECKIN" >/dev/null
call - POST /device/v1/checkin "${J[@]}" -d "$CHECKIN" >/dev/null
head -c 5000 /dev/urandom >"$T/a.bin"
sha=$(sha256sum "$T/a.bin" | cut -d' ' -f1)
rel=$(release_of "$T/a.bin" 1.1.0 2)
dep=$(deploy device-0001 "$rel")
call device-0001 POST /device/v1/checkin "${J[@]}" -d "$CHECKIN" >/dev/null
call device-0001 GET "/device/v1/images/$sha" >/dev/null
call device-0001 GET "/device/v1/images/$sha" -r 0-99 >/dev/null
call device-0001 GET "/device/v1/images/$sha" -r 9999- >/dev/null
call device-0002 GET "/device/v1/images/$sha" >/dev/null
call device-0001 HEAD "/device/v1/images/$sha" >/dev/null
call device-0002 HEAD "/device/v1/images/$sha" >/dev/null
call device-0001 POST "/device/v1/deployments/$dep/events" "${J[@]}" -d '{"seq":1,"status":"downloading","progress":0}' >/dev/null
call device-0001 POST "/device/v1/deployments/$dep/events" "${J[@]}" -d '{"seq":1,"status":"failed"}' >/dev/null
call device-0002 POST "/device/v1/deployments/$dep/events" "${J[@]}" -d '{"seq":1,"status":"failed"}' >/dev/null
call device-0001 POST /device/v1/deployments/d-00000000000000000000000000000000/events "${J[@]}" -d '{"seq":1,"status":"failed"}' >/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/renew.key" \
	-subj /CN=device-9001 -out "$T/renew.csr" 2>/dev/null
call device-9001 POST /device/v1/certificate "${J[@]}" -d "$(jq -n --rawfile c "$T/renew.csr" '{csr:$c}')" >/dev/null
call device-9001 POST /device/v1/certificate "${J[@]}" -d '{"csr":"no request"}' >/dev/null
call device-0001 POST "/device/v1/deployments/$dep/events" -H 'Content-Type: text/plain' -d '{"seq":2,"status":"failed"}' >/dev/null

# Management API: a success and an error each.
call admin GET /api/v1/health >/dev/null
call - GET /api/v1/health >/dev/null
call admin GET /api/v1/releases >/dev/null
call admin GET "/api/v1/releases/$rel" >/dev/null
call admin GET /api/v1/releases/r-00000000000000000000000000000000 >/dev/null
call admin GET "/api/v1/deployments/$dep" >/dev/null
call admin GET /api/v1/deployments/d-00000000000000000000000000000000 >/dev/null
call admin GET /api/v1/devices/device-0001 >/dev/null
call admin GET /api/v1/devices/nobody >/dev/null
call admin GET /api/v1/devices >/dev/null
call admin GET '/api/v1/devices?limit=0' >/dev/null
call admin GET /api/v1/images >/dev/null
call auditor GET /api/v1/audit >/dev/null
call operator GET /api/v1/audit >/dev/null
call admin GET /api/v1/audit/pubkey >/dev/null
call admin GET /api/v1/principals >/dev/null
call operator GET /api/v1/principals >/dev/null
call admin GET /api/v1/tokens >/dev/null
call operator GET /api/v1/tokens >/dev/null
call admin GET /api/v1/audit/export >/dev/null
call operator GET /api/v1/audit/export >/dev/null
call admin GET /api/v1/audit/verify >/dev/null
call operator GET /api/v1/audit/verify >/dev/null
call operator GET /api/v1/audit/pubkey >/dev/null
call admin GET /metrics >/dev/null
call - GET /metrics >/dev/null
call admin GET '/api/v1/releases?limit=0' >/dev/null
call admin GET '/api/v1/images?limit=0' >/dev/null

# Writes: images, releases, roots, deployments, revocations.
head -c 3000 /dev/urandom >"$T/b.bin"
call admin POST /api/v1/images -H 'Content-Type: application/octet-stream' --data-binary @"$T/b.bin" >/dev/null
call auditor POST /api/v1/images -H 'Content-Type: application/octet-stream' --data-binary @"$T/b.bin" >/dev/null
"$OTA_SIGN" release --image "$T/b.bin" --name fw --version 1.2.0 --security-version 2 \
	--hw-variant pico2w --key "$T/release.key" --out "$T/b.json" >/dev/null
rel2=$(call admin POST /api/v1/releases "${J[@]}" --data-binary @"$T/b.json" | jq -r .id)
call admin POST /api/v1/releases "${J[@]}" -d '{}' >/dev/null
(cd "$T" && "$OTA_SIGN" root rotate --previous "$T/root-1.json" --sign root.key --out-dir "$T" >/dev/null)
call admin POST /api/v1/roots "${J[@]}" --data-binary @"$T/root-2.json" >/dev/null
call admin POST /api/v1/roots "${J[@]}" -d '{}' >/dev/null
call operator POST /api/v1/roots "${J[@]}" -d '{}' >/dev/null
call admin POST /api/v1/deployments "${J[@]}" -d "{\"device_id\":\"device-0002\",\"release_id\":\"$rel2\"}" >/dev/null
call admin POST /api/v1/deployments "${J[@]}" -d "{\"device_id\":\"nobody\",\"release_id\":\"$rel2\"}" >/dev/null
call admin POST /api/v1/revocations "${J[@]}" -d "{\"fingerprint\":\"$(printf 'ab%.0s' $(seq 32))\",\"reason\":\"lost\"}" >/dev/null
call operator POST /api/v1/revocations "${J[@]}" -d '{}' >/dev/null

# Device life cycle.
call admin POST /api/v1/devices "${J[@]}" -d '{"id":"device-0003","admission":"pending"}' >/dev/null
call admin POST /api/v1/devices "${J[@]}" -d '{"id":"device-0003"}' >/dev/null
call admin POST /api/v1/devices/device-0003/approve "${J[@]}" -d '{}' >/dev/null
call admin POST /api/v1/devices/nobody/approve "${J[@]}" -d '{}' >/dev/null
call admin POST /api/v1/devices/device-0003/reject "${J[@]}" -d '{}' >/dev/null
call admin POST /api/v1/devices/nobody/reject "${J[@]}" -d '{}' >/dev/null
call admin PUT /api/v1/devices/device-0003/tags "${J[@]}" -d '{"tags":["line=a"]}' >/dev/null
call admin PUT /api/v1/devices/device-0003/tags "${J[@]}" -d '{"tags":[" "]}' >/dev/null
call admin POST /api/v1/devices/device-0003/decommission "${J[@]}" -d '{}' >/dev/null
call admin POST /api/v1/devices/device-0003/decommission "${J[@]}" -d '{}' >/dev/null
call admin POST /api/v1/devices/device-0003/reprovision "${J[@]}" -d "{\"fingerprint\":\"$(printf 'cd%.0s' $(seq 32))\"}" >/dev/null
call admin POST /api/v1/devices/device-0003/reprovision "${J[@]}" -d '{"fingerprint":"x"}' >/dev/null

# Rollouts.
ro_def="{\"name\":\"r\",\"release_id\":\"$rel2\",\"stages\":[{\"percent\":100}]}"
call admin POST /api/v1/rollouts/plan "${J[@]}" -d "$ro_def" >/dev/null
call admin POST /api/v1/rollouts/plan "${J[@]}" -d '{}' >/dev/null
ro=$(call admin POST /api/v1/rollouts "${J[@]}" -d "$ro_def" | jq -r .id)
call admin POST /api/v1/rollouts "${J[@]}" -d '{}' >/dev/null
call admin GET /api/v1/rollouts >/dev/null
call admin GET '/api/v1/rollouts?limit=0' >/dev/null
call admin GET "/api/v1/rollouts/$ro" >/dev/null
call admin GET /api/v1/rollouts/ro-nothing >/dev/null
call admin GET "/api/v1/rollouts/$ro/plan" >/dev/null
call admin GET /api/v1/rollouts/ro-nothing/plan >/dev/null
for a in start pause resume approve; do
	call admin POST "/api/v1/rollouts/$ro/$a" "${J[@]}" -d '{}' >/dev/null
	call admin POST "/api/v1/rollouts/ro-nothing/$a" "${J[@]}" -d '{}' >/dev/null
done
call admin POST "/api/v1/rollouts/$ro/rollback" "${J[@]}" -d "{\"release_id\":\"$rel\"}" >/dev/null
call admin POST /api/v1/rollouts/ro-nothing/rollback "${J[@]}" -d "{\"release_id\":\"$rel\"}" >/dev/null
ro2=$(call admin POST /api/v1/rollouts "${J[@]}" -d "${ro_def/\"r\"/\"r2\"}" | jq -r .id)
call admin POST "/api/v1/rollouts/$ro2/abort" "${J[@]}" -d '{}' >/dev/null
call admin POST /api/v1/rollouts/ro-nothing/abort "${J[@]}" -d '{}' >/dev/null
call admin GET "/api/v1/rollouts/$ro/devices" >/dev/null
call admin GET /api/v1/rollouts/ro-nothing/devices >/dev/null
call admin GET "/api/v1/rollouts/$ro/devices/device-0001" >/dev/null
call admin GET /api/v1/rollouts/ro-nothing/devices/device-0001 >/dev/null

# Percents come back as sent (hundredths), and a write answers what GET answers, field by field.
same_as_get() { # WHAT ANSWER GET-ANSWER: equal but for the seconds spent in the stage
	expect "$1 answers what GET answers" "$(jq -S 'del(.time_in_stage_seconds)' <<<"$3")" \
		"$(jq -S 'del(.time_in_stage_seconds)' <<<"$2")"
}
same_fields_as_get() { # WHAT ANSWER GET-ANSWER: the same fields (a running rollout may move
	# between, and the ticker may judge it: the verdicts list is compared, not what is in it)
	local f='[paths | map(select(type == "string")) | join(".")] |
		map(select(startswith("verdicts.") | not)) | unique'
	expect "$1 answers the fields GET answers" "$(jq -c "$f" <<<"$3")" "$(jq -c "$f" <<<"$2")"
}
percents() { grep -o '"percent":[^,}]*' | cut -d: -f2 | tr '\n' ' '; }
pct_def="{\"name\":\"pct\",\"release_id\":\"$rel2\",\"stages\":[{\"percent\":0.01},{\"percent\":12.5},{\"percent\":99.99},{\"percent\":100}]}"
created=$(call admin POST /api/v1/rollouts "${J[@]}" -d "$pct_def")
ro_pct=$(jq -r .id <<<"$created")
got=$(call admin GET "/api/v1/rollouts/$ro_pct")
expect "percents as sent (create: definition, progress)" "0.01 12.5 99.99 100.0 0.01 12.5 99.99 100.0 " \
	"$(percents <<<"$created")"
expect "percents as sent (GET: definition, progress)" "0.01 12.5 99.99 100.0 0.01 12.5 99.99 100.0 " \
	"$(percents <<<"$got")"
expect "percents as sent (plan)" "0.01 12.5 99.99 100.0 " \
	"$(call admin GET "/api/v1/rollouts/$ro_pct/plan" | percents)"
same_as_get "rollout create" "$created" "$got"
expect "three decimals refused" 400 "$(call admin POST /api/v1/rollouts "${J[@]}" -d "${pct_def/12.5/12.345}" >/dev/null; jq -r .status <"$T/body")"
answer=$(call admin POST "/api/v1/rollouts/$ro_pct/start" "${J[@]}" -d '{}')
same_fields_as_get "rollout start" "$answer" "$(call admin GET "/api/v1/rollouts/$ro_pct")"
answer=$(call admin POST "/api/v1/rollouts/$ro_pct/pause" "${J[@]}" -d '{}')
same_as_get "rollout pause" "$answer" "$(call admin GET "/api/v1/rollouts/$ro_pct")"
answer=$(call admin POST "/api/v1/rollouts/$ro_pct/abort" "${J[@]}" -d '{}')
same_as_get "rollout abort" "$answer" "$(call admin GET "/api/v1/rollouts/$ro_pct")"

# Approving a rollout: a new device, the only one a rollout targets, confirms the release in a
# stage that waits for approval.
"$OTA_SCRIPTS/dev-pki.sh" "$PKI" device device-0004 >/dev/null
call device-0004 POST /device/v1/checkin "${J[@]}" -d "$CHECKIN" >/dev/null
call admin PUT /api/v1/devices/device-0004/tags "${J[@]}" -d '{"tags":["canary"]}' >/dev/null
ap_def="{\"name\":\"ap\",\"release_id\":\"$rel2\",\"target\":{\"tags\":{\"all\":[\"canary\"]}},\"stages\":[{\"percent\":99.99,\"on_success\":\"approval\"},{\"percent\":100}]}"
for try in 1 2 3; do # the device's position is random: its stage is 1 but one time in 10,000
	ro_ap=$(call admin POST /api/v1/rollouts "${J[@]}" -d "$ap_def" | jq -r .id)
	[ "$(call admin GET "/api/v1/rollouts/$ro_ap/devices/device-0004" | jq -r .joins_in_stage)" == 1 ] && break
done
call admin POST "/api/v1/rollouts/$ro_ap/start" "${J[@]}" -d '{}' >/dev/null
ap_dep=$(call device-0004 POST /device/v1/checkin "${J[@]}" -d "$CHECKIN" | jq -r .update.deployment_id)
call device-0004 POST "/device/v1/deployments/$ap_dep/events" "${J[@]}" -d '{"seq":1,"status":"confirmed","version":"1.2.0"}' >/dev/null
expect "the stage waits for approval" waiting_approval "$(call admin GET "/api/v1/rollouts/$ro_ap" | jq -r .state)"
answer=$(call admin POST "/api/v1/rollouts/$ro_ap/approve" "${J[@]}" -d '{}')
# (stage 2 adds no device: the rollout completes at once)
expect "approved: the next stage" "completed 2" "$(jq -r '"\(.state) \(.stage)"' <<<"$answer")"
same_as_get "rollout approve" "$answer" "$(call admin GET "/api/v1/rollouts/$ro_ap")"

# Principals and tokens.
created=$(call admin POST /api/v1/principals "${J[@]}" -d '{"name":"bob","role":"auditor"}')
expect "principal create answers what the list shows" \
	"$(call admin GET /api/v1/principals | jq -S '.items[] | select(.name == "bob")')" "$(jq -S . <<<"$created")"
answer=$(call admin POST /api/v1/principals/bob/disable "${J[@]}" -d '{}')
expect "principal disable answers what the list shows" \
	"$(call admin GET /api/v1/principals | jq -S '.items[] | select(.name == "bob")')" "$(jq -S . <<<"$answer")"
call admin POST /api/v1/principals "${J[@]}" -d '{"name":"alice","role":"operator"}' >/dev/null
call admin POST /api/v1/principals "${J[@]}" -d '{"name":"alice","role":"operator"}' >/dev/null
call admin POST /api/v1/principals/alice/disable "${J[@]}" -d '{}' >/dev/null
call admin POST /api/v1/principals/nobody/disable "${J[@]}" -d '{}' >/dev/null
call admin POST /api/v1/principals/alice/enable "${J[@]}" -d '{}' >/dev/null
call admin POST /api/v1/principals/nobody/enable "${J[@]}" -d '{}' >/dev/null
tok=$(call admin POST /api/v1/tokens "${J[@]}" -d '{"principal":"alice","expires_in_days":1}' | jq -r .id)
call admin POST /api/v1/tokens "${J[@]}" -d '{"principal":"nobody","expires_in_days":1}' >/dev/null
call admin DELETE "/api/v1/tokens/$tok" >/dev/null
call admin DELETE /api/v1/tokens/t-nothing >/dev/null

# Deltas: register (and a forged one), list, offer at check-in, download, delete.
cp "$T/b.bin" "$T/b0.bin"
printf 'older' | dd of="$T/b0.bin" bs=1 seek=100 conv=notrunc 2>/dev/null
"$OTA_SIGN" delta --base "$T/b0.bin" --target "$T/b.bin" --manifest "$T/b.json" \
	--key "$T/release.key" --out "$T/b.fwad" >/dev/null
dimg=$(call admin POST /api/v1/images -H 'Content-Type: application/octet-stream' --data-binary @"$T/b.fwad" | jq -r .sha256)
did=$(call admin POST "/api/v1/releases/$rel2/deltas?image=$dimg" "${J[@]}" --data-binary @"$T/b.fwad.json" | jq -r .id)
jq -c '.signatures[0].sig = "AAAA"' "$T/b.fwad.json" >"$T/forged.json"
call admin POST "/api/v1/releases/$rel2/deltas?image=$dimg" "${J[@]}" --data-binary @"$T/forged.json" >/dev/null
call admin GET "/api/v1/releases/$rel2/deltas" >/dev/null
call admin GET "/api/v1/releases/$(printf 'e%.0s' $(seq 64))/deltas" >/dev/null
base_sha=$(sha256sum "$T/b0.bin" | cut -d' ' -f1)
call device-0002 POST /device/v1/checkin "${J[@]}" -d "$(jq -c --arg s "$base_sha" '.active_image_sha256 = $s' <<<"$CHECKIN")" |
	jq -e .update.delta.url >/dev/null && ok || fail "no delta offered at check-in"
call device-0002 GET "/device/v1/images/$dimg" >/dev/null
call admin DELETE "/api/v1/releases/$rel2/deltas/$did" >/dev/null
call admin DELETE "/api/v1/releases/$rel2/deltas/$did" >/dev/null

# Deletes: an unused release and image; one in use.
head -c 1500 /dev/urandom >"$T/d.bin"
rel_d=$(release_of "$T/d.bin" 1.3.0 2)
call admin DELETE "/api/v1/releases/$rel_d" >/dev/null
call admin DELETE "/api/v1/releases/$rel" >/dev/null
call admin DELETE /api/v1/releases/r-nothing >/dev/null
head -c 1000 /dev/urandom >"$T/c.bin"
call admin POST /api/v1/images -H 'Content-Type: application/octet-stream' --data-binary @"$T/c.bin" >/dev/null
call admin DELETE "/api/v1/images/$(sha256sum "$T/c.bin" | cut -d' ' -f1)" >/dev/null
call admin DELETE "/api/v1/images/$sha" >/dev/null

# Events out: webhooks and the live stream (docs/events.md).
wh=$(call admin POST /api/v1/webhooks "${J[@]}" -d '{"url":"https://127.0.0.1:9/hook","types":["rollout.*"]}' | jq -r .id)
call admin POST /api/v1/webhooks "${J[@]}" -d '{"url":"ftp://127.0.0.1/hook","types":["*"]}' >/dev/null
call admin GET /api/v1/webhooks >/dev/null
call admin GET '/api/v1/webhooks?limit=0' >/dev/null
call admin GET "/api/v1/webhooks/$wh" >/dev/null
call admin GET /api/v1/webhooks/w-nothing >/dev/null
call admin POST "/api/v1/webhooks/$wh/redeliver" "${J[@]}" -d '{"from_seq":1}' >/dev/null
call admin POST /api/v1/webhooks/w-nothing/redeliver "${J[@]}" -d '{}' >/dev/null
call admin DELETE "/api/v1/webhooks/$wh" >/dev/null
call admin DELETE /api/v1/webhooks/w-nothing >/dev/null
call auditor GET '/api/v1/events?after=0' --max-time 2 >/dev/null
call auditor GET /api/v1/events -H 'Last-Event-ID: x' >/dev/null

n=$(wc -l <"$REC")
# Every operation with a success and a documented error.
out=$(node "$VALIDATOR/validate.mjs" "$SPEC" "$REC" --require-all 2>&1) &&
	ok || fail "answers that differ from docs/openapi.yaml"
echo "$out"
expect_match "every answer validated" "^contract: $n answers" "$(tail -n 1 <<<"$out")"
finish
