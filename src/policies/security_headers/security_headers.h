// SecurityHeadersPolicy: adds helmet 8's default response headers and removes X-Powered-By.
// Thread: immutable after construction; shared by every route and worker that names it.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "policies/security_headers/security_headers_config.h"
#include "proxy/policy.h"

namespace gh::policies {

class SecurityHeadersPolicy final : public proxy::Policy {
 public:
  SecurityHeadersPolicy(std::string name, const SecurityHeadersConfig& cfg);
  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "security_headers"; }
  std::optional<proxy::Verdict> decide_now(proxy::RequestContext&) override { return proxy::Continue{}; }
  void on_response(proxy::RequestContext& ctx, http::ResponseHead& head) override;

 private:
  std::string name_;
  bool override_;
  std::vector<std::pair<std::string, std::string>> set_;  // headers to add
  std::vector<std::string> untouched_;                    // `false`: left exactly as the service sent
};

}  // namespace gh::policies
