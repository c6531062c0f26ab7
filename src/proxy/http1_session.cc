#include "proxy/http1_session.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <utility>

#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/strings.h"
#include "http/head_writer.h"
#include "net/stream.h"
#include "proxy/downstream.h"
#include "proxy/exchange.h"
#include "proxy/http2_session.h"
#include "proxy/local_reply.h"
#include "proxy/worker.h"

namespace gh::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr int kLingerMillis = 100;
// An idle connection is parked after this many deadline sweeps (about a second) without a byte;
// while its worker holds more than kManyConnections connections, after kParkSoonTicks (over
// 100 ms): a client that pauses between requests then pays the parking's system calls, in
// exchange for the memory a burst of thousands of connections would otherwise hold at once.
constexpr int kParkAfterTicks = 1000 / kDeadlineTickMillis;
constexpr int kParkSoonTicks = 2;
constexpr std::size_t kManyConnections = 256;

}  // namespace

class Http1Session final : public SessionBase,
                           public Downstream,
                           public Parking::Client,
                           public std::enable_shared_from_this<Http1Session> {
 public:
  Http1Session(Worker& w, tcp::socket s, core::Gauge* open, std::size_t listener)
      : w_(w), client_(std::move(s)), open_(open), listener_(listener) {
    if (open_) open_->add(w_.id(), 1);
  }
  ~Http1Session() {
    if (parked_fd_ >= 0) ::close(parked_fd_);  // parked when the loop stopped
  }

  // Connection life: begin() -> [idle: async_wait readable] -> serve() while bytes are buffered
  // -> idle again, until the peer leaves, a deadline passes or the gateway drains. While idle the
  // connection holds no coroutine frame, no buffer, no scratch and no timer: one handler on
  // its socket; idle for kParkAfterTicks sweeps, not even that: it is parked (Parking), its
  // session alone keeping its place.
  void begin(std::shared_ptr<const net::TlsServerContext> tls);
  void on_handshake(boost::system::error_code ec);
  void wait_idle();
  void on_readable(boost::system::error_code ec);
  // Parking (see Parking): park() moves the descriptor from Asio's reactor to the worker's set;
  // on_unparked() (it is readable) and wake_parked() (a deadline, drain or stop) bring it back.
  bool park();
  void on_unparked() override;
  void wake_parked();
  void resume_from_park(bool aborted);
  bool may_park() const { return alive_ && !timed_out_ && !draining() && client_.is_open(); }
  void after_serve(std::exception_ptr e, bool keep);
  void shutdown();
  asio::awaitable<bool> serve();

  // SessionBase.
  void close_if_idle() override {
    if (phase_ == Phase::Idle || phase_ == Phase::Linger) cancel_all();
  }
  void check_deadline(Clock::time_point now) override {
    if (exchange_running_ && !client_gone_) watch_client();
    if (now < deadline_) {
      // Only the wait for a next request parks: never a TLS handshake (also "idle" until done).
      const int park_after = w_.session_count() > kManyConnections ? kParkSoonTicks : kParkAfterTicks;
      if (idle_wait_ && parked_fd_ < 0 && !park_asked_ && ++idle_ticks_ >= park_after) {
        park_asked_ = true;  // the wait ends as cancelled; on_readable parks
        boost::system::error_code ignore;
        client_.socket().cancel(ignore);
      }
      return;
    }
    timed_out_ = true;
    deadline_ = Clock::time_point::max();
    cancel_all();
  }
  void close_now() override {
    if (parked_fd_ >= 0) return wake_parked();
    client_.close();
    if (sc_) sc_->upstream.close();
  }

  // Downstream.
  http::RequestHead& head() noexcept override { return sc_->req; }
  std::string_view peer_ip() const noexcept override { return peer_ip_; }
  std::string_view scheme() const noexcept override { return client_.is_tls() ? "https" : "http"; }
  asio::awaitable<Result<http::BodyPart>> read_body() override;
  bool body_now(http::BodyPart& out) noexcept override;
  bool body_replayable() const noexcept override { return body().replayable; }
  void rewind_body() noexcept override {
    in_begin_ = body().begin;
    body().left = sc_->req.content_length;
    body().read = 0;
    body().first = true;
  }
  void send_head(const http::ResponseHead& head, bool close) override;
  // A service's trailers (an HTTP/2 service's) end a chunked response; a response framed by
  // Content-Length, or to an HTTP/1.0 client, has nowhere to carry them.
  void set_trailers(const http::Fields& trailers) override;
  asio::awaitable<Result<void>> send_body(std::string_view data, bool last) override;
  bool response_started() const noexcept override { return response_started_; }
  void abort() noexcept override { aborted_ = true; }
  asio::awaitable<void> tunnel(clients::Outbound& up, std::chrono::milliseconds idle, std::uint64_t& bytes_in,
                               std::uint64_t& bytes_out) override;
  void arm_after(std::chrono::milliseconds d) noexcept override { arm(w_.clock().coarse_now() + d); }
  bool timed_out() const noexcept override { return timed_out_; }
  bool draining() const noexcept override { return w_.shared().draining.load(std::memory_order_relaxed); }
  bool cancelled() const noexcept override { return client_gone_; }

 private:
  enum class Phase : std::uint8_t { Idle, Linger, Busy };

  void arm(Clock::time_point tp) noexcept {
    timed_out_ = false;
    deadline_ = tp;
  }
  void cancel_all() {
    if (parked_fd_ >= 0) return wake_parked();
    boost::system::error_code ignore;
    client_.socket().cancel(ignore);
    if (sc_) sc_->upstream.cancel();
  }
  // Limits between requests come from the worker's current snapshot; within a request, from
  // the one the request pinned.
  const config::Limits& limits() const {
    return (sc_ && sc_->snap ? sc_->snap : w_.snapshot())->config->limits;
  }

  void acquire_in() {
    if (!in_.data) in_ = w_.buffers().get(w_.snapshot()->parse_limits.max_header_bytes);
    if (!sc_) sc_ = w_.take_scratch();
  }
  void release_in() {
    if (in_.data) w_.buffers().put(std::move(in_));
    in_ = {};
    in_begin_ = in_end_ = 0;
    if (sc_) {
      if (sc_->body_in.data) w_.buffers().put(std::move(sc_->body_in));
      w_.return_scratch(std::move(sc_));
    }
  }
  // The request body's progress, in the request's scratch. REQUIRES: a request is served.
  RequestScratch::Http1Body& body() noexcept { return sc_->h1_body; }
  const RequestScratch::Http1Body& body() const noexcept { return sc_->h1_body; }
  // Where the read cursor (in_begin_, in_end_) points: the head's buffer, or once the body
  // needed reads of its own, the body's.
  char* rd() noexcept { return sc_ && sc_->body_in.data ? sc_->body_in.data.get() : in_.data.get(); }
  // The request is over: what was read past its body (a pipelined head) becomes the start of
  // the head buffer, and the body buffer goes back to the pool.
  void end_body_reads();

  asio::awaitable<bool> handle_request(bool head_error, int status);
  // While a request read whole waits for its answer, a client that closes its connection (EOF
  // or reset) cancels it, as nginx does: the service's connection closes and the request is
  // logged 499. Checked on the worker's tick: the first tick looks at the socket, later ones
  // only if the event loop's watch saw anything since. Plain: a peek; bytes (a pipelined
  // request) end the check. TLS: bytes may be a close_notify or the next request, which only
  // decrypting them would tell (and reading them here would take them from the request's
  // reader), so the TCP state decides: the client's FIN or reset is what leaving means.
  void watch_client() noexcept;
  void end_client_watch() noexcept {
    if (client_watch_) client_.end_idle_watch(w_.pool().event_loop(client_));
    client_watch_ = false;
  }
  // Whether the connection may carry another request after this one. A request that asked for
  // any upgrade closes the connection after its answer: what the client sent after that head
  // belongs to the protocol it asked for and is never read as a new request.
  bool may_keep_alive() const {
    return sc_->req.keep_alive && !upgrade_asked_ && !draining();
  }
  bool request_body_pending() const {
    return sc_->req.body == http::BodyKind::Chunked ? !sc_->chunked_in.done()
                                                    : (sc_->req.body == http::BodyKind::Length && body().left > 0);
  }
  asio::awaitable<Result<void>> read_client_more();
  // The connection speaks HTTP/2 (ALPN h2, or the h2c preface): an Http2Session takes over
  // the socket, what was read, and the connection's place in the counts.
  void hand_to_http2();
  asio::awaitable<void> pump(net::Stream& from, net::Stream& to, std::uint64_t& counter, std::chrono::milliseconds idle);

  Worker& w_;
  net::Stream client_;
  core::Gauge* open_;  // connections_open{listener}, or null
  std::size_t listener_;  // index in the config's listeners
  Clock::time_point deadline_ = Clock::time_point::max();
  bool timed_out_ = false;
  bool alive_ = true;
  bool first_ = true;
  bool h2c_preface_ = false;  // the first bytes may be HTTP/2's preface (an h2c listener)
  bool v6_ = false;           // the socket's family, to take its descriptor back after parking
  bool park_asked_ = false;   // the idle wait was cancelled to park
  bool idle_wait_ = false;    // wait_idle's wait is pending
  std::uint8_t idle_ticks_ = 0;
  Phase phase_ = Phase::Idle;
  bool exchange_running_ = false;  // handle_request's exchange runs
  bool client_watch_ = false;      // the event loop watches the client's socket (watch_client)
  bool client_checked_ = false;    // watch_client is done with this request
  int parked_fd_ = -1;
  std::shared_ptr<Http1Session> parked_self_;  // while parked (or waking): what keeps it

  IoBuffer in_;
  std::size_t in_begin_ = 0, in_end_ = 0;

  // Per-request scratch (heads, field lists, the upstream connection), borrowed from the worker
  // while a request is served, so an idle connection holds none of it.
  std::unique_ptr<RequestScratch> sc_;
  std::string peer_ip_;

  // Request body.
  bool upgrade_asked_ = false;

  // Response.
  bool head_pending_ = false;      // sc_->head_out waits for the first send_body
  bool client_chunked_ = false;
  bool keep_ = false;              // the head promised to keep the connection
  bool last_sent_ = false;
  bool response_started_ = false;
  bool aborted_ = false;
  bool client_gone_ = false;  // the client closed while its request was at the service
};

