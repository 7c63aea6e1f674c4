#!/usr/bin/env bash
# Credential renewal and signed time, end to end: a real otad with an issuing CA (an
# intermediate of the device CA) and a time key listed in the root, and a real ota-agent whose
# certificate has lived past its renewal point. The agent asks for a new certificate over a
# key it makes, keeps the old pair until the new one was used once; otad records the new
# fingerprint as pending, pins it on first use, refuses the old certificate from then on, and
# audits both steps. Check-ins with a nonce get a time token of the root's time key.
#
# Needs: OTAD, OTA_SIGN, OTA_AGENT (binaries), OTA_SCRIPTS in the environment.
. "$(dirname "$0")/server_lib.sh"
. "$(dirname "$0")/agent_lib.sh"

make_pki
"$OTA_SCRIPTS/dev-pki.sh" "$PKI" renewal >/dev/null
"$OTA_SCRIPTS/dev-pki.sh" "$PKI" aged dev-aged >/dev/null
# The root names the time key (made at test time like every key here).
rm -f "$T/root-1.json"
(cd "$T" && "$OTA_SIGN" root init --root-key root.pub --root-threshold 1 --release-key release.pub \
	--release-threshold 1 --time-key "$PKI/time.pub" --sign root.key --out-dir "$T" >/dev/null)
write_config
cat >>"$CONF" <<CONF
time_key = $PKI/time.key
issuer_cert = $PKI/device-issuer.pem
issuer_key = $PKI/device-issuer.key
issued_days = 30
CONF
start_otad

fp_of() { openssl x509 -in "$1" -outform DER | sha256sum | cut -c1-64; }
checkin_body='{"hw_variant":"pico2w","version":"1.0.0","security_floor":1,"root_version":1,"active_slot":"A","boot_state":"normal"}'
checkin() { dcurl "$1" /device/v1/checkin -X POST -H 'Content-Type: application/json' --data "$2"; }

# ---- signed time over the real device API ----
nonce=00112233445566778899aabbccddeeff
r=$(checkin device-0001 "${checkin_body%\}},\"nonce\":\"$nonce\"}")
expect "check-in with a nonce" 200 "$(code_of "$r")"
expect "time token type" application/vnd.ota.time+json "$(jfield "$r" .time_token.payloadType)"
tok=$(jfield "$r" .time_token.payload | base64 -d)
expect "token answers the nonce" "$nonce" "$(jq -r .nonce <<<"$tok")"
expect_match "token time" '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' "$(jq -r .time <<<"$tok")"
expect "token signed by the time key" \
	"$(openssl pkey -pubin -in "$PKI/time.pub" -outform DER | sha256sum | cut -c1-64)" \
	"$(jfield "$r" '.time_token.signatures[0].keyid')"
r=$(checkin device-0001 "$checkin_body")
expect "no nonce, no token" null "$(jfield "$r" .time_token)"
for bad in '"0011"' '"00112233445566778899AABBCCDDEEFF"' '42'; do
	r=$(checkin device-0001 "${checkin_body%\}},\"nonce\":$bad}")
	expect "bad nonce $bad" 400 "$(code_of "$r")"
done

# ---- renewal ----
"$OTA_AGENT" mkimage --version 1.0.0 --security-version 1 --hw pico2w --size 30000 "$T/factory.img"
agent_setup dev-aged "$T/factory.img"
echo "renew_permille = 250" >>"$T/dev-aged/agent.conf"
cp "$PKI/dev-aged.pem" "$T/old.pem"
cp "$PKI/dev-aged.key" "$T/old.key"
old_fp=$(fp_of "$T/old.pem")

# First cycle: admitted with the old certificate, then asks for a new one.
agent dev-aged once --timeout 60 2>"$T/a1.log" || fail "first cycle: $(tail -5 "$T/a1.log")"
grep -q 'time token refused' "$T/a1.log" && fail "the agent refused otad's time token"
[ -s "$PKI/dev-aged.pem.new" ] && [ -s "$PKI/dev-aged.key.new" ] || fail "no pending pair: $(tail -5 "$T/a1.log")"
expect "pending key private" 600 "$(stat -c %a "$PKI/dev-aged.key.new")"
new_fp=$(fp_of "$PKI/dev-aged.pem.new")
expect "still pinned to the old certificate" "$old_fp" "$(db "SELECT fingerprint FROM devices WHERE id='dev-aged'")"
expect "new one pending" "$new_fp" "$(db "SELECT fingerprint FROM device_cert_pending WHERE device_id='dev-aged'")"
expect "issue audited" 1 "$(db "SELECT count(*) FROM audit_log WHERE action='device.cert_issue' AND device_id='dev-aged' AND after LIKE '%$new_fp%'")"
expect "issued for the device id" "CN=dev-aged" "$(openssl x509 -in "$PKI/dev-aged.pem.new" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')"
openssl verify -CAfile "$PKI/device-ca.pem" -untrusted "$PKI/dev-aged.pem.new" "$PKI/dev-aged.pem.new" >/dev/null 2>&1 ||
	fail "the issued chain does not verify to the device CA"
