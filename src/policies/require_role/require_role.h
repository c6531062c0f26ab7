// RequireRolePolicy: 403 unless the verified caller holds one of the roles (SPEC §2).
// Reads ctx.principal (written by jwt or api_key earlier in the chain); no principal: 401.
// Thread: immutable after construction.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/policy.h"

namespace gh::policies {

struct RequireRoleConfig {
  std::vector<std::string> roles;
  std::string claim = "role";
};

RequireRoleConfig parse_require_role(const config::PolicyConfig& e, config::Diagnostics& d);

class RequireRolePolicy final : public proxy::Policy {
 public:
  RequireRolePolicy(std::string name, RequireRoleConfig cfg) : name_(std::move(name)), cfg_(std::move(cfg)) {}
  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "require_role"; }
  std::optional<proxy::Verdict> decide_now(proxy::RequestContext& ctx) override;
  // The decision, for on_request and `gatehouse route`: 0 = allowed, else the status.
  int decide(const proxy::RequestContext& ctx) const;
  const RequireRoleConfig& config() const { return cfg_; }

 private:
  std::string name_;
  RequireRoleConfig cfg_;
};

}  // namespace gh::policies
