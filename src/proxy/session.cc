#include "proxy/session.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <exception>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/cidr.h"
#include "core/fault.h"
#include "core/log.h"
#include "core/strings.h"
#include "http/websocket.h"
#include "proxy/local_reply.h"
#include "proxy/request_checks.h"
#include "proxy/request_context.h"
#include "proxy/worker.h"
#include "routing/normalize.h"

namespace gh::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr std::size_t kMaxAttempts = 16;
constexpr int kLingerMillis = 100;

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

// Whether `name` is hop-by-hop, fixed or named by the message's Connection field(s).
bool is_connection_scoped(std::string_view name, const http::Fields& fields) noexcept {
  if (http::is_hop_by_hop(name)) return true;
  for (const auto& f : fields)
    if (iequals(f.name, "connection") && http::has_token(f.value, name)) return true;
  return false;
}

void append_head_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

// Whether a pooled connection is still open with nothing unread: a non-blocking peek sees
// neither EOF, an error, nor bytes the service sent unasked.
bool idle_connection_usable(tcp::socket& s) noexcept {
  char c;
  ssize_t n = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

std::size_t format_chunk_header(char* buf, std::size_t size) {
  auto r = fmt::format_to_n(buf, 20, "{:x}\r\n", size);
  return r.size;
}

}  // namespace

class Session final : public SessionBase, public std::enable_shared_from_this<Session> {
 public:
  Session(Worker& w, tcp::socket s)
      : w_(w), client_(std::move(s)) {
    accepted_ = Clock::now();
  }

  // Connection life: begin() -> [idle: async_wait readable] -> serve() while bytes are buffered
  // -> idle again, until the peer leaves, a deadline passes or the gateway drains. While idle the
  // connection holds no coroutine frame, no buffer, no scratch and no timer: one handler on
  // its socket.
  void begin();
  void wait_idle();
  void on_readable(boost::system::error_code ec);
  void after_serve(std::exception_ptr e, bool keep);
  void shutdown();
  asio::awaitable<bool> serve();

  void close_if_idle() override {
    if (phase_ == Phase::Idle || phase_ == Phase::Linger) cancel_all();
  }
  void check_deadline(Clock::time_point now) override {
    if (now < deadline_) return;
    timed_out_ = true;
    deadline_ = Clock::time_point::max();
    cancel_all();
  }
  void close_now() override {
    boost::system::error_code ignore;
    client_.close(ignore);
    if (sc_) sc_->upstream.close(ignore);
  }

 private:
  enum class Phase { Idle, Linger, Head, Body, Upstream, Write, Tunnel };
  enum class Failure { None, ClientGone, Timeout, BadBody, TooLarge, UpstreamWrite };

  // Deadlines ---------------------------------------------------------------------------
  void arm(Clock::time_point tp) {
    timed_out_ = false;
    deadline_ = tp;
  }
  void arm_after(std::chrono::milliseconds d) { arm(Clock::now() + d); }
  void cancel_all() {
    boost::system::error_code ignore;
    client_.cancel(ignore);
    if (sc_ && sc_->upstream.is_open()) sc_->upstream.cancel(ignore);
  }

  const config::Limits& limits() const { return w_.snapshot()->config->limits; }

  // Buffers -----------------------------------------------------------------------------
  void acquire_in() {
    if (!in_.data) in_ = w_.buffers().get(w_.snapshot()->parse_limits.max_header_bytes);
    if (!sc_) sc_ = w_.take_scratch();
  }
  void release_in() {
    if (in_.data) w_.buffers().put(std::move(in_));
    in_ = {};
    in_begin_ = in_end_ = 0;
    if (sc_) w_.return_scratch(std::move(sc_));
  }
  void acquire_up() {
    if (!up_.data) up_ = w_.buffers().get(w_.snapshot()->parse_limits.max_header_bytes);
    up_begin_ = up_end_ = 0;
  }
  void release_up() {
    if (up_.data) w_.buffers().put(std::move(up_));
    up_ = {};
    up_begin_ = up_end_ = 0;
  }
  void close_upstream() {
    boost::system::error_code ignore;
    sc_->upstream.close(ignore);
  }

  // Request handling ---------------------------------------------------------------------
  asio::awaitable<bool> handle_request();
  asio::awaitable<bool> route_request(RequestContext& ctx, bool keep);
  asio::awaitable<bool> proxy(RequestContext& ctx);
  // Gateway-made responses. Arguments are plain values or lvalues: brace-initialized temporaries
  // as coroutine arguments are destroyed twice by GCC 12 (PR 99576).
  asio::awaitable<bool> local_reply(RequestContext& ctx, int status, std::string_view reason, bool keep);
  asio::awaitable<bool> local_reply(RequestContext& ctx, LocalReply& reply, bool keep);
  asio::awaitable<void> write_parse_error(int status);
  void finish(RequestContext& ctx);
  void build_upstream_head(RequestContext& ctx, const upstream::Endpoint& ep);
  asio::awaitable<Failure> send_request_body(RequestContext& ctx, bool first_write_done);
  asio::awaitable<bool> relay_response(RequestContext& ctx, bool keep);
  asio::awaitable<void> tunnel(RequestContext& ctx);
  asio::awaitable<void> pump(tcp::socket& from, tcp::socket& to, std::uint64_t& counter, config::Duration idle);
  // Whether the connection may carry another request after this one. A request that asked for
  // any upgrade closes the connection after its answer: what the client sent after that head
  // belongs to the protocol it asked for and is never read as a new request.
  bool may_keep_alive() const {
    return sc_->req.keep_alive && !upgrade_asked_ && !w_.shared().draining.load(std::memory_order_relaxed);
  }
  bool request_body_pending() const {
    return sc_->req.body == http::BodyKind::Chunked ? !sc_->chunked_in.done()
                                                : (sc_->req.body == http::BodyKind::Length && body_left_ > 0);
  }
  asio::awaitable<Failure> read_client_more();
  asio::awaitable<bool> write_client(std::string_view a, std::string_view b = {}, std::string_view c = {});

