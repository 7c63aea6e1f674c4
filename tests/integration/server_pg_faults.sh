#!/usr/bin/env bash
# otad against a real PostgreSQL that fails (docs/operations.md, "PostgreSQL out of reach"):
# - out of reach at start (no server on the socket, the server stopped), a password in the
#   connection string, a full connection table, a schema newer than otad: otad refuses to start,
#   fast and with a line naming the problem, and leaves the database as it was; a password from
#   a password file (PGPASSFILE, passfile=) reaches a role that needs one;
# - an outage while otad runs (the server stopped for a while, restarted, its connection table
#   full): device check-ins, reports and management writes are 503 storage-unavailable with
#   Retry-After, never 500, otad lives on and serves again by itself once the server is back,
#   transactions included; a report acknowledged before is stored once, one refused during the
#   outage is taken when retried, once;
# - a second otad on the same database hears a rollout started, paused or resumed on the first
#   (NOTIFY) within seconds (under a second when the machine is idle; 5 s allowed for a loaded
#   one), before and after a restart of the server, and a deployment created on the first for a
#   device the second remembers with none.
OTA_TEST_BACKEND=postgresql
. "$(dirname "$0")/server_lib.sh"
: "${OTA_AUDIT_VERIFY:?OTA_AUDIT_VERIFY must name ota-audit-verify}"

B_PID=
HOLDERS=()
stop_extra() {
	local p
	[ -z "$B_PID" ] || { kill -TERM "$B_PID" 2>/dev/null || true; wait "$B_PID" 2>/dev/null || true; }
	for p in "${HOLDERS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${HOLDERS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap 'rc=$?; stop_extra; cleanup "$rc"' EXIT

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# probe PORT CERT PATH CURL-ARGS...: "<status> <Retry-After> <problem type>" of one request
probe() {
	local port=$1 name=$2 path=$3 code; shift 3
	: >"$T/probe.h"; : >"$T/probe.b"
	code=$(curl -sS --max-time 20 --cacert "$PKI/device-ca.pem" --cert "$PKI/$name.pem" \
		--key "$PKI/$name.key" -D "$T/probe.h" -o "$T/probe.b" -w '%{http_code}' "$@" \
		"https://127.0.0.1:$port$path" 2>/dev/null) || true
	echo "$code $(tr -d '\r' <"$T/probe.h" | awk 'tolower($1) == "retry-after:" {print $2}')" \
		"$(jq -r '.type // empty' "$T/probe.b" 2>/dev/null)"
}
UNAVAILABLE="503 30 urn:ota:problem:storage-unavailable"
JSON=(-H 'Content-Type: application/json')
alive() { if kill -0 "$OTAD_PID" 2>/dev/null; then echo alive; else echo dead; fi; }
# conf_with CONNINFO: a copy of the configuration with another connection string; prints its path
conf_with() {
	local c=$T/alt-$RANDOM.conf
	awk -v ci="$1" '/^conninfo = /{print "conninfo = " ci; next} {print}' "$CONF" >"$c"
	echo "$c"
}
# refused WHAT REGEX [ENV=VALUE...] -- CONF: otad must exit non-zero within 15 s, its log
# matching REGEX.
refused() {
	local what=$1 re=$2 rc=0 t0 ms; shift 2
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	t0=$(now_ms)
	env "${envs[@]}" timeout 30 "$OTAD" --config "$1" >"$T/refused.log" 2>&1 || rc=$?
	ms=$(($(now_ms) - t0))
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; then ok; else fail "$what: otad exited with $rc"; fi
	if [ "$ms" -lt 15000 ]; then ok; else fail "$what: took $ms ms to give up"; fi
	if grep -qE "$re" "$T/refused.log"; then ok; else
		fail "$what: no line matching [$re] in: $(tail -n 3 "$T/refused.log")"
	fi
}
# digest_all: every row of every table of the database, audit log and check-in times included
digest_all() {
	local t
	for t in $(db "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"); do
		echo "$t $(db "SELECT md5(coalesce(string_agg(to_jsonb(x)::text, ',' ORDER BY
			to_jsonb(x)::text), '')) FROM \"$t\" x")"
	done | sha256sum | cut -d' ' -f1
}
# serves_again PORT DEVICE: milliseconds until a check-in of DEVICE is answered 200 (gives up
# after 20 s and prints "never")
serves_again() {
	local t0 i
	t0=$(now_ms)
	for i in $(seq 1 200); do
		[ "$(probe "$1" "$2" /device/v1/checkin "${JSON[@]}" -d "$CHECKIN" | cut -d' ' -f1)" == 200 ] &&
			{ echo $(($(now_ms) - t0)); return; }
		sleep 0.1
	done
	echo never
}
within() { [ "$2" != never ] && [ "$2" -le "$1" ] && echo yes || echo "no ($2 ms)"; }

