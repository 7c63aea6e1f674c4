#!/bin/bash
# A private PostgreSQL 15 server for one test or benchmark: initdb into a folder, listening on a
# Unix socket in that folder only (no TCP port), run as an unprivileged user (the "postgres"
# account when called as root, else the caller), stopped by "stop".
#
#   tests/pg_server.sh start DIR [PORT]   starts it; prints the libpq conninfo of its
#                                         "postgres" database ("host=DIR port=PORT user=ota ...")
#   tests/pg_server.sh createdb DIR NAME  makes an empty database NAME; prints its conninfo
#   tests/pg_server.sh restart DIR        stops it (fast) and starts it again
#   tests/pg_server.sh down DIR           stops it (fast), keeping DIR: an outage
#   tests/pg_server.sh up DIR             starts it again after "down"
#   tests/pg_server.sh stop DIR           stops it (fast; killed if that fails) and removes DIR
#
# PG_FSYNC=off turns off fsync for a test that never kills the server (faster); benchmarks
# leave it on. PG_MAX_CONNECTIONS (default 100) sets max_connections, at "start" and "up".
set -euo pipefail

cmd=${1:?usage: pg_server.sh start|createdb|restart|down|up|stop DIR}
dir=${2:?usage: pg_server.sh start|createdb|restart|down|up|stop DIR}
bindir=$(pg_config --bindir 2>/dev/null || true)
[ -x "$bindir/initdb" ] || bindir=/usr/lib/postgresql/15/bin
[ -x "$bindir/initdb" ] || { echo "pg_server.sh: PostgreSQL 15 is not installed (scripts/install-deps.sh)" >&2; exit 1; }

as_owner() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
conninfo() { echo "host=$dir port=$(cat "$dir/port") user=ota dbname=$1"; }
# pg_run PORT: starts the initialised server in $dir.
pg_run() {
	as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-c listen_addresses='' -c unix_socket_directories='$dir' -p $1 \
		    -c fsync=${PG_FSYNC:-on} -c max_connections=${PG_MAX_CONNECTIONS:-100} \
		    -c shared_buffers=128MB" start >/dev/null ||
		{ cat "$dir/server.log" >&2; exit 1; }
}
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
	pg_run "$port"
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
down)
	as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
	;;
up)
	pg_run "$(cat "$dir/port")"
	;;
stop)
	pid=$(head -1 "$dir/data/postmaster.pid" 2>/dev/null || true)
	[ -n "$pid" ] || pid=$(pgrep -f -- "-D $dir/data" | head -1 || true)
	if [ -n "$pid" ]; then
		as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 10 stop >/dev/null 2>&1 ||
			true
		# A stop that did not finish leaves nothing running past the test: its backends end
		# by themselves once their postmaster is gone.
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
	;;
*)
	echo "pg_server.sh: unknown command $cmd" >&2; exit 2
	;;
esac
