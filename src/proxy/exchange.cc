#include "proxy/exchange.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <exception>

#include <fmt/format.h>

#include "core/cidr.h"
#include "core/fault.h"
#include "core/json.h"
#include "core/log.h"
#include "core/strings.h"
#include "http/websocket.h"
#include "proxy/local_reply.h"
#include "proxy/request_checks.h"
#include "proxy/worker.h"
#include "routing/normalize.h"

namespace gh::proxy {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMaxAttempts = 16;

bool is_idempotent(std::string_view m) noexcept {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "PUT" || m == "DELETE" || m == "TRACE";
}

// 1–128 characters of A-Za-z0-9._:-
bool valid_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}


}  // namespace

Exchange::Exchange(Worker& worker, std::shared_ptr<const Snapshot> snap, Downstream& down, clients::Outbound& up,
                   ExchangeScratch& scratch, ExchangeObserver* observer)
    : worker_(worker),
      snap_(std::move(snap)),
      down_(down),
      up_(up),
      sc_(scratch),
      observer_(observer),
      ctx_(worker, snap_, down.head()) {
  lend_strings();  // the context's strings use the scratch's storage, given back at the end
}

Exchange::~Exchange() { lend_strings(); }

void Exchange::lend_strings() noexcept {
  ctx_.client_ip_.swap(sc_.client_ip);
  ctx_.request_id_.swap(sc_.request_id);
  ctx_.path_.swap(sc_.path);
}

void Exchange::begin() {
  const http::RequestHead& req = down_.head();
  ctx_.start = worker_.clock().now();
  ctx_.start_wall = worker_.clock().wall_now();
  std::string_view xff = req.fields.count("x-forwarded-for") == 1 ? req.fields.get("x-forwarded-for")
                                                                   : std::string_view{};
  ctx_.client_ip_.assign(client_address(down_.peer_ip(), xff, snap_->trusted_proxies));
  std::string_view sent_id = req.fields.get("x-request-id");
  if (valid_request_id(sent_id) && req.fields.count("x-request-id") == 1) ctx_.request_id_.assign(sent_id);
  else worker_.next_request_id(ctx_.request_id_);
  upgrade_asked_ = req.fields.has("upgrade");
  grpc_ = is_grpc(req.fields.get("content-type"));
}

void Exchange::finish() {
  if (ctx_.logged) return;  // exactly once per request
  ctx_.logged = true;
  if (ctx_.route())
    for (const auto& p : ctx_.route()->chain) p->on_log(ctx_);
  if (const ProxyMetrics* m = snap_->metrics.get()) {
    const RouteMetrics& rm = ctx_.route() && ctx_.route()->metrics ? *ctx_.route()->metrics : m->unmatched;
    rm.record(worker_.id(), ctx_.status,
              std::chrono::duration<double>(worker_.clock().now() - ctx_.start).count(), ctx_.upstream_ms);
  }
  worker_.access_log().record(ctx_);
}

asio::awaitable<void> Exchange::reject_head(int status, std::string_view reason) {
  begin();
  co_await local_reply(status, reason, true);
  finish();
}

asio::awaitable<void> Exchange::run() {
  begin();
  // Request boundary: an exception here is a bug. It answers 500 when nothing of the response
  // was sent yet, closes the connection otherwise, and the request still gets its log line.
  std::exception_ptr failure;
  try {
    co_await route();
  } catch (...) {
    failure = std::current_exception();
  }
  co_await join_pump(true);
  if (failure) {
    worker_.shared().internal_errors.fetch_add(1, std::memory_order_relaxed);
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& ex) {
      log::error("internal error on request {}: {}", ctx_.request_id(), ex.what());
    } catch (...) {
      log::error("internal error on request {}", ctx_.request_id());
    }
    up_.close();
    if (!down_.response_started() && !ctx_.logged) {
      ctx_.endpoint = nullptr;
      co_await local_reply(500, "internal_error", true);
    } else {
      if (!down_.response_started()) ctx_.status = 500;
      ctx_.reply_reason = "internal_error";
    }
    down_.abort();
  }
  finish();
}

