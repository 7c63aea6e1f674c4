#!/usr/bin/env bash
# Acceptance: under journald, what a client controls reaches the journal in fields of its own,
# escaped, and every MESSAGE stays one line. A real systemd-journald runs in a private mount
# namespace (tmpfs over its socket and journal folders, so the host's journal is untouched);
# otad logs to it as under systemd (JOURNAL_STREAM names its stderr). Needs root, unshare and
# systemd-journald; skipped (77) without them.
if [ -z "${OTA_IN_NS:-}" ]; then
	J=/lib/systemd/systemd-journald
	if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null || [ ! -x "$J" ] ||
		! command -v journalctl >/dev/null || ! unshare --mount true 2>/dev/null; then
		echo "SKIP: needs root, unshare and systemd-journald"
		exit 77
	fi
	OTA_IN_NS=1 exec unshare --mount --fork bash "$0" "$@"
fi
. "$(dirname "$0")/server_lib.sh"

for d in /run/systemd/journal /run/log/journal /var/log/journal; do
	mkdir -p "$d" && mount -t tmpfs tmpfs "$d"
done
/lib/systemd/systemd-journald >"$T/journald.log" 2>&1 &
JOURNALD_PID=$!
trap 'kill "$JOURNALD_PID" 2>/dev/null; wait "$JOURNALD_PID" 2>/dev/null; cleanup' EXIT
for _ in $(seq 1 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done

# jq over otad's own entries (the journal also mirrors the kernel's messages).
jq_journal() {
	journalctl -q --merge -o json _COMM=otad 2>/dev/null | jq -c "$@" 2>/dev/null || true
}

make_pki
write_config
: >"$LOG"
JOURNAL_STREAM=$(stat -c '%d:%i' "$LOG") "$OTAD" --config "$CONF" 2>>"$LOG" >/dev/null &
OTAD_PID=$!
for _ in $(seq 1 200); do
	ready=$(jq_journal -r 'select(.MESSAGE | startswith("otad ready")) | .MESSAGE' | tail -n 1)
	[ -n "$ready" ] && break
	sleep 0.05
done
expect_match "otad logs to the journal" "^otad ready" "$ready"
DPORT=$(grep -o 'device API on port [0-9]*' <<<"$ready" | awk '{print $5}')
MPORT=$(grep -o 'management API on port [0-9]*' <<<"$ready" | awk '{print $5}')

# A forged line in the URL: decoded on the management listener, raw on the device listener.
mcurl admin '/api/v1/x%0a2026-01-01T00:00:00.000Z%20otad%20notice:%20FORGED' >/dev/null
dcurl device-0001 '/device/v1/y%0aFORGED' >/dev/null
sleep 0.5
entries=$(jq_journal 'select(.OTA_URL != null)')
expect "two answers logged with OTA_URL" 2 "$(jq -s length <<<"$entries")"
expect "the management URL escaped in its own field" \
	'/api/v1/x\x0a2026-01-01T00:00:00.000Z otad notice: FORGED' \
	"$(jq -r 'select(.OTA_URL | startswith("/api")) | .OTA_URL' <<<"$entries")"
expect "the device URL as sent in its own field" '/device/v1/y%0aFORGED' \
	"$(jq -r 'select(.OTA_URL | startswith("/device")) | .OTA_URL' <<<"$entries")"
expect "the method in its own field" "GET GET" "$(jq -r .OTA_METHOD <<<"$entries" | tr '\n' ' ' | sed 's/ $//')"
expect "no MESSAGE holds a line break" "" \
	"$(jq_journal -r 'select(.MESSAGE | type == "string" and test("[\n\r]")) | .MESSAGE')"
expect "no MESSAGE starts with the forged text" 0 \
	"$(jq_journal -r 'select(.MESSAGE | type == "string" and test("^(2026-01-01|FORGED)")) | .MESSAGE' | wc -l)"
finish
