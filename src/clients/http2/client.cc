#include "clients/http2/client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <tuple>

#include <fmt/format.h>

#include "clients/http2/nghttp2_memory.h"
#include "core/log.h"
#include "core/strings.h"
#include "http/fields.h"
#include "http/parser.h"

namespace gh::clients::http2 {

namespace asio = boost::asio;
using asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr std::size_t kWriteChunk = 64 * 1024;
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::uint32_t kStreamWindow = 256 * 1024;       // per stream, given back as the client takes it
constexpr std::int32_t kConnectionWindow = 16 * 1024 * 1024;
constexpr std::size_t kMaxResponseHead = 64 * 1024;       // a response head or trailers beyond: bad response

// Fields HTTP/2 forbids (RFC 9113 §8.2.2), and Host, which becomes :authority.
bool not_for_http2(std::string_view lower) noexcept {
  return http::is_hop_by_hop(lower) || lower == "host" || lower == "content-length";
}

nghttp2_nv nv(const std::string& store, const Call::Span& s) {
  auto* base = reinterpret_cast<std::uint8_t*>(const_cast<char*>(store.data()));
  // Values unique to each request are sent as literals: indexed, each would evict a useful
  // entry from the HPACK table and lengthen the encoder's lookups.
  const std::string_view name(store.data() + s.name_off, s.name_len);
  const bool unique = name == "x-request-id" || name == "x-forwarded-for";
  return {base + s.name_off, base + s.value_off, s.name_len, s.value_len,
          unique ? std::uint8_t(NGHTTP2_NV_FLAG_NO_INDEX) : std::uint8_t(NGHTTP2_NV_FLAG_NONE)};
}

void add_span(std::string& store, std::vector<Call::Span>& spans, std::string_view name, std::string_view value,
              bool lower) {
  Call::Span s;
  s.name_off = static_cast<std::uint32_t>(store.size());
  s.name_len = static_cast<std::uint32_t>(name.size());
  if (lower)
    for (char c : name) store.push_back(ascii_lower(c));
  else
    store.append(name);
  s.value_off = static_cast<std::uint32_t>(store.size());
  s.value_len = static_cast<std::uint32_t>(value.size());
  store.append(value);
  spans.push_back(s);
}

std::string endpoint_text(const tcp::endpoint& ep) {
  const std::string a = ep.address().to_string();
  return (ep.address().is_v6() ? "[" + a + "]" : a) + ":" + std::to_string(ep.port());
}

}  // namespace

