#include "proxy/request_checks.h"

#include "core/strings.h"
#include "http/websocket.h"
#include "proxy/request_context.h"
#include "routing/normalize.h"

namespace gh::proxy {

namespace {
bool has_underscore(std::string_view name) noexcept { return name.find('_') != std::string_view::npos; }

std::string_view cookie_value(std::string_view cookies, std::string_view name) noexcept {
  while (!cookies.empty()) {
    auto semi = cookies.find(';');
    std::string_view item = trim_ows(cookies.substr(0, semi));
    auto eq = item.find('=');
    if (eq != std::string_view::npos && item.substr(0, eq) == name) return item.substr(eq + 1);
    if (semi == std::string_view::npos) break;
    cookies.remove_prefix(semi + 1);
  }
  return {};
}
}  // namespace

Admission admit(http::RequestHead& req, const config::Limits& limits, std::string& normalized) {
  if (req.method == "CONNECT") return {501, "connect_not_implemented", true};
  if (req.target == "*") return {400, "asterisk_target", false};
  if (!routing::normalize_path(req.path, normalized)) return {400, "unsafe_path", true};

  // Many frameworks read '_' as '-': `Transfer_Encoding` could become a second framing field
  // behind the gateway (SPEC limits.underscores_in_headers).
  if (limits.underscores != config::Underscores::Pass) {
    bool any = false;
    for (const auto& f : req.fields) any |= has_underscore(f.name);
    if (any) {
      if (limits.underscores == config::Underscores::Reject) return {400, "underscore_in_field_name", true};
      req.fields.remove_if([](const http::Field& f) { return has_underscore(f.name); });
    }
  }

  // The only upgrade is WebSocket: a GET without a body, with a well-formed key.
  Admission ok;
  if (req.upgrade && req.fields.count("upgrade") == 1 && http::is_websocket_upgrade(req.fields.get("upgrade"))) {
    if (req.method != "GET" || req.body != http::BodyKind::None || req.fields.count("sec-websocket-key") != 1 ||
        !http::valid_websocket_key(req.fields.get("sec-websocket-key")))
      return {400, "bad_websocket_handshake", true};
    ok.websocket = true;
  }
  return ok;
}

std::string_view routing_method(const http::RequestHead& req) noexcept {
  if (req.method == "OPTIONS" && req.fields.has("origin")) {
    std::string_view announced = req.fields.get("access-control-request-method");
    if (!announced.empty()) return announced;
  }
  return req.method;
}

upstream::PickInput pick_input(const RequestContext& ctx, const config::ServiceConfig& service) {
  upstream::PickInput pick;
  if (service.load_balancing != config::Balance::Hash || !service.hash_on) return pick;
  const http::RequestHead& req = ctx.request();
  std::string_view key;
  switch (service.hash_on->kind) {
    case config::HashOn::Kind::ClientIp: key = ctx.client_ip(); break;
    case config::HashOn::Kind::Header: key = req.fields.get(service.hash_on->name); break;
    case config::HashOn::Kind::Cookie: key = cookie_value(req.fields.get("cookie"), service.hash_on->name); break;
    case config::HashOn::Kind::Claim:  // from a verified token only (an authenticating policy ran)
      if (ctx.principal)
        if (const Principal::Claim* c = ctx.principal->claim(service.hash_on->name)) key = c->text;
      break;
  }
  if (!key.empty()) {
    pick.has_hash = true;
    pick.hash = upstream::hash_key(key);
  }
  return pick;
}

}  // namespace gh::proxy
