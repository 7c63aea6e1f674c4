# Shared by the rollout integration tests whose devices are real ota-agent processes (sourced
# after server_lib.sh and agent_lib.sh): a fleet of devices DEVS, what each runs (from its
# agent's state), and a round of the fleet: every device checks in as its agent would, then each
# device offered an update runs its agent for one cycle (check in, download, install, trial,
# buy or revert, report every step, and the health check-ins after a buy).

declare -A SLOT VER FLOOR
DEVS=()
OFFERED=()

# fleet N PREFIX FACTORY_IMAGE: N devices PREFIX-01.., certificates and provisioned agents.
fleet() {
	local i
	for i in $(seq -w 1 "$1"); do
		DEVS+=("$2-$i")
		"$OTA_SCRIPTS/dev-pki.sh" "$PKI" device "$2-$i" >/dev/null
		agent_setup "$2-$i" "$3"
	done
	note_state "${DEVS[0]}" # every device was provisioned alike
	for d in "${DEVS[@]}"; do
		SLOT[$d]=${SLOT[${DEVS[0]}]} VER[$d]=${VER[${DEVS[0]}]} FLOOR[$d]=${FLOOR[${DEVS[0]}]}
	done
}

note_state() { # DEVICE
	local boots
	boots=$(status_of "$1" boots) # "slot B version 2.0.0"
	SLOT[$1]=$(awk '{print $2}' <<<"$boots")
	VER[$1]=$(awk '{print $4}' <<<"$boots")
	FLOOR[$1]=$(status_of "$1" floor)
}

checkin_as() { # DEVICE: the check-in its agent sends, to see what the device is offered
	checkin "$1" "{\"hw_variant\":\"pico2w\",\"version\":\"${VER[$1]}\",\"security_floor\":${FLOOR[$1]},\"root_version\":1,\"active_slot\":\"${SLOT[$1]}\",\"boot_state\":\"normal\"}"
}

# round [strict]: every device checks in; then each one offered an update runs its agent for
# one cycle (strict: whose own check-in must be offered the update too). Sets OFFERED to the
# devices offered an update.
round() {
	local d r
	OFFERED=()
	for d in "${DEVS[@]}"; do
		r=$(checkin_as "$d")
		[ "$(code_of "$r")" == 200 ] || { fail "$d: check-in $(code_of "$r")"; continue; }
		if [ "$(jfield "$r" .action)" == update ]; then
			OFFERED+=("$d")
		fi
	done
	for d in "${OFFERED[@]}"; do
		agent "$d" once --timeout 60 2>"$T/$d.log" || fail "$d: agent cycle: $(tail -n 3 "$T/$d.log")"
		[ "${1-}" != strict ] || grep -qE 'update (accepted|refused): ' "$T/$d.log" ||
			fail "$d: its agent was not offered the update"
		note_state "$d"
	done
}

# members_of ROLLOUT STAGE: the devices whose keyed hash places them in that stage (1-based)
members_of() {
	local d
	for d in "${DEVS[@]}"; do
		[ "$(jfield "$(mcurl admin "/api/v1/rollouts/$1/devices/$d")" .joins_in_stage)" == "$2" ] && echo "$d"
	done
	return 0
}

post() { mcurl admin "$1" -H 'Content-Type: application/json' -d "$2"; }
