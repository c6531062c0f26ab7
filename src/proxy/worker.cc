#include "proxy/worker.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <malloc.h>
#include <sys/mman.h>

#include <functional>
#include <random>

#include <fmt/format.h>

#include "core/heap.h"
#include "core/strings.h"
#include "proxy/http1_session.h"

namespace gh::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {
// terminate(): the sessions it closes end on their own (a closed tunnel writes its access-log
// line then) within a few turns of the loop; it stops once they have, or after this many turns.
constexpr int kTerminateRounds = 1000;
void stop_soon(asio::io_context& io, std::function<bool()> done, int rounds) {
  if (rounds <= 0 || done()) {
    io.stop();
    return;
  }
  asio::post(io, [&io, done = std::move(done), rounds]() mutable { stop_soon(io, std::move(done), rounds - 1); });
}
}  // namespace

Worker::Worker(unsigned id, GatewayShared& shared, std::shared_ptr<AccessLogSink> log_sink, const core::Clock& clock)
    : id_(id), shared_(shared), clock_(clock), access_log_(std::move(log_sink)) {
  std::random_device rd;
  append_hex(request_prefix_, (std::uint64_t(rd()) << 32) ^ rd(), 16);
  append_hex(request_prefix_, id_ & 0xff, 2);
}

Worker::~Worker() = default;

void Worker::add_session(SessionBase* s) {
  s->prev_ = nullptr;
  s->next_ = sessions_;
  if (sessions_) sessions_->prev_ = s;
  sessions_ = s;
  ++session_count_;
}

void Worker::remove_session(SessionBase* s) {
  if (s->prev_) s->prev_->next_ = s->next_;
  else if (sessions_ == s) sessions_ = s->next_;
  if (s->next_) s->next_->prev_ = s->prev_;
  s->prev_ = s->next_ = nullptr;
  --session_count_;
}

std::unique_ptr<RequestScratch> Worker::take_scratch() {
  if (scratch_.empty()) return std::make_unique<RequestScratch>(io_.get_executor(), pool_, h2pool_, buffers_, clock_);
  auto s = std::move(scratch_.back());
  scratch_.pop_back();
  return s;
}

void Worker::return_scratch(std::unique_ptr<RequestScratch> s) {
  constexpr std::size_t kMaxFreeScratch = 32;
  constexpr std::size_t kMaxKeptHead = 64 * 1024;
  if (scratch_.size() >= kMaxFreeScratch || s->head_out.capacity() > kMaxKeptHead) return;
  s->snap.reset();  // a kept scratch pins no configuration
  scratch_.push_back(std::move(s));
}

void Worker::next_request_id(std::string& out) {
  out.assign(request_prefix_);
  append_hex(out, ++request_seq_, 10);
}

bool Worker::listen(const std::vector<tcp::endpoint>& endpoints, std::string& error,
                    std::vector<std::shared_ptr<net::TlsCertificates>> tls) {
  tls.resize(endpoints.size());
  tls_ = std::move(tls);
  for (const auto& ep : endpoints) {
    auto acc = std::make_shared<tcp::acceptor>(io_);
    boost::system::error_code ec;
    acc->open(ep.protocol(), ec);
    if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) {
      int one = 1;
      if (::setsockopt(acc->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        ec = boost::system::error_code(errno, boost::system::system_category());
    }
    if (!ec) acc->bind(ep, ec);
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      error = fmt::format("cannot listen on {}:{}: {}", ep.address().to_string(), ep.port(), ec.message());
      return false;
    }
    acceptors_.push_back(std::move(acc));
  }
  return true;
}

