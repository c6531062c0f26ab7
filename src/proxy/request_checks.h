// Request checks: the decisions every request meets between its head and the policy chain,
// and the balancing key it is picked with. Pure functions over the parsed head and the pinned
// config, taken by the exchange (and so by `gatehouse route`, which runs the same exchange).
// Thread: pure; no state.
#pragma once

#include <string>
#include <string_view>

#include "config/config.h"
#include "http/parser.h"
#include "upstream/service.h"

namespace gh::proxy {

class RequestContext;

// What admit() decided: status 0 admits the request.
struct Admission {
  int status = 0;
  std::string_view reason;     // stable id for logs, e.g. "unsafe_path"
  bool close = false;          // the connection cannot carry another request after the answer
  bool websocket = false;      // a well-formed WebSocket upgrade (the route may still refuse it)
};

// The checks before routing, in the gateway's order: CONNECT (501), the `*` target (400), path
// normalization (400; the normalized path goes to NORMALIZED), field names with '_' (dropped
// from REQ, or 400, per limits.underscores_in_headers) and the WebSocket handshake (400 when a
// WebSocket upgrade is malformed). Any other Upgrade is not an error: it is ignored.
Admission admit(http::RequestHead& req, const config::Limits& limits, std::string& normalized);

// The method a request is routed with: a CORS preflight (OPTIONS with Origin and
// Access-Control-Request-Method) as the request it announces, so `methods` do not hide it.
std::string_view routing_method(const http::RequestHead& req) noexcept;

// The balancing input of SERVICE for this request: with `load_balancing: hash`, the hash of
// `hash_on`'s value (client IP, a header, a cookie, or a claim of the verified token); no hash
// when the value is absent.
upstream::PickInput pick_input(const RequestContext& ctx, const config::ServiceConfig& service);

}  // namespace gh::proxy
