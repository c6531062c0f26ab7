#include "app/registry.h"

#include "policies/security_headers/security_headers.h"

namespace gh::app {

const config::PolicyCatalog& policy_catalog() {
  static const config::PolicyCatalog catalog = [] {
    config::PolicyCatalog c;
    c.supported["security_headers"] = [](const config::PolicyConfig& e, config::Diagnostics& d) {
      policies::parse_security_headers(e, d);
    };
    c.planned = {"jwt", "require_role", "api_key", "rate_limit", "cors", "ip_filter"};
    return c;
  }();
  return catalog;
}

std::shared_ptr<proxy::Policy> make_policy(const config::PolicyConfig& entry) {
  if (entry.type == "security_headers") {
    config::Diagnostics ignore;
    return std::make_shared<policies::SecurityHeadersPolicy>(entry.name,
                                                             policies::parse_security_headers(entry, ignore));
  }
  return nullptr;
}

}  // namespace gh::app
