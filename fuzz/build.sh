#!/usr/bin/env bash
# Builds the libFuzzer targets with the CMake `fuzz` preset (clang++-14; libFuzzer + ASan +
# UBSan) and runs each for a bounded time:
#   http_parser_fuzz  the HTTP/1.1 head parser and chunked decoder (src/http/parser.h)
#   chunked_fuzz      the chunked decoder alone, against a reference decoder, in random splits
#   resp_reader_fuzz  the Redis reply reader (src/clients/redis/resp_reader.h)
#   normalize_fuzz    request path normalization (src/routing/normalize.h), against a reference
#   jwt_fuzz          JWT parsing and verification (src/policies/jwt/jwt.h) with fixed keys
#   config_fuzz       the config loader: ${VAR} substitution, YAML, every policy's options
#   tls_hello_fuzz    a TLS listener's first bytes: OpenSSL's ClientHello parsing and gatehouse's
#                     SNI, certificate choice and ALPN callbacks (src/net/tls.h)
#   http2_session_fuzz  an HTTP/2 client's frames, over loopback, to a real session on a worker
#                     with a real service (src/proxy/http2_session.h): ends, and sends valid heads
#
#   fuzz/build.sh [SECONDS]        default 60 per target; 0 builds only
#
# FUZZ_TARGETS="chunked_fuzz jwt_fuzz" runs only those. Each target starts from its seed corpus
# in fuzz/corpus/<target>/ (small, in git) and the corpus it grew before, in
# build/fuzz-corpus/<target>/ (new inputs go there, never to git). Its libFuzzer log goes to
# build/fuzz-logs/<target>.log and a crashing input to build/fuzz-artifacts/. One line per
# target tells its runs, time and result; a crash, a hang (-timeout) or running out of memory
# prints the end of the log and makes the script exit 1, after the other targets have run.
# Extra libFuzzer flags can be passed in FUZZ_FLAGS, e.g. FUZZ_FLAGS="-jobs=2 -workers=2".
# Why CMake: the jwt and config targets need most of the libraries (OpenSSL, yaml-cpp, RE2,
# Boost.Asio through the policies); the preset builds them from the same CMakeLists as the
# gateway, instrumented, instead of a hand-kept list of source files.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: fuzz/build.sh [SECONDS]   (got \"$seconds\")" >&2
  exit 2
fi
all=(http_parser_fuzz chunked_fuzz resp_reader_fuzz normalize_fuzz jwt_fuzz config_fuzz tls_hello_fuzz
     http2_session_fuzz)
read -r -a targets <<< "${FUZZ_TARGETS:-${all[*]}}"

# Per-target input size cap and dictionary.
declare -A max_len=([http_parser_fuzz]=4096 [chunked_fuzz]=4096 [resp_reader_fuzz]=1024
                    [normalize_fuzz]=1024 [jwt_fuzz]=2048 [config_fuzz]=4096 [tls_hello_fuzz]=2048
                    [http2_session_fuzz]=4096)
declare -A dict=([http_parser_fuzz]=http.dict [chunked_fuzz]=http.dict [normalize_fuzz]=normalize.dict
                 [jwt_fuzz]=jwt.dict [config_fuzz]=config.dict
                 [http2_session_fuzz]=http2.dict)

cd "$root"
cmake --preset fuzz > /dev/null
cmake --build --preset fuzz -j "$(nproc)" --target "${targets[@]}"
bin="$root/build/fuzz/fuzz"
for t in "${targets[@]}"; do echo "built $bin/$t"; done
[ "$seconds" -gt 0 ] || exit 0

corpora="$root/build/fuzz-corpus"
logs="$root/build/fuzz-logs"
artifacts="$root/build/fuzz-artifacts"
mkdir -p "$logs" "$artifacts"
status=0
for t in "${targets[@]}"; do
  mkdir -p "$corpora/$t"
  flags=(-max_total_time="$seconds" -max_len="${max_len[$t]:-4096}" -timeout=10 -rss_limit_mb=2048
         -print_final_stats=1 -artifact_prefix="$artifacts/$t-")
  [ -z "${dict[$t]:-}" ] || flags+=(-dict="$root/fuzz/${dict[$t]}")
  start=$(date +%s)
  rc=0
  # shellcheck disable=SC2086
  "$bin/$t" "${flags[@]}" ${FUZZ_FLAGS:-} "$corpora/$t" "$root/fuzz/corpus/$t" > "$logs/$t.log" 2>&1 || rc=$?
  elapsed=$(($(date +%s) - start))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -n 1)
  [ -n "$runs" ] || runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$logs/$t.log" | tail -n 1)
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    status=1
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$logs/$t.log" | tail -n 1)
    result="FAILED (exit $rc${artifact:+; input $artifact})"
    echo "----- $t: end of $logs/$t.log"
    tail -n 60 "$logs/$t.log"
    echo "----- reproduce: $bin/$t ${artifact:-<input>}"
  fi
  printf 'fuzz: %-17s runs %-9s time %4ss  corpus %5s files  %s\n' \
    "$t" "${runs:-?}" "$elapsed" "$(find "$corpora/$t" -type f | wc -l)" "$result"
done
exit $status
