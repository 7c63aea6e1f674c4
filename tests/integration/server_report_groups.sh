#!/usr/bin/env bash
# Acceptance: device reports wait for their group commit without holding a worker thread
# (docs/architecture.md, "Group commit"). A real otad with [server] threads = 2:
#  1. 48 keep-alive connections send 480 reports at once: every one is acknowledged and stored
#     exactly once, and they were committed in fewer groups than reports / threads
#     (ota_store_groups_total on /metrics): a report that held its thread while it waited made
#     groups of at most 2.
#  2. With otad's test pause points (docs/testing.md): a report whose client drops while its
#     group is held before its commit is stored once, its connection is gone, and otad serves
#     the next report (under ASan: no leak reported at exit).
#  3. SIGTERM while reports wait in a held group: every report answered 200 is stored (none
#     acknowledged and lost), otad exits 0 without a sanitizer report; 4. the same with
#     shutdown_grace = 0 (the listeners stop once the held group has resumed its connections).
# usage: server_report_groups.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../bench/lib/common.sh"

build=$1
FAILS=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
expect() { [ "$2" == "$3" ] && echo "ok: $1 = $3" || fail "$1: expected $2, got $3"; }

find_tools "$build"
bench_tmp
D=$BENCH_DIR
# The store: SQLite, or with OTA_TEST_BACKEND=postgresql a private PostgreSQL server.
store_setup "${OTA_TEST_BACKEND:-sqlite}" "$D/data"
N=48
make_pki "$D/pki"
# An auditor (CN = name, OU = role) to read /metrics.
(cd "$D/pki" && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
	-subj "/OU=auditor/CN=it-auditor" -keyout auditor.key -out auditor.csr 2>/dev/null &&
	openssl x509 -req -in auditor.csr -CA operator-ca.crt -CAkey operator-ca.key -CAcreateserial \
		-sha256 -days 1 -extfile ext.cnf -extensions client -out auditor.crt 2>/dev/null)
"$LOADGEN" --mint-only --ca-cert "$D/pki/device-ca.crt" --ca-key "$D/pki/device-ca.key" \
	--devices "$N" --device-dir "$D/devices" >/dev/null
mkdir -p "$D/data" "$D/hooks"
head -c 4096 /dev/urandom >"$D/image.bin"
"$FILL" "${FILL_STORE[@]}" --data-dir "$D/data" --image "$D/image.bin" \
	--devices "$D/devices/fingerprints" --deploy --history 0 >"$D/fill.log" 2>&1 ||
	{ cat "$D/fill.log" >&2; exit 1; }
# Each device's deployment, read before otad runs.
store_query "SELECT device_id, id FROM deployments" >"$D/deployments"
dev() { printf 'device-%06d' "$1"; }
dep_of() { awk -v d="$1" '$1 == d { print $2 }' "$D/deployments"; }
port=$(free_port)
mgmt=$(free_port)
OTAD_THREADS=2 otad_config "$D" "$D/data" "$port" "$mgmt"
export OTAD_TEST_HOOK_DIR=$D/hooks
start_otad "$D" "$port"

