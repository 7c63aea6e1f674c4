#!/usr/bin/env bash
# otactl against a real otad (SQLite) on 127.0.0.1 with a PKI made at test time: every command,
# the server's state checked afterwards (through the database or the API with curl), the
# configuration's precedence (file < environment < flags) and strictness, the exit statuses
# (refused role, wrong CA, missing config file, not found, usage), paging past one page of
# devices, `rollouts watch` ending on a completed (0) and on a halted (8) rollout while devices
# speak the device API, and the upload progress bar on a pseudo-terminal (script(1)).
. "$(dirname "$0")/server_lib.sh"
: "${OTACTL:?OTACTL must name the otactl binary}"
: "${OTA_AUDIT_VERIFY:?OTA_AUDIT_VERIFY must name ota-audit-verify}"

make_pki
write_config
# Webhooks to loopback are registered below (nothing listens there).
printf '\n[webhooks]\nallow_networks = 127.0.0.0/8\n' >>"$CONF"
start_otad
export HOME=$T/home OTACTL_AUDIT_VERIFY=$OTA_AUDIT_VERIFY
unset OTACTL_SERVER OTACTL_CA OTACTL_CERT OTACTL_KEY OTACTL_TOKEN_FILE OTACTL_CONFIG XDG_CONFIG_HOME
mkdir -p "$HOME/.config/otactl"
URL=https://127.0.0.1:$MPORT

# run ARGS...: otactl; sets RC, OUT (stdout) and ERR (stderr).
run() {
	RC=0
	OUT=$("$OTACTL" "$@" 2>"$T/err") || RC=$?
	ERR=$(cat "$T/err")
	if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T/err"; then
		fail "sanitizer report from otactl $*: $ERR"
	fi
}
# as WHO ARGS...: otactl with WHO's certificate from flags.
as() { local w=$1; shift; run --server "$URL" --ca "$PKI/device-ca.pem" --cert "$PKI/$w.pem" --key "$PKI/$w.key" "$@"; }
adm() { as admin "$@"; }
op() { as operator "$@"; }
aud() { as auditor "$@"; }
lines() { [ -z "$1" ] && echo 0 || wc -l <<<"$1"; }

# ---- configuration: file < environment < flags, strict file, missing file ----
cat >"$HOME/.config/otactl/config" <<EOF
# otactl test configuration; relative paths are relative to this folder
server = $URL
ca = $PKI/device-ca.pem
cert = $PKI/admin.pem
key = $PKI/admin.key
EOF
run config check
expect "config check from the file" 0 "$RC"
expect_match "config check names the file" "config file: $HOME/.config/otactl/config" "$OUT"
expect_match "config check shows the server's view" "the server sees: admin, role admin" "$OUT"
OTACTL_CERT=$PKI/operator.pem OTACTL_KEY=$PKI/operator.key run config check
expect_match "the environment overrides the file" "role operator" "$OUT"
OTACTL_CERT=$PKI/operator.pem OTACTL_KEY=$PKI/operator.key run --cert "$PKI/auditor.pem" --key "$PKI/auditor.key" config check
expect_match "flags override the environment" "the server sees: auditor, role auditor" "$OUT"
run --json config check
expect "config check --json" "admin admin" "$(jq -r '.caller + " " + .role' <<<"$OUT")"

printf 'server = %s\nbogus = 1\n' "$URL" >"$T/bad.conf"
run --config "$T/bad.conf" health
expect "unknown config key exit" 2 "$RC"
expect "unknown config key message" "otactl: $T/bad.conf:2: unknown key \"bogus\" (known: server, ca, cert, key, token_file)" "$ERR"
printf 'server = %s\nserver = %s\n' "$URL" "$URL" >"$T/dup.conf"
run --config "$T/dup.conf" health
expect "duplicate config key exit" 2 "$RC"
expect_match "duplicate config key message" "dup.conf:2: duplicate key \"server\" \\(first on line 1\\)" "$ERR"
run --config "$T/missing.conf" health
expect "missing config file exit" 2 "$RC"
expect "missing config file message" "otactl: config file $T/missing.conf: No such file or directory" "$ERR"
OTACTL_CONFIG=$T/missing.conf run health
expect "missing OTACTL_CONFIG file exit" 2 "$RC"
# Relative paths in a config file are relative to its folder.
mkdir -p "$T/cfgdir" && cp "$PKI/device-ca.pem" "$PKI/operator.pem" "$PKI/operator.key" "$T/cfgdir/"
printf 'server = %s\nca = device-ca.pem\ncert = operator.pem\nkey = operator.key\n' "$URL" >"$T/cfgdir/config"
(cd / && OTACTL_CONFIG=$T/cfgdir/config "$OTACTL" config check >"$T/out" 2>&1) && RC=0 || RC=$?
expect "relative paths in the config file" 0 "$RC"
expect_match "relative paths: the operator" "role operator" "$(cat "$T/out")"