  Worker& w_;
  tcp::socket client_;
  Clock::time_point accepted_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool timed_out_ = false;
  bool alive_ = true;
  bool first_ = true;
  Phase phase_ = Phase::Idle;

  BufferPool::Buffer in_;
  std::size_t in_begin_ = 0, in_end_ = 0;
  BufferPool::Buffer up_;
  std::size_t up_begin_ = 0, up_end_ = 0;

  // Per-request scratch (heads, the outgoing head, field lists), borrowed from the worker
  // while a request is served, so an idle connection holds none of it.
  std::unique_ptr<RequestScratch> sc_;
  std::string peer_ip_;
  std::uint64_t body_left_ = 0;  // Length bodies: bytes not yet read from the client
  bool sent_continue_ = false;
  bool upgrade_asked_ = false;     // the request carried an Upgrade field
  bool websocket_ = false;         // ...asking for WebSocket, well formed, on a route that allows it
  bool response_started_ = false;  // a byte of the response head went to the client
  bool upstream_sent_ = false;     // a byte of this attempt's request went to the instance
  std::string_view deadline_reason_;
  friend void start_session(Worker&, tcp::socket);
};


void start_session(Worker& worker, tcp::socket socket) {
  auto s = std::make_shared<Session>(worker, std::move(socket));
  worker.add_session(s.get());
  s->begin();
}

void Session::begin() {
  boost::system::error_code ec;
  client_.set_option(tcp::no_delay(true), ec);
  auto peer = client_.remote_endpoint(ec);
  if (!ec) {
    auto addr = peer.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
      addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    peer_ip_ = addr.to_string();
  }
  arm(accepted_ + limits().header_timeout);  // the first head is timed from the accept
  wait_idle();
}

void Session::wait_idle() {
  phase_ = Phase::Idle;
  client_.async_wait(tcp::socket::wait_read,
                     [self = shared_from_this()](boost::system::error_code ec) { self->on_readable(ec); });
}

void Session::on_readable(boost::system::error_code ec) {
  if (ec || !alive_) return shutdown();  // idle timeout, drain or peer gone: close quietly
  if (!first_) arm_after(limits().header_timeout);
  first_ = false;
  asio::co_spawn(client_.get_executor(), serve(),
                 [self = shared_from_this()](std::exception_ptr e, bool keep) { self->after_serve(e, keep); });
}

void Session::after_serve(std::exception_ptr e, bool keep) {
  if (e) {
    keep = false;
    w_.shared().internal_errors.fetch_add(1, std::memory_order_relaxed);
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log::error("internal error on a connection from {}: {}", peer_ip_, ex.what());
    } catch (...) {
      log::error("internal error on a connection from {}", peer_ip_);
    }
  }
  if (!keep || !alive_ || w_.shared().draining.load(std::memory_order_relaxed)) return shutdown();
  release_in();
  arm_after(limits().idle_timeout);
  wait_idle();
}

void Session::shutdown() {
  if (!alive_ && !client_.is_open()) return;
  bool was_alive = alive_;
  alive_ = false;
  close_now();
  release_in();
  release_up();
  if (was_alive) {
    w_.remove_session(this);
    w_.shared().open_connections.fetch_sub(1, std::memory_order_relaxed);
  }
}

// Serves requests while their bytes are at hand; true: the connection may wait for the next.
asio::awaitable<bool> Session::serve() {
  for (;;) {
    if (in_begin_ > 0) {
      std::memmove(in_.data.get(), in_.data.get() + in_begin_, in_end_ - in_begin_);
      in_end_ -= in_begin_;
      in_begin_ = 0;
      arm_after(limits().header_timeout);
    }
    phase_ = Phase::Head;
    acquire_in();
    const auto& plimits = w_.snapshot()->parse_limits;
    const std::size_t cap = std::min(in_.cap, std::max<std::size_t>(plimits.max_header_bytes, 1024));
    http::ParseOutcome out;
    for (;;) {
      out = http::parse_request(std::string_view(in_.data.get(), in_end_), plimits, sc_->req);
      if (out.state != http::ParseState::Partial) break;
      if (in_end_ >= cap) {
        out = {http::ParseState::Invalid, 431, "head too large"};
        break;
      }
      auto [rec, n] = co_await client_.async_read_some(asio::buffer(in_.data.get() + in_end_, in_.cap - in_end_), nothrow);
      if (rec) {
        if (timed_out_ && in_end_ > 0) {
          arm_after(std::chrono::seconds(1));
          co_await write_parse_error(408);
        }
        co_return false;
      }
      in_end_ += n;
    }
    if (out.state == http::ParseState::Invalid) {
      co_await write_parse_error(out.status);
      co_return false;
    }
    if (!co_await handle_request()) co_return false;
    if (in_begin_ < in_end_) continue;  // pipelined: the next head is already here
    // Linger: wait for the next request with the buffer still held. A read costs no system call
    // until data comes (the socket is known drained), where waiting for readability without a
    // buffer costs an epoll_ctl per request; a connection quiet for kLingerMillis goes idle.
    if (w_.shared().draining.load(std::memory_order_relaxed)) co_return false;
    if (!w_.try_linger()) co_return true;  // enough lingering already: go idle at once
    phase_ = Phase::Linger;
    in_begin_ = in_end_ = 0;
    arm_after(std::chrono::milliseconds(kLingerMillis));
    auto [lec, ln] = co_await client_.async_read_some(asio::buffer(in_.data.get(), in_.cap), nothrow);
    w_.end_linger();
    if (lec) co_return timed_out_ && alive_;  // quiet: go idle (no buffer held); else closed
    in_end_ = ln;
    arm_after(limits().header_timeout);
  }
}

