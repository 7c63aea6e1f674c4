#!/usr/bin/env bash
# TLS session resumption of a long-running ota-agent against a real otad (TLS 1.3 tickets):
# one `ota-agent run` process polls every 10 s with debug lines on. Its first check-in and the
# renewal request it leads to share one connection (a poll cycle's requests do); a renewal's
# pending pair and the first connection after its commit make full handshakes (no session of
# another pair); the polls after it resume the session; a root that changes the trusted server
# CA set makes the next connection a full handshake, and resumption goes on after it.
#
# Needs: OTAD, OTA_SIGN, OTA_AGENT (binaries), OTA_SCRIPTS in the environment.
. "$(dirname "$0")/server_lib.sh"
. "$(dirname "$0")/agent_lib.sh"

make_pki
"$OTA_SCRIPTS/dev-pki.sh" "$PKI" renewal >/dev/null
"$OTA_SCRIPTS/dev-pki.sh" "$PKI" aged dev-aged >/dev/null
write_config
cat >>"$CONF" <<CONF
issuer_cert = $PKI/device-issuer.pem
issuer_key = $PKI/device-issuer.key
issued_days = 30
CONF
# otad's shortest poll interval, without jitter: the agent polls every 10 s.
sed -i 's/^poll_interval = .*/poll_interval = 10/; s/^poll_jitter = .*/poll_jitter = 0/' "$CONF"
start_otad

"$OTA_AGENT" mkimage --version 1.0.0 --security-version 1 --hw pico2w --size 30000 "$T/factory.img"
agent_setup dev-aged "$T/factory.img"
printf 'renew_permille = 250\ndebug = 1\n' >>"$T/dev-aged/agent.conf"
LOG=$T/run.log
"$OTA_AGENT" --config "$T/dev-aged/agent.conf" run 2>"$LOG" &
AGENT_PIDS+=($!)

# The connection lines and the events that matter, in order.
events() { grep -E 'TLS (session resumed|full handshake)|renewed certificate accepted|root metadata rotated' "$LOG"; }
# wait_for SECONDS COMMAND...: until the command succeeds.
wait_for() {
	local n=$(($1 * 5))
	shift
	while ! "$@" && [ $n -gt 0 ]; do sleep 0.2; n=$((n - 1)); done
	"$@"
}
resumed_after() { # PATTERN COUNT: COUNT resumed connections after the last line matching PATTERN
	[ "$(events | sed -n "/$1/,\$p" | grep -c '^ota-agent: TLS session resumed$')" -ge "$2" ]
}
first_after() { events | sed -n "/$1/,\$p" | grep -m1 'TLS '; }

wait_for 60 resumed_after 'renewed certificate accepted' 1 ||
	fail "no renewal followed by resumed connections: $(tail -5 "$LOG")"
expect "first connection" "ota-agent: TLS full handshake" "$(events | head -1)"
expect "the first check-in and the renewal request on one connection" 1 \
	"$(events | sed '/renewed certificate)/,$d' | grep -c 'TLS ')"
expect "the pending pair's first connection" "ota-agent: TLS full handshake (renewed certificate)" \
	"$(events | grep -m1 'renewed certificate)')"
events | grep -q 'resumed (renewed certificate)' && fail "a session resumed under the pending pair"
expect "first connection after the commit" "ota-agent: TLS full handshake" \
	"$(first_after 'renewed certificate accepted')"

# Root 2 pins otad's CA: the trusted set changes, the session of the old set is dropped.
(cd "$T" && "$OTA_SIGN" root rotate --previous root-1.json --sign root.key \
	--server-ca "$PKI/device-ca.pem" >/dev/null)
r=$(mcurl admin /api/v1/roots --data-binary @"$T/root-2.json" -H 'Content-Type: application/json')
expect "root 2 uploaded" 201 "$(code_of "$r")"
wait_for 60 resumed_after 'root metadata rotated' 1 ||
	fail "no rotation followed by resumed connections: $(tail -5 "$LOG")"
expect "first connection under the new CA set" "ota-agent: TLS full handshake" \
	"$(first_after 'root metadata rotated')"
finish
