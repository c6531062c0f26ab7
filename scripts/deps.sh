#!/usr/bin/env bash
# Installs what gatehouse needs on Debian 12, and only what is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  clang-14 libclang-rt-14-dev
  libboost1.81-dev libssl-dev libyaml-cpp-dev libre2-dev libhiredis-dev
  libspdlog-dev libfmt-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  libnghttp2-dev liburing-dev
  redis-server curl python3 python3-h2 nlohmann-json3-dev nodejs nghttp2-client
)
# liburing-dev: the io_uring build (GH_IO_URING, the release-uring preset).
# python3-h2: the HTTP/2 services the integration tests script (tests/fixtures/h2/server.py).
# nghttp2-client: h2load, the load generator the allocation test drives (and the benchmarks).
# npm: Debian's package, unless the installed nodejs already ships it (it then conflicts).
command -v npm >/dev/null || packages+=(npm)
if [[ "${1:-}" == "--bench" ]]; then packages+=(nginx-light haproxy wrk linux-perf); fi
# groff: the install test lints the generated man page with it.
packages+=(groff-base)
# chromium: the dashboard's browser test (tests/browser) drives it headless.
packages+=(chromium)
# prometheus: its promtool checks the /metrics scrape in the admin tests.
packages+=(prometheus)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "deps: every package is installed"
else
  echo "deps: installing ${missing[*]}"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# HTTP/2 hardening comes from Debian's patched libnghttp2 1.52: deb12u1 adds the stream reset
# rate limit (rapid reset, CVE-2023-44487), deb12u2 bounds CONTINUATION frames (CVE-2024-28182),
# deb12u3 fixes a frame-state assertion (CVE-2026-27135). An older build is upgraded.
nghttp2_version=$(dpkg-query -W -f='${Version}' libnghttp2-14 2>/dev/null || true)
if ! dpkg --compare-versions "$nghttp2_version" ge "1.52.0-1+deb12u3"; then
  echo "deps: libnghttp2 $nghttp2_version is older than 1.52.0-1+deb12u3; upgrading"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends libnghttp2-14 libnghttp2-dev
  nghttp2_version=$(dpkg-query -W -f='${Version}' libnghttp2-14)
  dpkg --compare-versions "$nghttp2_version" ge "1.52.0-1+deb12u3" ||
    { echo "deps: libnghttp2 $nghttp2_version lacks the HTTP/2 DoS fixes (need 1.52.0-1+deb12u3)" >&2; exit 1; }
fi

# The tests' npm packages: `npm ci` in each folder when node_modules is missing or
# package-lock.json changed since the last install (its hash is kept in node_modules). Tests never
# run npm themselves.
#   tests/fixtures/jose  jose, to mint JWTs
#   tests/fixtures/ws    ws, a WebSocket service and client
#   tests/fixtures/grpc  @grpc/grpc-js, a gRPC service and client
#   tests/browser        puppeteer-core, to drive chromium
root="$(cd "$(dirname "$0")/.." && pwd)"
for dir in tests/fixtures/jose tests/fixtures/ws tests/fixtures/grpc tests/browser; do
  stamp="$root/$dir/node_modules/.package-lock.sha256"
  lock_hash=$(sha256sum "$root/$dir/package-lock.json" | cut -d' ' -f1)
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_hash" ]]; then
    echo "deps: npm ci in $dir"
    npm ci --no-audit --no-fund --loglevel=error --prefix "$root/$dir"
    echo "$lock_hash" > "$stamp"
  else
    echo "deps: $dir/node_modules is up to date"
  fi
done