void start_session(Worker& worker, tcp::socket socket, SessionStart start) {
  auto s = std::allocate_shared<Http1Session>(core::SlabAllocator<Http1Session>(worker.session_slab()), worker,
                                              std::move(socket), start.open, start.listener);
  worker.add_session(s.get());
  s->begin(std::move(start.tls));
}

void Http1Session::begin(std::shared_ptr<const net::TlsServerContext> tls) {
  const auto accepted = w_.clock().coarse_now();
  boost::system::error_code ec;
  client_.socket().set_option(tcp::no_delay(true), ec);
  auto peer = client_.socket().remote_endpoint(ec);
  v6_ = peer.protocol() == tcp::v6();
  if (!ec) {
    auto addr = peer.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
      addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    peer_ip_ = addr.to_string();
  }
  if (tls) {
    auto session = tls->new_session(client_.socket().native_handle());
    if (!session) return on_handshake(asio::error::no_memory);
    client_.start_tls(std::move(session));
    // The whole handshake is timed from the accept; the first head then from its end.
    const auto& listeners = w_.snapshot()->config->listeners;
    auto timeout = listener_ < listeners.size() && listeners[listener_].tls ? listeners[listener_].tls->handshake_timeout
                                                                             : std::chrono::milliseconds(10'000);
    arm(accepted + timeout);
    client_.async_handshake([self = shared_from_this()](boost::system::error_code ec) { self->on_handshake(ec); });
    return;
  }
  arm(accepted + limits().header_timeout);  // the first head is timed from the accept
  const auto& listeners = w_.snapshot()->config->listeners;
  h2c_preface_ = listener_ < listeners.size() && listeners[listener_].h2c;
  wait_idle();
}

void Http1Session::hand_to_http2() {
  Http2Start start;
  start.open = open_;
  start.peer_ip = peer_ip_;
  if (in_.data) start.initial = std::string_view(in_.data.get(), in_end_);
  alive_ = false;
  w_.remove_session(this);
  start_http2_session(w_, std::move(client_), start);
  release_in();
}

void Http1Session::on_handshake(boost::system::error_code ec) {
  if (!alive_) return shutdown();
  if (ec) {
    const auto& metrics = w_.snapshot()->metrics;
    if (metrics && listener_ < metrics->tls_handshake_failures.size() && metrics->tls_handshake_failures[listener_])
      metrics->tls_handshake_failures[listener_]->inc(w_.id());
    log::debug("TLS handshake with {} failed: {}", peer_ip_, timed_out_ ? std::string("timed out") : ec.message());
    if (!timed_out_ && net::TlsSession::is_plain_http(ec)) {
      // A client speaking plain HTTP to a TLS port gets a plain answer saying so; nothing it
      // sent is forwarded.
      static constexpr std::string_view kPlainHttp =
          "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 67\r\n"
          "Connection: close\r\n\r\n{\"error\": \"Bad request\", \"detail\": \"plain HTTP sent to a TLS port\"}";
      static_assert(kPlainHttp.size() - kPlainHttp.find("\r\n\r\n") - 4 == 67);
      phase_ = Phase::Linger;
      asio::async_write(client_.socket(), asio::buffer(kPlainHttp.data(), kPlainHttp.size()),
                        [self = shared_from_this()](boost::system::error_code, std::size_t) { self->shutdown(); });
      return;
    }
    return shutdown();
  }
  if (client_.tls()->alpn() == "h2") return hand_to_http2();
  arm(w_.clock().coarse_now() + limits().header_timeout);
  wait_idle();
}

void Http1Session::wait_idle() {
  phase_ = Phase::Idle;
  idle_ticks_ = 0;
  idle_wait_ = true;
  client_.async_wait(tcp::socket::wait_read,
                     [self = shared_from_this()](boost::system::error_code ec) { self->on_readable(ec); });
}

bool Http1Session::park() {
  boost::system::error_code ec;
  const int fd = client_.socket().release(ec);
  if (ec) return false;
  if (!w_.parking().park(fd, this)) {
    client_.socket().assign(v6_ ? tcp::v6() : tcp::v4(), fd, ec);
    if (ec) ::close(fd);  // the socket stays closed: the caller's wait fails and it closes
    return false;
  }
  parked_fd_ = fd;
  parked_self_ = shared_from_this();
  return true;
}

void Http1Session::on_unparked() {
  auto self = std::move(parked_self_);
  w_.parking().unpark(parked_fd_);
  resume_from_park(false);
}

void Http1Session::wake_parked() {
  if (!parked_self_) return;  // waking already
  w_.parking().unpark(parked_fd_);
  // Later, as a cancelled wait's handler would run: the worker may be walking its sessions.
  asio::post(client_.get_executor(), [self = std::move(parked_self_)] { self->resume_from_park(true); });
}

void Http1Session::resume_from_park(bool aborted) {
  const int fd = std::exchange(parked_fd_, -1);
  boost::system::error_code ec;
  client_.socket().assign(v6_ ? tcp::v6() : tcp::v4(), fd, ec);
  if (ec) {
    ::close(fd);
    return shutdown();
  }
  on_readable(aborted ? asio::error::operation_aborted : ec);
}

void Http1Session::on_readable(boost::system::error_code ec) {
  idle_wait_ = false;
  if (std::exchange(park_asked_, false) && ec == asio::error::operation_aborted && may_park()) {
    if (!park()) wait_idle();
    return;
  }
  if (ec || !alive_) return shutdown();  // idle timeout, drain or peer gone: close quietly
  if (!first_) arm_after(limits().header_timeout);
  first_ = false;
  asio::co_spawn(client_.get_executor(), serve(),
                 [self = shared_from_this()](std::exception_ptr e, bool keep) { self->after_serve(e, keep); });
}

void Http1Session::after_serve(std::exception_ptr e, bool keep) {
  if (sc_) sc_->snap.reset();
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
  if (!keep || !alive_ || draining()) return shutdown();
  release_in();
  arm_after(limits().idle_timeout);
  wait_idle();
}

void Http1Session::shutdown() {
  if (!alive_ && !client_.is_open()) return;
  bool was_alive = alive_;
  alive_ = false;
  // Between responses (or before the first) a TLS client is told the end is orderly
  // (close_notify); in the middle of one it is not, so a cut response never looks whole.
  if (!aborted_ && (!response_started_ || last_sent_)) client_.close_gracefully();
  close_now();
  release_in();
  if (was_alive) {
    w_.remove_session(this);
    w_.shared().open_connections.fetch_sub(1, std::memory_order_relaxed);
    if (open_) open_->add(w_.id(), -1);
  }
}

// Serves requests while their bytes are at hand; true: the connection may wait for the next.
asio::awaitable<bool> Http1Session::serve() {
  for (;;) {
    if (in_begin_ > 0) {
      std::memmove(in_.data.get(), in_.data.get() + in_begin_, in_end_ - in_begin_);
      in_end_ -= in_begin_;
      in_begin_ = 0;
      arm_after(limits().header_timeout);
    }
    phase_ = Phase::Busy;
    acquire_in();
    const auto& plimits = w_.snapshot()->parse_limits;
    const std::size_t cap = std::min(in_.cap, std::max<std::size_t>(plimits.max_header_bytes, 1024));
    http::ParseOutcome out;
    for (;;) {
      if (h2c_preface_) {
        // Prior knowledge (RFC 9113 §3.3): the connection opens with HTTP/2's preface.
        const std::size_t n = std::min(in_end_, kHttp2Preface.size());
        if (std::string_view(in_.data.get(), n) != kHttp2Preface.substr(0, n)) h2c_preface_ = false;
        else if (n == kHttp2Preface.size()) {
          hand_to_http2();
          co_return false;
        }
      }
      if (!h2c_preface_) {
        out = http::parse_request(std::string_view(in_.data.get(), in_end_), plimits, sc_->req);
        if (out.state != http::ParseState::Partial) break;
      }
      if (in_end_ >= cap) {
        out = {http::ParseState::Invalid, 431, "head too large"};
        break;
      }
      auto [rec, n] = co_await client_.async_read_head(asio::buffer(in_.data.get() + in_end_, in_.cap - in_end_), nothrow);
      if (rec) {
        if (timed_out_ && in_end_ > 0) {
          arm_after(std::chrono::seconds(1));
          co_await handle_request(true, 408);
        }
        co_return false;
      }
      in_end_ += n;
    }
    if (out.state == http::ParseState::Invalid) {
      co_await handle_request(true, out.status);
      co_return false;
    }
    if (!co_await handle_request(false, 0)) co_return false;
    if (in_begin_ < in_end_) continue;  // pipelined: the next head is already here
    // Linger: wait for the next request with the buffer still held. A read costs no system call
    // until data comes when the head's read left the socket known drained (async_read_head),
    // where waiting for readability without a buffer costs an epoll_ctl per request; a
    // connection quiet for kLingerMillis goes idle (whose wait re-arms the descriptor, so a
    // close that came with the last head is seen there).
    if (draining()) co_return false;
    if (!w_.try_linger()) co_return true;  // enough lingering already: go idle at once
    phase_ = Phase::Linger;
    in_begin_ = in_end_ = 0;
    arm_after(std::chrono::milliseconds(kLingerMillis));
    auto [lec, ln] = co_await client_.async_read_head(asio::buffer(in_.data.get(), in_.cap), nothrow);
    w_.end_linger();
    if (lec) co_return timed_out_ && alive_;  // quiet: go idle (no buffer held); else closed
    in_end_ = ln;
    arm_after(limits().header_timeout);
  }
}

// One request: its exchange, with this session as the Downstream. `head_error`: the head could
// not be read; `status` is the answer. Returns whether the connection may carry another request.
asio::awaitable<bool> Http1Session::handle_request(bool head_error, int status) {
  sc_->snap = w_.snapshot();
  h2c_preface_ = false;
  http::RequestHead& req = sc_->req;
  if (head_error) req.reset();
  in_begin_ = head_error ? in_end_ : req.head_size;
  body().begin = in_begin_;
  body().left = req.body == http::BodyKind::Length ? req.content_length : 0;
  body().read = 0;
  body().first = true;
  body().read_filled = false;
  body().replayable = req.body == http::BodyKind::None ||
                      (req.body == http::BodyKind::Length && body().left <= in_end_ - in_begin_);
  sc_->chunked_in = http::ChunkedDecoder{};
  body().sent_continue = false;
  upgrade_asked_ = !head_error && req.fields.has("upgrade");
  head_pending_ = client_chunked_ = keep_ = last_sent_ = response_started_ = aborted_ = false;
  sc_->tail_out.clear();
  client_checked_ = client_gone_ = false;
  sc_->upstream.set_parse_limits(&sc_->snap->parse_limits);

  {
    Exchange exchange(w_, sc_->snap, *this, sc_->upstream, sc_->exchange);
    exchange_running_ = !head_error;
    if (head_error) co_await exchange.reject_head(status, status == 408 ? "head_timeout" : "bad_head");
    else co_await exchange.run();
    exchange_running_ = false;
    end_client_watch();
  }
  end_body_reads();
  co_return keep_ && last_sent_ && !aborted_;
}

void Http1Session::watch_client() noexcept {
  if (client_checked_ || !client_.is_open()) return;
  // Only while nothing reads the client: the body is whole and no answer or tunnel has begun.
  if (response_started_ || upgrade_asked_ || request_body_pending()) return end_client_watch();
  if (client_watch_) {
    if (!client_.end_idle_watch(w_.pool().event_loop(client_))) {
      client_.start_idle_watch(w_.pool().event_loop(client_));  // quiet since the last tick
      return;
    }
    client_watch_ = false;
  }
  const int fd = client_.socket().native_handle();
  bool there;
  if (client_.is_tls()) {
    there = !client_.peer_has_closed();
  } else {
    char byte;
    const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) {  // the next request (pipelined): the client is there
      client_checked_ = true;
      return;
    }
    there = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
  }
  if (there) {
    client_.start_idle_watch(w_.pool().event_loop(client_));
    client_watch_ = true;
    return;
  }
  // EOF or an error: nobody will read the answer. The exchange sees cancelled() and stops.
  client_gone_ = true;
  if (sc_) sc_->upstream.cancel();
}

