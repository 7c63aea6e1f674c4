#!/usr/bin/env bash
# Acceptance: TLS session resumption and the verified-chain cache (auth/idcache.h). A resumed
# TLS 1.3 session (openssl s_client -sess_in) is served as the device whose session it is; a
# certificate revoked after its first connection is refused on the next one, resumed too (the
# cache remembers the chain, never that the device may connect); a CRL loaded after the first
# connection (loaded again on SIGHUP: docs/operations.md) refuses the certificate it revokes,
# on the next connection and on the next request of an open one, and a bad CRL changes nothing;
# X25519 is the key exchange when the client offers it, also by default, and a client that
# offers only P-256 is served with P-256.
. "$(dirname "$0")/server_lib.sh"

make_pki
p() { "$OTA_SCRIPTS/dev-pki.sh" "$PKI" "$@" >/dev/null; }
p device dev-a
p device dev-b
write_config
start_otad

# tls_checkin NAME [s_client options...]: one check-in of certificate NAME on a new connection
# (Connection: close); prints s_client's session summary and the answer. With -sess_in FILE
# the session of FILE is offered for resumption.
tls_checkin() {
	local name=$1
	shift
	printf 'POST /device/v1/checkin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
		"${#CHECKIN}" "$CHECKIN" |
		timeout 20 openssl s_client -connect "127.0.0.1:$DPORT" -CAfile "$PKI/device-ca.pem" \
			-cert "$PKI/$name.pem" -key "$PKI/$name.key" -ign_eof "$@" 2>&1 || true
}
status_of() { grep -o 'HTTP/1\.1 [0-9][0-9][0-9]' <<<"$1" | head -1 | awk '{print $2}'; }
reused_of() { grep -oE '^(New|Reused), TLSv1\.[23]' <<<"$1" | head -1; }
group_of() { grep -m1 '^Server Temp Key: ' <<<"$1" | sed 's/^Server Temp Key: //; s/, [0-9]* bits$//'; }
problem_of() { grep -o '"type":"urn:ota:problem:[a-z-]*"' <<<"$1" | head -1 | sed 's/.*problem://; s/"$//'; }

# Device B has a deployment: its check-in answer names it; device A's names none.
expect "dev-a admitted" 200 "$(code_of "$(checkin dev-a)")"
expect "dev-b admitted" 200 "$(code_of "$(checkin dev-b)")"
head -c 4000 /dev/urandom >"$T/img.bin"
rel=$(release_of "$T/img.bin" 1.1.0 2)
dep_b=$(deploy dev-b "$rel")

# Key exchange: X25519 when offered (OpenSSL's default offers it first), P-256 for a client
# that offers nothing else.
r=$(tls_checkin dev-a)
expect "default client: X25519" X25519 "$(group_of "$r")"
expect "default client: served" 200 "$(status_of "$r")"
r=$(tls_checkin dev-a -groups P-256:X25519)
expect "P-256 and X25519 offered: X25519" X25519 "$(group_of "$r")"
r=$(tls_checkin dev-a -groups P-256)
expect "P-256 only: P-256" "ECDH, prime256v1" "$(group_of "$r")"
expect "P-256 only: served" 200 "$(status_of "$r")"
r=$(tls_checkin dev-a -groups X25519 -tls1_2)
expect "TLS 1.2, X25519 offered: X25519" X25519 "$(group_of "$r")"

# Each device's session, then resumed: served as itself.
r=$(tls_checkin dev-a -sess_out "$T/a.sess")
expect "dev-a full handshake" "New, TLSv1.3" "$(reused_of "$r")"
r=$(tls_checkin dev-b -sess_out "$T/b.sess")
expect "dev-b full handshake" "New, TLSv1.3" "$(reused_of "$r")"
for i in 1 2; do
	r=$(tls_checkin dev-a -sess_in "$T/a.sess")
	expect "dev-a resumed ($i)" "Reused, TLSv1.3" "$(reused_of "$r")"
	expect "dev-a resumed ($i): 200" 200 "$(status_of "$r")"
	expect "dev-a resumed ($i): X25519" X25519 "$(group_of "$r")"
	expect "dev-a resumed ($i): no deployment (dev-b's is not offered)" "" \
		"$(grep -o "$dep_b" <<<"$r" | head -1)"
	r=$(tls_checkin dev-b -sess_in "$T/b.sess")
	expect "dev-b resumed ($i)" "Reused, TLSv1.3" "$(reused_of "$r")"
	expect "dev-b resumed ($i): its deployment" "$dep_b" "$(grep -o "$dep_b" <<<"$r" | head -1)"
