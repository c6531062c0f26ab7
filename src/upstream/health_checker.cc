#include "upstream/health_checker.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <list>
#include <set>
#include <string>

#include "clients/http1/fetch.h"
#include "core/log.h"

namespace gh::upstream {

namespace asio = boost::asio;
namespace http1 = clients::http1;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

struct HealthChecker::State {
  bool stopped = false;
  // Each probe loop's interval timer and client: stop() cancels the timer and closes the
  // client, which ends a probe in flight at once.
  struct Loop {
    asio::steady_timer* timer;
    http1::FetchClient* client;
  };
  std::list<Loop> loops;
  std::set<const Endpoint*> probing;  // endpoints with a probe loop running
};

namespace {

bool expected(const config::HealthCheckConfig& hc, int status) {
  for (const auto& r : hc.expected_status)
    if (r.contains(status)) return true;
  return false;
}

// Probes `ep` every interval until the checker stops or the endpoint is retired. A probe is
// one fetch on the loop's client, which keeps the endpoint's probe connection between probes
// when the response allowed it (and replaces it when the service closed it meanwhile).
// Healthy: the fetch succeeded (a well-formed response within the caps and the deadline) and
// its status is expected. This loop is the decision; the I/O is clients/http1.
asio::awaitable<void> probe_loop(std::shared_ptr<HealthChecker::State> state, std::shared_ptr<Endpoint> ep,
                                 config::HealthCheckConfig hc) {
  auto ex = co_await asio::this_coro::executor;
  auto timer = std::make_shared<asio::steady_timer>(ex);
  auto client = std::make_shared<http1::FetchClient>(ex);
  auto loop = state->loops.insert(state->loops.end(), HealthChecker::State::Loop{timer.get(), client.get()});
  http1::FetchOptions options;
  options.timeout = hc.timeout;
  options.max_head_bytes = kMaxProbeHeadBytes;
  options.max_body_bytes = kMaxProbeBodyBytes;
  options.fields = {{"User-Agent", "gatehouse-health-check"}};
  int successes = 0, failures = 0;
  while (!state->stopped && !ep->retired.load(std::memory_order_relaxed)) {
    auto target = http1::FetchTarget::at(ep->address, ep->host_header, hc.path);
    target.tls = ep->tls;  // an https instance is probed over TLS, as requests reach it
    auto r = co_await client->fetch(std::move(target), options);
    if (state->stopped) break;
    const bool ok = r && expected(hc, r->status);
    if (!r) log::debug("health probe of {}{} failed: {}", ep->url, hc.path, r.error().context);
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
  client->close();
  state->loops.erase(loop);
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
  for (auto& l : state_->loops) {
    l.timer->cancel();
    l.client->close();
  }
}

}  // namespace gh::upstream
