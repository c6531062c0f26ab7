#include "app/registry.h"

#include <any>

#include "policies/api_key/api_key.h"
#include "policies/cors/cors.h"
#include "policies/ip_filter/ip_filter.h"
#include "policies/jwt/jwt.h"
#include "policies/rate_limit/rate_limit.h"
#include "policies/rate_limit/rate_limit_config.h"
#include "policies/require_role/require_role.h"
#include "policies/security_headers/security_headers.h"

namespace gh::app {

namespace {

// A validator that keeps what `parse` built, so that make_policy builds from it (each entry is
// parsed once, when the file is loaded).
template <class Config, class Parse>
config::PolicyValidator keep(Parse parse) {
  return [parse](const config::PolicyConfig& e, config::Diagnostics& d) -> std::any {
    return std::make_shared<const Config>(parse(e, d));
  };
}

// What the entry's validation built; null when the entry did not come from load_* with
// policy_catalog() (or was built for another type).
template <class Config>
const Config* built(const config::PolicyConfig& entry) {
  const auto* p = std::any_cast<std::shared_ptr<const Config>>(&entry.built);
  return p ? p->get() : nullptr;
}

// Builds `Policy` from the entry's built config; nullptr when there is none.
template <class Policy, class Config>
std::shared_ptr<proxy::Policy> from_built(const config::PolicyConfig& entry) {
  const Config* c = built<Config>(entry);
  return c ? std::make_shared<Policy>(entry.name, *c) : nullptr;
}

}  // namespace

const config::PolicyCatalog& policy_catalog() {
  static const config::PolicyCatalog catalog = [] {
    using namespace policies;
    config::PolicyCatalog c;
    c.supported["security_headers"] = keep<SecurityHeadersConfig>(
        [](const config::PolicyConfig& e, config::Diagnostics& d) { return parse_security_headers(e, d); });
    c.supported["require_role"] = keep<RequireRoleConfig>(
        [](const config::PolicyConfig& e, config::Diagnostics& d) { return parse_require_role(e, d); });
    c.supported["api_key"] =
        keep<ApiKeyConfig>([](const config::PolicyConfig& e, config::Diagnostics& d) { return parse_api_key(e, d); });
    c.supported["ip_filter"] = keep<IpFilterConfig>(
        [](const config::PolicyConfig& e, config::Diagnostics& d) { return parse_ip_filter(e, d); });
    c.supported["cors"] =
        keep<CorsConfig>([](const config::PolicyConfig& e, config::Diagnostics& d) { return parse_cors(e, d); });
    c.supported["jwt"] =
        keep<JwtConfig>([](const config::PolicyConfig& e, config::Diagnostics& d) { return parse_jwt(e, d); });
    // The file's `redis` is not known here: no `store` is resolved by make_policy.
    c.supported["rate_limit"] = keep<RateLimitConfig>(
        [](const config::PolicyConfig& e, config::Diagnostics& d) { return parse_rate_limit(e, d); });
    return c;
  }();
  return catalog;
}

std::shared_ptr<proxy::Policy> make_policy(const config::PolicyConfig& entry, Runtime& runtime,
                                           const std::string& redis_url) {
  using namespace policies;
  if (entry.type == "security_headers") return from_built<SecurityHeadersPolicy, SecurityHeadersConfig>(entry);
  if (entry.type == "require_role") {
    const RequireRoleConfig* c = built<RequireRoleConfig>(entry);
    return c ? std::make_shared<RequireRolePolicy>(entry.name, *c, &runtime.metrics()) : nullptr;
  }
  if (entry.type == "api_key") {
    const ApiKeyConfig* c = built<ApiKeyConfig>(entry);
    return c ? std::make_shared<ApiKeyPolicy>(entry.name, *c, &runtime.metrics()) : nullptr;
  }
  if (entry.type == "ip_filter") return from_built<IpFilterPolicy, IpFilterConfig>(entry);
  if (entry.type == "cors") return from_built<CorsPolicy, CorsConfig>(entry);
  if (entry.type == "jwt") {
    const JwtConfig* c = built<JwtConfig>(entry);
    return c ? make_jwt_policy(entry.name, *c, runtime) : nullptr;
  }
  if (entry.type == "rate_limit") {
    const RateLimitConfig* c = built<RateLimitConfig>(entry);
    return c ? make_rate_limit_policy(entry.name, *c, redis_url, runtime) : nullptr;
  }
  return nullptr;
}

}  // namespace gh::app