// ---- Connection -------------------------------------------------------------------------------

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class State { Connecting, Ready, Dead };

  Connection(const asio::any_io_executor& ex, const core::Clock& clock, tcp::endpoint address,
             std::shared_ptr<const TlsTarget> tls)
      : stream_(ex), clock_(clock), address_(address), tls_(std::move(tls)),
        writer_wake_(ex, SteadyClock::time_point::max()), connect_timer_(ex) {}
  ~Connection() {
    if (ng_) nghttp2_session_del(ng_);
  }

  void start();
  // Room for one more stream.
  bool has_room() const noexcept {
    if (state_ == State::Dead || goaway_) return false;
    std::uint32_t limit = 100;  // until the instance's SETTINGS say otherwise (RFC 9113 §6.5.2)
    if (ng_) {
      if (!nghttp2_session_check_request_allowed(ng_)) return false;
      limit = nghttp2_session_get_remote_settings(ng_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    }
    return calls_.size() < limit;
  }
  bool idle() const noexcept { return calls_.empty(); }
  bool is_tls() const noexcept { return tls_ != nullptr; }
  State state() const noexcept { return state_; }
  const std::string& failure() const noexcept { return failure_; }
  bool used_before() const noexcept { return streams_ > 0; }

  void attach(Call* c) { calls_.push_back(c); }
  void detach(Call* c, std::int32_t id, bool rst) noexcept {
    calls_.erase(std::remove(calls_.begin(), calls_.end(), c), calls_.end());
    if (calls_.empty()) idle_since_ = clock_.coarse_now_ms();
    if (ng_ && id > 0 && state_ != State::Dead) {
      nghttp2_session_set_stream_user_data(ng_, id, nullptr);
      if (rst) nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
      kick();
    }
  }
  nghttp2_session* ng() noexcept { return ng_; }
  void count_stream() noexcept { ++streams_; }
  // Wakes the idle writer when nghttp2 has frames to send (or the connection ended): a read
  // that leaves nothing to answer, or a window given back below nghttp2's threshold, does not.
  void kick() noexcept {
    if (writer_idle_ && (state_ == State::Dead || !ng_ || nghttp2_session_want_write(ng_))) writer_wake_.cancel();
  }
  // The writer's pass, done by the only call at work on the connection as it queues its request
  // or body, while the writer is idle and nothing waits to be written: nghttp2's frames go out in
  // a write that needs no wait, and only what the socket does not take is left to the writer.
  // Never from inside nghttp2's callbacks (nghttp2_session_mem_send must not run there).
  void flush();
  // Each second, from the pool: idle close, PING keep-alive. false: the connection is done.
  bool sweep(std::int64_t now);
  void close(const char* why);
  // The instance's first SETTINGS arrived: streams may start.
  void settled();

 private:
  friend ssize_t read_request_body(nghttp2_session*, std::int32_t, std::uint8_t*, std::size_t, std::uint32_t*,
                                   nghttp2_data_source*, void*);
  struct Callbacks;
  asio::awaitable<void> connect();
  asio::awaitable<void> read_loop();
  asio::awaitable<void> write_loop();
  bool fill_out();
  bool begin_session();
  void fail(const std::string& why);

  net::Stream stream_;
  const core::Clock& clock_;
  tcp::endpoint address_;
  std::shared_ptr<const TlsTarget> tls_;
  nghttp2_session* ng_ = nullptr;
  State state_ = State::Connecting;
  bool goaway_ = false;
  std::string failure_;
  std::vector<Call*> calls_;
  std::uint64_t streams_ = 0;
  std::string out_;
  bool writer_idle_ = false;
  asio::steady_timer writer_wake_, connect_timer_;
  std::int64_t idle_since_ = 0, last_heard_ = 0, ping_sent_ = 0;
};

struct Connection::Callbacks {
  static Connection& self(void* p) { return *static_cast<Connection*>(p); }
  static Call* call(nghttp2_session* ng, std::int32_t id) {
    return static_cast<Call*>(nghttp2_session_get_stream_user_data(ng, id));
  }
  static int on_header(nghttp2_session* ng, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void*) {
    if (Call* c = call(ng, frame->hd.stream_id))
      c->on_header({reinterpret_cast<const char*>(name), namelen}, {reinterpret_cast<const char*>(value), valuelen});
    return 0;
  }
  static int on_frame_recv(nghttp2_session* ng, const nghttp2_frame* frame, void* p) {
    Connection& s = self(p);
    switch (frame->hd.type) {
      case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) s.ping_sent_ = 0;
        return 0;
      case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) s.settled();
        return 0;
      case NGHTTP2_GOAWAY:
        s.goaway_ = true;  // no new stream; those beyond its last stream id are closed as refused
        return 0;
      case NGHTTP2_HEADERS:
        if (Call* c = call(ng, frame->hd.stream_id)) c->on_headers_end(frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
        return 0;
      case NGHTTP2_DATA:
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
          if (Call* c = call(ng, frame->hd.stream_id)) c->on_end_stream();
        return 0;
      default: return 0;
    }
  }
  static int on_data_chunk(nghttp2_session* ng, std::uint8_t, std::int32_t id, const std::uint8_t* data,
                           std::size_t len, void*) {
    if (Call* c = call(ng, id)) c->on_data(data, len);
    else nghttp2_session_consume(ng, id, len);  // nobody reads it: the window goes back at once
    return 0;
  }
  static int on_stream_close(nghttp2_session* ng, std::int32_t id, std::uint32_t code, void*) {
    if (Call* c = call(ng, id)) c->on_close(code);
    return 0;
  }
  static ssize_t read_body(nghttp2_session* ng, std::int32_t id, std::uint8_t* buf, std::size_t length,
                           std::uint32_t* flags, nghttp2_data_source* source, void*) {
    // The stream's call, looked up by id: a call that went away (its stream being reset) has
    // cleared it, and its object may already serve another stream.
    (void)source;
    Call* c = call(ng, id);
    if (!c) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    const std::size_t n = std::min(length, c->pending_.size());
    if (n > 0) std::memcpy(buf, c->pending_.data(), n);
    c->pending_.remove_prefix(n);
    if (c->pending_.empty()) {
      if (c->pending_last_) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        c->eof_sent_ = true;
      }
      c->wake_send();
      if (n == 0 && !c->pending_last_) return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(n);
  }
};