# ---- connection failures and usage ----
run --server "$URL" --ca "$PKI/operator-ca.pem" --cert "$PKI/admin.pem" --key "$PKI/admin.key" health
expect "wrong CA exit" 3 "$RC"
expect "wrong CA: one line" 1 "$(lines "$ERR")"
expect_match "wrong CA message" "^otactl: cannot reach $URL: .*certificate" "$ERR"
run --server "https://127.0.0.1:1" health
expect "refused connection exit" 3 "$RC"
run --server "http://127.0.0.1:$MPORT" health
expect "plain http is a usage error" 2 "$RC"
run devices frobnicate
expect "unknown subcommand exit" 2 "$RC"
run nosuchcommand
expect "unknown command exit" 2 "$RC"
run devices show
expect "missing argument exit" 2 "$RC"
expect_match "missing argument usage" "Usage: otactl devices show DEVICE" "$ERR"
run devices list --nope
expect "unknown option exit" 2 "$RC"
run
expect "no command exit" 2 "$RC"

# --help for every command, and for every group.
run --help
expect "otactl --help" 0 "$RC"
HELP=$OUT
NCMD=0
while read -r name; do
	# shellcheck disable=SC2086
	run $name --help
	expect "otactl $name --help exit" 0 "$RC"
	expect_match "otactl $name --help" "^Usage: otactl $name" "$OUT"
	NCMD=$((NCMD + 1))
done < <(sed -n '/^Commands:/,$p' <<<"$HELP" | tail -n +2 | cut -c3-24 | sed 's/ *$//')
expect_match "help for every command" "^(4[0-9]|5[0-9])$" "$NCMD"
expect_match "the help lists rollouts watch" "rollouts watch" "$HELP"
run rollouts --help
expect_match "group help lists its commands" "rollouts watch" "$OUT"

adm health
expect "health" 0 "$RC"
expect_match "health: status" "status: +ok" "$OUT"
expect_match "health: root version" "root_version: +1" "$OUT"

# ---- a refused role: exit 1 and one line ----
head -c 5000 /dev/urandom >"$T/small.bin"
aud images upload "$T/small.bin"
expect "auditor upload exit" 1 "$RC"
expect "auditor upload: one line" 1 "$(lines "$ERR")"
expect "auditor upload message" "otactl: The caller's role may not do this: role auditor may not call POST /api/v1/images (HTTP 403)" "$ERR"
expect "refused upload stored nothing" 0 "$(db 'SELECT count(*) FROM images')"
op principals list
expect "operator may not list principals" 1 "$RC"

# ---- devices: paging past one page, filters, life cycle ----
for i in 1 2 3 4 5 6 7; do
	"$OTA_SCRIPTS/dev-pki.sh" "$PKI" device "pg-$i" >/dev/null
	checkin "pg-$i" >/dev/null
done
op devices list --page-size 3
expect "devices list exit" 0 "$RC"
expect "devices list: header + 7 devices over 3 pages" 8 "$(lines "$OUT")"
expect_match "devices list header" "^ID +ADMISSION +STATUS +HW +VERSION +FLOOR +TAGS +LAST SEEN" "$OUT"
expect_match "devices list: the last page's device" "pg-7 +approved +admitted +pico2w +1.0.0" "$OUT"
op --json devices list --page-size 2
expect "devices list --json: every page" 7 "$(jq '.items | length' <<<"$OUT")"
expect "devices list --json: next_cursor null" null "$(jq -c .next_cursor <<<"$OUT")"
op --quiet devices list --page-size 3 --limit 5
expect "devices list --limit 5" "pg-1 pg-2 pg-3 pg-4 pg-5" "$(echo $OUT)"
op devices list --hw-variant nosuch
expect "devices list filter: no match" 1 "$(lines "$OUT")"

