#include "upstream/health_checker.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <functional>
#include <list>
#include <set>
#include <string>

#include "clients/http1/fetch.h"
#include "clients/http2/client.h"
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
    std::function<void()> close;  // ends the probe in flight
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

// One probe of an instance that speaks HTTP/2: GET `path` on a stream of the loop's own
// connection (kept between probes), within hc.timeout; the status, or why it failed.
asio::awaitable<Result<int>> probe_http2(std::shared_ptr<clients::http2::Call> call, std::shared_ptr<Endpoint> ep,
                                         const config::HealthCheckConfig& hc) {
  auto deadline = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor);
  auto timed_out = std::make_shared<bool>(false);
  deadline->expires_after(hc.timeout);
  deadline->async_wait([call, timed_out](boost::system::error_code ec) {
    if (ec) return;
    *timed_out = true;
    call->cancel();
  });
  struct Stop {
    asio::steady_timer& t;
    ~Stop() { t.cancel(); }
  } stop{*deadline};
  auto fail = [&](const Error& e) -> Result<int> {
    call->close();
    if (*timed_out)
      return Error::upstream(ErrorCode::Timeout, "no complete response within " + std::to_string(hc.timeout.count()) + "ms");
    return e;
  };
  Result<void> opened = co_await call->open(ep->address, ep->pool_key, ep->tls.get(), true, true, false);
  if (!opened) co_return fail(opened.error());
  const std::string_view target = hc.path;
  const auto q = target.find('?');
  http::OutgoingRequest req;
  req.method = "GET";
  req.path = target.substr(0, q);
  if (q != std::string_view::npos) {
    req.query = target.substr(q + 1);
    req.has_query = true;
  }
  req.host = ep->host_header;
  static const std::vector<http::Field> kFields = {{"user-agent", "gatehouse-health-check"}};
  req.fields = &kFields;
  call->send_head(req);
  Result<void> sent = co_await call->send_body({}, true);
  if (!sent) co_return fail(sent.error());
  Result<http::ResponseHead*> head = co_await call->read_head(false);
  if (!head) co_return fail(head.error());
  const int status = (*head)->status;
  std::size_t body = 0;
  for (;;) {
    Result<http::BodyPart> part = co_await call->read_body();
    if (!part) co_return fail(part.error());
    body += part->data.size();
    if (body > kMaxProbeBodyBytes) co_return fail(Error::upstream(ErrorCode::BadResponse, "probe response body over the cap"));
    if (part->last) break;
  }
  call->finish(true);
  co_return status;
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
  // An instance that speaks HTTP/2 is probed over HTTP/2, as requests reach it.
  std::shared_ptr<clients::http2::Pool> pool2;
  std::shared_ptr<clients::http2::Call> call2;
  if (ep->http2) {
    pool2 = std::make_shared<clients::http2::Pool>();
    call2 = std::make_shared<clients::http2::Call>(ex, *pool2);
  }
  auto loop = state->loops.insert(state->loops.end(), HealthChecker::State::Loop{timer.get(), [client, call2] {
                                                                                   client->close();
                                                                                   if (call2) call2->cancel();
                                                                                 }});
  http1::FetchOptions options;
  options.timeout = hc.timeout;
  options.max_head_bytes = kMaxProbeHeadBytes;
  options.max_body_bytes = kMaxProbeBodyBytes;
  options.fields = {{"User-Agent", "gatehouse-health-check"}};
  int successes = 0, failures = 0;
  while (!state->stopped && !ep->retired.load(std::memory_order_relaxed)) {
    Result<int> r = Error::internal("no probe");
    if (call2) {
      r = co_await probe_http2(call2, ep, hc);
    } else {
      auto target = http1::FetchTarget::at(ep->address, ep->host_header, hc.path);
      target.tls = ep->tls;  // an https instance is probed over TLS, as requests reach it
      auto f = co_await client->fetch(std::move(target), options);
      if (f) r = f->status;
      else r = f.error();
    }
    if (state->stopped) break;
    const bool ok = r && expected(hc, *r);
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
  if (call2) {
    call2->close();
    pool2->clear();
  }
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
    l.close();
  }
}

}  // namespace gh::upstream
