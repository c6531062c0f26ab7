// libFuzzer target for the chunked body decoder alone (http::ChunkedDecoder, src/http/parser.h).
// The input is either decoded as it is, or (first byte odd) read as a recipe for a well-formed
// chunked body: payload, chunk sizes, extensions and trailers, possibly with one byte changed.
// Either way the bytes are fed in splits the input chooses, and the outcome must equal that of a
// reference decoder written from RFC 9112 §7.1 and the decoder's documented limits: the same
// payload, done or failed or still waiting, and the same count of bytes consumed when done.
// A well-formed body left unchanged must decode to exactly the payload it was built from.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "http/parser.h"

namespace {

using gh::http::ChunkedDecoder;

// The decoder's limits (src/http/parser.cc).
constexpr std::size_t kMaxLine = 4 * 1024;      // chunk-size line, with extensions and its CR
constexpr std::size_t kMaxTrailer = 16 * 1024;  // trailer section, every byte of it
constexpr std::size_t kMaxDigits = 16;

enum class End { Done, Error, More };

struct Outcome {
  End end = End::More;
  std::string payload;
  std::size_t consumed = 0;  // when Done: the bytes up to and including the final CRLF
};

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
int hex(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }
// tchar (RFC 9110 §5.6.2).
bool is_tchar(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}
// field-vchar / SP / HTAB / obs-text (RFC 9110 §5.5).
bool is_value(unsigned char c) { return c == ' ' || c == '\t' || (c >= 0x21 && c != 0x7f); }

// Decodes `in` in one pass: a whole line at a time, failing as soon as a prefix cannot continue
// into a valid body.
Outcome reference(std::string_view in) {
  Outcome o;
  std::size_t p = 0;
  auto fail = [&] {
    o.end = End::Error;
    return o;
  };
  for (;;) {
    // chunk-size [ *WS ";" *field-value-byte ] CRLF, at most kMaxLine bytes before the LF.
    std::size_t q = p;
    std::uint64_t size = 0;
    while (q < in.size() && is_hex(in[q])) {
      if (q - p == kMaxDigits) return fail();
      size = size << 4 | static_cast<std::uint64_t>(hex(in[q]));
      ++q;
    }
    if (q == in.size()) return q - p > kMaxLine ? fail() : o;
    if (q == p) return fail();
    std::size_t cr = q;
    if (in[q] != '\r') {
      while (cr < in.size() && (in[cr] == ' ' || in[cr] == '\t')) ++cr;
      if (cr < in.size() && in[cr] != ';') return fail();
      if (cr < in.size()) ++cr;
      while (cr < in.size() && is_value(static_cast<unsigned char>(in[cr]))) ++cr;
    }
    // Every byte read counts, the one that ends the line (or fails) included.
    if (cr - p + (cr < in.size() ? 1 : 0) > kMaxLine) return fail();
    if (cr == in.size()) return o;
    if (in[cr] != '\r') return fail();
    if (cr + 1 == in.size()) return o;
    if (in[cr + 1] != '\n') return fail();
    p = cr + 2;
    if (size == 0) break;
    if (in.size() - p < size) {
      o.payload.append(in.substr(p));
      return o;
    }
    o.payload.append(in.substr(p, size));
    p += size;
    for (const char c : {'\r', '\n'}) {
      if (p == in.size()) return o;
      if (in[p] != c) return fail();
      ++p;
    }
  }
  // trailer-section: *( field-name ":" *field-value-byte CRLF ) CRLF
  const std::size_t trailer = p;
  for (;;) {
    std::size_t q = p;
    while (q < in.size() && is_tchar(static_cast<unsigned char>(in[q]))) ++q;
    if (q > p) {
      if (q < in.size() && in[q] != ':') return fail();
      if (q < in.size()) ++q;
      while (q < in.size() && is_value(static_cast<unsigned char>(in[q]))) ++q;
    }
    if (q - trailer + (q < in.size() ? 1 : 0) > kMaxTrailer) return fail();
    if (q == in.size()) return o;
    if (in[q] != '\r') return fail();
    if (q + 1 == in.size()) return o;
    if (q + 2 - trailer > kMaxTrailer) return fail();
    if (in[q + 1] != '\n') return fail();
    const bool empty = q == p;
    p = q + 2;
    if (empty) {  // the empty line: the end
      o.end = End::Done;
      o.consumed = p;
      return o;
    }
  }
}

// Feeds `in` in the pieces `cuts` gives (sizes, used in a cycle), the way the proxy does: each
// piece is offered until the decoder has taken all of it, finished or failed.
Outcome decode(std::string_view in, const std::vector<std::size_t>& cuts) {
  ChunkedDecoder d;
  Outcome o;
  std::size_t pos = 0, turn = 0;
  while (pos < in.size() && o.end == End::More) {
    const std::string_view piece = in.substr(pos, cuts.empty() ? in.size() : cuts[turn++ % cuts.size()]);
    std::size_t used = 0;
    while (used < piece.size()) {
      const std::string_view rest = piece.substr(used);
      const ChunkedDecoder::Step s = d.feed(rest);
      FUZZ_CHECK(s.consumed <= rest.size());
      FUZZ_CHECK(s.data.empty() || (s.data.data() >= rest.data() && s.data.data() + s.data.size() <= rest.data() + s.consumed));
      FUZZ_CHECK(!(s.done && s.error));
      o.payload.append(s.data);
      used += s.consumed;
      if (s.error) {
        o.end = End::Error;
        break;
      }
      if (s.done) {
        o.end = End::Done;
        break;
      }
      FUZZ_CHECK(s.consumed > 0);
    }
    pos += used;
  }
  if (o.end == End::Done) o.consumed = pos;
  FUZZ_CHECK(d.done() == (o.end == End::Done));
  FUZZ_CHECK(d.payload_bytes() == o.payload.size());
  // A finished decoder stays finished and takes nothing more.
  const ChunkedDecoder::Step after = d.feed("0\r\n\r\n");
  if (o.end == End::Done) FUZZ_CHECK(after.done && after.consumed == 0 && after.data.empty());
  if (o.end == End::Error) FUZZ_CHECK(after.error && after.consumed == 0);
  return o;
}

std::string hex_size(std::uint64_t n, bool upper, std::size_t zeros) {
  std::string digits;
  do {
    digits.insert(digits.begin(), (upper ? "0123456789ABCDEF" : "0123456789abcdef")[n & 15]);
    n >>= 4;
  } while (n != 0);
  return std::string(zeros, '0') + digits;
}

// A valid chunked body built from the fuzzer's choices; `payload` receives what it carries.
std::string build(FuzzedDataProvider& in, std::string& payload) {
  std::string body;
  const int chunks = in.ConsumeIntegralInRange(0, 8);
  for (int i = 0; i < chunks; ++i) {
    const std::string data = in.ConsumeRandomLengthString(600);
    if (data.empty()) continue;
    payload += data;
    body += hex_size(data.size(), in.ConsumeBool(), in.ConsumeIntegralInRange<std::size_t>(0, 3));
    if (in.ConsumeBool()) body += std::string(in.ConsumeIntegralInRange(0, 2), ' ') + ";ext=\"v a\";x";
    body += "\r\n" + data + "\r\n";
  }
  body += std::string(in.ConsumeIntegralInRange<std::size_t>(1, 3), '0');
  if (in.ConsumeBool()) body += ";last";
  body += "\r\n";
  const int trailers = in.ConsumeIntegralInRange(0, 3);
  for (int i = 0; i < trailers; ++i) body += "X-T" + std::to_string(i) + ": v\t" + std::to_string(i) + "\r\n";
  return body + "\r\n";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  FuzzedDataProvider in(data + 1, size - 1);
  std::vector<std::size_t> cuts;
  const int ncuts = in.ConsumeIntegralInRange(0, 4);
  for (int i = 0; i < ncuts; ++i) cuts.push_back(in.ConsumeIntegralInRange<std::size_t>(1, 64));

  std::string body, payload;
  bool intact = false;
  if (data[0] & 1) {
    body = build(in, payload);
    intact = in.ConsumeBool();
    if (!intact && !body.empty()) {
      const std::size_t at = in.ConsumeIntegralInRange<std::size_t>(0, body.size() - 1);
      body[at] = static_cast<char>(in.ConsumeIntegral<std::uint8_t>());
    }
    body += in.ConsumeRemainingBytesAsString();  // what follows the body (a next request)
  } else {
    body = in.ConsumeRemainingBytesAsString();
  }

  const Outcome want = reference(body);
  for (const auto& c : {std::vector<std::size_t>{}, std::vector<std::size_t>{1}, cuts}) {
    const Outcome got = decode(body, c);
    FUZZ_CHECK(got.end == want.end);
    FUZZ_CHECK(got.payload == want.payload);
    FUZZ_CHECK(got.consumed == want.consumed);
  }
  if (intact) {
    FUZZ_CHECK(want.end == End::Done);
    FUZZ_CHECK(want.payload == payload);
  }
  return 0;
}
