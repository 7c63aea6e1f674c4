#!/usr/bin/env bash
# otad --migrate-store (docs/scaling.md, "Moving from SQLite to PostgreSQL"): a SQLite store
# filled through a real otad (devices admitted by check-in, releases, deployments and their
# reports, tags, a rollout, a principal and a token, audit entries and checkpoints) and one
# filled by ota-bench-fill are copied into private PostgreSQL databases; every table then
# holds the same rows, the SQLite file is unchanged, and otad on PostgreSQL with the same
# data_dir serves the devices with their pinned certificates, keeps the deployment history's
# order, exports an audit log that verifies offline and chains new entries onto it, and
# creates new deployments and rollouts. Refused, changing nothing: a target that holds rows,
# a missing file, a file that is not SQLite, a SQLite file of another schema version, a
# configuration whose [store] is SQLite; a row PostgreSQL refuses undoes the whole copy.
OTA_TEST_BACKEND=sqlite # this test picks the backend of each step itself
source "$(dirname "$0")/server_lib.sh"
: "${OTA_AUDIT_VERIFY:?OTA_AUDIT_VERIFY must name ota-audit-verify}"
: "${OTA_BENCH_FILL:?OTA_BENCH_FILL must name ota-bench-fill}"

post() { mcurl admin "$1" -H 'Content-Type: application/json' -d "${2-{\}}"; }
sq() { sqlite3 -batch -noheader "$1" "$2"; }
pg() { psql -X -q -At -v ON_ERROR_STOP=1 "$1" -c "$2"; }
# tables FILE: the SQLite database's tables in creation order
tables() { sq "$1" "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY rowid"; }
# dump_sql FILE: a script that prints, for every table of the SQLite database, a line "== TABLE
# ROWS" then its rows (every SQLite column, sorted by all of them); it runs in both databases.
dump_sql() {
	sq "$1" "SELECT 'SELECT ''== ' || m.name || ' '' || count(*) FROM \"' || m.name || '\"; SELECT ' ||
		group_concat('\"' || p.name || '\"', ', ') || ' FROM \"' || m.name || '\" ORDER BY ' ||
		group_concat(p.cid + 1, ', ') || ';'
		FROM sqlite_schema m, pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\'
		GROUP BY m.name ORDER BY m.rowid"
}
# split_dump DIR: a dump on stdin into DIR/TABLE, each its row count then its rows
split_dump() {
	rm -rf "$1" && mkdir -p "$1"
	awk -v d="$1" '/^== / { if (f) close(f); f = d "/" $2; print $3 >f; next } { print >f }'
}
# same_rows WHAT SQLITE_FILE CONNINFO: every table holds the same rows in both, and as many.
same_rows() {
	local f bad=
	dump_sql "$2" >"$T/dump.sql"
	sqlite3 -batch -noheader "$2" <"$T/dump.sql" | split_dump "$T/a"
	psql -X -q -At -v ON_ERROR_STOP=1 "$3" -f "$T/dump.sql" | split_dump "$T/b"
	for f in "$T"/a/*; do
		cmp -s "$f" "$T/b/${f##*/}" || bad+=" ${f##*/} ($(head -n 1 "$f")/$(head -n 1 "$T/b/${f##*/}") rows)"
	done
	expect "$1: tables compared" "$(tables "$2" | wc -l)" "$(ls "$T/a" | wc -l)"
	expect "$1: every table holds the same rows" "" "$bad"
}
# pg_digest CONNINFO: every table's rows, hashed (to see that nothing changed)
pg_digest() {
	pg "$1" "SELECT string_agg(format('SELECT %L, md5(coalesce(string_agg(x::text, %L ORDER BY x::text), %L)) FROM %I x;', tablename, ',', '', tablename), ' ') FROM pg_tables WHERE schemaname = 'public'" |
		psql -X -q -At -v ON_ERROR_STOP=1 "$1" -f - | sha256sum
}
# migrate CONFIG FILE: otad --migrate-store; its output in $T/migrate.out, status in RC
migrate() {
	"$OTAD" --config "$1" --migrate-store "$2" >"$T/migrate.out" 2>&1 && RC=0 || RC=$?
}
# pg_config_of CONNINFO: the test's configuration with its [store] on PostgreSQL
pg_config_of() {
	sed '/^\[store\]/,$d' "$CONF"
	printf '\n[store]\nbackend = postgresql\n\n[store.postgresql]\nconninfo = %s\n' "$1"
}

