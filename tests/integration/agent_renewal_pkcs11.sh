#!/usr/bin/env bash
# Certificate renewal with the issuing CA's key in a PKCS#11 token: a SoftHSM2 token made at
# test time (its own configuration and token folder under the test's temporary folder) holds
# the issuer key, imported with pkcs11-tool and then removed from disk. A real ota-agent whose
# certificate is due renews it through a real otad that signs in the token; the new certificate
# verifies against the issuing CA and the device CA. Then each bad configuration (wrong PIN,
# wrong object, wrong token, a key that is not issuer_cert's, a PIN in the URI, a module that
# does not load) makes otad refuse to start with its documented one-line message.
#
# Needs: OTAD, OTA_SIGN, OTA_AGENT (binaries), OTA_SCRIPTS in the environment; softhsm2 and
# opensc (pkcs11-tool), installed by scripts/install-deps.sh.
. "$(dirname "$0")/server_lib.sh"
. "$(dirname "$0")/agent_lib.sh"

MODULE=
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so; do
	[ -f "$m" ] && MODULE=$m && break
done
[ -n "$MODULE" ] || { echo "FAIL: libsofthsm2.so not found (scripts/install-deps.sh)"; exit 1; }
command -v pkcs11-tool >/dev/null || { echo "FAIL: pkcs11-tool missing (scripts/install-deps.sh)"; exit 1; }

make_pki
"$OTA_SCRIPTS/dev-pki.sh" "$PKI" renewal >/dev/null
"$OTA_SCRIPTS/dev-pki.sh" "$PKI" aged dev-aged >/dev/null

# ---- the token: SoftHSM2 confined to this test ----
mkdir -p "$T/tokens"
export SOFTHSM2_CONF=$T/softhsm2.conf
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$T/tokens" >"$SOFTHSM2_CONF"
p11() { pkcs11-tool --module "$MODULE" "$@"; }
p11 --init-token --slot-index 0 --label ota --so-pin 87654321 >/dev/null 2>&1 || { echo "FAIL: cannot make the SoftHSM2 token"; exit 1; }
p11 --token-label ota --login --login-type so --so-pin 87654321 --init-pin --pin 123456 >/dev/null
# to_token KEY LABEL ID: a private key and its public half (libp11 takes the public point from
# the public key object that shares the private key's id).
to_token() {
	openssl pkey -in "$1" -outform DER -out "$T/k.der"
	openssl pkey -in "$1" -pubout -outform DER -out "$T/k.pub.der"
	p11 --token-label ota --login --pin 123456 --write-object "$T/k.der" --type privkey \
		--label "$2" --id "$3" >/dev/null
	p11 --token-label ota --login --pin 123456 --write-object "$T/k.pub.der" --type pubkey \
		--label "$2" --id "$3" >/dev/null
	rm -f "$T/k.der" "$T/k.pub.der"
}
to_token "$PKI/device-issuer.key" issuer 01
# A second P-256 key on the token that is not the issuer certificate's.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/other.key" 2>/dev/null
to_token "$T/other.key" other 02
rm -f "$T/other.key" "$PKI/device-issuer.key"
printf '123456\n' >"$T/pin"
chmod 600 "$T/pin"

URI='pkcs11:token=ota;object=issuer;type=private'
# pkcs11_config URI [PIN_FILE [MODULE]]: the configuration with the issuer key in the token
# (MODULE "": the modules p11-kit has registered).
pkcs11_config() {
	write_config
	cat >>"$CONF" <<CONF
issuer_cert = $PKI/device-issuer.pem
issuer_key = $1
issuer_key_pin_file = ${2:-$T/pin}
pkcs11_module = ${3-$MODULE}
issued_days = 30
CONF
}

# refused WHAT MESSAGE-REGEX: otad must exit by itself, not ready, saying why in one line.
refused() {
	local rc=0
	timeout 60 "$OTAD" --config "$CONF" >"$T/refused.log" 2>&1 || rc=$?
	expect "$1: otad refuses to start" 1 "$([ $rc -ne 0 ] && [ $rc -ne 124 ] && echo 1 || echo "0 (status $rc)")"
	grep -q 'otad ready' "$T/refused.log" && fail "$1: otad said ready"
	expect_match "$1: says why" "$2" "$(grep -E 'issuer_key|pkcs11_module|issuer_cert' "$T/refused.log" | head -1)"
	if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T/refused.log"; then
		fail "$1: sanitizer report: $(grep -m1 -E 'ERROR|runtime error' "$T/refused.log")"
	fi
}

