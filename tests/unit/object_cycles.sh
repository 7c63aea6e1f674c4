#!/bin/sh
# object_cycles.sh NM OBJECT... - fails when two of the objects each use a symbol the other
# defines: dependencies between source files must run one way. Prints every such pair. An
# argument may be a CMake list (objects joined by ';'), as $<TARGET_OBJECTS:...> gives them.
set -eu
nm_tool=$1
shift
for arg in "$@"; do
	printf '%s\n' "$arg" | tr ';' '\n'
done | grep -v '^$' | while read -r o; do
	name=$(basename "$o")
	"$nm_tool" -g --defined-only "$o" | awk -v o="$name" 'NF >= 3 { print o, "D", $3 }'
	"$nm_tool" -u "$o" | awk -v o="$name" 'NF >= 1 { print o, "U", $NF }'
done | awk '
	$2 == "D" { def[$3] = $1; objs[$1] = 1; next }
	{ objs[$1] = 1; use[$1] = use[$1] " " $3 }
	END {
		for (a in use) {
			n = split(use[a], s, " ")
			for (i = 1; i <= n; i++)
				if ((s[i] in def) && def[s[i]] != a)
					dep[a, def[s[i]]] = s[i]
		}
		cycles = 0
		for (k in dep) {
			split(k, p, SUBSEP)
			if (p[1] < p[2] && ((p[2], p[1]) in dep)) {
				printf "cycle: %s uses %s; %s uses %s\n", p[1], dep[k], p[2],
				    dep[p[2], p[1]]
				cycles++
			}
		}
		total = 0
		for (o in objs)
			total++
		printf "object_cycles: %d objects, %d cycles\n", total, cycles
		exit cycles > 0
	}'
