#!/usr/bin/env bash
# The device life cycle across admission policies, answered on the device listener: pending
# (held, then approved or rejected), decommissioned, re-provisioned with a new certificate,
# pre-registered (unknown ids refused without a trace, registered ones pinned at first use),
# auto (admitted at once); tags and listing filters with cursor pages; every collection walked
# in pages of one; a device's deployment history; every change audited with before and after.
source "$(dirname "$0")/server_lib.sh"

make_pki
p() { "$OTA_SCRIPTS/dev-pki.sh" "$PKI" "$@" >/dev/null; }
p device new-0001 device-0001 # a second certificate for device-0001, for re-provisioning
p device device-0004
p device device-0005
write_config
policy() { sed -i -E '/^admission = /d; s/^\[device\]$/[device]\nadmission = '"$1"'/' "$CONF"; }
post() { mcurl "$1" "$2" -X POST -H 'Content-Type: application/json' -d "${3-{\}}"; }
problem() { echo "$(code_of "$1") $(jfield "$1" .type | sed 's/^urn:ota:problem://')"; }

# ---- pending: new devices wait for an operator ----
policy pending
start_otad
r=$(checkin device-0001)
expect "pending: a new device is held" "403 device-pending" "$(problem "$r")"
expect "pending: recorded as pending" pending "$(db "SELECT admission FROM devices WHERE id = 'device-0001'")"
expect "pending: first sight audited" 1 "$(db "SELECT count(*) FROM audit_log WHERE action = 'device.pending' AND device_id = 'device-0001'")"
before=$(db_digest)
r=$(checkin device-0001)
expect "pending: asked again, still held" "403 device-pending" "$(problem "$r")"
expect "pending: asking again changes nothing" "$before" "$(db_digest)"
checkin device-0002 >/dev/null
r=$(mcurl operator '/api/v1/devices?admission=pending')
expect "operator lists pending devices" "device-0001 device-0002" "$(jfield "$r" '[.items[].id] | join(" ")')"
r=$(post operator /api/v1/devices/device-0001/approve)
expect "operator approves device-0001" "200 approved" "$(code_of "$r") $(jfield "$r" .admission)"
expect "approval audited with before and after" "pending approved operator" \
	"$(db "SELECT json_extract(before, '$.admission'), json_extract(after, '$.admission'), actor FROM audit_log WHERE action = 'device.approve'" | tr '|' ' ')"
expect "approved: device-0001 checks in" 200 "$(code_of "$(checkin device-0001)")"
r=$(post operator /api/v1/devices/device-0002/reject)
expect "operator rejects device-0002" "200 rejected" "$(code_of "$r") $(jfield "$r" .admission)"
before=$(db_digest)
expect "rejected: device-0002 refused" "403 device-rejected" "$(problem "$(checkin device-0002)")"
expect "rejected: the refusal changes nothing" "$before" "$(db_digest)"
expect "auditor may not approve" "403 forbidden" "$(problem "$(post auditor /api/v1/devices/device-0002/approve)")"
expect "unknown device: 404" "404 device-not-found" "$(problem "$(post operator /api/v1/devices/nobody/approve)")"

# ---- deployment history, decommissioning, re-provisioning ----
head -c 3000 /dev/urandom >"$T/img.bin"
rel=$(release_of "$T/img.bin" 1.1.0 2)
dep=$(deploy device-0001 "$rel")
r=$(mcurl auditor /api/v1/devices/device-0001)
expect "the device shows its deployment history" "$dep active" "$(jfield "$r" '.deployments[0] | "\(.id) \(.status)"')"
r=$(post operator /api/v1/devices/device-0001/decommission)
expect "operator decommissions device-0001" "200 decommissioned" "$(code_of "$r") $(jfield "$r" .status)"
expect "decommissioning cancels the active deployment" cancelled "$(db "SELECT status FROM deployments WHERE id = '$dep'")"
expect "decommissioned: its certificate is refused" "403 device-decommissioned" "$(problem "$(checkin device-0001)")"
expect "decommissioned twice: conflict" "409 conflict" "$(problem "$(post operator /api/v1/devices/device-0001/decommission)")"
expect "re-provision needs a fingerprint" "400 invalid-field" "$(problem "$(post operator /api/v1/devices/device-0001/reprovision '{"fingerprint":"abc"}')")"
fpr=$(openssl x509 -in "$PKI/new-0001.pem" -outform DER | sha256sum | cut -d' ' -f1)
r=$(post operator /api/v1/devices/device-0001/reprovision "{\"fingerprint\":\"$fpr\"}")
expect "operator re-provisions device-0001" "200 admitted $fpr" "$(code_of "$r") $(jfield "$r" .status) $(jfield "$r" .fingerprint)"
expect "re-provisioned: the new certificate is accepted" 200 "$(code_of "$(checkin new-0001)")"
expect "re-provisioned: the old certificate is refused" "403 identity-conflict" "$(problem "$(checkin device-0001)")"

