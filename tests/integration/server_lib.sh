# Shared by the otad integration tests (sourced): a PKI, signing keys and a trusted root made
# at test time in a private temporary folder, a real otad on 127.0.0.1 with ports picked by the
# kernel, curl helpers per identity, and assertions. Everything is removed on exit, and the
# otad started here is stopped by its PID.
#
# Needs: OTAD, OTA_SIGN (binaries), OTA_SCRIPTS (the scripts/ folder) in the environment.
# OTA_TEST_BACKEND=postgresql runs the same test on PostgreSQL: a private server
# (tests/pg_server.sh) in the temporary folder holds the store, and db() speaks to it.
set -euo pipefail

: "${OTAD:?OTAD must name the otad binary}"
: "${OTA_SIGN:?OTA_SIGN must name the ota-sign binary}"
: "${OTA_SCRIPTS:?OTA_SCRIPTS must name the scripts folder}"

T=$(mktemp -d "${TMPDIR:-/tmp}/otad-test.XXXXXX")
PKI=$T/pki
DATA=$T/data
CONF=$T/otad.conf
LOG=$T/otad.log
OTAD_PID=
DPORT=
MPORT=
FAILS=0
CHECKS=0
BACKEND=${OTA_TEST_BACKEND:-sqlite}
PG_SERVER=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/pg_server.sh
# PostgreSQL's own programs first: Debian's psql on PATH is a Perl wrapper that doubles the cost
# of each db() call.
pgbin=$(pg_config --bindir 2>/dev/null || true)
[ -x "$pgbin/psql" ] && PATH=$pgbin:$PATH
PGDIR=$T/pg
PGCONN=