db() { store_query "$1"; }
metric() {
	curl -s --max-time 20 --cacert "$D/pki/server-ca.crt" --cert "$D/pki/auditor.crt" \
		--key "$D/pki/auditor.key" "https://127.0.0.1:$mgmt/metrics" |
		awk -v m="$1" '$1 == m { print $2 }'
}
# report DEVICE SEQ [curl options]: one report of DEVICE's deployment; prints the status.
report() {
	local dev=$1 seq=$2 dep
	shift 2
	dep=$(dep_of "$dev")
	curl -s -o /dev/null -w '%{http_code}' --cacert "$D/pki/server-ca.crt" \
		--cert "$D/devices/$dev.pem" "$@" -H 'Content-Type: application/json' \
		-d "{\"seq\": $seq, \"status\": \"downloading\", \"progress\": 1}" \
		"https://127.0.0.1:$port/device/v1/deployments/$dep/events" || true
}
# otad's TCP connections on the device port in any state (a suspended connection whose
# client left stays in CLOSE-WAIT until otad closes it).
conns() { ss -Htn "( sport = :$port )" | wc -l; }
wait_for() { # FILE SECONDS
	local i
	for i in $(seq 1 $(($2 * 10))); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
stored() { db "SELECT count(*) FROM deployment_events WHERE seq = $1"; }

# 1. Many concurrent reports: all acknowledged, each stored once, in groups above 2 reports.
g0=$(metric ota_store_groups_total)
w0=$(metric ota_store_group_writes_total)
main=$("$LOADGEN" --target "127.0.0.1:$port" --server-ca "$D/pki/server-ca.crt" \
	--ca-cert "$D/pki/device-ca.crt" --ca-key "$D/pki/device-ca.key" --device-dir "$D/devices" \
	--devices "$N" --mix report:1 --quiet --mode keepalive --conns "$N" --requests $((N * 10)) \
	--seq-base 1 --ack-log "$D/acked" --label groups) || true
echo "$main"
g1=$(metric ota_store_groups_total)
w1=$(metric ota_store_group_writes_total)
groups=$((g1 - g0))
writes=$((w1 - w0))
echo "groups: $writes reports in $groups group commits"
expect "reports sent" $((N * 10)) "$(result_field "$main" requests)"
expect "errors" 0 "$(result_field "$main" errors)"
expect "reports acknowledged as new" $((N * 10)) "$(wc -l <"$D/acked")"
expect "reports committed in groups" $((N * 10)) "$writes"
expect "reports stored" $((N * 10)) "$(db 'SELECT count(*) FROM deployment_events')"
expect "(deployment, seq) stored twice" 0 \
	"$(db 'SELECT count(*) FROM (SELECT 1 FROM deployment_events GROUP BY deployment_id, seq HAVING count(*) > 1) AS twice')"
# Thread-bound, a group held at most `threads` (2) reports: groups >= writes / 2.
[ "$groups" -gt 0 ] && [ $((groups * 2)) -lt "$writes" ] && echo "ok: more than 2 reports per group" ||
	fail "groups of at most 2 reports ($writes reports in $groups groups): reports hold threads"

if [ "${OTA_TEST_HOOKS:-OFF}" == ON ]; then
	# 2. A client that drops while its report waits: the group is held before its commit.
	touch "$D/hooks/group-commit.pause"
	report "$(dev 1)" 9001 --max-time 3 >/dev/null &
	cpid=$!
	wait_for "$D/hooks/group-commit.paused" 20 || fail "the report's group was never taken"
	wait "$cpid" # curl gave up after 3 s: the client is gone while the report waits
	expect "report stored before its commit" 0 "$(stored 9001)"
	[ "$(conns)" -gt 0 ] && echo "ok: the dropped connection is held while its report waits" ||
		fail "no connection held while the report waits"
	touch "$D/hooks/group-commit.continue"
	for i in $(seq 1 50); do [ "$(conns)" == 0 ] && break; sleep 0.2; done
	expect "connections after the dropped report" 0 "$(conns)"
	expect "dropped report stored (committed)" 1 "$(stored 9001)"
	expect "next report" 200 "$(report "$(dev 2)" 9002 --max-time 20)"
	expect "its retry" 200 "$(report "$(dev 1)" 9001 --max-time 20)"
	expect "dropped report stored once" 1 "$(stored 9001)"

	# 3. SIGTERM while reports wait in a held group: answered or closed, never acked and lost.
	touch "$D/hooks/group-commit.pause"
	pids=()
	for i in $(seq 10 17); do
		(report "$(dev "$i")" 9100 --max-time 30 >"$D/sig.$i") &
		pids+=($!)
	done
	wait_for "$D/hooks/group-commit.paused" 20 || fail "the reports' group was never taken"
	sleep 1 # the reports that came after the held group's wait too
	kill -TERM "$OTAD_PID"
	sleep 1
	touch "$D/hooks/group-commit.continue"
	wait "${pids[@]}" || true
	rc=0
	wait "$OTAD_PID" || rc=$?
	OTAD_PID=
	expect "otad exit status after SIGTERM" 0 "$rc"
	acked=0
	for i in $(seq 10 17); do
		if [ "$(cat "$D/sig.$i")" == 200 ]; then
			acked=$((acked + 1))
			dep=$(dep_of "$(dev "$i")")
			expect "acknowledged report of $(dev "$i") stored" 1 \
				"$(db "SELECT count(*) FROM deployment_events WHERE deployment_id = '$dep' AND seq = 9100")"
		fi
	done
	echo "SIGTERM: $acked of 8 waiting reports answered 200"
	[ "$acked" -gt 0 ] || fail "no waiting report was answered within the grace period"

	# 4. The same with no grace: the held group's connections are resumed by its commit and
	# the listeners stop before they are answered; closed, never acknowledged and lost.
	sed -i 's/^threads = .*/&\nshutdown_grace = 0/' "$D/otad.conf"
	start_otad "$D" "$port"
	touch "$D/hooks/group-commit.pause"
	pids=()
	for i in $(seq 20 27); do
		(report "$(dev "$i")" 9200 --max-time 30 >"$D/sig.$i") &
		pids+=($!)
	done
	wait_for "$D/hooks/group-commit.paused" 20 || fail "the reports' group was never taken"
	sleep 1
	kill -TERM "$OTAD_PID"
	sleep 1
	touch "$D/hooks/group-commit.continue"
	wait "${pids[@]}" || true
	rc=0
	wait "$OTAD_PID" || rc=$?
	OTAD_PID=
	expect "otad exit status after SIGTERM without grace" 0 "$rc"
	acked=0
	for i in $(seq 20 27); do
		if [ "$(cat "$D/sig.$i")" == 200 ]; then
			acked=$((acked + 1))
			expect "acknowledged report of $(dev "$i") stored" 1 \
				"$(db "SELECT count(*) FROM deployment_events WHERE deployment_id = '$(dep_of "$(dev "$i")")' AND seq = 9200")"
		fi
	done
	echo "SIGTERM without grace: $acked of 8 waiting reports answered 200, the rest closed"
	if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$D/otad.log"; then
		fail "sanitizer report in otad's log"
		grep -E -A20 'Sanitizer|runtime error' "$D/otad.log" | head -40
	fi
else
	echo "otad has no test pause points: the dropped-client and SIGTERM cases need them"
	stop_otad
fi
[ "$FAILS" == 0 ] || { echo "$FAILS checks failed"; tail -20 "$D/otad.log"; exit 1; }
echo "all checks passed"