asio::awaitable<void> Session::write_parse_error(int status) {
  // The head could not be read: no route, no policies; answer, log and close.
  std::string body = error_body(error_message(status));
  RequestContext ctx(w_, w_.snapshot(), sc_->req);
  ctx.start = Clock::now();
  ctx.start_wall = std::chrono::system_clock::now();
  ctx.client_ip_ = peer_ip_;
  w_.next_request_id(ctx.request_id_);
  ctx.status = status;
  ctx.reply_reason = status == 408 ? "head_timeout" : "bad_head";
  const std::string& id = ctx.request_id_;
  sc_->head_out.clear();
  fmt::format_to(std::back_inserter(sc_->head_out),
                 "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Request-Id: {}\r\n"
                 "Connection: close\r\n\r\n",
                 status, reason_phrase(status), body.size(), id);
  phase_ = Phase::Write;
  arm_after(std::chrono::seconds(5));
  response_started_ = true;
  if (co_await write_client(sc_->head_out, body)) ctx.bytes_out = body.size();
  finish(ctx);
}

asio::awaitable<bool> Session::write_client(std::string_view a, std::string_view b, std::string_view c) {
  std::array<asio::const_buffer, 3> bufs{asio::buffer(a.data(), a.size()), asio::buffer(b.data(), b.size()),
                                        asio::buffer(c.data(), c.size())};
  auto [ec, n] = co_await asio::async_write(client_, bufs, nothrow);
  (void)n;
  co_return !ec;
}

void Session::finish(RequestContext& ctx) {
  if (ctx.logged) return;  // exactly once per request
  ctx.logged = true;
  if (ctx.route())
    for (const auto& p : ctx.route()->chain) p->on_log(ctx);
  w_.access_log().record(ctx);
}

asio::awaitable<bool> Session::handle_request() {
  std::shared_ptr<const Snapshot> snap = w_.snapshot();
  RequestContext ctx(w_, snap, sc_->req);
  // The context's strings use the scratch's storage (no allocation once warm), given back at
  // the end. The scratch stays with this session until serve() returns.
  struct LendStrings {
    RequestContext& ctx;
    RequestScratch& sc;
    void swap() {
      ctx.client_ip_.swap(sc.client_ip);
      ctx.request_id_.swap(sc.request_id);
      ctx.path_.swap(sc.path);
    }
    ~LendStrings() { swap(); }
  } lend{ctx, *sc_};
  lend.swap();
  ctx.start = Clock::now();
  ctx.start_wall = std::chrono::system_clock::now();
  {
    std::string_view xff = sc_->req.fields.count("x-forwarded-for") == 1 ? sc_->req.fields.get("x-forwarded-for")
                                                                           : std::string_view{};
    ctx.client_ip_.assign(client_address(peer_ip_, xff, snap->trusted_proxies));
  }
  w_.shared().requests_total.fetch_add(1, std::memory_order_relaxed);
  std::string_view sent_id = sc_->req.fields.get("x-request-id");
  if (valid_request_id(sent_id) && sc_->req.fields.count("x-request-id") == 1) ctx.request_id_.assign(sent_id);
  else w_.next_request_id(ctx.request_id_);

  in_begin_ = sc_->req.head_size;
  body_left_ = sc_->req.body == http::BodyKind::Length ? sc_->req.content_length : 0;
  sc_->chunked_in = http::ChunkedDecoder{};
  sent_continue_ = false;
  upgrade_asked_ = sc_->req.fields.has("upgrade");
  websocket_ = false;
  response_started_ = false;
  const bool keep = may_keep_alive();

  // Session boundary: an exception here is a bug. It answers 500 when nothing of the response
  // was sent yet, closes the connection otherwise, and the request still gets its log line.
  std::exception_ptr failure;
  bool result = false;
  try {
    result = co_await route_request(ctx, keep);
  } catch (...) {
    failure = std::current_exception();
  }
  if (!failure) {
    finish(ctx);  // a no-op when the request was already logged
    co_return result;
  }
  w_.shared().internal_errors.fetch_add(1, std::memory_order_relaxed);
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& ex) {
    log::error("internal error on request {}: {}", ctx.request_id(), ex.what());
  } catch (...) {
    log::error("internal error on request {}", ctx.request_id());
  }
  if (sc_->upstream.is_open()) close_upstream();
  release_up();
  if (!response_started_ && !ctx.logged) {
    ctx.endpoint = nullptr;
    co_await local_reply(ctx, 500, "internal_error", false);
  } else {
    if (!response_started_) ctx.status = 500;
    ctx.reply_reason = "internal_error";
    finish(ctx);
  }
  co_return false;
}