# cleanup [STATUS]: stops what the test started and exits with STATUS (default: the status the
# script is ending with). A trap that runs its own steps first passes the status it saved, since
# a command failing in a trap under set -e would end the trap before cleanup.
cleanup() {
	local rc=${1:-$?} orc=0
	if [ -n "$OTAD_PID" ] && kill -0 "$OTAD_PID" 2>/dev/null; then
		kill -TERM "$OTAD_PID" 2>/dev/null || true
		wait "$OTAD_PID" 2>/dev/null || orc=$?
		[ $orc -eq 0 ] || { echo "FAIL: otad exited with status $orc on SIGTERM"; rc=1; }
	fi
	if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$LOG" 2>/dev/null; then
		echo "FAIL: sanitizer report in the otad log"; rc=1
	fi
	if [ $rc -ne 0 ] || [ "$FAILS" -ne 0 ]; then
		echo "---- otad log (last 40 lines) ----"
		tail -n 40 "$LOG" 2>/dev/null || true
	fi
	[ -z "$PGCONN" ] || "$PG_SERVER" stop "$PGDIR" || true
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
ok() { CHECKS=$((CHECKS + 1)); }
# expect WHAT EXPECTED ACTUAL
expect() {
	if [ "$2" == "$3" ]; then ok; else fail "$1: expected [$2], got [$3]"; fi
}
# expect_match WHAT REGEX ACTUAL
expect_match() {
	if [[ $3 =~ $2 ]]; then ok; else fail "$1: [$3] does not match [$2]"; fi
}
finish() {
	echo "$(basename "$0"): $CHECKS checks passed, $FAILS failed"
	[ "$FAILS" -eq 0 ]
}

make_pki() {
	"$OTA_SCRIPTS/dev-pki.sh" "$PKI" >/dev/null
	(cd "$T" && "$OTA_SIGN" keygen --out root >/dev/null && "$OTA_SIGN" keygen --out release >/dev/null &&
		"$OTA_SIGN" root init --root-key root.pub --root-threshold 1 --release-key release.pub \
			--release-threshold 1 --sign root.key --out-dir "$T" >/dev/null)
}

# write_config [extra lines for [limits]]
write_config() {
	store_config >"$CONF" # first: a test appends keys to the last section, [trust]
	cat >>"$CONF" <<CONF
[server]
data_dir = $DATA
log_level = ${LOG_LEVEL:-info}
threads = 2
shutdown_grace = 5

[tls]
cert = $PKI/server.pem
key = $PKI/server.key

[device]
listen = 127.0.0.1:0
ca = $PKI/device-ca.pem
crl = $PKI/device-crl.pem
poll_interval = 300
poll_jitter = 10

[management]
listen = 127.0.0.1:0
ca = $PKI/operator-ca.pem

[limits]
connection_timeout = ${CONN_TIMEOUT:-10}
max_connections = ${MAX_CONNECTIONS:-256}
body_max = 16384
image_max = ${IMAGE_MAX:-4194304}

[trust]
root = $T/root-1.json
CONF
}

# pg_start: the private PostgreSQL server of a postgresql run, started once.
# The tests' SQL also names SQLite's group_concat and json_extract ('$.a.b[0].c' paths): the same
# are made here.
pg_start() {
	[ -n "$PGCONN" ] && return
	PGCONN=$(PG_FSYNC=off "$PG_SERVER" start "$PGDIR")
	psql -X -q -v ON_ERROR_STOP=1 "$PGCONN" >/dev/null <<-'SQL'
	CREATE FUNCTION group_concat_step(acc text, v text, sep text) RETURNS text
		LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN v IS NULL THEN acc WHEN acc IS NULL THEN v
		ELSE acc || sep || v END $$;
	CREATE FUNCTION group_concat_step(acc text, v text) RETURNS text
		LANGUAGE sql IMMUTABLE AS $$ SELECT group_concat_step(acc, v, ',') $$;
	CREATE AGGREGATE group_concat(text, text) (SFUNC = group_concat_step, STYPE = text);
	CREATE AGGREGATE group_concat(text) (SFUNC = group_concat_step, STYPE = text);
	CREATE FUNCTION json_extract(doc text, path text) RETURNS text LANGUAGE sql IMMUTABLE
		AS $$ SELECT (doc::jsonb) #>> string_to_array(regexp_replace(substr(path, 3), '\[(\d+)\]', '.\1', 'g'), '.') $$;
	SQL
}
# store_config: the [store] lines of the backend under test (none for SQLite, the default).
store_config() {
	[ "$BACKEND" == postgresql ] || return 0
	pg_start
	printf '[store]\nbackend = postgresql\n\n[store.postgresql]\nconninfo = %s\n\n' "$PGCONN"
}

start_otad() {
	: >"$LOG"
	"$OTAD" --config "$CONF" >>"$LOG" 2>&1 &
	OTAD_PID=$!
	for _ in $(seq 1 200); do
		if grep -q "otad ready" "$LOG"; then
			DPORT=$(grep -o 'device API on port [0-9]*' "$LOG" | tail -1 | awk '{print $5}')
			MPORT=$(grep -o 'management API on port [0-9]*' "$LOG" | tail -1 | awk '{print $5}')
			return 0
		fi
		kill -0 "$OTAD_PID" 2>/dev/null || { cat "$LOG"; echo "otad exited"; return 1; }
		sleep 0.05
	done
	echo "otad did not become ready"; cat "$LOG"; return 1
}

stop_otad() {
	kill -TERM "$OTAD_PID"
	local rc=0
	wait "$OTAD_PID" || rc=$?
	OTAD_PID=
	return $rc
}

# dcurl NAME ARGS... : curl as certificate NAME (from $PKI) to the device listener; the URL
# argument is a path. Prints the body, then a line "HTTP <code> <content type>".
_curl() {
	local port=$1 name=$2 path=$3; shift 3
	local id=()
	[ -n "$name" ] && id=(--cert "$PKI/$name.pem" --key "$PKI/$name.key")
	curl -sS --max-time 20 --cacert "$PKI/device-ca.pem" "${id[@]}" -w '\nHTTP %{http_code} %{content_type}' "$@" \
		"https://127.0.0.1:$port$path" 2>/dev/null || true
}
dcurl() { local n=$1 p=$2; shift 2; _curl "$DPORT" "$n" "$p" "$@"; }
mcurl() { local n=$1 p=$2; shift 2; _curl "$MPORT" "$n" "$p" "$@"; }
code_of() { tail -n 1 <<<"$1" | awk '{print $2}'; }
ctype_of() { tail -n 1 <<<"$1" | awk '{print $3}'; }
body_of() { sed '$d' <<<"$1"; }
jfield() { body_of "$1" | jq -r "$2"; }

# walk_pages ROLE PATH KEY: walks the collection at PATH (management API) in pages of one,
# following next_cursor, and prints the jq expression KEY of each item, one a line. A page
# that is not a 200 with at most one item and a next_cursor prints "BAD PAGE ..." instead.
walk_pages() {
	local role=$1 path=$2 key=$3 sep='?' cursor='' r n=0
	[[ $path == *\?* ]] && sep='&'
	while [ $n -lt 10000 ]; do
		r=$(mcurl "$role" "$path${sep}limit=1${cursor:+&cursor=$cursor}")
		if [ "$(code_of "$r")" != 200 ] ||
			[ "$(jfield "$r" '(.items | length) <= 1 and has("next_cursor")')" != true ]; then
			echo "BAD PAGE $(code_of "$r") after cursor '$cursor': $(body_of "$r" | head -c 200)"
			return
		fi
		jfield "$r" ".items[] | $key"
		cursor=$(jfield "$r" '.next_cursor // empty | @uri')
		[ -n "$cursor" ] || return 0
		n=$((n + 1))
	done
	echo "BAD PAGE: no last page after $n"
}

# db SQL: a query on the store, rows as lines, columns joined by "|", NULL as nothing.
db() {
	if [ "$BACKEND" == postgresql ]; then
		local q args=()
		for q in "$@"; do args+=(-c "$q"); done
		psql -X -q -At -v ON_ERROR_STOP=1 "$PGCONN" "${args[@]}"
	else
		sqlite3 -batch -noheader "$DATA/otad.db" "$@"
	fi
}
# db_integrity: "ok" when the store's structures are sound: SQLite's integrity_check, or on
# PostgreSQL amcheck's verification of every B-tree index of the store's tables.
db_integrity() {
	if [ "$BACKEND" == postgresql ]; then
		db "CREATE EXTENSION IF NOT EXISTS amcheck" \
			"SELECT CASE WHEN count(bt_index_check(i.indexrelid, true)) >= 0 THEN 'ok' END
			FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am a ON a.oid = c.relam
			WHERE n.nspname = 'public' AND a.amname = 'btree'"
	else
		db 'PRAGMA integrity_check'
	fi
}
# Everything but the audit log (refusals are audited: that is the one write they make) and the
# devices' last_seen, which otad writes in batches a few seconds after the check-ins
# (docs/architecture.md, "Check-in times in memory").
db_digest() {
	if [ "$BACKEND" == postgresql ]; then
		# Each table's name and a hash of its rows as JSON, last_seen left out: one query, made
		# and then run (\gexec) on one connection.
		psql -X -q -At -v ON_ERROR_STOP=1 "$PGCONN" <<-'SQL' | sha256sum | cut -d' ' -f1
		SELECT string_agg(format('SELECT %L, md5(coalesce(string_agg(r, '','' ORDER BY r), ''''))
			FROM (SELECT (to_jsonb(whole_row) - ''last_seen'')::text AS r FROM %I whole_row) y', tablename,
			tablename), ' UNION ALL ' ORDER BY tablename) FROM pg_tables
			WHERE schemaname = 'public' AND tablename NOT IN ('audit_log', 'audit_checkpoints') \gexec
		SQL
		return
	fi
	rm -f "$T/digest.db"
	sqlite3 "$DATA/otad.db" ".backup '$T/digest.db'"
	sqlite3 "$T/digest.db" "UPDATE devices SET last_seen = NULL"
	sqlite3 "$T/digest.db" .dump | grep -vE '^INSERT INTO "?audit_(log|checkpoints)"? ' |
		sha256sum | cut -d' ' -f1
}

CHECKIN='{"hw_variant":"pico2w","version":"1.0.0","security_floor":1,"root_version":1,"active_slot":"A","boot_state":"normal"}'
checkin() { dcurl "$1" /device/v1/checkin -H 'Content-Type: application/json' -d "${2-$CHECKIN}"; }

# release_of IMAGE VERSION [SECURITY_VERSION] [HW]: upload the image, sign and register it;
# prints the release id.
release_of() {
	local img=$1 ver=$2 sv=${3:-2} hw=${4:-pico2w}
	local r
	r=$(mcurl admin /api/v1/images --data-binary @"$img" -H 'Content-Type: application/octet-stream')
	[[ $(code_of "$r") =~ ^20[01]$ ]] || { echo "upload failed: $r" >&2; return 1; }
	"$OTA_SIGN" release --image "$img" --name fw --version "$ver" --security-version "$sv" \
		--hw-variant "$hw" --key "$T/release.key" --out "$T/fw-$ver.json" >/dev/null
	r=$(mcurl admin /api/v1/releases --data-binary @"$T/fw-$ver.json" -H 'Content-Type: application/json')
	[[ $(code_of "$r") =~ ^20[01]$ ]] || { echo "release failed: $r" >&2; return 1; }
	jfield "$r" .id
}

# deploy DEVICE RELEASE_ID: prints the deployment id
deploy() {
	local r
	r=$(mcurl admin /api/v1/deployments -H 'Content-Type: application/json' \
		-d "{\"device_id\":\"$1\",\"release_id\":\"$2\"}")
	[ "$(code_of "$r")" == 201 ] || { echo "deploy failed: $r" >&2; return 1; }
	jfield "$r" .id
}

report() { # DEVICE DEPLOYMENT JSON
	dcurl "$1" "/device/v1/deployments/$2/events" -H 'Content-Type: application/json' -d "$3"
}
