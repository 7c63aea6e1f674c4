#!/usr/bin/env bash
# Regenerates the screenshots of docs/console.md: runs the console's browser test
# (integration_console: a real otad, a fleet, headless Chromium) in the build folder given
# (default build-asan, configured and built already) and copies the pictures it took into
# docs/images/.
#
# usage: scripts/console-screenshots.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-asan}
(cd "$build" && ctest -R '^integration_console$' --output-on-failure)
for n in overview rollout plan; do
	cp "$build/console-screenshots/$n.png" "$root/docs/images/console-$n.png"
done
ls -l "$root"/docs/images/console-*.png