void Http1Session::end_body_reads() {
  if (!sc_ || !sc_->body_in.data) return;
  std::swap(in_, sc_->body_in);
  w_.buffers().put(std::move(sc_->body_in));
}

asio::awaitable<Result<void>> Http1Session::read_client_more() {
  // REQUIRES: every buffered byte of the body was consumed (in_begin_ == in_end_).
  in_begin_ = in_end_ = 0;
  const auto& lim = limits();
  if (sc_->req.expect_continue && !body().sent_continue) {
    body().sent_continue = true;
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    arm_after(lim.body_timeout);
    auto [ec, n] = co_await asio::async_write(client_, asio::buffer(kContinue), nothrow);
    (void)n;
    if (ec) co_return Error::downstream(ErrorCode::ClientGone, ec.message());
  }
  // The body's own buffer: large at once for a long body, or once a small one proved too small.
  IoBuffer& buf = sc_->body_in;
  const bool long_body = sc_->req.body == http::BodyKind::Length ? body().left > BufferPool::kSmall : body().read_filled;
  if (!buf.data) buf = w_.buffers().get(long_body ? BufferPool::kLarge : BufferPool::kSmall);
  else if (buf.cap < BufferPool::kLarge && long_body) w_.buffers().enlarge(buf, 0, 0);
  arm_after(lim.body_timeout);
  std::size_t want = buf.cap;
  if (sc_->req.body == http::BodyKind::Length) want = static_cast<std::size_t>(std::min<std::uint64_t>(want, body().left));
  auto [ec, n] = co_await client_.async_read_some(asio::buffer(buf.data.get(), want), nothrow);
  if (ec)
    co_return timed_out_ ? Error::downstream(ErrorCode::Timeout, "request body timeout")
                         : Error::downstream(ErrorCode::ClientGone, ec.message());
  body().read_filled = n == buf.cap;
  in_end_ = n;
  co_return Result<void>{};
}

