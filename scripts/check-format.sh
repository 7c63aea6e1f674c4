#!/usr/bin/env bash
# Fails when a tracked C source or header differs from what the repository's .clang-format
# makes of it, naming every such file. Fix with: clang-format -i FILE...
#
# Use: scripts/check-format.sh   (from anywhere inside the git checkout)
# Exit status: 0 when every file is formatted, 1 when one is not, 2 when clang-format or git is
# missing. CLANG_FORMAT overrides the program (default clang-format-14, else clang-format).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
	for c in clang-format-14 clang-format; do
		command -v "$c" >/dev/null && { cf=$c; break; }
	done
fi
[ -n "$cf" ] || { echo "check-format: clang-format not found (scripts/install-deps.sh)" >&2; exit 2; }
git rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
	{ echo "check-format: $ROOT is not a git checkout" >&2; exit 2; }

files=()
while IFS= read -r -d '' f; do
	# Files deleted in the work tree but not yet committed are skipped.
	if [ -f "$f" ]; then
		files+=("$f")
	fi
done < <(git ls-files -z -- '*.c' '*.h')

# One run over every file; each difference is reported as "FILE:LINE:COL: error: ...".
out=$("$cf" --dry-run -Werror "${files[@]}" 2>&1) && rc=0 || rc=$?
mapfile -t bad < <(printf '%s\n' "$out" | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: .*/\1/p' | sort -u)
if [ "$rc" -ne 0 ] && [ ${#bad[@]} -eq 0 ]; then
	printf '%s\n' "$out" >&2
	echo "check-format: $cf failed" >&2
	exit 2
fi

if [ ${#bad[@]} -gt 0 ]; then
	echo "check-format: ${#bad[@]} file(s) differ from .clang-format ($cf):" >&2
	printf '  %s\n' "${bad[@]}" >&2
	echo "fix with: $cf -i FILE..." >&2
	exit 1
fi
echo "check-format: every tracked .c/.h file is formatted ($cf)"