done
# The session of A offered with B's certificate: TLS 1.3 resumption sends no certificate, so
# the connection is A's (as the server issued the ticket), and B's key proves nothing.
r=$(tls_checkin dev-b -sess_in "$T/a.sess")
expect "A's session, B's certificate: still A" "" "$(grep -o "$dep_b" <<<"$r" | head -1)"

# Revoked by fingerprint after its first connections: the next one, resumed, is refused.
fpr=$(openssl x509 -in "$PKI/dev-a.pem" -outform DER | sha256sum | cut -d' ' -f1)
r=$(mcurl admin /api/v1/revocations -d "{\"fingerprint\":\"$fpr\",\"reason\":\"stolen\"}")
expect "admin revokes dev-a" 201 "$(code_of "$r")"
r=$(tls_checkin dev-a -sess_in "$T/a.sess")
expect "revoked dev-a: resumed" "Reused, TLSv1.3" "$(reused_of "$r")"
expect "revoked dev-a: refused" 403 "$(status_of "$r")"
expect "revoked dev-a: why" client-certificate-revoked "$(problem_of "$r")"
r=$(tls_checkin dev-a)
expect "revoked dev-a, full handshake: refused" client-certificate-revoked "$(problem_of "$r")"
r=$(tls_checkin dev-b -sess_in "$T/b.sess")
expect "dev-b still served" 200 "$(status_of "$r")"

# Revoked by a CRL loaded after its first connections (SIGHUP): the chain remembered before is
# forgotten, and the next connection, resumed, is refused; so is the next request of a
# connection open since before.
p device dev-c
exec 8< <(printf 'POST /device/v1/checkin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
	"${#CHECKIN}" "$CHECKIN"; sleep 4; printf 'POST /device/v1/checkin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
	"${#CHECKIN}" "$CHECKIN"; sleep 3)
timeout 20 openssl s_client -quiet -connect "127.0.0.1:$DPORT" -CAfile "$PKI/device-ca.pem" \
	-cert "$PKI/dev-c.pem" -key "$PKI/dev-c.key" <&8 >"$T/keep.out" 2>/dev/null &
keep_pid=$!
for _ in $(seq 1 40); do grep -q 'HTTP/1.1 200' "$T/keep.out" 2>/dev/null && break; sleep 0.05; done
expect "dev-c's open connection served" 1 "$(grep -c 'HTTP/1.1 200' "$T/keep.out")"
p revoke dev-b
p revoke dev-c
kill -HUP "$OTAD_PID"
for _ in $(seq 1 100); do grep -q 'SIGHUP: CRLs loaded again' "$LOG" && break; sleep 0.05; done
expect "SIGHUP loads the CRL" 1 "$(grep -c 'SIGHUP: CRLs loaded again' "$LOG")"
wait "$keep_pid" || true
expect "dev-c's open connection: next request refused" 1 \
	"$(grep -c 'client-certificate-revoked' "$T/keep.out")"
r=$(tls_checkin dev-b -sess_in "$T/b.sess")
expect "dev-b after the CRL: resumed" "Reused, TLSv1.3" "$(reused_of "$r")"
expect "dev-b after the CRL: refused" 403 "$(status_of "$r")"
expect "dev-b after the CRL: why" client-certificate-revoked "$(problem_of "$r")"
r=$(tls_checkin dev-b -sess_out "$T/b2.sess")
expect "dev-b after the CRL, full handshake: refused" client-certificate-revoked "$(problem_of "$r")"
# A CRL file that does not parse is refused and the one loaded stays.
cp "$PKI/device-crl.pem" "$T/crl.good"
echo garbage >"$PKI/device-crl.pem"
kill -HUP "$OTAD_PID"
for _ in $(seq 1 100); do grep -q 'SIGHUP: the CRLs were not loaded again' "$LOG" && break; sleep 0.05; done
expect "a bad CRL is refused" 1 "$(grep -c 'SIGHUP: the CRLs were not loaded again' "$LOG")"
r=$(tls_checkin dev-b)
expect "the old CRL stays" client-certificate-revoked "$(problem_of "$r")"
cp "$T/crl.good" "$PKI/device-crl.pem"
finish
