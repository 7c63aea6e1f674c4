#!/bin/bash
# Runs a test program against a private PostgreSQL server (tests/pg_server.sh) started for it
# alone and stopped after it: OTA_PG_CONNINFO and OTA_PG_CONNINFO2 name two empty databases,
# OTA_PG_DIR the server's folder and OTA_PG_SCRIPT the script (for "restart").
#   tests/unit/sql_pg.sh PROGRAM [ARGS...]
set -euo pipefail

script=$(cd "$(dirname "$0")/.." && pwd)/pg_server.sh
dir=$(mktemp -d /tmp/ota-pg-XXXXXX)
trap '"$script" stop "$dir"' EXIT
# The server is only ever stopped cleanly (restart is a fast shutdown): fsync may stay off.
PG_FSYNC=off "$script" start "$dir" >/dev/null
OTA_PG_CONNINFO=$("$script" createdb "$dir" ota_one)
OTA_PG_CONNINFO2=$("$script" createdb "$dir" ota_two)
export OTA_PG_CONNINFO OTA_PG_CONNINFO2 OTA_PG_DIR=$dir OTA_PG_SCRIPT=$script
"$@"
