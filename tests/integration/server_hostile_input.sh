#!/usr/bin/env bash
# Acceptance, for input made to mislead: (1) every value a client controls that reaches the log
# (the URL, a header, a certificate's CN and OU, a device's JSON fields) is escaped by the
# logger, so each log line stays one line and nobody forges one; (2) a request whose path is
# not valid UTF-8 is answered with a 400 problem, never an empty reply, and its refusal is
# audited with the path escaped; (3) a certificate whose subject has two CNs or two OUs is
# refused with a problem that says so, on both listeners. Certificates with such subjects are
# made here, at test time.
. "$(dirname "$0")/server_lib.sh"

make_pki
write_config
start_otad

# cert_with CA FILE SUBJECT: a clientAuth certificate issued by CA with exactly SUBJECT (the
# -subj syntax of openssl), as $PKI/FILE.pem and .key.
cert_with() {
	local ca=$1 f=$2 subj=$3
	(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$PKI/$f.key" 2>/dev/null)
	openssl req -new -utf8 -key "$PKI/$f.key" -subj "$subj" -out "$T/$f.csr"
	printf 'basicConstraints = CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\n' \
		>"$T/client.ext"
	openssl x509 -req -in "$T/$f.csr" -CA "$PKI/$ca.pem" -CAkey "$PKI/$ca.key" \
		-set_serial "0x$(openssl rand -hex 8)" -days 2 -sha256 -extfile "$T/client.ext" \
		-out "$PKI/$f.pem" 2>/dev/null
}
FORGE=$(printf '2026-01-01T00:00:00.000Z otad notice: FORGED')

# ---- (1) log injection: each source, with control characters ----
expect "device-0001 admitted" 200 "$(code_of "$(checkin device-0001)")"
# The URL: %0a is a newline once decoded, %1b an escape.
r=$(mcurl operator "/api/v1/devices/x%0a$(sed 's/ /%20/g' <<<"$FORGE")%1b[31m" --path-as-is -g)
expect "URL with a newline: 404" 404 "$(code_of "$r")"
# Headers (a raw newline cannot be sent in one: other control characters can).
r=$(mcurl "" /api/v1/devices -H "$(printf 'Authorization: Bearer ota_\033[2J\177')")
expect "token header with control characters: 401" 401 "$(code_of "$r")"
r=$(dcurl device-0001 /device/v1/images/$(printf '%064d' 0) -H "$(printf 'Range: bytes=\0330-\177')")
expect_match "Range header with control characters: refused" '^4' "$(code_of "$r")"
# CN and OU, with a newline and an escape in them.
cert_with device-ca evil-dev "/O=ota dev/CN=$(printf 'dev\n%s\033' "$FORGE")"
r=$(checkin evil-dev)
expect "device CN with a newline: refused" 403 "$(code_of "$r")"
cert_with operator-ca evil-op "/O=ota dev/OU=$(printf 'admin\n%s' "$FORGE")/CN=$(printf 'op\033\n%s' "$FORGE")"
r=$(mcurl evil-op /api/v1/devices)
expect "operator CN and OU with a newline: refused" 403 "$(code_of "$r")"
# Every string field of a device's JSON (check-in and report).
for field in hw_variant version active_slot boot_state deployment_id; do
	body=$(jq -c --arg f "$field" --arg v "x
$FORGE$(printf '\033')" '.[$f] = $v' <<<"$CHECKIN")
	r=$(checkin device-0001 "$body")
	expect_match "check-in with a newline in $field: answered" '^[24]' "$(code_of "$r")"
done
head -c 3000 /dev/urandom >"$T/img.bin"
rel=$(release_of "$T/img.bin" 1.1.0 2)
dep=$(deploy device-0001 "$rel")
for field in status reason; do
	body=$(jq -c --arg f "$field" --arg v "x
$FORGE$(printf '\033')" '.[$f] = $v' <<<'{"seq":1,"status":"downloading","reason":"r"}')
	r=$(report device-0001 "$dep" "$body")
	expect_match "report with a newline in $field: answered" '^[24]' "$(code_of "$r")"
done
r=$(report device-0001 "$dep" "$(jq -c --arg v "x
$FORGE" '.reason = $v' <<<'{"seq":1,"status":"failed","reason":"r"}')")
expect_match "failed report with a newline in its reason: answered" '^[24]' "$(code_of "$r")"

# ---- (2) a path that is not UTF-8 ----
before=$(db "SELECT count(*) FROM audit_log WHERE action='request.refused'")
r=$(mcurl operator "/api/v1/devices/%ff%fe" --path-as-is)
expect "path with %ff: 400" 400 "$(code_of "$r")"
expect "path with %ff: a problem" "application/problem+json" "$(ctype_of "$r")"
expect "path with %ff: invalid-field" "urn:ota:problem:invalid-field" "$(jfield "$r" .type)"
expect "path with %ff: the instance escaped" '/api/v1/devices/\xff\xfe' "$(jfield "$r" .instance)"
expect "path with %ff: audited" $((before + 1)) \
	"$(db "SELECT count(*) FROM audit_log WHERE action='request.refused'")"
expect "path with %ff: audited escaped" 'GET /api/v1/devices/\xff\xfe: the path is not valid UTF-8' \
	"$(db "SELECT detail FROM audit_log WHERE action='request.refused' ORDER BY seq DESC LIMIT 1")"
# The device listener routes the raw path (docs/device-api.md): "%ff" is no route there, a 404
# problem, never an empty reply.
r=$(dcurl device-0001 "/device/v1/%ff" --path-as-is)
expect "device path with %ff: a 404 problem" "404 application/problem+json" "$(code_of "$r") $(ctype_of "$r")"
# A bad token on such a path: answered, and the refusal audited.
before=$(db "SELECT count(*) FROM audit_log WHERE action='auth.refused'")
r=$(mcurl "" "/api/v1/devices/%ff" --path-as-is -H 'Authorization: Bearer ota_bad')
expect "bad token, path with %ff: 401" 401 "$(code_of "$r")"
expect "bad token, path with %ff: a problem" "urn:ota:problem:token-invalid" "$(jfield "$r" .type)"
expect "bad token, path with %ff: audited" $((before + 1)) \
	"$(db "SELECT count(*) FROM audit_log WHERE action='auth.refused'")"
# An operator without the role, on such a path (an auditor may not create devices).
r=$(mcurl auditor "/api/v1/devices/%ff/decommission" --path-as-is -d '{}')
expect "auditor, path with %ff: 400" 400 "$(code_of "$r")"

# ---- (3) two CNs or two OUs ----
cert_with device-ca two-cn-dev "/O=ota dev/CN=device-0005/CN=device-0006"
r=$(checkin two-cn-dev)
expect "device with two CNs: refused" 403 "$(code_of "$r")"
expect "device with two CNs: rejected" urn:ota:problem:client-certificate-rejected "$(jfield "$r" .type)"
expect "device with two CNs: says why" "the certificate's subject has more than one CN" "$(jfield "$r" .detail)"
expect "device with two CNs: not admitted" 0 \
	"$(db "SELECT count(*) FROM devices WHERE id IN ('device-0005','device-0006')")"
cert_with operator-ca two-cn-op "/O=ota dev/OU=admin/CN=admin/CN=mallory"
r=$(mcurl two-cn-op /api/v1/devices)
expect "operator with two CNs: refused" 403 "$(code_of "$r")"
expect "operator with two CNs: says why" "the certificate's subject has more than one CN" "$(jfield "$r" .detail)"
cert_with operator-ca two-ou-op "/O=ota dev/OU=admin/OU=auditor/CN=carol"
r=$(mcurl two-ou-op /api/v1/devices)
expect "operator with two OUs: refused" 403 "$(code_of "$r")"
expect "operator with two OUs: says why" "the certificate's subject has more than one OU" "$(jfield "$r" .detail)"
cert_with operator-ca one-each-op "/O=ota dev/OU=auditor/CN=carol"
expect "the same with one CN and one OU: admitted" 200 "$(code_of "$(mcurl one-each-op /api/v1/devices)")"

# ---- the log: one line per message, nothing forged, control bytes escaped ----
stop_otad
bad=$(grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z otad [a-z]+: ' "$LOG" || true)
expect "every log line is a whole log line" 0 "$bad"
[ "$bad" == 0 ] || grep -vE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z otad [a-z]+: ' "$LOG" | head -5
expect "no forged line" 0 "$(grep -c '^2026-01-01T00:00:00.000Z' "$LOG" || true)"
expect "no control character in the log" 0 "$(LC_ALL=C grep -c $'[\x01-\x08\x0b-\x1f\x7f]' "$LOG" || true)"
expect "the log is UTF-8" ok "$(iconv -f UTF-8 -t UTF-8 "$LOG" >/dev/null 2>&1 && echo ok)"
expect_match "the URL's newline is escaped" 'x\\x0a2026-01-01T00:00:00.000Z otad notice: FORGED\\x1b\[31m' "$(cat "$LOG")"
expect_match "the CN's newline is escaped" 'refused client dev\\x0a2026' "$(cat "$LOG")"
expect_match "the path's bytes are escaped" '/api/v1/devices/\\xff\\xfe' "$(cat "$LOG")"
finish