# ---- a SQLite store filled through otad ----
make_pki
write_config
start_otad
for d in device-0001 device-0002 device-0003; do checkin "$d" >/dev/null; done
head -c 3000 /dev/urandom >"$T/img1.bin"
head -c 3100 /dev/urandom >"$T/img2.bin"
rel1=$(release_of "$T/img1.bin" 1.1.0 2)
rel2=$(release_of "$T/img2.bin" 1.2.0 2)
dep1=$(deploy device-0001 "$rel1")
for s in 1:downloading 2:downloaded 3:installing 4:rebooting 5:trial; do
	report device-0001 "$dep1" "{\"seq\":${s%%:*},\"status\":\"${s#*:}\"}" >/dev/null
done
report device-0001 "$dep1" '{"seq":6,"status":"confirmed","version":"1.1.0"}' >/dev/null
dep2=$(deploy device-0001 "$rel2")
report device-0001 "$dep2" '{"seq":1,"status":"downloading","progress":10}' >/dev/null
report device-0001 "$dep2" '{"seq":2,"status":"failed","reason":"flash write"}' >/dev/null
dep3=$(deploy device-0001 "$rel2")
dep4=$(deploy device-0002 "$rel1")
mcurl operator /api/v1/devices/device-0003/tags -X PUT -H 'Content-Type: application/json' \
	-d '{"tags":["line=1","site=b"]}' >/dev/null
expect "a principal" 201 "$(code_of "$(post /api/v1/principals '{"name":"alice","role":"operator"}')")"
expect "a token" 201 "$(code_of "$(post /api/v1/tokens '{"principal":"alice","expires_in_days":1}')")"
r=$(post /api/v1/rollouts "{\"name\":\"to 1.2.0\",\"release_id\":\"$rel2\",\"target\":{\"hw_variants\":[\"pico2w\"]},\"stages\":[{\"percent\":100}]}")
expect "a rollout" 201 "$(code_of "$r")"
rid=$(jfield "$r" .id)
expect "the rollout starts" running "$(jfield "$(post "/api/v1/rollouts/$rid/start")" .state)"
checkin device-0003 >/dev/null # joins the rollout
expect "the rollout stops" aborted "$(jfield "$(post "/api/v1/rollouts/$rid/abort" '{"reason":"test"}')" .state)"
mcurl auditor /api/v1/audit/pubkey -o "$T/audit.pub" >/dev/null
fpr=$(jfield "$(mcurl admin /api/v1/devices/device-0003)" .fingerprint)
expect_match "device-0003's pinned fingerprint" '^[0-9a-f]{64}$' "$fpr"
stop_otad # writes the last checkpoint
SRC=$DATA/otad.db
history=$(sq "$SRC" "SELECT id FROM deployments WHERE device_id = 'device-0001' ORDER BY rowid" | tr '\n' ' ')
expect "three deployments of device-0001 in order" "$dep1 $dep2 $dep3 " "$history"
for t in devices releases deployments deployment_events audit_log audit_checkpoints principals \
	api_tokens device_tags rollouts rollout_members; do
	expect_match "the SQLite store has $t" '^[1-9][0-9]*$' "$(sq "$SRC" "SELECT count(*) FROM $t")"
done