op devices tag pg-1 line=3 plant-a
expect "devices tag" 0 "$RC"
expect "devices tag: stored" '["line=3","plant-a"]' "$(body_of "$(mcurl admin /api/v1/devices/pg-1)" | jq -c .tags)"
op devices untag pg-1 plant-a
expect "devices untag: stored" '["line=3"]' "$(body_of "$(mcurl admin /api/v1/devices/pg-1)" | jq -c .tags)"
op --quiet devices list --tag line=3
expect "devices list --tag" pg-1 "$OUT"
op devices show pg-1
expect_match "devices show" "tags +\\[\"line=3\"\\]" "$OUT"
op devices show nosuch
expect "devices show: not found exit" 4 "$RC"
expect "devices show: not found one line" 1 "$(lines "$ERR")"

op devices register pre-1 --pending
expect "devices register" 0 "$RC"
op devices register pre-2 --pending
op devices approve pre-1
expect "devices approve" 0 "$RC"
expect "devices approve: stored" approved "$(db "SELECT admission FROM devices WHERE id='pre-1'")"
op devices reject pre-2
expect "devices reject: stored" rejected "$(db "SELECT admission FROM devices WHERE id='pre-2'")"
op devices decommission pg-7
expect "devices decommission: stored" decommissioned "$(db "SELECT status FROM devices WHERE id='pg-7'")"
FP=$(printf '%064d' 7)
op devices reprovision pg-7 --fingerprint "$FP"
expect "devices reprovision" 0 "$RC"
expect "devices reprovision: stored" "$FP admitted" "$(db "SELECT fingerprint || ' ' || status FROM devices WHERE id='pg-7'")"
op devices reprovision pg-7
expect "devices reprovision without --fingerprint" 2 "$RC"

# ---- images, releases, roots, deployments ----
head -c 300000 /dev/urandom >"$T/fw-1.1.0.bin"
"$OTA_SIGN" release --image "$T/fw-1.1.0.bin" --name fw --version 1.1.0 --security-version 2 \
	--hw-variant pico2w --key "$T/release.key" --out "$T/fw-1.1.0.json" >/dev/null
op releases add "$T/fw-1.1.0.json"
expect "releases add before the upload: not found" 4 "$RC"
expect_match "releases add before the upload: says so" "is not uploaded: run otactl images upload FILE first" "$ERR"
expect "no release registered" 0 "$(db 'SELECT count(*) FROM releases')"
op images upload "$T/fw-1.1.0.bin"
expect "images upload" 0 "$RC"
SHA=$(sha256sum <"$T/fw-1.1.0.bin" | cut -d' ' -f1)
expect "images upload prints the hash" "$SHA  300000 bytes" "$OUT"
expect "no progress bar when stderr is not a terminal" "" "$ERR"
expect "image stored" 300000 "$(stat -c %s "$DATA/images/$SHA")"
op images list
expect_match "images list" "$SHA +300000 +0" "$OUT"
REL=$(op --quiet releases add "$T/fw-1.1.0.json"; echo "$OUT")
expect "releases add --quiet prints the id" 64 "${#REL}"
expect "release stored" 1 "$(db "SELECT count(*) FROM releases WHERE id='$REL'")"
op releases list
expect_match "releases list" "$REL +fw +1.1.0 +2 +pico2w +300000" "$OUT"
op releases show "$REL"
expect_match "releases show" "version: +1.1.0" "$OUT"
op images delete "$SHA"
expect "images delete in use: refused" 1 "$RC"
expect_match "images delete in use: one line" "^otactl: .*\\(HTTP 409\\)$" "$ERR"

