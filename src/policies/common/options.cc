#include "policies/common/options.h"

#include <openssl/crypto.h>

#include "core/strings.h"

namespace gh::policies {

void check_keys(const config::PolicyConfig& e, config::Diagnostics& d, const std::vector<std::string>& allowed) {
  if (!e.options.IsMap()) return;
  for (const auto& kv : e.options) {
    std::string key = kv.first.Scalar();
    if (key == "type") continue;
    bool ok = false;
    for (const auto& a : allowed) ok |= a == key;
    if (ok) continue;
    std::string hint = suggest(key, allowed);
    d.error(kv.first, e.path + "." + key,
            "unknown option \"" + key + "\"" + (hint.empty() ? "" : "; did you mean \"" + hint + "\"?"));
  }
}

std::optional<std::vector<std::string>> string_list(const config::PolicyConfig& e, config::Diagnostics& d,
                                                    const std::string& key) {
  const YAML::Node n = e.options[key];
  if (!n) return std::nullopt;
  std::vector<std::string> out;
  if (n.IsScalar()) {
    out.push_back(n.Scalar());
    return out;
  }
  if (!n.IsSequence()) {
    d.error(n, e.path + "." + key, "expected a string or a list of strings");
    return std::nullopt;
  }
  for (std::size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsScalar()) {
      d.error(n[i], e.path + "." + key + "[" + std::to_string(i) + "]", "expected a string");
      return std::nullopt;
    }
    out.push_back(n[i].Scalar());
  }
  return out;
}

std::optional<std::string> string_opt(const config::PolicyConfig& e, config::Diagnostics& d, const std::string& key) {
  const YAML::Node n = e.options[key];
  if (!n) return std::nullopt;
  if (!n.IsScalar()) {
    d.error(n, e.path + "." + key, "expected a string");
    return std::nullopt;
  }
  return n.Scalar();
}

std::optional<bool> bool_opt(const config::PolicyConfig& e, config::Diagnostics& d, const std::string& key) {
  const YAML::Node n = e.options[key];
  if (!n) return std::nullopt;
  if (n.IsScalar() && (n.Scalar() == "true" || n.Scalar() == "false")) return n.Scalar() == "true";
  d.error(n, e.path + "." + key, "expected true or false");
  return std::nullopt;
}

void require(const config::PolicyConfig& e, config::Diagnostics& d, const std::string& key, const std::string& what) {
  if (!e.options[key]) d.error(e.mark, e.path, "missing `" + key + "`: expected " + what);
}

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

}  // namespace gh::policies