# ---- releases and images: deleted only when unused ----
expect "a release with deployments is in use" "409 in-use" "$(problem "$(mcurl operator "/api/v1/releases/$rel" -X DELETE)")"
head -c 2000 /dev/urandom >"$T/img2.bin"
rel2=$(release_of "$T/img2.bin" 1.2.0 2)
r=$(post operator /api/v1/rollouts "{\"name\":\"r\",\"release_id\":\"$rel2\",\"stages\":[{\"percent\":100}]}")
expect "a rollout of release 1.2.0" 201 "$(code_of "$r")"
expect "a release a rollout references is in use" "409 in-use" "$(problem "$(mcurl operator "/api/v1/releases/$rel2" -X DELETE)")"
head -c 2500 /dev/urandom >"$T/img3.bin"
rel3=$(release_of "$T/img3.bin" 1.3.0 2)
img3=$(sha256sum "$T/img3.bin" | cut -d' ' -f1)
expect "an image a release uses is in use" "409 in-use" "$(problem "$(mcurl operator "/api/v1/images/$img3" -X DELETE)")"
expect "auditor may not delete" "403 forbidden" "$(problem "$(mcurl auditor "/api/v1/releases/$rel3" -X DELETE)")"
expect "an unused release is deleted" 200 "$(code_of "$(mcurl operator "/api/v1/releases/$rel3" -X DELETE)")"
expect "deleted: gone" "404 release-not-found" "$(problem "$(mcurl auditor "/api/v1/releases/$rel3")")"
expect "its file is there" yes "$([ -e "$DATA/images/$img3" ] && echo yes || echo no)"
expect "then its image is deleted" 200 "$(code_of "$(mcurl operator "/api/v1/images/$img3" -X DELETE)")"
expect "with its file" no "$([ -e "$DATA/images/$img3" ] && echo yes || echo no)"
r=$(mcurl auditor '/api/v1/images?limit=1')
expect "images in pages" "1 true" "$(jfield "$r" '"\(.items | length) \(.next_cursor != null)"')"
expect "deletions audited" "release.delete image.delete" "$(db "SELECT group_concat(action, ' ') FROM (SELECT action FROM audit_log WHERE action LIKE '%.delete' ORDER BY seq) AS s")"

# ---- tags and listing ----
r=$(mcurl operator /api/v1/devices/device-0001/tags -X PUT -H 'Content-Type: application/json' -d '{"tags":["line=3","plant-a"]}')
expect "operator sets tags" '["line=3","plant-a"]' "$(jfield "$r" '.tags | tostring')"
expect "bad tag refused" "400 invalid-field" "$(problem "$(mcurl operator /api/v1/devices/device-0001/tags -X PUT -H 'Content-Type: application/json' -d '{"tags":["no spaces"]}')")"
r=$(mcurl auditor '/api/v1/devices?tag=line%3D3')
expect "list by tag" device-0001 "$(jfield "$r" '[.items[].id] | join(" ")')"
r=$(mcurl auditor '/api/v1/devices?hw_variant=pico2w&version=1.0.0')
expect "list by hardware variant and version" device-0001 "$(jfield "$r" '[.items[].id] | join(" ")')"
r=$(mcurl auditor '/api/v1/devices?limit=1')
expect "first page" "device-0001 device-0001" "$(jfield "$r" '"\(.items[0].id) \(.next_cursor)"')"
r=$(mcurl auditor "/api/v1/devices?limit=1&cursor=device-0001")
expect "second page" "device-0002 null" "$(jfield "$r" '"\(.items[0].id) \(.next_cursor)"')"
expect "bad filter refused" "400 invalid-field" "$(problem "$(mcurl auditor '/api/v1/devices?admission=maybe')")"
expect "bad limit refused" "400 invalid-field" "$(problem "$(mcurl auditor '/api/v1/devices?limit=0')")"
r=$(mcurl auditor "/api/v1/devices?seen_after=$(($(date +%s) - 600))")
expect "list by last seen" device-0001 "$(jfield "$r" '[.items[].id] | join(" ")')"

# ---- every collection in pages of one: each item exactly once, in the list's order ----
for n in 1 2 3; do
	post admin /api/v1/principals "{\"name\":\"robot-$n\",\"role\":\"operator\"}" >/dev/null
	post admin /api/v1/tokens "{\"principal\":\"robot-$n\",\"expires_in_days\":1}" >/dev/null
	post admin /api/v1/tokens "{\"principal\":\"robot-$n\",\"expires_in_days\":2}" >/dev/null
	post operator /api/v1/rollouts "{\"name\":\"r$n\",\"release_id\":\"$rel2\",\"stages\":[{\"percent\":100}]}" >/dev/null