op --quiet deploy pg-2 "$REL"
expect "deploy" 0 "$RC"
DEP=$OUT
expect "deployment stored" "pg-2 active" "$(db "SELECT device_id || ' ' || status FROM deployments WHERE id='$DEP'")"
op deployments show "$DEP"
expect_match "deployments show" "status: +active" "$OUT"
op deploy pg-2 "$REL"
expect "deploy twice: refused" 1 "$RC"

(cd "$T" && "$OTA_SIGN" root rotate --previous "$T/root-1.json" --sign root.key --out-dir "$T" >/dev/null)
op roots add "$T/root-2.json"
expect "roots add as operator: refused" 1 "$RC"
adm roots add "$T/root-2.json"
expect "roots add" 0 "$RC"
adm health
expect_match "root 2 is trusted" "root_version: +2" "$OUT"

head -c 1000 /dev/urandom >"$T/spare.bin"
op --quiet images upload "$T/spare.bin"
SPARE=$OUT
op images delete "$SPARE"
expect "images delete" 0 "$RC"
expect "image record deleted" 0 "$(db "SELECT count(*) FROM images WHERE sha256='$SPARE'")"

# The upload progress bar on a pseudo-terminal.
head -c 3000000 /dev/urandom >"$T/big.bin"
script -q -e -c "'$OTACTL' --server $URL --ca '$PKI/device-ca.pem' --cert '$PKI/operator.pem' --key '$PKI/operator.key' images upload '$T/big.bin'" /dev/null >"$T/tty.out" 2>&1 && RC=0 || RC=$?
expect "upload on a terminal" 0 "$RC"
TTY=$(tr '\r' '\n' <"$T/tty.out")
expect_match "progress bar drawn" "upload \\[#{30}\\] 100% 2.9 MiB of 2.9 MiB, [0-9.]+ [KMG]?i?B/s" "$TTY"
expect_match "the answer after the bar" "$(sha256sum <"$T/big.bin" | cut -d' ' -f1)  3000000 bytes" "$TTY"

# ---- rollouts, driven by devices speaking the device API ----
RD=(rd-1 rd-2 rd-3 rd-4)
declare -A VER
for d in "${RD[@]}"; do
	"$OTA_SCRIPTS/dev-pki.sh" "$PKI" device "$d" >/dev/null
	VER[$d]=1.0.0
done
rig_checkin() { checkin "$1" "{\"hw_variant\":\"rig\",\"version\":\"${VER[$1]}\",\"security_floor\":1,\"root_version\":2,\"active_slot\":\"A\",\"boot_state\":\"normal\"}"; }
# round good|bad: every device checks in (and joins the rollout), then each offered update is
# downloaded and reported to its end, confirmed (good) or rolled back (bad).
round() {
	local d a dep ver s=0
	declare -A ans=()
	for d in "${RD[@]}"; do ans[$d]=$(rig_checkin "$d"); done
	for d in "${RD[@]}"; do
		a=${ans[$d]}
		[ "$(jfield "$a" .action)" == update ] || continue
		dep=$(jfield "$a" .update.deployment_id)
		ver=$(jfield "$a" .update.manifest.payload | base64 -d | jq -r .version)
		s=0
		for st in downloading downloaded installing rebooting trial; do
			s=$((s + 1))
			report "$d" "$dep" "{\"seq\":$s,\"status\":\"$st\"}" >/dev/null
		done
		if [ "$1" == good ]; then
			report "$d" "$dep" "{\"seq\":$((s + 1)),\"status\":\"confirmed\",\"version\":\"$ver\"}" >/dev/null
			VER[$d]=$ver
		else
			report "$d" "$dep" "{\"seq\":$((s + 1)),\"status\":\"rolled_back\",\"reason\":\"trial image not bought\"}" >/dev/null
		fi
	done
}
for d in "${RD[@]}"; do rig_checkin "$d" >/dev/null; done
rig_release() { # VERSION: upload, sign and register a release for the rig; prints its id
	head -c 2000 /dev/urandom >"$T/rig-$1.bin"
	"$OTA_SIGN" release --image "$T/rig-$1.bin" --name rig --version "$1" --security-version 2 \
		--hw-variant rig --key "$T/release.key" --out "$T/rig-$1.json" >/dev/null
	"$OTACTL" --server "$URL" --ca "$PKI/device-ca.pem" --cert "$PKI/operator.pem" --key "$PKI/operator.key" -q images upload "$T/rig-$1.bin" >/dev/null
	"$OTACTL" --server "$URL" --ca "$PKI/device-ca.pem" --cert "$PKI/operator.pem" --key "$PKI/operator.key" -q releases add "$T/rig-$1.json"
}
R1=$(rig_release 1.1.0)
R2=$(rig_release 1.2.0)

