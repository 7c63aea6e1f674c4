#!/usr/bin/env bash
# Acceptance: a device holds as many tags, as long, as the documented limits allow (32 tags of
# 64 characters): the answer and the audit entry of the change list them all, none cut.
. "$(dirname "$0")/server_lib.sh"

make_pki
write_config
start_otad

expect "device-0001 admitted" 200 "$(code_of "$(checkin device-0001)")"
tags=$(for i in $(seq -w 1 32); do printf 't%s-%s\n' "$i" "$(printf '%060d' 0)"; done | jq -R . | jq -sc .)
expect "tags are 64 characters" 64 "$(jq -r '.[0] | length' <<<"$tags")"
r=$(mcurl operator /api/v1/devices/device-0001/tags -X PUT -H 'Content-Type: application/json' \
	-d "{\"tags\":$tags}")
expect "32 tags of 64 characters: set" 200 "$(code_of "$r")"
expect "the answer lists all 32" 32 "$(jfield "$r" '.tags | length')"
expect "the answer lists them whole" "$tags" "$(jfield "$r" '.tags | sort | tojson')"
r=$(mcurl auditor /api/v1/devices/device-0001)
expect "the device lists all 32" 32 "$(jfield "$r" '.tags | length')"
expect "the store holds all 32" 32 "$(db "SELECT count(*) FROM device_tags WHERE device_id='device-0001'")"
after=$(db "SELECT after FROM audit_log WHERE action='device.tags' ORDER BY seq DESC LIMIT 1")
expect_match "the audit state holds the last tag" "t32-0{60}" "$after"
r=$(mcurl operator /api/v1/devices/device-0001/tags -X PUT -H 'Content-Type: application/json' \
	-d "{\"tags\":$(jq -c '. + ["one-more"]' <<<"$tags")}")
expect "a 33rd tag: refused" 400 "$(code_of "$r")"
finish
