#!/usr/bin/env bash
# docs/openapi.yaml and the server agree both ways: every route that otad serves
# (otad --list-routes) is an operation of the spec, and every operation of the spec is served.
# And every collection of the spec pages one way: `limit` (1..1000, default 100) and `cursor`
# query parameters, a 200 answer with `items` (an array) and `next_cursor`, both required.
set -euo pipefail
: "${OTAD:?OTAD must name the otad binary}"
spec=$(cd "$(dirname "$0")/../.." && pwd)/docs/openapi.yaml
norm() { sed -E 's/\{[^}]*\}/{}/g'; }
served=$("$OTAD" --list-routes | awk '{print $1, $2}' | norm | sort)
documented=$(awk '
	/^paths:/ {inpaths = 1; next}
	/^[a-z]/ {inpaths = 0}
	inpaths && /^  \/[^ ]*:$/ {path = substr($1, 1, length($1) - 1); next}
	inpaths && /^    (get|head|post|put|delete|patch):$/ {m = toupper(substr($1, 1, length($1) - 1)); print m, path}
' "$spec" | norm | sort)
fails=0
n_served=$(wc -l <<<"$served")
n_doc=$(wc -l <<<"$documented")
while read -r line; do
	echo "FAIL: served but not in docs/openapi.yaml: $line"; fails=$((fails + 1))
done < <(comm -23 <(echo "$served") <(echo "$documented") | sed '/^$/d')
while read -r line; do
	echo "FAIL: in docs/openapi.yaml but not served: $line"; fails=$((fails + 1))
done < <(comm -13 <(echo "$served") <(echo "$documented") | sed '/^$/d')

# A collection is a GET whose path does not end in a parameter, but for these documents (and
# the event stream, which is no page).
singles='/api/v1/health /api/v1/audit/export /api/v1/audit/verify /api/v1/audit/pubkey /metrics /api/v1/rollouts/{rollout_id}/plan /api/v1/events'
paging=$(yq -r --arg singles "$singles" '
	. as $spec
	| def res: if type == "object" and has("$ref")
		then . as $o | $spec | getpath($o["$ref"] | ltrimstr("#/") | split("/")) | res
		else . end;
	def props: res | (.properties // {}) + ([.allOf[]? | props] | add // {});
	def req: res | (.required // []) + ([.allOf[]? | req] | add // []);
	($singles | split(" ")) as $single
	| .paths | to_entries[]
	| select(.value.get and (.key | test("}$") | not) and (.key | IN($single[]) | not))
	| .key as $path | .value.get as $op
	| ([$op.parameters[]? | res | select(.in == "query") | {key: .name, value: .schema}]
		| from_entries) as $q
	| ($op.responses["200"].content["application/json"].schema // {}) as $ok
	| "collection \($path)",
	  (if $q.limit == null then "FAIL: GET \($path): no limit parameter"
	   elif [$q.limit.minimum, $q.limit.maximum, $q.limit.default] != [1, 1000, 100]
	   then "FAIL: GET \($path): limit is not 1..1000, default 100" else empty end),
	  (if $q.cursor == null then "FAIL: GET \($path): no cursor parameter"
	   elif $q.cursor.type != "string" then "FAIL: GET \($path): cursor is not a string"
	   else empty end),
	  (($ok | props) as $p | ($ok | req) as $r
	   | if ($p.items | res | .type) != "array" or ($r | index("items")) == null
	     then "FAIL: GET \($path): its 200 answer has no required items array" else empty end,
	     if $p.next_cursor == null or ($r | index("next_cursor")) == null
	     then "FAIL: GET \($path): its 200 answer has no required next_cursor" else empty end)
' "$spec")
n_coll=$(grep -c '^collection ' <<<"$paging" || true)
while read -r line; do
	echo "$line"; fails=$((fails + 1))
done < <(grep '^FAIL' <<<"$paging" || true)
echo "mgmt_openapi.sh: $n_served routes served, $n_doc operations documented, $n_coll collections paged, $fails differences"
[ "$fails" -eq 0 ] && [ "$n_served" -gt 0 ] && [ "$n_coll" -ge 8 ]
