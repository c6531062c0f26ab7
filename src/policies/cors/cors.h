// CorsPolicy: answers CORS preflights at the gateway (never forwarded) and adds the CORS
// response headers to allowed origins' requests, with Vary: Origin.
// Thread: immutable after construction.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/policy.h"

namespace gh::policies {

struct CorsConfig {
  bool any_origin = false;             // origins: "*"
  std::vector<std::string> origins;    // exact origins, e.g. https://app.example.com
  std::string methods = "GET,HEAD,PUT,PATCH,POST,DELETE";
  std::optional<std::string> headers;  // nullopt: reflect Access-Control-Request-Headers
  std::string expose_headers;
  bool credentials = false;
  std::optional<long long> max_age_seconds;
};

CorsConfig parse_cors(const config::PolicyConfig& e, config::Diagnostics& d);

class CorsPolicy final : public proxy::Policy {
 public:
  CorsPolicy(std::string name, CorsConfig cfg);
  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "cors"; }
  std::optional<proxy::Verdict> decide_now(proxy::RequestContext& ctx) override;
  void on_response(proxy::RequestContext& ctx, http::ResponseHead& head) override;
  bool origin_allowed(std::string_view origin) const;

 private:
  std::string name_;
  CorsConfig cfg_;
  std::string max_age_;
};

// Whether a request is a CORS preflight (OPTIONS with Origin and Access-Control-Request-Method).
bool is_preflight(const http::RequestHead& req);

}  // namespace gh::policies
