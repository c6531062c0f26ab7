// Worker: one event-loop thread with its own acceptors (SO_REUSEPORT), upstream connection
// pool, buffer free list, access-log buffer and current snapshot. A connection never leaves
// the worker that accepted it. Thread: every member is touched only on the worker's own
// thread, except what is posted to it (set_snapshot, drain, terminate) and GatewayShared.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "clients/http1/pool.h"
#include "clients/upstream.h"
#include "core/buffer_pool.h"
#include "core/clock.h"
#include "core/slab.h"
#include "net/tls_certificates.h"
#include "proxy/access_log.h"
#include "proxy/exchange.h"
#include "proxy/parking.h"
#include "proxy/snapshot.h"

namespace gh::proxy {

// Gateway-wide state shared by the workers: connection count (max_connections) and drain flag.
struct GatewayShared {
  std::atomic<std::uint64_t> open_connections{0};
  std::atomic<bool> draining{false};
  std::atomic<std::uint64_t> internal_errors{0};
};

// What one request in progress needs beyond its read buffer. Reused across requests (its
// vectors and strings keep their capacity) and held only while a request is being served.
struct RequestScratch {
  RequestScratch(const boost::asio::any_io_executor& ex, clients::http1::ConnectionPool& pool,
                 clients::http2::Pool& pool2, BufferPool& buffers, const core::Clock& clock)
      : upstream(ex, pool, pool2, buffers, clock) {}
  clients::Upstream upstream;           // the request's connection (or stream) to its instance
  http::ChunkedDecoder chunked_in;      // the request body's decoder
  http::RequestHead req;
  // The request body beyond what came with the head is read here, never over the head: the
  // head's fields are views into the connection's buffer, read until the exchange ends (access
  // log, response policies such as cors). Given back to the pool when the request ends.
  IoBuffer body_in;
  std::string head_out;                 // the response head being written
  std::string tail_out;                 // a chunked response's end with trailers (Http1Session)
  ExchangeScratch exchange;
  // An HTTP/1.1 request's pinned snapshot and its body's progress (Http1Session), here rather
  // than in the session so that an idle connection does not hold them. Set for each request.
  std::shared_ptr<const Snapshot> snap;
  struct Http1Body {
    std::size_t begin = 0;       // where the body starts in the head buffer (for a rewind)
    std::uint64_t left = 0;      // Length bodies: bytes not yet read from the client
    std::uint64_t read = 0;      // decoded bytes handed out in this attempt
    std::chrono::steady_clock::time_point start;
    bool read_filled = false;    // the last body read filled its buffer: the client sends fast
    bool first = true;           // the next read_body returns what is buffered, without waiting
    bool replayable = false;
    bool sent_continue = false;
  } h1_body;
};

// What the worker needs of a connection: an intrusive list link (no allocation per connection)
// and the three ways it acts on one. Implemented by Http1Session (http1_session.cc).
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void close_if_idle() = 0;
  virtual void close_now() = 0;
  // Called by the worker's sweep (every kDeadlineTickMillis): acts on a passed deadline.
  virtual void check_deadline(std::chrono::steady_clock::time_point now) = 0;

 private:
  friend class Worker;
  SessionBase* prev_ = nullptr;
  SessionBase* next_ = nullptr;
};

// Connection deadlines are checked by one sweep per worker at this period rather than one
// timer per connection: an idle connection then holds no timer, and the hot path arms none.
constexpr int kDeadlineTickMillis = 100;

class Worker {
 public:
  // `clock`: what every read of the time on this worker uses (a FakeClock in tests).
  Worker(unsigned id, GatewayShared& shared, std::shared_ptr<AccessLogSink> log_sink,
         const core::Clock& clock = core::Clock::real());
  ~Worker();

  unsigned id() const noexcept { return id_; }
  boost::asio::io_context& io() noexcept { return io_; }
  GatewayShared& shared() noexcept { return shared_; }
  const core::Clock& clock() const noexcept { return clock_; }
  const std::shared_ptr<const Snapshot>& snapshot() const noexcept { return snapshot_; }
  clients::http1::ConnectionPool& pool() noexcept { return pool_; }
  clients::http2::Pool& http2_pool() noexcept { return h2pool_; }
  BufferPool& buffers() noexcept { return buffers_; }
  Parking& parking() noexcept { return parking_; }
  // Where HTTP/1.1 sessions live (core/slab.h): out of the heap, so the memory a burst of
  // requests used goes back to the kernel while its connections stay open.
  core::Slab& session_slab() noexcept { return session_slab_; }
  AccessLog& access_log() noexcept { return access_log_; }
  // Request ids: 28 hex digits, a random 64-bit prefix, the worker's id and a counter.
  void next_request_id(std::string& out);

  // REQUIRES: called before run(). Opens this worker's acceptor on each listener; `tls` (empty,
  // or one entry per endpoint, null for a plain listener) gives a TLS listener its certificates.
  bool listen(const std::vector<boost::asio::ip::tcp::endpoint>& endpoints, std::string& error,
              std::vector<std::shared_ptr<net::TlsCertificates>> tls = {});
  void set_snapshot(std::shared_ptr<const Snapshot> s) { snapshot_ = std::move(s); }
  // Thread entry: runs the event loop until terminate().
  void run();
  // Posts: stop accepting and close idle keep-alive connections; requests in flight finish.
  void drain();
  // Posts: close every connection and stop the loop.
  void terminate();

  // Connections lingering with a buffer after a response (see Session): bounded, so many
  // slow clients cannot pin a buffer each.
  bool try_linger() noexcept {
    if (lingering_ >= kMaxLingering) return false;
    ++lingering_;
    return true;
  }
  void end_linger() noexcept { --lingering_; }

  std::unique_ptr<RequestScratch> take_scratch();
  void return_scratch(std::unique_ptr<RequestScratch> s);

  // Session bookkeeping (worker thread only).
  void add_session(SessionBase* s);
  void remove_session(SessionBase* s);
  // Connections the worker holds. When they are many, idle ones park sooner (Http1Session).
  std::size_t session_count() const noexcept { return session_count_; }

 private:
  // `listener`: the acceptor's index, which is its listener's in Snapshot::listeners.
  boost::asio::awaitable<void> accept_loop(std::shared_ptr<boost::asio::ip::tcp::acceptor> acc, std::size_t listener);
  boost::asio::awaitable<void> housekeeping();

  unsigned id_;
  GatewayShared& shared_;
  const core::Clock& clock_;
  // Before io_: the sessions the loop still holds when it is destroyed are freed into it.
  core::Slab session_slab_;
  // Every socket of a worker is used only on its thread, so the reactor needs no locking;
  // the scheduler keeps its lock for what other threads post (snapshots, drain).
  boost::asio::io_context io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  std::vector<std::shared_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
  std::vector<std::shared_ptr<net::TlsCertificates>> tls_;  // by acceptor; null: plain
  std::shared_ptr<const Snapshot> snapshot_;
  clients::http1::ConnectionPool pool_;
  clients::http2::Pool h2pool_{clock_};
  BufferPool buffers_;
  Parking parking_{io_.get_executor()};
  AccessLog access_log_;
  SessionBase* sessions_ = nullptr;  // intrusive list head
  std::size_t session_count_ = 0;
  static constexpr std::size_t kMaxLingering = 256;
  std::size_t lingering_ = 0;
  std::vector<std::unique_ptr<RequestScratch>> scratch_;
  std::uint64_t request_seq_ = 0;
  std::string request_prefix_;  // the id's first 18 digits
  boost::asio::steady_timer housekeeping_timer_{io_};
  bool stopping_ = false;
};

}  // namespace gh::proxy
