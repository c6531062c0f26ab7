#!/usr/bin/env bash
# Installs what is missing, builds the gateway and runs it on its embedded demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake --preset release > /dev/null
cmake --build --preset release --target gatehouse -j "$(nproc)"
exec build/release/src/app/gatehouse demo "$@"
