#include "harness/http.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>

namespace gh::integ {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::optional<std::string> Headers::get(std::string_view name) const {
  for (const Header& h : list_) {
    if (iequals(h.name, name)) return h.value;
  }
  return std::nullopt;
}

std::string Headers::value_or(std::string_view name, std::string fallback) const {
  auto v = get(name);
  return v ? *v : std::move(fallback);
}

std::size_t Headers::count(std::string_view name) const {
  return static_cast<std::size_t>(
      std::count_if(list_.begin(), list_.end(), [&](const Header& h) { return iequals(h.name, name); }));
}

std::vector<std::string> Headers::all(std::string_view name) const {
  std::vector<std::string> out;
  for (const Header& h : list_) {
    if (iequals(h.name, name)) out.push_back(h.value);
  }
  return out;
}

std::string Headers::to_string() const {
  std::string s;
  for (const Header& h : list_) s += h.name + ": " + h.value + "\n";
  return s;
}

std::string Response::describe() const {
  std::string s = version + " " + std::to_string(status) + " " + reason + "\n" + headers.to_string();
  s += "\n" + body.substr(0, 300);
  if (body.size() > 300) s += "... (" + std::to_string(body.size()) + " bytes)";
  return s;
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits the fields after the start line; false when a line has no colon.
bool parse_fields(std::string_view fields, Headers& out) {
  while (!fields.empty()) {
    std::size_t eol = fields.find("\r\n");
    std::string_view line = fields.substr(0, eol);
    fields = eol == std::string_view::npos ? std::string_view{} : fields.substr(eol + 2);
    if (line.empty()) continue;
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    out.add(std::string(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
  }
  return true;
}

bool is_chunked(const Headers& h) {
  auto te = h.all("Transfer-Encoding");
  if (te.empty()) return false;
  std::string_view last = te.back();
  std::size_t comma = last.rfind(',');
  if (comma != std::string_view::npos) last = last.substr(comma + 1);
  return iequals(trim(last), "chunked");
}

}  // namespace

Parse ChunkedDecoder::feed(std::string_view buf) {
  for (;;) {
    std::size_t eol = buf.find("\r\n", pos);
    if (eol == std::string_view::npos) return buf.size() - pos > 1024 ? Parse::Invalid : Parse::NeedMore;
    std::string_view line = buf.substr(pos, eol - pos);
    std::string_view hex = line.substr(0, line.find(';'));
    if (hex.empty() || hex.size() > 15) return Parse::Invalid;
    std::uint64_t size = 0;
    auto [p, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
    if (ec != std::errc{} || p != hex.data() + hex.size()) return Parse::Invalid;
    std::size_t next = eol + 2;
    if (size == 0) {
      for (;;) {  // trailer section, ended by an empty line
        std::size_t t = buf.find("\r\n", next);
        if (t == std::string_view::npos) return Parse::NeedMore;
        bool empty = t == next;
        next = t + 2;
        if (empty) break;
      }
      pos = next;
      return Parse::Done;
    }
    if (buf.size() < next + size + 2) return Parse::NeedMore;
    if (buf.substr(next + size, 2) != "\r\n") return Parse::Invalid;
    body.append(buf.substr(next, size));
    pos = next + size + 2;
  }
}

Parse decode_chunked(std::string_view buf, std::string& body, std::size_t& consumed) {
  ChunkedDecoder d;
  Parse p = d.feed(buf);
  if (p == Parse::Done) {
    body += d.body;
    consumed = d.pos;
  }
  return p;
}

Parse parse_response(std::string_view buf, bool eof, bool head_request, Response& out,
                     std::size_t& consumed) {
  std::size_t end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos) return eof ? Parse::Invalid : Parse::NeedMore;
  Response r;
  r.raw_head = std::string(buf.substr(0, end + 4));
  std::string_view head = buf.substr(0, end + 2);
  std::size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  // HTTP/1.1 200 OK
  std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || line.substr(0, 5) != "HTTP/") return Parse::Invalid;
  r.version = std::string(line.substr(0, sp1));
  std::string_view rest = line.substr(sp1 + 1);
  std::size_t sp2 = rest.find(' ');
  std::string_view code = rest.substr(0, sp2);
  if (code.size() != 3) return Parse::Invalid;
  auto [p, ec] = std::from_chars(code.data(), code.data() + 3, r.status);
  if (ec != std::errc{} || p != code.data() + 3) return Parse::Invalid;
  if (sp2 != std::string_view::npos) r.reason = std::string(rest.substr(sp2 + 1));
  if (!parse_fields(head.substr(eol + 2), r.headers)) return Parse::Invalid;

  std::size_t body_start = end + 4;
  std::string_view body = buf.substr(body_start);
  if (head_request || r.status / 100 == 1 || r.status == 204 || r.status == 304) {
    consumed = body_start;
  } else if (is_chunked(r.headers)) {
    r.chunked = true;
    std::size_t used = 0;
    Parse res = decode_chunked(body, r.body, used);
    if (res == Parse::NeedMore && eof) return Parse::Invalid;
    if (res != Parse::Done) return res;
    consumed = body_start + used;
  } else if (auto cl = r.headers.get("Content-Length")) {
    std::uint64_t n = 0;
    auto [q, ec2] = std::from_chars(cl->data(), cl->data() + cl->size(), n);
    if (ec2 != std::errc{} || q != cl->data() + cl->size()) return Parse::Invalid;
    if (body.size() < n) return eof ? Parse::Invalid : Parse::NeedMore;
    r.body = std::string(body.substr(0, n));
    consumed = body_start + n;
  } else {
    if (!eof) return Parse::NeedMore;
    r.body = std::string(body);
    consumed = buf.size();
  }
  out = std::move(r);
  return Parse::Done;
}

Parse parse_request_head(std::string_view buf, Request& out, std::size_t& head_len) {
  std::size_t end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos) return Parse::NeedMore;
  Request r;
  std::string_view head = buf.substr(0, end + 2);
  std::size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return Parse::Invalid;
  r.method = std::string(line.substr(0, sp1));
  r.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  r.version = std::string(line.substr(sp2 + 1));
  if (!parse_fields(head.substr(eol + 2), r.headers)) return Parse::Invalid;
  r.chunked = is_chunked(r.headers);
  out = std::move(r);
  head_len = end + 4;
  return Parse::Done;
}

std::string chunk_encode(std::string_view body, std::size_t chunk) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  while (!body.empty()) {
    std::size_t n = std::min(chunk, body.size());
    std::string hex;
    for (std::size_t v = n; v > 0; v >>= 4) hex.insert(hex.begin(), kHex[v & 15]);
    out += hex + "\r\n";
    out.append(body.substr(0, n));
    out += "\r\n";
    body.remove_prefix(n);
  }
  out += "0\r\n\r\n";
  return out;
}

std::string pattern_body(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::uint32_t x = 2463534242u ^ seed;
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s[i] = static_cast<char>(x & 0xff);
  }
  return s;
}

std::string fill(std::string text, const std::vector<std::pair<std::string, std::string>>& vars) {
  for (const auto& [key, value] : vars) {
    const std::string token = "{" + key + "}";
    for (std::size_t pos = text.find(token); pos != std::string::npos; pos = text.find(token, pos + value.size())) {
      text.replace(pos, token.size(), value);
    }
  }
  return text;
}

}  // namespace gh::integ
