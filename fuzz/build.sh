#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer + ASan + UBSan, outside the CMake build, and runs
# each for a bounded time:
#   http_parser_fuzz  the HTTP/1.1 parser and chunked decoder (src/http/parser.h)
#   resp_reader_fuzz  the Redis reply reader (src/policies/rate_limit/resp_reader.h)
#
#   fuzz/build.sh [SECONDS]        default 60 per target; 0 builds only
#
# Output and the growing corpora live in build/fuzz/ (override with FUZZ_OUT). Extra libFuzzer
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
mkdir -p "$out/resp_corpus"
"$cxx" -std=c++20 -O1 -g -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -Wall -Wextra -Werror -Wno-missing-field-initializers \
  -I"$root/src" -isystem /usr/include/hiredis \
  "$root/fuzz/resp_reader_fuzz.cc" "$root/src/policies/rate_limit/resp_reader.cc" "$root/src/core/result.cc" \
  "$root/src/core/check.cc" -lhiredis -o "$out/resp_reader_fuzz"
echo "built $out/resp_reader_fuzz"

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

if [ -z "$(ls -A "$out/resp_corpus")" ]; then
  rseed() { printf "$2" > "$out/resp_corpus/$1"; }
  rseed script '*2\r\n:3\r\n:59000\r\n'
  rseed mixed '+OK\r\n-ERR x\r\n$3\r\nabc\r\n$-1\r\n*-1\r\n*0\r\n'
  rseed nested '*3\r\n:1\r\n*2\r\n$1\r\na\r\n$0\r\n\r\n*1\r\n+s\r\n'
fi

if [ "$seconds" -gt 0 ]; then
  # shellcheck disable=SC2086
  "$out/http_parser_fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
    -dict="$root/fuzz/http.dict" -print_final_stats=1 ${FUZZ_FLAGS:-} "$out/corpus"
  # shellcheck disable=SC2086
  "$out/resp_reader_fuzz" -max_total_time="$seconds" -max_len=1024 -timeout=10 \
    -print_final_stats=1 ${FUZZ_FLAGS:-} "$out/resp_corpus"
fi