ssize_t read_request_body(nghttp2_session* ng, std::int32_t id, std::uint8_t* buf, std::size_t length,
                          std::uint32_t* flags, nghttp2_data_source* source, void* user) {
  return Connection::Callbacks::read_body(ng, id, buf, length, flags, source, user);
}

void Connection::start() {
  idle_since_ = last_heard_ = clock_.coarse_now_ms();
  connect_timer_.expires_after(std::chrono::milliseconds(kConnectMillis));
  connect_timer_.async_wait([w = weak_from_this()](boost::system::error_code ec) {
    auto self = w.lock();
    if (ec || !self || self->state_ != State::Connecting) return;
    self->fail("no connection within " + std::to_string(kConnectMillis) + "ms");
  });
  asio::co_spawn(stream_.get_executor(), connect(), asio::detached);
}

asio::awaitable<void> Connection::connect() {
  auto self = shared_from_this();
  auto [ec] = co_await stream_.socket().async_connect(address_, nothrow);
  if (state_ != State::Connecting) co_return;
  if (ec) {
    fail(ec == asio::error::connection_refused ? "connection refused by " + endpoint_text(address_)
                                               : "cannot connect to " + endpoint_text(address_) + ": " + ec.message());
    co_return;
  }
  boost::system::error_code ignored;
  stream_.socket().set_option(tcp::no_delay(true), ignored);
  if (tls_) {
    Result<void> shaken = co_await tls_handshake(stream_, *tls_, endpoint_text(address_));
    if (state_ != State::Connecting) co_return;
    if (!shaken) {
      fail(shaken.error().context);
      co_return;
    }
    if (stream_.tls()->alpn() != "h2") {
      fail(fmt::format("{} did not agree to HTTP/2 (ALPN h2) in its TLS handshake", endpoint_text(address_)));
      co_return;
    }
  }
  if (!begin_session()) {
    fail("cannot set up an HTTP/2 session");
    co_return;
  }
  // Streams start once the instance's SETTINGS are in (its stream limit above all: a burst of
  // requests on a new connection would otherwise be refused beyond it).
  last_heard_ = clock_.coarse_now_ms();
  asio::co_spawn(stream_.get_executor(), write_loop(), asio::detached);
  asio::co_spawn(stream_.get_executor(), read_loop(), asio::detached);
}

void Connection::settled() {
  if (state_ != State::Connecting) return;
  connect_timer_.cancel();
  state_ = State::Ready;
  for (Call* c : std::vector<Call*>(calls_)) c->on_connection_lost(nullptr);  // "ready": wakes the waiters
}

