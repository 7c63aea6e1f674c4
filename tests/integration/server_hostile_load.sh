#!/usr/bin/env bash
# Acceptance: otad's limits on hostile clients (docs/operations.md, "Refusals and limits").
# The per-address connection limit refuses the connection past it and names the address; past
# the listener's connection limit a new connection waits until one closes; a
# client sending its request headers, or its JSON body, a piece at a time is cut at the header
# or body time limit (not at the inactivity timeout, which it never reaches); headers over the
# connection's memory are answered 431; and refusals are
# counted, not audited one by one: the first of a kind has its own entry, the rest one
# refusals.summary entry per reason and window, and together they count exactly the refusals
# this test made, as do the ota_refused_total counters on /metrics. The audit log verifies.
. "$(dirname "$0")/server_lib.sh"

make_pki
"$OTA_SCRIPTS/dev-pki.sh" "$PKI" otherca foreign device-0009 >/dev/null
MAX_CONNECTIONS=8 write_config
# Small limits, and a short window so that the test sees it end.
sed -i '/^image_max/a max_connections_per_ip = 4\nheader_timeout = 3\nbody_timeout = 3\nrefusal_window = 3' "$CONF"
start_otad
expect "device-0001 admitted" 200 "$(code_of "$(checkin device-0001)")"

metric() { # metric LISTENER REASON: ota_refused_total of that pair (0 when absent)
	local v
	v=$(mcurl auditor /metrics | grep -F "ota_refused_total{listener=\"$1\",reason=\"$2\"}" |
		awk '{print $2}')
	echo "${v:-0}"
}
# counted ACTION REASON: refusals of that reason audited on their own plus those the window
# summaries count.
counted() {
	local own sum
	case $1 in
	connection.refused) own=$(db "SELECT count(*) FROM audit_log WHERE action = '$1' AND object = '$2'") ;;
	*) own=$(db "SELECT count(*) FROM audit_log WHERE action = '$1' AND actor = '$3'") ;;
	esac
	sum=$(db "SELECT coalesce(sum(CAST(json_extract(after, '\$.count') AS INTEGER)), 0) FROM audit_log
		WHERE action = 'refusals.summary' AND json_extract(after, '\$.action') = '$1'
		AND json_extract(after, '\$.reason') = '$2'")
	echo $((own + sum))
}
# wait_counted N ACTION REASON [ACTOR]: counted ... until it reaches N (at most 10 s: the
# window is 3 s), then prints it.
wait_counted() {
	local n=$1 c; shift
	for _ in $(seq 1 100); do
		c=$(counted "$@")
		[ "$c" -ge "$n" ] && break
		sleep 0.1
	done
	echo "$c"
}

# ---- (1) a refused-certificate flood is counted, not audited one by one ----
N=12
for _ in $(seq 1 $N); do
	r=$(checkin foreign)
	[ "$(code_of "$r")" == 403 ] || fail "foreign certificate: $(code_of "$r")"
done
expect "the first foreign certificate has its own entry" 1 \
	"$(db "SELECT count(*) FROM audit_log WHERE action = 'auth.refused' AND actor = 'device-0009'")"
expect "the summaries and the first count every refusal" $N \
	"$(wait_counted $N auth.refused client-certificate-rejected device-0009)"
expect "the summaries name the foreign issuer" 0 \
	"$(db "SELECT count(*) FROM audit_log WHERE action = 'refusals.summary' AND object = 'client-certificate-rejected'
		AND json_extract(after, '\$.subjects[0].subject') NOT LIKE 'issuer %'")"
expect "the summary names the last name shown" device-0009 \
	"$(db "SELECT json_extract(after, '\$.subjects[0].name') FROM audit_log WHERE action = 'refusals.summary' LIMIT 1")"
expect "/metrics counts every refusal" $N "$(metric device client-certificate-rejected)"
expect "at most one summary per reason and window" 1 \
	"$(db "SELECT CASE WHEN count(*) = count(DISTINCT json_extract(after, '\$.window_start'))
		THEN 1 ELSE 0 END FROM audit_log
		WHERE action = 'refusals.summary' AND object = 'client-certificate-rejected'")"
expect "each refusal is logged" $N "$(grep -c "device: refused client .*: certificate not issued by this listener's CA" "$LOG")"

# ---- (2) the per-address limit ----
fds=()
for _ in 1 2 3 4; do
	exec {fd}<>"/dev/tcp/127.0.0.1/$DPORT"
	fds+=("$fd")
done
sleep 0.3
r=$(checkin device-0001)
expect "a fifth connection from 127.0.0.1: refused" 000 "$(code_of "$r")"
grep -q "device: 127.0.0.1: connection refused: 4 connections from this address are open" "$LOG" ||
	fail "the per-address refusal is not logged with the address"
