#include "app/route_cmd.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>

#include <fmt/format.h>

#include "app/runtime.h"
#include "app/snapshot_builder.h"
#include "core/check.h"
#include "core/cidr.h"
#include "core/strings.h"
#include "http/parser.h"
#include "policies/jwt/jwt.h"
#include "policies/rate_limit/rate_limit.h"
#include "proxy/local_reply.h"
#include "proxy/request_checks.h"
#include "proxy/request_context.h"
#include "proxy/worker.h"

namespace gh::app {

namespace {

// The policy's decision as the session takes it: at once when it can, else awaited. `io` is
// also the control loop (JWKS fetches): it runs until this decision is in, not until idle.
proxy::Verdict decide(proxy::Policy& p, proxy::RequestContext& ctx, boost::asio::io_context& io) {
  if (auto now = p.decide_now(ctx)) return std::move(*now);
  std::optional<proxy::Verdict> out;
  std::exception_ptr failure;
  boost::asio::co_spawn(io, p.on_request(ctx), [&](std::exception_ptr e, proxy::Verdict v) {
    failure = e;
    if (!e) out = std::move(v);
  });
  io.restart();
  while (!out && !failure && io.run_one() > 0) {
  }
  if (failure) std::rethrow_exception(failure);
  GH_CHECK(out.has_value());
  return std::move(*out);
}

std::string describe(const proxy::LocalReply& r) {
  std::string_view message = r.message.empty() ? proxy::error_message(r.status) : std::string_view(r.message);
  if (r.empty_body || !r.body.empty()) message = proxy::reason_phrase(r.status);
  return fmt::format("{} {} ({})", r.status, message, r.reason);
}

// A jwt policy with a JWKS URL answers from the keys it holds: run the control loop until its
// first fetch has ended (at most 10s), so the verdict is the one a running gateway gives once
// it has its keys.
void wait_for_keys(const proxy::Policy& p, boost::asio::io_context& control) {
  if (p.type() != "jwt") return;
  const auto* source = static_cast<const policies::JwtPolicy&>(p).jwks();
  if (!source) return;
  boost::asio::steady_timer limit(control, std::chrono::seconds(10));
  bool expired = false;
  limit.async_wait([&expired](boost::system::error_code ec) { expired = !ec; });
  control.restart();
  while (source->fetches_finished() == 0 && !expired && control.run_one() > 0) {
  }
  limit.cancel();
  control.poll();  // runs the cancelled wait's handler while `expired` is still here
  if (!source->current())
    fmt::print("note:     the JWKS keys could not be fetched{}\n", expired ? " within 10s" : " (see the log above)");
}

}  // namespace

int explain_route(const std::string& config_path, const std::string& method, const std::string& target,
                  const std::vector<std::string>& headers, const std::string& client_ip) {
  auto loaded = load_config(config_path);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) fmt::print(stderr, "{}\n", e.to_string());
    return 1;
  }
  auto cfg = std::make_shared<const config::Config>(std::move(*loaded.config));
  // The command's control loop: JWKS fetches run on it, and the policies' awaited decisions.
  boost::asio::io_context io;
  Runtime runtime(io.get_executor(), 1);  // one worker: the one below
  auto built = build_snapshot(cfg, nullptr, runtime);
  if (!built) {
    fmt::print(stderr, "gatehouse: {}\n", built.error().context);
    return 1;
  }
  const std::shared_ptr<const proxy::Snapshot>& snap = *built;

  // The request as it would arrive, read by the gateway's own parser.
  std::string upper_method = method;
  for (char& c : upper_method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  bool has_host = false;
  std::string raw = upper_method + " " + target + " HTTP/1.1\r\n";
  for (const auto& h : headers) {
    auto colon = h.find(':');
    if (colon == std::string::npos) {
      fmt::print(stderr, "gatehouse: header \"{}\" is not of the form 'Name: value'\n", h);
      return 2;
    }
    has_host |= iequals(trim_ows(std::string_view(h).substr(0, colon)), "host");
    raw += std::string(trim_ows(std::string_view(h).substr(0, colon))) + ": " +
           std::string(trim_ows(std::string_view(h).substr(colon + 1))) + "\r\n";
  }
  if (!has_host) raw += "Host: localhost\r\n";
  raw += "\r\n";
  fmt::print("request:  {} {}\n", upper_method, target);
  http::RequestHead req;
  http::ParseOutcome parsed = http::parse_request(raw, snap->parse_limits, req);
  if (parsed.state != http::ParseState::Complete) {
    int status = parsed.state == http::ParseState::Invalid ? parsed.status : 400;
    fmt::print("verdict:  {} {} ({})\n", status, proxy::error_message(status), parsed.detail);
    return 0;
  }

  proxy::GatewayShared shared;
  proxy::Worker worker(0, shared, nullptr);
  worker.set_snapshot(snap);
  proxy::RequestContext ctx(worker, snap, req);
  std::string_view xff = req.fields.count("x-forwarded-for") == 1 ? req.fields.get("x-forwarded-for") : std::string_view{};
  ctx.client_ip_.assign(client_address(client_ip, xff, snap->trusted_proxies));
  fmt::print("client:   {}{}\n", ctx.client_ip(), ctx.client_ip() == client_ip ? "" : " (from X-Forwarded-For)");

  const proxy::Admission admitted = proxy::admit(req, cfg->limits, ctx.path_);
  if (admitted.status != 0) {
    fmt::print("verdict:  {} {} ({})\n", admitted.status, proxy::error_message(admitted.status), admitted.reason);
    return 0;
  }
  if (ctx.path_ != req.path) fmt::print("path:     {} (normalized)\n", ctx.path_);
  if (cfg->health_endpoint && ctx.path_ == *cfg->health_endpoint && (req.method == "GET" || req.method == "HEAD")) {
    fmt::print("verdict:  answered by the gateway: aggregated health ({})\n", *cfg->health_endpoint);
    return 0;
  }
  const std::string_view routed_as = proxy::routing_method(req);
  if (routed_as != req.method) fmt::print("routed:   as {} (a CORS preflight is routed as the request it announces)\n", routed_as);
  int idx = snap->table->match({routed_as, req.host, ctx.path_, &req.fields});
  if (idx < 0) {
    fmt::print("route:    none matches\n");
    fmt::print("verdict:  404 No route (no_route)\n");
    return 0;
  }
  const proxy::CompiledRoute& route = snap->routes[static_cast<std::size_t>(idx)];
  ctx.set_route(&route);
  const auto& rc = *route.config;
  const char* kind = rc.kind == config::MatchKind::Exact ? "exact" : rc.kind == config::MatchKind::Prefix ? "path" : "regex";
  fmt::print("route:    routes[{}] \"{}\" ({} {}{})\n", idx, rc.name, kind, rc.pattern,
             rc.strip_prefix ? ", strip_prefix" : "");
  if (admitted.websocket)
    fmt::print("upgrade:  {}\n", rc.websocket ? "WebSocket (a tunnel opens on the service's valid 101)"
                                              : "WebSocket not allowed on this route: sent as a plain request");

  // The chain, run by the gateway's own policy code. Rate limits are described, not run, so
  // that asking does not spend anybody's budget.
  if (route.chain.empty()) fmt::print("policies: none\n");
  for (std::size_t i = 0; i < route.chain.size(); ++i) {
    proxy::Policy& p = *route.chain[i];
    std::string verdict;
    if (p.type() == "rate_limit") {
      verdict = "not run (would spend budget): " +
                policies::explain(static_cast<const policies::RateLimitPolicy&>(p), &req.fields);
    } else {
      wait_for_keys(p, io);
      proxy::Verdict v = decide(p, ctx, io);
      if (auto* reply = std::get_if<proxy::LocalReply>(&v)) {
        fmt::print("policy {}: {} ({}): {}\n", i + 1, p.name(), p.type(), describe(*reply));
        for (std::size_t j = i + 1; j < route.chain.size(); ++j)
          fmt::print("policy {}: {} ({}): not reached\n", j + 1, route.chain[j]->name(), route.chain[j]->type());
        fmt::print("verdict:  {}: the chain stops at policy {} \"{}\"\n", describe(*reply), i + 1, p.name());
        return 0;
      }
      verdict = "continues";
      if (p.type() == "jwt" && ctx.principal)
        verdict += fmt::format(" (verified, sub \"{}\")", ctx.principal->subject);
    }
    fmt::print("policy {}: {} ({}): {}\n", i + 1, p.name(), p.type(), verdict);
  }

  const upstream::Service& svc = *route.service;
  fmt::print("service:  {} ({} instance{})\n", svc.name(), svc.endpoints().size(), svc.endpoints().size() == 1 ? "" : "s");
  if (const upstream::Endpoint* ep = svc.pick(proxy::pick_input(ctx, svc.config())))
    fmt::print("instance: {} (assuming every instance healthy)\n", ep->url);
  std::string_view up_path = ctx.path_;
  if (!route.strip.empty()) up_path = routing::strip_prefix(up_path, route.strip);
  const bool has_query = !req.query.empty() || req.target.find('?') != std::string_view::npos;
  fmt::print("upstream: {} {}{}{}\n", req.method, up_path, has_query ? "?" : "", req.query);
  fmt::print("verdict:  proxied to {}\n", svc.name());
  return 0;
}

}  // namespace gh::app
