#include "policies/cors/cors.h"

#include <algorithm>

#include "config/reader.h"
#include "core/strings.h"
#include "proxy/request_context.h"

namespace gh::policies {

namespace {
std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}
}  // namespace

bool is_preflight(const http::RequestHead& req) {
  return req.method == "OPTIONS" && req.fields.has("origin") && req.fields.has("access-control-request-method");
}

CorsConfig parse_cors(const config::PolicyConfig& e, config::Diagnostics& d) {
  CorsConfig c;
  config::OptionReader r(e, d);
  r.check_keys({"origins", "methods", "headers", "expose_headers", "credentials", "max_age"});
  r.require("origins", "a list of allowed origins, or \"*\"");
  if (auto origins = r.string_list("origins")) {
    for (std::size_t i = 0; i < origins->size(); ++i) {
      const std::string& o = (*origins)[i];
      if (o == "*") {
        c.any_origin = true;
      } else if (o.rfind("http://", 0) != 0 && o.rfind("https://", 0) != 0) {
        d.error(e.options["origins"], e.path + ".origins",
                "expected origins like https://app.example.com or \"*\", got \"" + o + "\"");
      } else {
        c.origins.push_back(o.back() == '/' ? o.substr(0, o.size() - 1) : o);
      }
    }
  }
  if (auto m = r.string_list("methods")) {
    for (auto& s : *m) s = to_lower(s), std::transform(s.begin(), s.end(), s.begin(), ::toupper);
    c.methods = join(*m);
  }
  if (auto h = r.string_list("headers")) c.headers = join(*h);
  if (auto h = r.string_list("expose_headers")) c.expose_headers = join(*h);
  if (auto b = r.bool_opt("credentials")) c.credentials = *b;
  if (c.credentials && c.any_origin && c.origins.empty())
    d.error(e.options["credentials"], e.path + ".credentials",
            "credentials cannot be allowed for every origin (\"*\"); list the origins");
  if (const YAML::Node n = e.options["max_age"]) {
    auto dur = n.IsScalar() ? parse_duration(n.Scalar()) : std::nullopt;
    if (!dur) d.error(n, e.path + ".max_age", "expected a duration like 10m, or a number of seconds");
    else c.max_age_seconds = std::chrono::duration_cast<std::chrono::seconds>(*dur).count();
  }
  return c;
}

CorsPolicy::CorsPolicy(std::string name, CorsConfig cfg) : name_(std::move(name)), cfg_(std::move(cfg)) {
  if (cfg_.max_age_seconds) max_age_ = std::to_string(*cfg_.max_age_seconds);
}

bool CorsPolicy::origin_allowed(std::string_view origin) const {
  if (origin.empty()) return false;
  for (const auto& o : cfg_.origins)
    if (iequals(o, origin)) return true;
  return cfg_.any_origin;
}

std::optional<proxy::Verdict> CorsPolicy::decide_now(proxy::RequestContext& ctx) {
  const auto& req = ctx.request();
  if (!is_preflight(req)) return proxy::Continue{};
  // A preflight is answered here and never forwarded; on_response adds the origin headers.
  proxy::LocalReply r;
  r.status = 204;
  r.reason = "cors_preflight";
  r.empty_body = true;
  if (origin_allowed(req.fields.get("origin"))) {
    r.headers.emplace_back("Access-Control-Allow-Methods", cfg_.methods);
    std::string_view asked = req.fields.get("access-control-request-headers");
    if (cfg_.headers) {
      if (!cfg_.headers->empty()) r.headers.emplace_back("Access-Control-Allow-Headers", *cfg_.headers);
    } else if (!asked.empty()) {
      r.headers.emplace_back("Access-Control-Allow-Headers", std::string(asked));
    }
    if (!max_age_.empty()) r.headers.emplace_back("Access-Control-Max-Age", max_age_);
  }
  return r;
}

void CorsPolicy::on_response(proxy::RequestContext& ctx, http::ResponseHead& head) {
  std::string_view origin = ctx.request().fields.get("origin");
  if (origin.empty()) return;
  // Responses differ by Origin whenever the allowed set is not "*" alone.
  if (!cfg_.origins.empty() || cfg_.credentials || !cfg_.any_origin) {
    std::string_view vary = head.fields.get("vary");
    if (vary.empty()) head.fields.set("Vary", "Origin");
    else if (!http::has_token(vary, "origin")) head.fields.set("Vary", ctx.keep(std::string(vary) + ", Origin"));
  }
  if (!origin_allowed(origin)) return;
  bool wildcard = cfg_.any_origin && cfg_.origins.empty() && !cfg_.credentials;
  head.fields.set("Access-Control-Allow-Origin", wildcard ? std::string_view("*") : origin);
  if (cfg_.credentials) head.fields.set("Access-Control-Allow-Credentials", "true");
  if (!cfg_.expose_headers.empty()) head.fields.set("Access-Control-Expose-Headers", cfg_.expose_headers);
}

}  // namespace gh::policies