// The request's life after its head is read: checks, routing, the policy chain, then the proxy.
asio::awaitable<bool> Session::route_request(RequestContext& ctx, bool keep) {
  const Snapshot* snap = &ctx.snapshot();
  const auto& cfg = *snap->config;
  const Admission admitted = admit(sc_->req, cfg.limits, ctx.path_);
  if (admitted.status != 0) co_return co_await local_reply(ctx, admitted.status, admitted.reason, keep && !admitted.close);
  if (cfg.health_endpoint && ctx.path_ == *cfg.health_endpoint && (sc_->req.method == "GET" || sc_->req.method == "HEAD")) {
    std::string body = "{\"status\":";
    bool all_ok = true;
    std::string services;
    for (const auto& s : snap->services) {
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
    co_return co_await local_reply(ctx, r, keep);
  }

  routing::MatchInput mi{routing_method(sc_->req), sc_->req.host, ctx.path_, &sc_->req.fields};
  int idx = snap->table->match(mi);
  if (idx < 0) co_return co_await local_reply(ctx, 404, "no_route", keep);
  ctx.set_route(&snap->routes[static_cast<std::size_t>(idx)]);
  websocket_ = admitted.websocket && ctx.route()->config->websocket;

  for (const auto& p : ctx.route()->chain) {
    std::optional<Verdict> v = p->decide_now(ctx);
    if (!v) v = co_await p->on_request(ctx);
    if (auto* r = std::get_if<LocalReply>(&*v)) co_return co_await local_reply(ctx, *r, keep);
  }

  if (sc_->req.body == http::BodyKind::Length && sc_->req.content_length > cfg.limits.max_body_bytes)
    co_return co_await local_reply(ctx, 413, "body_too_large", false);

  GH_FAULT("before_proxy");
  co_return co_await proxy(ctx);
}

asio::awaitable<bool> Session::local_reply(RequestContext& ctx, int status, std::string_view reason, bool keep) {
  LocalReply reply;
  reply.status = status;
  reply.reason = reason;
  co_return co_await local_reply(ctx, reply, keep);
}

asio::awaitable<bool> Session::local_reply(RequestContext& ctx, LocalReply& reply, bool keep) {
  if (request_body_pending()) keep = false;  // the unread body would be taken for the next request
  ctx.status = reply.status;
  ctx.reply_reason = reply.reason;
  std::string body;
  http::ResponseHead head;
  head.status = reply.status;
  for (const auto& [n, v] : reply.headers) head.fields.add(n, v);
  if (reply.empty_body) {
    // no body
  } else if (reply.body.empty()) {
    body = error_body(reply.message.empty() ? error_message(reply.status) : std::string_view(reply.message),
                      reply.status == 503 && ctx.route() ? std::string_view(ctx.route()->service->name())
                                                         : std::string_view{});
    head.fields.set("Content-Type", "application/json");
  } else {
    body = std::move(reply.body);
  }
  if (ctx.route()) {
    const auto& chain = ctx.route()->chain;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) (*it)->on_response(ctx, head);
  }
  sc_->head_out.clear();
  fmt::format_to(std::back_inserter(sc_->head_out), "HTTP/1.1 {} {}\r\n", reply.status, reason_phrase(reply.status));
  for (const auto& f : head.fields) append_head_field(sc_->head_out, f.name, f.value);
  if (reply.status != 204 && reply.status != 304)
    fmt::format_to(std::back_inserter(sc_->head_out), "Content-Length: {}\r\n", body.size());
  fmt::format_to(std::back_inserter(sc_->head_out), "X-Request-Id: {}\r\n", ctx.request_id());
  if (!keep) sc_->head_out += "Connection: close\r\n";
  else if (sc_->req.version_minor == 0) sc_->head_out += "Connection: keep-alive\r\n";
  sc_->head_out += "\r\n";
  phase_ = Phase::Write;
  arm_after(limits().idle_timeout);
  response_started_ = true;
  bool ok = co_await write_client(sc_->head_out, sc_->req.method == "HEAD" ? std::string_view{} : std::string_view(body));
  ctx.bytes_out = sc_->req.method == "HEAD" ? 0 : body.size();
  finish(ctx);
  co_return ok && keep;
}

void Session::build_upstream_head(RequestContext& ctx, const upstream::Endpoint& ep) {
  const auto& route = *ctx.route();
  std::string_view path = ctx.path_;
  if (!route.strip.empty()) path = routing::strip_prefix(path, route.strip);

  sc_->out_fields.clear();
  std::string_view xff_in;
  std::size_t xff_count = 0;
  std::array<std::string_view, 4> connection{};  // values of the Connection fields
  std::size_t n_connection = 0;
  bool many_connection = false;
  for (const auto& f : sc_->req.fields)
    if (iequals(f.name, "connection")) {
      if (n_connection < connection.size()) connection[n_connection++] = f.value;
      else many_connection = true;
    }
  auto connection_scoped = [&](std::string_view name) {
    if (http::is_hop_by_hop(name)) return true;
    if (many_connection) return is_connection_scoped(name, sc_->req.fields);
    for (std::size_t i = 0; i < n_connection; ++i)
      if (http::has_token(connection[i], name)) return true;
    return false;
  };
  for (const auto& f : sc_->req.fields) {
    if (connection_scoped(f.name)) continue;  // Upgrade too: re-added below for WebSocket only
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
    sc_->out_fields.push_back(f);
  }
  for (const auto& p : route.chain) p->on_upstream_request(ctx, sc_->out_fields);

  sc_->head_out.clear();
  sc_->head_out.append(sc_->req.method);
  sc_->head_out.push_back(' ');
  sc_->head_out.append(path);
  if (!sc_->req.query.empty() || sc_->req.target.find('?') != std::string_view::npos) {
    sc_->head_out.push_back('?');  // an empty query ("/x?") is kept as sent (RFC 3986 §6.2.3)
    sc_->head_out.append(sc_->req.query);
  }
  sc_->head_out.append(" HTTP/1.1\r\nHost: ");
  sc_->head_out.append(route.service->config().preserve_host && !sc_->req.host.empty() ? sc_->req.host
                                                                               : std::string_view(ep.host_header));
  sc_->head_out.append("\r\n");
  for (const auto& f : sc_->out_fields) append_head_field(sc_->head_out, f.name, f.value);
  sc_->head_out.append("X-Forwarded-For: ");
  if (xff_count == 1 && !xff_in.empty()) {
    sc_->head_out.append(xff_in);
    sc_->head_out.append(", ");
  }
  sc_->head_out.append(ctx.client_ip());
  sc_->head_out.append("\r\nX-Forwarded-Proto: http\r\n");
  if (!sc_->req.host.empty()) append_head_field(sc_->head_out, "X-Forwarded-Host", sc_->req.host);
  append_head_field(sc_->head_out, "X-Request-Id", ctx.request_id());
  if (websocket_) {
    append_head_field(sc_->head_out, "Connection", "upgrade");
    append_head_field(sc_->head_out, "Upgrade", "websocket");
  }
  if (sc_->req.body == http::BodyKind::Length) {
    fmt::format_to(std::back_inserter(sc_->head_out), "Content-Length: {}\r\n", sc_->req.content_length);
  } else if (sc_->req.body == http::BodyKind::Chunked) {
    sc_->head_out.append("Transfer-Encoding: chunked\r\n");
  }
  sc_->head_out.append("\r\n");
}

