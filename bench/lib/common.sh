# Shared by the bench scripts (sourced, not run): a test PKI minted at bench time, free
# loopback ports, nginx and otad started on loopback with their own temp configuration, and
# reading the load generator's key=value result line. Nothing here is ever committed as a key.

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
