// Faulty services: responses read as strictly as requests (502), timeouts (504), and
// retrying a refused connection (SPEC §2 services, §3).
#include <gtest/gtest.h>

#include "harness/assertions.h"

namespace gh::integ {
namespace {

using namespace std::string_literals;

Handler raw(std::string bytes) {
  return [bytes](const Request&) {
    Reply r;
    r.raw = bytes;
    return r;
  };
}

std::string one_service(const Upstream& up, std::string extra = "") {
  return fill(R"(
services:
  svc:
    instances: ["{U}"]
{X}
routes:
  - path: /
    service: svc
)",
              {{"U", up.url()}, {"X", extra}});
}

TEST(UpstreamErrors, InvalidResponsesAre502) {
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"not HTTP", "HELLO THERE\r\n\r\n"},
      {"binary garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"s},
      {"closed without a byte", ""},
      {"content-length and transfer-encoding",
       "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
      {"conflicting content-lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello!!"},
      {"bare CR", "HTTP/1.1 200 OK\r\nX-Bad: a\rb\r\nContent-Length: 2\r\n\r\nok"},
      {"obs-fold", "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok"},
      {"NUL in a field", "HTTP/1.1 200 OK\r\nX-Bad: a\0b\r\nContent-Length: 2\r\n\r\nok"s},
      {"bad status code", "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok"},
      {"head over max_header_bytes",
       "HTTP/1.1 200 OK\r\nX-Huge: " + std::string(20 * 1024, 'h') + "\r\nContent-Length: 2\r\n\r\nok"},
      {"head cut short", "HTTP/1.1 200 OK\r\nContent-Le"},
  };
  for (const auto& [name, bytes] : cases) {
    SCOPED_TRACE(name);
    // A fresh gateway for each case: failures also count against the instance's passive
    // health, and a few of them in a row would rightly turn the next answer into a 503.
    Upstream up("bad");
    up.set_handler(raw(bytes));
    Gateway gw(one_service(up));
    GH_START(gw);
    auto r = http_get(gw.port(), "/bad");
    EXPECT_TRUE(IsJsonError(r, 502, "Bad gateway"));
    EXPECT_FALSE(r.headers.has("X-Bad") || r.headers.has("X-Folded") || r.headers.has("X-Huge"))
        << "part of the invalid head was relayed";
    // The gateway still serves well-formed answers afterwards.
    up.set_handler(up.named());
    EXPECT_EQ(http_get(gw.port(), "/good").status, 200);
  }
}

TEST(UpstreamErrors, SlowInstanceIs504AfterTheResponseTimeout) {
  Upstream up("slow");
  up.set_handler([](const Request&) {
    Reply r = Reply::text("late");
    r.delay = 3s;
    return r;
  });
  Gateway gw(one_service(up, "    timeouts: {response: 300ms}"));
  GH_START(gw);
  const auto t0 = Clock::now();
  auto r = roundtrip(gw.port(), make_request("GET", "/slow"), 5s);
  const auto elapsed = Clock::now() - t0;
  EXPECT_TRUE(IsJsonError(r, 504, "Gateway timeout"));
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 2s) << "the 504 came after the service answered, not at the timeout";
}

TEST(UpstreamErrors, ResponseTimeoutDoesNotCutAFastEnoughAnswer) {
  Upstream up("ok");
  up.set_handler([](const Request&) {
    Reply r = Reply::text("in time");
    r.delay = 100ms;
    return r;
  });
  Gateway gw(one_service(up, "    timeouts: {response: 1s}"));
  GH_START(gw);
  auto r = http_get(gw.port(), "/x");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "in time");
}

TEST(UpstreamErrors, NoInstanceListeningIs502Or503) {
  Upstream up("gone");
  up.stop();
  Gateway gw(one_service(up));
  GH_START(gw);
  auto r = http_get(gw.port(), "/x");
  EXPECT_TRUE(r.status == 502 || r.status == 503) << r.describe();
  EXPECT_TRUE(IsJsonError(r, r.status, r.status == 502 ? "Bad gateway" : "Service unavailable"));
}

TEST(UpstreamErrors, PostIsNotRetriedAfterTheServiceFailed) {
  Upstream a("instance-1"), b("instance-2");
  a.set_handler(raw("garbage\r\n\r\n"));
  b.set_handler(raw("garbage\r\n\r\n"));
  Gateway gw(fill(R"(
services:
  svc:
    instances: ["{A}", "{B}"]
    retries: {attempts: 2, retry_on: [connect_failure, 502]}
routes:
  - path: /
    service: svc
)",
                  {{"A", a.url()}, {"B", b.url()}}));
  GH_START(gw);
  auto r = http_request(gw.port(), "POST", "/once", {}, "payload");
  EXPECT_TRUE(IsJsonError(r, 502, "Bad gateway"));
  EXPECT_EQ(a.request_count() + b.request_count(), 1u) << "a POST was sent twice";
  // The same failure on a GET is retried on the other instance, as configured.
  a.clear();
  b.clear();
  a.set_handler(a.named());
  b.set_handler(raw("garbage\r\n\r\n"));
  for (int i = 0; i < 4; ++i) {
    auto g = http_get(gw.port(), "/retry");
    EXPECT_EQ(g.status, 200) << g.describe();
    EXPECT_EQ(g.body, "instance-1");
  }
}

}  // namespace
}  // namespace gh::integ