asio::awaitable<Session::Failure> Session::read_client_more() {
  // REQUIRES: every buffered byte of the body was consumed (in_begin_ == in_end_).
  in_begin_ = in_end_ = 0;
  if (sc_->req.expect_continue && !sent_continue_) {
    sent_continue_ = true;
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    arm_after(limits().body_timeout);
    if (!co_await write_client(kContinue)) co_return Failure::ClientGone;
  }
  arm_after(limits().body_timeout);
  std::size_t want = in_.cap;
  if (sc_->req.body == http::BodyKind::Length) want = static_cast<std::size_t>(std::min<std::uint64_t>(want, body_left_));
  auto [ec, n] = co_await client_.async_read_some(asio::buffer(in_.data.get(), want), nothrow);
  if (ec) co_return timed_out_ ? Failure::Timeout : Failure::ClientGone;
  in_end_ = n;
  co_return Failure::None;
}

// Streams the request body to sc_->upstream. The buffered part is sent first (after the head
// when `first_write_done` is false, in the same write). Chunked bodies are decoded, checked
// and re-encoded, so an error anywhere aborts before the last chunk reaches the service.
asio::awaitable<Session::Failure> Session::send_request_body(RequestContext& ctx, bool head_sent) {
  const auto& lim = limits();
  const auto body_start = Clock::now();
  auto upstream_write = [&](std::string_view a, std::string_view b, std::string_view c) -> asio::awaitable<bool> {
    std::array<asio::const_buffer, 4> bufs{
        asio::buffer(head_sent ? nullptr : sc_->head_out.data(), head_sent ? 0 : sc_->head_out.size()),
        asio::buffer(a.data(), a.size()), asio::buffer(b.data(), b.size()), asio::buffer(c.data(), c.size())};
    head_sent = true;
    auto [ec, n] = co_await asio::async_write(sc_->upstream, bufs, nothrow);
    if (n > 0) upstream_sent_ = true;
    co_return !ec;
  };
  auto too_slow = [&]() {
    auto elapsed = Clock::now() - body_start;
    if (elapsed <= lim.body_timeout) return false;
    double secs = std::chrono::duration<double>(elapsed).count();
    return static_cast<double>(ctx.bytes_in) / secs < static_cast<double>(lim.min_body_rate);
  };

  if (sc_->req.body == http::BodyKind::None) {
    if (!co_await upstream_write({}, {}, {})) co_return Failure::UpstreamWrite;
    co_return Failure::None;
  }
  if (sc_->req.body == http::BodyKind::Length) {
    for (;;) {
      std::size_t avail = in_end_ - in_begin_;
      std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(avail, body_left_));
      std::string_view part(in_.data.get() + in_begin_, take);
      in_begin_ += take;
      body_left_ -= take;
      ctx.bytes_in += take;
      if (!head_sent || take > 0) {
        phase_ = Phase::Upstream;
        arm_after(w_.snapshot()->config->limits.body_timeout);
        if (!co_await upstream_write(part, {}, {})) co_return Failure::UpstreamWrite;
      }
      if (body_left_ == 0) co_return Failure::None;
      if (too_slow()) co_return Failure::Timeout;
      phase_ = Phase::Body;
      if (Failure f = co_await read_client_more(); f != Failure::None) co_return f;
    }
  }
  // Chunked.
  for (;;) {
    char* base = in_.data.get();
    std::size_t pos = in_begin_, write_pos = in_begin_;
    const std::size_t data_start = in_begin_;
    bool done = false;
    while (pos < in_end_ && !done) {
      auto step = sc_->chunked_in.feed(std::string_view(base + pos, in_end_ - pos));
      if (step.error) co_return Failure::BadBody;
      if (!step.data.empty()) {
        std::memmove(base + write_pos, step.data.data(), step.data.size());
        write_pos += step.data.size();
      }
      pos += step.consumed;
      done = step.done;
      if (step.consumed == 0 && step.data.empty() && !done) break;
    }
    in_begin_ = pos;
    std::size_t payload = write_pos - data_start;
    ctx.bytes_in += payload;
    if (ctx.bytes_in > lim.max_body_bytes) co_return Failure::TooLarge;
    phase_ = Phase::Upstream;
    arm_after(lim.body_timeout);
    if (payload > 0 || !head_sent || done) {
      char hdr[24];
      std::size_t hn = payload > 0 ? format_chunk_header(hdr, payload) : 0;
      std::string_view tail = payload > 0 ? (done ? std::string_view("\r\n0\r\n\r\n") : std::string_view("\r\n"))
                                          : (done ? std::string_view("0\r\n\r\n") : std::string_view{});
      if (!co_await upstream_write(std::string_view(hdr, hn), std::string_view(base + data_start, payload), tail))
        co_return Failure::UpstreamWrite;
    }
    if (done) co_return Failure::None;
    if (too_slow()) co_return Failure::Timeout;
    phase_ = Phase::Body;
    if (Failure f = co_await read_client_more(); f != Failure::None) co_return f;
  }
}

