// SecurityHeadersPolicy: adds helmet 8's default response headers and removes X-Powered-By.
// Thread: immutable after construction; shared by every route and worker that names it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "http/fields.h"
#include "policies/security_headers/security_headers_config.h"
#include "proxy/policy.h"

namespace gh::policies {

class SecurityHeadersPolicy final : public proxy::Policy {
 public:
  SecurityHeadersPolicy(std::string name, const SecurityHeadersConfig& cfg);
  // set_fields_ views set_'s strings: the policy stays where it was built.
  SecurityHeadersPolicy(const SecurityHeadersPolicy&) = delete;
  SecurityHeadersPolicy& operator=(const SecurityHeadersPolicy&) = delete;
  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "security_headers"; }
  std::optional<proxy::Verdict> decide_now(proxy::RequestContext&) override { return proxy::Continue{}; }
  void on_response(proxy::RequestContext& ctx, http::ResponseHead& head) override;

 private:
  std::string name_;
  bool override_;
  std::vector<std::pair<std::string, std::string>> set_;  // headers to add
  std::vector<http::Field> set_fields_;                   // the same as views, to add all at once
  std::vector<std::string> untouched_;                    // `false`: left exactly as the service sent
  bool keep_powered_by_ = false;                          // X-Powered-By is among untouched_
  // by_length_[L], bit i: set_[i] is L bytes long. Used only when by_length_ready_: set_ has
  // at most 64 names, each under 64 bytes; otherwise on_response looks each name up on its own.
  std::array<std::uint64_t, 64> by_length_{};
  bool by_length_ready_ = false;
};

}  // namespace gh::policies
