#!/usr/bin/env bash
# The role matrix: every management endpoint that otad serves (otad --list-routes), called by
# admin, operator and auditor certificates, an operator's API token, a revoked token, an
# expired token, a device certificate and no credentials. Allowed calls must get past
# authorisation (not 401/403; they target objects that do not exist, so they change nothing);
# refused calls must get the expected status and problem type, change nothing (the database
# apart from its audit log is byte-identical), and a role refusal must add exactly one
# access.denied audit entry. A route missing from the table below fails the test.
source "$(dirname "$0")/server_lib.sh"

make_pki
write_config
start_otad

Z64=0000000000000000000000000000000000000000000000000000000000000000
# METHOD PATH BODY ALLOWED-ROLES ("-": no body), with the paths as the route table has them.
MATRIX=$(cat <<'EOF'
GET /api/v1/health - admin,operator,auditor
POST /api/v1/images x admin,operator
POST /api/v1/releases {} admin,operator
GET /api/v1/releases - admin,operator,auditor
GET /api/v1/releases/{id} - admin,operator,auditor
DELETE /api/v1/releases/{id} - admin,operator
POST /api/v1/roots {} admin
POST /api/v1/deployments {} admin,operator
GET /api/v1/deployments/{id} - admin,operator,auditor
GET /api/v1/devices - admin,operator,auditor
POST /api/v1/devices {} admin,operator
GET /api/v1/devices/{id} - admin,operator,auditor
POST /api/v1/devices/{id}/approve {} admin,operator
POST /api/v1/devices/{id}/reject {} admin,operator
POST /api/v1/devices/{id}/decommission {} admin,operator
POST /api/v1/devices/{id}/reprovision {} admin,operator
PUT /api/v1/devices/{id}/tags {} admin,operator
POST /api/v1/revocations {} admin
GET /api/v1/images - admin,operator,auditor
DELETE /api/v1/images/{sha256} - admin,operator
GET /api/v1/principals - admin
POST /api/v1/principals {} admin
POST /api/v1/principals/{name}/disable {} admin
POST /api/v1/principals/{name}/enable {} admin
GET /api/v1/tokens - admin
POST /api/v1/tokens {} admin
DELETE /api/v1/tokens/{id} - admin
GET /api/v1/audit - admin,auditor
GET /api/v1/audit/export - admin,auditor
GET /api/v1/audit/verify - admin,auditor
GET /api/v1/audit/pubkey - admin,auditor
POST /api/v1/rollouts {} admin,operator
GET /api/v1/rollouts - admin,operator,auditor
GET /api/v1/rollouts/{id} - admin,operator,auditor
POST /api/v1/rollouts/plan {} admin,operator
GET /api/v1/rollouts/{id}/plan - admin,operator,auditor
POST /api/v1/rollouts/{id}/start {} admin,operator
POST /api/v1/rollouts/{id}/pause {} admin,operator
POST /api/v1/rollouts/{id}/resume {} admin,operator
POST /api/v1/rollouts/{id}/approve {} admin,operator
POST /api/v1/rollouts/{id}/abort {} admin,operator
POST /api/v1/rollouts/{id}/rollback {} admin,operator
GET /api/v1/rollouts/{id}/devices - admin,operator,auditor
GET /api/v1/rollouts/{id}/devices/{device_id} - admin,operator,auditor
GET /metrics - admin,operator,auditor
POST /api/v1/webhooks {} admin
GET /api/v1/webhooks - admin
GET /api/v1/webhooks/{id} - admin
DELETE /api/v1/webhooks/{id} - admin
POST /api/v1/webhooks/{id}/redeliver {} admin
GET /api/v1/events - admin,operator,auditor
POST /api/v1/releases/{id}/deltas {} admin,operator
GET /api/v1/releases/{id}/deltas - admin,operator,auditor
DELETE /api/v1/releases/{id}/deltas/{delta_id} - admin,operator
EOF
)
# A path of objects that do not exist, for a route pattern (the event stream: a malformed
# start, so that an allowed call is answered at once instead of streaming).
sample() {
	sed -E "s#/(releases|images)/\{[^}]*\}#/\1/$Z64#; s#/deployments/\{id\}#/deployments/d-00#;
		s#/devices/\{[^}]*\}#/devices/no-such-device#g; s#/principals/\{name\}#/principals/nobody#;
		s#/tokens/\{id\}#/tokens/t-0000000000000000#; s#/rollouts/\{id\}#/rollouts/r-00#;
		s#/webhooks/\{id\}#/webhooks/w-00#; s#/api/v1/events\$#/api/v1/events?after=x#;
		s#/deltas/\{delta_id\}#/deltas/$Z64#" <<<"$1"
}

# Every management route is in the matrix, and every matrix row is a route.
routes=$("$OTAD" --list-routes | awk '$3 == "management" {print $1, $2}' | sort)
rows=$(awk '{print $1, $2}' <<<"$MATRIX" | sort)
expect "the matrix covers exactly the management routes" "$routes" "$rows"

