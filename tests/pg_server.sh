#!/bin/bash
# A private PostgreSQL 15 server for one test or benchmark: initdb into a folder, listening on a
# Unix socket in that folder only (no TCP port), run as an unprivileged user (the "postgres"
# account when called as root, else the caller), stopped by "stop".
#
#   tests/pg_server.sh start DIR [PORT]   starts it; prints the libpq conninfo of its
#                                         "postgres" database ("host=DIR port=PORT user=ota ...")
#   tests/pg_server.sh createdb DIR NAME  makes an empty database NAME; prints its conninfo
#   tests/pg_server.sh restart DIR        stops it (fast) and starts it again
#   tests/pg_server.sh stop DIR           stops it (fast) and removes DIR
#
# PG_FSYNC=off turns off fsync for a test that never kills the server (faster); benchmarks
# leave it on. PG_MAX_CONNECTIONS (default 100) sets max_connections.
set -euo pipefail

cmd=${1:?usage: pg_server.sh start|createdb|restart|stop DIR}
dir=${2:?usage: pg_server.sh start|createdb|restart|stop DIR}
bindir=$(pg_config --bindir 2>/dev/null || true)
[ -x "$bindir/initdb" ] || bindir=/usr/lib/postgresql/15/bin
[ -x "$bindir/initdb" ] || { echo "pg_server.sh: PostgreSQL 15 is not installed (scripts/install-deps.sh)" >&2; exit 1; }

as_owner() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
conninfo() { echo "host=$dir port=$(cat "$dir/port") user=ota dbname=$1"; }
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "host=$dir port=$(cat "$dir/port") user=ota dbname=postgres" "$@"; }

case $cmd in
start)
	port=${3:-5432}
	mkdir -p "$dir"
	if [ "$(id -u)" = 0 ]; then
		chown postgres: "$dir"
		chmod o+x "$(dirname "$dir")" # the postgres account passes through to it
	fi
	as_owner "$bindir/initdb" -D "$dir/data" -U ota --auth=trust -E UTF8 --locale=C --no-instructions \
		>"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
	echo "$port" >"$dir/port"
	as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-c listen_addresses='' -c unix_socket_directories='$dir' -p $port \
		    -c fsync=${PG_FSYNC:-on} -c max_connections=${PG_MAX_CONNECTIONS:-100} \
		    -c shared_buffers=128MB" start >/dev/null ||
		{ cat "$dir/server.log" >&2; exit 1; }
	conninfo postgres
	;;
createdb)
	name=${3:?usage: pg_server.sh createdb DIR NAME}
	psql_q -c "CREATE DATABASE \"$name\""
	conninfo "$name"
	;;
restart)
	as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 restart >/dev/null
	;;
stop)
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null || true
	fi
	rm -rf "$dir"
	;;
*)
	echo "pg_server.sh: unknown command $cmd" >&2; exit 2
	;;
esac