asio::awaitable<void> Worker::accept_loop(std::shared_ptr<tcp::acceptor> acc, std::size_t listener) {
  asio::steady_timer wait(io_);
  while (!stopping_ && acc->is_open()) {
    const auto& snap = snapshot_;
    std::uint64_t max = snap ? snap->config->limits.max_connections : 0;
    if (max != 0 && shared_.open_connections.load(std::memory_order_relaxed) >= max) {
      // Over the limit: leave new connections waiting in the listen queue.
      wait.expires_after(std::chrono::milliseconds(5));
      co_await wait.async_wait(nothrow);
      continue;
    }
    auto [ec, sock] = co_await acc->async_accept(nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acc->is_open()) break;
      // EMFILE and friends: back off briefly rather than spin.
      wait.expires_after(std::chrono::milliseconds(10));
      co_await wait.async_wait(nothrow);
      continue;
    }
    // Another worker may have filled the limit while this accept was pending: take a slot
    // atomically, and until one is free leave the connection unread (to the client it is the
    // same as waiting in the listen queue). At most one such connection per worker.
    bool parked_out = false;
    for (;;) {
      std::uint64_t cur = shared_.open_connections.load(std::memory_order_relaxed);
      std::uint64_t limit = snapshot_ ? snapshot_->config->limits.max_connections : 0;
      if (limit == 0 || cur < limit) {
        if (shared_.open_connections.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed)) break;
        continue;
      }
      if (stopping_ || shared_.draining.load(std::memory_order_relaxed)) {
        parked_out = true;
        break;
      }
      wait.expires_after(std::chrono::milliseconds(5));
      co_await wait.async_wait(nothrow);
    }
    if (parked_out) {
      boost::system::error_code ignore;
      sock.close(ignore);
      break;
    }
    SessionStart start;
    start.listener = listener;
    if (snapshot_ && snapshot_->metrics && listener < snapshot_->metrics->connections_open.size())
      start.open = snapshot_->metrics->connections_open[listener];
    if (listener < tls_.size() && tls_[listener]) start.tls = tls_[listener]->current();
    start_session(*this, std::move(sock), std::move(start));
  }
}

asio::awaitable<void> Worker::housekeeping() {
  int ticks = 0;
  while (!stopping_) {
    housekeeping_timer_.expires_after(std::chrono::milliseconds(kDeadlineTickMillis));
    auto [ec] = co_await housekeeping_timer_.async_wait(nothrow);
    access_log_.flush();
    if (ec && stopping_) break;
    // check_deadline only cancels sockets (handlers run later), so the list stays intact.
    const auto now = clock_.now();
    for (SessionBase* s = sessions_; s; s = s->next_) s->check_deadline(now);
    if (++ticks % 10 == 0) {
      pool_.sweep(clock_.now_ms());
      h2pool_.sweep();
      buffers_.trim();
      core::scavenge_thread_cache();
    }
    // Give back to the kernel the pages that bursts of requests left free between long-lived
    // allocations (idle connections): cheap at this rate, and it keeps idle memory near its floor.
    if (id_ == 0 && ticks % 10 == 0) ::malloc_trim(0);
  }
}

void Worker::run() {
  for (std::size_t i = 0; i < acceptors_.size(); ++i) asio::co_spawn(io_, accept_loop(acceptors_[i], i), asio::detached);
  asio::co_spawn(io_, housekeeping(), asio::detached);
  io_.run();
  access_log_.flush();
}

void Worker::drain() {
  asio::post(io_, [this] {
    for (auto& acc : acceptors_) {
      boost::system::error_code ignore;
      acc->close(ignore);
    }
    for (SessionBase* s = sessions_; s; s = s->next_) s->close_if_idle();
  });
}

void Worker::terminate() {
  asio::post(io_, [this] {
    stopping_ = true;
    for (auto& acc : acceptors_) {
      boost::system::error_code ignore;
      acc->close(ignore);
    }
    for (SessionBase* s = sessions_; s; s = s->next_) s->close_now();
    pool_.clear();
    h2pool_.clear();
    housekeeping_timer_.cancel();
    access_log_.flush();
    stop_soon(io_, [this] { return sessions_ == nullptr; }, kTerminateRounds);
  });
}

}  // namespace gh::proxy
