#!/usr/bin/env bash
# Life cycle under a service manager: otad tells the notification socket READY=1 once it
# serves, pings WATCHDOG=1 at half the watchdog interval, and on SIGTERM sends STOPPING=1,
# stops accepting connections, lets a download in flight finish with every byte, and exits 0.
# Also: TLS session resumption identifies the device, and keep-alive survives a request.
. "$(dirname "$0")/server_lib.sh"
: "${NOTIFY_LISTEN:?}"

make_pki
write_config
sock=$T/notify.sock
"$NOTIFY_LISTEN" "$sock" 60 >"$T/notify.out" &
nl_pid=$!
for _ in $(seq 1 100); do grep -q listening "$T/notify.out" && break; sleep 0.05; done
export NOTIFY_SOCKET=$sock WATCHDOG_USEC=400000
start_otad
unset NOTIFY_SOCKET WATCHDOG_USEC
for _ in $(seq 1 100); do grep -q 'READY=1' "$T/notify.out" && break; sleep 0.05; done
expect_match "READY=1 sent" 'READY=1' "$(cat "$T/notify.out")"
sleep 1
n=$(grep -c 'WATCHDOG=1' "$T/notify.out" || true)
[ "$n" -ge 3 ] && ok || fail "only $n watchdog pings in about a second at 200 ms"

# Session resumption: the resumed session still carries the device's identity.
expect "admitted" 200 "$(code_of "$(checkin device-0001)")"
body=$CHECKIN
out=$( (printf 'POST /device/v1/checkin HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
	"${#body}" "$body"; sleep 1) | gnutls-cli --x509cafile "$PKI/device-ca.pem" \
	--x509certfile "$PKI/device-0001.pem" --x509keyfile "$PKI/device-0001.key" --resume \
	-p "$DPORT" 127.0.0.1 2>&1 | tr -d '\r' || true)
expect_match "session resumed" 'This is a resumed session' "$out"
expect_match "check-in on the resumed session" '"action":"none"' "$out"
# Keep-alive: two requests, one connection.
out=$(curl -sv --cacert "$PKI/device-ca.pem" --cert "$PKI/device-0001.pem" --key "$PKI/device-0001.key" \
	-H 'Content-Type: application/json' -d "$CHECKIN" "https://127.0.0.1:$DPORT/device/v1/checkin" -d "$CHECKIN" \
	"https://127.0.0.1:$DPORT/device/v1/checkin" 2>&1)
expect_match "keep-alive" 'Re-using existing connection' "$out"
out=$(curl -sv --cacert "$PKI/device-ca.pem" --cert "$PKI/device-0001.pem" --key "$PKI/device-0001.key" \
	"https://127.0.0.1:$DPORT/device/v1/nothing" "https://127.0.0.1:$DPORT/device/v1/nothing" 2>&1)
expect_match "keep-alive after a 404" 'Re-using existing connection' "$out"

# A slow download in flight when SIGTERM arrives still completes.
head -c 400000 /dev/urandom >"$T/img.bin"
sha=$(sha256sum "$T/img.bin" | cut -d' ' -f1)
rel=$(release_of "$T/img.bin" 1.1.0 2)
dep=$(deploy device-0001 "$rel")
curl -sS --limit-rate 200k --cacert "$PKI/device-ca.pem" --cert "$PKI/device-0001.pem" \
	--key "$PKI/device-0001.key" -o "$T/dl.bin" "https://127.0.0.1:$DPORT/device/v1/images/$sha" &
dl=$!
sleep 0.7
kill -TERM "$OTAD_PID"
sleep 0.3
# No new connections once stopping.
r=$(checkin device-0001)
expect "new connection refused while stopping" 000 "$(code_of "$r")"
rc=0; wait "$dl" || rc=$?
expect "download in flight completed" 0 "$rc"
expect "download in flight has every byte" "$sha" "$(sha256sum <"$T/dl.bin" | cut -d' ' -f1)"
rc=0; wait "$OTAD_PID" || rc=$?
OTAD_PID=
expect "exit status after SIGTERM" 0 "$rc"
wait "$nl_pid" || true
expect_match "STOPPING=1 after READY=1" 'READY=1.*STOPPING=1' "$(tr '\n' ' ' <"$T/notify.out")"

# At start, an upload left in .incoming/ by a crash is removed; one whose file is locked is
# another instance's upload in progress on a shared folder (docs/scaling.md): it stays.
echo old >"$DATA/images/.incoming/upload-left"
echo new >"$DATA/images/.incoming/upload-held"
flock "$DATA/images/.incoming/upload-held" sleep 60 &
holder=$!
sleep 0.3
start_otad
expect "a crash's leftover removed at start" no "$([ -e "$DATA/images/.incoming/upload-left" ] && echo yes || echo no)"
expect "an upload held by another process kept at start" yes "$([ -e "$DATA/images/.incoming/upload-held" ] && echo yes || echo no)"
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
stop_otad
finish
