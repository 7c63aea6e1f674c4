#!/usr/bin/env bash
# Acceptance: one device per certificate, and the documented state rules of the device life
# cycle. Re-provisioning or registering with a fingerprint pinned to another device is 409 and
# changes nothing; a device's own fingerprint may be pinned again; rejected and decommissioned
# devices are refused at the device listener, and a decommissioned one is changed only by
# re-provisioning. Only a request that succeeds admits a new device or pins a registered one's
# certificate (docs/device-api.md, "Refusals"): refused first requests leave no row, no pin and
# no admission in the audit log.
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
	"$(db "SELECT count(*) FROM (SELECT fingerprint FROM devices WHERE fingerprint <> '' GROUP BY fingerprint HAVING count(*) > 1) AS s")"
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

# Only a request that succeeds admits or pins (docs/device-api.md, "Refusals").
admitted() { db "SELECT count(*) FROM audit_log WHERE device_id = '$1' AND action IN ('device.admit', 'device.pin')"; }
before=$(db_digest)
expect "a new device: unknown path refused" 404 "$(code_of "$(dcurl device-0003 /device/v1/nothing)")"
expect "a new device: wrong method refused" 405 "$(code_of "$(dcurl device-0003 /device/v1/checkin)")"
expect "a new device: bad body refused" 400 "$(code_of "$(checkin device-0003 '{"hw_variant":1}')")"
expect "a new device: bad content type refused" 415 \
	"$(code_of "$(dcurl device-0003 /device/v1/checkin -H 'Content-Type: text/plain' -d "$CHECKIN")")"
expect "a new device: image not offered" 404 \
	"$(code_of "$(dcurl device-0003 "/device/v1/images/$(printf '%064d' 0)")")"
expect "a new device: report on no deployment" 404 \
	"$(code_of "$(dcurl device-0003 /device/v1/deployments/d-00/events -H 'Content-Type: application/json' -d '{"seq":1,"status":"downloading"}')")"
expect "refused: no device row" 0 "$(db "SELECT count(*) FROM devices WHERE id = 'device-0003'")"
expect "refused: nothing else written" "$before" "$(db_digest)"
expect "refused: no admission audited" 0 "$(admitted device-0003)"
expect "the first request that succeeds admits" 200 "$(code_of "$(checkin device-0003)")"
expect "and pins its certificate" "approved|admitted|$(fpr device-0003)" \
	"$(db "SELECT admission, status, fingerprint FROM devices WHERE id = 'device-0003'")"
expect "audited once" 1 "$(admitted device-0003)"
expect "later requests admit nothing more" 200 "$(code_of "$(checkin device-0003)")"
expect "still audited once" 1 "$(admitted device-0003)"

# A registered device without a certificate: pinned by its first request that succeeds.
"$OTA_SCRIPTS/dev-pki.sh" "$PKI" device device-0004 >/dev/null
expect "register device-0004 without a fingerprint" 201 \
	"$(code_of "$(post /api/v1/devices '{"id":"device-0004"}')")"
before=$(db_digest)
expect "registered: first request refused" 400 "$(code_of "$(checkin device-0004 '[]')")"
expect "refused: not pinned" "" "$(db "SELECT fingerprint FROM devices WHERE id = 'device-0004'")"
expect "refused: nothing written" "$before" "$(db_digest)"
expect "registered: a good request" 200 "$(code_of "$(checkin device-0004)")"
expect "pins its certificate" "$(fpr device-0004)" "$(db "SELECT fingerprint FROM devices WHERE id = 'device-0004'")"
expect "the pin audited" 1 "$(admitted device-0004)"

finish