make_pki
for i in $(seq -w 1 20); do "$OTA_SCRIPTS/dev-pki.sh" "$PKI" device "device-00$i" >/dev/null; done
write_config
pg_start
pgsql() { psql -X -q -At -v ON_ERROR_STOP=1 "host=$PGDIR port=$(cat "$PGDIR/port") user=ota dbname=postgres" "$@"; }

# ---- 1. Out of reach at start, and the password ----
mkdir -p "$T/nopg"
refused "no server on the socket" 'database \(PostgreSQL\): cannot connect to PostgreSQL: .*(No such file|connect)' \
	-- "$(conf_with "host=$T/nopg port=5432 user=ota dbname=postgres")"
"$PG_SERVER" down "$PGDIR"
refused "the server stopped" 'database \(PostgreSQL\): cannot connect to PostgreSQL' -- "$CONF"
"$PG_SERVER" up "$PGDIR"
refused "a password in the connection string" 'holds a password: put it in a password file' \
	-- "$(conf_with "$PGCONN password=secret")"
expect "nothing created by the refused starts" 0 "$(db "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")"
# A role that must give a password (scram-sha-256 over the socket), the password in a file.
PW=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
pgsql -c "CREATE ROLE otapw LOGIN PASSWORD '$PW'" -c "CREATE DATABASE otapw OWNER otapw"
{ echo "local all otapw scram-sha-256"; cat "$PGDIR/data/pg_hba.conf"; } >"$T/hba" &&
	cat "$T/hba" >"$PGDIR/data/pg_hba.conf"
pgsql -c "SELECT pg_reload_conf()" >/dev/null
printf '%s:%s:*:otapw:%s\n' "$PGDIR" "$(cat "$PGDIR/port")" "$PW" >"$T/pgpass"
chmod 600 "$T/pgpass"
PWCONF=$(conf_with "host=$PGDIR port=$(cat "$PGDIR/port") user=otapw dbname=otapw")
refused "the role needs a password and none is found" 'cannot connect to PostgreSQL: .*password' \
	PGPASSFILE=/nonexistent HOME="$T/nopg" -- "$PWCONF"
pw_start() { # CONF [ENV...]: otad ready on the role with a password, then stopped
	local c=$1 rc=0; shift
	env "$@" timeout 60 "$OTAD" --config "$c" >"$T/pw.log" 2>&1 &
	local pid=$! i
	for i in $(seq 1 200); do grep -q "otad ready" "$T/pw.log" && break; sleep 0.1; done
	grep -q "otad ready" "$T/pw.log" && echo ready || echo "not ready: $(tail -n 2 "$T/pw.log")"
	kill -TERM "$pid" 2>/dev/null; wait "$pid" || rc=$?
}
expect "PGPASSFILE gives the password" ready "$(pw_start "$PWCONF" PGPASSFILE="$T/pgpass")"
expect "the store was made by the role" otapw "$(psql -X -At "host=$PGDIR port=$(cat "$PGDIR/port") \
	user=ota dbname=otapw" -c "SELECT tableowner FROM pg_tables WHERE tablename = 'schema_version'")"
