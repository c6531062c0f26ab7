// HealthChecker on a local io_context against a real loopback service: the verdicts follow the
// answers over one kept connection, and stop() ends a probe in flight at once.
#include "upstream/health_checker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>

#include "harness/upstream.h"

namespace gh::upstream {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::shared_ptr<Service> service_at(const integ::Upstream& up, config::Duration timeout) {
  config::ServiceConfig c;
  c.name = "svc";
  config::InstanceConfig inst;
  inst.host = "127.0.0.1";
  inst.port = static_cast<std::uint16_t>(up.port());
  inst.url = up.url();
  c.instances.push_back(inst);
  config::HealthCheckConfig hc;
  hc.path = "/probe";
  hc.interval = 20ms;
  hc.timeout = timeout;
  hc.healthy_after = 1;
  hc.unhealthy_after = 1;
  c.health_check = hc;
  auto s = Service::build(c);
  EXPECT_TRUE(s.has_value());
  return *s;
}

// Runs the io_context until `done` holds, at most `limit`.
bool run_until(boost::asio::io_context& io, const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto end = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > end) return false;
    io.run_for(5ms);
  }
  return true;
}

TEST(HealthChecker, VerdictFollowsTheAnswerOverOneKeptConnection) {
  integ::Upstream up;
  std::atomic<int> status{500};
  up.set_handler([&](const integ::Request&) { return integ::Reply::text("probe", status); });
  boost::asio::io_context io{1};
  auto svc = service_at(up, 1s);
  const auto ep = svc->endpoints().front();
  HealthChecker checker(io, {svc});
  checker.start();
  ASSERT_TRUE(run_until(io, [&] { return !ep->active_healthy.load(); }, 5s));
  status = 200;
  ASSERT_TRUE(run_until(io, [&] { return ep->active_healthy.load(); }, 5s));
  status = 404;
  ASSERT_TRUE(run_until(io, [&] { return !ep->active_healthy.load(); }, 5s));
  EXPECT_GE(up.heads_seen(), 3);
  EXPECT_EQ(up.connections_accepted(), 1);
  EXPECT_EQ(up.requests().front().headers.value_or("User-Agent", ""), "gatehouse-health-check");
  checker.stop();
}

TEST(HealthChecker, StopEndsAProbeInFlightAtOnce) {
  integ::Upstream up;
  up.set_handler([](const integ::Request&) {
    integ::Reply r = integ::Reply::text("late");
    r.delay = 60s;  // never answers within the test
    return r;
  });
  boost::asio::io_context io{1};
  auto svc = service_at(up, 30s);
  const auto ep = svc->endpoints().front();
  HealthChecker checker(io, {svc});
  checker.start();
  ASSERT_TRUE(run_until(io, [&] { return up.heads_seen() >= 1; }, 5s));
  const auto start = Clock::now();
  checker.stop();
  io.run_for(3s);  // returns as soon as nothing is left to run
  EXPECT_LT(Clock::now() - start, 1s) << "a probe outlived stop()";
  EXPECT_TRUE(io.stopped());
  EXPECT_TRUE(ep->active_healthy.load()) << "a stopped probe is no verdict";
}

}  // namespace
}  // namespace gh::upstream
