#!/usr/bin/env bash
# Builds the HTTP parser fuzz target with libFuzzer + ASan + UBSan, outside the CMake build,
# and runs it for a bounded time.
#
#   fuzz/build.sh [SECONDS]        default 60; 0 builds only
#
# Output and the growing corpus live in build/fuzz/ (override with FUZZ_OUT). Extra libFuzzer
# flags can be passed in FUZZ_FLAGS, e.g. FUZZ_FLAGS="-jobs=2 -workers=2".
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
out="${FUZZ_OUT:-$root/build/fuzz}"
cxx="${CXX_FUZZ:-clang++-14}"

mkdir -p "$out/corpus"
"$cxx" -std=c++20 -O1 -g -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -Wall -Wextra -Werror -Wno-missing-field-initializers \
  -I"$root/src" \
  "$root/fuzz/http_parser_fuzz.cc" "$root/src/http/parser.cc" "$root/src/http/fields.cc" \
  -o "$out/http_parser_fuzz"
echo "built $out/http_parser_fuzz"

# Seed the corpus once with a few well-formed messages so the fuzzer starts past the basics.
if [ -z "$(ls -A "$out/corpus")" ]; then
  seed() { printf "$2" > "$out/corpus/$1"; }
  seed get 'GET /a?b=1 HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive\r\n\r\n'
  seed post_cl 'POST /up HTTP/1.1\r\nHost: a.test:8080\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello'
  seed post_chunked 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
  seed absolute '\r\nOPTIONS http://[::1]:80/x?y HTTP/1.0\r\nHost: [::1]:80\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n'
  seed response 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n'
  seed response_chunked 'HTTP/1.0 304 \r\nX: y\r\n\r\n'
  seed chunked '4;a=b\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\n'
fi

if [ "$seconds" -gt 0 ]; then
  # shellcheck disable=SC2086
  "$out/http_parser_fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
    -dict="$root/fuzz/http.dict" -print_final_stats=1 ${FUZZ_FLAGS:-} "$out/corpus"
fi
