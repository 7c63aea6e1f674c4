#!/usr/bin/env bash
# Events out (docs/events.md) against a real otad and a real HTTPS receiver on 127.0.0.1
# (webhook_receiver.py): webhook registration refuses other schemes and destinations outside
# the allow-list; deliveries arrive in order with valid signatures; a receiver that is down for
# a while gets every event once, in order, when it is back; a slow receiver leaves the device
# path's latency alone; a 10 MB answer is read only to the bound and a receiver that never
# answers times out; SIGKILL of otad mid-delivery loses nothing (duplicates carry their seq);
# manual redelivery and the dead-letter state; the live stream (SSE) resumes with Last-Event-ID
# without a gap, shows an operator only what concerns rollouts and devices, and is bounded.
. "$(dirname "$0")/server_lib.sh"

RECV_PID=
RLOG=$T/received
MODE=$T/mode
SECRET=$T/secret
stop_receiver() {
	if [ -n "$RECV_PID" ]; then
		kill "$RECV_PID" 2>/dev/null || true
		wait "$RECV_PID" 2>/dev/null || true
	fi
	RECV_PID=
}
trap 'rc=$?; stop_receiver; cleanup "$rc"' EXIT

make_pki
write_config
webhook_config() { # MAX_ATTEMPTS
	cat >>"$CONF" <<CONF

[events]
heartbeat = 2
max_streams = 4

[webhooks]
allow_networks = 127.0.0.0/8, ::1/128
ca = $PKI/device-ca.pem
timeout = 3
max_attempts = ${1:-1000}
backoff_max = 1
threads = 2
CONF
}
cp "$CONF" "$T/base.conf"
webhook_config
echo ok >"$MODE"
: >"$RLOG"
python3 "$(dirname "$0")/webhook_receiver.py" "$PKI/server.pem" "$PKI/server.key" "$T/rport" \
	"$RLOG" "$MODE" "$SECRET" &
RECV_PID=$!
for _ in $(seq 1 100); do [ -s "$T/rport" ] && break; sleep 0.05; done
RPORT=$(cat "$T/rport")
start_otad
checkin device-0001 >/dev/null

J='Content-Type: application/json'
hook() { mcurl "${2:-admin}" /api/v1/webhooks -H "$J" -d "$1"; }
tags() { mcurl operator /api/v1/devices/device-0001/tags -X PUT -H "$J" -d "{\"tags\":[\"t$1\"]}" >/dev/null; }
head_seq() { db 'SELECT coalesce(max(seq), 0) FROM audit_log'; }
# wait_seq SEQ [SECONDS]: until the receiver logged SEQ
wait_seq() {
	for _ in $(seq 1 $((${2:-20} * 10))); do
		grep -q "^$1 " "$RLOG" && return 0
		sleep 0.1
	done
	return 1
}
# in_order: the first delivery of each seq comes in increasing seq order
in_order() { awk '!seen[$1]++ {print $1}' "$RLOG" | sort -n -c 2>/dev/null && echo yes || echo no; }

# ---- bad input: each refused with a problem naming why, nothing stored ----
r=$(hook '{"url":"ftp://127.0.0.1/x","types":["*"]}')
expect "ftp scheme" "400 true" "$(code_of "$r") $(jfield "$r" '.detail | test("scheme")')"
r=$(hook '{"url":"file:///etc/passwd","types":["*"]}')
expect "file scheme" "400 true" "$(code_of "$r") $(jfield "$r" '.detail | test("scheme")')"
r=$(hook "{\"url\":\"http://127.0.0.1:$RPORT/hook\",\"types\":[\"*\"]}")
expect "plain http not allowed" "400 true" "$(code_of "$r") $(jfield "$r" '.detail | test("allow_http")')"
for u in https://10.1.2.3/x https://169.254.169.254/latest https://192.168.1.1/ https://[fe80::1]/ \
	https://[::ffff:10.0.0.1]/ https://0.0.0.0/; do
	r=$(hook "{\"url\":\"$u\",\"types\":[\"*\"]}")
	expect "SSRF $u" "400 true" "$(code_of "$r") $(jfield "$r" '.detail | test("allow_networks")')"