expect "/metrics counts it" 1 "$(metric device per-address-limit)"
expect "audited with the address" 1 \
	"$(db "SELECT count(*) FROM audit_log WHERE action = 'connection.refused' AND actor = '127.0.0.1' AND object = 'per-address-limit'")"
# The management listener is another listener: not refused.
expect "the management listener still answers" 200 "$(code_of "$(mcurl auditor /api/v1/health)")"

# ---- (3) connections that never send headers are cut at the header time limit ----
t0=$(date +%s.%N)
for fd in "${fds[@]}"; do timeout 20 cat <&"$fd" >/dev/null || true; done
el=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
if awk -v e="$el" 'BEGIN { exit !(e >= 1.5 && e < 6) }'; then ok; else fail "idle connections cut after ${el}s (limit 3 s, inactivity 10 s)"; fi
for fd in "${fds[@]}"; do exec {fd}>&-; done
expect "served again once they are gone" 200 "$(code_of "$(checkin device-0001)")"

# ---- (4) slow request headers: cut at the header time limit ----
out=$(python3 "$(dirname "$0")/slow_client.py" headers "$DPORT" "$PKI/device-0001.pem" "$PKI/device-0001.key" 0.5 20)
el=$(awk '{print $3}' <<<"$out")
if [[ $out == closed* ]] && awk -v e="$el" 'BEGIN { exit !(e >= 2.5 && e < 6) }'; then ok; else fail "slow headers: $out (limit 3 s)"; fi

# ---- (5) a slow JSON body: cut at the body time limit ----
out=$(python3 "$(dirname "$0")/slow_client.py" body "$DPORT" "$PKI/device-0001.pem" "$PKI/device-0001.key" 0.5 20)
el=$(awk '{print $3}' <<<"$out")
if [[ $out == closed* ]] && awk -v e="$el" 'BEGIN { exit !(e >= 2.5 && e < 6) }'; then ok; else fail "slow body: $out (limit 3 s)"; fi
grep -q "device: 127.0.0.1: connection closed: the request's body did not arrive within 3 s" "$LOG" ||
	fail "the body time limit is not logged"
expect "/metrics counts the body cut" 1 "$(metric device body-timeout)"
# Four idle connections and the slow headers: five cut at the header limit.
expect "/metrics counts the header cuts" 5 "$(metric device header-timeout)"
expect "the header cuts: one entry of their own, the rest in the summaries" 5 \
	"$(wait_counted 5 connection.refused header-timeout)"

# ---- (6) headers over the memory of a connection: 431, counted ----
big=$(head -c 40000 /dev/zero | tr '\0' a)
r=$(dcurl device-0001 /device/v1/checkin -H "X-Big: $big" -H 'Content-Type: application/json' -d "$CHECKIN")
expect "40 KB of headers (limit 32 KiB): 431" 431 "$(code_of "$r")"
expect "/metrics counts it" 1 "$(metric device memory-limit)"

# ---- (7) the listener's connection limit: a new connection waits until one closes ----
# Eight connections from eight addresses (under the per-address limit) fill max_connections;
# they never send a byte, so the header time limit cuts them 3 s after their accept. A check-in
# made meanwhile is not served before that, then is served on the same connection attempt.
hold=$T/hold.out # the holder says "held", then "closed"
python3 - "$DPORT" >"$hold" <<-'PY' &
	import socket, sys, time
	socks = []
	for i in range(2, 10):
	    s = socket.socket()
	    s.bind(("127.0.0.%d" % i, 0))
	    s.connect(("127.0.0.1", int(sys.argv[1])))
	    socks.append(s)
	print("held", flush=True)
	for s in socks:
	    s.settimeout(15)
	    try:
	        s.recv(1)
	    except OSError:
	        pass
	print("closed", flush=True)
	PY
holder=$!
for _ in $(seq 1 50); do grep -q held "$hold" && break; sleep 0.1; done
sleep 0.5 # every held connection accepted
t0=$(date +%s.%N)
r=$(checkin device-0001)
el=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
wait "$holder"
expect "at the connection limit, a check-in waits, then is served" 200 "$(code_of "$r")"
if awk -v e="$el" 'BEGIN { exit !(e >= 1.5 && e < 8) }'; then ok; else
	fail "the check-in past the connection limit took ${el}s (the held connections are cut at 3 s)"
fi
expect "the held connections were cut by otad" closed "$(tail -n 1 "$hold")"

expect "served after all that" 200 "$(code_of "$(checkin device-0001)")"
r=$(mcurl auditor /api/v1/audit/verify)
expect "the audit log verifies" true "$(jfield "$r" .ok)"
finish
