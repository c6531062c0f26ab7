#include "upstream/health_checker.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <list>
#include <set>
#include <string>

#include "http/parser.h"

namespace gh::upstream {

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

struct HealthChecker::State {
  bool stopped = false;
  std::list<asio::steady_timer*> timers;  // probes' timers, cancelled by stop()
  std::set<const Endpoint*> probing;      // endpoints with a probe loop running
};

namespace {

// One probe connection; shared with the deadline's handler, which closes it.
struct ProbeConn {
  explicit ProbeConn(const asio::any_io_executor& ex) : sock(ex) {}
  tcp::socket sock;
};

// One probe's run: the connection in use now, and whether the deadline passed.
struct ProbeRun {
  std::shared_ptr<ProbeConn> conn;
  bool timed_out = false;
  bool finished = false;
};

// What one request/response exchange on one connection gave.
struct Exchange {
  bool healthy = false;
  bool reusable = false;          // the response was read whole and allows keep-alive
  bool nothing_received = false;  // failed before the first response byte
};

bool expected(const config::HealthCheckConfig& hc, int status) {
  for (const auto& r : hc.expected_status)
    if (r.contains(status)) return true;
  return false;
}

// Sends the probe request and reads the response strictly: the head through the proxy's parser,
// the body read and discarded up to kMaxProbeBodyBytes. Anything malformed or over a bound is
// unhealthy and the connection is not kept.
asio::awaitable<Exchange> exchange(tcp::socket& sock, const std::string& request, const config::HealthCheckConfig& hc) {
  Exchange x;
  auto [wec, wn] = co_await asio::async_write(sock, asio::buffer(request), use_nothrow);
  (void)wn;
  if (wec) {
    x.nothing_received = true;
    co_return x;
  }
  char chunk[8192];
  std::string buf;
  std::size_t received = 0;
  auto read_more = [&]() -> asio::awaitable<std::size_t> {
    auto [rec, n] = co_await sock.async_read_some(asio::buffer(chunk), use_nothrow);
    if (rec) co_return 0;
    received += n;
    co_return n;
  };

  http::ParseLimits limits;
  limits.max_header_bytes = kMaxProbeHeadBytes;
  http::ResponseHead head;
  int interim = 0;
  for (;;) {
    head.reset();
    auto outcome = http::parse_response(buf, limits, false, head);
    if (outcome.state == http::ParseState::Invalid) co_return x;
    if (outcome.state == http::ParseState::Partial) {
      if (buf.size() >= kMaxProbeHeadBytes) co_return x;
      std::size_t n = co_await read_more();
      if (n == 0) {
        x.nothing_received = received == 0;
        co_return x;
      }
      buf.append(chunk, n);
      continue;
    }
    // A 1xx other than 101 is an interim response: the final one follows.
    if (head.status >= 100 && head.status < 200 && head.status != 101 && ++interim <= 4) {
      buf.erase(0, head.head_size);
      continue;
    }
    break;
  }
  if (head.status == 101) co_return x;  // an Upgrade nobody asked for

  const int status = head.status;
  const bool keep_alive = head.keep_alive;
  std::string_view rest = std::string_view(buf).substr(head.head_size);
  switch (head.body) {
    case http::BodyKind::None:
      if (!rest.empty()) co_return x;  // bytes after a complete response: not HTTP we can trust
      break;
    case http::BodyKind::Length: {
      if (head.content_length > kMaxProbeBodyBytes) co_return x;
      std::uint64_t left = head.content_length;
      if (rest.size() > left) co_return x;
      left -= rest.size();
      while (left > 0) {
        std::size_t n = co_await read_more();
        if (n == 0 || n > left) co_return x;
        left -= n;
      }
      break;
    }
    case http::BodyKind::Chunked: {
      http::ChunkedDecoder dec;
      std::string pending(rest);
      for (;;) {
        std::string_view in = pending;
        while (!in.empty() && !dec.done()) {
          auto step = dec.feed(in);
          if (step.error || dec.payload_bytes() > kMaxProbeBodyBytes) co_return x;
          in.remove_prefix(step.consumed);
          if (step.done) break;
        }
        if (dec.done()) {
          if (!in.empty()) co_return x;
          break;
        }
        std::size_t n = co_await read_more();
        if (n == 0) co_return x;
        pending.assign(chunk, n);
      }
      break;
    }
    case http::BodyKind::UntilClose: {
      std::uint64_t total = rest.size();
      for (;;) {
        if (total > kMaxProbeBodyBytes) co_return x;
        auto [rec, n] = co_await sock.async_read_some(asio::buffer(chunk), use_nothrow);
        if (rec == asio::error::eof) break;
        if (rec) co_return x;
        total += n;
      }
      x.healthy = expected(hc, status);
      co_return x;  // the connection is finished
    }
  }
  x.healthy = expected(hc, status);
  x.reusable = keep_alive;
  co_return x;
}

// One probe: GET path on the endpoint's idle probe connection when there is one, else on a new
// one. A reused connection that fails before any response byte (the service closed it while
// idle) is retried once on a new connection. `idle` keeps the connection for the next probe
// when the response allowed it.
asio::awaitable<bool> probe(std::shared_ptr<Endpoint> ep, const config::HealthCheckConfig& hc,
                            asio::steady_timer& deadline, std::shared_ptr<ProbeConn>& idle) {
  auto ex = co_await asio::this_coro::executor;
  auto run = std::make_shared<ProbeRun>();
  deadline.expires_after(hc.timeout);
  deadline.async_wait([run](boost::system::error_code ec) {
    if (ec || run->finished) return;
    run->timed_out = true;
    boost::system::error_code ignore;
    if (run->conn) run->conn->sock.close(ignore);
  });
  const std::string request = "GET " + hc.path + " HTTP/1.1\r\nHost: " + ep->host_header +
                              "\r\nUser-Agent: gatehouse-health-check\r\n\r\n";
  std::shared_ptr<ProbeConn> conn = std::move(idle);
  bool reused = conn && conn->sock.is_open();
  bool healthy = false;
  for (int attempt = 0;; ++attempt) {
    if (!reused) conn = std::make_shared<ProbeConn>(ex);
    run->conn = conn;
    if (!reused) {
      auto [cec] = co_await conn->sock.async_connect(ep->address, use_nothrow);
      if (cec || run->timed_out) break;
    }
    Exchange x = co_await exchange(conn->sock, request, hc);
    if (run->timed_out) break;
    if (x.nothing_received && reused && attempt == 0) {
      boost::system::error_code ignore;
      conn->sock.close(ignore);
      reused = false;
      continue;
    }
    healthy = x.healthy;
    if (x.reusable) idle = conn;
    break;
  }
  run->finished = true;
  deadline.cancel();
  if (run->timed_out) {
    idle.reset();
    healthy = false;
  }
  if (conn && conn != idle) {
    boost::system::error_code ignore;
    conn->sock.close(ignore);
  }
  co_return healthy;
}

asio::awaitable<void> probe_loop(std::shared_ptr<HealthChecker::State> state, std::shared_ptr<Endpoint> ep,
                                 config::HealthCheckConfig hc) {
  auto ex = co_await asio::this_coro::executor;
  auto timer = std::make_shared<asio::steady_timer>(ex);
  auto deadline = std::make_shared<asio::steady_timer>(ex);
  state->timers.push_back(timer.get());
  state->timers.push_back(deadline.get());
  std::shared_ptr<ProbeConn> idle;
  int successes = 0, failures = 0;
  while (!state->stopped && !ep->retired.load(std::memory_order_relaxed)) {
    bool ok = co_await probe(ep, hc, *deadline, idle);
    if (state->stopped) break;
    if (ok) {
      failures = 0;
      if (++successes >= hc.healthy_after) ep->active_healthy.store(true, std::memory_order_relaxed);
      if (successes >= hc.healthy_after) ep->ejected_until_ms.store(0, std::memory_order_relaxed);
    } else {
      successes = 0;
      if (++failures >= hc.unhealthy_after) ep->active_healthy.store(false, std::memory_order_relaxed);
    }
    timer->expires_after(hc.interval);
    co_await timer->async_wait(use_nothrow);
  }
  state->timers.remove(timer.get());
  state->timers.remove(deadline.get());
  state->probing.erase(ep.get());
}

}  // namespace

HealthChecker::HealthChecker(asio::io_context& io, std::vector<std::shared_ptr<Service>> services)
    : io_(io), services_(std::move(services)), state_(std::make_shared<State>()) {}

HealthChecker::~HealthChecker() { stop(); }

void HealthChecker::start() { sync(); }

void HealthChecker::sync() {
  if (state_->stopped) return;
  for (const auto& s : services_) {
    if (!s->config().health_check) continue;
    for (const auto& ep : s->endpoints())
      if (state_->probing.insert(ep.get()).second)
        asio::co_spawn(io_, probe_loop(state_, ep, *s->config().health_check), asio::detached);
  }
}

void HealthChecker::stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  for (auto* t : state_->timers) t->cancel();
}

}  // namespace gh::upstream
