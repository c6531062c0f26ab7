// libFuzzer target for request path normalization (src/routing/normalize.h). Checks the
// canonical form routing relies on: it starts with '/', holds no empty, "." or ".." segment, no
// raw control byte or backslash, only upper-case escapes of characters that must stay escaped,
// and normalizing it again changes nothing. The result (or the refusal) must also equal that of
// a reference written differently: decode every segment first, then resolve dots on a stack.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "routing/normalize.h"

namespace {

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

// One segment decoded as SPEC §2 says, or nullopt when it must be refused.
std::optional<std::string> decode_segment(std::string_view seg) {
  std::string out;
  for (std::size_t i = 0; i < seg.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(seg[i]);
    if (c == '\\' || c < 0x20 || c == 0x7f) return std::nullopt;
    if (c != '%') {
      out += static_cast<char>(c);
      continue;
    }
    if (seg.size() - i < 3 || hex(seg[i + 1]) < 0 || hex(seg[i + 2]) < 0) return std::nullopt;
    const int v = hex(seg[i + 1]) * 16 + hex(seg[i + 2]);
    if (v == '/' || v == '\\' || v == 0) return std::nullopt;
    if (unreserved(static_cast<unsigned char>(v))) {
      out += static_cast<char>(v);
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out += '%';
      out += kHex[v >> 4];
      out += kHex[v & 15];
    }
    i += 2;
  }
  return out;
}

std::optional<std::string> reference(std::string_view path) {
  if (path.empty() || path[0] != '/') return std::nullopt;
  std::vector<std::string_view> raw;
  for (std::size_t i = 1;;) {
    const std::size_t j = path.find('/', i);
    raw.push_back(path.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i));
    if (j == std::string_view::npos) break;
    i = j + 1;
  }
  std::vector<std::string> stack;
  bool dir = false;  // the path ends in a directory: "", "." or ".." last
  for (std::string_view r : raw) {
    std::optional<std::string> seg = decode_segment(r);
    if (!seg) return std::nullopt;
    dir = seg->empty() || *seg == "." || *seg == "..";
    if (*seg == "..") {
      if (stack.empty()) return std::nullopt;
      stack.pop_back();
    } else if (!dir) {
      stack.push_back(*seg);
    }
  }
  std::string out;
  for (const std::string& s : stack) out += "/" + s;
  if (out.empty() || dir) out += '/';
  return out;
}

void check_canonical(const std::string& out) {
  FUZZ_CHECK(!out.empty() && out[0] == '/');
  FUZZ_CHECK(out.find("//") == std::string::npos);
  FUZZ_CHECK(out.find("/./") == std::string::npos && out.find("/../") == std::string::npos);
  const std::string_view v(out);
  FUZZ_CHECK(!v.ends_with("/.") && !v.ends_with("/.."));
  for (std::size_t i = 0; i < out.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(out[i]);
    FUZZ_CHECK(c >= 0x20 && c != 0x7f && c != '\\');
    if (c != '%') continue;
    FUZZ_CHECK(i + 2 < out.size());
    const char h = out[i + 1], l = out[i + 2];
    FUZZ_CHECK(hex(h) >= 0 && hex(l) >= 0 && !(h >= 'a' && h <= 'f') && !(l >= 'a' && l <= 'f'));
    const int value = hex(h) * 16 + hex(l);
    FUZZ_CHECK(!unreserved(static_cast<unsigned char>(value)) && value != '/' && value != '\\' && value != 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view path(reinterpret_cast<const char*>(data), size);
  std::string out = "left over from an earlier request";
  const bool ok = gh::routing::normalize_path(path, out);
  const std::optional<std::string> expected = reference(path);
  FUZZ_CHECK(ok == expected.has_value());
  if (!ok) return 0;
  FUZZ_CHECK(out == *expected);
  FUZZ_CHECK(out.size() <= path.size());
  check_canonical(out);

  std::string again = "x";
  FUZZ_CHECK(gh::routing::normalize_path(out, again));
  FUZZ_CHECK(again == out);
  return 0;
}
