#!/usr/bin/env bash
# Builds and runs every test: once in a release build, once under ASan+UBSan.
#   scripts/test.sh            both builds
#   scripts/test.sh release    only the release build
#   scripts/test.sh asan-ubsan only the sanitizer build
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

jobs=$(nproc)
presets=("${@:-release asan-ubsan}")
read -r -a presets <<< "${presets[*]}"
status=0
for preset in "${presets[@]}"; do
  echo "=== $preset: configure and build"
  cmake --preset "$preset" > /dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "=== $preset: test"
  if ! ctest --preset "$preset" -j 1; then status=1; fi
done
exit $status