done
r=$(hook '{"url":"https://user:pw@127.0.0.1/x","types":["*"]}')
expect "credentials in URL" "400 true" "$(code_of "$r") $(jfield "$r" '.detail | test("credentials")')"
r=$(hook "{\"url\":\"https://127.0.0.1:$RPORT/hook\",\"types\":[\"Bad Type\"]}")
expect "bad type" 400 "$(code_of "$r")"
r=$(hook "{\"url\":\"https://127.0.0.1:$RPORT/hook\",\"types\":[\"*\"]}" operator)
expect "operator may not register" 403 "$(code_of "$r")"
expect "nothing stored" 0 "$(db 'SELECT count(*) FROM webhooks')"

# The device path's latency without any webhook: 20 check-ins.
lat() {
	local s e
	s=$(date +%s.%N)
	for _ in $(seq 1 20); do checkin device-0002 >/dev/null; done
	e=$(date +%s.%N)
	echo "$e - $s" | bc
}
base_lat=$(lat)

# ---- delivery in order with valid signatures ----
# The receiver turns deliveries away until it knows the secret (the registration's own event
# comes at once); the retry then brings it.
echo down >"$MODE"
r=$(hook "{\"url\":\"https://127.0.0.1:$RPORT/hook\",\"types\":[\"*\"]}")
expect "register" 201 "$(code_of "$r")"
HID=$(jfield "$r" .id)
jfield "$r" .secret >"$SECRET"
echo ok >"$MODE"
expect_match "secret shown once" '^[0-9a-f]{64}$' "$(cat "$SECRET")"
C0=$(jfield "$r" .cursor)
r=$(mcurl admin "/api/v1/webhooks/$HID")
expect "secret not shown again" "200 false" "$(code_of "$r") $(jfield "$r" 'has("secret")')"
for i in $(seq 1 10); do tags "$i"; done
H=$(head_seq)
wait_seq "$H" || fail "event $H not delivered"
expect "every event after the cursor delivered" "$(seq $((C0 + 1)) "$H" | tr '\n' ' ')" \
	"$(awk '{print $1}' "$RLOG" | sort -n | uniq | tr '\n' ' ')"
expect "signatures valid" 0 "$(grep -vc ' ok ' "$RLOG" || true)"
expect "in order" yes "$(in_order)"
expect "first is its own registration" "webhook.create" "$(head -1 "$RLOG" | awk '{print $2}')"

# ---- receiver down for a while, then back: every event once, in order ----
echo down >"$MODE"
for i in $(seq 11 15); do tags "$i"; done
sleep 3
echo ok >"$MODE"
H=$(head_seq)
wait_seq "$H" 30 || fail "events after the outage not delivered"
expect "after outage: each once" "$(seq $((C0 + 1)) "$H" | tr '\n' ' ')" \
	"$(awk '{print $1}' "$RLOG" | tr '\n' ' ')"
r=$(mcurl admin "/api/v1/webhooks/$HID")
expect "retry state cleared" "active 0" "$(jfield "$r" '"\(.state) \(.attempts)"')"

# ---- a slow receiver does not slow the device path ----
echo slow:1 >"$MODE"
for i in $(seq 16 22); do tags "$i"; done
slow_lat=$(lat)
echo "device path: 20 check-ins in $base_lat s without a webhook, $slow_lat s with a slow one"
[ "$(echo "$slow_lat < 3 * $base_lat + 1" | bc)" == 1 ] && ok ||
	fail "check-ins took $slow_lat s with a slow receiver against $base_lat s without"
echo ok >"$MODE"
wait_seq "$(head_seq)" 30 || fail "slow deliveries did not finish"

# ---- a 10 MB answer is read only to the bound ----
echo big >"$MODE"
tags big
H=$(head_seq)
wait_seq "$H" || fail "event to the big receiver not sent"
for _ in $(seq 1 50); do [ "$(db "SELECT cursor FROM webhooks WHERE id='$HID'")" == "$H" ] && break; sleep 0.1; done
expect "10 MB answer: delivered, read to the bound" "$H" "$(db "SELECT cursor FROM webhooks WHERE id='$HID'")"

