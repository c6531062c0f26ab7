#include "routing/normalize.h"

namespace gh::routing {
namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 §2.3.
bool is_unreserved(unsigned char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool is_control(unsigned char c) noexcept { return c < 0x20 || c == 0x7F; }

// Appends the decoded form of one segment (no '/' inside) to `out`.
bool append_segment(std::string_view seg, std::string& out) {
  constexpr char kHex[] = "0123456789ABCDEF";
  for (std::size_t i = 0; i < seg.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(seg[i]);
    if (c == '%') {
      if (i + 2 >= seg.size()) return false;  // fewer than two hex digits
      const int hi = hex_value(seg[i + 1]);
      const int lo = hex_value(seg[i + 2]);
      if (hi < 0 || lo < 0) return false;
      const unsigned char v = static_cast<unsigned char>(hi * 16 + lo);
      if (v == '/' || v == '\\' || v == 0) return false;
      if (is_unreserved(v)) {
        out.push_back(static_cast<char>(v));
      } else {
        out.push_back('%');
        out.push_back(kHex[hi]);
        out.push_back(kHex[lo]);
      }
      i += 2;
    } else if (c == '\\' || is_control(c)) {
      return false;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return true;
}

}  // namespace

bool normalize_path(std::string_view path, std::string& out) {
  out.clear();
  if (path.empty() || path.front() != '/') return false;
  out.reserve(path.size() + 1);
  out.push_back('/');
  // Invariant: `out` ends with '/' between segments; the last one is dropped at the end unless
  // the path ended in a directory ("/a/", "/a/.", "/a/b/..").
  bool ends_in_dir = true;
  std::size_t i = 1;
  while (i < path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j == i) {  // repeated slash
      ++i;
      continue;
    }
    const std::size_t start = out.size();
    if (!append_segment(path.substr(i, j - i), out)) return false;
    const std::string_view seg = std::string_view(out).substr(start);
    if (seg == ".") {
      out.resize(start);
      ends_in_dir = true;
    } else if (seg == "..") {
      if (start == 1) return false;  // above the root
      out.resize(start - 1);         // drop the '/' that ends the parent
      out.resize(out.rfind('/') + 1);
      ends_in_dir = true;
    } else {
      out.push_back('/');
      ends_in_dir = j < path.size();
    }
    i = j + 1;
  }
  if (!ends_in_dir && out.size() > 1) out.pop_back();
  return true;
}

}  // namespace gh::routing
