#!/usr/bin/env bash
# Acceptance: the edges of the device API are exactly as docs/device-api.md states them. Paths
# are routed as sent (no percent-decoding: an encoded slash, NUL or hex digit finds nothing);
# every kind of bad body has its documented problem (non-object JSON and integers too large for
# any field are invalid-field, a body not declared as application/json is 415); a malformed
# Range is ignored (the whole image); HEAD on an image answers the headers of GET; a report
# reusing a seq with another event is a 409 seq-conflict and stores nothing; an oversized
# last_outcome is stored cut short with a marker rather than failing every check-in; a
# hw_variant no manifest can list is refused.
. "$(dirname "$0")/server_lib.sh"

make_pki
write_config
start_otad
expect "admitted" 200 "$(code_of "$(checkin device-0001)")"
head -c 70000 /dev/urandom >"$T/a.bin"
sha=$(sha256sum "$T/a.bin" | cut -d' ' -f1)
rel=$(release_of "$T/a.bin" 1.1.0 2)
dep=$(deploy device-0001 "$rel")

# bad WHAT STATUS TYPE COMMAND...: refused with that problem, database unchanged.
bad() {
	local what=$1 status=$2 type=$3; shift 3
	local before after r
	before=$(db_digest)
	r=$("$@")
	after=$(db_digest)
	expect "$what: status" "$status" "$(code_of "$r")"
	expect "$what: type" "urn:ota:problem:$type" "$(jfield "$r" .type)"
	expect "$what: content type" "application/problem+json" "$(ctype_of "$r")"
	expect "$what: nothing changed" "$before" "$after"
}
raw() { dcurl device-0001 "$1" --path-as-is; }

# The check-in answer of docs/device-api.md names the members a real answer has, and its ids
# have the real format.
DOC=$(dirname "$0")/../../docs/device-api.md
example=$(awk '/^Answer `200`:/{f=1; next} f && /^```/{if (n++) exit; next} f' "$DOC")
r=$(checkin device-0001)
expect "offer" update "$(jfield "$r" .action)"
doc_keys=$(grep -oE '^ {2}"[a-z_0-9]+"|^ {4}"[a-z_0-9]+"' <<<"$example" | sed 's/ //g; s/^ *//' |
	sed -E 's/^"(.*)"$/\1/' | grep -vx roots | sort | tr '\n' ' ')
real_keys=$(jfield "$r" '(keys + (.update | keys)) | .[]' | sort | tr '\n' ' ')
expect "documented answer members" "$real_keys" "$doc_keys"
expect_match "real deployment id" '^d-[0-9a-f]{32}$' "$(jfield "$r" .update.deployment_id)"
for id in $(grep -oE '"d-[^"]*"' "$DOC" | tr -d '"' | sort -u); do
	expect_match "documented deployment id $id" '^d-[0-9a-f]{32}$' "$id"
done
expect "image_sha256 repeats the hash" "$sha" "$(jfield "$r" .update.image_sha256)"

# Paths as sent.
expect "the image itself" 200 "$(code_of "$(raw "/device/v1/images/$sha")")"
bad "encoded slash" 404 not-found raw "/device/v1/images%2f$sha"
bad "encoded NUL after the hash" 404 image-not-found raw "/device/v1/images/$sha%00"
bad "encoded NUL and dot segments" 404 not-found raw "/device/v1/images/$sha%00/../../x"
bad "hex written as an escape" 404 image-not-found raw "/device/v1/images/%${sha:0:2}${sha:2}"
bad "uppercase hex" 404 image-not-found raw "/device/v1/images/${sha^^}"
bad "encoded deployment id" 404 deployment-not-found dcurl device-0001 \
	"/device/v1/deployments/%64${dep:1}/events" -H 'Content-Type: application/json' \
	-d '{"seq":1,"status":"downloading"}'

# Bodies: each kind of bad body has its documented problem.
ci() { checkin device-0001 "$1"; }
bad "string body" 400 invalid-field ci '"x"'
bad "number body" 400 invalid-field ci '42'
bad "null body" 400 invalid-field ci 'null'
bad "floor of 2^63" 400 invalid-field ci "${CHECKIN/\"security_floor\":1/\"security_floor\":9223372036854775808}"
bad "seq of 2^64" 400 invalid-field report device-0001 "$dep" '{"seq":18446744073709551616,"status":"downloading"}'
bad "no content type" 415 unsupported-media-type dcurl device-0001 /device/v1/checkin \
	-H 'Content-Type:' --data-binary "$CHECKIN"
