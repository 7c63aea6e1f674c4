#!/usr/bin/env bash
# Fails when two translation units of the product depend on each other both ways: each uses
# (has undefined) a symbol that the other defines. Dependencies must run one way between files
# as between folders, so that any file can be read, tested and replaced knowing only what it
# calls. Reads the object files of a configured and built CMake tree (its compile_commands.json
# says which object comes from which source) with nm; covers the sources under server/,
# firmware-agent/, signer/ and bench/ (tests may call anything).
#
# Use: scripts/check-cycles.sh BUILD_DIR [BUILD_DIR...]   (e.g. build-asan, build-m33)
# Exit status: 0 when no pair is found, 1 when one is (every pair is named on stderr), 2 when
# the build folder cannot be read (not configured, objects not built, nm or jq missing).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [BUILD_DIR...]" >&2; exit 2; }
NM=${NM:-nm}
for tool in "$NM" jq; do
	command -v "$tool" >/dev/null || { echo "check-cycles: $tool not found" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One line per symbol: "D <source> <symbol>" for a definition, "U <source> <symbol>" for a use.
nobj=0
for build in "$@"; do
	db=$build/compile_commands.json
	[ -f "$db" ] || { echo "check-cycles: $db not found (configure $build first)" >&2; exit 2; }
	while IFS=$'\t' read -r dir src obj; do
		case $src in
		"$ROOT"/server/* | "$ROOT"/firmware-agent/* | "$ROOT"/signer/* | "$ROOT"/bench/*) ;;
		*) continue ;;
		esac
		[[ $obj == /* ]] || obj=$dir/$obj
		[ -f "$obj" ] || { echo "check-cycles: $obj not built (build $build first)" >&2; exit 2; }
		rel=${src#"$ROOT"/}
		# POSIX format: "name type [value size]"; upper-case types are global, U undefined.
		"$NM" -P "$obj" | awk -v s="$rel" '
			$2 == "U" { print "U", s, $1; next }
			$2 ~ /^[A-TV-Z]$/ { print "D", s, $1 }'
		nobj=$((nobj + 1))
	done < <(jq -r '.[] | [.directory, .file,
		(.command // (.arguments | join(" ")) | capture("-o (?<o>[^ ]+)").o)] | @tsv' "$db")
done >"$work/symbols"
[ "$nobj" -gt 0 ] || { echo "check-cycles: no product object files in $*" >&2; exit 2; }

# Edges "user definer symbol", then the pairs that have an edge each way.
sort -u "$work/symbols" | awk '
	$1 == "D" { def[$3] = def[$3] " " $2; next }
	{ use[NR] = $2; sym[NR] = $3 }
	END {
		for (i in use) {
			n = split(def[sym[i]], d, " ")
			for (j = 1; j <= n; j++)
				if (d[j] != use[i])
					print use[i], d[j], sym[i]
		}
	}' | sort -u >"$work/edges"

awk '
	{
		key = $1 " " $2
		if (key in uses)
			uses[key] = uses[key] ", " $3
		else
			uses[key] = $3
	}
	END {
		for (key in uses) {
			split(key, p, " ")
			back = p[2] " " p[1]
			if (p[1] < p[2] && (back in uses))
				printf "%s <-> %s: %s uses %s; %s uses %s\n", p[1], p[2], p[1], uses[key],
					p[2], uses[back]
		}
	}' "$work/edges" | sort >"$work/pairs"

if [ -s "$work/pairs" ]; then
	echo "check-cycles: translation units that depend on each other both ways:" >&2
	cat "$work/pairs" >&2
	exit 1
fi
echo "check-cycles: no two of $nobj object files depend on each other both ways"