expect "passfile= in the connection string gives it too" ready \
	"$(pw_start "$(conf_with "host=$PGDIR port=$(cat "$PGDIR/port") user=otapw dbname=otapw passfile=$T/pgpass")" PGPASSFILE=/nonexistent)"

# ---- 2. Outages while otad runs ----
start_otad
for i in 01 02 03; do expect "device-00$i checks in" 200 "$(code_of "$(checkin "device-00$i")")"; done
head -c 3000 /dev/urandom >"$T/img.bin"
rel=$(release_of "$T/img.bin" 1.1.0 2)
dep=$(deploy device-0001 "$rel")
ev() { echo "{\"seq\":$1,\"status\":\"$2\"}"; }
r=$(report device-0001 "$dep" "$(ev 1 downloading)")
expect "report 1 acknowledged before the outage" "200 false" "$(code_of "$r") $(jfield "$r" .duplicate)"

# A second otad on the same database (its own data folder: a copy, with the same audit key).
cp -a "$DATA" "$T/dataB"
sed "s|^data_dir = .*|data_dir = $T/dataB|" "$CONF" >"$T/b.conf"
"$OTAD" --config "$T/b.conf" >"$T/b.log" 2>&1 &
B_PID=$!
for _ in $(seq 1 200); do grep -q "otad ready" "$T/b.log" && break; sleep 0.05; done
BPORT=$(grep -o 'device API on port [0-9]*' "$T/b.log" | tail -1 | awk '{print $5}')
expect_match "the second otad is ready" '^[0-9]+$' "$BPORT"
action_on() { # PORT DEVICE: what a check-in of DEVICE is told
	probe "$1" "$2" /device/v1/checkin "${JSON[@]}" -d "$CHECKIN" >/dev/null
	jq -r .action "$T/probe.b" 2>/dev/null
}
post() { mcurl admin "$1" "${JSON[@]}" -d "$2"; }
new_rollout() {
	local r
	r=$(post /api/v1/rollouts "$(jq -nc --arg rel "$rel" '{name: "all", release_id: $rel,
		stages: [{percent: 100, success_threshold: 100, on_success: "auto",
		          failure_threshold: 0, min_finished: 1}]}')")
	[ "$(code_of "$r")" == 201 ] || { echo "create rollout: $r" >&2; return 1; }
	jfield "$r" .id
}
# seen_by_b WANT DEVICE: ms until instance B tells DEVICE, a device that never joined, WANT
# ("none" is final once a device joined: then "never"). Pausing is also enforced by the join's
# own read of the rollout; starting and resuming are seen by B only through the notification.
seen_by_b() {
	local t0 i
	t0=$(now_ms)
	for i in $(seq 1 50); do
		[ "$(action_on "$BPORT" "$2")" == "$1" ] && { echo $(($(now_ms) - t0)); return; }
		sleep 0.1
	done
	echo never
}
RID=$(new_rollout) || exit 1
expect "B offers nothing before the start" none "$(action_on "$BPORT" device-0004)"
expect "start the rollout on A" running "$(jfield "$(post "/api/v1/rollouts/$RID/start" '{}')" .state)"
expect "B hears the start within 5 s" yes "$(within 5000 "$(seen_by_b update device-0004)")"
expect "pause on A" paused "$(jfield "$(post "/api/v1/rollouts/$RID/pause" '{}')" .state)"
expect "B hears the pause within 5 s" yes "$(within 5000 "$(seen_by_b none device-0005)")"
expect "resume on A" running "$(jfield "$(post "/api/v1/rollouts/$RID/resume" '{}')" .state)"
expect "B hears the resume within 5 s" yes "$(within 5000 "$(seen_by_b update device-0005)")"
expect "pause on A again" paused "$(jfield "$(post "/api/v1/rollouts/$RID/pause" '{}')" .state)"
expect "B hears it" yes "$(within 5000 "$(seen_by_b none device-0011)")"
# B remembers that a device had no active deployment (ota_store_active_deployment_reads_total);
# a deployment created on A is offered by B within seconds all the same (NOTIFY).
BMPORT=$(grep -o 'management API on port [0-9]*' "$T/b.log" | tail -1 | awk '{print $5}')
b_skipped() {
	MPORT=$BMPORT mcurl admin /metrics |
		awk '$1 == "ota_store_active_deployment_reads_total{result=\"skipped\"}" { print $2 }'
}
expect "device-0016 on B: nothing" none "$(action_on "$BPORT" device-0016)"
skipped=$(b_skipped)
expect "device-0016 on B again: nothing" none "$(action_on "$BPORT" device-0016)"
expect "B answered from memory" yes "$([ "$(b_skipped)" -gt "${skipped:-0}" ] && echo yes || echo "no: $skipped -> $(b_skipped)")"
deploy device-0016 "$rel" >/dev/null || exit 1
expect "B offers the deployment made on A within 5 s" yes "$(within 5000 "$(seen_by_b update device-0016)")"