// The request's life after its head is read: checks, routing, the policy chain, then the proxy.
asio::awaitable<void> Exchange::route() {
  const auto& cfg = *snap_->config;
  http::RequestHead& req = down_.head();
  const Admission admitted = admit(req, cfg.limits, ctx_.path_);
  if (admitted.status != 0) co_return co_await local_reply(admitted.status, admitted.reason, admitted.close);
  if (cfg.health_endpoint && ctx_.path_ == *cfg.health_endpoint && (req.method == "GET" || req.method == "HEAD"))
    co_return co_await health_reply();

  routing::MatchInput mi{routing_method(req), req.host, ctx_.path_, &req.fields};
  int idx = snap_->table->match(mi);
  if (idx >= 0) ctx_.set_route(&snap_->routes[static_cast<std::size_t>(idx)]);
  if (observer_) observer_->routed(ctx_, idx);
  if (idx < 0) co_return co_await local_reply(404, "no_route", false);
  websocket_ = admitted.websocket && ctx_.route()->config->websocket;

  const auto& chain = ctx_.route()->chain;
  for (std::size_t i = 0; i < chain.size(); ++i) {
    Policy& p = *chain[i];
    if (observer_ && !observer_->run_policy(ctx_, i, p)) continue;
    std::optional<Verdict> v = p.decide_now(ctx_);
    if (!v) v = co_await p.on_request(ctx_);
    if (observer_) observer_->policy_decided(ctx_, i, p, *v);
    if (auto* r = std::get_if<LocalReply>(&*v)) co_return co_await local_reply(*r, false);
  }

  if (req.body == http::BodyKind::Length && req.content_length > cfg.limits.max_body_bytes)
    co_return co_await local_reply(413, "body_too_large", true);

  GH_FAULT("before_proxy");
  co_await proxy();
}

asio::awaitable<void> Exchange::health_reply() {
  std::string body = "{\"status\":";
  bool all_ok = true;
  std::string services;
  for (const auto& s : snap_->services) {
    std::size_t healthy = s->available_count();
    if (healthy == 0) all_ok = false;
    if (!services.empty()) services += ",";
    append_json_string(services, s->name());
    services += fmt::format(":{{\"healthy\":{},\"total\":{}}}", healthy, s->endpoints().size());
  }
  body += all_ok ? "\"ok\"" : "\"degraded\"";
  body += ",\"services\":{" + services + "}}";
  LocalReply r{all_ok ? 200 : 503, "health"};
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("Cache-Control", "no-store");
  r.body = std::move(body);
  co_await local_reply(r, false);
}

asio::awaitable<void> Exchange::local_reply(int status, std::string_view reason, bool close) {
  LocalReply reply;
  reply.status = status;
  reply.reason = reason;
  co_await local_reply(reply, close);
}

asio::awaitable<void> Exchange::local_reply(LocalReply& reply, bool close) {
  ctx_.status = reply.status;
  ctx_.reply_reason = reply.reason;
  http::ResponseHead& head = sc_.reply;
  head.reset();
  head.status = reply.status;
  head.reason = reason_phrase(reply.status);
  for (const auto& [n, v] : reply.headers) head.fields.add(n, v);
  std::string& body = sc_.reply_body;
  body.clear();
  if (reply.empty_body) {
    // no body
  } else if (reply.body.empty()) {
    body = error_body(reply.message.empty() ? error_message(reply.status) : std::string_view(reply.message),
                      reply.status == 503 && ctx_.route() ? std::string_view(ctx_.route()->service->name())
                                                          : std::string_view{});
    head.fields.set("Content-Type", "application/json");
  } else {
    body.swap(reply.body);
  }
  const bool as_grpc = grpc_ && reply.status >= 400;
  if (as_grpc) {
    // A gRPC client reads an error from the status in trailers (here a trailers-only answer),
    // never from the HTTP status (SPEC §7). The log keeps the gateway's status.
    body.clear();
    body += std::to_string(grpc_status(reply.status));
    const std::size_t code_len = body.size();
    body += grpc_message(reply.message.empty() ? error_message(reply.status) : std::string_view(reply.message));
    head.status = 200;
    head.reason = reason_phrase(200);
    head.fields.remove("content-type");
    head.fields.add("content-type", "application/grpc");
    head.fields.add("grpc-status", std::string_view(body).substr(0, code_len));
    head.fields.add("grpc-message", std::string_view(body).substr(code_len));
  }
  if (ctx_.route()) {
    const auto& chain = ctx_.route()->chain;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) (*it)->on_response(ctx_, head);
  }
  head.fields.add("X-Request-Id", ctx_.request_id());
  head.body = reply.status == 204 || reply.status == 304 || as_grpc ? http::BodyKind::None : http::BodyKind::Length;
  head.content_length = as_grpc ? 0 : body.size();
  down_.send_head(head, close);
  const bool is_head = down_.head().method == "HEAD" || as_grpc;
  Result<void> sent = co_await down_.send_body(is_head ? std::string_view{} : std::string_view(body), true);
  ctx_.bytes_out = is_head ? 0 : body.size();
  if (!sent) down_.abort();
  finish();
}

