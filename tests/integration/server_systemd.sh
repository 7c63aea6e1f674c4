#!/usr/bin/env bash
# systemd/otad.service: `systemd-analyze verify` passes (with ExecStart pointed at the otad
# under test, since /usr/sbin/otad is not installed in the test environment), and the unit
# keeps the type, watchdog and hardening the operations guide promises.
set -euo pipefail
: "${OTAD:?}"
unit=$(dirname "$0")/../../systemd/otad.service
T=$(mktemp -d "${TMPDIR:-/tmp}/otad-unit.XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
sed "s|/usr/sbin/otad|$OTAD|g" "$unit" >"$T/otad.service"
if out=$(systemd-analyze verify "$T/otad.service" 2>&1); then
	echo "systemd-analyze verify: ok"
else
	echo "FAIL: systemd-analyze verify: $out"; fails=$((fails + 1))
fi
for line in Type=notify WatchdogSec=30 NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes \
	PrivateTmp=yes ReadWritePaths=/var/lib/otad CapabilityBoundingSet= \
	'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' SystemCallFilter=@system-service \
	'ExecStart=/usr/sbin/otad --config /etc/otad/otad.conf'; do
	grep -qxF "$line" "$unit" || { echo "FAIL: $line missing"; fails=$((fails + 1)); }
done
[ "$(grep -c '^ReadWritePaths=' "$unit")" == 1 ] || { echo "FAIL: more than one ReadWritePaths"; fails=$((fails + 1)); }
echo "server_systemd.sh: $fails failures"
[ $fails -eq 0 ]
