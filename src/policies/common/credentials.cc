#include "policies/common/credentials.h"

#include <openssl/crypto.h>

namespace gh::policies {

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {
int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
std::string decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') out.push_back(' ');
    else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}
}  // namespace

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    auto eq = item.find('=');
    std::string_view k = item.substr(0, eq);
    if (decode(k) == name) return eq == std::string_view::npos ? std::string() : decode(item.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::size_t query_param_count(std::string_view query, std::string_view name) {
  std::size_t n = 0;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    if (decode(item.substr(0, item.find('='))) == name) ++n;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return n;
}

std::string remove_query_param(std::string_view query, std::string_view name) {
  std::string out;
  bool first = true;
  for (;;) {
    auto amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    if (decode(item.substr(0, item.find('='))) != name) {
      if (!first) out.push_back('&');
      out.append(item);
      first = false;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

std::string remove_cookie(std::string_view field_value, std::string_view name) {
  std::string out;
  for_each_cookie(field_value, [&](std::string_view n, std::string_view, std::string_view pair) {
    if (n == name) return;
    if (!out.empty()) out.append("; ");
    out.append(pair);
  });
  return out;
}

}  // namespace gh::policies