# Credentials: an operator principal with a live token, a revoked token and an expired one.
r=$(mcurl admin /api/v1/principals -H 'Content-Type: application/json' -d '{"name":"robot","role":"operator"}')
expect "admin creates a principal" 201 "$(code_of "$r")"
r=$(mcurl admin /api/v1/tokens -H 'Content-Type: application/json' -d '{"principal":"robot","expires_in_days":30}')
expect "admin creates a token" 201 "$(code_of "$r")"
TOKEN=$(jfield "$r" .token)
expect_match "the token is shown once, in full" '^ota_[0-9a-f]{64}$' "$TOKEN"
expect "only the token's hash is stored" 0 "$(db "SELECT count(*) FROM api_tokens WHERE hash = '$TOKEN' OR id = '$TOKEN'")"
r=$(mcurl admin /api/v1/tokens -H 'Content-Type: application/json' -d '{"principal":"robot","expires_in_days":30}')
REVOKED=$(jfield "$r" .token)
rid=$(jfield "$r" .id)
r=$(mcurl admin "/api/v1/tokens/$rid" -X DELETE)
expect "admin revokes a token" 200 "$(code_of "$r")"
expect "the token list shows no secret" 0 "$(body_of "$(mcurl admin /api/v1/tokens)" | grep -c ota_ || true)"
# An expired token: seeded directly (a real token's lifetime is at least a day).
EXPIRED=ota_$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
ehash=$(printf '%s' "$EXPIRED" | sha256sum | cut -d' ' -f1)
db "INSERT INTO api_tokens (id, principal, hash, created_at, expires_at, created_by) VALUES ('t-00000000000000ee', 'robot', '$ehash', 1, 2, 'test')"

# call CRED METHOD PATH BODY: prints the curl result
call() {
	local cred=$1 method=$2 path=$3 body=$4
	local args=(-X "$method")
	[ "$body" != "-" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
	case $cred in
	admin | operator | auditor) mcurl "$cred" "$path" "${args[@]}" ;;
	token) mcurl "" "$path" -H "Authorization: Bearer $TOKEN" "${args[@]}" ;;
	revoked) mcurl "" "$path" -H "Authorization: Bearer $REVOKED" "${args[@]}" ;;
	expired) mcurl "" "$path" -H "Authorization: Bearer $EXPIRED" "${args[@]}" ;;
	device) mcurl device-0001 "$path" "${args[@]}" ;;
	none) mcurl "" "$path" "${args[@]}" ;;
	esac
}

audit_count() { db "SELECT count(*) FROM audit_log WHERE action = 'access.denied'"; }

calls=0
# The store's digest and access.denied count before a call: kept from the last refused call,
# which changed nothing, and taken again after an allowed one.
before=
denied=
while read -r method pattern body allowed; do
	path=$(sample "$pattern")
	for cred in admin operator auditor token revoked expired device none; do
		role=$cred
		[ "$cred" == token ] && role=operator
		want=
		case $cred in
		revoked) want="401 token-revoked" ;;
		expired) want="401 token-expired" ;;
		device) want="403 client-certificate-rejected" ;;
		none) want="401 client-certificate-required" ;;
		*) [[ ",$allowed," == *",$role,"* ]] || want="403 forbidden" ;;
		esac
		[ -n "$before" ] || before=$(db_digest)
		[ -n "$denied" ] || denied=$(audit_count)
		r=$(call "$cred" "$method" "$path" "$body")
		calls=$((calls + 1))
		code=$(code_of "$r")
		if [ -z "$want" ]; then
			if [[ $code == 401 || $code == 403 || $code == 000 || -z $code ]]; then
				fail "$cred $method $path: allowed, but got $code: $(body_of "$r" | head -c 200)"
			else
				ok
			fi
			before= denied=
			continue
		fi
		type=$(body_of "$r" | jq -r '.type // empty' 2>/dev/null || true)
		expect "$cred $method $path" "$want" "$code ${type#urn:ota:problem:}"
		expect "$cred $method $path: nothing changed" "$before" "$(db_digest)"
		if [ "$want" == "403 forbidden" ]; then
			denied=$((denied + 1))
			expect "$cred $method $path: one access.denied entry" $denied "$(audit_count)"
		fi
	done
done <<<"$MATRIX"
echo "role matrix: $calls calls"

# Refusals of identities are audited too, and the log still verifies.
expect "refused tokens are audited" 1 "$(db "SELECT CASE WHEN count(*) > 0 THEN 1 ELSE 0 END FROM audit_log WHERE action = 'auth.refused' AND role = 'token'")"
expect "refused certificates are audited with their presented name and no role" 1 "$(db "SELECT CASE WHEN count(*) > 0 THEN 1 ELSE 0 END FROM audit_log WHERE action = 'auth.refused' AND actor = 'device-0001' AND role = 'none'")"
expect "no refused certificate is audited as an operator" 0 "$(db "SELECT count(*) FROM audit_log WHERE action = 'auth.refused' AND role = 'operator'")"
r=$(mcurl auditor /api/v1/audit/verify)
expect "the audit log verifies" true "$(jfield "$r" .ok)"
# A disabled principal's token stops working.
r=$(mcurl admin /api/v1/principals/robot/disable -X POST -H 'Content-Type: application/json' -d '{}')
expect "admin disables robot" 200 "$(code_of "$r")"
r=$(mcurl "" /api/v1/health -H "Authorization: Bearer $TOKEN")
expect "a disabled principal's token is refused" "403 urn:ota:problem:principal-disabled" "$(code_of "$r") $(jfield "$r" .type)"
finish
