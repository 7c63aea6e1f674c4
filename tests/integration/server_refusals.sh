#!/usr/bin/env bash
# Acceptance: refused, with nothing written to the database: no client certificate; a
# certificate from another CA; an expired certificate; one without the clientAuth purpose (with
# serverAuth only, and with no extendedKeyUsage at all, which only otad's own check refuses); a
# revoked one (CRL, and the revocation table); a second certificate claiming an admitted
# device's name; TLS 1.1; a device certificate on the management listener; an operator
# certificate on the device listener; device A reporting on device B's deployment.
. "$(dirname "$0")/server_lib.sh"

make_pki
p() { "$OTA_SCRIPTS/dev-pki.sh" "$PKI" "$@" >/dev/null; }
p otherca foreign device-0009
p expired old-0001 device-0008
p noclientauth srv-0001 device-0007
p noeku noeku-0001 device-0006
p manyeku many-0001 device-0005
p device gone-0001
p revoke gone-0001
p device dup-0001 device-0001
p operator badrole bogus-role
write_config
start_otad

# Device 1 and 2 are admitted; device 2 has a deployment.
expect "device-0001 admitted" 200 "$(code_of "$(checkin device-0001)")"
expect "device-0002 admitted" 200 "$(code_of "$(checkin device-0002)")"
head -c 5000 /dev/urandom >"$T/img.bin"
rel=$(release_of "$T/img.bin" 1.1.0 2)
dep_b=$(deploy device-0002 "$rel")

# refused WHAT STATUS TYPE RESPONSE-COMMAND...: the request is refused with that problem and
# the database is byte-for-byte unchanged.
refused() {
	local what=$1 status=$2 type=$3; shift 3
	local before after r
	before=$(db_digest)
	r=$("$@")
	after=$(db_digest)
	expect "$what: status" "$status" "$(code_of "$r")"
	[ -n "$type" ] && expect "$what: problem type" "urn:ota:problem:$type" "$(jfield "$r" .type)"
	expect "$what: content type" "application/problem+json" "$(ctype_of "$r")"
	expect "$what: database unchanged" "$before" "$after"
}

refused "no client certificate" 401 client-certificate-required checkin ""
refused "certificate from another CA" 403 client-certificate-rejected checkin foreign
refused "expired certificate" 403 client-certificate-rejected checkin old-0001
r=$(checkin old-0001); expect "expired: says why" "certificate expired" "$(jfield "$r" .detail)"
refused "no clientAuth purpose" 403 client-certificate-rejected checkin srv-0001
r=$(checkin srv-0001)
expect "serverAuth only: says why" "certificate lacks the clientAuth purpose" "$(jfield "$r" .detail)"
# GnuTLS's purpose check lets a certificate without any EKU through: otad's own check refuses it.
refused "no extendedKeyUsage at all" 403 client-certificate-rejected checkin noeku-0001
r=$(checkin noeku-0001)
expect "no EKU: says why" "certificate lacks the clientAuth purpose" "$(jfield "$r" .detail)"
expect "no EKU: device-0006 never admitted" 0 \
	"$(db "SELECT count(*) FROM devices WHERE id='device-0006'")"
# clientAuth among other purposes is enough.
expect "clientAuth among others admitted" 200 "$(code_of "$(checkin many-0001)")"
refused "revoked by the CRL" 403 client-certificate-revoked checkin gone-0001
refused "second certificate for device-0001" 403 identity-conflict checkin dup-0001
refused "operator certificate on the device listener" 403 client-certificate-rejected checkin admin
# device-0003 has never connected: a refusal on the management listener must not admit it.
refused "device certificate on the management listener" 403 client-certificate-rejected mcurl device-0003 /api/v1/health
refused "device certificate uploading on the management listener" 403 client-certificate-rejected \
	mcurl device-0003 /api/v1/images --data-binary @"$T/img.bin"
refused "operator without a role" 403 client-certificate-rejected mcurl badrole /api/v1/health
refused "device A reporting on device B's deployment" 403 not-your-deployment \
	report device-0001 "$dep_b" '{"seq":1,"status":"failed","reason":"not mine"}'
refused "report on an unknown deployment" 404 deployment-not-found \
	report device-0001 d-00000000000000000000000000000000 '{"seq":1,"status":"failed"}'
expect "device-0003 never admitted" 0 "$(db "SELECT count(*) FROM devices WHERE id='device-0003'")"

# TLS 1.1 is refused at the handshake (the same client gets in with TLS 1.2 and 1.3).
tls_with() {
	gnutls-cli --x509cafile "$PKI/device-ca.pem" --x509certfile "$PKI/device-0003.pem" \
		--x509keyfile "$PKI/device-0003.key" --priority "NORMAL:-VERS-ALL:+VERS-$1" \
		-p "$DPORT" 127.0.0.1 </dev/null >"$T/tls.out" 2>&1 && echo connected || echo refused
}
before=$(db_digest)
expect "TLS 1.1 refused" refused "$(tls_with TLS1.1)"
expect "TLS 1.0 refused" refused "$(tls_with TLS1.0)"
expect "TLS 1.2 accepted" connected "$(tls_with TLS1.2)"
expect "TLS 1.3 accepted" connected "$(tls_with TLS1.3)"
expect "TLS handshakes wrote nothing" "$before" "$(db_digest)"

# Revocation by fingerprint (the store's table): refused from the next connection on.
fpr=$(openssl x509 -in "$PKI/device-0001.pem" -outform DER | sha256sum | cut -d' ' -f1)
r=$(mcurl operator /api/v1/revocations -d "{\"fingerprint\":\"$fpr\"}")
expect "an operator may not revoke" 403 "$(code_of "$r")"
r=$(mcurl admin /api/v1/revocations -d "{\"fingerprint\":\"$fpr\",\"reason\":\"stolen\"}")
expect "admin revokes device-0001" 201 "$(code_of "$r")"
refused "revoked by fingerprint" 403 client-certificate-revoked checkin device-0001
finish
