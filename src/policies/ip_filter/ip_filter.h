// IpFilterPolicy: 403 `Forbidden` when the client address (after trusted_proxies) is refused.
// Thread: immutable after construction.
#pragma once

#include <string>

#include "config/config.h"
#include "core/cidr.h"
#include "proxy/policy.h"

namespace gh::policies {

struct IpFilterConfig {
  bool allow_list = true;  // true: `allow` (only these pass); false: `deny` (these are refused)
  CidrSet cidrs;
};

IpFilterConfig parse_ip_filter(const config::PolicyConfig& e, config::Diagnostics& d);

class IpFilterPolicy final : public proxy::Policy {
 public:
  IpFilterPolicy(std::string name, IpFilterConfig cfg) : name_(std::move(name)), cfg_(std::move(cfg)) {}
  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "ip_filter"; }
  std::optional<proxy::Verdict> decide_now(proxy::RequestContext& ctx) override;
  bool allows(std::string_view client_ip) const;

 private:
  std::string name_;
  IpFilterConfig cfg_;
};

}  // namespace gh::policies
