#include "app/route_cmd.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>

#include <fmt/format.h>

#include "app/runtime.h"
#include "app/snapshot_builder.h"
#include "core/cidr.h"
#include "core/strings.h"
#include "http/parser.h"
#include "policies/jwt/jwt.h"
#include "policies/rate_limit/rate_limit.h"
#include "http/websocket.h"
#include "proxy/exchange.h"
#include "proxy/local_reply.h"
#include "proxy/offline.h"
#include "proxy/request_checks.h"
#include "proxy/request_context.h"
#include "proxy/worker.h"

namespace gh::app {

namespace {

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

// Prints what the exchange meets, as it meets it.
class RouteReport final : public proxy::ExchangeObserver {
 public:
  // `control`: the command's control loop, run while a JWKS policy waits for its keys.
  RouteReport(const http::RequestHead& req, std::string_view peer, boost::asio::io_context& control)
      : req_(req), peer_(peer), control_(control) {}

  void routed(const proxy::RequestContext& ctx, int idx) override {
    print_client(ctx);
    if (ctx.normalized_path() != req_.path) fmt::print("path:     {} (normalized)\n", ctx.normalized_path());
    const std::string_view routed_as = proxy::routing_method(req_);
    if (routed_as != req_.method)
      fmt::print("routed:   as {} (a CORS preflight is routed as the request it announces)\n", routed_as);
    if (idx < 0) {
      fmt::print("route:    none matches\n");
      return;
    }
    const proxy::CompiledRoute& route = *ctx.route();
    const auto& rc = *route.config;
    const char* kind =
        rc.kind == config::MatchKind::Exact ? "exact" : rc.kind == config::MatchKind::Prefix ? "path" : "regex";
    fmt::print("route:    routes[{}] \"{}\" ({} {}{})\n", idx, rc.name, kind, rc.pattern,
               rc.strip_prefix ? ", strip_prefix" : "");
    if (req_.fields.count("upgrade") == 1 && http::is_websocket_upgrade(req_.fields.get("upgrade")))
      fmt::print("upgrade:  {}\n", rc.websocket ? "WebSocket (a tunnel opens on the service's valid 101)"
                                                : "WebSocket not allowed on this route: sent as a plain request");
    if (route.chain.empty()) fmt::print("policies: none\n");
  }

  // Rate limits are described, not run, so that asking does not spend anybody's budget.
  bool run_policy(const proxy::RequestContext&, std::size_t i, const proxy::Policy& p) override {
    if (p.type() == "rate_limit") {
      fmt::print("policy {}: {} ({}): not run (would spend budget): {}\n", i + 1, p.name(), p.type(),
                 policies::explain(static_cast<const policies::RateLimitPolicy&>(p), &req_.fields));
      return false;
    }
    wait_for_keys(p, control_);
    return true;
  }

  void policy_decided(const proxy::RequestContext& ctx, std::size_t i, const proxy::Policy& p,
                      const proxy::Verdict& v) override {
    if (const auto* reply = std::get_if<proxy::LocalReply>(&v)) {
      fmt::print("policy {}: {} ({}): {}\n", i + 1, p.name(), p.type(), describe(*reply));
      const auto& chain = ctx.route()->chain;
      for (std::size_t j = i + 1; j < chain.size(); ++j)
        fmt::print("policy {}: {} ({}): not reached\n", j + 1, chain[j]->name(), chain[j]->type());
      stopped_ = fmt::format("verdict:  {}: the chain stops at policy {} \"{}\"", describe(*reply), i + 1, p.name());
      return;
    }
    std::string verdict = "continues";
    if (p.type() == "jwt" && ctx.principal) verdict += fmt::format(" (verified, sub \"{}\")", ctx.principal->subject);
    fmt::print("policy {}: {} ({}): {}\n", i + 1, p.name(), p.type(), verdict);
  }

  void sending(const proxy::RequestContext& ctx, const upstream::Endpoint& ep,
               const http::OutgoingRequest& out) override {
    const upstream::Service& svc = *ctx.route()->service;
    fmt::print("service:  {} ({} instance{})\n", svc.name(), svc.endpoints().size(),
               svc.endpoints().size() == 1 ? "" : "s");
    fmt::print("instance: {} (assuming every instance healthy)\n", ep.url);
    fmt::print("upstream: {} {}{}{}\n", out.method, out.path, out.has_query ? "?" : "", out.query);
    proxied_ = true;
  }

  // The last line: what the client would get.
  void conclude(const proxy::RequestContext& ctx, const proxy::MemoryDownstream& down) {
    print_client(ctx);
    if (proxied_) {
      fmt::print("verdict:  proxied to {}\n", ctx.route()->service->name());
    } else if (!stopped_.empty()) {
      fmt::print("{}\n", stopped_);
    } else if (ctx.reply_reason == "health") {
      fmt::print("verdict:  answered by the gateway: aggregated health ({})\n", ctx.normalized_path());
    } else {
      fmt::print("verdict:  {} {} ({})\n", down.status(), proxy::error_message(down.status()), ctx.reply_reason);
    }
  }

 private:
  void print_client(const proxy::RequestContext& ctx) {
    if (client_printed_) return;
    client_printed_ = true;
    fmt::print("client:   {}{}\n", ctx.client_ip(), ctx.client_ip() == peer_ ? "" : " (from X-Forwarded-For)");
  }

  const http::RequestHead& req_;
  std::string peer_;
  boost::asio::io_context& control_;
  std::string stopped_;
  bool proxied_ = false;
  bool client_printed_ = false;
};

}  // namespace

int explain_route(const std::string& config_path, const std::string& method, const std::string& target,
                  const std::vector<std::string>& headers, const std::string& client_ip) {
  auto loaded = load_config(config_path);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) fmt::print(stderr, "{}\n", e.to_string());
    return 1;
  }
  auto cfg = std::make_shared<const config::Config>(std::move(*loaded.config));
  // The command's control loop: JWKS fetches run on it (the exchange runs on the worker's).
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

  // The gateway's own exchange runs the request, with a dry-run upstream: nothing is sent.
  proxy::GatewayShared shared;
  proxy::Worker worker(0, shared, nullptr);
  worker.set_snapshot(snap);
  RouteReport report(req, client_ip, io);
  proxy::MemoryDownstream down(req, client_ip);
  proxy::DryRunOutbound up;
  proxy::ExchangeScratch scratch;
  std::exception_ptr failure;
  {
    proxy::Exchange exchange(worker, snap, down, up, scratch, &report);
    boost::asio::co_spawn(worker.io(), exchange.run(), [&](std::exception_ptr e) { failure = e; });
    worker.io().run();
    if (failure) std::rethrow_exception(failure);
    report.conclude(exchange.context(), down);
  }
  return 0;
}

}  // namespace gh::app