asio::awaitable<bool> Session::proxy(RequestContext& ctx) {
  const CompiledRoute& route = *ctx.route();
  const upstream::Service& svc = *route.service;
  const auto& scfg = svc.config();
  bool keep = may_keep_alive();

  if (!svc.try_acquire()) co_return co_await local_reply(ctx, 503, "max_in_flight", keep);
  struct Release {
    const upstream::Service& s;
    ~Release() { s.release(); }
  } release{svc};

  upstream::PickInput pick = pick_input(ctx, scfg);

  const bool idempotent = is_idempotent(sc_->req.method);
  const bool replayable = sc_->req.body == http::BodyKind::None ||
                          (sc_->req.body == http::BodyKind::Length && body_left_ <= in_end_ - in_begin_);
  const std::size_t body_begin = in_begin_;
  const std::uint64_t body_left_at_start = body_left_;
  std::array<const upstream::Endpoint*, kMaxAttempts> tried{};
  std::size_t n_tried = 0;
  int retries_left = scfg.retries.attempts;
  bool fresh_retry_used = false;
  upstream::Endpoint* ep = nullptr;
  bool reuse_same_endpoint = false;
  // Back to the start of the body for another attempt. REQUIRES: replayable.
  auto rewind = [&] {
    in_begin_ = body_begin;
    body_left_ = body_left_at_start;
    ctx.bytes_in = 0;
  };
  auto retries_on = [&](int status) {
    return std::find(scfg.retries.on_status.begin(), scfg.retries.on_status.end(), status) !=
           scfg.retries.on_status.end();
  };

  for (;;) {
    if (!reuse_same_endpoint) {
      pick.avoid = tried.data();
      pick.avoid_count = n_tried;
      ep = svc.pick(pick);
      if (!ep) co_return co_await local_reply(ctx, 503, "no_healthy_instance", keep);
      if (n_tried < tried.size()) tried[n_tried++] = ep;
    }
    reuse_same_endpoint = false;
    ctx.endpoint = ep;
    ep->requests.fetch_add(1, std::memory_order_relaxed);
    ep->in_flight.fetch_add(1, std::memory_order_relaxed);
    struct InFlight {
      upstream::Endpoint* e;
      ~InFlight() { e->in_flight.fetch_sub(1, std::memory_order_relaxed); }
    } in_flight{ep};
    const auto t0 = Clock::now();

    // Connection: the pool's most recent idle one, or a new one.
    close_upstream();
    bool reused = !fresh_retry_used && w_.pool().take(ep->pool_key, upstream::steady_now_ms(), sc_->upstream);
    if (reused && !idempotent && !idle_connection_usable(sc_->upstream)) {
      // A request that may not be replayed never goes on a pooled connection the service has
      // already closed (or that holds stray bytes): it would fail after being sent. One peek,
      // for non-idempotent requests only; an idempotent one is replayed instead if it fails.
      close_upstream();
      reused = false;
    }
    if (!reused) {
      sc_->upstream = tcp::socket(client_.get_executor());
      phase_ = Phase::Upstream;
      arm_after(scfg.connect_timeout);
      auto [cec] = co_await sc_->upstream.async_connect(ep->address, nothrow);
      if (cec) {
        bool was_timeout = timed_out_;
        close_upstream();
        ep->report_connect_failure(upstream::steady_now_ms());
        // Nothing was sent: safe to try another instance whatever the method.
        if (retries_left > 0 && scfg.retries.on_connect_failure) {
          --retries_left;
          continue;
        }
        ctx.upstream_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        co_return co_await local_reply(ctx, was_timeout ? 504 : 502,
                                       was_timeout ? "connect_timeout" : "connect_failed", keep);
      }
      boost::system::error_code ignore;
      sc_->upstream.set_option(tcp::no_delay(true), ignore);
    }

    build_upstream_head(ctx, *ep);
    upstream_sent_ = false;
    Failure f = co_await send_request_body(ctx, false);
    // At most once for what may not be repeated (SPEC §3): once a byte of the request may have
    // reached the instance, only an idempotent request is sent again.
    const bool may_resend = replayable && (idempotent || !upstream_sent_);
    if (f == Failure::UpstreamWrite && reused && may_resend && !fresh_retry_used) {
      // A pooled connection the service had closed: replay on a fresh one.
      fresh_retry_used = true;
      reuse_same_endpoint = true;
      rewind();
      continue;
    }
    if (f == Failure::UpstreamWrite && !upstream_sent_ && replayable && retries_left > 0 &&
        scfg.retries.on_connect_failure) {
      // Nothing reached the instance: as a connect failure, another instance may take it.
      close_upstream();
      ep->report_connect_failure(upstream::steady_now_ms());
      --retries_left;
      rewind();
      continue;
    }
    if (f != Failure::None) {
      close_upstream();
      switch (f) {
        case Failure::ClientGone:  // logged as nginx does: 499, the client closed the request
          ctx.status = 499;
          ctx.reply_reason = "client_gone";
          finish(ctx);
          co_return false;
        case Failure::Timeout: co_return co_await local_reply(ctx, 408, "body_timeout", false);
        case Failure::BadBody: co_return co_await local_reply(ctx, 400, "bad_chunked_body", false);
        case Failure::TooLarge: co_return co_await local_reply(ctx, 413, "body_too_large", false);
        default:
          ep->report_connect_failure(upstream::steady_now_ms());
          co_return co_await local_reply(ctx, 502, "upstream_write_failed", false);
      }
    }

    // Response head.
    phase_ = Phase::Upstream;
    arm_after(scfg.response_timeout);
    acquire_up();
    http::ParseOutcome out;
    bool upstream_failed = false, timeout = false;
    const bool is_head = sc_->req.method == "HEAD";
    for (;;) {
      out = http::parse_response(std::string_view(up_.data.get() + up_begin_, up_end_ - up_begin_),
                                 w_.snapshot()->parse_limits, is_head, sc_->resp);
      if (out.state == http::ParseState::Complete && sc_->resp.status >= 100 && sc_->resp.status < 200 && sc_->resp.status != 101) {
        up_begin_ += sc_->resp.head_size;  // interim response: skip it
        continue;
      }
      if (out.state != http::ParseState::Partial) break;
      if (up_begin_ > 0) {
        std::memmove(up_.data.get(), up_.data.get() + up_begin_, up_end_ - up_begin_);
        up_end_ -= up_begin_;
        up_begin_ = 0;
      }
      if (up_end_ >= up_.cap) {
        out = {http::ParseState::Invalid, 502, "response head too large"};
        break;
      }
      auto [rec, n] = co_await sc_->upstream.async_read_some(asio::buffer(up_.data.get() + up_end_, up_.cap - up_end_), nothrow);
      if (rec) {
        upstream_failed = true;
        timeout = timed_out_;
        break;
      }
      up_end_ += n;
    }
    ctx.upstream_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (upstream_failed && !timeout && reused && idempotent && replayable && up_end_ == 0 && !fresh_retry_used) {
      // A pooled connection closed under the request: the service may have read it, so only an
      // idempotent request is replayed, on a fresh connection.
      fresh_retry_used = true;
      reuse_same_endpoint = true;
      rewind();
      release_up();
      continue;
    }
    if (upstream_failed || out.state == http::ParseState::Invalid) {
      close_upstream();
      release_up();
      int status = timeout ? 504 : 502;
      if (!timeout) ep->report_status(502, upstream::steady_now_ms());
      if (idempotent && replayable && retries_left > 0 && retries_on(status)) {
        --retries_left;
        rewind();
        continue;
      }
      co_return co_await local_reply(ctx, status, timeout ? "upstream_timeout" : "bad_response", keep);
    }
    ep->report_status(sc_->resp.status, upstream::steady_now_ms());
    if (idempotent && replayable && retries_left > 0 && retries_on(sc_->resp.status)) {
      --retries_left;
      close_upstream();
      release_up();
      rewind();
      continue;
    }
    if (sc_->resp.status == 101) {
      // A tunnel opens only on the answer RFC 6455 requires, to a WebSocket request.
      const char* bad = nullptr;
      if (!websocket_) bad = "unexpected_upgrade";
      else if (sc_->resp.fields.count("upgrade") != 1 || !http::is_websocket_upgrade(sc_->resp.fields.get("upgrade")) ||
               !http::has_token(sc_->resp.fields.get("connection"), "upgrade"))
        bad = "bad_websocket_upgrade";
      else if (sc_->resp.fields.count("sec-websocket-accept") != 1 ||
               trim_ows(sc_->resp.fields.get("sec-websocket-accept")) !=
                   http::websocket_accept(sc_->req.fields.get("sec-websocket-key")))
        bad = "bad_websocket_accept";
      if (bad) {
        close_upstream();
        release_up();
        co_return co_await local_reply(ctx, 502, bad, false);
      }
    }
    co_return co_await relay_response(ctx, keep);
  }
}