op --quiet rollouts create --name good --release "$R1" --hw-variant rig --stage 100:failure=0,min=4 --budget 0 --retry 1:0
expect "rollouts create from flags" 0 "$RC"
GOOD=$OUT
expect "rollout stored as a draft" draft "$(db "SELECT state FROM rollouts WHERE id='$GOOD'")"
expect "rollout definition" '["rig"] [{"percent":100,"failure_threshold":0,"min_finished":4}]' \
	"$(body_of "$(mcurl admin "/api/v1/rollouts/$GOOD")" | jq -c '.definition.target.hw_variants, [.definition.stages[] | {percent, failure_threshold, min_finished}]' | paste -sd' ')"
op rollouts start "$GOOD"
expect "rollouts start" 0 "$RC"
expect "rollout running" running "$(db "SELECT state FROM rollouts WHERE id='$GOOD'")"
OP=(--server "$URL" --ca "$PKI/device-ca.pem" --cert "$PKI/operator.pem" --key "$PKI/operator.key")
"$OTACTL" "${OP[@]}" rollouts watch "$GOOD" --interval 1 >"$T/watch-good.out" 2>&1 &
WATCH=$!
sleep 1
round good
RC=0
timeout 60 tail --pid=$WATCH -f /dev/null || fail "watch did not end"
wait "$WATCH" || RC=$?
expect "watch on a completed rollout exits 0" 0 "$RC"
expect_match "watch ends with the end state" "rollout $GOOD: completed" "$(cat "$T/watch-good.out")"
expect "rollout completed" completed "$(db "SELECT state FROM rollouts WHERE id='$GOOD'")"
op rollouts watch "$GOOD"
expect "watch of a completed rollout" 0 "$RC"
expect_match "watch view: the stage line" "1 +100% +4 +4 +0 +0 +0 +\\[#{20}\\]" "$OUT"
op rollouts list
expect_match "rollouts list" "$GOOD +good +completed +1 +1" "$OUT"
op rollouts devices "$GOOD"
expect "rollouts devices: 4 members" 5 "$(lines "$OUT")"
expect_match "rollouts devices: succeeded" "rd-1 +1 +succeeded" "$OUT"
op rollouts show "$GOOD"
expect_match "rollouts show" "good +completed" "$OUT"

cat >"$T/bad-rollout.json" <<EOF
{"name": "bad", "release_id": "$R2", "target": {"hw_variants": ["rig"]},
 "stages": [{"percent": 100, "failure_threshold": 0, "min_finished": 1}]}
EOF
op --quiet rollouts create -f "$T/bad-rollout.json"
expect "rollouts create -f" 0 "$RC"
BAD=$OUT
op rollouts start "$BAD"
"$OTACTL" "${OP[@]}" rollouts watch "$BAD" --interval 1 >"$T/watch-bad.out" 2>&1 &
WATCH=$!
sleep 1
round bad
RC=0
timeout 60 tail --pid=$WATCH -f /dev/null || fail "watch did not end"
wait "$WATCH" || RC=$?
expect "watch on a halted rollout exits 8" 8 "$RC"
expect_match "watch says halted" "rollout $BAD: halted: failure threshold" "$(cat "$T/watch-bad.out")"
expect "halted rollout is paused" paused "$(db "SELECT state FROM rollouts WHERE id='$BAD'")"
op rollouts resume "$BAD"
expect "rollouts resume" 0 "$RC"
expect "resumed" running "$(db "SELECT state FROM rollouts WHERE id='$BAD'")"
op rollouts pause "$BAD" --reason "line stop"
expect "rollouts pause" 0 "$RC"
expect "paused with the reason" "paused paused by operator: line stop" "$(db "SELECT state || ' ' || reason FROM rollouts WHERE id='$BAD'")"
op rollouts approve "$BAD"
expect "approve of a paused rollout: refused" 1 "$RC"
expect_match "approve refused: one line" "^otactl: .*\\(HTTP 409\\)$" "$ERR"
op rollouts rollback "$BAD" --release "$R1"
expect "rollouts rollback" 0 "$RC"
expect_match "rollouts rollback answer" "deployments created" "$OUT"
expect "rolled back rollout is aborted" aborted "$(db "SELECT state FROM rollouts WHERE id='$BAD'")"
op rollouts watch "$BAD"
expect "watch of an aborted rollout exits 8" 8 "$RC"