fp_of() { openssl x509 -in "$1" -outform DER | sha256sum | cut -c1-64; }

# ---- renewal signed in the token ----
pkcs11_config "$URI"
start_otad
"$OTA_AGENT" mkimage --version 1.0.0 --security-version 1 --hw pico2w --size 30000 "$T/factory.img"
agent_setup dev-aged "$T/factory.img"
echo "renew_permille = 250" >>"$T/dev-aged/agent.conf"
old_fp=$(fp_of "$PKI/dev-aged.pem")
agent dev-aged once --timeout 60 2>"$T/a1.log" || fail "first cycle: $(tail -5 "$T/a1.log")"
[ -s "$PKI/dev-aged.pem.new" ] || fail "no new certificate: $(tail -5 "$T/a1.log")"
new_fp=$(fp_of "$PKI/dev-aged.pem.new")
expect "new one pending" "$new_fp" "$(db "SELECT fingerprint FROM device_cert_pending WHERE device_id='dev-aged'")"
[ "$new_fp" != "$old_fp" ] && ok || fail "the certificate did not change"
expect "issued for the device id" "CN=dev-aged" \
	"$(openssl x509 -in "$PKI/dev-aged.pem.new" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')"
openssl x509 -in "$PKI/dev-aged.pem.new" -out "$T/leaf.pem"
# Signed by the issuing CA's key in the token: verifies with the issuer as the trust anchor
# (partial chain), and through it to the device CA.
openssl verify -partial_chain -CAfile "$PKI/device-issuer.pem" "$T/leaf.pem" >/dev/null 2>&1 && ok ||
	fail "the new certificate does not verify against the issuing CA"
openssl verify -CAfile "$PKI/device-ca.pem" -untrusted "$PKI/device-issuer.pem" "$T/leaf.pem" >/dev/null 2>&1 && ok ||
	fail "the new certificate does not verify to the device CA"
# The agent uses it: otad pins it.
agent dev-aged once --timeout 60 2>"$T/a2.log" || fail "second cycle: $(tail -5 "$T/a2.log")"
expect "new certificate pinned" "$new_fp" "$(db "SELECT fingerprint FROM devices WHERE id='dev-aged'")"
stop_otad

# ---- no pkcs11_module: the modules p11-kit has registered (softhsm2 registers its own) ----
pkcs11_config "$URI" "$T/pin" ""
start_otad
expect "starts with p11-kit's modules" 200 "$(code_of "$(mcurl auditor /api/v1/health)")"
stop_otad

# ---- bad configurations: otad does not start ----
pkcs11_config "$URI" "$T/badpin"
printf '000000\n' >"$T/badpin" && chmod 600 "$T/badpin"
refused "wrong PIN" '\[trust\] issuer_key: wrong PIN \(from \[trust\] issuer_key_pin_file '
pkcs11_config 'pkcs11:token=ota;object=nosuchkey;type=private'
refused "wrong object" '\[trust\] issuer_key: no private key on the token matches the URI'
pkcs11_config 'pkcs11:token=elsewhere;object=issuer;type=private'
refused "wrong token" '\[trust\] issuer_key: no token matches the URI'
pkcs11_config 'pkcs11:token=ota;object=other;type=private'
refused "key not the certificate's" '\[trust\] issuer_cert .*: not a PEM CA certificate of issuer_key'
pkcs11_config 'pkcs11:token=ota;object=issuer;type=private?pin-value=123456'
refused "PIN in the URI" '\[trust\] issuer_key: the URI may not carry the PIN'
pkcs11_config "$URI" "$T/pin" "$T/no-such-module.so"
refused "module not found" '\[trust\] pkcs11_module .*no-such-module.so: cannot load this PKCS#11 module'
chmod 644 "$T/pin"
pkcs11_config "$URI"
refused "PIN file open to others" '\[trust\] issuer_key_pin_file .*: writable by its group or open to others'
finish
