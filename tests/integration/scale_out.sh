#!/usr/bin/env bash
# Scale-out: three otad instances on one PostgreSQL store and one shared data folder, behind
# HAProxy in TCP mode (TLS and the device's certificate go through to otad unchanged), run a
# staged rollout (1 % -> 10 % -> 100 %, automatic advance, a budget of devices updating at
# once) on 2,000 simulated devices (ota-fleet-sim, the real agent core), while one instance is
# killed (SIGKILL) in stage 2 and started again a few seconds later. It fails unless the
# rollout completes, every report the server acknowledged is stored exactly once, the devices
# updating at once (rebuilt from the stored deployments and events) never passed the budget,
# the audit export verifies offline with DATA/audit.pub, and the three instances, started at
# once on an empty data folder, sign with that one key.
#
# Needs: OTAD, OTA_SIGN, OTA_SCRIPTS, OTA_AGENT (mkimage), OTA_FLEET_SIM, OTA_AUDIT_VERIFY;
# haproxy and PostgreSQL 15 (scripts/install-deps.sh); everything on 127.0.0.1 only.
# SCALE_DEVICES, SCALE_BUDGET and SCALE_TIMEOUT change the figures for a run by hand.
export OTA_TEST_BACKEND=postgresql
LOG_LEVEL=notice
source "$(dirname "$0")/server_lib.sh"
: "${OTA_AGENT:?OTA_AGENT must name ota-agent}"
: "${OTA_FLEET_SIM:?OTA_FLEET_SIM must name ota-fleet-sim}"
: "${OTA_AUDIT_VERIFY:?OTA_AUDIT_VERIFY must name ota-audit-verify}"
if ! command -v haproxy >/dev/null; then
	echo "SKIP: haproxy is not installed (scripts/install-deps.sh)"
	exit 77
fi

N=3                              # otad instances
DEVICES=${SCALE_DEVICES:-2000}   # simulated devices
BUDGET=${SCALE_BUDGET:-50}       # budget.max_updating of the rollout
TIMEOUT=${SCALE_TIMEOUT:-480}    # seconds the rollout may take once started
POLL=450                         # [device] poll_interval, device seconds
SCALE=15                         # device clocks run this much faster: a poll every 30 s
THREADS=${SCALE_THREADS:-48}     # simulator workers
KILLED=3                         # the instance killed in stage 2 (instance 1 is the operators')
declare -a PID DP MP
HA_PID=
SIM_PID=
t_begin=$(date +%s)

