#include "app/route_cmd.h"

#include <fmt/format.h>

#include "app/snapshot_builder.h"
#include "policies/api_key/api_key.h"
#include "policies/ip_filter/ip_filter.h"
#include "policies/jwt/jwt.h"
#include "policies/rate_limit/rate_limit.h"
#include "core/strings.h"
#include "http/fields.h"
#include "routing/normalize.h"

namespace gh::app {

int explain_route(const std::string& config_path, const std::string& method, const std::string& target,
                  const std::vector<std::string>& headers) {
  auto loaded = load_config(config_path);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) fmt::print(stderr, "{}\n", e.to_string());
    return 1;
  }
  auto cfg = std::make_shared<const config::Config>(std::move(*loaded.config));
  auto snap = build_snapshot(cfg, nullptr);
  if (!snap) {
    fmt::print(stderr, "gatehouse: {}\n", snap.error().context);
    return 1;
  }
  http::Fields fields;
  for (const auto& h : headers) {
    auto colon = h.find(':');
    if (colon == std::string::npos) {
      fmt::print(stderr, "gatehouse: header \"{}\" is not of the form 'Name: value'\n", h);
      return 2;
    }
    fields.add(trim_ows(std::string_view(h).substr(0, colon)), trim_ows(std::string_view(h).substr(colon + 1)));
  }
  std::string upper_method = method;
  for (char& c : upper_method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string_view path = target, query;
  if (auto q = path.find('?'); q != std::string_view::npos) {
    query = path.substr(q + 1);
    path = path.substr(0, q);
  }
  std::string normalized;
  fmt::print("request:  {} {}\n", upper_method, target);
  if (path.empty() || path[0] != '/' || !routing::normalize_path(path, normalized)) {
    fmt::print("verdict:  400 Bad request (the path cannot be normalized safely)\n");
    return 0;
  }
  if (normalized != path) fmt::print("path:     {} (normalized)\n", normalized);
  const auto& s = **snap;
  if (cfg->health_endpoint && normalized == *cfg->health_endpoint && (upper_method == "GET" || upper_method == "HEAD")) {
    fmt::print("verdict:  answered by the gateway: aggregated health ({})\n", *cfg->health_endpoint);
    return 0;
  }
  routing::MatchInput in{upper_method, fields.get("host"), normalized, &fields};
  int idx = s.table->match(in);
  if (idx < 0) {
    fmt::print("route:    none matches\n");
    fmt::print("verdict:  404 No route\n");
    return 0;
  }
  const auto& route = s.routes[static_cast<std::size_t>(idx)];
  const auto& rc = *route.config;
  const char* kind = rc.kind == config::MatchKind::Exact ? "exact" : rc.kind == config::MatchKind::Prefix ? "path" : "regex";
  fmt::print("route:    routes[{}] \"{}\" ({} {}{})\n", idx, rc.name, kind, rc.pattern,
             rc.strip_prefix ? ", strip_prefix" : "");
  if (route.chain.empty()) fmt::print("policies: none\n");
  for (std::size_t i = 0; i < route.chain.size(); ++i) {
    const auto& p = route.chain[i];
    std::string verdict = "n/a (not computed offline)";
    if (p->type() == "security_headers") {
      verdict = "adds helmet's security headers to the response";
    } else if (p->type() == "jwt") {
      verdict = policies::explain(static_cast<const policies::JwtPolicy&>(*p), fields.get("authorization"));
    } else if (p->type() == "rate_limit") {
      verdict = policies::explain(static_cast<const policies::RateLimitPolicy&>(*p), &fields);
    } else if (p->type() == "ip_filter") {
      std::string_view ip = fields.has("x-client-ip") ? fields.get("x-client-ip") : std::string_view("127.0.0.1");
      verdict = static_cast<const policies::IpFilterPolicy&>(*p).allows(ip)
                    ? "allows " + std::string(ip)
                    : "403 Forbidden for " + std::string(ip);
    } else if (p->type() == "api_key") {
      http::RequestHead req;
      req.fields = fields;
      req.query = query;
      auto who = static_cast<const policies::ApiKeyPolicy&>(*p).consumer(req);
      verdict = !who ? "401 API key required" : who->empty() ? "401 Invalid API key" : "valid, consumer " + *who;
    } else if (p->type() == "cors") {
      verdict = "answers preflights, adds CORS headers for allowed origins";
    } else if (p->type() == "require_role") {
      verdict = "needs one of the roles (depends on the token; see jwt above)";
    }
    fmt::print("policy {}: {} ({}): {}\n", i + 1, p->name(), p->type(), verdict);
  }
  std::string_view up_path = normalized;
  if (!route.strip.empty()) up_path = routing::strip_prefix(up_path, route.strip);
  fmt::print("service:  {} ({} instance{})\n", route.service->name(), route.service->endpoints().size(),
             route.service->endpoints().size() == 1 ? "" : "s");
  auto* ep = route.service->pick({});
  if (ep) fmt::print("instance: {} (assuming every instance healthy)\n", ep->url);
  fmt::print("upstream: {} {}{}{}\n", upper_method, up_path, query.empty() ? "" : "?", query);
  return 0;
}

}  // namespace gh::app
