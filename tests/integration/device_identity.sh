#!/usr/bin/env bash
# Acceptance: one device per certificate, and the documented state rules of the device life
# cycle. Re-provisioning or registering with a fingerprint pinned to another device is 409 and
# changes nothing; a device's own fingerprint may be pinned again; rejected and decommissioned
# devices are refused at the device listener, and a decommissioned one is changed only by
# re-provisioning. Admission belongs to the connection, as docs/device-api.md states: a new
# device whose first request is refused is admitted and pinned all the same.
. "$(dirname "$0")/server_lib.sh"

make_pki
write_config
start_otad
fpr() { openssl x509 -in "$PKI/$1.pem" -outform DER | sha256sum | cut -d' ' -f1; }
post() { mcurl admin "$1" -X POST -H 'Content-Type: application/json' -d "${2-{\}}"; }
problem() { echo "$(code_of "$1") $(jfield "$1" .type | sed 's/^urn:ota:problem://')"; }
fpr1=$(fpr device-0001)
fpr2=$(fpr device-0002)

expect "device-0001 admitted" 200 "$(code_of "$(checkin device-0001)")"
expect "device-0002 admitted" 200 "$(code_of "$(checkin device-0002)")"

# One device per certificate.
before=$(db_digest)
expect "re-provision with another device's fingerprint" "409 conflict" \
	"$(problem "$(post /api/v1/devices/device-0002/reprovision "{\"fingerprint\":\"$fpr1\"}")")"
expect "register with another device's fingerprint" "409 conflict" \
	"$(problem "$(post /api/v1/devices "{\"id\":\"device-0009\",\"fingerprint\":\"$fpr1\"}")")"
expect "refused re-pinning changes nothing" "$before" "$(db_digest)"
expect "device-0002 keeps its certificate" "$fpr2" "$(db "SELECT fingerprint FROM devices WHERE id = 'device-0002'")"
expect "device-0002 still checks in" 200 "$(code_of "$(checkin device-0002)")"
expect "each fingerprint pinned once" 0 \
	"$(db "SELECT count(*) FROM (SELECT fingerprint FROM devices WHERE fingerprint <> '' GROUP BY fingerprint HAVING count(*) > 1)")"
r=$(post /api/v1/devices/device-0001/reprovision "{\"fingerprint\":\"$fpr1\"}")
expect "re-provision with its own fingerprint" "200 $fpr1" "$(code_of "$r") $(jfield "$r" .fingerprint)"

# Rejected and decommissioned devices.
expect "reject" 200 "$(code_of "$(post /api/v1/devices/device-0001/reject)")"
expect "rejected: refused" "403 device-rejected" "$(problem "$(checkin device-0001)")"
expect "approve again" 200 "$(code_of "$(post /api/v1/devices/device-0001/approve)")"
expect "approved: admitted" 200 "$(code_of "$(checkin device-0001)")"
expect "decommission" 200 "$(code_of "$(post /api/v1/devices/device-0002/decommission)")"
expect "decommissioned: refused" "403 device-decommissioned" "$(problem "$(checkin device-0002)")"
expect "decommissioned: approve is a conflict" "409 conflict" "$(problem "$(post /api/v1/devices/device-0002/approve)")"
expect "decommissioned: reject is a conflict" "409 conflict" "$(problem "$(post /api/v1/devices/device-0002/reject)")"
expect "decommissioned twice is a conflict" "409 conflict" "$(problem "$(post /api/v1/devices/device-0002/decommission)")"
expect "decommissioned: still refused" "403 device-decommissioned" "$(problem "$(checkin device-0002)")"
r=$(post /api/v1/devices/device-0002/reprovision "{\"fingerprint\":\"$fpr2\"}")
expect "re-provisioned: admitted again" "200 admitted" "$(code_of "$r") $(jfield "$r" .status)"
expect "re-provisioned: checks in" 200 "$(code_of "$(checkin device-0002)")"

# Admission belongs to the connection (docs/device-api.md, "Refusals").
expect "a new device's first request refused" 404 "$(code_of "$(dcurl device-0003 /device/v1/nothing)")"
expect "and the device admitted and pinned all the same" "approved|$(fpr device-0003)" \
	"$(db "SELECT admission, fingerprint FROM devices WHERE id = 'device-0003'")"

finish
