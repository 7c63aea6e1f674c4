#!/usr/bin/env bash
# The answer lost after the pin, end to end: a real otad with an issuing CA, a real ota-agent
# with a pending renewed pair, and between them a TLS proxy (renewal_cut_proxy.py) that passes
# each request to otad with the pair the agent presented but drops otad's answers to the first
# three connections with the renewed certificate. otad pins the renewed certificate on the first
# of them; the agent, having used the pending pair's tries, presents the old pair, which otad now
# refuses (403). The agent must go back to the renewed pair and check in, in the same run,
# without asking for another certificate.
#
# Needs: OTAD, OTA_SIGN, OTA_AGENT (binaries), OTA_SCRIPTS in the environment; python3.
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
start_otad

fp_of() { openssl x509 -in "$1" -outform DER | sha256sum | cut -c1-64; }
"$OTA_AGENT" mkimage --version 1.0.0 --security-version 1 --hw pico2w --size 30000 "$T/factory.img"
agent_setup dev-aged "$T/factory.img"
echo "renew_permille = 250" >>"$T/dev-aged/agent.conf"
cp "$PKI/dev-aged.pem" "$T/old.pem"
cp "$PKI/dev-aged.key" "$T/old.key"
old_fp=$(fp_of "$T/old.pem")

# First cycle, straight to otad: admitted with the old certificate, a renewed one pending.
agent dev-aged once --timeout 60 2>"$T/a1.log" || fail "first cycle: $(tail -5 "$T/a1.log")"
[ -s "$PKI/dev-aged.pem.new" ] && [ -s "$PKI/dev-aged.key.new" ] ||
	fail "no pending pair: $(tail -5 "$T/a1.log")"
cp "$PKI/dev-aged.pem.new" "$T/new.pem"
cp "$PKI/dev-aged.key.new" "$T/new.key"
new_fp=$(fp_of "$T/new.pem")
expect "new one pending" "$new_fp" "$(db "SELECT fingerprint FROM device_cert_pending WHERE device_id='dev-aged'")"

# Second cycle through the proxy that loses the renewed pair's first three answers.
python3 "$(dirname "$0")/renewal_cut_proxy.py" "$DPORT" "$PKI/server.pem" "$PKI/server.key" \
	"$PKI/device-ca.pem" 3 "$T/old.pem" "$T/old.key" "$T/new.pem" "$T/new.key" "$T/proxy.log" 90 \
	>"$T/proxy.port" 2>"$T/proxy.err" &
AGENT_PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$T/proxy.port" ] && break; sleep 0.1; done
pport=$(cat "$T/proxy.port")
[ -n "$pport" ] || fail "proxy did not start: $(cat "$T/proxy.err")"
sed -i "s|^server = .*|server = https://127.0.0.1:$pport|" "$T/dev-aged/agent.conf"
agent dev-aged once --timeout 40 2>"$T/a2.log" ||
	fail "no check-in after the lost answers: $(tail -5 "$T/a2.log"; cat "$T/proxy.log")"
# What went over the wire: three cut answers with the renewed pair (otad took each), the old
# pair refused once, then the renewed pair answered.
expect "connections through the proxy" "new 200 cut
new 200 cut
new 200 cut
old 403 passed
new 200 passed" "$(head -5 "$T/proxy.log")"
grep -q 'old 200' "$T/proxy.log" && fail "otad answered the old pair after the pin"
expect "new certificate pinned" "$new_fp" "$(db "SELECT fingerprint FROM devices WHERE id='dev-aged'")"
expect "pin audited once" 1 "$(db "SELECT count(*) FROM audit_log WHERE action='device.cert_pin' AND device_id='dev-aged' AND before LIKE '%$old_fp%' AND after LIKE '%$new_fp%'")"
expect "agent committed the pair" "$new_fp" "$(fp_of "$PKI/dev-aged.pem")"
[ ! -e "$PKI/dev-aged.pem.new" ] && [ ! -e "$PKI/dev-aged.key.new" ] || fail "pending files left"
expect "no second certificate issued" 1 "$(db "SELECT count(*) FROM audit_log WHERE action='device.cert_issue' AND device_id='dev-aged'")"
expect "nothing pending" 0 "$(db "SELECT count(*) FROM device_cert_pending")"
finish
