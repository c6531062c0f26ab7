// Active health probes (SPEC §2 services `health_check`): the response is read with the strict
// parser, a malformed one is unhealthy; `expected_status` decides which statuses are healthy
// (default 200-399); one probe connection per instance is kept and reused.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "harness/assertions.h"

namespace gh::integ {
namespace {

constexpr const char* kProbePath = "/probe";

// A service whose answers to the probe path come from `probe_reply`, replaceable at any time.
struct ProbedService {
  Upstream up{"svc"};
  std::mutex mu;
  Reply probe_reply = Reply::text("up");
  std::atomic<int> probes{0};

  ProbedService() {
    up.set_handler([this](const Request& req) {
      if (req.target != kProbePath) return Reply::text("svc");
      ++probes;
      std::lock_guard lock(mu);
      return probe_reply;
    });
  }
  void answer(Reply r) {
    std::lock_guard lock(mu);
    probe_reply = std::move(r);
  }
};

std::string config(const Upstream& up, const std::string& health_extra = "") {
  return fill(R"(
services:
  svc:
    instances: ["{U}"]
    health_check: {path: /probe, interval: 100ms, timeout: 1s, healthy_after: 1, unhealthy_after: 1{EXTRA}}
routes:
  - path: /
    service: svc
)",
              {{"U", up.url()}, {"EXTRA", health_extra}});
}

// The gateway's aggregated health: 200 while the one instance is healthy, 503 when not.
bool gateway_says(const Gateway& gw, int status) { return http_get(gw.port(), "/health").status == status; }

// Waits for two more probes after now, then for the gateway to report STATUS.
::testing::AssertionResult Becomes(ProbedService& s, const Gateway& gw, int status) {
  const int seen = s.probes;
  if (!eventually([&] { return s.probes >= seen + 2; }, 5s))
    return ::testing::AssertionFailure() << "no new probe (probes so far: " << s.probes << ")";
  if (!eventually([&] { return gateway_says(gw, status); }, 3s, 20ms))
    return ::testing::AssertionFailure() << "GET /health never answered " << status << " after "
                                         << s.probes << " probes; last: " << http_get(gw.port(), "/health").describe();
  return ::testing::AssertionSuccess();
}

Reply raw(std::string bytes) {
  Reply r;
  r.raw = std::move(bytes);
  return r;
}

struct Malformed {
  const char* name;
  std::string bytes;
};

class MalformedProbeAnswer : public ::testing::TestWithParam<Malformed> {};

TEST_P(MalformedProbeAnswer, IsUnhealthy) {
  ProbedService s;
  Gateway gw(config(s.up));
  GH_START(gw);
  ASSERT_TRUE(Becomes(s, gw, 200));
  s.answer(raw(GetParam().bytes));
  EXPECT_TRUE(Becomes(s, gw, 503)) << GetParam().name;
  // A well-formed answer makes it healthy again: the verdict follows the answer, not a crash.
  s.answer(Reply::text("up"));
  EXPECT_TRUE(Becomes(s, gw, 200)) << GetParam().name;
}

INSTANTIATE_TEST_SUITE_P(
    HealthProbe, MalformedProbeAnswer,
    ::testing::Values(
        Malformed{"obs_fold", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: a\r\n  folded\r\n\r\nok"},
        Malformed{"conflicting_length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"},
        Malformed{"not_http_version", "HTTP/x.y 200 OK\r\nContent-Length: 2\r\n\r\nok"},
        Malformed{"status_letters", "HTTP/1.1 2xx OK\r\nContent-Length: 2\r\n\r\nok"},
        Malformed{"twelve_bytes", "HTTP/1.1 200"},
        Malformed{"body_cut_short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok"},
        Malformed{"body_over_the_cap",
                  "HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + std::string(70000, 'x')},
        Malformed{"chunked_body_over_the_cap",
                  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n11170\r\n" + std::string(70000, 'x') +
                      "\r\n0\r\n\r\n"},
        Malformed{"bad_chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n"},
        Malformed{"bytes_after_the_response", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n"},
        Malformed{"unasked_upgrade", "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n"}),
    [](const ::testing::TestParamInfo<Malformed>& i) { return std::string(i.param.name); });

TEST(HealthProbe, WellFormedBodiesOfEveryFramingAreRead) {
  ProbedService s;
  Gateway gw(config(s.up));
  GH_START(gw);
  s.answer(Reply::text("down", 500));
  ASSERT_TRUE(Becomes(s, gw, 503));
  Reply chunked = Reply::text(std::string(20000, 'c'));
  chunked.chunked = true;
  s.answer(chunked);
  EXPECT_TRUE(Becomes(s, gw, 200));
  s.answer(Reply::text("down", 500));
  ASSERT_TRUE(Becomes(s, gw, 503));
  // Read to the close, within the cap.
  s.answer(raw("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + std::string(60000, 'b')));
  EXPECT_TRUE(Becomes(s, gw, 200));
}

TEST(HealthProbe, RedirectIsHealthyAndNotFoundIsNotByDefault) {
  ProbedService s;
  Gateway gw(config(s.up));
  GH_START(gw);
  s.answer(Reply::text("down", 500));
  ASSERT_TRUE(Becomes(s, gw, 503));
  Reply found = Reply::text("", 302);
  found.headers.add("Location", "/elsewhere");
  s.answer(found);
  EXPECT_TRUE(Becomes(s, gw, 200));
  s.answer(Reply::text("no", 404));
  EXPECT_TRUE(Becomes(s, gw, 503));
}

TEST(HealthProbe, ExpectedStatusDecides) {
  ProbedService s;
  Gateway gw(config(s.up, ", expected_status: [404]"));
  GH_START(gw);
  s.answer(Reply::text("down", 500));
  ASSERT_TRUE(Becomes(s, gw, 503));
  s.answer(Reply::text("no", 404));
  EXPECT_TRUE(Becomes(s, gw, 200));
  s.answer(Reply::text("up"));  // 200 is not in the list
  EXPECT_TRUE(Becomes(s, gw, 503));
}

TEST(HealthProbe, ExpectedStatusRange) {
  ProbedService s;
  Gateway gw(config(s.up, ", expected_status: \"200-204\""));
  GH_START(gw);
  s.answer(Reply::text("", 204));
  ASSERT_TRUE(Becomes(s, gw, 200));
  s.answer(Reply::text("moved", 301));
  EXPECT_TRUE(Becomes(s, gw, 503));
}

TEST(HealthProbe, ReusesOneConnection) {
  ProbedService s;
  Gateway gw(config(s.up));
  GH_START(gw);
  ASSERT_TRUE(eventually([&] { return s.probes >= 5; }, 5s)) << s.probes;
  EXPECT_EQ(s.up.connections_accepted(), 1) << "after " << s.probes << " probes";
  EXPECT_TRUE(gateway_says(gw, 200));
}

TEST(HealthProbe, ConnectionCloseAnswerIsNotReused) {
  ProbedService s;
  Reply r = Reply::text("up");
  r.headers.add("Connection", "close");
  r.close = true;
  s.answer(r);
  Gateway gw(config(s.up));
  GH_START(gw);
  ASSERT_TRUE(eventually([&] { return s.probes >= 4; }, 5s)) << s.probes;
  EXPECT_GE(s.up.connections_accepted(), 3) << "after " << s.probes.load() << " probes";
  EXPECT_TRUE(gateway_says(gw, 200));
}

TEST(HealthProbe, IdleConnectionClosedByTheServiceIsRetriedOnANewOne) {
  ProbedService s;
  Reply r = Reply::text("up");
  r.close = true;  // closes after answering without saying so: the kept connection is dead
  s.answer(r);
  Gateway gw(config(s.up));
  GH_START(gw);
  ASSERT_TRUE(eventually([&] { return s.probes >= 2 && gateway_says(gw, 200); }, 5s));
  // Every probe finds its kept connection closed and retries at once on a new one: with
  // unhealthy_after 1, a single failed probe would show as 503.
  const int start = s.probes;
  for (int i = 0; i < 60; ++i) {
    ASSERT_TRUE(gateway_says(gw, 200)) << "a probe failed on a closed kept connection, after " << s.probes << " probes";
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_GE(s.probes - start, 5);
  EXPECT_GE(s.up.connections_accepted(), s.probes - 1);
}

}  // namespace
}  // namespace gh::integ
