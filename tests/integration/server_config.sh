#!/usr/bin/env bash
# Configuration and schema: --check-config accepts the example and a test configuration and
# names the line of an unknown or duplicate key; migrations are applied at start (WAL mode);
# a database from a newer schema is refused with a clear message and left untouched.
. "$(dirname "$0")/server_lib.sh"

make_pki
write_config
out=$("$OTAD" --check-config --config "$CONF" 2>&1) && ok || fail "valid configuration refused: $out"
example=$(dirname "$0")/../../etc/otad.conf
out=$("$OTAD" --check-config --config "$example" 2>&1) && ok || fail "etc/otad.conf refused: $out"

# check_bad WHAT REGEX: the configuration is refused with a message matching REGEX.
check_bad() {
	local out rc=0
	out=$("$OTAD" --check-config --config "$T/bad.conf" 2>&1) || rc=$?
	expect "$1: exit status" 1 "$rc"
	expect_match "$1: message" "$2" "$out"
}
{ cat "$CONF"; echo "colour = blue"; } >"$T/bad.conf"
check_bad "unknown key" "bad.conf:$(($(wc -l <"$CONF") + 1)): unknown key \"colour\" in \[trust\]"
sed 's/^threads = 2$/threads = 2\nthreads = 3/' "$CONF" >"$T/bad.conf"
line=$(grep -n '^threads = 3' "$T/bad.conf" | cut -d: -f1)
check_bad "duplicate key" "bad.conf:$line: duplicate key \"threads\" in \[server\] \(first on line $((line - 1))\)"
{ cat "$CONF"; echo "[extras]"; } >"$T/bad.conf"
check_bad "unknown section" "unknown section \[extras\]"
sed 's/^threads = 2$/threads = many/' "$CONF" >"$T/bad.conf"
check_bad "bad number" "server.threads: expected a non-negative integer"
sed 's/^log_level = .*/log_level = loud/' "$CONF" >"$T/bad.conf"
check_bad "bad level" "log_level: expected one of"
grep -v '^ca = .*device-ca' "$CONF" >"$T/bad.conf"
check_bad "missing key" "missing required key device.ca"
echo "just words" >"$T/bad.conf"
check_bad "not key = value" "bad.conf:1: expected \"key = value\""
rc=0; out=$("$OTAD" --check-config --config "$T/absent.conf" 2>&1) || rc=$?
expect "absent file" 1 "$rc"; expect_match "absent file message" "cannot open" "$out"
rc=0; "$OTAD" >/dev/null 2>&1 || rc=$?
expect "no arguments: usage" 2 "$rc"

# A listen address that is not IP:PORT fails at start with a clear message.
sed '0,/^listen = 127.0.0.1:0$/s//listen = localhost:x/' "$CONF" >"$T/bad.conf"
rc=0; out=$("$OTAD" --config "$T/bad.conf" 2>&1) || rc=$?
expect "bad listen address" 1 "$rc"; expect_match "bad listen message" "is not IP:PORT" "$out"

# Migrations at start; WAL; the schema version recorded.
start_otad
stop_otad
latest=$(ls "$(dirname "$0")/../../schema" | grep -E '^[0-9]{4}_.*\.sql$' | sort | tail -1 | cut -c1-4)
latest=$((10#$latest))
expect "schema version is the newest migration" "$latest" "$(db 'PRAGMA user_version')"
expect "WAL mode" wal "$(db 'PRAGMA journal_mode')"
tables=" $(db "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master WHERE type='table' ORDER BY name)") "
for t in deployment_events deployments devices images release_hw_variants releases revoked_certificates roots; do
	[[ $tables == *" $t "* ]] && ok || fail "table $t missing"
done

# A newer schema is refused and not touched.
db 'PRAGMA user_version = 99'
before=$(db_digest)
rc=0; out=$(timeout 20 "$OTAD" --config "$CONF" 2>&1) || rc=$?
expect "newer schema: exit status" 1 "$rc"
expect_match "newer schema: message" "schema version 99, newer than this otad knows \($latest\)" "$out"
expect "newer schema: database untouched" "$before" "$(db_digest)"
expect "newer schema: version kept" 99 "$(db 'PRAGMA user_version')"
finish
