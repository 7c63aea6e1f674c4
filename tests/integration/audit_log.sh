#!/usr/bin/env bash
# The audit log through a real otad: management actions, device outcomes and denied requests
# are entries; queries filter and page; the NDJSON export verifies offline with
# ota-audit-verify and the public key alone; editing, deleting or reordering an entry in a copy
# of the export is named by the verifier; the database refuses UPDATE and DELETE; an entry
# edited in the database (triggers dropped) is named by GET /api/v1/audit/verify; a fault
# injected between a change and its entry leaves neither.
source "$(dirname "$0")/server_lib.sh"
: "${OTA_AUDIT_VERIFY:?OTA_AUDIT_VERIFY must name ota-audit-verify}"

make_pki
write_config
start_otad
post() { mcurl "$1" "$2" -X POST -H 'Content-Type: application/json' -d "${3-{\}}"; }

# Some history: a device admitted, a release, a deployment confirmed, tags, a denied request.
checkin device-0001 >/dev/null
head -c 3000 /dev/urandom >"$T/img.bin"
rel=$(release_of "$T/img.bin" 1.1.0 2)
dep=$(deploy device-0001 "$rel")
for s in 1:downloading 2:downloaded 3:installing 4:rebooting 5:trial; do
	report device-0001 "$dep" "{\"seq\":${s%%:*},\"status\":\"${s#*:}\"}" >/dev/null
done
report device-0001 "$dep" '{"seq":6,"status":"confirmed","version":"1.1.0"}' >/dev/null
mcurl operator /api/v1/devices/device-0001/tags -X PUT -H 'Content-Type: application/json' -d '{"tags":["line=1"]}' >/dev/null
post auditor /api/v1/devices/device-0001/decommission >/dev/null
(cd "$T" && "$OTA_SIGN" root rotate --previous "$T/root-1.json" --sign root.key --out-dir "$T" >/dev/null)
expect "an operator may not upload roots" 403 "$(code_of "$(mcurl operator /api/v1/roots --data-binary @"$T/root-2.json")")"
expect "the admin uploads root 2" 201 "$(code_of "$(mcurl admin /api/v1/roots --data-binary @"$T/root-2.json")")"

q() { mcurl auditor "/api/v1/audit$1"; }
r=$(q '?action=root.upload')
expect "the root upload is recorded" "admin admin 2" "$(jfield "$r" '.items[0] | "\(.actor) \(.role) \(.after.version)"')"
r=$(q '?action=deployment.outcome')
expect "the device outcome is recorded" "device-0001 device $rel $dep succeeded" \
	"$(jfield "$r" '.items[0] | "\(.actor) \(.role) \(.release_id) \(.object) \(.after.status)"')"
r=$(q '?action=device.tags')
expect "tags change recorded with before/after" "operator operator device-0001 line=1" \
	"$(jfield "$r" '.items[0] | "\(.actor) \(.role) \(.device_id) \(.after.tags)"')"
r=$(q '?action=access.denied')
expect "the denied request is recorded" "auditor POST /api/v1/devices/device-0001/decommission" \
	"$(jfield "$r" '.items[0] | "\(.actor) \(.detail)"')"
r=$(q '?device=device-0001&limit=2')
first=$(jfield "$r" '.items | length')
cursor=$(jfield "$r" .next_cursor)
expect "a page of two with a cursor" "2 true" "$first $([[ $cursor =~ ^[0-9]+$ ]] && echo true)"
r2=$(q "?device=device-0001&limit=2&cursor=$cursor")
expect "the next page starts after the cursor" true "$(jfield "$r2" "[.items[].seq] | all(. > $cursor)")"
r=$(q "?since=$(($(date +%s) + 3600))")
expect "a time range in the future is empty" 0 "$(jfield "$r" '.items | length')"
expect "bad cursor refused" 400 "$(code_of "$(q '?cursor=abc')")"
n=$(db "SELECT count(*) FROM audit_log")
outcome=$(db "SELECT count(*) FROM audit_log WHERE device_id = 'device-0001'")
expect_match "entries for device-0001" '^[1-9][0-9]*$' "$outcome"

# The database itself refuses changes to the log.
if db "UPDATE audit_log SET detail = 'x' WHERE seq = 1" 2>/dev/null; then fail "UPDATE accepted"; else ok; fi
if db "DELETE FROM audit_log WHERE seq = 1" 2>/dev/null; then fail "DELETE accepted"; else ok; fi
expect "entries unchanged" "$n" "$(db "SELECT count(*) FROM audit_log")"

