#include "policies/security_headers/security_headers_config.h"

#include "config/reader.h"
#include "core/strings.h"

namespace gh::policies {

const std::vector<std::pair<std::string, std::string>>& helmet_defaults() {
  static const std::vector<std::pair<std::string, std::string>> kDefaults = {
      {"Content-Security-Policy",
       "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';"
       "frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';"
       "script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests"},
      {"Cross-Origin-Opener-Policy", "same-origin"},
      {"Cross-Origin-Resource-Policy", "same-origin"},
      {"Origin-Agent-Cluster", "?1"},
      {"Referrer-Policy", "no-referrer"},
      {"Strict-Transport-Security", "max-age=31536000; includeSubDomains"},
      {"X-Content-Type-Options", "nosniff"},
      {"X-DNS-Prefetch-Control", "off"},
      {"X-Download-Options", "noopen"},
      {"X-Frame-Options", "SAMEORIGIN"},
      {"X-Permitted-Cross-Domain-Policies", "none"},
      {"X-XSS-Protection", "0"},
  };
  return kDefaults;
}

namespace {
bool valid_field_name(std::string_view s) { return is_token(s); }
bool valid_field_value(std::string_view s) {
  for (unsigned char c : s)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  return true;
}
}  // namespace

SecurityHeadersConfig parse_security_headers(const config::PolicyConfig& entry, config::Diagnostics& diag) {
  SecurityHeadersConfig out;
  const YAML::Node& n = entry.options;
  if (!n || !n.IsMap()) return out;
  static const std::vector<std::string> kKeys = {"type", "override", "headers"};
  config::OptionReader r(entry, diag);
  for (const auto& kv : n) {
    std::string key = kv.first.as<std::string>();
    std::string path = entry.path + "." + key;
    if (key == "type") continue;
    if (key == "override") {
      if (auto b = r.boolean(config::Val{kv.second, config::mark_of(kv.second), path})) out.override_existing = *b;
    } else if (key == "headers") {
      if (!kv.second.IsMap()) {
        diag.error(kv.second, path, "expected a map of header name to a value or false");
        continue;
      }
      for (const auto& h : kv.second) {
        std::string name = h.first.as<std::string>();
        std::string hpath = path + "." + name;
        if (!valid_field_name(name)) {
          diag.error(h.first, hpath, "expected a header field name");
          continue;
        }
        // Plain `false` turns the header off; any other text (`"false"`, `no`) is its value.
        if (h.second.IsScalar() && h.second.Tag() != "!" && h.second.Scalar() == "false") {
          out.headers.emplace_back(name, std::nullopt);
        } else if (h.second.IsScalar()) {
          std::string v = h.second.Scalar();
          if (!valid_field_value(v)) diag.error(h.second, hpath, "header value contains a control character");
          out.headers.emplace_back(name, v);
        } else {
          diag.error(h.second, hpath, "expected a header value or false");
        }
      }
    } else {
      r.unknown_option(kv.first, key, kKeys);
    }
  }
  return out;
}

}  // namespace gh::policies
