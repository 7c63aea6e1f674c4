# Shared by the bench scripts (sourced, not run): a test PKI minted at bench time, free
# loopback ports, nginx and otad started on loopback with their own temp configuration, and
# reading the load generator's key=value result line. Nothing here is ever committed as a key.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# bench_tmp: a private work folder removed on exit, with every process started in it stopped.
bench_tmp() {
	BENCH_DIR=$(mktemp -d /tmp/ota-bench.XXXXXX)
	chmod 755 "$BENCH_DIR"
	BENCH_PIDS=()
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

bench_cleanup() {
	local p
	for p in "${BENCH_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${BENCH_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	if [ -n "${PG_DIR:-}" ]; then
		"$BENCH_ROOT/tests/pg_server.sh" stop "$PG_DIR" || true
	fi
	if [ -n "${BENCH_KEEP:-}" ]; then
		echo "bench: kept $BENCH_DIR" >&2
	else
		rm -rf "$BENCH_DIR"
	fi
}

# free_port: a loopback TCP port nobody listens on now (random in 20000-59999).
free_port() {
	local p i
	for i in $(seq 1 50); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	echo "bench: no free port" >&2
	return 1
}

# wait_port PORT SECONDS: until something accepts on 127.0.0.1:PORT.
wait_port() {
	local i
	for i in $(seq 1 $(($2 * 10))); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# make_pki DIR: server CA + server certificate (127.0.0.1, localhost), device CA, operator
# CA + one admin client certificate; all ECDSA P-256, minted now.
make_pki() {
	local d=$1
	mkdir -p "$d"
	(
		cd "$d"
		cat >ext.cnf <<'CNF'
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,IP:::1,DNS:localhost
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
CNF
		for ca in server-ca device-ca operator-ca; do
			openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
				-days 7 -subj "/CN=bench $ca" -keyout $ca.key -out $ca.crt \
				-extensions ca -config ext.cnf 2>/dev/null
		done
		leaf() { # name CN ca ext
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
				-subj "/CN=$2" -keyout $1.key -out $1.csr 2>/dev/null
			openssl x509 -req -in $1.csr -CA $3.crt -CAkey $3.key -CAcreateserial -sha256 \
				-days 7 -extfile ext.cnf -extensions $4 -out $1.crt 2>/dev/null
			rm -f $1.csr
		}
		leaf server localhost server-ca server
		leaf admin admin operator-ca client
		chmod 644 ./*.crt
		chmod 600 ./*.key
	)
	[ -s "$d/server.crt" ] && [ -s "$d/admin.crt" ]
}

# start_nginx DIR PORT: nginx on 127.0.0.1:PORT serving DIR/www with the bench server
# certificate and client-certificate verification against the device CA.
start_nginx() {
	local d=$1 port=$2 conf=$1/nginx
	mkdir -p "$conf"
	cat >"$conf/nginx.conf" <<CONF
worker_processes $(nproc);
daemon off;
pid $conf/nginx.pid;
error_log $conf/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $conf/body;
	proxy_temp_path $conf/proxy;
	fastcgi_temp_path $conf/fastcgi;
	uwsgi_temp_path $conf/uwsgi;
	scgi_temp_path $conf/scgi;
	default_type application/octet-stream;
	sendfile on;
	keepalive_requests 100000000;
	keepalive_timeout 60s;
	server {
		listen 127.0.0.1:$port ssl;
		ssl_certificate $d/pki/server.crt;
		ssl_certificate_key $d/pki/server.key;
		ssl_protocols TLSv1.2 TLSv1.3;
		ssl_verify_client on;
		ssl_client_certificate $d/pki/device-ca.crt;
		ssl_session_tickets on;
		ssl_session_cache shared:BENCH:10m;
		root $d/www;
	}
}
CONF
	nginx -c "$conf/nginx.conf" -e "$conf/error.log" 2>>"$conf/error.log" &
	BENCH_PIDS+=($!)
	NGINX_PID=$!
	if ! wait_port "$port" 10; then
		echo "bench: nginx did not start:" >&2
		cat "$conf/error.log" >&2
		return 1
	fi
}

# result_field LINE KEY: one value from the load generator's "result k=v ..." line.
result_field() {
	local kv
	for kv in $1; do
		if [ "${kv%%=*}" = "$2" ]; then
			echo "${kv#*=}"
			return 0
		fi
	done
	echo 0
}

# ratio A B: A/B with two decimals ("n/a" when B is 0).
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'
}

# find_tools BUILD: sets OTAD, LOADGEN, FILL to the binaries of the build folder BUILD.
find_tools() {
	local b=$1 n
	for n in otad ota-loadgen ota-bench-fill; do
		local p
		p=$(find "$b" -type f -name "$n" -perm -u+x 2>/dev/null | head -1)
		if [ -z "$p" ]; then
			echo "bench: no $n under $b (build with the server and bench on)" >&2
			return 1
		fi
		case $n in
		otad) OTAD=$p ;;
		ota-loadgen) LOADGEN=$p ;;
		ota-bench-fill) FILL=$p ;;
		esac
	done
}

# otad_config DIR DATA PORT MGMT_PORT: writes DIR/otad.conf for a bench otad.
otad_config() {
	cat >"$1/otad.conf" <<CONF
[server]
data_dir = $2
log_level = warning
threads = ${OTAD_THREADS:-$(nproc)}

[tls]
cert = $1/pki/server.crt
key = $1/pki/server.key
session_tickets = true

[device]
listen = 127.0.0.1:$3
ca = $1/pki/device-ca.crt

[management]
listen = 127.0.0.1:$4
ca = $1/pki/operator-ca.crt

[limits]
connection_timeout = 30
max_connections = 4096
CONF
	if [ "${STORE_BACKEND:-sqlite}" = postgresql ]; then
		printf '\n[store]\nbackend = postgresql\n\n[store.postgresql]\nconninfo = %s\n' \
			"$PG_CONNINFO" >>"$1/otad.conf"
	fi
}

# store_setup BACKEND DATA: where the bench's otad keeps its store. sqlite: the file
# DATA/otad.db. postgresql: a private PostgreSQL 15 in BENCH_DIR/pg (tests/pg_server.sh, fsync
# on as in production), stopped at exit. Sets STORE_BACKEND, FILL_STORE (ota-bench-fill's
# store options), and for postgresql PG_DIR and PG_CONNINFO; otad_config then writes [store].
store_setup() {
	STORE_BACKEND=$1
	# PostgreSQL's own psql: the one on PATH is Debian's Perl wrapper, slower to start.
	local pgbin
	pgbin=$(pg_config --bindir 2>/dev/null || true)
	[ -x "$pgbin/psql" ] && PATH=$pgbin:$PATH
	case $1 in
	sqlite) FILL_STORE=(--db "$2/otad.db") ;;
	postgresql)
		PG_DIR=$BENCH_DIR/pg
		PG_CONNINFO=$(PG_MAX_CONNECTIONS=${PG_MAX_CONNECTIONS:-200} \
			"$BENCH_ROOT/tests/pg_server.sh" start "$PG_DIR") || {
			PG_DIR=
			return 1
		}
		FILL_STORE=(--conninfo "$PG_CONNINFO")
		;;
	*) echo "bench: unknown backend $1 (sqlite or postgresql)" >&2; return 2 ;;
	esac
}

# store_query SQL: one query on the bench's store, rows as lines, columns joined by " ".
store_query() {
	if [ "$STORE_BACKEND" = postgresql ]; then
		psql -X -q -At -F ' ' -v ON_ERROR_STOP=1 "$PG_CONNINFO" -c "$1"
	else
		sqlite3 -batch -noheader -separator ' ' "${FILL_STORE[1]}" "$1"
	fi
}

# store_size: the store's size on disk in MB (the SQLite file, or the PostgreSQL database).
store_size() {
	if [ "$STORE_BACKEND" = postgresql ]; then
		store_query "SELECT pg_database_size(current_database()) / 1048576"
	else
		du -m "${FILL_STORE[1]}" | cut -f1
	fi
}

# pg_ticks: CPU time (user + system, clock ticks) of every process of the private PostgreSQL
# server (the postmaster and all its children: backends, checkpointer, WAL writer...).
pg_ticks() {
	local pm
	pm=$(head -1 "$PG_DIR/data/postmaster.pid" 2>/dev/null) || { echo 0; return; }
	cpu_ticks "$pm"
}

# start_otad DIR PORT: otad with DIR/otad.conf, until it accepts on PORT; OTAD_PID is set.
start_otad() {
	"$OTAD" -c "$1/otad.conf" >>"$1/otad.log" 2>&1 &
	OTAD_PID=$!
	BENCH_PIDS+=($OTAD_PID)
	if ! wait_port "$2" 30; then
		echo "bench: otad did not start:" >&2
		tail -20 "$1/otad.log" >&2
		return 1
	fi
}

# stop_otad: SIGTERM and wait (a clean stop, so the database is checkpointed).
stop_otad() {
	if [ -n "${OTAD_PID:-}" ]; then
		kill -TERM "$OTAD_PID" 2>/dev/null || true
		wait "$OTAD_PID" 2>/dev/null || true
		OTAD_PID=
	fi
}

# machine_line: what the figures were taken on.
machine_line() {
	local cpu
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	echo "machine: $(nproc) cores, ${cpu:-unknown CPU}, load average $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)"
}

# cpu_ticks PID: CPU time (user + system, clock ticks) of PID and its direct children, so that
# nginx's workers count with their master.
cpu_ticks() {
	local p total=0 t
	for p in "$1" $(pgrep -P "$1" 2>/dev/null); do
		t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) || t=0
		total=$((total + ${t:-0}))
	done
	echo "$total"
}
