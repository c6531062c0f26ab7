// ApiKeyPolicy: 401 unless a known API key is given in a header or a query parameter; the
// consumer's name goes to the service as X-Consumer-Name (a client-sent copy is removed).
// Thread: immutable after construction (its refusal counters are per worker). Keys are compared
// in constant time.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "proxy/metrics.h"
#include "proxy/policy.h"

namespace gh::policies {

struct ApiKeyConfig {
  std::string header;  // set when the key comes in a header
  std::string query;   // set when the key comes in a query parameter
  std::vector<std::pair<std::string, std::string>> keys;  // key -> consumer name
};

ApiKeyConfig parse_api_key(const config::PolicyConfig& e, config::Diagnostics& d);

class ApiKeyPolicy final : public proxy::Policy {
 public:
  static constexpr std::string_view kConsumerHeader = "X-Consumer-Name";
  // `metrics` (may be null: not counted; else it outlives the policy) counts each refusal in
  // gatehouse_auth_failures_total{policy=name, reason=no_api_key|invalid_api_key}.
  ApiKeyPolicy(std::string name, ApiKeyConfig cfg, core::Metrics* metrics = nullptr)
      : name_(std::move(name)), cfg_(std::move(cfg)) {
    if (metrics) failures_ = proxy::AuthFailureCounters(*metrics, name_, {"no_api_key", "invalid_api_key"});
  }
  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "api_key"; }
  std::optional<proxy::Verdict> decide_now(proxy::RequestContext& ctx) override;
  void on_upstream_request(proxy::RequestContext& ctx, std::vector<http::Field>& fields) override;
  // The consumer for the key the request carries; nullopt: none given; "" : unknown key.
  std::optional<std::string> consumer(const http::RequestHead& req) const;

 private:
  std::string name_;
  ApiKeyConfig cfg_;
  proxy::AuthFailureCounters failures_;
};

}  // namespace gh::policies