# Export, and verify offline with the public key only.
mcurl auditor /api/v1/audit/pubkey -o "$T/audit.pub" >/dev/null
expect "the public key is the one in the data folder" "$(cat "$DATA/audit.pub")" "$(cat "$T/audit.pub")"
r=$(mcurl auditor /api/v1/audit/export -o "$T/audit.ndjson")
expect "export answered" "200 application/x-ndjson" "$(code_of "$r") $(ctype_of "$r")"
out=$("$OTA_AUDIT_VERIFY" --export "$T/audit.ndjson" --pubkey "$T/audit.pub") && rc=0 || rc=$?
expect "the export verifies offline" 0 "$rc"
expect_match "verifier's verdict" '^OK: [0-9]+ entries' "$out"

line_of() { grep -n "\"kind\":\"entry\".*\"seq\":$1}" "$T/audit.ndjson" | cut -d: -f1; }
tamper() { # WHAT SED-SCRIPT EXPECTED-OUTPUT-REGEX
	sed -e "$2" "$T/audit.ndjson" >"$T/bad.ndjson"
	out=$("$OTA_AUDIT_VERIFY" --export "$T/bad.ndjson" --pubkey "$T/audit.pub") && rc=0 || rc=$?
	expect "$1: verifier fails" 1 "$rc"
	expect_match "$1: verifier names it" "$3" "$out"
}
tamper "entry 3 edited" "$(line_of 3)"'s/"at":[0-9]*/"at":1/' '^FAILED at entry 3:'
tamper "entry 2 deleted" "$(line_of 2)d" '^FAILED at entry 2:'
tamper "entries 4 and 5 swapped" "$(line_of 4){h;d};$(line_of 5){G}" '^FAILED at entry 4:'
tamper "the tail cut" '$d' '^FAILED: the export does not end'
other=$(mktemp "$T/other.XXXX")
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl ec -pubout 2>/dev/null >"$other"
out=$("$OTA_AUDIT_VERIFY" --export "$T/audit.ndjson" --pubkey "$other") && rc=0 || rc=$?
expect "another key: the checkpoint signature fails" 1 "$rc"
expect "bad usage" 2 "$("$OTA_AUDIT_VERIFY" --export "$T/audit.ndjson" >/dev/null 2>&1; echo $?)"

# Verification through the API, before and after an edit behind otad's back.
expect "the API verifies the log" true "$(jfield "$(mcurl admin /api/v1/audit/verify)" .ok)"
stop_otad
expect "at stop, otad signs the chain head" "$(db "SELECT max(seq) FROM audit_log")" "$(db "SELECT max(seq) FROM audit_checkpoints")"
if [ "$BACKEND" == postgresql ]; then
	db "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update" \
		"UPDATE audit_log SET actor = 'someone-else' WHERE seq = 4"
else
	db "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'someone-else' WHERE seq = 4;"
fi
start_otad
r=$(mcurl auditor /api/v1/audit/verify)
expect "an edited entry is named by the API" "false 4" "$(jfield "$r" '"\(.ok) \(.bad_seq)"')"

# A change and its entry commit together or not at all: a fault injected between them (the
# entry's insert fails) leaves neither the change nor the entry.
stop_otad
if [ "$BACKEND" == postgresql ]; then
	db "CREATE FUNCTION inject_fault() RETURNS trigger LANGUAGE plpgsql AS
		\$\$ BEGIN RAISE EXCEPTION 'injected fault'; END \$\$" \
		"CREATE TRIGGER inject_fault BEFORE INSERT ON audit_log FOR EACH ROW
		WHEN (NEW.action = 'device.tags') EXECUTE FUNCTION inject_fault()"
else
	db "CREATE TRIGGER inject_fault BEFORE INSERT ON audit_log WHEN NEW.action = 'device.tags'
		BEGIN SELECT RAISE(ABORT, 'injected fault'); END;"
fi
start_otad
entries=$(db "SELECT count(*) FROM audit_log")
r=$(mcurl operator /api/v1/devices/device-0001/tags -X PUT -H 'Content-Type: application/json' -d '{"tags":["line=9"]}')
expect "the failed entry fails the change" 500 "$(code_of "$r")"
expect "the tags are unchanged" line=1 "$(db "SELECT group_concat(tag) FROM device_tags WHERE device_id = 'device-0001'")"
expect "no entry was added" "$entries" "$(db "SELECT count(*) FROM audit_log")"
if [ "$BACKEND" == postgresql ]; then
	db "DROP TRIGGER inject_fault ON audit_log"
else
	db "DROP TRIGGER inject_fault"
fi
r=$(mcurl operator /api/v1/devices/device-0001/tags -X PUT -H 'Content-Type: application/json' -d '{"tags":["line=9"]}')
expect "without the fault both commit" "200 line=9 $((entries + 1))" \
	"$(code_of "$r") $(db "SELECT group_concat(tag) FROM device_tags WHERE device_id = 'device-0001'") $(db "SELECT count(*) FROM audit_log")"
finish
