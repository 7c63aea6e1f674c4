#!/usr/bin/env bash
# A 100,000-entry audit log exported from a real otad streams in constant memory: otad's peak
# resident set (VmHWM) grows by less than 16 MiB while it sends an export of over 30 MB, and the
# export verifies offline. On PostgreSQL the filled log is copied in with otad --migrate-store.
source "$(dirname "$0")/server_lib.sh"
: "${OTA_AUDIT_VERIFY:?OTA_AUDIT_VERIFY must name ota-audit-verify}"
: "${AUDIT_FILL:?AUDIT_FILL must name the audit_fill helper}"

make_pki
write_config
mkdir -p "$DATA"
if [ "$BACKEND" == postgresql ]; then
	# The helper fills a SQLite file; otad --migrate-store copies it into PostgreSQL.
	"$AUDIT_FILL" "$T/fill.db" 100000
	"$OTAD" --config "$CONF" --migrate-store "$T/fill.db" >"$T/migrate.out" 2>&1 ||
		{ cat "$T/migrate.out"; echo "FAIL: the filled store was not copied into PostgreSQL"; exit 1; }
else
	"$AUDIT_FILL" "$DATA/otad.db" 100000
fi
start_otad
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$OTAD_PID/status"; }
mcurl auditor /api/v1/audit/pubkey -o "$T/audit.pub" >/dev/null
mcurl auditor '/api/v1/audit?limit=1000' >/dev/null
before=$(hwm)
# A 38 MB stream: more time than the helpers' 20 s on a loaded machine.
r=$(mcurl auditor /api/v1/audit/export --max-time 300 -o "$T/audit.ndjson")
after=$(hwm)
size=$(stat -c %s "$T/audit.ndjson")
echo "export of 100000 entries: $size bytes; otad VmHWM $before KiB before, $after KiB after"
expect "export answered" 200 "$(code_of "$r")"
expect "the export is over 30 MB" 1 "$((size > 30000000))"
expect "otad's peak memory grew by less than 16 MiB" 1 "$(((after - before) < 16384))"
out=$("$OTA_AUDIT_VERIFY" --export "$T/audit.ndjson" --pubkey "$T/audit.pub") && rc=0 || rc=$?
expect "the export verifies offline" "0 OK: 100000 entries" "$rc $(cut -d, -f1 <<<"$out")"
finish