asio::awaitable<bool> Session::relay_response(RequestContext& ctx, bool keep) {
  const auto& route = *ctx.route();
  up_begin_ += sc_->resp.head_size;
  ctx.status = sc_->resp.status;
  const bool is_head = sc_->req.method == "HEAD";
  const bool upgrade = sc_->resp.status == 101;
  const http::BodyKind body = sc_->resp.body;
  const bool client_chunked = (body == http::BodyKind::Chunked || body == http::BodyKind::UntilClose) &&
                              sc_->req.version_minor == 1;
  if (body == http::BodyKind::UntilClose && !client_chunked) keep = false;
  if (request_body_pending()) keep = false;

  // Strip hop-by-hop fields (and those Connection names), keep the rest in order.
  http::Fields& fields = sc_->resp.fields;
  {
    std::array<std::string_view, 4> connection{};  // values of the Connection fields
    std::size_t n_connection = 0;
    bool too_many_connection = false;
    std::string_view upgrade_value;
    for (const auto& f : fields) {
      if (upgrade && iequals(f.name, "upgrade")) upgrade_value = f.value;
      if (iequals(f.name, "connection")) {
        if (n_connection < connection.size()) connection[n_connection++] = f.value;
        else too_many_connection = true;
      }
    }
    if (too_many_connection) {
      // Pathological: fall back to the general (quadratic) check on a copy.
      http::Fields kept;
      for (const auto& f : fields)
        if (!is_connection_scoped(f.name, fields)) kept.add(f.name, f.value);
      fields = std::move(kept);
    }
    fields.remove_if([&](const http::Field& f) {
      if (http::is_hop_by_hop(f.name)) return true;
      for (std::size_t i = 0; i < n_connection; ++i)
        if (http::has_token(connection[i], f.name)) return true;
      if (body != http::BodyKind::None && iequals(f.name, "content-length")) return true;
      return iequals(f.name, "x-request-id");
    });
    if (upgrade) {
      fields.add("Connection", "upgrade");
      if (!upgrade_value.empty()) fields.add("Upgrade", upgrade_value);
    }
  }
  const auto& chain = route.chain;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) (*it)->on_response(ctx, sc_->resp);

  sc_->head_out.clear();
  fmt::format_to(std::back_inserter(sc_->head_out), "HTTP/1.1 {} ", sc_->resp.status);
  sc_->head_out.append(sc_->resp.reason.empty() ? reason_phrase(sc_->resp.status) : sc_->resp.reason);
  sc_->head_out.append("\r\n");
  for (const auto& f : sc_->resp.fields) append_head_field(sc_->head_out, f.name, f.value);
  append_head_field(sc_->head_out, "X-Request-Id", ctx.request_id());
  if (body == http::BodyKind::Length) {
    fmt::format_to(std::back_inserter(sc_->head_out), "Content-Length: {}\r\n", sc_->resp.content_length);
  } else if (client_chunked) {
    sc_->head_out.append("Transfer-Encoding: chunked\r\n");
  }
  if (!upgrade) {
    if (!keep) sc_->head_out.append("Connection: close\r\n");
    else if (sc_->req.version_minor == 0) sc_->head_out.append("Connection: keep-alive\r\n");
  }
  sc_->head_out.append("\r\n");

  phase_ = Phase::Write;
  const auto& lim = limits();
  const auto& scfg = route.service->config();
  bool upstream_clean = false;
  bool client_ok = true;
  response_started_ = true;

  if (upgrade) {
    arm_after(lim.idle_timeout);
    std::string_view rest(up_.data.get() + up_begin_, up_end_ - up_begin_);
    client_ok = co_await write_client(sc_->head_out, rest);
    ctx.bytes_out += rest.size();
    release_up();
    if (client_ok) {
      // Bytes the client sent after its head belong to the new protocol.
      if (in_end_ > in_begin_) {
        auto [ec, n] = co_await asio::async_write(
            sc_->upstream, asio::buffer(in_.data.get() + in_begin_, in_end_ - in_begin_), nothrow);
        ctx.bytes_in += n;
        in_begin_ = in_end_;
        if (ec) client_ok = false;
      }
    }
    if (client_ok) co_await tunnel(ctx);
    finish(ctx);  // the tunnel's line is written when it ends, with the bytes of both ways
    close_upstream();
    co_return false;
  }

  if (body == http::BodyKind::None || is_head) {
    arm_after(lim.idle_timeout);
    client_ok = co_await write_client(sc_->head_out);
    upstream_clean = body == http::BodyKind::None || (is_head && up_begin_ == up_end_);
  } else if (body == http::BodyKind::Length) {
    std::uint64_t left = sc_->resp.content_length;
    bool head_written = false;
    for (;;) {
      std::size_t avail = up_end_ - up_begin_;
      std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(avail, left));
      std::string_view part(up_.data.get() + up_begin_, take);
      up_begin_ += take;
      left -= take;
      ctx.bytes_out += take;
      arm_after(lim.idle_timeout);
      client_ok = co_await write_client(head_written ? std::string_view{} : std::string_view(sc_->head_out), part);
      head_written = true;
      if (!client_ok) break;
      GH_FAULT("after_response_head");
      if (left == 0) {
        upstream_clean = up_begin_ == up_end_;
        break;
      }
      arm_after(scfg.response_timeout);
      auto [ec, n] = co_await sc_->upstream.async_read_some(
          asio::buffer(up_.data.get(), static_cast<std::size_t>(std::min<std::uint64_t>(up_.cap, left))), nothrow);
      if (ec) break;  // truncated by the service: the client sees the connection close
      up_begin_ = 0;
      up_end_ = n;
    }
    if (left != 0) keep = false;
  } else {
    // Chunked or until-close: decode (chunked) and re-frame for the client.
    http::ChunkedDecoder dec;
    bool head_written = false, done = false;
    for (;;) {
      char* base = up_.data.get();
      std::size_t payload_start = up_begin_, write_pos = up_begin_, pos = up_begin_;
      if (body == http::BodyKind::Chunked) {
        while (pos < up_end_ && !done) {
          auto step = dec.feed(std::string_view(base + pos, up_end_ - pos));
          if (step.error) {
            keep = false;
            client_ok = false;  // cannot signal an error after the head: close
            break;
          }
          if (!step.data.empty()) {
            std::memmove(base + write_pos, step.data.data(), step.data.size());
            write_pos += step.data.size();
          }
          pos += step.consumed;
          done = step.done;
        }
      } else {
        write_pos = pos = up_end_;
      }
      up_begin_ = pos;
      std::size_t payload = write_pos - payload_start;
      ctx.bytes_out += payload;
      if (!client_ok) break;
      arm_after(lim.idle_timeout);
      char hdr[24];
      std::size_t hn = (client_chunked && payload > 0) ? format_chunk_header(hdr, payload) : 0;
      std::string_view tail;
      if (client_chunked) {
        if (payload > 0) tail = done ? std::string_view("\r\n0\r\n\r\n") : std::string_view("\r\n");
        else if (done) tail = "0\r\n\r\n";
      }
      if (!head_written || payload > 0 || !tail.empty()) {
        std::array<asio::const_buffer, 4> bufs{
            asio::buffer(head_written ? nullptr : sc_->head_out.data(), head_written ? 0 : sc_->head_out.size()),
            asio::buffer(hdr, hn), asio::buffer(base + payload_start, payload), asio::buffer(tail.data(), tail.size())};
        auto [wec, wn] = co_await asio::async_write(client_, bufs, nothrow);
        (void)wn;
        head_written = true;
        if (wec) {
          client_ok = false;
          break;
        }
      }
      if (done) {
        upstream_clean = up_begin_ == up_end_;
        break;
      }
      arm_after(scfg.response_timeout);
      auto [ec, n] = co_await sc_->upstream.async_read_some(asio::buffer(up_.data.get(), up_.cap), nothrow);
      up_begin_ = 0;
      up_end_ = 0;
      if (ec) {
        if (body == http::BodyKind::UntilClose && ec == asio::error::eof && !timed_out_) {
          done = true;
          if (client_chunked) {
            arm_after(lim.idle_timeout);
            client_ok = co_await write_client("0\r\n\r\n");
          }
        } else {
          keep = false;  // truncated: the client sees the connection close
        }
        break;
      }
      up_end_ = n;
    }
    if (!done) keep = false;
  }

  if (upstream_clean && sc_->resp.keep_alive && client_ok) {
    w_.pool().put(ctx.endpoint->pool_key, std::move(sc_->upstream), upstream::steady_now_ms());
    sc_->upstream = tcp::socket(client_.get_executor());
  } else {
    close_upstream();
  }
  release_up();
  finish(ctx);
  co_return client_ok && keep;
}

