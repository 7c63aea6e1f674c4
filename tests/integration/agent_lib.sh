# Shared by the integration tests whose devices are real ota-agent processes (sourced after
# server_lib.sh): each device is the POSIX agent over its own simulated flash and bootrom (the
# product's simulator, firmware-agent/ports/posix/sim.c), with its own certificate, talking to
# the otad started by server_lib.sh. Agents started in the background are listed in AGENT_PIDS
# and stopped on exit.
#
# Needs: OTA_AGENT (binary) in the environment, besides what server_lib.sh needs.
: "${OTA_AGENT:?OTA_AGENT must name the ota-agent binary}"

AGENT_PIDS=()
stop_agents() {
	for p in "${AGENT_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
}
# Stop the agents started here, then the shared cleanup with the script's exit status.
trap '_rc=$?; stop_agents; if [ $_rc -ne 0 ]; then (exit $_rc) || cleanup; else true; cleanup; fi' EXIT

# sim_release IMAGE VERSION SECURITY_VERSION: upload, sign (format sim), register; prints the id.
sim_release() {
	local img=$1 ver=$2 sv=$3 r
	r=$(mcurl admin /api/v1/images --data-binary @"$img" -H 'Content-Type: application/octet-stream')
	[[ $(code_of "$r") =~ ^20[01]$ ]] || { echo "upload failed: $r" >&2; return 1; }
	"$OTA_SIGN" release --image "$img" --name fw --version "$ver" --security-version "$sv" \
		--hw-variant pico2w --format sim --key "$T/release.key" --out "$T/fw-$ver.json" >/dev/null
	r=$(mcurl admin /api/v1/releases --data-binary @"$T/fw-$ver.json" -H 'Content-Type: application/json')
	[[ $(code_of "$r") =~ ^20[01]$ ]] || { echo "release failed: $r" >&2; return 1; }
	jfield "$r" .id
}

# agent_setup DEVICE FACTORY_IMAGE: config and flash provisioned with the image in $T/DEVICE
# (the device's certificate must exist in $PKI).
agent_setup() {
	local d=$T/$1
	mkdir -p "$d"
	cat >"$d/agent.conf" <<CONF
# ota-agent for $1 (test)
server = https://127.0.0.1:$DPORT
cert = $PKI/$1.pem
key = $PKI/$1.key
ca = $PKI/device-ca.pem
root = $T/root-1.json
state_dir = $d/state
hw_variant = pico2w
image_format = sim
retry_min_ms = 200
retry_max_ms = 2000
trial_ms = 4000
slot_size = 131072
CONF
	"$OTA_AGENT" --config "$d/agent.conf" provision "$2" >/dev/null
}
agent() { local dev=$1; shift; "$OTA_AGENT" --config "$T/$dev/agent.conf" "$@"; }
status_of() { agent "$1" status | sed -n "s/^$2: //p"; }