op --quiet rollouts create --name third --release "$R1" --hw-variant rig --stage 50:approval \
	--stage 100 --window mon,tue,wed,thu,fri,sat,sun@00:00+1440/UTC --budget 2 --budget-per-tag line=1 \
	--tag-any line=3 --baseline 1.0.0
expect "rollouts create with every flag" 0 "$RC"
THIRD=$OUT
expect "window, budget, target stored" '{"days":["mon","tue","wed","thu","fri","sat","sun"],"duration_minutes":1440,"start":"00:00","time_zone":"UTC"} {"max_updating":2,"per_tag":{"key":"line","max_updating":1}} "approval"' \
	"$(body_of "$(mcurl admin "/api/v1/rollouts/$THIRD")" | jq -cS '.definition.window, .definition.budget, .definition.stages[0].on_success' | paste -sd' ')"
op rollouts create --name x --release "$R1" --stage 0
expect "bad --stage: usage" 2 "$RC"
op rollouts abort "$THIRD" --reason "not needed"
expect "rollouts abort" 0 "$RC"
expect "aborted" aborted "$(db "SELECT state FROM rollouts WHERE id='$THIRD'")"
op rollouts show r-00000000000000000000000000000000
expect "rollouts show: not found" 4 "$RC"

# ---- principals and tokens ----
adm principals add ci-bot operator
expect "principals add" 0 "$RC"
expect "principal stored" operator "$(db "SELECT role FROM principals WHERE name='ci-bot'")"
adm principals list
expect_match "principals list" "ci-bot +operator +no" "$OUT"
adm tokens create ci-bot --days 30 --out "$T/ci.token"
expect "tokens create" 0 "$RC"
expect "token file mode" 600 "$(stat -c %a "$T/ci.token")"
TOK_ID=$(sed -n 's/^token \(t-[0-9a-f]*\) .*/\1/p' <<<"$OUT")
expect_match "tokens create names the token" "^t-[0-9a-f]{16}$" "$TOK_ID"
run --server "$URL" --ca "$PKI/device-ca.pem" --token-file "$T/ci.token" config check
expect_match "the token's identity" "the server sees: ci-bot, role operator" "$OUT"
adm tokens list
expect_match "tokens list" "$TOK_ID +ci-bot +operator" "$OUT"
adm principals disable ci-bot
expect "principal disabled" 1 "$(db "SELECT disabled FROM principals WHERE name='ci-bot'")"
run --server "$URL" --ca "$PKI/device-ca.pem" --token-file "$T/ci.token" health
expect "a disabled principal's token is refused" 1 "$RC"
adm principals enable ci-bot
adm tokens revoke "$TOK_ID"
expect "tokens revoke" 0 "$RC"
run --server "$URL" --ca "$PKI/device-ca.pem" --token-file "$T/ci.token" health
expect "a revoked token is refused" 1 "$RC"
expect "refused token: one line" 1 "$(lines "$ERR")"