bool Connection::begin_session() {
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_option* opt = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0) return false;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cb);
    return false;
  }
  nghttp2_session_callbacks_set_on_header_callback(cb, Callbacks::on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, Callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, Callbacks::on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, Callbacks::on_stream_close);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_outbound_ack(opt, 1000);
  nghttp2_option_set_max_settings(opt, 32);
  const int rv = nghttp2_session_client_new3(&ng_, cb, this, opt, nghttp2_memory());
  nghttp2_session_callbacks_del(cb);
  nghttp2_option_del(opt);
  if (rv != 0) {
    ng_ = nullptr;
    return false;
  }
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
  };
  nghttp2_submit_settings(ng_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(ng_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  return true;
}

void Connection::fail(const std::string& why) {
  if (state_ == State::Dead) return;
  const bool was_ready = ng_ != nullptr;
  state_ = State::Dead;
  failure_ = why;
  connect_timer_.cancel();
  writer_wake_.cancel();
  stream_.close();
  if (was_ready) log::debug("HTTP/2 connection to {} ends: {}", endpoint_text(address_), why);
  for (Call* c : std::vector<Call*>(calls_)) c->on_connection_lost(failure_.c_str());
}

void Connection::close(const char* why) {
  if (state_ != State::Dead && ng_) {
    nghttp2_session_terminate_session(ng_, NGHTTP2_NO_ERROR);
    const std::uint8_t* data = nullptr;
    // The GOAWAY, best effort: the socket closes right after.
    for (ssize_t n; (n = nghttp2_session_mem_send(ng_, &data)) > 0;) {
      boost::system::error_code ignored;
      stream_.socket().non_blocking(true, ignored);
      if (!stream_.is_tls()) stream_.socket().write_some(asio::buffer(data, static_cast<std::size_t>(n)), ignored);
    }
  }
  fail(why);
}

bool Connection::sweep(std::int64_t now) {
  if (state_ == State::Dead) return false;
  if (state_ != State::Ready) return true;
  if (calls_.empty() && now - idle_since_ >= kIdleMillis) {
    close("idle");
    return false;
  }
  if (ping_sent_ != 0 && now - ping_sent_ >= kPingTimeoutMillis) {
    fail("PING not answered within " + std::to_string(kPingTimeoutMillis) + "ms");
    return false;
  }
  if (ping_sent_ == 0 && now - last_heard_ >= kPingMillis) {
    ping_sent_ = now;
    nghttp2_submit_ping(ng_, NGHTTP2_FLAG_NONE, nullptr);
    kick();
  }
  return true;
}

asio::awaitable<void> Connection::read_loop() {
  auto self = shared_from_this();
  std::unique_ptr<char[]> buf(new char[kReadChunk]);
  while (state_ != State::Dead) {
    auto [ec, n] = co_await stream_.async_read_some(asio::buffer(buf.get(), kReadChunk), nothrow);
    if (state_ == State::Dead) co_return;
    if (ec) {
      fail(ec == asio::error::eof ? "closed by the instance" : "read failed: " + ec.message());
      co_return;
    }
    last_heard_ = clock_.coarse_now_ms();
    const auto rv = nghttp2_session_mem_recv(ng_, reinterpret_cast<const std::uint8_t*>(buf.get()), n);
    if (rv < 0) {
      fail(std::string("HTTP/2 protocol error: ") + nghttp2_strerror(static_cast<int>(rv)));
      co_return;
    }
    if (!nghttp2_session_want_read(ng_) && !nghttp2_session_want_write(ng_)) {
      fail("the session ended");
      co_return;
    }
    kick();
  }
}

bool Connection::fill_out() {
  while (out_.size() < kWriteChunk) {
    const std::uint8_t* data = nullptr;
    const auto n = nghttp2_session_mem_send(ng_, &data);
    if (n < 0) {
      fail(std::string("HTTP/2 error: ") + nghttp2_strerror(static_cast<int>(n)));
      return false;
    }
    if (n == 0) break;
    out_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
  return true;
}

void Connection::flush() {
  // With other calls at work on the connection, the writer's pass batches their frames into one
  // write.
  if (state_ != State::Ready || calls_.size() > 1 || !writer_idle_ || !out_.empty()) return kick();
  if (!fill_out() || out_.empty()) return;
  const std::array<asio::const_buffer, 1> part{asio::buffer(out_)};
  const std::size_t now = stream_.write_now(part.data(), part.size());
  if (now < out_.size()) {
    out_.erase(0, now);
    writer_wake_.cancel();  // the rest waits for room, in the writer
    return;
  }
  out_.clear();
}

asio::awaitable<void> Connection::write_loop() {
  auto self = shared_from_this();
  while (state_ != State::Dead) {
    // out_ may hold what a call's flush() could not write at once: it goes first.
    if (!fill_out()) co_return;
    if (out_.empty()) {
      writer_idle_ = true;
      co_await writer_wake_.async_wait(nothrow);
      writer_idle_ = false;
      continue;
    }
    // What the socket takes now goes at once; only the rest waits for room.
    std::array<asio::const_buffer, 1> part{asio::buffer(out_)};
    const std::size_t now = stream_.write_now(part.data(), part.size());
    boost::system::error_code ec;
    if (now < out_.size()) {
      net::consume(part, now);
      std::size_t n = 0;
      std::tie(ec, n) = co_await asio::async_write(stream_, part, nothrow);
    }
    out_.clear();
    if (ec && state_ != State::Dead) {
      fail("write failed: " + ec.message());
      co_return;
    }
  }
}

// ---- Pool -------------------------------------------------------------------------------------

Pool::~Pool() { clear(); }

std::shared_ptr<Connection> Pool::take(const std::string& key) {
  auto it = conns_.find(key);
  if (it == conns_.end()) return nullptr;
  for (auto& c : it->second)
    if (c->has_room()) return c;
  return nullptr;
}

std::shared_ptr<Connection> Pool::open(const asio::any_io_executor& ex, const std::string& key,
                                       const tcp::endpoint& address, const TlsTarget* tls) {
  std::shared_ptr<const TlsTarget> t;
  if (tls) t = std::make_shared<TlsTarget>(*tls);
  auto c = std::make_shared<Connection>(ex, clock_, address, std::move(t));
  auto& list = conns_[key];
  list.erase(std::remove_if(list.begin(), list.end(),
                            [](const auto& x) { return x->state() == Connection::State::Dead; }),
             list.end());
  list.push_back(c);
  c->start();
  return c;
}

void Pool::sweep() {
  const std::int64_t now = clock_.coarse_now_ms();
  for (auto it = conns_.begin(); it != conns_.end();) {
    auto& list = it->second;
    list.erase(std::remove_if(list.begin(), list.end(), [now](const auto& c) { return !c->sweep(now); }), list.end());
    it = list.empty() ? conns_.erase(it) : std::next(it);
  }
}

void Pool::clear() {
  for (auto& [key, list] : conns_)
    for (auto& c : list) c->close("the worker stops");
  conns_.clear();
}

std::size_t Pool::connection_count() const {
  std::size_t n = 0;
  for (const auto& [key, list] : conns_) n += list.size();
  return n;
}

// ---- Call -------------------------------------------------------------------------------------

Call::Call(const asio::any_io_executor& ex, Pool& pool)
    : pool_(pool), send_wake_(ex, SteadyClock::time_point::max()), recv_wake_(ex, SteadyClock::time_point::max()) {}

Call::~Call() { detach(); }

void Call::detach() noexcept {
  send_wake_.cancel();  // a send or read in progress (a gRPC body's pump) returns
  recv_wake_.cancel();
  if (!conn_) return;
  pending_ = {};
  conn_->detach(this, id_, id_ > 0 && !closed_ && !(end_stream_ && eof_sent_));
  conn_.reset();
}

void Call::reset_state() noexcept {
  id_ = -1;
  reused_ = cancelled_ = false;
  lost_ = nullptr;
  req_store_.clear();
  req_spans_.clear();
  has_body_ = submitted_ = false;
  pending_ = {};
  pending_last_ = eof_sent_ = false;
  resp_store_.clear();
  trailer_store_.clear();
  resp_spans_.clear();
  trailer_spans_.clear();
  resp_bytes_ = 0;
  head_done_ = head_ready_ = end_stream_ = closed_ = too_large_ = head_request_ = false;
  error_code_ = 0;
  resp_.reset();
  trailers_.clear();
  in_.clear();
  out_.clear();
  handed_ = 0;
}

asio::awaitable<void> Call::wait(asio::steady_timer& t) { co_await t.async_wait(nothrow); }

Error Call::failure(const char* where) const {
  if (cancelled_) return Error::upstream(ErrorCode::UpstreamClosed, std::string("cancelled in the ") + where);
  if (error_code_ == NGHTTP2_REFUSED_STREAM)
    return Error::upstream(ErrorCode::StreamRefused, "the instance refused the stream (not processed)", true);
  if (lost_) return Error::upstream(ErrorCode::UpstreamClosed, fmt::format("{} in the {}", lost_, where));
  if (too_large_) return Error::upstream(ErrorCode::BadResponse, "response head or trailers too large");
  if (closed_)
    return Error::upstream(error_code_ == 0 ? ErrorCode::BadResponse : ErrorCode::UpstreamClosed,
                           fmt::format("stream closed in the {} ({})", where,
                                       nghttp2_http2_strerror(error_code_)));
  return Error::upstream(ErrorCode::UpstreamClosed, std::string("connection lost in the ") + where);
}

asio::awaitable<Result<void>> Call::open(const tcp::endpoint& address, const std::string& pool_key,
                                         const TlsTarget* tls, bool /*http2*/, bool pooled, bool /*check_idle*/) {
  detach();
  reset_state();
  std::shared_ptr<Connection> c = pooled ? pool_.take(pool_key) : nullptr;
  reused_ = c && c->used_before();
  if (!c) c = pool_.open(send_wake_.get_executor(), pool_key, address, tls);
  conn_ = c;
  c->attach(this);
  while (c->state() == Connection::State::Connecting && !cancelled_) co_await wait(recv_wake_);
  if (cancelled_) co_return Error::upstream(ErrorCode::ConnectFailed, "cancelled while connecting", true);
  if (c->state() != Connection::State::Ready) {
    const std::string why = c->failure();
    detach();
    co_return Error::upstream(why.rfind("connection refused", 0) == 0 ? ErrorCode::ConnectRefused
                                                                     : ErrorCode::ConnectFailed,
                              why, true);
  }
  co_return Result<void>{};
}

bool Call::open_pooled_now(const std::string& pool_key, bool /*http2*/, bool /*check_idle*/) noexcept {
  detach();
  reset_state();
  std::shared_ptr<Connection> c = pool_.take(pool_key);
  if (!c || c->state() != Connection::State::Ready) return false;
  reused_ = c->used_before();
  conn_ = std::move(c);
  conn_->attach(this);
  return true;
}

void Call::send_head(const http::OutgoingRequest& req) {
  constexpr std::string_view kMethod = ":method", kScheme = ":scheme", kAuthority = ":authority", kPath = ":path";
  constexpr std::string_view kTe = "te", kTrailers = "trailers", kContentLength = "content-length";
  constexpr std::size_t kMaxDigits = 20;
  const std::string_view scheme = conn_ && conn_->is_tls() ? "https" : "http";
  // The store is sized once to a bound on what it takes, then written in place (its capacity
  // is kept from request to request); each name is lowered as it is copied.
  std::size_t bound = kMethod.size() + req.method.size() + kScheme.size() + scheme.size() + kAuthority.size() +
                      req.host.size() + kPath.size() + req.path.size() + 1 + req.query.size() + kTe.size() +
                      kTrailers.size() + kContentLength.size() + kMaxDigits;
  if (req.fields)
    for (const auto& f : *req.fields) bound += f.name.size() + f.value.size();
  req_store_.resize(bound);
  req_spans_.clear();
  char* const base = req_store_.data();
  std::size_t at = 0;
  auto put = [&](std::string_view v) {
    if (!v.empty()) std::memcpy(base + at, v.data(), v.size());
    at += v.size();
  };
  auto span = [&](std::size_t name_at, std::size_t value_at) {
    req_spans_.push_back({static_cast<std::uint32_t>(name_at), static_cast<std::uint32_t>(value_at - name_at),
                          static_cast<std::uint32_t>(value_at), static_cast<std::uint32_t>(at - value_at)});
  };
  auto add = [&](std::string_view name, std::string_view value) {
    const std::size_t name_at = at;
    put(name);
    const std::size_t value_at = at;
    put(value);
    span(name_at, value_at);
  };
  add(kMethod, req.method);
  add(kScheme, scheme);
  add(kAuthority, req.host);
  // :path: path and query, as HTTP/1.1 would send them.
  {
    const std::size_t name_at = at;
    put(kPath);
    const std::size_t value_at = at;
    put(req.path);
    if (req.has_query) {
      base[at++] = '?';
      put(req.query);
    }
    span(name_at, value_at);
  }
  bool grpc = false;
  if (req.fields)
    for (const auto& f : *req.fields) {
      const std::size_t name_at = at;
      gh::lower_copy(base + at, f.name);
      const std::string_view lower(base + at, f.name.size());
      if (not_for_http2(lower)) continue;
      at += lower.size();
      if (lower == "content-type" && f.value.rfind("application/grpc", 0) == 0) grpc = true;
      const std::size_t value_at = at;
      put(f.value);
      span(name_at, value_at);
    }
  if (grpc) add(kTe, kTrailers);
  if (req.body == http::BodyKind::Length) {
    const std::size_t name_at = at;
    put(kContentLength);
    const std::size_t value_at = at;
    at = static_cast<std::size_t>(std::to_chars(base + at, base + at + kMaxDigits, req.content_length).ptr - base);
    span(name_at, value_at);
  }
  req_store_.resize(at);
  has_body_ = req.body != http::BodyKind::None;
}

Result<void> Call::submit() {
  submitted_ = true;
  if (!conn_ || conn_->state() != Connection::State::Ready) return failure("request head");
  std::vector<nghttp2_nv> list;
  list.reserve(req_spans_.size());
  for (const Span& s : req_spans_) list.push_back(nv(req_store_, s));
  nghttp2_data_provider provider;
  provider.source.ptr = nullptr;
  provider.read_callback = read_request_body;
  const std::int32_t id = nghttp2_submit_request(conn_->ng(), nullptr, list.data(), list.size(),
                                                 has_body_ ? &provider : nullptr, this);
  if (id < 0)
    return Error::upstream(ErrorCode::StreamRefused,
                           std::string("no new stream on this connection: ") + nghttp2_strerror(id), true);
  id_ = id;
  conn_->count_stream();
  conn_->flush();
  return Result<void>{};
}

asio::awaitable<Result<void>> Call::send_body(std::string_view data, bool last) {
  if (!conn_) co_return failure("request body");
  if (!submitted_) {
    if (!has_body_) {
      eof_sent_ = true;
    }
    Result<void> r = submit();
    if (!r) co_return r;
    if (!has_body_) co_return Result<void>{};
  }
  if (eof_sent_) co_return Result<void>{};
  if (data.empty() && !last) co_return Result<void>{};
  pending_ = data;
  pending_last_ = last;
  nghttp2_session_resume_data(conn_->ng(), id_);
  conn_->flush();
  while (!pending_.empty() || (pending_last_ && !eof_sent_)) {
    if (cancelled_ || closed_ || lost_ || !conn_) {
      pending_ = {};
      co_return failure("request body");
    }
    co_await wait(send_wake_);
  }
  co_return Result<void>{};
}

void Call::on_header(std::string_view name, std::string_view value) {
  resp_bytes_ += name.size() + value.size() + 32;
  if (resp_bytes_ > kMaxResponseHead) {
    too_large_ = true;
    return;
  }
  if (!head_done_) add_span(resp_store_, resp_spans_, name, value, false);
  else add_span(trailer_store_, trailer_spans_, name, value, false);
}

void Call::on_headers_end(bool end_stream) {
  if (too_large_) {
    if (conn_ && conn_->ng()) {
      nghttp2_submit_rst_stream(conn_->ng(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_CANCEL);
      conn_->kick();
    }
    recv_wake_.cancel();
    return;
  }
  if (!head_done_) {
    int status = 0;
    for (const Span& s : resp_spans_)
      if (std::string_view(resp_store_.data() + s.name_off, s.name_len) == ":status") {
        std::string_view v(resp_store_.data() + s.value_off, s.value_len);
        std::from_chars(v.data(), v.data() + v.size(), status);
      }
    if (status >= 100 && status < 200) {  // interim: the final head follows
      resp_store_.clear();
      resp_spans_.clear();
      resp_bytes_ = 0;
      return;
    }
    head_done_ = true;
    resp_.reset();
    resp_.status = status;
    resp_.version_minor = 1;
    std::string_view cl;
    for (const Span& s : resp_spans_) {
      std::string_view n(resp_store_.data() + s.name_off, s.name_len);
      std::string_view v(resp_store_.data() + s.value_off, s.value_len);
      if (!n.empty() && n.front() == ':') continue;
      if (n == "content-length") cl = v;
      resp_.fields.add(n, v);
    }
    const bool bodiless = status == 204 || status == 304 || head_request_;
    if (bodiless) {
      resp_.body = http::BodyKind::None;  // the service's content-length, if any, stays
      if (!cl.empty()) std::from_chars(cl.data(), cl.data() + cl.size(), resp_.content_length);
    } else if (end_stream) {
      resp_.body = http::BodyKind::Length;  // an empty body, framed as one for HTTP/1.1
      resp_.content_length = 0;
    } else if (!cl.empty()) {
      resp_.body = http::BodyKind::Length;  // nghttp2 checks the DATA against it
      std::from_chars(cl.data(), cl.data() + cl.size(), resp_.content_length);
    } else {
      resp_.body = http::BodyKind::Chunked;  // streamed: the client's side frames it
    }
    head_ready_ = true;
  } else {
    for (const Span& s : trailer_spans_) {
      std::string_view n(trailer_store_.data() + s.name_off, s.name_len);
      if (!n.empty() && n.front() == ':') continue;
      trailers_.add(n, std::string_view(trailer_store_.data() + s.value_off, s.value_len));
    }
  }
  if (end_stream) end_stream_ = true;
  recv_wake_.cancel();
}

void Call::on_data(const std::uint8_t* data, std::size_t len) {
  in_.append(reinterpret_cast<const char*>(data), len);
  recv_wake_.cancel();
}

void Call::on_end_stream() {
  end_stream_ = true;
  recv_wake_.cancel();
}

void Call::on_close(std::uint32_t error_code) {
  closed_ = true;
  error_code_ = error_code;
  recv_wake_.cancel();
  send_wake_.cancel();
}

void Call::on_connection_lost(const char* why) {
  if (why) lost_ = why;
  recv_wake_.cancel();
  send_wake_.cancel();
}

asio::awaitable<Result<http::ResponseHead*>> Call::read_head(bool head_request) {
  head_request_ = head_request;
  if (!submitted_) {
    Result<void> r = submit();
    if (!r) co_return r.error();
  }
  while (!head_ready_) {
    if (cancelled_ || lost_ || too_large_ || (closed_ && !head_ready_)) co_return failure("response head");
    co_await wait(recv_wake_);
  }
  if (head_request_ && resp_.body != http::BodyKind::None) resp_.body = http::BodyKind::None;
  co_return &resp_;
}

asio::awaitable<Result<http::BodyPart>> Call::read_body() {
  if (resp_.body == http::BodyKind::None) co_return http::BodyPart{{}, true};
  // What was handed out before went to the client: the instance may send that much more.
  if (handed_ > 0 && conn_ && conn_->ng() && !closed_ && !lost_) {
    nghttp2_session_consume(conn_->ng(), id_, handed_);
    conn_->kick();
  }
  handed_ = 0;
  for (;;) {
    if (!in_.empty() || end_stream_) {
      out_.swap(in_);
      in_.clear();
      handed_ = out_.size();
      co_return http::BodyPart{out_, end_stream_};
    }
    if (cancelled_ || lost_ || too_large_ || closed_) co_return failure("response body");
    co_await wait(recv_wake_);
  }
}

void Call::finish(bool complete) {
  (void)complete;
  detach();
}

void Call::close() noexcept { detach(); }

void Call::cancel() noexcept {
  cancelled_ = true;
  recv_wake_.cancel();
  send_wake_.cancel();
}

}  // namespace gh::clients::http2
