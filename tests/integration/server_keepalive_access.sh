#!/usr/bin/env bash
# Acceptance: a change of who may connect takes effect on the next request of a connection
# already open (HTTP keep-alive), not the next connection: a certificate revoked, a device
# decommissioned, a principal disabled, a token revoked. Each connection first gets a 200, then
# the change is made on another connection, then the same connection is refused with the
# problem that names the change, and otad closes it.
. "$(dirname "$0")/server_lib.sh"

make_pki
p() { "$OTA_SCRIPTS/dev-pki.sh" "$PKI" "$@" >/dev/null; }
p operator op-rev operator
p operator op-dis operator
CONN_TIMEOUT=60 write_config
start_otad

# ka_open PORT [NAME]: one TLS connection (as certificate NAME, or none), kept open: requests
# are written to it by ka_send, answers collect in $T/ka.out.
KA_PID=
ka_open() {
	local port=$1 name=${2-} id=()
	[ -n "$name" ] && id=(-cert "$PKI/$name.pem" -key "$PKI/$name.key")
	rm -f "$T/ka.in"
	mkfifo "$T/ka.in"
	: >"$T/ka.out"
	openssl s_client -quiet -connect "127.0.0.1:$port" -CAfile "$PKI/device-ca.pem" "${id[@]}" \
		<"$T/ka.in" >"$T/ka.out" 2>"$T/ka.err" &
	KA_PID=$!
	exec 7>"$T/ka.in"
}
# ka_count: the answers read so far (a body does not end in a newline: count status lines
# anywhere in a line).
ka_count() { grep -o 'HTTP/1\.1 [0-9][0-9][0-9] ' "$T/ka.out" | wc -l; }
# ka_send METHOD PATH [BODY] [HEADER]: writes one request on the open connection, waits (at most
# 10 s) for its answer, prints "<status> <problem type or ->".
ka_send() {
	local body=${3-} hdr=${4-} n i
	n=$(ka_count)
	[ -n "$hdr" ] && hdr="$hdr"$'\r\n'
	printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s' \
		"$1" "$2" "${#body}" "$hdr" "$body" >&7 2>/dev/null || true
	for i in $(seq 1 200); do
		if [ "$(ka_count)" -gt "$n" ] &&
			[ "$(tail -c 1 "$T/ka.out")" == "}" ]; then
			break
		fi
		sleep 0.05
	done
	local status type
	status=$(grep -o 'HTTP/1\.1 [0-9][0-9][0-9] ' "$T/ka.out" | tail -n 1 | awk '{print $2}')
	[ "$(ka_count)" -gt "$n" ] || status=none
	type=$(tail -n 1 "$T/ka.out" | sed 's/.*HTTP\/1\.1 //' | grep -o 'urn:ota:problem:[a-z-]*' || echo -)
	echo "$status $type"
}
# ka_closed: "closed" when otad closed the connection within 5 s, "open" otherwise.
ka_closed() {
	local i
	for i in $(seq 1 100); do
		kill -0 "$KA_PID" 2>/dev/null || { echo closed; return; }
		sleep 0.05
	done
	echo open
}
ka_end() {
	exec 7>&-
	kill "$KA_PID" 2>/dev/null || true
	wait "$KA_PID" 2>/dev/null || true
	KA_PID=
}

expect "device-0001 admitted" 200 "$(code_of "$(checkin device-0001)")"

# 1. A revoked operator certificate.
ka_open "$MPORT" op-rev
expect "revocation: before" "200 -" "$(ka_send GET /api/v1/devices)"
expect "revocation: same connection again" "200 -" "$(ka_send GET /api/v1/devices)"
fpr=$(openssl x509 -in "$PKI/op-rev.pem" -outform DER | sha256sum | cut -d' ' -f1)
r=$(mcurl admin /api/v1/revocations -H 'Content-Type: application/json' \
	-d "{\"fingerprint\":\"$fpr\",\"reason\":\"stolen\"}")
expect "admin revokes op-rev" 201 "$(code_of "$r")"
expect "revocation: next request refused" "403 urn:ota:problem:client-certificate-revoked" \
	"$(ka_send POST /api/v1/devices '{"id":"dev-by-revoked"}')"
expect "revocation: nothing created" 0 "$(db "SELECT count(*) FROM devices WHERE id='dev-by-revoked'")"
expect "revocation: connection closed" closed "$(ka_closed)"
ka_end

# 2. A decommissioned device.
ka_open "$DPORT" device-0001
expect "decommission: before" "200 -" "$(ka_send POST /device/v1/checkin "$CHECKIN")"
r=$(mcurl operator /api/v1/devices/device-0001/decommission -H 'Content-Type: application/json' -d '{}')
expect "operator decommissions device-0001" 200 "$(code_of "$r")"
expect "decommission: next check-in refused" "403 urn:ota:problem:device-decommissioned" \
	"$(ka_send POST /device/v1/checkin "$CHECKIN")"
expect "decommission: connection closed" closed "$(ka_closed)"
ka_end

# 3. A disabled principal (its certificate).
r=$(mcurl admin /api/v1/principals -H 'Content-Type: application/json' -d '{"name":"op-dis","role":"operator"}')
expect "admin creates op-dis" 201 "$(code_of "$r")"
ka_open "$MPORT" op-dis
expect "disable: before" "200 -" "$(ka_send GET /api/v1/devices)"
r=$(mcurl admin /api/v1/principals/op-dis/disable -H 'Content-Type: application/json' -d '{}')
expect "admin disables op-dis" 200 "$(code_of "$r")"
expect "disable: next request refused" "403 urn:ota:problem:principal-disabled" \
	"$(ka_send GET /api/v1/devices)"
expect "disable: connection closed" closed "$(ka_closed)"
ka_end

# 4. A revoked token (the connection has no client certificate).
r=$(mcurl admin /api/v1/principals -H 'Content-Type: application/json' -d '{"name":"robot","role":"operator"}')
expect "admin creates robot" 201 "$(code_of "$r")"
r=$(mcurl admin /api/v1/tokens -H 'Content-Type: application/json' -d '{"principal":"robot","expires_in_days":30}')
expect "admin creates a token" 201 "$(code_of "$r")"
token=$(jfield "$r" .token)
tid=$(jfield "$r" .id)
ka_open "$MPORT"
expect "token: before" "200 -" "$(ka_send GET /api/v1/devices '' "Authorization: Bearer $token")"
r=$(mcurl admin "/api/v1/tokens/$tid" -X DELETE)
expect_match "admin revokes the token" '^20[04]$' "$(code_of "$r")"
expect "token: next request refused" "401 urn:ota:problem:token-revoked" \
	"$(ka_send GET /api/v1/devices '' "Authorization: Bearer $token")"
expect "token: connection closed" closed "$(ka_closed)"
ka_end

finish
