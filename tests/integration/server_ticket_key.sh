#!/usr/bin/env bash
# Acceptance: the shared session-ticket key ([tls] ticket_key, docs/operations.md "Several
# instances behind a load balancer"). Two otad instances, each with its own data folder, the
# same PKI and the same key file: a TLS 1.3 session of the first (openssl s_client -sess_out)
# resumes on the second, whose check-in answers 200. After a new key file and SIGHUP on the
# second, the sessions of the old key get a full handshake there, and the two instances (now of
# different keys) resume none of each other's sessions; a reload of a bad file (wrong length,
# mode 0644) is refused and the key loaded stays. otad refuses to start on a bad key file, and
# otad --ticket-key-generate writes a key of mode 0600, replacing an old one. The management
# listener never uses the shared key: its sessions resume on their own instance only.
. "$(dirname "$0")/server_lib.sh"

make_pki
"$OTA_SCRIPTS/dev-pki.sh" "$PKI" device dev-a >/dev/null

# ---- otad --ticket-key-generate ----
"$OTAD" --ticket-key-generate "$T/k1"
expect "generated key: mode 0600" 600 "$(stat -c %a "$T/k1")"
expect "generated key: one line of 88 base64 characters" 1 \
	"$(grep -cxE '[A-Za-z0-9+/]{86}==' "$T/k1")"
expect "generated key: 64 bytes" 64 "$(base64 -d "$T/k1" | wc -c)"
cp "$T/k1" "$T/k1.before"
chmod 0644 "$T/k1"
"$OTAD" --ticket-key-generate "$T/k1"
expect "generated again: another key" 1 "$(cmp -s "$T/k1" "$T/k1.before" || echo 1)"
expect "generated again: mode 0600 (the file is replaced)" 600 "$(stat -c %a "$T/k1")"
expect "generated again: no temporary file left" "" "$(ls "$T" | grep '\.tmp$' || true)"
rc=0
out=$("$OTAD" --ticket-key-generate "$T/no/such/folder/key" 2>&1) || rc=$?
expect "generate into a missing folder: exit 1" 1 "$rc"
expect_match "generate into a missing folder: why" "ticket key $T/no/such/folder/key: cannot write it" "$out"

# ---- two instances, one key ----
write_config
cp "$CONF" "$T/otad.conf.base"
cp "$T/k1" "$T/tk1"
cp "$T/k1" "$T/tk2"
# conf_with DATA KEYFILE OUT: the test configuration with its own data folder and ticket key
conf_with() {
	sed -e "s|^data_dir = .*|data_dir = $1|" -e "/^key = /a ticket_key = $2" \
		"$T/otad.conf.base" >"$3"
}
conf_with "$DATA" "$T/tk1" "$CONF"
start_otad
PORT1=$DPORT

CONF2=$T/otad2.conf
LOG2=$T/otad2.log
PID2=
conf_with "$T/data2" "$T/tk2" "$CONF2"
start_second() {
	: >"$LOG2"
	"$OTAD" --config "$CONF2" >>"$LOG2" 2>&1 &
	PID2=$!
	for _ in $(seq 1 200); do
		if grep -q "otad ready" "$LOG2"; then
			PORT2=$(grep -o 'device API on port [0-9]*' "$LOG2" | tail -1 | awk '{print $5}')
			MPORT2=$(grep -o 'management API on port [0-9]*' "$LOG2" | tail -1 | awk '{print $5}')
			return 0
		fi
		kill -0 "$PID2" 2>/dev/null || { cat "$LOG2"; echo "second otad exited"; return 1; }
		sleep 0.05
	done
	echo "second otad did not become ready"; cat "$LOG2"; return 1
}
stop_second() {
	local rc=0
	if [ -n "$PID2" ] && kill -0 "$PID2" 2>/dev/null; then
		kill -TERM "$PID2" 2>/dev/null || true
		wait "$PID2" || rc=$?
		[ $rc -eq 0 ] || fail "the second otad exited with status $rc on SIGTERM"
	fi
	PID2=
	if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$LOG2" 2>/dev/null; then
		fail "sanitizer report in the second otad's log"
	fi
}
trap 'rc=$?; stop_second; [ "$FAILS" -eq 0 ] || tail -n 20 "$LOG2" || true; cleanup "$rc"' EXIT
start_second