# The server stopped for a while: everything that needs it is 503, otad lives on.
log_before=$(wc -l <"$LOG")
"$PG_SERVER" down "$PGDIR"
expect "check-in during the outage" "$UNAVAILABLE" "$(probe "$DPORT" device-0002 /device/v1/checkin "${JSON[@]}" -d "$CHECKIN")"
expect "report during the outage" "$UNAVAILABLE" \
	"$(probe "$DPORT" device-0001 "/device/v1/deployments/$dep/events" "${JSON[@]}" -d "$(ev 2 downloaded)")"
expect "tags (a management write) during the outage" "$UNAVAILABLE" \
	"$(probe "$MPORT" operator /api/v1/devices/device-0002/tags -X PUT "${JSON[@]}" -d '{"tags":["a=1"]}')"
expect "a rollout (a transaction) during the outage" "$UNAVAILABLE" \
	"$(probe "$MPORT" admin /api/v1/rollouts/"$RID"/resume -X POST "${JSON[@]}" -d '{}')"
sleep 2
expect "check-in later in the outage" "$UNAVAILABLE" "$(probe "$DPORT" device-0003 /device/v1/checkin "${JSON[@]}" -d "$CHECKIN")"
expect "instance B during the outage" "$UNAVAILABLE" "$(probe "$BPORT" device-0003 /device/v1/checkin "${JSON[@]}" -d "$CHECKIN")"
expect "otad lives through the outage" alive "$(alive)"
# Every request fails for the same reason: the log says it once, not once a request.
failed=0
for i in $(seq 1 30); do
	[ "$(probe "$DPORT" device-0002 /device/v1/checkin "${JSON[@]}" -d "$CHECKIN")" = "$UNAVAILABLE" ] &&
		failed=$((failed + 1))
done
expect "30 more check-ins refused in the outage" 30 "$failed"
store_lines=$(tail -n +"$((log_before + 1))" "$LOG" | grep -c 'otad error: store: ' || true)
answer_lines=$(tail -n +"$((log_before + 1))" "$LOG" | grep -c 'otad error: .*: 503 storage full, failing or out of reach' || true)
echo "outage: 36 requests refused for the store; logged: $store_lines store error lines, $answer_lines lines of 503 answers"
[ "$store_lines" -ge 1 ] && [ "$store_lines" -le 4 ] ||
	fail "the outage logged $store_lines store error lines for 36 refused requests"
