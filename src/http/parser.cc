// Strict HTTP/1.1 head parser and chunked decoder (RFC 9112).
// One forward pass over the buffer with byte-class tables; views into the buffer, no copies.
// Framing facts (Host, Content-Length, Transfer-Encoding, Connection, ...) are gathered while the
// fields are read and judged once the head is complete, so the status answered for a bad message
// does not depend on how it was split across reads.
#include "http/parser.h"

#include <array>
#include <cstring>
#include <limits>

#include "core/strings.h"

namespace gh::http {
namespace {

// ---------------------------------------------------------------------------------------------
// Byte classes

using ByteTable = std::array<bool, 256>;

constexpr bool is_alpha(unsigned c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_digit_u(unsigned c) { return c >= '0' && c <= '9'; }

// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
//         / DIGIT / ALPHA
constexpr ByteTable make_tchar() {
  ByteTable t{};
  for (unsigned c = 0; c < 256; ++c) t[c] = is_alpha(c) || is_digit_u(c);
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}

// field-value bytes: HTAB, SP, VCHAR, obs-text. Also the reason phrase and chunk extensions.
constexpr ByteTable make_field_value() {
  ByteTable t{};
  for (unsigned c = 0; c < 256; ++c) t[c] = c == '\t' || (c >= 0x20 && c != 0x7f);
  return t;
}

// request-target bytes: VCHAR except '#' (a fragment is never sent), plus obs-text, which some
// clients send raw in paths; path normalization decides about those later.
constexpr ByteTable make_target() {
  ByteTable t{};
  for (unsigned c = 0; c < 256; ++c) t[c] = c > 0x20 && c != 0x7f && c != '#';
  return t;
}

// reg-name bytes accepted in a Host: unreserved only. RFC 3986 also allows sub-delims and
// percent-encoding there, but no real host name uses them and they only confuse matching.
constexpr ByteTable make_host() {
  ByteTable t{};
  for (unsigned c = 0; c < 256; ++c) t[c] = is_alpha(c) || is_digit_u(c) || c == '-' || c == '.' || c == '_' || c == '~';
  return t;
}

constexpr ByteTable kTchar = make_tchar();
constexpr ByteTable kFieldValue = make_field_value();
constexpr ByteTable kTarget = make_target();
constexpr ByteTable kHost = make_host();

inline bool in(const ByteTable& t, char c) noexcept { return t[static_cast<unsigned char>(c)]; }
inline bool is_ws(char c) noexcept { return c == ' ' || c == '\t'; }
inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

constexpr char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? char(c + ('a' - 'A')) : c; }

// Case-insensitive comparison against a lowercase literal.
inline bool is_named(std::string_view s, std::string_view lower_literal) noexcept {
  if (s.size() != lower_literal.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (lower(s[i]) != lower_literal[i]) return false;
  return true;
}

inline std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

// Calls fn(element) for each element of a comma-separated list, OWS trimmed, empty ones included.
template <class Fn>
void for_each_element(std::string_view list, Fn&& fn) {
  for (;;) {
    const std::size_t comma = list.find(',');
    fn(trim(list.substr(0, comma)));
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

// Word-at-a-time scanning: skips 8 bytes at once while none of them can end or break a field
// value (or a request-target), then leaves the exact decision to the byte tables.
constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
constexpr std::uint64_t kHighs = 0x8080808080808080ULL;

inline std::uint64_t load8(const char* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}
// Nonzero when some byte of w is below n (n <= 128).
constexpr std::uint64_t any_below(std::uint64_t w, unsigned n) noexcept { return (w - kOnes * n) & ~w & kHighs; }
// Nonzero when some byte of w equals b.
constexpr std::uint64_t any_equal(std::uint64_t w, unsigned b) noexcept {
  const std::uint64_t x = w ^ (kOnes * b);
  return (x - kOnes) & ~x & kHighs;
}

// Advances p over bytes that are plainly field-value bytes (SP, VCHAR, obs-text; HTAB is left
// to the byte loop).
inline const char* skip_value_words(const char* p, const char* end) noexcept {
  while (end - p >= 8) {
    const std::uint64_t w = load8(p);
    if (any_below(w, 0x20) | any_equal(w, 0x7f)) break;
    p += 8;
  }
  return p;
}

// Same for a request-target: stops near SP, controls, DEL and '#'.
inline const char* skip_target_words(const char* p, const char* end) noexcept {
  while (end - p >= 8) {
    const std::uint64_t w = load8(p);
    if (any_below(w, 0x21) | any_equal(w, 0x7f) | any_equal(w, '#')) break;
    p += 8;
  }
  return p;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// ---------------------------------------------------------------------------------------------
// Outcomes

constexpr ParseOutcome kComplete{ParseState::Complete, 0, ""};
constexpr ParseOutcome kPartial{ParseState::Partial, 0, ""};
constexpr ParseOutcome invalid(int status, const char* detail) { return {ParseState::Invalid, status, detail}; }

// Largest accepted Content-Length: fits a signed 64-bit integer, so no consumer can see it negative.
constexpr std::uint64_t kMaxContentLength = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

// ---------------------------------------------------------------------------------------------
// Head scanning

// The readable window of the buffer. `end` stops at max_header_bytes; running into it means
// "read more" unless the buffer already holds more than that, in which case the head is too big.
struct Cursor {
  const char* begin;
  const char* p;
  const char* end;
  bool truncated;  // the buffer extends past `end`

  ParseOutcome more() const noexcept {
    return truncated ? invalid(431, "header section too large") : kPartial;
  }
};

Cursor make_cursor(std::string_view buf, const ParseLimits& limits) noexcept {
  const bool truncated = buf.size() > limits.max_header_bytes;
  const std::size_t n = truncated ? limits.max_header_bytes : buf.size();
  return Cursor{buf.data(), buf.data(), buf.data() + n, truncated};
}

// What the fields say about framing and the connection, judged after the head is complete.
struct Framing {
  std::size_t host_count = 0;
  std::string_view host;

  std::size_t cl_fields = 0;
  bool cl_seen = false;          // content_length holds the first value
  std::uint64_t content_length = 0;
  const char* cl_error = nullptr;

  bool te = false;
  bool te_last_chunked = false;
  bool te_other = false;        // a coding other than chunked
  std::size_t te_chunked = 0;   // how many times chunked is listed
  const char* te_error = nullptr;

  bool conn_close = false;
  bool conn_keep_alive = false;
  bool conn_upgrade = false;
  bool upgrade_field = false;
  bool expect_continue = false;
};

void note_content_length(std::string_view value, Framing& f) {
  ++f.cl_fields;
  for_each_element(value, [&](std::string_view el) {
    if (f.cl_error) return;
    if (el.empty()) {
      f.cl_error = "empty content-length";
      return;
    }
    std::uint64_t v = 0;
    for (char c : el) {
      if (!is_digit(c)) {
        f.cl_error = "content-length not a number";
        return;
      }
      const auto d = static_cast<std::uint64_t>(c - '0');
      if (v > (kMaxContentLength - d) / 10) {
        f.cl_error = "content-length too large";
        return;
      }
      v = v * 10 + d;
    }
    if (!f.cl_seen) {
      f.cl_seen = true;
      f.content_length = v;
    } else if (v != f.content_length) {
      f.cl_error = "conflicting content-length";  // identical repeats are harmless
    }
  });
}

void note_transfer_encoding(std::string_view value, Framing& f) {
  f.te = true;
  for_each_element(value, [&](std::string_view el) {
    if (el.empty()) {
      if (!f.te_error) f.te_error = "empty transfer-coding";
      f.te_last_chunked = false;
      return;
    }
    if (is_named(el, "chunked")) {
      ++f.te_chunked;
      f.te_last_chunked = true;
      return;
    }
    // transfer-coding = token *( OWS ";" OWS transfer-parameter ); parameters are not judged
    // further: a coding other than chunked is refused or passed through whole anyway.
    std::size_t n = 0;
    while (n < el.size() && in(kTchar, el[n])) ++n;
    if (n == 0 || (n < el.size() && el[n] != ';' && !is_ws(el[n]))) {
      if (!f.te_error) f.te_error = "invalid transfer-coding";
    }
    f.te_other = true;
    f.te_last_chunked = false;
  });
}

void note_connection(std::string_view value, Framing& f) {
  for_each_element(value, [&](std::string_view el) {
    switch (el.size()) {
      case 5: f.conn_close |= is_named(el, "close"); break;
      case 7: f.conn_upgrade |= is_named(el, "upgrade"); break;
      case 10: f.conn_keep_alive |= is_named(el, "keep-alive"); break;
      default: break;
    }
  });
}

// Records the framing-relevant fields; everything else is only stored.
inline void classify(std::string_view name, std::string_view value, Framing& f) {
  switch (name.size()) {
    case 4:
      if (is_named(name, "host")) {
        if (f.host_count++ == 0) f.host = value;
      }
      break;
    case 6:
      if (is_named(name, "expect")) f.expect_continue |= is_named(value, "100-continue");
      break;
    case 7:
      if (is_named(name, "upgrade")) f.upgrade_field = true;
      break;
    case 10:
      if (is_named(name, "connection")) note_connection(value, f);
      break;
    case 14:
      if (is_named(name, "content-length")) note_content_length(value, f);
      break;
    case 17:
      if (is_named(name, "transfer-encoding")) note_transfer_encoding(value, f);
      break;
    default:
      break;
  }
}

// Reads field lines up to and including the empty line that ends the head.
// Complete: c.p is past the final CRLF. Otherwise the outcome to return as is.
ParseOutcome parse_fields(Cursor& c, std::size_t max_headers, Fields& fields, Framing& f) {
  const char* p = c.p;
  const char* const end = c.end;
  for (;;) {
    if (p == end) return c.more();
    if (*p == '\r') {
      if (p + 1 == end) return c.more();
      if (p[1] != '\n') return invalid(400, "bare CR");
      c.p = p + 2;
      return kComplete;
    }
    if (*p == '\n') return invalid(400, "bare LF");
    if (is_ws(*p)) return invalid(400, "obs-fold");

    const char* const name_start = p;
    while (p < end && in(kTchar, *p)) ++p;
    if (p == end) return c.more();
    if (*p != ':') {
      if (p == name_start) return invalid(400, "invalid field name");
      return invalid(400, is_ws(*p) ? "whitespace before colon" : "invalid field name");
    }
    if (p == name_start) return invalid(400, "empty field name");
    const std::string_view name(name_start, static_cast<std::size_t>(p - name_start));
    ++p;

    while (p < end && is_ws(*p)) ++p;
    const char* const value_start = p;
    p = skip_value_words(p, end);
    while (p < end && in(kFieldValue, *p)) ++p;
    if (p == end) return c.more();
    if (*p != '\r') return invalid(400, *p == '\n' ? "bare LF" : *p == '\0' ? "NUL in field value" : "control byte in field value");
    if (p + 1 == end) return c.more();
    if (p[1] != '\n') return invalid(400, "bare CR");
    const char* value_end = p;
    while (value_end > value_start && is_ws(value_end[-1])) --value_end;
    p += 2;

    if (fields.size() >= max_headers) return invalid(431, "too many header fields");
    const std::string_view value(value_start, static_cast<std::size_t>(value_end - value_start));
    fields.add(name, value);
    classify(name, value, f);
  }
}

// Matches "HTTP/1.0" or "HTTP/1.1" at c.p. Complete: c.p is past it and minor is set.
ParseOutcome parse_version(Cursor& c, int& minor, int status, const char* detail) {
  static constexpr std::string_view kPrefix = "HTTP/1.";
  const char* p = c.p;
  for (char want : kPrefix) {
    if (p == c.end) return c.more();
    if (*p != want) return invalid(status, detail);
    ++p;
  }
  if (p == c.end) return c.more();
  if (*p != '0' && *p != '1') return invalid(status, detail);
  minor = *p - '0';
  c.p = p + 1;
  return kComplete;
}

// Matches CRLF at c.p.
ParseOutcome expect_crlf(Cursor& c, const char* detail) {
  if (c.p == c.end) return c.more();
  if (*c.p != '\r') return invalid(400, *c.p == '\n' ? "bare LF" : detail);
  if (c.p + 1 == c.end) return c.more();
  if (c.p[1] != '\n') return invalid(400, "bare CR");
  c.p += 2;
  return kComplete;
}

// host [ ":" port ], host a reg-name of unreserved bytes, an IPv4 address or a bracketed IPv6
// literal; port 1-5 digits up to 65535. No userinfo, no path.
bool valid_authority(std::string_view a) noexcept {
  std::size_t i = 0;
  if (a.empty()) return false;
  if (a[0] == '[') {
    i = 1;
    while (i < a.size() && (hex_value(a[i]) >= 0 || a[i] == ':' || a[i] == '.')) ++i;
    if (i == a.size() || a[i] != ']' || i < 3) return false;
    ++i;
  } else {
    while (i < a.size() && in(kHost, a[i])) ++i;
    if (i == 0) return false;
  }
  if (i == a.size()) return true;
  if (a[i] != ':') return false;
  ++i;
  const std::size_t digits = a.size() - i;
  if (digits == 0 || digits > 5) return false;
  unsigned port = 0;
  for (; i < a.size(); ++i) {
    if (!is_digit(a[i])) return false;
    port = port * 10 + static_cast<unsigned>(a[i] - '0');
  }
  return port <= 65535;
}

void split_path_query(std::string_view target, RequestHead& out) {
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) {
    out.path = target;
  } else {
    out.path = target.substr(0, q);
    out.query = target.substr(q + 1);
  }
}

// absolute-form: "http" ["s"] "://" authority [ path-abempty ] [ "?" query ]
// Returns the authority, or an empty view when the target is not a valid absolute-form.
std::string_view parse_absolute_form(std::string_view target, RequestHead& out) {
  std::size_t scheme = 0;
  if (target.size() > 7 && is_named(target.substr(0, 7), "http://")) {
    scheme = 7;
  } else if (target.size() > 8 && is_named(target.substr(0, 8), "https://")) {
    scheme = 8;
  } else {
    return {};
  }
  std::string_view rest = target.substr(scheme);
  const std::size_t auth_end = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, auth_end);
  if (!valid_authority(authority)) return {};
  if (auth_end == std::string_view::npos) {
    out.path = "/";
    return authority;
  }
  rest.remove_prefix(auth_end);
  if (rest.front() == '?') {
    out.path = "/";
    out.query = rest.substr(1);
  } else {
    split_path_query(rest, out);
  }
  return authority;
}

// Shared by requests and responses: CL/TE consistency. Returns nullptr when consistent.
const char* framing_conflict(const Framing& f, int version_minor) {
  if (!f.te) return f.cl_error;
  if (version_minor == 0) return "transfer-encoding in HTTP/1.0";
  if (f.cl_fields != 0) return "both content-length and transfer-encoding";
  if (f.te_error) return f.te_error;
  if (f.te_chunked > 1) return "chunked applied more than once";
  return nullptr;
}

}  // namespace

// -----------------------------------------------------------------------------------------------
// Requests

void RequestHead::reset() noexcept {
  method = {};
  target = {};
  path = {};
  query = {};
  version_minor = 1;
  fields.clear();
  host = {};
  body = BodyKind::None;
  content_length = 0;
  keep_alive = true;
  expect_continue = false;
  upgrade = false;
  head_size = 0;
}

ParseOutcome parse_request(std::string_view buf, const ParseLimits& limits, RequestHead& out) {
  out.reset();
  Cursor c = make_cursor(buf, limits);

  // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
  for (int i = 0; i < 2 && c.p != c.end && *c.p == '\r'; ++i) {
    if (c.p + 1 == c.end) return c.more();
    if (c.p[1] != '\n') return invalid(400, "bare CR");
    c.p += 2;
  }

  // method SP
  const char* p = c.p;
  while (p < c.end && in(kTchar, *p)) ++p;
  if (p == c.end) return c.more();
  if (*p != ' ' || p == c.p) return invalid(400, "invalid method");
  out.method = std::string_view(c.p, static_cast<std::size_t>(p - c.p));
  ++p;

  // request-target SP; longer than max_uri_bytes is 414 as soon as that many bytes are seen.
  const char* const target_start = p;
  const std::size_t window = static_cast<std::size_t>(c.end - target_start);
  const bool uri_bounded = window > limits.max_uri_bytes;
  const char* const target_end = uri_bounded ? target_start + limits.max_uri_bytes + 1 : c.end;
  p = skip_target_words(p, target_end);
  while (p < target_end && in(kTarget, *p)) ++p;
  if (p == target_end) return uri_bounded ? invalid(414, "request-target too long") : c.more();
  if (*p != ' ' || p == target_start) return invalid(400, "invalid request-target");
  out.target = std::string_view(target_start, static_cast<std::size_t>(p - target_start));
  ++p;

  // HTTP-version CRLF
  c.p = p;
  if (ParseOutcome r = parse_version(c, out.version_minor, 400, "invalid HTTP version"); r.state != ParseState::Complete)
    return r;
  if (ParseOutcome r = expect_crlf(c, "invalid HTTP version"); r.state != ParseState::Complete) return r;

  Framing f;
  if (ParseOutcome r = parse_fields(c, limits.max_headers, out.fields, f); r.state != ParseState::Complete) return r;

  // The head is complete: judge the target and framing.
  std::string_view authority;
  if (out.target.front() == '/') {
    split_path_query(out.target, out);
  } else if (out.target == "*") {
    if (out.method != "OPTIONS") return invalid(400, "asterisk-form outside OPTIONS");
    out.path = out.target;
  } else {
    authority = parse_absolute_form(out.target, out);
    if (authority.empty()) return invalid(400, "invalid request-target");
  }

  if (const char* bad = framing_conflict(f, out.version_minor)) return invalid(400, bad);
  if (f.te && !f.te_last_chunked) return invalid(400, "chunked is not the final transfer-coding");

  if (f.host_count > 1) return invalid(400, "several Host fields");
  if (f.host_count == 0 && out.version_minor == 1) return invalid(400, "missing Host");
  if (f.host_count == 1 && !f.host.empty() && !valid_authority(f.host)) return invalid(400, "invalid Host");
  if (f.host_count == 1 && f.host.empty() && !authority.empty()) return invalid(400, "empty Host");
  out.host = authority.empty() ? f.host : authority;

  if (f.te && f.te_other) return invalid(501, "unsupported transfer-coding");

  if (f.te) {
    out.body = BodyKind::Chunked;
  } else if (f.cl_fields != 0) {
    out.body = BodyKind::Length;
    out.content_length = f.content_length;
  }
  out.keep_alive = out.version_minor == 1 ? !f.conn_close : (f.conn_keep_alive && !f.conn_close);
  out.expect_continue = f.expect_continue && out.version_minor == 1;
  out.upgrade = f.conn_upgrade && f.upgrade_field;
  out.head_size = static_cast<std::size_t>(c.p - c.begin);
  return kComplete;
}

// -----------------------------------------------------------------------------------------------
// Responses

void ResponseHead::reset() noexcept {
  status = 0;
  reason = {};
  version_minor = 1;
  fields.clear();
  body = BodyKind::None;
  content_length = 0;
  keep_alive = true;
  head_size = 0;
}

namespace {

// Every problem with a response head is answered with 502.
inline ParseOutcome bad_response(ParseOutcome r) {
  if (r.state == ParseState::Invalid) r.status = 502;
  return r;
}

}  // namespace

ParseOutcome parse_response(std::string_view buf, const ParseLimits& limits, bool request_method_head,
                            ResponseHead& out) {
  out.reset();
  Cursor c = make_cursor(buf, limits);

  // HTTP-version SP 3DIGIT [ SP reason-phrase ] CRLF
  if (ParseOutcome r = parse_version(c, out.version_minor, 502, "not an HTTP/1.x response"); r.state != ParseState::Complete)
    return bad_response(r);
  const char* p = c.p;
  for (int i = 0; i < 4; ++i, ++p) {
    if (p == c.end) return bad_response(c.more());
    const bool ok = i == 0 ? *p == ' ' : is_digit(*p);
    if (!ok) return invalid(502, "invalid status line");
  }
  out.status = (p[-3] - '0') * 100 + (p[-2] - '0') * 10 + (p[-1] - '0');
  if (out.status < 100 || out.status > 599) return invalid(502, "invalid status code");
  if (p == c.end) return bad_response(c.more());
  if (*p == ' ') {
    ++p;
    const char* const reason_start = p;
    while (p < c.end && in(kFieldValue, *p)) ++p;
    out.reason = std::string_view(reason_start, static_cast<std::size_t>(p - reason_start));
  }
  c.p = p;
  if (ParseOutcome r = expect_crlf(c, "invalid status line"); r.state != ParseState::Complete) return bad_response(r);

  Framing f;
  if (ParseOutcome r = parse_fields(c, limits.max_headers, out.fields, f); r.state != ParseState::Complete)
    return bad_response(r);

  if (const char* bad = framing_conflict(f, out.version_minor)) return invalid(502, bad);

  out.keep_alive = out.version_minor == 1 ? !f.conn_close : (f.conn_keep_alive && !f.conn_close);
  const bool no_body = request_method_head || out.status < 200 || out.status == 204 || out.status == 304;
  if (no_body) {
    out.body = BodyKind::None;
  } else if (f.te) {
    // RFC 9112 §6.3: a response whose final coding is not chunked is delimited by the close.
    out.body = f.te_last_chunked ? BodyKind::Chunked : BodyKind::UntilClose;
  } else if (f.cl_fields != 0) {
    out.body = BodyKind::Length;
    out.content_length = f.content_length;
  } else {
    out.body = BodyKind::UntilClose;
  }
  if (out.body == BodyKind::UntilClose) out.keep_alive = false;
  out.head_size = static_cast<std::size_t>(c.p - c.begin);
  return kComplete;
}

// -----------------------------------------------------------------------------------------------
// Chunked bodies

namespace {
constexpr std::size_t kMaxChunkLineBytes = 4 * 1024;   // chunk-size line with extensions
constexpr std::size_t kMaxTrailerBytes = 16 * 1024;    // whole trailer section
constexpr int kMaxChunkSizeDigits = 16;                // fits std::uint64_t exactly
}  // namespace

ChunkedDecoder::Step ChunkedDecoder::feed(std::string_view input) noexcept {
  Step step;
  const char* const begin = input.data();
  const char* const end = begin + input.size();
  const char* p = begin;

  auto fail = [&](const char* detail) {
    state_ = State::Error;
    step.error = true;
    step.detail = detail;
    step.consumed = static_cast<std::size_t>(p - begin);
    return step;
  };

  if (state_ == State::Error) return fail("chunked body already failed");
  if (state_ == State::Done) {
    step.done = true;
    return step;
  }

  while (p < end) {
    const char ch = *p;
    switch (state_) {
      case State::Size: {
        if (++line_bytes_ > kMaxChunkLineBytes) return fail("chunk size line too long");
        const int v = hex_value(ch);
        if (v >= 0) {
          if (size_digits_ == kMaxChunkSizeDigits) return fail("chunk size too long");
          remaining_ = (remaining_ << 4) | static_cast<std::uint64_t>(v);
          ++size_digits_;
        } else if (size_digits_ == 0) {
          return fail("invalid chunk size");
        } else if (ch == '\r') {
          state_ = State::SizeLf;
        } else if (ch == ';' || is_ws(ch)) {
          ext_semicolon_ = ch == ';';
          state_ = State::Ext;
        } else {
          return fail(ch == '\n' ? "bare LF in chunk size line" : "invalid chunk size");
        }
        ++p;
        break;
      }
      case State::Ext: {
        // chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ); only the leading ';' and the
        // byte classes are checked: extensions are discarded.
        if (++line_bytes_ > kMaxChunkLineBytes) return fail("chunk extension too long");
        if (ch == '\r') {
          if (!ext_semicolon_) return fail("invalid chunk extension");
          state_ = State::SizeLf;
        } else if (!ext_semicolon_) {
          if (ch == ';') {
            ext_semicolon_ = true;
          } else if (!is_ws(ch)) {
            return fail("invalid chunk extension");
          }
        } else if (!in(kFieldValue, ch)) {
          return fail(ch == '\n' ? "bare LF in chunk size line" : "control byte in chunk extension");
        }
        ++p;
        break;
      }
      case State::SizeLf:
        if (ch != '\n') return fail("bare CR in chunk size line");
        ++p;
        line_bytes_ = 0;
        size_digits_ = 0;
        ext_semicolon_ = false;
        if (remaining_ == 0) {
          state_ = State::Trailer;
          trailer_line_empty_ = true;
          trailer_in_value_ = false;
        } else {
          state_ = State::Data;
        }
        break;
      case State::Data: {
        const std::size_t avail = static_cast<std::size_t>(end - p);
        const std::size_t n = remaining_ < avail ? static_cast<std::size_t>(remaining_) : avail;
        step.data = std::string_view(p, n);
        p += n;
        remaining_ -= n;
        total_ += n;
        if (remaining_ == 0) state_ = State::DataCr;
        step.consumed = static_cast<std::size_t>(p - begin);
        return step;
      }
      case State::DataCr:
        if (ch != '\r') return fail("missing CRLF after chunk data");
        state_ = State::DataLf;
        ++p;
        break;
      case State::DataLf:
        if (ch != '\n') return fail("missing CRLF after chunk data");
        state_ = State::Size;
        ++p;
        break;
      case State::Trailer:
        if (++trailer_bytes_ > kMaxTrailerBytes) return fail("trailer section too large");
        if (trailer_line_empty_) {
          if (ch == '\r') {
            state_ = State::TrailerLf;
          } else if (in(kTchar, ch)) {
            trailer_line_empty_ = false;
            trailer_in_value_ = false;
          } else {
            return fail(is_ws(ch) ? "obs-fold in trailer" : ch == '\n' ? "bare LF in trailer" : "invalid trailer field name");
          }
        } else if (!trailer_in_value_) {
          if (ch == ':') {
            trailer_in_value_ = true;
          } else if (!in(kTchar, ch)) {
            return fail(is_ws(ch) ? "whitespace before colon in trailer" : "invalid trailer field name");
          }
        } else if (ch == '\r') {
          state_ = State::TrailerLf;
        } else if (!in(kFieldValue, ch)) {
          return fail(ch == '\n' ? "bare LF in trailer" : "control byte in trailer");
        }
        ++p;
        break;
      case State::TrailerLf:
        if (++trailer_bytes_ > kMaxTrailerBytes) return fail("trailer section too large");
        if (ch != '\n') return fail("bare CR in trailer");
        ++p;
        if (trailer_line_empty_) {
          state_ = State::Done;
          step.done = true;
          step.consumed = static_cast<std::size_t>(p - begin);
          return step;
        }
        state_ = State::Trailer;
        trailer_line_empty_ = true;
        break;
      case State::Done:
      case State::Error:
        return fail("chunked decoder in a final state");  // unreachable: handled above
    }
  }
  step.consumed = input.size();
  return step;
}

// -----------------------------------------------------------------------------------------------
// Helpers

void append_chunk_header(std::string& out, std::uint64_t size) {
  append_hex(out, size);
  out.append("\r\n", 2);
}

bool is_hop_by_hop(std::string_view name) noexcept {
  switch (name.size()) {
    case 2: return is_named(name, "te");
    case 7: return is_named(name, "trailer") || is_named(name, "upgrade");
    case 10: return is_named(name, "connection") || is_named(name, "keep-alive");
    case 16: return is_named(name, "proxy-connection");
    case 17: return is_named(name, "transfer-encoding");
    default: return false;
  }
}

bool is_clean_field_value(std::string_view v) noexcept {
  if (v.empty()) return true;
  if (is_ws(v.front()) || is_ws(v.back())) return false;
  // Eight bytes at a time while none is a control byte or DEL (a tab stops the words too: it
  // is rare, and the bytes are then looked at one by one).
  const char* p = v.data();
  const char* const end = p + v.size();
  while (end - p >= 8) {
    const std::uint64_t w = load8(p);
    if (any_below(w, 0x20) | any_equal(w, 0x7f)) break;
    p += 8;
  }
  for (; p < end; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

bool has_token(std::string_view value, std::string_view token) noexcept {
  bool found = false;
  for_each_element(value, [&](std::string_view el) {
    if (found || el.size() != token.size()) return;
    bool same = true;
    for (std::size_t i = 0; i < el.size() && same; ++i) same = lower(el[i]) == lower(token[i]);
    found = same;
  });
  return found;
}

}  // namespace gh::http