done
expect "pages: devices" "$(db "SELECT id FROM devices ORDER BY id")" "$(walk_pages auditor /api/v1/devices .id)"
expect "pages: devices, filtered" "$(db "SELECT id FROM devices WHERE admission = 'approved' ORDER BY id")" "$(walk_pages auditor '/api/v1/devices?admission=approved' .id)"
expect "pages: images" "$(db "SELECT sha256 FROM images ORDER BY sha256")" "$(walk_pages auditor /api/v1/images .sha256)"
expect "pages: releases, newest first" "$(db "SELECT id FROM releases ORDER BY created_at DESC, id")" "$(walk_pages auditor /api/v1/releases .id)"
expect "pages: principals" "$(db "SELECT name FROM principals ORDER BY name")" "$(walk_pages admin /api/v1/principals .name)"
expect "pages: tokens, oldest first" "$(db "SELECT id FROM api_tokens ORDER BY created_at, id")" "$(walk_pages admin /api/v1/tokens .id)"
expect "pages: rollouts, oldest first" "$(db "SELECT id FROM rollouts ORDER BY created_at, id")" "$(walk_pages auditor /api/v1/rollouts .id)"
expect "pages: rollouts, filtered" "$(db "SELECT id FROM rollouts WHERE state = 'draft' ORDER BY created_at, id")" "$(walk_pages auditor '/api/v1/rollouts?state=draft' .id)"
expect "pages: audit" "$(db "SELECT seq FROM audit_log ORDER BY seq")" "$(walk_pages auditor /api/v1/audit .seq)"
expect "each list had pages to walk" 1 "$(db "SELECT CASE WHEN (SELECT count(*) FROM principals) >= 2 AND (SELECT count(*) FROM api_tokens) >= 2 AND (SELECT count(*) FROM rollouts) >= 2 AND (SELECT count(*) FROM releases) >= 2 THEN 1 ELSE 0 END")"
r=$(mcurl admin /api/v1/tokens)
expect "one page by default: every token, no next cursor" "$(db "SELECT count(*) FROM api_tokens") null" "$(jfield "$r" '"\(.items | length) \(.next_cursor)"')"
for path in /api/v1/devices /api/v1/images /api/v1/releases /api/v1/principals /api/v1/tokens /api/v1/rollouts /api/v1/audit; do
	expect "$path: limit over 1000 refused" "400 invalid-field" "$(problem "$(mcurl admin "$path?limit=1001")")"
	expect "$path: malformed cursor refused" "400 invalid-field" "$(problem "$(mcurl admin "$path?cursor=no%20such")")"
done
expect "a cursor of another list's form is refused" "400 invalid-field" "$(problem "$(mcurl admin "/api/v1/releases?cursor=device-0001")")"
stop_otad

# ---- preregistered: only registered ids ----
policy preregistered
start_otad
before=$(db_digest)
expect "preregistered: an unknown id is refused" "403 device-unregistered" "$(problem "$(checkin device-0004)")"
expect "preregistered: the refusal writes no device" "$before" "$(db_digest)"
r=$(post operator /api/v1/devices '{"id":"device-0004"}')
expect "operator registers device-0004" "201 approved" "$(code_of "$r") $(jfield "$r" .admission)"
expect "registering twice: conflict" "409 conflict" "$(problem "$(post operator /api/v1/devices '{"id":"device-0004"}')")"
expect "preregistered: the registered device checks in" 200 "$(code_of "$(checkin device-0004)")"
fpr4=$(openssl x509 -in "$PKI/device-0004.pem" -outform DER | sha256sum | cut -d' ' -f1)
expect "its first certificate is pinned" "$fpr4" "$(db "SELECT fingerprint FROM devices WHERE id = 'device-0004'")"
expect "pinning audited" 1 "$(db "SELECT count(*) FROM audit_log WHERE action = 'device.pin' AND device_id = 'device-0004'")"
expect "still refused: rejected device-0002" "403 device-rejected" "$(problem "$(checkin device-0002)")"
stop_otad

# ---- auto: admitted at first sight ----
policy auto
start_otad
expect "auto: a new device is admitted" 200 "$(code_of "$(checkin device-0005)")"
expect "auto: admission audited" 1 "$(db "SELECT count(*) FROM audit_log WHERE action = 'device.admit' AND device_id = 'device-0005'")"
expect "auto: a rejected device stays rejected" "403 device-rejected" "$(problem "$(checkin device-0002)")"
r=$(mcurl auditor /api/v1/audit/verify)
expect "the audit log verifies" true "$(jfield "$r" .ok)"
finish