void Exchange::build_request(const upstream::Endpoint& ep, http::OutgoingRequest& out) {
  const http::RequestHead& req = down_.head();
  const CompiledRoute& route = *ctx_.route();
  std::string_view path = ctx_.path_;
  if (!route.strip.empty()) path = routing::strip_prefix(path, route.strip);

  std::vector<http::Field>& fields = sc_.out_fields;
  fields.clear();
  std::string_view xff_in;
  std::size_t xff_count = 0;
  const http::ConnectionScope scope(req.fields);
  for (const auto& f : req.fields) {
    if (scope.scoped(f.name)) continue;  // Upgrade too: re-added below for WebSocket only
    if (upgrade_asked_ && iequals(f.name, "http2-settings")) continue;
    if (iequals(f.name, "host") || iequals(f.name, "content-length") || iequals(f.name, "expect") ||
        iequals(f.name, "x-forwarded-proto") || iequals(f.name, "x-forwarded-host") ||
        iequals(f.name, "x-request-id"))
      continue;
    if (iequals(f.name, "x-forwarded-for")) {
      xff_in = f.value;
      ++xff_count;
      continue;
    }
    fields.push_back(f);
  }
  ctx_.upstream_query.reset();
  for (const auto& p : route.chain) p->on_upstream_request(ctx_, fields);

  std::string& xff = sc_.forwarded_for;
  xff.clear();
  if (xff_count == 1 && !xff_in.empty()) {
    xff.append(xff_in);
    xff.append(", ");
  }
  xff.append(ctx_.client_ip());
  fields.push_back({"X-Forwarded-For", xff});
  fields.push_back({"X-Forwarded-Proto", down_.scheme()});
  if (!req.host.empty()) fields.push_back({"X-Forwarded-Host", req.host});
  fields.push_back({"X-Request-Id", ctx_.request_id()});
  if (websocket_) {
    fields.push_back({"Connection", "upgrade"});
    fields.push_back({"Upgrade", "websocket"});
  }

  out.method = req.method;
  out.path = path;
  out.query = ctx_.upstream_query.value_or(req.query);
  out.has_query = ctx_.upstream_query ? !out.query.empty()
                                      : !req.query.empty() || req.target.find('?') != std::string_view::npos;
  out.host = route.service->config().preserve_host && !req.host.empty() ? req.host : std::string_view(ep.host_header);
  out.fields = &fields;
  out.body = req.body;
  out.content_length = req.content_length;
}

// Streams the request head and body to the open connection. The error's source tells who
// failed: Downstream (the client's body) or Upstream (the instance; retryable when nothing of
// the request reached it).
asio::awaitable<Result<void>> Exchange::send_request(const upstream::Endpoint& ep) {
  http::OutgoingRequest out;
  build_request(ep, out);
  if (observer_) observer_->sending(ctx_, ep, out);
  up_.send_head(out);
  const auto& lim = snap_->config->limits;
  const auto body_timeout = grpc_ ? ctx_.route()->service->config().idle_timeout : lim.body_timeout;
  if (grpc_ && ep.http2 && down_.full_duplex() && out.body != http::BodyKind::None) {
    // A gRPC call streams both ways at once: the head goes now, the body follows from a pump
    // of its own while the exchange reads the answer.
    Result<void> opened = co_await up_.send_body({}, false);
    if (!opened) co_return opened.error();
    pump_running_ = true;
    pump_done_ = std::make_unique<asio::steady_timer>(co_await asio::this_coro::executor, Clock::time_point::max());
    asio::co_spawn(pump_done_->get_executor(), pump_body(), [this](std::exception_ptr e) {
      if (e) log::error("internal error in the request body of {}", ctx_.request_id());
      pump_running_ = false;
      pump_done_->cancel();
    });
    co_return Result<void>{};
  }
  for (;;) {
    http::BodyPart part;
    if (!down_.body_now(part)) {
      Result<http::BodyPart> read = co_await down_.read_body();
      if (!read) co_return read.error();
      part = *read;
    }
    ctx_.bytes_in += part.data.size();
    arm(body_timeout);
    Result<void> sent = co_await up_.send_body(part.data, part.last);
    if (!sent) co_return sent.error();
    if (part.last) co_return Result<void>{};
  }
}

