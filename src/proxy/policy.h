// Policy: one step of a route's chain (STYLE §4). Built once per named entry under
// `policies:` and shared by every route and worker that names it: immutable after
// construction. Per-request state lives in RequestContext; per-worker state in Worker.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "http/parser.h"

namespace gh::proxy {

class RequestContext;

struct Continue {};

// A response the gateway produces itself.
struct LocalReply {
  int status = 500;
  std::string_view reason;  // stable id for logs and counters, e.g. "no_route"
  std::vector<std::pair<std::string, std::string>> headers{};
  std::string message{};    // the JSON body's "error"; empty: the standard text for the status
  std::string body{};       // a whole body instead of the JSON error (with its Content-Type header)
  bool empty_body = false;  // no body at all (e.g. 204 to a CORS preflight)
};

using Verdict = std::variant<Continue, LocalReply>;

class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string_view name() const = 0;
  virtual std::string_view type() const = 0;
  // Request head is read, nothing has gone upstream. The decision, when it can be taken at once
  // without waiting on I/O (most policies, most of the time): the exchange then spends no
  // coroutine on this step. std::nullopt: it must wait; the exchange co_awaits on_request.
  virtual std::optional<Verdict> decide_now(RequestContext&) { return std::nullopt; }
  // The decision, waiting on I/O where it must. By default decide_now's, or Continue.
  virtual boost::asio::awaitable<Verdict> on_request(RequestContext& ctx) {
    std::optional<Verdict> v = decide_now(ctx);
    co_return v ? std::move(*v) : Verdict{Continue{}};
  }
  // Edits what goes upstream, e.g. headers derived from a verified token.
  virtual void on_upstream_request(RequestContext&, std::vector<http::Field>&) {}
  // Runs for every response, local replies included, in reverse chain order. Synchronous.
  // Views added to the head must outlive the request (static storage or the context's arena).
  virtual void on_response(RequestContext&, http::ResponseHead&) {}
  virtual void on_log(const RequestContext&) {}
};

}  // namespace gh::proxy