# ---- a private PostgreSQL server, and the refusals (the target stays empty) ----
pg_start
# The database as docs/scaling.md creates it.
pg "$PGCONN" "CREATE DATABASE otad ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
PGT=${PGCONN/dbname=postgres/dbname=otad}
pg_config_of "$PGT" >"$T/pg.conf"
migrate "$CONF" "$SRC"
expect "a configuration on SQLite: refused" 1 "$RC"
expect_match "  saying why" 'backend is sqlite: set backend = postgresql' "$(cat "$T/migrate.out")"
migrate "$T/pg.conf" "$T/missing.db"
expect "a missing file: refused" 1 "$RC"
expect_match "  saying why" "nothing was copied: cannot open $T/missing.db" "$(cat "$T/migrate.out")"
head -c 8192 /dev/urandom >"$T/noise.db"
migrate "$T/pg.conf" "$T/noise.db"
expect "a file that is not SQLite: refused" 1 "$RC"
expect_match "  saying why" "$T/noise.db is not a SQLite database" "$(cat "$T/migrate.out")"
latest=$(sq "$SRC" "PRAGMA user_version")
cp "$SRC" "$T/old.db"
sq "$T/old.db" "PRAGMA user_version = $((latest - 10))"
migrate "$T/pg.conf" "$T/old.db"
expect "an older schema: refused" 1 "$RC"
expect_match "  saying why" "older than this otad's \\($latest\\): start this otad on it once" "$(cat "$T/migrate.out")"
sq "$T/old.db" "PRAGMA user_version = $((latest + 10))"
migrate "$T/pg.conf" "$T/old.db"
expect "a newer schema: refused" 1 "$RC"
expect_match "  saying why" "newer than this otad knows \\($latest\\): copy it with the otad that matches it" "$(cat "$T/migrate.out")"
sq "$T/old.db" "PRAGMA user_version = $latest; ALTER TABLE devices ADD COLUMN colour TEXT"
migrate "$T/pg.conf" "$T/old.db"
expect "a column without a twin: refused" 1 "$RC"
expect_match "  saying why" "table devices: column colour of the SQLite database has no twin" "$(cat "$T/migrate.out")"
# A row PostgreSQL refuses in a late table (text that is not UTF-8): the rows of the tables
# before it, already inserted, go with the transaction.
cp "$SRC" "$T/bad.db"
sq "$T/bad.db" "UPDATE rollout_members SET reason = CAST(x'ff' AS TEXT)"
migrate "$T/pg.conf" "$T/bad.db"
expect "a row PostgreSQL refuses: the copy fails" 1 "$RC"
expect_match "  saying which" 'nothing was copied: table rollout_members: row 1 refused by PostgreSQL: .*UTF8' "$(cat "$T/migrate.out")"
expect "after the refusals the target holds no row" 0 \
	"$(pg "$PGT" "SELECT (SELECT count(*) FROM devices) + (SELECT count(*) FROM audit_log)")"

# ---- the copy ----
before=$(sha256sum <"$SRC")
migrate "$T/pg.conf" "$SRC"
expect "--migrate-store" 0 "$RC"
[ "$RC" == 0 ] || cat "$T/migrate.out"
expect "the SQLite file is unchanged" "$before" "$(sha256sum <"$SRC")"
n=$(sq "$SRC" "SELECT (SELECT count(*) FROM devices) || ' ' || (SELECT count(*) FROM audit_log)")
expect "the summary counts devices and audit entries" "${n% *} ${n#* }" \
	"$(awk '$1 == "devices" { d = $2 } $1 == "audit_log" { a = $2 } END { print d, a }' "$T/migrate.out")"
expect_match "the summary's total" "total [0-9]+ rows in $(tables "$SRC" | wc -l) tables copied from $SRC" \
	"$(cat "$T/migrate.out")"
same_rows "otad's store" "$SRC" "$PGT"
expect "the deployment history keeps its order" \
	"$(sq "$SRC" "SELECT id || ' ' || rowid FROM deployments ORDER BY rowid")" \
	"$(pg "$PGT" "SELECT id || ' ' || rowid FROM deployments ORDER BY rowid")"

# A target that holds rows: refused, unchanged.
digest=$(pg_digest "$PGT")
migrate "$T/pg.conf" "$SRC"
expect "a target that holds rows: refused" 1 "$RC"
expect_match "  saying why" 'the PostgreSQL database is not empty \(table [a-z_]+ has rows\): copy into a database that holds no otad data' "$(cat "$T/migrate.out")"
expect "  and unchanged" "$digest" "$(pg_digest "$PGT")"