bool Http1Session::body_now(http::BodyPart& out) noexcept {
  const http::RequestHead& req = sc_->req;
  if (!body().first || req.body == http::BodyKind::Chunked) return false;
  body().first = false;
  body().start = w_.clock().coarse_now();
  if (req.body == http::BodyKind::None) {
    out = http::BodyPart{{}, true};
    return true;
  }
  std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(in_end_ - in_begin_, body().left));
  out = http::BodyPart{std::string_view(in_.data.get() + in_begin_, take), body().left == take};
  in_begin_ += take;
  body().left -= take;
  body().read += take;
  return true;
}

// The request body, decoded. Chunked bodies are decoded in place and checked as they come, so
// an error anywhere aborts before the last chunk reaches the service.
asio::awaitable<Result<http::BodyPart>> Http1Session::read_body() {
  const http::RequestHead& req = sc_->req;
  const auto& lim = limits();
  if (body().first) body().start = w_.clock().coarse_now();
  // Slower than min_body_rate once body_timeout has passed.
  auto too_slow = [&]() {
    auto elapsed = w_.clock().coarse_now() - body().start;
    if (elapsed <= lim.body_timeout) return false;
    double secs = std::chrono::duration<double>(elapsed).count();
    return static_cast<double>(body().read) / secs < static_cast<double>(lim.min_body_rate);
  };
  if (req.body == http::BodyKind::None) {
    body().first = false;
    co_return http::BodyPart{{}, true};
  }
  for (;;) {
    const bool first = body().first;  // the first piece is what is buffered, even if nothing
    body().first = false;
    if (!first && in_begin_ == in_end_) {
      if (too_slow()) co_return Error::downstream(ErrorCode::Timeout, "request body too slow");
      if (Result<void> more = co_await read_client_more(); !more) co_return more.error();
    }
    if (req.body == http::BodyKind::Length) {
      std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(in_end_ - in_begin_, body().left));
      std::string_view part(rd() + in_begin_, take);
      in_begin_ += take;
      body().left -= take;
      body().read += take;
      if (take > 0 || body().left == 0 || first) co_return http::BodyPart{part, body().left == 0};
      continue;
    }
    // Chunked.
    char* base = rd();
    const std::size_t start = in_begin_;
    std::size_t pos = in_begin_, write_pos = in_begin_;
    bool done = false;
    while (pos < in_end_ && !done) {
      auto step = sc_->chunked_in.feed(std::string_view(base + pos, in_end_ - pos));
      if (step.error) co_return Error::downstream(ErrorCode::BadRequest, step.detail);
      if (!step.data.empty()) {
        std::memmove(base + write_pos, step.data.data(), step.data.size());
        write_pos += step.data.size();
      }
      pos += step.consumed;
      done = step.done;
      if (step.consumed == 0 && step.data.empty() && !done) break;
    }
    in_begin_ = pos;
    const std::size_t payload = write_pos - start;
    body().read += payload;
    if (body().read > lim.max_body_bytes) co_return Error::downstream(ErrorCode::PayloadTooLarge, "chunked body");
    if (payload > 0 || done || first) co_return http::BodyPart{std::string_view(base + start, payload), done};
    // Only framing was buffered: read on. The chunked decoder keeps its state across reads,
    // so what it consumed is gone from the buffer.
    in_begin_ = in_end_;
  }
}

