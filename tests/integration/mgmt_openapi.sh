#!/usr/bin/env bash
# docs/openapi.yaml and the server agree both ways: every route that otad serves
# (otad --list-routes) is an operation of the spec, and every operation of the spec is served.
set -euo pipefail
: "${OTAD:?OTAD must name the otad binary}"
spec=$(cd "$(dirname "$0")/../.." && pwd)/docs/openapi.yaml
norm() { sed -E 's/\{[^}]*\}/{}/g'; }
served=$("$OTAD" --list-routes | awk '{print $1, $2}' | norm | sort)
documented=$(awk '
	/^paths:/ {inpaths = 1; next}
	/^[a-z]/ {inpaths = 0}
	inpaths && /^  \/[^ ]*:$/ {path = substr($1, 1, length($1) - 1); next}
	inpaths && /^    (get|post|put|delete|patch):$/ {m = toupper(substr($1, 1, length($1) - 1)); print m, path}
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
echo "mgmt_openapi.sh: $n_served routes served, $n_doc operations documented, $fails differences"
[ "$fails" -eq 0 ] && [ "$n_served" -gt 0 ]