// Relays bytes both ways until both sides have finished sending. A half-close (EOF from one
// side) is passed on as a shutdown of sending towards the other, which may go on talking; an
// error on either side, or websocket_idle_timeout without a byte either way, closes both.
asio::awaitable<void> Session::tunnel(RequestContext& ctx) {
  using namespace asio::experimental::awaitable_operators;
  phase_ = Phase::Tunnel;
  const config::Duration idle =
      ctx.route()->config->websocket_idle_timeout.value_or(limits().websocket_idle_timeout);
  arm_after(idle);
  co_await (pump(client_, sc_->upstream, ctx.bytes_in, idle) && pump(sc_->upstream, client_, ctx.bytes_out, idle));
}

asio::awaitable<void> Session::pump(tcp::socket& from, tcp::socket& to, std::uint64_t& counter,
                                    config::Duration idle) {
  std::array<char, 8192> buf;
  boost::system::error_code ignore;
  for (;;) {
    auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), nothrow);
    if (ec == asio::error::eof) {
      to.shutdown(tcp::socket::shutdown_send, ignore);
      co_return;
    }
    if (ec) break;
    arm_after(idle);
    auto [wec, wn] = co_await asio::async_write(to, asio::buffer(buf.data(), n), nothrow);
    counter += wn;
    if (wec) break;
  }
  // Reset, idle timeout or drain: both directions end.
  from.close(ignore);
  to.close(ignore);
}

}  // namespace gh::proxy
