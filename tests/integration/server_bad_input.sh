#!/usr/bin/env bash
# Acceptance: bad input gets a clear problem+json and changes nothing: malformed JSON and
# wrong types (400), a body over the limit (413, declared or chunked), an unknown path (404),
# a wrong method (405 with Allow), and at release registration an image whose hash or size
# does not match the manifest, or a manifest that fails verification (422).
. "$(dirname "$0")/server_lib.sh"

make_pki
IMAGE_MAX=100000 write_config
start_otad
expect "admitted" 200 "$(code_of "$(checkin device-0001)")"

# bad WHAT STATUS TYPE COMMAND...: refused with that problem, database and images unchanged.
bad() {
	local what=$1 status=$2 type=$3; shift 3
	local before after r
	before="$(db_digest) $(ls "$DATA/images" | sort | tr '\n' ' ')"
	r=$("$@")
	after="$(db_digest) $(ls "$DATA/images" | sort | tr '\n' ' ')"
	expect "$what: status" "$status" "$(code_of "$r")"
	expect "$what: type" "urn:ota:problem:$type" "$(jfield "$r" .type)"
	expect "$what: content type" "application/problem+json" "$(ctype_of "$r")"
	[ -n "$(jfield "$r" .detail)" ] && ok || fail "$what: no detail"
	expect "$what: nothing changed" "$before" "$after"
}
ci() { checkin device-0001 "$1"; }
bad "malformed JSON" 400 malformed-json ci '{"hw_variant": "pico2w",'
bad "empty body" 400 malformed-json ci ''
bad "duplicate key" 400 malformed-json ci '{"hw_variant":"a","hw_variant":"b"}'
bad "array body" 400 invalid-field ci '[1,2]'
bad "floor as string" 400 invalid-field ci "${CHECKIN/\"security_floor\":1/\"security_floor\":\"1\"}"
bad "negative floor" 400 invalid-field ci "${CHECKIN/\"security_floor\":1/\"security_floor\":-1}"
bad "hw_variant as number" 400 invalid-field ci "${CHECKIN/\"hw_variant\":\"pico2w\"/\"hw_variant\":5}"
bad "missing version" 400 invalid-field ci "${CHECKIN/\"version\":\"1.0.0\",/}"
bad "version not semver" 400 invalid-field ci "${CHECKIN/\"version\":\"1.0.0\"/\"version\":\"one\"}"
bad "slot C" 400 invalid-field ci "${CHECKIN/\"active_slot\":\"A\"/\"active_slot\":\"C\"}"
bad "root_version 0" 400 invalid-field ci "${CHECKIN/\"root_version\":1/\"root_version\":0}"
r=$(ci "${CHECKIN/\"security_floor\":1/\"security_floor\":\"1\"}")
expect "names the field" '"security_floor" must be an integer from 0 to 4294967295' "$(jfield "$r" .detail)"

# Over the 16 KiB body limit: declared, and chunked without a length.
big=$T/big.json
printf '{"pad":"%s"}' "$(head -c 17000 /dev/zero | tr '\0' x)" >"$big"
bad "declared body over the limit" 413 body-too-large dcurl device-0001 /device/v1/checkin -H 'Content-Type: application/json' --data-binary @"$big"
bad "chunked body over the limit" 413 body-too-large dcurl device-0001 /device/v1/checkin \
	-H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$big"
head -c 100001 /dev/urandom >"$T/huge.bin"
bad "image over image_max" 413 body-too-large mcurl admin /api/v1/images --data-binary @"$T/huge.bin"
bad "chunked image over image_max" 413 body-too-large mcurl admin /api/v1/images \
	-H 'Transfer-Encoding: chunked' --data-binary @"$T/huge.bin"
expect "no upload left behind" "" "$(ls -A "$DATA/images/.incoming")"

# Unknown paths and wrong methods, on both listeners.
bad "unknown device path" 404 not-found dcurl device-0001 /device/v1/nothing
bad "management path on the device listener" 404 not-found dcurl device-0001 /api/v1/health
bad "unknown management path" 404 not-found mcurl admin /api/v2/health
bad "GET check-in" 405 method-not-allowed dcurl device-0001 /device/v1/checkin
bad "DELETE health" 405 method-not-allowed mcurl admin /api/v1/health -X DELETE
allow=$(curl -sS --cacert "$PKI/device-ca.pem" --cert "$PKI/device-0001.pem" --key "$PKI/device-0001.key" \
	-D - -o /dev/null "https://127.0.0.1:$DPORT/device/v1/checkin" | tr -d '\r' | awk -F': ' 'tolower($1)=="allow"{print $2}')