# ---- webhooks ----
adm webhooks add ftp://127.0.0.1/h '*'
expect "webhooks add: another scheme is refused" 1 "$RC"
expect_match "webhooks add: the refusal names why" "scheme" "$ERR"
adm webhooks add https://127.0.0.1:9/h 'rollout.*,deployment.outcome' --secret-out "$T/wh.secret"
expect "webhooks add" 0 "$RC"
expect "secret file mode" 600 "$(stat -c %a "$T/wh.secret")"
expect_match "secret in the file" '^[0-9a-f]{64}$' "$(cat "$T/wh.secret")"
WH_ID=$(sed -n 's/^webhook \(w-[0-9a-f]*\):.*/\1/p' <<<"$OUT")
expect_match "webhooks add names the webhook" "^w-[0-9a-f]{32}$" "$WH_ID"
adm webhooks list
expect_match "webhooks list" "$WH_ID +https://127.0.0.1:9/h +rollout.\*,deployment.outcome +active" "$OUT"
adm webhooks redeliver "$WH_ID" --from 1
expect "webhooks redeliver" "0 1" "$RC $(db "SELECT count(*) FROM audit_log WHERE action='webhook.redeliver'")"
adm webhooks show w-nothing
expect "webhooks show: not found" 4 "$RC"
adm webhooks delete "$WH_ID"
expect "webhooks delete" "0 0" "$RC $(db "SELECT count(*) FROM webhooks")"

adm revoke "$(openssl x509 -in "$PKI/device-0003.pem" -outform DER | sha256sum | cut -d' ' -f1)" --reason lost
expect "revoke a certificate" 0 "$RC"
expect "revoked device is refused" 403 "$(code_of "$(checkin device-0003)")"

op metrics
expect_match "metrics" "ota_up 1" "$OUT"

# ---- audit ----
aud audit query --action device.approve
expect "audit query" 0 "$RC"
expect_match "audit query: the approval" "operator +operator +device.approve" "$OUT"
aud --json audit query --page-size 5
expect "audit query pages to the end" "$(db 'SELECT count(*) FROM audit_log')" "$(jq '.items | length' <<<"$OUT")"
aud audit export "$T/audit.ndjson"
expect "audit export" 0 "$RC"
expect "export has every entry" "$(db 'SELECT count(*) FROM audit_log')" "$(grep -c '"kind":"entry"' "$T/audit.ndjson")"
script -q -e -c "'$OTACTL' --server $URL --ca '$PKI/device-ca.pem' --cert '$PKI/auditor.pem' --key '$PKI/auditor.key' audit export '$T/audit-tty.ndjson'" /dev/null >"$T/tty.out" 2>&1 && RC=0 || RC=$?
expect "audit export on a terminal" 0 "$RC"
expect_match "audit export progress" "download .*[0-9.]+ [KMG]?i?B/s" "$(tr '\r' '\n' <"$T/tty.out")"
aud audit pubkey "$T/audit.pub"
expect_match "audit pubkey" "BEGIN PUBLIC KEY" "$(cat "$T/audit.pub")"
aud audit verify
expect "audit verify on the server" 0 "$RC"
expect_match "audit verify output" "^OK: [0-9]+ entries" "$OUT"
aud audit verify "$T/audit.ndjson" --pubkey "$T/audit.pub"
expect "audit verify offline" 0 "$RC"
expect_match "offline verifier output" "^OK: " "$OUT"
sed -i '3s/"actor":"[^"]*"/"actor":"mallory"/' "$T/audit.ndjson"
aud audit verify "$T/audit.ndjson" --pubkey "$T/audit.pub"
expect "audit verify of an edited export" 7 "$RC"
op audit query
expect "an operator may not read the audit log" 1 "$RC"

# ---- deleting a release nothing references ----
op releases delete "$R2"
expect "releases delete in use (a rollout): refused" 1 "$RC"
head -c 700 /dev/urandom >"$T/lone.bin"
"$OTA_SIGN" release --image "$T/lone.bin" --name lone --version 9.0.0 --security-version 2 \
	--hw-variant pico2w --key "$T/release.key" --out "$T/lone.json" >/dev/null
op -q images upload "$T/lone.bin"
LONE=$(op -q releases add "$T/lone.json"; echo "$OUT")
op releases delete "$LONE"
expect "releases delete" 0 "$RC"
expect "release deleted" 0 "$(db "SELECT count(*) FROM releases WHERE id='$LONE'")"

finish