# Until the new certificate is used, the old one still works.
cp "$T/old.pem" "$PKI/old-aged.pem"
cp "$T/old.key" "$PKI/old-aged.key"
expect "old certificate valid until first use" 200 "$(code_of "$(checkin old-aged "$checkin_body")")"

# A request that is no CSR is refused and changes nothing.
r=$(dcurl old-aged /device/v1/certificate -X POST -H 'Content-Type: application/json' --data '{"csr":"not a request"}')
expect "bad CSR" 400 "$(code_of "$r")"
expect "bad CSR changes nothing" "$new_fp" "$(db "SELECT fingerprint FROM device_cert_pending WHERE device_id='dev-aged'")"

# Second cycle: the agent connects with the new pair; otad pins it; the agent commits it.
agent dev-aged once --timeout 60 2>"$T/a2.log" || fail "second cycle: $(tail -5 "$T/a2.log")"
expect "new certificate pinned" "$new_fp" "$(db "SELECT fingerprint FROM devices WHERE id='dev-aged'")"
expect "pending row gone" 0 "$(db "SELECT count(*) FROM device_cert_pending")"
expect "pin audited" 1 "$(db "SELECT count(*) FROM audit_log WHERE action='device.cert_pin' AND device_id='dev-aged' AND before LIKE '%$old_fp%' AND after LIKE '%$new_fp%'")"
expect "agent committed the pair" "$new_fp" "$(fp_of "$PKI/dev-aged.pem")"
[ ! -e "$PKI/dev-aged.pem.new" ] && [ ! -e "$PKI/dev-aged.key.new" ] || fail "pending files left"
openssl x509 -in "$PKI/dev-aged.pem" -noout -pubkey | cmp -s - <(openssl pkey -in "$PKI/dev-aged.key" -pubout) ||
	fail "committed key and certificate are not a pair"
# From now on the old certificate is refused, the new one works.
expect "old certificate refused" 403 "$(code_of "$(checkin old-aged "$checkin_body")")"
agent dev-aged once --timeout 60 2>"$T/a3.log" || fail "third cycle: $(tail -5 "$T/a3.log")"
expect "still the new certificate" "$new_fp" "$(db "SELECT fingerprint FROM devices WHERE id='dev-aged'")"
# The new certificate lives 30 days: not due again, so nothing new is pending.
expect "no second renewal" 0 "$(db "SELECT count(*) FROM device_cert_pending")"

# ---- server CA through the root: root 2 pins otad's CA, root 3 only another CA ----
"$OTA_SCRIPTS/dev-pki.sh" "$PKI" otherca stranger >/dev/null
(cd "$T" && "$OTA_SIGN" root rotate --previous root-1.json --sign root.key \
	--server-ca "$PKI/device-ca.pem" >/dev/null &&
	"$OTA_SIGN" root rotate --previous root-2.json --sign root.key \
		--server-ca "$PKI/other-ca.pem" >/dev/null)
r=$(mcurl admin /api/v1/roots --data-binary @"$T/root-2.json" -H 'Content-Type: application/json')
expect "root 2 uploaded" 201 "$(code_of "$r")"
agent dev-aged once --timeout 60 2>"$T/a4.log" || fail "cycle under root 2: $(tail -5 "$T/a4.log")"
expect "root 2 walked" 2 "$(status_of dev-aged root_version)"
agent dev-aged once --timeout 60 2>"$T/a5.log" || fail "root 2 pins otad's CA: $(tail -5 "$T/a5.log")"
expect "root 2 reported" 2 "$(db "SELECT root_version FROM devices WHERE id='dev-aged'")"
r=$(mcurl admin /api/v1/roots --data-binary @"$T/root-3.json" -H 'Content-Type: application/json')
expect "root 3 uploaded" 201 "$(code_of "$r")"
agent dev-aged once --timeout 60 2>"$T/a6.log" || fail "cycle bringing root 3: $(tail -5 "$T/a6.log")"
expect "root 3 walked" 3 "$(status_of dev-aged root_version)"
# Root 3 trusts only the other CA: otad's chain is refused from now on.
if agent dev-aged once --timeout 8 2>"$T/a7.log"; then
	fail "the agent still trusts a server CA its root no longer pins"
else
	ok
fi
finish