expect "405 Allow header" POST "$allow"

# Reports with wrong types.
head -c 3000 /dev/urandom >"$T/a.bin"
rel=$(release_of "$T/a.bin" 1.1.0 2)
dep=$(deploy device-0001 "$rel")
bad "seq as string" 400 invalid-field report device-0001 "$dep" '{"seq":"1","status":"trial"}'
bad "seq 0" 400 invalid-field report device-0001 "$dep" '{"seq":0,"status":"trial"}'
bad "unknown status" 400 invalid-field report device-0001 "$dep" '{"seq":1,"status":"exploded"}'
bad "reason too long" 400 invalid-field report device-0001 "$dep" \
	"{\"seq\":1,\"status\":\"failed\",\"reason\":\"$(head -c 201 /dev/zero | tr '\0' r)\"}"

# Release registration: image hash and size must match; the manifest must verify.
head -c 3000 /dev/urandom >"$T/b.bin"       # signed, never uploaded, as long as a.bin
cp "$T/a.bin" "$T/a-longer.bin"; echo x >>"$T/a-longer.bin"
"$OTA_SIGN" release --image "$T/b.bin" --name fw --version 2.0.0 --security-version 2 \
	--hw-variant pico2w --key "$T/release.key" --out "$T/b.json" >/dev/null
"$OTA_SIGN" release --image "$T/a-longer.bin" --name fw --version 2.0.1 --security-version 2 \
	--hw-variant pico2w --key "$T/release.key" --out "$T/long.json" >/dev/null
sha_a=$(sha256sum "$T/a.bin" | cut -d' ' -f1)
reg() { mcurl admin "/api/v1/releases$2" --data-binary @"$1" -H 'Content-Type: application/json'; }
bad "manifest of an image never uploaded" 404 image-not-found reg "$T/b.json" ""
bad "image hash differs from the manifest" 422 image-mismatch reg "$T/b.json" "?image=$sha_a"
r=$(reg "$T/b.json" "?image=$sha_a"); expect_match "hash mismatch says so" "SHA-256|hash" "$(jfield "$r" .detail)"
bad "image size differs from the manifest" 422 image-mismatch reg "$T/long.json" "?image=$sha_a"
r=$(reg "$T/long.json" "?image=$sha_a"); expect_match "size mismatch says so" "size" "$(jfield "$r" .detail)"
# Signed by a key the root does not list.
(cd "$T" && "$OTA_SIGN" keygen --out rogue >/dev/null)
"$OTA_SIGN" release --image "$T/a.bin" --name fw --version 3.0.0 --security-version 2 \
	--hw-variant pico2w --key "$T/rogue.key" --out "$T/rogue.json" >/dev/null
bad "manifest signed by an unknown key" 422 manifest-invalid reg "$T/rogue.json" ""
# A valid signature over another payload: swap the payload of one manifest into another.
jq --arg p "$(jq -r .payload "$T/b.json")" '.payload = $p' "$T/fw-1.1.0.json" >"$T/swapped.json"
bad "manifest payload tampered" 422 manifest-invalid reg "$T/swapped.json" ""
echo '{"payloadType":"application/vnd.ota.manifest+json","payload":"!!","signatures":[]}' >"$T/junk.json"
bad "not a valid envelope" 422 manifest-invalid reg "$T/junk.json" ""
bad "image parameter not a hash" 400 invalid-field reg "$T/b.json" "?image=xyz"
# The same valid release again is idempotent; another one with its name and version conflicts.
r=$(reg "$T/fw-1.1.0.json" ""); expect "same release again" 200 "$(code_of "$r")"
"$OTA_SIGN" release --image "$T/a.bin" --name fw --version 1.1.0 --security-version 3 \
	--hw-variant pico2w --key "$T/release.key" --out "$T/again.json" >/dev/null
bad "other release with the same name and version" 409 release-conflict reg "$T/again.json" ""
finish
