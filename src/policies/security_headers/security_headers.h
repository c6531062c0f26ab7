// SecurityHeadersPolicy: adds helmet 8's default response headers and removes X-Powered-By.
// Thread: immutable after construction; shared by every route and worker that names it.
#pragma once

#include <cstdint>
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
  bool keep_powered_by_ = false;                          // X-Powered-By is among untouched_
  // Bit L: a name in set_ is L bytes long. Zero when set_ has more than 64 names or one of 64
  // bytes or more: then on_response looks each name up on its own.
  std::uint64_t name_lengths_ = 0;
};

}  // namespace gh::policies