# ---- a receiver that never answers times out ----
echo hang >"$MODE"
tags hang
H=$(head_seq)
for _ in $(seq 1 80); do
	e=$(db "SELECT coalesce(last_error, '') FROM webhooks WHERE id='$HID'")
	[ -n "$e" ] && break
	sleep 0.1
done
expect_match "never answering: timed out" 'no answer within 3 s' "$e"
echo ok >"$MODE"
wait_seq "$H" 30 || fail "event after the timeout not delivered"

# ---- SIGKILL of otad mid-delivery loses nothing ----
echo slow:0.5 >"$MODE"
K0=$(head_seq)
for i in $(seq 1 6); do tags "k$i"; done
K1=$(head_seq)
wait_seq $((K0 + 2)) 20 || fail "deliveries before the kill did not start"
kill -KILL "$OTAD_PID"
wait "$OTAD_PID" 2>/dev/null || true
OTAD_PID=
echo ok >"$MODE"
start_otad
wait_seq "$K1" 30 || fail "events after the kill not delivered"
expect "after SIGKILL: nothing lost" "$(seq $((C0 + 1)) "$K1" | tr '\n' ' ')" \
	"$(awk '{print $1}' "$RLOG" | sort -n | uniq | tr '\n' ' ')"
expect "after SIGKILL: in order" yes "$(in_order)"
echo "duplicates after SIGKILL (identified by seq): $(awk '{print $1}' "$RLOG" | sort -n | uniq -d | tr '\n' ' ')"

# ---- manual redelivery ----
# The delivery the kill cut is still in the receiver's 0.5 s wait, and logs when it ends.
sleep 1
lines=$(wc -l <"$RLOG")
r=$(mcurl admin "/api/v1/webhooks/$HID/redeliver" -H "$J" -d "{\"from_seq\":$((C0 + 1))}")
expect "redeliver" "200 $C0" "$(code_of "$r") $(jfield "$r" .cursor)"
wait_seq "$K1" 30
for _ in $(seq 1 100); do [ "$(wc -l <"$RLOG")" -ge $((lines + K1 - C0)) ] && break; sleep 0.1; done
expect "redelivered from the start" "$(seq $((C0 + 1)) "$K1" | tr '\n' ' ')" \
	"$(tail -n +$((lines + 1)) "$RLOG" | awk '{print $1}' | head -n $((K1 - C0)) | tr '\n' ' ')"
r=$(mcurl admin /api/v1/webhooks/w-00000000000000000000000000000000/redeliver -H "$J" -d '{}')
expect "redeliver unknown" 404 "$(code_of "$r")"
r=$(mcurl admin "/api/v1/webhooks/$HID/redeliver" -H "$J" -d '{"from_seq":999999}')
expect "redeliver past the head" 400 "$(code_of "$r")"

