#!/usr/bin/env bash
# Acceptance: an address that keeps presenting refused client certificates is blocked
# (docs/operations.md, "Refusals and limits"): after refused_certificates_per_ip of them within
# block_seconds, its new connections are closed before any TLS, counted as address-blocked and
# logged, while other addresses and the other listener are served; strikes older than the
# window do not add up; connections without a certificate count too; the block ends by itself.
# Source addresses are loopback ones (127.0.0.x) that curl binds to.
. "$(dirname "$0")/server_lib.sh"

make_pki
"$OTA_SCRIPTS/dev-pki.sh" "$PKI" otherca foreign device-0009 >/dev/null
write_config
sed -i '/^image_max/a refused_certificates_per_ip = 5\nblock_seconds = 4' "$CONF"
start_otad

# from ADDR NAME: a check-in from source address ADDR presenting NAME's certificate ("" none).
from() { dcurl "$2" /device/v1/checkin --interface "$1" -H 'Content-Type: application/json' -d "$CHECKIN"; }
metric() {
	local v
	v=$(mcurl auditor /metrics | grep -F "ota_refused_total{listener=\"device\",reason=\"$1\"}" |
		awk '{print $2}')
	echo "${v:-0}"
}

expect "device-0001 from 127.0.0.5 admitted" 200 "$(code_of "$(from 127.0.0.5 device-0001)")"
for i in 1 2 3 4; do
	expect "foreign certificate $i from 127.0.0.5: refused" 403 "$(code_of "$(from 127.0.0.5 foreign)")"
done
expect "four refusals do not block (the limit is five)" 200 "$(code_of "$(from 127.0.0.5 device-0001)")"
expect "the fifth foreign certificate: refused" 403 "$(code_of "$(from 127.0.0.5 foreign)")"
t_block=$(date +%s.%N)
expect "now even a good device from 127.0.0.5 is cut before TLS" 000 "$(code_of "$(from 127.0.0.5 device-0001)")"
grep -q "device: 127.0.0.5: blocked for 4 s: 5 refused client certificates within 4 s" "$LOG" ||
	fail "the block is not logged"
grep -q "device: 127.0.0.5: connection refused: 127.0.0.5 is blocked for [1-4] s more" "$LOG" ||
	fail "the blocked connection is not logged with the time left"
expect "/metrics counts the blocked connection" 1 "$(metric address-blocked)"
expect "audited as a refused connection of the address" 1 \
	"$(db "SELECT count(*) FROM audit_log WHERE action = 'connection.refused' AND actor = '127.0.0.5' AND object = 'address-blocked'")"
expect "another address is served" 200 "$(code_of "$(from 127.0.0.1 device-0001)")"
r=$(mcurl auditor /api/v1/health --interface 127.0.0.5)
expect "the management listener keeps its own count" 200 "$(code_of "$r")"

# No certificate at all counts as well.
for i in 1 2 3 4 5; do
	expect "no certificate $i from 127.0.0.6: refused" 401 "$(code_of "$(from 127.0.0.6 "")")"
done
expect "after five connections without a certificate 127.0.0.6 is blocked" 000 \
	"$(code_of "$(from 127.0.0.6 device-0001)")"

# Strikes older than block_seconds do not add up.
for i in 1 2 3 4; do from 127.0.0.7 foreign >/dev/null; done
sleep 4.5
for i in 1 2 3 4; do from 127.0.0.7 foreign >/dev/null; done
expect "eight refusals spread over more than 4 s do not block" 200 \
	"$(code_of "$(from 127.0.0.7 device-0001)")"

# The block ends by itself.
left=$(awk -v a="$t_block" -v b="$(date +%s.%N)" 'BEGIN { l = 4.3 - (b - a); print (l > 0 ? l : 0) }')
sleep "$left"
expect "127.0.0.5 is served again once block_seconds have passed" 200 \
	"$(code_of "$(from 127.0.0.5 device-0001)")"
expect "the good device was never refused for what it is" 0 \
	"$(db "SELECT count(*) FROM audit_log WHERE action = 'auth.refused' AND actor = 'device-0001'")"
r=$(mcurl auditor /api/v1/audit/verify)
expect "the audit log verifies" true "$(jfield "$r" .ok)"
finish
