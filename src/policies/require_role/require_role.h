// RequireRolePolicy: 403 unless the verified caller holds one of the roles (SPEC §2).
// Reads ctx.principal (written by jwt or api_key earlier in the chain); no principal: 401.
// Thread: immutable after construction (its refusal counters are per worker).
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/metrics.h"
#include "proxy/policy.h"

namespace gh::policies {

struct RequireRoleConfig {
  std::vector<std::string> roles;
  std::string claim = "role";
};

RequireRoleConfig parse_require_role(const config::PolicyConfig& e, config::Diagnostics& d);

class RequireRolePolicy final : public proxy::Policy {
 public:
  // `metrics` (may be null: not counted; else it outlives the policy) counts each refusal in
  // gatehouse_auth_failures_total{policy=name, reason=no_principal|insufficient_role}.
  RequireRolePolicy(std::string name, RequireRoleConfig cfg, core::Metrics* metrics = nullptr)
      : name_(std::move(name)), cfg_(std::move(cfg)) {
    if (metrics) failures_ = proxy::AuthFailureCounters(*metrics, name_, {"no_principal", "insufficient_role"});
  }
  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "require_role"; }
  std::optional<proxy::Verdict> decide_now(proxy::RequestContext& ctx) override;
  // The decision, for on_request and `gatehouse route`: 0 = allowed, else the status.
  int decide(const proxy::RequestContext& ctx) const;
  const RequireRoleConfig& config() const { return cfg_; }

 private:
  std::string name_;
  RequireRoleConfig cfg_;
  proxy::AuthFailureCounters failures_;
};

}  // namespace gh::policies