asio::awaitable<void> Exchange::pump_body() {
  for (;;) {
    http::BodyPart part;
    if (!down_.body_now(part)) {
      Result<http::BodyPart> read = co_await down_.read_body();
      if (!read) {
        up_.cancel();  // the client's side of the call failed: the service's stream ends too
        co_return;
      }
      part = *read;
    }
    ctx_.bytes_in += part.data.size();
    Result<void> sent = co_await up_.send_body(part.data, part.last);
    if (!sent || part.last) co_return;
  }
}

asio::awaitable<void> Exchange::join_pump(bool stop_reading) {
  if (!pump_running_) co_return;
  up_.close();                          // a send in progress returns
  if (stop_reading) down_.stop_body();  // so does a read
  while (pump_running_) co_await pump_done_->async_wait(asio::as_tuple(asio::use_awaitable));
}

void Exchange::arm(std::chrono::milliseconds d) noexcept {
  if (grpc_deadline_ != Clock::time_point::max()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(grpc_deadline_ - worker_.clock().now());
    d = std::max(std::chrono::milliseconds(0), std::min(d, left));
  }
  down_.arm_after(d);
}

asio::awaitable<void> Exchange::proxy() {
  const CompiledRoute& route = *ctx_.route();
  const upstream::Service& svc = *route.service;
  const auto& scfg = svc.config();
  const http::RequestHead& req = down_.head();

  if (!svc.try_acquire()) co_return co_await local_reply(503, "max_in_flight", false);
  struct Release {
    const upstream::Service& s;
    ~Release() { s.release(); }
  } release{svc};

  if (grpc_) {
    // grpc-timeout bounds the call, within the service's own timeouts.
    const long long t = grpc_timeout_ms(req.fields.get("grpc-timeout"));
    if (t >= 0) grpc_deadline_ = ctx_.start + std::chrono::milliseconds(t);
  }
  upstream::PickInput pick = pick_input(ctx_, scfg);
  const bool idempotent = is_idempotent(req.method);
  const bool replayable = down_.body_replayable();
  const bool is_head = req.method == "HEAD";
  std::array<const upstream::Endpoint*, kMaxAttempts> tried{};
  std::size_t n_tried = 0;
  int retries_left = scfg.retries.attempts;
  bool fresh_retry_used = false;
  bool same_endpoint = false;
  upstream::Endpoint* ep = nullptr;
  // Another attempt, from the start of the body. REQUIRES: replayable.
  auto rewind = [&] {
    down_.rewind_body();
    ctx_.bytes_in = 0;
  };
  auto retries_on = [&](int status) {
    return std::find(scfg.retries.on_status.begin(), scfg.retries.on_status.end(), status) !=
           scfg.retries.on_status.end();
  };

  for (;;) {
    // Another attempt: the last one's pump (a whole, replayable body: it waits on no read) ends
    // with its stream first.
    if (pump_running_) co_await join_pump(false);
    if (!same_endpoint) {
      pick.avoid = tried.data();
      pick.avoid_count = n_tried;
      ep = svc.pick(pick);
      if (!ep) co_return co_await local_reply(503, "no_healthy_instance", false);
      if (n_tried < tried.size()) tried[n_tried++] = ep;
    }
    same_endpoint = false;
    if (down_.cancelled()) co_return client_cancelled();  // nothing goes to a service for it
    ctx_.endpoint = ep;
    ep->requests.fetch_add(1, std::memory_order_relaxed);
    ep->in_flight.fetch_add(1, std::memory_order_relaxed);
    struct InFlight {
      upstream::Endpoint* e;
      ~InFlight() { e->in_flight.fetch_sub(1, std::memory_order_relaxed); }
    } in_flight{ep};
    const auto t0 = worker_.clock().now();
    auto ms_since = [this](Clock::time_point t) {
      return std::chrono::duration<double, std::milli>(worker_.clock().now() - t).count();
    };

    // Connection: the pool's most recent idle one (checked first when the request may not be
    // replayed), or a new one.
    arm(scfg.connect_timeout);
    Result<void> opened = Result<void>{};
    if (fresh_retry_used || !up_.open_pooled_now(ep->pool_key, ep->http2, !idempotent))
      opened = co_await up_.open(ep->address, ep->pool_key, ep->tls.get(), ep->http2, !fresh_retry_used, !idempotent);
    if (!opened && down_.cancelled()) co_return client_cancelled();
    if (!opened) {
      const bool timeout = down_.timed_out();
      ep->report_connect_failure(worker_.clock().coarse_now_ms());
      // Nothing was sent: safe to try another instance whatever the method.
      if (retries_left > 0 && scfg.retries.on_connect_failure) {
        --retries_left;
        continue;
      }
      ctx_.upstream_ms = ms_since(t0);
      co_return co_await local_reply(timeout ? 504 : 502, timeout ? "connect_timeout" : "connect_failed", false);
    }

    Result<void> sent = co_await send_request(*ep);
    if (!sent && down_.cancelled()) co_return client_cancelled();
    if (!sent) {
      const Error& e = sent.error();
      if (e.source == Source::Upstream) {
        // At most once for what may not be repeated (SPEC §3): once a byte of the request may
        // have reached the instance, only an idempotent request is sent again.
        const bool may_resend = replayable && (idempotent || e.retryable);
        if (up_.reused() && may_resend && !fresh_retry_used) {
          // A pooled connection the service had closed: replay on a fresh one.
          up_.close();
          fresh_retry_used = true;
          same_endpoint = true;
          rewind();
          continue;
        }
        up_.close();
        ep->report_connect_failure(worker_.clock().coarse_now_ms());
        if (e.retryable && replayable && retries_left > 0 && scfg.retries.on_connect_failure) {
          // Nothing reached the instance: as a connect failure, another instance may take it.
          --retries_left;
          rewind();
          continue;
        }
        co_return co_await local_reply(502, "upstream_write_failed", true);
      }
      up_.close();
      switch (e.code) {
        case ErrorCode::Timeout: co_return co_await local_reply(408, "body_timeout", true);
        case ErrorCode::BadRequest: co_return co_await local_reply(400, "bad_chunked_body", true);
        case ErrorCode::PayloadTooLarge: co_return co_await local_reply(413, "body_too_large", true);
        default:  // logged as nginx does: 499, the client closed the request
          ctx_.status = 499;
          ctx_.reply_reason = "client_gone";
          down_.abort();
          co_return;
      }
    }

    // Cancelled while the request went out: the connection closes rather than wait for an
    // answer nobody will read.
    if (down_.cancelled()) co_return client_cancelled();
    arm(scfg.response_timeout);
    Result<http::ResponseHead*> head = co_await up_.read_head(is_head);
    ctx_.upstream_ms = ms_since(t0);
    if (!head && down_.cancelled()) co_return client_cancelled();
    if (!head) {
      const bool timeout = down_.timed_out();
      up_.close();
      if (!timeout && head.error().code == ErrorCode::StreamRefused && replayable && !fresh_retry_used) {
        // The instance did not process it (HTTP/2 REFUSED_STREAM or GOAWAY): safe to send
        // again whatever the method, on a new connection.
        fresh_retry_used = true;
        same_endpoint = true;
        rewind();
        continue;
      }
      if (!timeout && head.error().retryable && idempotent && replayable && !fresh_retry_used) {
        // A pooled connection closed under the request: the service may have read it, so only
        // an idempotent request is replayed, on a fresh connection.
        fresh_retry_used = true;
        same_endpoint = true;
        rewind();
        continue;
      }
      const int status = timeout ? 504 : 502;
      if (!timeout) ep->report_status(502, worker_.clock().coarse_now_ms());
      if (idempotent && replayable && retries_left > 0 && retries_on(status)) {
        --retries_left;
        rewind();
        continue;
      }
      co_return co_await local_reply(status, timeout ? "upstream_timeout" : "bad_response", false);
    }
    http::ResponseHead& resp = **head;
    ep->report_status(resp.status, worker_.clock().coarse_now_ms());
    if (idempotent && replayable && retries_left > 0 && retries_on(resp.status)) {
      --retries_left;
      up_.close();
      rewind();
      continue;
    }
    if (resp.status == 101) {
      // A tunnel opens only on the answer RFC 6455 requires, to a WebSocket request.
      const char* bad = nullptr;
      if (!websocket_) bad = "unexpected_upgrade";
      else if (resp.fields.count("upgrade") != 1 || !http::is_websocket_upgrade(resp.fields.get("upgrade")) ||
               !http::has_token(resp.fields.get("connection"), "upgrade"))
        bad = "bad_websocket_upgrade";
      else if (resp.fields.count("sec-websocket-accept") != 1 ||
               trim_ows(resp.fields.get("sec-websocket-accept")) !=
                   http::websocket_accept(req.fields.get("sec-websocket-key")))
        bad = "bad_websocket_accept";
      if (bad) {
        up_.close();
        co_return co_await local_reply(502, bad, true);
      }
    }
    co_return co_await relay_response(resp);
  }
}