void Http1Session::send_head(const http::ResponseHead& head, bool close) {
  const http::RequestHead& req = sc_->req;
  const bool upgrade = head.status == 101;
  http::ResponseFraming framing;
  client_chunked_ = false;
  bool keep = !close && may_keep_alive() && !request_body_pending();
  if (upgrade) {
    keep = false;  // the connection becomes a tunnel; its Connection field is the exchange's
  } else if (head.body == http::BodyKind::Length) {
    framing.body = http::BodyKind::Length;
    framing.content_length = head.content_length;
  } else if (head.body == http::BodyKind::Chunked || head.body == http::BodyKind::UntilClose) {
    if (req.version_minor == 1) {
      client_chunked_ = true;
      framing.body = http::BodyKind::Chunked;
    } else {
      keep = false;  // an HTTP/1.0 client learns the end of the body from the close
    }
  }
  if (!upgrade) {
    framing.close = !keep;
    framing.keep_alive_10 = keep && req.version_minor == 0;
  }
  keep_ = keep;
  sc_->head_out.clear();
  http::write_response_head(sc_->head_out, head.status,
                            head.reason.empty() ? reason_phrase(head.status) : head.reason, head.fields, framing);
  head_pending_ = true;
  response_started_ = true;
}

void Http1Session::set_trailers(const http::Fields& trailers) {
  if (!client_chunked_ || sc_->req.method == "HEAD") return;
  std::string& out = sc_->tail_out;
  out.assign("\r\n0\r\n");
  for (const auto& f : trailers) {
    // Fields that frame or route a message mean nothing after its body.
    if (http::is_hop_by_hop(f.name) || gh::iequals(f.name, "content-length") || gh::iequals(f.name, "host")) continue;
    out.append(f.name).append(": ").append(f.value).append("\r\n");
  }
  out.append("\r\n");
}