[ "$answer_lines" -eq 1 ] || fail "the outage logged $answer_lines lines of 503 answers for 36 requests"
"$PG_SERVER" up "$PGDIR"
expect "serves again within 5 s of the server's return" yes "$(within 5000 "$(serves_again "$DPORT" device-0002)")"
expect_match "the storage faults are counted" 'ota_storage_faults_total [1-9]' \
	"$(body_of "$(mcurl admin /metrics)" | grep '^ota_storage_faults_total')"
expect "B serves again too" yes "$(within 5000 "$(serves_again "$BPORT" device-0003)")"
r=$(report device-0001 "$dep" "$(ev 2 downloaded)")
expect "the refused report, retried, is taken" "200 false" "$(code_of "$r") $(jfield "$r" .duplicate)"
r=$(report device-0001 "$dep" "$(ev 2 downloaded)")
expect "and once only" "200 true" "$(code_of "$r") $(jfield "$r" .duplicate)"
expect "each report stored once" "1:1 2:1" \
	"$(db "SELECT string_agg(seq || ':' || n, ' ' ORDER BY seq) FROM (SELECT seq, count(*) n FROM deployment_events WHERE deployment_id = '$dep' GROUP BY seq) x")"
expect "tags written after the outage" 200 \
	"$(code_of "$(mcurl operator /api/v1/devices/device-0002/tags -X PUT "${JSON[@]}" -d '{"tags":["a=1"]}')")"

# A fast restart: the same, without a pause.
"$PG_SERVER" restart "$PGDIR"
expect "serves within 5 s of a restart" yes "$(within 5000 "$(serves_again "$DPORT" device-0002)")"
expect "B too" yes "$(within 5000 "$(serves_again "$BPORT" device-0003)")"
r=$(report device-0001 "$dep" "$(ev 3 installing)")
expect "a report after the restart" "200 false" "$(code_of "$r") $(jfield "$r" .duplicate)"
# A transaction after the outages: a rollout made, audited, the log verifying.
RID2=$(new_rollout) || exit 1
expect "start a new rollout after the restart" running "$(jfield "$(post "/api/v1/rollouts/$RID2/start" '{}')" .state)"
expect "its creation is audited" 1 "$(db "SELECT count(*) FROM audit_log WHERE action = 'rollout.create' AND rollout_id = '$RID2'")"
expect "a device it covers is offered the update (A)" update "$(action_on "$DPORT" device-0006)"
expect "and on B within 5 s" yes "$(within 5000 "$(seen_by_b update device-0007)")"
expect "pause on A after the restart" paused "$(jfield "$(post "/api/v1/rollouts/$RID2/pause" '{}')" .state)"
expect "B hears the pause within 5 s after the restart" yes "$(within 5000 "$(seen_by_b none device-0008)")"
expect "resume on A after the restart" running "$(jfield "$(post "/api/v1/rollouts/$RID2/resume" '{}')" .state)"
expect "B hears the resume within 5 s after the restart" yes "$(within 5000 "$(seen_by_b update device-0008)")"
mcurl auditor /api/v1/audit/pubkey -o "$T/audit.pub" >/dev/null
mcurl auditor /api/v1/audit/export -o "$T/audit.ndjson" >/dev/null
out=$("$OTA_AUDIT_VERIFY" --export "$T/audit.ndjson" --pubkey "$T/audit.pub") && rc=0 || rc=$?
expect "the audit export verifies after the outages" "0 OK" "$rc ${out%%:*}"
expect "the API verifies the log" true "$(jfield "$(mcurl admin /api/v1/audit/verify)" .ok)"
expect "no 500 answered by A" 0 "$(grep -c ': 500 ' "$LOG" || true)"
expect "no 500 answered by B" 0 "$(grep -c ': 500 ' "$T/b.log" || true)"
kill -TERM "$B_PID"; rc=0; wait "$B_PID" || rc=$?; B_PID=
expect "B stops cleanly" 0 "$rc"

# ---- 3. The connection table full ----
stop_otad