# ---- the live stream ----
mcurl admin /api/v1/principals -H "$J" -d '{"name":"watcher","role":"auditor"}' >/dev/null
tags sse
H=$(head_seq)
stream() { # ROLE ARGS...: the ids read within 2 s
	local role=$1; shift
	curl -sN --max-time 2 --cacert "$PKI/device-ca.pem" --cert "$PKI/$role.pem" --key "$PKI/$role.key" \
		"$@" 2>/dev/null || true
}
ids() { grep '^id: ' | awk '{print $2}' | tr '\n' ' '; }
all=$(stream auditor "https://127.0.0.1:$MPORT/api/v1/events?after=0" | ids)
expect "auditor sees every event" "$(seq 1 "$H" | tr '\n' ' ')" "$all"
mid=$((H / 2))
rest=$(stream auditor -H "Last-Event-ID: $mid" "https://127.0.0.1:$MPORT/api/v1/events" | ids)
expect "Last-Event-ID resumes without a gap" "$(seq $((mid + 1)) "$H" | tr '\n' ' ')" "$rest"
op=$(stream operator "https://127.0.0.1:$MPORT/api/v1/events?after=0" | grep '^event: ' | awk '{print $2}' | sort -u | tr '\n' ' ')
expect_match "operator sees device events" 'device\.tags' "$op"
[[ $op =~ (principal|webhook|token|access)\. ]] && fail "operator sees $op" || ok
typ=$(stream auditor "https://127.0.0.1:$MPORT/api/v1/events?after=0&types=principal.*" | grep '^event: ' | awk '{print $2}' | sort -u | tr '\n' ' ')
expect "type filter" "principal.create " "$typ"
# live: an event made while the stream is open arrives
(stream admin --max-time 4 "https://127.0.0.1:$MPORT/api/v1/events" >"$T/live") &
sp=$!
sleep 1
tags live
wait "$sp" || true
expect "live event" "$(head_seq)" "$(ids <"$T/live" | tr -d ' ')"
grep -q '^: heartbeat' "$T/live" && ok || fail "no heartbeat in an idle stream"
r=$(mcurl auditor /api/v1/events -H 'Last-Event-ID: x')
expect "bad Last-Event-ID" 400 "$(code_of "$r")"
# bounded: max_streams = 4. A stream whose client left frees its place at its next heartbeat
# (2 s here) at the latest, later on a loaded machine: wait for the streams above to be gone.
opened() { grep -c 'event stream opened' "$LOG" || true; }
closed() { grep -c 'event stream closed' "$LOG" || true; }
for _ in $(seq 1 300); do [ "$(closed)" -ge "$(opened)" ] && break; sleep 0.1; done
expect "the streams above are closed" "$(opened)" "$(closed)"
n0=$(opened)
pids=()
for i in 1 2 3 4; do
	curl -sN --max-time 30 --cacert "$PKI/device-ca.pem" --cert "$PKI/auditor.pem" \
		--key "$PKI/auditor.key" "https://127.0.0.1:$MPORT/api/v1/events" >/dev/null 2>&1 &
	pids+=($!)
done
for _ in $(seq 1 200); do [ "$(opened)" -ge $((n0 + 4)) ] && break; sleep 0.1; done
expect "four streams open" $((n0 + 4)) "$(opened)"
r=$(mcurl auditor /api/v1/events --max-time 2)
expect "fifth stream refused" "503 too-many-streams" "$(code_of "$r" | head -1) $(body_of "$r" | jq -r '.type' 2>/dev/null | sed 's|.*:||')"
r=$(mcurl admin /api/v1/health)
expect "other requests served meanwhile" 200 "$(code_of "$r")"
kill "${pids[@]}" 2>/dev/null || true
wait "${pids[@]}" 2>/dev/null || true

# ---- dead letter after the limit, then redeliver ----
stop_otad
cp "$T/base.conf" "$CONF"
webhook_config 2
echo down >"$MODE"
start_otad
tags dead
D=$(head_seq)
for _ in $(seq 1 100); do
	[ "$(jfield "$(mcurl admin "/api/v1/webhooks/$HID")" .state)" == dead ] && break
	sleep 0.1
done
r=$(mcurl admin "/api/v1/webhooks/$HID")
expect "dead after the limit" "dead 2" "$(jfield "$r" '"\(.state) \(.attempts)"')"
echo ok >"$MODE"
sleep 1.5
grep -q "^$D " "$RLOG" && fail "a dead endpoint got an event" || ok
r=$(mcurl admin "/api/v1/webhooks/$HID/redeliver" -H "$J" -d '{}')
expect "redeliver a dead endpoint" "200 active" "$(code_of "$r") $(jfield "$r" .state)"
wait_seq "$D" 20 || fail "event not delivered after redelivery"
r=$(mcurl admin "/api/v1/webhooks/$HID" -X DELETE)
expect "delete" "200 true" "$(code_of "$r") $(jfield "$r" .deleted)"
expect "audited" "webhook.create webhook.delete webhook.redeliver" \
	"$(db "SELECT DISTINCT action FROM audit_log WHERE action LIKE 'webhook.%' ORDER BY action" | tr '\n' ' ' | sed 's/ $//')"
finish
