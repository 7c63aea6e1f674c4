#!/usr/bin/env bash
# The reference documentation keeps up with the code: every route of server/http/routes.c is a
# path of docs/openapi.yaml with that method, and every problem type of server/http/problem.c
# is listed in docs/errors.md.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
fails=0 n=0
while read -r method path; do
	n=$((n + 1))
	m=$(tr 'A-Z' 'a-z' <<<"$method")
	# The path line (parameter names aside), then its method before the next path.
	if ! awk -v p="  $path:" -v m="    $m:" '{l = $0; gsub(/\{[^}]*\}/, "{}", l)} l == p {inp = 1; next} /^  \/[^ ]*:$/ {inp = 0} inp && $0 == m {found = 1} END {exit !found}' \
		"$src/docs/openapi.yaml"; then
		echo "FAIL: $method $path is not in docs/openapi.yaml"; fails=$((fails + 1))
	fi
done < <(grep -oE '\{"(GET|POST|PUT|DELETE|PATCH)", "/[^"]*"' "$src/server/http/routes.c" |
	sed -E 's/\{"([A-Z]+)", "([^"]*)"/\1 \2/; s/\{[^}]*\}/{}/g')
for slug in $(grep -oE '\[OTA_P_[A-Z_]+\] = \{"[a-z-]+"' "$src/server/http/problem.c" | sed -E 's/.*"([a-z-]+)"/\1/' | grep -v '^none$'); do
	n=$((n + 1))
	grep -q "\`$slug\`" "$src/docs/errors.md" || { echo "FAIL: problem $slug is not in docs/errors.md"; fails=$((fails + 1)); }
done
echo "server_docs.sh: $n checks, $fails failures"
[ $fails -eq 0 ]