asio::awaitable<Result<void>> Http1Session::send_body(std::string_view data, bool last) {
  if (sc_->req.method == "HEAD") data = {};
  char hdr[24];
  std::size_t hn = 0;
  std::string_view tail;
  if (client_chunked_) {
    // The last chunk and the trailer section: "\r\n" ends the data before them, if any.
    const std::string_view end = sc_->tail_out.empty() ? std::string_view("\r\n0\r\n\r\n") : sc_->tail_out;
    if (!data.empty()) {
      hn = http::format_chunk_header(hdr, data.size());
      tail = last ? end : std::string_view("\r\n");
    } else if (last) {
      tail = end.substr(2);
    }
  }
  if (!head_pending_ && data.empty() && tail.empty()) {
    last_sent_ = last_sent_ || last;
    co_return Result<void>{};
  }
  std::array<asio::const_buffer, 4> bufs{
      asio::buffer(head_pending_ ? sc_->head_out.data() : nullptr, head_pending_ ? sc_->head_out.size() : 0),
      asio::buffer(hdr, hn), asio::buffer(data.data(), data.size()), asio::buffer(tail.data(), tail.size())};
  head_pending_ = false;
  // Most answers fit the socket at once: written now, without an operation through the loop.
  const std::size_t now = client_.write_now(bufs.data(), bufs.size());
  if (now < net::total_size(bufs)) {
    net::consume(bufs, now);
    auto [ec, n] = co_await asio::async_write(client_, bufs, nothrow);
    (void)n;
    if (ec) co_return Error::downstream(ErrorCode::ClientGone, ec.message());
  }
  if (last) last_sent_ = true;
  co_return Result<void>{};
}

