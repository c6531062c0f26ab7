#include "policies/security_headers/security_headers.h"

#include "core/strings.h"

namespace gh::policies {

SecurityHeadersPolicy::SecurityHeadersPolicy(std::string name, const SecurityHeadersConfig& cfg)
    : name_(std::move(name)), override_(cfg.override_existing) {
  auto find = [&](std::string_view header) -> const std::optional<std::string>* {
    for (const auto& [n, v] : cfg.headers)
      if (iequals(n, header)) return &v;
    return nullptr;
  };
  for (const auto& [n, v] : helmet_defaults()) {
    const auto* custom = find(n);
    if (!custom) set_.emplace_back(n, v);
    else if (*custom) set_.emplace_back(n, **custom);
    else untouched_.push_back(n);
  }
  for (const auto& [n, v] : cfg.headers) {
    bool is_default = false;
    for (const auto& [dn, dv] : helmet_defaults()) is_default |= iequals(dn, n);
    if (is_default) continue;
    if (v) set_.emplace_back(n, *v);
    else untouched_.push_back(n);
  }
}

void SecurityHeadersPolicy::on_response(proxy::RequestContext&, http::ResponseHead& head) {
  bool keep_powered_by = false;
  for (const auto& u : untouched_) keep_powered_by |= iequals(u, "x-powered-by");
  if (!keep_powered_by) head.fields.remove("X-Powered-By");
  for (const auto& [n, v] : set_) {
    if (!override_ && head.fields.has(n)) continue;
    head.fields.set(n, v);
  }
}

}  // namespace gh::policies
