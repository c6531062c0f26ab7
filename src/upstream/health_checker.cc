#include "upstream/health_checker.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <list>
#include <string>

namespace gh::upstream {

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

struct HealthChecker::State {
  bool stopped = false;
  std::list<asio::steady_timer*> timers;  // probes' timers, cancelled by stop()
};

namespace {

// One probe: connect, GET path, read the status line. 2xx and 3xx count as healthy.
struct Probe {
  explicit Probe(const asio::any_io_executor& ex) : sock(ex) {}
  tcp::socket sock;
  bool timed_out = false;
};

asio::awaitable<bool> probe(std::shared_ptr<Endpoint> ep, config::HealthCheckConfig hc,
                            std::shared_ptr<asio::steady_timer> deadline) {
  auto ex = co_await asio::this_coro::executor;
  auto p = std::make_shared<Probe>(ex);
  deadline->expires_after(hc.timeout);
  deadline->async_wait([p](boost::system::error_code ec) {
    if (!ec) {
      p->timed_out = true;
      boost::system::error_code ignore;
      p->sock.close(ignore);
    }
  });
  auto [cec] = co_await p->sock.async_connect(ep->address, use_nothrow);
  bool ok = false;
  if (!cec && !p->timed_out) {
    std::string req = "GET " + hc.path + " HTTP/1.1\r\nHost: " + ep->host_header +
                      "\r\nUser-Agent: gatehouse-health-check\r\nConnection: close\r\n\r\n";
    auto [wec, wn] = co_await asio::async_write(p->sock, asio::buffer(req), use_nothrow);
    (void)wn;
    if (!wec && !p->timed_out) {
      char buf[64];
      std::size_t got = 0;
      while (got < 12 && !p->timed_out) {
        auto [rec, rn] = co_await p->sock.async_read_some(asio::buffer(buf + got, sizeof(buf) - got), use_nothrow);
        if (rec) break;
        got += rn;
      }
      if (got >= 12 && std::string_view(buf, 5) == "HTTP/" && buf[8] == ' ') ok = buf[9] == '2' || buf[9] == '3';
    }
  }
  deadline->cancel();
  boost::system::error_code ignore;
  p->sock.close(ignore);
  co_return ok && !p->timed_out;
}

asio::awaitable<void> probe_loop(std::shared_ptr<HealthChecker::State> state, std::shared_ptr<Endpoint> ep,
                                 config::HealthCheckConfig hc) {
  auto ex = co_await asio::this_coro::executor;
  auto timer = std::make_shared<asio::steady_timer>(ex);
  auto deadline = std::make_shared<asio::steady_timer>(ex);
  state->timers.push_back(timer.get());
  state->timers.push_back(deadline.get());
  int successes = 0, failures = 0;
  while (!state->stopped) {
    bool ok = co_await probe(ep, hc, deadline);
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
}

}  // namespace

HealthChecker::HealthChecker(asio::io_context& io, std::vector<std::shared_ptr<Service>> services)
    : io_(io), services_(std::move(services)), state_(std::make_shared<State>()) {}

HealthChecker::~HealthChecker() { stop(); }

void HealthChecker::start() {
  for (const auto& s : services_) {
    if (!s->config().health_check) continue;
    for (const auto& ep : s->endpoints())
      asio::co_spawn(io_, probe_loop(state_, ep, *s->config().health_check), asio::detached);
  }
}

void HealthChecker::stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  for (auto* t : state_->timers) t->cancel();
}

}  // namespace gh::upstream