# tls_checkin PORT [s_client options...]: one check-in of dev-a on a new TLS 1.3 connection
# (Connection: close); prints s_client's session summary and the answer.
tls_checkin() {
	local port=$1
	shift
	printf 'POST /device/v1/checkin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
		"${#CHECKIN}" "$CHECKIN" |
		timeout 20 openssl s_client -connect "127.0.0.1:$port" -CAfile "$PKI/device-ca.pem" \
			-cert "$PKI/dev-a.pem" -key "$PKI/dev-a.key" -tls1_3 -ign_eof "$@" 2>&1 || true
}
status_of() { grep -o 'HTTP/1\.1 [0-9][0-9][0-9]' <<<"$1" | head -1 | awk '{print $2}'; }
reused_of() { grep -oE '^(New|Reused), TLSv1\.[23]' <<<"$1" | head -1; }
# sighup_second WHAT: SIGHUP to the second instance; waits for its answer to the ticket key
sighup_second() {
	local before
	before=$(grep -c 'SIGHUP: .*ticket key' "$LOG2" || true)
	kill -HUP "$PID2"
	for _ in $(seq 1 100); do
		[ "$(grep -c 'SIGHUP: .*ticket key' "$LOG2" || true)" -gt "$before" ] && return 0
		sleep 0.05
	done
	fail "$1: no word on the ticket key after SIGHUP"
}

r=$(tls_checkin "$PORT1" -sess_out "$T/a1.sess")
expect "instance 1: full handshake" "New, TLSv1.3" "$(reused_of "$r")"
expect "instance 1: check-in" 200 "$(status_of "$r")"
r=$(tls_checkin "$PORT2" -sess_in "$T/a1.sess")
expect "instance 1's session on instance 2: resumed" "Reused, TLSv1.3" "$(reused_of "$r")"
expect "instance 1's session on instance 2: check-in" 200 "$(status_of "$r")"
r=$(tls_checkin "$PORT2" -sess_out "$T/a2.sess")
r=$(tls_checkin "$PORT1" -sess_in "$T/a2.sess")
expect "instance 2's session on instance 1: resumed" "Reused, TLSv1.3" "$(reused_of "$r")"
expect "instance 2's session on instance 1: check-in" 200 "$(status_of "$r")"

# The management listener keeps a key of its own per process: an operator's session resumes on
# the instance that issued it only.
mgmt_tls() {
	local port=$1
	shift
	printf 'GET /api/v1/devices HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' |
		timeout 20 openssl s_client -connect "127.0.0.1:$port" -CAfile "$PKI/device-ca.pem" \
			-cert "$PKI/admin.pem" -key "$PKI/admin.key" -tls1_3 -ign_eof "$@" 2>&1 || true
}
r=$(mgmt_tls "$MPORT" -sess_out "$T/m1.sess")
expect "management, instance 1: answered" 200 "$(status_of "$r")"
r=$(mgmt_tls "$MPORT" -sess_in "$T/m1.sess")
expect "management session on instance 1: resumed" "Reused, TLSv1.3" "$(reused_of "$r")"
r=$(mgmt_tls "$MPORT2" -sess_in "$T/m1.sess")
expect "management session of instance 1 on instance 2: not resumed" "New, TLSv1.3" \
	"$(reused_of "$r")"
expect "management, instance 2: answered" 200 "$(status_of "$r")"

# ---- rotation: a new file and SIGHUP on instance 2 ----
"$OTAD" --ticket-key-generate "$T/tk2"
sighup_second "rotation"
expect "rotation: loaded" 1 "$(grep -c "SIGHUP: ticket key $T/tk2 loaded again" "$LOG2")"
r=$(tls_checkin "$PORT2" -sess_in "$T/a1.sess")
expect "after rotation, an old session on instance 2: full handshake" "New, TLSv1.3" \
	"$(reused_of "$r")"
expect "after rotation, an old session on instance 2: check-in" 200 "$(status_of "$r")"
r=$(tls_checkin "$PORT2" -sess_in "$T/a2.sess")
expect "after rotation, instance 2's own old session: full handshake" "New, TLSv1.3" \
	"$(reused_of "$r")"
# Two different keys: neither instance resumes the other's sessions; each resumes its own.
r=$(tls_checkin "$PORT1" -sess_out "$T/b1.sess")
r=$(tls_checkin "$PORT2" -sess_out "$T/b2.sess")
r=$(tls_checkin "$PORT2" -sess_in "$T/b1.sess")
expect "different keys: instance 1's session on instance 2 not resumed" "New, TLSv1.3" \
	"$(reused_of "$r")"