# ---- otad on PostgreSQL with the same data_dir ----
cp "$T/pg.conf" "$CONF"
start_otad
r=$(checkin device-0003)
expect "device-0003 checks in with its pinned certificate" 200 "$(code_of "$r")"
expect "  its fingerprint as pinned" "$fpr" "$(jfield "$(mcurl admin /api/v1/devices/device-0003)" .fingerprint)"
expect "the device list" "device-0001 device-0002 device-0003" \
	"$(jfield "$(mcurl admin /api/v1/devices)" '[.items[].id] | join(" ")')"
expect "device-0001's deployment history, newest first" "$dep3 $dep2 $dep1" \
	"$(jfield "$(mcurl admin /api/v1/devices/device-0001)" '[.deployments[].id] | join(" ")')"
r=$(mcurl auditor /api/v1/audit/export -o "$T/audit1.ndjson")
expect "the copied audit log verifies offline" 0 \
	"$("$OTA_AUDIT_VERIFY" --export "$T/audit1.ndjson" --pubkey "$T/audit.pub" >/dev/null 2>&1; echo $?)"
# New rows: a deployment (its rowid after the copied ones), a rollout, audit entries.
maxrow=$(pg "$PGT" "SELECT max(rowid) FROM deployments")
"$OTA_SCRIPTS/dev-pki.sh" "$PKI" device device-0004 >/dev/null
expect "a new device is admitted" 200 "$(code_of "$(checkin device-0004)")"
dep5=$(deploy device-0004 "$rel1")
expect "a new deployment's rowid follows the copied ones" $((maxrow + 1)) \
	"$(pg "$PGT" "SELECT rowid FROM deployments WHERE id = '$dep5'")"
r=$(post /api/v1/rollouts "{\"name\":\"again\",\"release_id\":\"$rel1\",\"stages\":[{\"percent\":100}]}")
expect "a new rollout" 201 "$(code_of "$r")"
mcurl operator /api/v1/devices/device-0002/tags -X PUT -H 'Content-Type: application/json' \
	-d '{"tags":["line=2"]}' >/dev/null
expect "new audit entries chain onto the copied ones" true "$(jfield "$(mcurl auditor /api/v1/audit/verify)" .ok)"
mcurl auditor /api/v1/audit/export -o "$T/audit2.ndjson" >/dev/null
expect "  the longer export verifies offline" 0 \
	"$("$OTA_AUDIT_VERIFY" --export "$T/audit2.ndjson" --pubkey "$T/audit.pub" >/dev/null 2>&1; echo $?)"
expect "  and starts with the copied one" "$(cat "$T/audit1.ndjson")" "$(head -n "$(wc -l <"$T/audit1.ndjson")" "$T/audit2.ndjson")"
expect "  holding the new entries too" true \
	"$([ "$(wc -l <"$T/audit2.ndjson")" -gt "$(wc -l <"$T/audit1.ndjson")" ] && echo true)"
stop_otad

# ---- a store filled by ota-bench-fill ----
mkdir -p "$T/bench"
"$OTA_BENCH_FILL" --db "$T/bench/otad.db" --data-dir "$T/bench" --image "$T/img1.bin" \
	--fleet 500 --history 3 --facts >"$T/fill.out" 2>&1 || { cat "$T/fill.out"; fail "ota-bench-fill"; }
PGB=$("$PG_SERVER" createdb "$PGDIR" bench)
pg_config_of "$PGB" >"$T/bench.conf"
migrate "$T/bench.conf" "$T/bench/otad.db"
expect "--migrate-store of the bench store" 0 "$RC"
expect_match "  every deployment copied" "deployments +$(sq "$T/bench/otad.db" "SELECT count(*) FROM deployments")" \
	"$(cat "$T/migrate.out")"
same_rows "the bench store" "$T/bench/otad.db" "$PGB"
expect "  the deployments in the same order" \
	"$(sq "$T/bench/otad.db" "SELECT id FROM deployments ORDER BY rowid" | sha256sum)" \
	"$(pg "$PGB" "SELECT id FROM deployments ORDER BY rowid" | sha256sum)"

finish
