#include "app/registry.h"

#include "policies/api_key/api_key.h"
#include "policies/cors/cors.h"
#include "policies/ip_filter/ip_filter.h"
#include "policies/jwt/jwt.h"
#include "policies/rate_limit/rate_limit.h"
#include "policies/rate_limit/rate_limit_config.h"
#include "policies/require_role/require_role.h"
#include "policies/security_headers/security_headers.h"

namespace gh::app {

const config::PolicyCatalog& policy_catalog() {
  static const config::PolicyCatalog catalog = [] {
    config::PolicyCatalog c;
    c.supported["security_headers"] = [](const config::PolicyConfig& e, config::Diagnostics& d) {
      policies::parse_security_headers(e, d);
    };
    c.supported["require_role"] = [](const config::PolicyConfig& e, config::Diagnostics& d) {
      policies::parse_require_role(e, d);
    };
    c.supported["api_key"] = [](const config::PolicyConfig& e, config::Diagnostics& d) { policies::parse_api_key(e, d); };
    c.supported["ip_filter"] = [](const config::PolicyConfig& e, config::Diagnostics& d) {
      policies::parse_ip_filter(e, d);
    };
    c.supported["cors"] = [](const config::PolicyConfig& e, config::Diagnostics& d) { policies::parse_cors(e, d); };
    c.supported["jwt"] = [](const config::PolicyConfig& e, config::Diagnostics& d) { policies::parse_jwt(e, d); };
    c.supported["rate_limit"] = [](const config::PolicyConfig& e, config::Diagnostics& d) {
      policies::parse_rate_limit(e, d);
    };
    return c;
  }();
  return catalog;
}

std::shared_ptr<proxy::Policy> make_policy(const config::PolicyConfig& entry, Runtime& runtime,
                                           const std::string& redis_url) {
  if (entry.type == "security_headers") {
    config::Diagnostics ignore;
    return std::make_shared<policies::SecurityHeadersPolicy>(entry.name,
                                                             policies::parse_security_headers(entry, ignore));
  }
  config::Diagnostics ignore;  // the entry was validated when the config was loaded
  if (entry.type == "require_role")
    return std::make_shared<policies::RequireRolePolicy>(entry.name, policies::parse_require_role(entry, ignore));
  if (entry.type == "api_key")
    return std::make_shared<policies::ApiKeyPolicy>(entry.name, policies::parse_api_key(entry, ignore));
  if (entry.type == "ip_filter")
    return std::make_shared<policies::IpFilterPolicy>(entry.name, policies::parse_ip_filter(entry, ignore));
  if (entry.type == "jwt") return policies::make_jwt_policy(entry, runtime);
  if (entry.type == "rate_limit") return policies::make_rate_limit_policy(entry, redis_url, runtime);
  if (entry.type == "cors") return std::make_shared<policies::CorsPolicy>(entry.name, policies::parse_cors(entry, ignore));
  return nullptr;
}

}  // namespace gh::app
