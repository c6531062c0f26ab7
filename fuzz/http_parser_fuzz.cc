// libFuzzer target for the HTTP/1.1 head parser and the chunked decoder (src/http/parser.h).
// Feeds the same bytes to parse_request, parse_response and ChunkedDecoder, under the default
// limits and under tiny ones, and checks the invariants the proxy engine relies on: heads never
// extend past the input, every view points into the input, a Complete head stays Complete when
// cut to head_size and is Partial one byte earlier, and the decoder's result does not depend on
// how the input is split.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "http/parser.h"

namespace {

using namespace gh::http;

bool inside(std::string_view outer, std::string_view v) {
  if (v.empty()) return true;
  return v.data() >= outer.data() && v.data() + v.size() <= outer.data() + outer.size();
}

void check_fields(std::string_view head, const Fields& fields, const ParseLimits& limits) {
  FUZZ_CHECK(fields.size() <= limits.max_headers);
  for (const Field& f : fields) {
    FUZZ_CHECK(!f.name.empty());
    FUZZ_CHECK(inside(head, f.name));
    FUZZ_CHECK(inside(head, f.value));
    for (char c : f.value) FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0');
    if (!f.value.empty()) FUZZ_CHECK(f.value.front() != ' ' && f.value.back() != ' ');
  }
}

void check_request(std::string_view buf, const ParseLimits& limits) {
  RequestHead h;
  const ParseOutcome r = parse_request(buf, limits, h);
  if (r.state == ParseState::Invalid) {
    FUZZ_CHECK(r.status == 400 || r.status == 414 || r.status == 431 || r.status == 501);
    return;
  }
  if (r.state == ParseState::Partial) {
    FUZZ_CHECK(buf.size() <= limits.max_header_bytes);
    RequestHead p;
    FUZZ_CHECK(parse_request(buf.substr(0, buf.size() / 2), limits, p).state == ParseState::Partial);
    return;
  }
  FUZZ_CHECK(h.head_size > 0 && h.head_size <= buf.size());
  FUZZ_CHECK(h.head_size <= limits.max_header_bytes);
  const std::string_view head = buf.substr(0, h.head_size);
  FUZZ_CHECK(head.size() >= 4 && head.substr(head.size() - 4) == "\r\n\r\n");
  FUZZ_CHECK(!h.method.empty() && inside(head, h.method));
  FUZZ_CHECK(!h.target.empty() && inside(head, h.target));
  FUZZ_CHECK(h.target.size() <= limits.max_uri_bytes);
  FUZZ_CHECK(h.path == "/" || inside(head, h.path));
  FUZZ_CHECK(inside(head, h.query));
  FUZZ_CHECK(inside(head, h.host));
  FUZZ_CHECK(h.version_minor == 0 || h.version_minor == 1);
  FUZZ_CHECK(h.body != BodyKind::UntilClose);
  if (h.body != BodyKind::Length) FUZZ_CHECK(h.content_length == 0);
  if (h.body == BodyKind::Chunked) FUZZ_CHECK(h.version_minor == 1 && !h.fields.has("content-length"));
  if (h.version_minor == 1) FUZZ_CHECK(h.fields.count("host") == 1);
  check_fields(head, h.fields, limits);

  // The head alone parses the same; one byte less is not yet a head.
  RequestHead again;
  const ParseOutcome r2 = parse_request(head, limits, again);
  FUZZ_CHECK(r2.state == ParseState::Complete && again.head_size == h.head_size);
  FUZZ_CHECK(again.body == h.body && again.content_length == h.content_length);
  FUZZ_CHECK(parse_request(head.substr(0, head.size() - 1), limits, again).state == ParseState::Partial);
}

void check_response(std::string_view buf, const ParseLimits& limits, bool head_method) {
  ResponseHead h;
  const ParseOutcome r = parse_response(buf, limits, head_method, h);
  if (r.state == ParseState::Invalid) {
    FUZZ_CHECK(r.status == 502);
    return;
  }
  if (r.state == ParseState::Partial) {
    FUZZ_CHECK(buf.size() <= limits.max_header_bytes);
    ResponseHead p;
    FUZZ_CHECK(parse_response(buf.substr(0, buf.size() / 2), limits, head_method, p).state == ParseState::Partial);
    return;
  }
  FUZZ_CHECK(h.head_size > 0 && h.head_size <= buf.size() && h.head_size <= limits.max_header_bytes);
  const std::string_view head = buf.substr(0, h.head_size);
  FUZZ_CHECK(h.status >= 100 && h.status <= 599);
  FUZZ_CHECK(inside(head, h.reason));
  if (head_method || h.status < 200 || h.status == 204 || h.status == 304) FUZZ_CHECK(h.body == BodyKind::None);
  if (h.body == BodyKind::UntilClose) FUZZ_CHECK(!h.keep_alive);
  if (h.body != BodyKind::Length) FUZZ_CHECK(h.content_length == 0);
  check_fields(head, h.fields, limits);

  ResponseHead again;
  FUZZ_CHECK(parse_response(head, limits, head_method, again).state == ParseState::Complete);
  FUZZ_CHECK(again.head_size == h.head_size && again.body == h.body);
  FUZZ_CHECK(parse_response(head.substr(0, head.size() - 1), limits, head_method, again).state ==
             ParseState::Partial);
}

struct Decoded {
  std::string data;
  std::size_t consumed = 0;
  bool done = false;
  bool error = false;
};

// Decodes `in` handed over in pieces of `piece` bytes (the last one possibly shorter).
Decoded decode(std::string_view in, std::size_t piece) {
  ChunkedDecoder d;
  Decoded out;
  std::size_t pos = 0;
  while (pos < in.size() && !out.done && !out.error) {
    std::string_view part = in.substr(pos, piece);
    std::size_t used = 0;
    while (used < part.size()) {
      const std::string_view rest = part.substr(used);
      const ChunkedDecoder::Step s = d.feed(rest);
      FUZZ_CHECK(s.consumed <= rest.size());
      FUZZ_CHECK(inside(rest.substr(0, s.consumed), s.data));
      FUZZ_CHECK(!(s.done && s.error));
      out.data.append(s.data);
      used += s.consumed;
      if (s.error) out.error = true;
      if (s.done) out.done = true;
      if (s.done || s.error) break;
      FUZZ_CHECK(s.consumed > 0);
    }
    out.consumed += used;
    pos += used;
    if (!out.error && !out.done) FUZZ_CHECK(used == part.size());
  }
  FUZZ_CHECK(d.done() == out.done);
  FUZZ_CHECK(d.payload_bytes() == out.data.size());
  return out;
}

void check_chunked(std::string_view in, std::size_t piece) {
  const Decoded whole = decode(in, in.size() + 1);
  const Decoded split = decode(in, piece);
  const Decoded bytes = decode(in, 1);
  for (const Decoded* d : {&split, &bytes}) {
    FUZZ_CHECK(d->done == whole.done);
    FUZZ_CHECK(d->error == whole.error);
    FUZZ_CHECK(d->data == whole.data);
    FUZZ_CHECK(d->consumed == whole.consumed);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view buf(reinterpret_cast<const char*>(data), size);

  const ParseLimits defaults;
  ParseLimits tiny;
  tiny.max_uri_bytes = 32;
  tiny.max_header_bytes = 160;
  tiny.max_headers = 6;

  check_request(buf, defaults);
  check_request(buf, tiny);
  check_response(buf, defaults, false);
  check_response(buf, tiny, size % 2 == 0);
  check_chunked(buf, 1 + (size > 0 ? data[0] % 13 : 0));
  return 0;
}