// Relays bytes both ways until both sides have finished sending. A half-close (EOF from one
// side) is passed on as a shutdown of sending towards the other, which may go on talking; an
// error on either side, or `idle` without a byte either way, closes both.
asio::awaitable<void> Http1Session::tunnel(clients::Outbound& up, std::chrono::milliseconds idle,
                                           std::uint64_t& bytes_in, std::uint64_t& bytes_out) {
  using namespace asio::experimental::awaitable_operators;
  net::Stream* upstream = up.tunnel_stream();
  if (!upstream) co_return;
  // Bytes the client sent after its head belong to the new protocol.
  if (in_end_ > in_begin_) {
    auto [ec, n] = co_await asio::async_write(*upstream, asio::buffer(rd() + in_begin_, in_end_ - in_begin_),
                                              nothrow);
    bytes_in += n;
    in_begin_ = in_end_;
    if (ec) co_return;
  }
  arm_after(idle);
  co_await (pump(client_, *upstream, bytes_in, idle) && pump(*upstream, client_, bytes_out, idle));
}

asio::awaitable<void> Http1Session::pump(net::Stream& from, net::Stream& to, std::uint64_t& counter,
                                         std::chrono::milliseconds idle) {
  std::array<char, 8192> buf;
  for (;;) {
    auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), nothrow);
    if (ec == asio::error::eof) {
      co_await to.async_shutdown(nothrow);
      co_return;
    }
    if (ec) break;
    arm_after(idle);
    auto [wec, wn] = co_await asio::async_write(to, asio::buffer(buf.data(), n), nothrow);
    counter += wn;
    if (wec) break;
  }
  // Reset, idle timeout or drain: both directions end.
  from.close();
  to.close();
}

}  // namespace gh::proxy