r=$(tls_checkin "$PORT1" -sess_in "$T/b2.sess")
expect "different keys: instance 2's session on instance 1 not resumed" "New, TLSv1.3" \
	"$(reused_of "$r")"
r=$(tls_checkin "$PORT2" -sess_in "$T/b2.sess")
expect "new key: instance 2 resumes its own session" "Reused, TLSv1.3" "$(reused_of "$r")"
expect "new key: check-in" 200 "$(status_of "$r")"

# ---- a reload that fails keeps the key loaded ----
cp "$T/tk2" "$T/tk2.good"
printf '%s\n' "$(head -c 32 /dev/urandom | base64 -w0)" >"$T/tk2.short"
chmod 0600 "$T/tk2.short"
mv "$T/tk2.short" "$T/tk2"
sighup_second "short key"
expect_match "short key: refused" \
	"SIGHUP: the ticket key was not loaded again, the old one stays: ticket key $T/tk2: not one line of base64 of 64 bytes" \
	"$(grep 'SIGHUP: the ticket key' "$LOG2" | tail -1)"
r=$(tls_checkin "$PORT2" -sess_in "$T/b2.sess")
expect "short key: the old key stays" "Reused, TLSv1.3" "$(reused_of "$r")"
expect "short key: check-in" 200 "$(status_of "$r")"
# A good key of another value, readable by all: refused too, or the session would not resume.
"$OTAD" --ticket-key-generate "$T/tk2"
chmod 0644 "$T/tk2"
sighup_second "loose key"
expect_match "loose key: refused, path and mode named" \
	"the old one stays: ticket key $T/tk2: mode 0644 " "$(grep 'SIGHUP: the ticket key' "$LOG2" | tail -1)"
r=$(tls_checkin "$PORT2" -sess_in "$T/b2.sess")
expect "loose key: the old key stays" "Reused, TLSv1.3" "$(reused_of "$r")"
expect "loose key: check-in" 200 "$(status_of "$r")"
stop_second

# ---- otad refuses to start on a bad key file ----
# refused WHAT FILE REGEX: otad with [tls] ticket_key = FILE exits 1 naming the fault, and so
# does --check-config
refused() {
	conf_with "$T/data3" "$2" "$T/otad3.conf"
	local rc=0 out
	out=$(timeout 30 "$OTAD" --config "$T/otad3.conf" 2>&1) || rc=$?
	expect "$1: exit 1" 1 "$rc"
	expect_match "$1: why" "$3" "$out"
	rc=0
	out=$(timeout 30 "$OTAD" --check-config --config "$T/otad3.conf" 2>&1) || rc=$?
	expect "$1: --check-config exit 1" 1 "$rc"
	expect_match "$1: --check-config why" "$3" "$out"
}
refused "loose mode" "$T/tk2" "ticket key $T/tk2: mode 0644 lets its group write it or others read it \(at most 0640\)"
cp "$T/tk2.good" "$T/bad"
chmod 0660 "$T/bad"
refused "group-writable" "$T/bad" "ticket key $T/bad: mode 0660 "
head -c 48 /dev/urandom | base64 -w0 >"$T/bad"
chmod 0600 "$T/bad"
refused "48 bytes" "$T/bad" "ticket key $T/bad: not one line of base64 of 64 bytes"
printf 'not base64 at all\n' >"$T/bad"
refused "not base64" "$T/bad" "ticket key $T/bad: not one line of base64 of 64 bytes"
{ cat "$T/tk2.good"; cat "$T/tk2.good"; } >"$T/bad"
refused "two lines" "$T/bad" "ticket key $T/bad: not one line of base64 of 64 bytes"
refused "missing" "$T/none" "ticket key $T/none: cannot open it"
mkdir -m 0700 "$T/dir"
refused "a folder" "$T/dir" "ticket key $T/dir: not a regular file"
expect "no data folder made by a refused start" "" "$(ls -d "$T/data3" 2>/dev/null || true)"
# A key file of mode 0640 (root:otad in production) is fine.
chmod 0640 "$T/tk2.good"
conf_with "$T/data3" "$T/tk2.good" "$T/otad3.conf"
expect "mode 0640: --check-config passes" "$T/otad3.conf: configuration OK" \
	"$("$OTAD" --check-config --config "$T/otad3.conf" 2>&1)"
finish
