#!/usr/bin/env bash
# The web console in a real headless Chromium (Debian's, driven by chromedriver through
# python3-selenium) against a real otad on 127.0.0.1 with a fleet of devices that check in and
# report with their own certificates. console_browser.py holds the browser's side; this script
# makes the PKI, the fleet, the releases and the principals, and checks the console's security
# headers from outside the browser.
#
# Needs chromium, chromium-driver and python3-selenium (scripts/install-deps.sh).
# Screenshots go to $CONSOLE_SHOTS (the build folder's console-screenshots/ under ctest).
. "$(dirname "$0")/server_lib.sh"

for need in /usr/bin/chromium /usr/bin/chromedriver; do
	[ -x "$need" ] || { echo "$need is missing: run scripts/install-deps.sh"; exit 1; }
done
/usr/bin/python3 -c 'import selenium' || { echo "python3-selenium is missing: run scripts/install-deps.sh"; exit 1; }

N=${CONSOLE_DEVICES:-12}
make_pki
write_config
sed -i "s|^ca = $PKI/operator-ca.pem|ca = $PKI/operator-ca.pem\nconsole = $OTA_CONSOLE_DIR|" "$CONF"
# Few live streams, so that the browser test can fill them and watch a page fall back to polling.
printf '\n[events]\nmax_streams = 3\n' >>"$CONF"
start_otad
post() { mcurl admin "$1" -H 'Content-Type: application/json' -d "$2"; }

# The console's files and headers, seen by curl (no identity needed for static files).
hdr() { curl -sS --max-time 10 --cacert "$PKI/device-ca.pem" -D - -o /dev/null "https://127.0.0.1:$MPORT$1"; }
h=$(hdr /console/)
expect_match "index served" 'HTTP/[0-9.]+ 200' "$h"
expect_match "CSP: only this origin's scripts" "script-src 'self';" "$h"
expect_match "CSP: only this origin's styles" "style-src 'self';" "$h"
expect_match "CSP: no framing" "frame-ancestors 'none'" "$h"
expect_match "CSP: nothing by default" "default-src 'none'" "$h"
expect_match "nosniff" "X-Content-Type-Options: nosniff" "$h"
expect_match "html type" "Content-Type: text/html" "$h"
[[ $h == *unsafe-inline* ]] && fail "CSP allows inline code"
h=$(hdr /console/app.js)
expect_match "module type" "Content-Type: text/javascript" "$h"
expect_match "/console redirects to the folder" "Location: /console/" "$(hdr /console)"
expect_match "unknown file" 'HTTP/[0-9.]+ 404' "$(hdr /console/nope.js)"
expect_match "no path tricks" 'HTTP/[0-9.]+ 404' "$(hdr /console/..%2fotad.conf)"
r=$(curl -sS --max-time 10 --cacert "$PKI/device-ca.pem" -o /dev/null -w '%{http_code}' -X POST "https://127.0.0.1:$MPORT/console/")
expect "only GET and HEAD" 405 "$r"
r=$(curl -sS --max-time 10 --cacert "$PKI/device-ca.pem" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$MPORT/api/v1/rollouts")
expect "the API still needs an identity" 401 "$r"
grep -rn 'innerHTML\|outerHTML\|insertAdjacentHTML\|document.write\|eval(' "$OTA_CONSOLE_DIR" && fail "the console builds markup from strings"
grep -rn ' style=\|<script>' "$OTA_CONSOLE_DIR"/*.html && fail "inline style or script in the console's HTML"

# Principals and their tokens.
r=$(post /api/v1/principals '{"name":"alice","role":"admin"}')
expect "admin principal" 201 "$(code_of "$r")"
r=$(post /api/v1/principals '{"name":"audrey","role":"auditor"}')
expect "auditor principal" 201 "$(code_of "$r")"
ADMIN_TOKEN=$(jfield "$(post /api/v1/tokens '{"principal":"alice","expires_in_days":1}')" .token)
AUDITOR_TOKEN=$(jfield "$(post /api/v1/tokens '{"principal":"audrey","expires_in_days":1}')" .token)
expect_match "tokens" '^ota_.* ota_' "$ADMIN_TOKEN $AUDITOR_TOKEN"

# The fleet: every device checks in once with 1.0.0.
DEVS=()
for i in $(seq -w 1 "$N"); do
	DEVS+=("cd-$i")
	"$OTA_SCRIPTS/dev-pki.sh" "$PKI" device "cd-$i" >/dev/null
	r=$(checkin "cd-$i")
	expect "cd-$i checks in" 200 "$(code_of "$r")"
done
# Three more the plan skips: a floor above the release, one decommissioned, one pending.
"$OTA_SCRIPTS/dev-pki.sh" "$PKI" device cd-floor >/dev/null
r=$(checkin cd-floor '{"hw_variant":"pico2w","version":"1.0.0","security_floor":5,"root_version":1,"active_slot":"A","boot_state":"normal"}')
expect "cd-floor checks in" 200 "$(code_of "$r")"
"$OTA_SCRIPTS/dev-pki.sh" "$PKI" device cd-gone >/dev/null
r=$(checkin cd-gone)
expect "cd-gone checks in" 200 "$(code_of "$r")"
r=$(post /api/v1/devices/cd-gone/decommission '{}')
expect "cd-gone decommissioned" 200 "$(code_of "$r")"
r=$(post /api/v1/devices '{"id":"cd-pend","admission":"pending"}')
expect "cd-pend registered, pending" 201 "$(code_of "$r")"
r=$(mcurl admin /api/v1/devices/cd-01/tags -X PUT -H 'Content-Type: application/json' -d '{"tags":["<img src=x onerror=alert(1)>"]}')
expect "markup is no valid tag: the API refuses it" 400 "$(code_of "$r")"
r=$(mcurl admin /api/v1/devices/cd-01/tags -X PUT -H 'Content-Type: application/json' -d '{"tags":["line=1","site:berlin"]}')
expect "a tag" 200 "$(code_of "$r")"
head -c 2000 /dev/urandom >"$T/v2.bin"
head -c 2000 /dev/urandom >"$T/v3.bin"
REL2=$(release_of "$T/v2.bin" 2.0.0 2)
REL3=$(release_of "$T/v3.bin" 3.0.0 2)

export MPORT DPORT PKI ADMIN_TOKEN AUDITOR_TOKEN REL2 REL3 T
export OTAD_LOG=$LOG
export DEVICES="${DEVS[*]}"
export SHOTS=${CONSOLE_SHOTS:-$T/shots}
mkdir -p "$SHOTS"
if /usr/bin/python3 "$(dirname "$0")/console_browser.py"; then ok; else fail "browser checks"; fi
finish