// The client cancelled while the request was at the instance: its connection closes (so the
// service's work stops), nothing is answered, and it is logged as nginx does, 499.
void Exchange::client_cancelled() {
  up_.close();
  ctx_.status = 499;
  ctx_.reply_reason = "client_gone";
  down_.abort();
}

asio::awaitable<void> Exchange::relay_response(http::ResponseHead& resp) {
  const CompiledRoute& route = *ctx_.route();
  const auto& lim = snap_->config->limits;
  const auto& scfg = route.service->config();
  ctx_.status = resp.status;
  const bool upgrade = resp.status == 101;

  // End-to-end fields only, in order; the framing is the downstream's to write.
  {
    const http::ConnectionScope scope(resp.fields);
    std::string_view upgrade_value = upgrade ? resp.fields.get("upgrade") : std::string_view{};
    const bool has_body = resp.body != http::BodyKind::None;
    resp.fields.remove_if([&](const http::Field& f) {
      return scope.scoped(f.name) || (has_body && iequals(f.name, "content-length")) || iequals(f.name, "x-request-id");
    });
    if (upgrade) {
      resp.fields.add("Connection", "upgrade");
      if (!upgrade_value.empty()) resp.fields.add("Upgrade", upgrade_value);
    }
  }
  const auto& chain = route.chain;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) (*it)->on_response(ctx_, resp);
  resp.fields.add("X-Request-Id", ctx_.request_id());
  if (resp.reason.empty()) resp.reason = reason_phrase(resp.status);  // HTTP/2 has none
  down_.send_head(resp, false);

  if (upgrade) {
    down_.arm_after(lim.idle_timeout);
    std::string_view rest = up_.take_buffered();
    Result<void> sent = co_await down_.send_body(rest, false);
    ctx_.bytes_out += rest.size();
    if (sent) {
      const std::chrono::milliseconds idle = route.config->websocket_idle_timeout.value_or(lim.websocket_idle_timeout);
      // Counted open while it runs, on the gauge of the snapshot it started on.
      struct Open {
        core::Gauge* g;
        unsigned worker;
        ~Open() {
          if (g) g->add(worker, -1);
        }
      } open{snap_->metrics ? snap_->metrics->websocket_tunnels : nullptr, worker_.id()};
      if (open.g) open.g->add(open.worker, 1);
      co_await down_.tunnel(up_, idle, ctx_.bytes_in, ctx_.bytes_out);
    }
    finish();  // the tunnel's line is written when it ends, with the bytes of both ways
    up_.close();
    down_.abort();
    co_return;
  }

  bool complete = false;
  bool first = true;
  for (;;) {
    if (!first) arm(grpc_ ? scfg.idle_timeout : scfg.response_timeout);
    http::BodyPart part;
    if (!up_.body_now(part)) {
      Result<http::BodyPart> read = co_await up_.read_body();
      if (!read) {
        down_.abort();  // truncated or malformed: the client sees the connection close
        break;
      }
      part = *read;
    }
    ctx_.bytes_out += part.data.size();
    down_.arm_after(lim.idle_timeout);
    if (part.last)
      if (const http::Fields* trailers = up_.trailers()) down_.set_trailers(*trailers);
    Result<void> sent = co_await down_.send_body(part.data, part.last);
    if (!sent) {
      down_.abort();
      break;
    }
    if (first) GH_FAULT("after_response_head");
    first = false;
    if (part.last) {
      complete = true;
      break;
    }
  }
  up_.finish(complete);
  finish();
}

}  // namespace gh::proxy