bad "form content type" 415 unsupported-media-type dcurl device-0001 /device/v1/checkin \
	-d "$CHECKIN"
bad "text content type" 415 unsupported-media-type dcurl device-0001 \
	"/device/v1/deployments/$dep/events" -H 'Content-Type: text/plain' \
	-d '{"seq":1,"status":"downloading"}'
r=$(dcurl device-0001 /device/v1/checkin -H 'Content-Type: application/json; charset=utf-8' \
	-d "$CHECKIN")
expect "JSON with a charset" 200 "$(code_of "$r")"

# Ranges: malformed ones are ignored (200, the whole image); HEAD answers GET's headers.
range() { # RANGE: prints "status bytes"
	curl -sS --cacert "$PKI/device-ca.pem" --cert "$PKI/device-0001.pem" \
		--key "$PKI/device-0001.key" -H "Range: $1" -o "$T/got" -w '%{http_code}' \
		"https://127.0.0.1:$DPORT/device/v1/images/$sha"
	echo " $(stat -c %s "$T/got")"
}
for h in 'bytes=--5' 'bytes=5--3' 'bytes=+5-9' 'bytes=5-+9' 'bytes=-+5' 'bytes=5' \
	'bytes=5-9x' 'bytes= 5-9' 'bytes=9-5' 'bytes=-' 'bytes=99999999999999999999999-'; do
	expect "malformed Range '$h' is ignored" "200 70000" "$(range "$h")"
done
expect "a valid Range" "206 5" "$(range 'bytes=5-9')"
expect "a suffix Range" "206 7" "$(range 'bytes=-7')"
hd=$(curl -sS -I --cacert "$PKI/device-ca.pem" --cert "$PKI/device-0001.pem" \
	--key "$PKI/device-0001.key" "https://127.0.0.1:$DPORT/device/v1/images/$sha" | tr -d '\r')
expect_match "HEAD status" 'HTTP/1.1 200' "$hd"
expect_match "HEAD length" 'Content-Length: 70000' "$hd"
expect_match "HEAD etag" "ETag: \"$sha\"" "$hd"
expect_match "HEAD ranges" 'Accept-Ranges: bytes' "$hd"
hd=$(curl -sS -I --cacert "$PKI/device-ca.pem" --cert "$PKI/device-0001.pem" \
	--key "$PKI/device-0001.key" "https://127.0.0.1:$DPORT/device/v1/checkin" | tr -d '\r')
expect_match "HEAD on check-in is 405" 'HTTP/1.1 405' "$hd"

# Reports: the same seq again is a duplicate; with another event, a conflict.
r=$(report device-0001 "$dep" '{"seq":1,"status":"downloading","progress":10}')
expect "first report" false "$(jfield "$r" .duplicate)"
r=$(report device-0001 "$dep" '{"seq":1,"status":"downloading","progress":10}')
expect "repeated report" true "$(jfield "$r" .duplicate)"
bad "seq reused with another status" 409 seq-conflict report device-0001 "$dep" \
	'{"seq":1,"status":"failed","reason":"flash"}'
bad "seq reused with another progress" 409 seq-conflict report device-0001 "$dep" \
	'{"seq":1,"status":"downloading","progress":11}'
expect "the first event stays" "downloading|10" \
	"$(db "SELECT status, progress FROM deployment_events WHERE deployment_id = '$dep' AND seq = 1")"

# A last_outcome over 1 KiB is stored cut short, and the check-in succeeds.
long=$(head -c 3000 /dev/zero | tr '\0' r)
body=${CHECKIN%\}},\"last_outcome\":{\"deployment_id\":\"$dep\",\"status\":\"failed\",\"reason\":\"$long\"}}
r=$(ci "$body")
expect "oversized last_outcome: check-in answered" 200 "$(code_of "$r")"
stored=$(db "SELECT last_outcome FROM devices WHERE id = 'device-0001'")
expect "stored outcome is marked" true "$(jq -r .truncated <<<"$stored")"
expect "stored outcome keeps the deployment" "$dep" "$(jq -r .deployment_id <<<"$stored")"
expect_match "stored reason is cut with a marker" '^r{128}\.\.\.\[truncated\]$' "$(jq -r .reason <<<"$stored")"
[ ${#stored} -le 1024 ] && ok || fail "stored outcome is ${#stored} bytes"

# hw_variant: only what a manifest can list.
for hw in Pico2W 'pico 2' 'pico/2' ''; do
	bad "hw_variant '$hw'" 400 invalid-field ci "${CHECKIN/\"hw_variant\":\"pico2w\"/\"hw_variant\":\"$hw\"}"
done

finish
