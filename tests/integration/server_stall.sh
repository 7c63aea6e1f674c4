#!/usr/bin/env bash
# Acceptance: a TLS client that sends part of a ClientHello and stops is dropped at the
# configured connection timeout, no worker spins meanwhile (otad's CPU time stays low), and
# other devices are served while the stalled connections are open.
. "$(dirname "$0")/server_lib.sh"

make_pki
CONN_TIMEOUT=3 write_config
start_otad
checkin device-0001 >/dev/null

cpu_ticks() { awk '{print $14 + $15}' "/proc/$OTAD_PID/stat"; }
hz=$(getconf CLK_TCK)

# Four stalled connections (more than the two worker threads): a TLS record header and the
# first bytes of a ClientHello, then nothing.
fds=()
for i in 1 2 3 4; do
	exec {fd}<>"/dev/tcp/127.0.0.1/$DPORT"
	printf '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' >&$fd
	fds+=("$fd")
done
t0=$(date +%s.%N)
c0=$(cpu_ticks)

# Served meanwhile.
expect "check-in while stalled connections are open" 200 "$(code_of "$(checkin device-0001)")"

# Each stalled connection is closed by otad (EOF) at about the timeout.
for fd in "${fds[@]}"; do
	timeout 20 cat <&"$fd" >/dev/null || true
done
t1=$(date +%s.%N)
c1=$(cpu_ticks)
elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN { printf "%.3f", (b - a) / hz }')
echo "stalled connections closed after ${elapsed}s; otad CPU time meanwhile ${cpu}s"
if awk -v e="$elapsed" 'BEGIN { exit !(e >= 2.0 && e < 10) }'; then ok; else fail "closed after ${elapsed}s, timeout is 3s"; fi
# A spinning worker would burn about one CPU second per second; allow a tenth of that.
if awk -v c="$cpu" -v e="$elapsed" 'BEGIN { exit !(c < 0.1 * e + 0.05) }'; then ok; else fail "otad used ${cpu}s of CPU in ${elapsed}s"; fi
for fd in "${fds[@]}"; do exec {fd}>&-; done
expect "served after the stall" 200 "$(code_of "$(checkin device-0001)")"
finish