# Stops what this test started (the simulator, HAProxy, the instances but the first, whose
# clean stop server_lib.sh's cleanup checks), then that cleanup (PostgreSQL, the folder).
scale_cleanup() {
	local rc=$? i orc
	[ -z "$SIM_PID" ] || { kill -TERM "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; }
	[ -z "$HA_PID" ] || { kill -TERM "$HA_PID" 2>/dev/null || true; wait "$HA_PID" 2>/dev/null || true; }
	for i in $(seq 2 $N); do
		[ -n "${PID[$i]:-}" ] && kill -0 "${PID[$i]}" 2>/dev/null || continue
		kill -TERM "${PID[$i]}" 2>/dev/null || true
		orc=0
		wait "${PID[$i]}" || orc=$?
		[ $orc -eq 0 ] || { echo "FAIL: otad $i exited with status $orc on SIGTERM"; rc=1; }
	done
	for i in $(seq 2 $N); do
		if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T/otad-$i.log" 2>/dev/null; then
			echo "FAIL: sanitizer report in the log of otad $i"; rc=1
		fi
		if [ $rc -ne 0 ] || [ "$FAILS" -ne 0 ]; then
			echo "---- otad $i log (last 20 lines) ----"
			tail -n 20 "$T/otad-$i.log" 2>/dev/null || true
		fi
	done
	if [ $rc -ne 0 ] || [ "$FAILS" -ne 0 ]; then
		echo "---- haproxy (last 20 lines) ----"
		tail -n 20 "$T/haproxy.log" 2>/dev/null || true
	fi
	cleanup "$rc"
}
trap scale_cleanup EXIT

# start_instance I CONF: otad I in the background with CONF, its log otad-I.log.
start_instance() {
	"$OTAD" --config "$2" >>"$T/otad-$1.log" 2>&1 &
	PID[$1]=$!
}
# wait_instance I: until otad I is ready; sets DP[I] and MP[I] from the newest ready lines.
wait_instance() {
	local l=$T/otad-$1.log
	for _ in $(seq 1 600); do
		if [ "$(grep -c "otad ready" "$l")" -ge "${READY[$1]:-1}" ]; then
			DP[$1]=$(grep -o 'device API on port [0-9]*' "$l" | tail -1 | awk '{print $5}')
			MP[$1]=$(grep -o 'management API on port [0-9]*' "$l" | tail -1 | awk '{print $5}')
			return 0
		fi
		kill -0 "${PID[$1]}" 2>/dev/null || { tail -n 20 "$l"; echo "otad $1 exited"; return 1; }
		sleep 0.1
	done
	echo "otad $1 did not become ready"; tail -n 20 "$l"; return 1
}
declare -A READY
api() { # I METHOD PATH [JSON]: management API of instance I as admin
	local i=$1 m=$2 p=$3; shift 3
	if [ $# -gt 0 ]; then
		MPORT=${MP[$i]} mcurl admin "$p" -X "$m" -H 'Content-Type: application/json' -d "$1"
	else
		MPORT=${MP[$i]} mcurl admin "$p" -X "$m"
	fi
}

# ---- three instances, started at once on one empty data folder and an empty database
make_pki
write_config
# Every device reaches otad through the proxy's one address: no per-address connection limit
# (docs/operations.md). One session-ticket key, so that a device resumes on any instance. Audit
# checkpoints every 5 s, so that every instance signs some.
"$OTAD" --ticket-key-generate "$T/ticket.key" >/dev/null
sed -i -e "s/^poll_interval = .*/poll_interval = $POLL/" -e 's/^poll_jitter = .*/poll_jitter = 30/' \
	-e "s|^key = $PKI/server.key\$|&\nticket_key = $T/ticket.key|" \
	-e 's/^max_connections = .*/max_connections = 1024\nmax_connections_per_ip = 0/' \
	-e 's/^\[management\]$/[management]\naudit_checkpoint_interval = 5/' "$CONF"
grep -q '^backend = postgresql' "$CONF" || { echo "FAIL: no PostgreSQL store in the configuration"; exit 1; }
for i in $(seq 1 $N); do start_instance "$i" "$CONF"; done
for i in $(seq 1 $N); do wait_instance "$i"; done
OTAD_PID=${PID[1]} LOG=$T/otad-1.log MPORT=${MP[1]}
expect "one audit key made" 1 "$(cat "$T"/otad-*.log | grep -c 'generated the audit key')"
for i in $(seq 1 $N); do
	expect "otad $i signs with the key of audit.pub" "$(cat "$DATA/audit.pub")" \
		"$(body_of "$(api "$i" GET /api/v1/audit/pubkey)" | sed '/^$/d')"
done

# ---- HAProxy in front of the device listeners
HPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
{
	cat <<CFG
global
	maxconn 4096
	log stderr format raw local0
defaults
	mode tcp
	log global
	option tcplog
	timeout connect 2s
	timeout client 60s
	timeout server 60s
	retries 2
	option redispatch
frontend devices
	bind 127.0.0.1:$HPORT
	default_backend otad
backend otad
	balance roundrobin
	default-server inter 500ms fall 2 rise 2
CFG
	for i in $(seq 1 $N); do printf '\tserver otad%s 127.0.0.1:%s check\n' "$i" "${DP[$i]}"; done
} >"$T/haproxy.cfg"
haproxy -f "$T/haproxy.cfg" -db >"$T/haproxy.log" 2>&1 &
HA_PID=$!
for _ in $(seq 1 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$HPORT") 2>/dev/null && break
	kill -0 "$HA_PID" 2>/dev/null || { cat "$T/haproxy.log"; echo "FAIL: haproxy exited"; exit 1; }
	sleep 0.1
done

# ---- the release: a simulated image signed offline, uploaded through instance 1
"$OTA_AGENT" mkimage --version 2.0.0 --security-version 2 --hw pico2w --size $((16384 - 256)) \
	"$T/fw.img" >/dev/null
r=$(mcurl admin /api/v1/images --data-binary @"$T/fw.img" -H 'Content-Type: application/octet-stream')
expect_match "image uploaded" '^20[01]$' "$(code_of "$r")"
"$OTA_SIGN" release --image "$T/fw.img" --name fw --version 2.0.0 --security-version 2 \
	--hw-variant pico2w --format sim --key "$T/release.key" --out "$T/fw.json" >/dev/null
r=$(mcurl admin /api/v1/releases --data-binary @"$T/fw.json" -H 'Content-Type: application/json')
expect_match "release registered" '^20[01]$' "$(code_of "$r")"
REL=$(jfield "$r" .id)

# ---- the fleet, through the proxy
"$OTA_FLEET_SIM" --server "127.0.0.1:$HPORT" --server-ca "$PKI/device-ca.pem" \
	--ca-cert "$PKI/device-ca.pem" --ca-key "$PKI/device-ca.key" --root "$T/root-1.json" \
	--devices "$DEVICES" --threads "$THREADS" --seed 7 --hw pico2w --version 1.0.0 \
	--image-size 16384 --slot-size 16384 --fail-health 0.002 --drop 0.02 \
	--time-scale "$SCALE" --start-spread $((POLL / 2)) --max-seconds $((TIMEOUT + 60)) \
	--acks "$T/acks" >"$T/sim.out" 2>"$T/sim.err" &
SIM_PID=$!

t_fleet=$(date +%s)
# Every device known before the rollout starts: a stage with no device yet is judged at once
# (no device failed), and would pass before its devices ever checked in.
for _ in $(seq 1 300); do
	[ "$(db "SELECT count(*) FROM devices")" -ge "$DEVICES" ] && break
	kill -0 "$SIM_PID" 2>/dev/null || break
	sleep 1
done
expect "every device checked in before the rollout" "$DEVICES" "$(db "SELECT count(*) FROM devices")"
echo "fleet: $DEVICES devices checked in through the proxy in $(($(date +%s) - t_fleet)) s"

# ---- the rollout (as bench/fleet-sim makes it), with a budget; the first two stages advance
# once half their devices succeeded, the last once 95 % of the fleet did
soak=$((3 * POLL / SCALE / 2))
rollout=$(jq -nc --arg rel "$REL" --argjson n "$DEVICES" --argjson soak "$soak" \
	--argjson budget "$BUDGET" '{name: "scale-out", release_id: $rel,
	target: {hw_variants: ["pico2w"]}, budget: {max_updating: $budget}, retry: {attempts: 1},
	stages: ([1, 10, 100] as $p | [range(0; 3) as $i |
	  {percent: $p[$i], success_threshold: (if $i == 2 then 95 else 50 end), failure_threshold: 5,
	   min_finished: ([1, ($n * ($p[$i] - (if $i > 0 then $p[$i - 1] else 0 end)) / 200 | floor)] | max),
	   soak_seconds: (if $i == 2 then $soak else 0 end), on_success: "auto"}])}')
r=$(api 1 POST /api/v1/rollouts "$rollout")
expect "rollout created" 201 "$(code_of "$r")"
RID=$(jfield "$r" .id)
expect "rollout started" 200 "$(code_of "$(api 1 POST "/api/v1/rollouts/$RID/start" '{}')")"

t_rollout=$(date +%s)
state=running killed_at= killed_stage= restarted_at= last_line=0
while :; do
	r=$(api 1 GET "/api/v1/rollouts/$RID")
	final=$r
	state=$(jfield "$r" .state)
	stage=$(jfield "$r" .stage)
	updating=$(jfield "$r" '.progress.updating // 0')
	now=$(date +%s)
	if [ $((now - last_line)) -ge 10 ]; then
		echo "rollout: $(jfield "$r" '"\(.state) stage \(.stage) | succeeded \(.progress.totals.succeeded) failed \(.progress.totals.failed) updating \(.progress.updating)"') [$((now - t_rollout)) s]"
		last_line=$now
	fi
	case $state in completed | paused | aborted) break ;; esac
	# Stage 2 running with devices updating: instance KILLED dies, and comes back on its
	# device port a few seconds later (HAProxy routes around it meanwhile).
	# An image upload to instance 1 lasts across that restart: the restarted instance's sweep
	# of the shared images/.incoming must leave it alone.
	if [ -z "$killed_at" ] && [ "$stage" == 2 ] && [ "$updating" -gt 0 ]; then
		head -c $((1024 * 1024)) /dev/urandom >"$T/big.img"
		mcurl admin /api/v1/images --data-binary @"$T/big.img" --limit-rate 100k \
			-H 'Content-Type: application/octet-stream' >"$T/upload.out" &
		UP_PID=$!
		kill -KILL "${PID[$KILLED]}"
		wait "${PID[$KILLED]}" 2>/dev/null || true
		killed_at=$(date +%s) killed_stage="2 (updating $updating)"
		echo "otad $KILLED killed (SIGKILL) in stage 2 at $((killed_at - t_rollout)) s, $updating devices updating"
		sleep 5
		awk -v p="${DP[$KILLED]}" '/^\[/ { s = $0 } s == "[device]" && /^listen = / { $0 = "listen = 127.0.0.1:" p } 1' \
			"$CONF" >"$T/otad-$KILLED.conf"
		READY[$KILLED]=2
		start_instance "$KILLED" "$T/otad-$KILLED.conf"
		wait_instance "$KILLED"
		restarted_at=$(date +%s)
		echo "otad $KILLED restarted on device port ${DP[$KILLED]} at $((restarted_at - t_rollout)) s"
	fi
	kill -0 "$SIM_PID" 2>/dev/null || break
	[ $((now - t_rollout)) -lt "$TIMEOUT" ] || break
	sleep 1
done
t_done=$(date +%s)
kill -TERM "$SIM_PID" 2>/dev/null || true
sim_rc=0
wait "$SIM_PID" || sim_rc=$?
SIM_PID=
expect "the simulator ran" 0 "$sim_rc"
expect "the rollout completed" completed "$state"
[ "$state" == completed ] || echo "rollout: $(jfield "$final" '{state, stage, reason, totals: .progress.totals}')"

# ---- the instance was killed in stage 2, routed around, and rejoined
if [ -n "${UP_PID:-}" ]; then
	wait "$UP_PID" || true
	sha=$(sha256sum "$T/big.img" | cut -d' ' -f1)
	expect "the upload across the restart stored" "20x $((1024 * 1024))" \
		"$(code_of "$(cat "$T/upload.out")" | sed 's/^20[01]$/20x/') $(stat -c %s "$DATA/images/$sha" 2>/dev/null)"
fi
expect "an instance was killed in stage 2" true "$([ -n "$killed_at" ] && [ -n "$restarted_at" ] && echo true)"
expect_match "HAProxy saw otad $KILLED go down" "Server otad/otad$KILLED is DOWN" "$(cat "$T/haproxy.log")"
expect_match "HAProxy saw otad $KILLED come back" "Server otad/otad$KILLED is UP" "$(cat "$T/haproxy.log")"
if [ -n "$killed_at" ] && [ -n "$restarted_at" ]; then
	down=$(db "SELECT count(*) FROM deployment_events WHERE received_at > $killed_at AND received_at < $restarted_at")
	expect_match "reports stored while otad $KILLED was down" '^[1-9][0-9]*$' "$down"
	# tcplog lines after HAProxy saw it up again: "... devices otad/otad3 Tw/Tc/Tt BYTES -- ...",
	# connections that otad answered (bytes from the server) and that ended normally.
	served=$(sed -n "/Server otad\/otad$KILLED is UP/,\$p" "$T/haproxy.log" |
		awk -v s="otad/otad$KILLED" '$4 == s && $6 > 0 && $7 == "--"' | wc -l)
	expect_match "the restarted otad $KILLED served devices" '^[1-9][0-9]*$' "$served"
fi

# ---- every acknowledged report stored exactly once
awk '{ print $2 " " $3 " " $4 }' "$T/acks" | sort -u >"$T/acked"
db "SELECT e.deployment_id || ' ' || e.seq || ' ' || e.status FROM deployment_events e
	JOIN deployments d ON d.id = e.deployment_id WHERE d.release_id = '$REL'" | sort >"$T/stored"
acked=$(wc -l <"$T/acked")
stored=$(wc -l <"$T/stored")
expect_match "reports were acknowledged" '^[1-9][0-9]*$' "$acked"
expect "acknowledged reports missing from the store" 0 "$(comm -23 "$T/acked" "$T/stored" | wc -l)"
comm -23 "$T/acked" "$T/stored" | head -5 | sed 's/^/  acknowledged, not stored: /'
expect "reports stored twice" "" "$(db "SELECT deployment_id, seq FROM deployment_events
	GROUP BY deployment_id, seq HAVING count(*) > 1 LIMIT 5")"
expect "acknowledged (deployment, seq) with two statuses" 0 \
	"$(awk '{ print $1 " " $2 }' "$T/acked" | sort | uniq -d | wc -l)"

# ---- devices updating at once, rebuilt from the store: a device is updating from the offer
# until its outcome (docs/rollouts.md). Both are audit entries written in the transaction that
# made them ("deployment.create" or "deployment.retry", "deployment.outcome", object the
# deployment), and the audit log's seq is the order in which those transactions committed (one
# writer at a time, across the instances too): unlike the stored times (whole seconds, taken
# before the store's lock), it tells exactly which deployments were open together.
IV="SELECT object AS id,
		min(seq) FILTER (WHERE action IN ('deployment.create', 'deployment.retry')) AS s,
		coalesce(min(seq) FILTER (WHERE action = 'deployment.outcome'), 9223372036854775807) AS e
	FROM audit_log WHERE release_id = '$REL' AND action IN ('deployment.create',
		'deployment.retry', 'deployment.outcome') GROUP BY object"
read -r maxup worst <<<"$(db "WITH iv AS ($IV) SELECT n, s FROM (SELECT (SELECT count(*) FROM iv i
	WHERE i.s <= t.s AND i.e > t.s) AS n, t.s FROM iv t WHERE t.s IS NOT NULL) x
	ORDER BY n DESC, s LIMIT 1" | tr '|' ' ')"
maxup=${maxup:-0}
offers=$(db "SELECT count(*) FROM deployments WHERE release_id = '$REL'")
expect "every offer audited" "$offers" "$(db "WITH iv AS ($IV) SELECT count(*) FROM iv WHERE s IS NOT NULL")"
expect "max updating at once within the budget" true "$([ "$maxup" -le "$BUDGET" ] && echo true)"
if [ "$maxup" -gt "$BUDGET" ]; then
	echo "  updating at audit entry $worst (deployment, offered at seq, outcome at seq, status):"
	db "WITH iv AS ($IV) SELECT iv.id, iv.s, iv.e, d.status FROM iv JOIN deployments d ON d.id = iv.id
		WHERE iv.s <= $worst AND iv.e > $worst ORDER BY iv.e DESC LIMIT 8" | sed 's/^/    /'
fi
expect "offers made" true "$([ "$offers" -ge "$((DEVICES * 9 / 10))" ] && echo true)"

# ---- the audit log, written by three instances, verifies offline with DATA/audit.pub
r=$(MPORT=${MP[2]} mcurl auditor /api/v1/audit/export -o "$T/audit.ndjson")
expect "audit export answered" 200 "$(code_of "$r")"
out=$("$OTA_AUDIT_VERIFY" --export "$T/audit.ndjson" --pubkey "$DATA/audit.pub" 2>&1) && rc=0 || rc=$?
expect "the audit export verifies offline" 0 "$rc"
[ "$rc" -eq 0 ] || echo "$out" | tail -3

# ---- figures
field() { awk -v k="$1" '$1 == k { print $2 }' "$T/sim.out" | head -1; }
echo "---- figures"
echo "devices $DEVICES (version 2.0.0: $(awk '$1 == "version" && $2 == "2.0.0" { print $3 }' "$T/sim.out"))"
echo "rollout $state in $((t_done - t_rollout)) s: $(body_of "$final" | jq -c '.progress.totals')"
echo "reports acknowledged $acked distinct ($(field reports_acknowledged) answers 200), stored $stored, stored but not acknowledged $((stored - acked))"
echo "max updating at once $maxup, budget $BUDGET ($offers offers)"
echo "otad $KILLED killed in stage $killed_stage at $((killed_at - t_rollout)) s, restarted at $((restarted_at - t_rollout)) s; ${down:-0} reports stored meanwhile; ${served:-0} connections served by it after its return"
echo "check-ins $(field checkins), TLS handshakes $(field tls_handshakes) ($(field tls_resumed) resumed), connect failures $(awk '$1 == "failure" && $2 == "connect" { print $3 }' "$T/sim.out")"
echo "audit entries $(grep -c '"seq"' "$T/audit.ndjson" || true), verified with audit.pub"
echo "duration $(($(date +%s) - t_begin)) s"
finish