"$PG_SERVER" down "$PGDIR"
PG_MAX_CONNECTIONS=8 "$PG_SERVER" up "$PGDIR"
# hold N: N sessions that keep a connection each (kept in HOLDERS)
hold() {
	local i
	for i in $(seq 1 "$1"); do
		# (the server ends the session within 0.1 s of the client's end)
		PGAPPNAME=holder PGOPTIONS='-c client_connection_check_interval=100' \
			psql -X -q "$PGCONN" -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
		HOLDERS+=($!)
	done
	sleep 1
}
release_holders() {
	local p
	for p in "${HOLDERS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${HOLDERS[@]}"; do wait "$p" 2>/dev/null || true; done
	HOLDERS=()
	for _ in $(seq 1 50); do
		[ "$(db "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'holder'" 2>/dev/null)" == 0 ] && return
		sleep 0.1
	done
	fail "the sessions holding the connections did not end"
}
hold 8
refused "every connection slot taken" 'cannot connect to PostgreSQL: .*too many clients' -- "$CONF"
release_holders
# otad reaches the server through a link that the test removes while it fills the table.
mkdir -p "$T/link"
ln -s "$PGDIR/.s.PGSQL.$(cat "$PGDIR/port")" "$T/link/.s.PGSQL.$(cat "$PGDIR/port")"
cp "$(conf_with "host=$T/link port=$(cat "$PGDIR/port") user=ota dbname=postgres")" "$CONF"
start_otad
expect "check-in on the small server" 200 "$(code_of "$(checkin device-0009)")"
r=$(report device-0001 "$dep" "$(ev 4 rebooting)")
expect "a report on the small server" "200 false" "$(code_of "$r") $(jfield "$r" .duplicate)"
rm "$T/link/.s.PGSQL.$(cat "$PGDIR/port")"
n=$(db "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND application_name = ''")
expect "otad holds three connections (store, group writer, listener)" 3 "$n"
hold 4
expect "otad's connections dropped" 3 "$(db "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'client backend' AND application_name = ''")"
hold 4
if db "SELECT 1" >/dev/null 2>&1; then fail "the connection table is not full"; else ok; fi
ln -s "$PGDIR/.s.PGSQL.$(cat "$PGDIR/port")" "$T/link/.s.PGSQL.$(cat "$PGDIR/port")"
expect "check-in, no slot free" "$UNAVAILABLE" "$(probe "$DPORT" device-0010 /device/v1/checkin "${JSON[@]}" -d "$CHECKIN")"
expect "report, no slot free" "$UNAVAILABLE" \
	"$(probe "$DPORT" device-0001 "/device/v1/deployments/$dep/events" "${JSON[@]}" -d "$(ev 5 trial)")"
expect "management write, no slot free" "$UNAVAILABLE" \
	"$(probe "$MPORT" operator /api/v1/devices/device-0009/tags -X PUT "${JSON[@]}" -d '{"tags":["b=2"]}')"
expect "otad lives" alive "$(alive)"
if grep -q 'too many clients' "$LOG"; then ok; else fail "the log does not name the full connection table"; fi
release_holders
expect "serves again within 5 s of slots freeing" yes "$(within 5000 "$(serves_again "$DPORT" device-0010)")"
r=$(report device-0001 "$dep" "$(ev 5 trial)")
expect "the report refused for want of a slot is taken" "200 false" "$(code_of "$r") $(jfield "$r" .duplicate)"
expect "management write after" 200 \
	"$(code_of "$(mcurl operator /api/v1/devices/device-0009/tags -X PUT "${JSON[@]}" -d '{"tags":["b=2"]}')")"

# ---- 4. A schema newer than otad ----
stop_otad
db "UPDATE schema_version SET version = 9999"
before=$(digest_all)
refused "a newer schema" 'schema version 9999, newer than this otad knows' -- "$CONF"
expect "the database is untouched" "$before" "$(digest_all)"
expect "the version is left as it was" 9999 "$(db "SELECT version FROM schema_version")"
finish
