#!/usr/bin/env bash
# Runs every libFuzzer target built in BUILD_DIR/tests/fuzz for SECONDS each (as many at once as
# there are cores), starting from a temporary copy of its seed corpus tests/fuzz/corpus/<target>/
# (so that nothing is written into the source tree). Fails when any target crashes, leaks, times
# out, is missing its corpus or leaves no verdict; prints one summary line.
# Usage: tests/fuzz/run.sh BUILD_DIR SECONDS
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR SECONDS" >&2
	exit 2
fi
build=$(realpath "$1")
seconds=$2
src=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

targets=()
while IFS= read -r t; do
	targets+=("$t")
done < <(find "$build/tests/fuzz" -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x 2>/dev/null | sort)
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no targets built in $build/tests/fuzz" >&2
	exit 1
fi

# One target: fuzz it, leave its verdict in $work/NAME/result ("ok RUNS" or "fail RUNS").
fuzz_one() {
	local t=$1 name seeds log rc runs
	name=$(basename "$t")
	seeds="$src/corpus/$name"
	log="$work/$name/log"
	mkdir -p "$work/$name/corpus" "$work/$name/artifacts"
	cp -r "$seeds"/. "$work/$name/corpus/"
	set +e
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		"$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$work/$name/artifacts/" "$work/$name/corpus" >"$log" 2>&1
	rc=$?
	set -e
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	echo "$([ $rc -eq 0 ] && echo ok || echo fail) ${runs:-0}" >"$work/$name/result"
}

# The targets run side by side, one per core (each its full time: the same fuzzing in less
# wall-clock time); the verdicts are read in order afterwards.
jobs_max=$(nproc)
failed=()
for t in "${targets[@]}"; do
	name=$(basename "$t")
	if [ ! -d "$src/corpus/$name" ] || [ -z "$(ls -A "$src/corpus/$name")" ]; then
		echo "fuzz: $name has no seed corpus in tests/fuzz/corpus/$name" >&2
		failed+=("$name(no corpus)")
		mkdir -p "$work/$name" && echo "nocorpus 0" >"$work/$name/result"
		continue
	fi
	while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do
		wait -n || true
	done
	echo "fuzz: $name for ${seconds}s from $(ls "$src/corpus/$name" | wc -l) seeds"
	fuzz_one "$t" &
done
wait

total_runs=0
for t in "${targets[@]}"; do
	name=$(basename "$t")
	if [ ! -f "$work/$name/result" ]; then
		failed+=("$name(no verdict)") # the run ended before it could say
		continue
	fi
	read -r verdict runs <"$work/$name/result"
	[ "$verdict" != nocorpus ] || continue # counted above
	total_runs=$((total_runs + runs))
	if [ "$verdict" != ok ]; then
		tail -n 60 "$work/$name/log" >&2
		for a in "$work/$name/artifacts"/*; do
			[ -e "$a" ] || continue
			echo "fuzz: $name reproducer $(basename "$a") (base64): $(base64 -w0 "$a" | head -c 4096)" >&2
		done
		failed+=("$name")
	else
		echo "fuzz: $name ok, $runs runs, corpus $(ls "$work/$name/corpus" | wc -l) inputs"
	fi
done

if [ ${#failed[@]} -ne 0 ]; then
	echo "fuzz: FAILED ${failed[*]} (${#targets[@]} targets, $total_runs runs)"
	exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, $total_runs runs, no crash"
