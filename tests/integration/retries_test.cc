// At most once for what may not be repeated (SPEC §2 retries, §3): once a request's bytes may
// have reached an instance, a non-idempotent request is never sent again, anywhere; a connect
// failure (nothing sent) is retried for any method. Deliveries are counted at the services.
#include <gtest/gtest.h>

#include "harness/assertions.h"

namespace gh::integ {
namespace {

Handler reset_after_read() {
  return [](const Request&) {
    Reply r;
    r.reset = true;
    return r;
  };
}

std::string two_instances(const Upstream& a, const Upstream& b, const std::string& retries,
                          const std::string& timeouts = "") {
  return fill(R"(
services:
  svc:
    instances: ["{A}", "{B}"]
    retries: {R}
{T}
routes:
  - path: /
    service: svc
)",
              {{"A", a.url()}, {"B", b.url()}, {"R", retries}, {"T", timeouts}});
}

std::size_t deliveries(const Upstream& a, const Upstream& b) { return a.request_count() + b.request_count(); }

TEST(AtMostOnce, PostReadThenResetIsNeverSentAgain) {
  Upstream a("a"), b("b");
  a.set_handler(reset_after_read());
  b.set_handler(reset_after_read());
  Gateway gw(two_instances(a, b, "{attempts: 2, retry_on: [connect_failure, 502, 503, 504]}"));
  GH_START(gw);
  for (const char* method : {"POST", "PATCH"}) {
    SCOPED_TRACE(method);
    a.clear();
    b.clear();
    auto r = http_request(gw.port(), method, "/orders", {}, "charge-the-card");
    EXPECT_TRUE(IsJsonError(r, 502, "Bad gateway"));
    EXPECT_EQ(deliveries(a, b), 1u) << "a non-idempotent request reached the services more than once";
  }
}

TEST(AtMostOnce, GetReadThenResetIsRetriedOnAnotherInstance) {
  Upstream a("a"), b("b");
  a.set_handler(reset_after_read());
  b.set_handler(reset_after_read());
  Gateway gw(two_instances(a, b, "{attempts: 1, retry_on: [connect_failure, 502]}"));
  GH_START(gw);
  auto r = http_get(gw.port(), "/orders");
  EXPECT_TRUE(IsJsonError(r, 502, "Bad gateway"));
  EXPECT_EQ(a.request_count(), 1u);
  EXPECT_EQ(b.request_count(), 1u);
}

TEST(AtMostOnce, PooledConnectionResetAfterReadIsNotReplayedForPost) {
  // The first request leaves a pooled connection; the service then resets it after reading the
  // next request. A GET may be replayed on a fresh connection; a POST may not.
  for (const char* method : {"POST", "GET"}) {
    SCOPED_TRACE(method);
    Upstream a("a");
    std::atomic<int> seen{0};
    a.set_handler([&seen](const Request&) {
      if (seen++ == 0) return Reply::text("first");
      Reply r;
      r.reset = true;
      return r;
    });
    Gateway gw(fill(R"(
services:
  svc: {instances: ["{A}"]}
routes:
  - path: /
    service: svc
)",
                    {{"A", a.url()}}),
               Gateway::Options{.workers = 1});
    GH_START(gw);
    Conn c(gw.port());
    ASSERT_TRUE(c.send(make_request(method, "/x", {}, "one")));
    auto first = c.read_response();
    ASSERT_TRUE(first && first->status == 200);
    ASSERT_TRUE(c.send(make_request(method, "/x", {}, "two")));
    auto second = c.read_response();
    ASSERT_TRUE(second.has_value());
    EXPECT_TRUE(IsJsonError(*second, 502, "Bad gateway"));
    const bool idempotent = std::string(method) == "GET";
    EXPECT_EQ(a.request_count(), idempotent ? 3u : 2u);
    EXPECT_EQ(a.connections_accepted(), idempotent ? 2 : 1);
  }
}

TEST(AtMostOnce, TimedOutPostIsNotResent) {
  Upstream a("a"), b("b");
  auto slow = [](const Request&) {
    Reply r = Reply::text("late");
    r.delay = 1500ms;
    return r;
  };
  a.set_handler(slow);
  b.set_handler(slow);
  Gateway gw(two_instances(a, b, "{attempts: 1, retry_on: [connect_failure, 504]}",
                           "    timeouts: {response: 300ms}"));
  GH_START(gw);
  auto post = http_request(gw.port(), "POST", "/pay", {}, "once");
  EXPECT_TRUE(IsJsonError(post, 504, "Gateway timeout"));
  EXPECT_EQ(deliveries(a, b), 1u);
  a.clear();
  b.clear();
  auto get = http_get(gw.port(), "/pay");
  EXPECT_TRUE(IsJsonError(get, 504, "Gateway timeout"));
  EXPECT_EQ(deliveries(a, b), 2u) << "an idempotent request is retried on 504 when retry_on says so";
}

TEST(AtMostOnce, ConnectFailureIsRetriedForAnyMethod) {
  Upstream a("a"), b("b");
  a.stop();  // refuses connections: nothing can reach it
  Gateway gw(two_instances(a, b, "{attempts: 1, retry_on: [connect_failure]}"));
  GH_START(gw);
  for (int i = 0; i < 4; ++i) {
    auto r = http_request(gw.port(), "POST", "/orders", {}, "n" + std::to_string(i));
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, "b");
  }
  EXPECT_EQ(b.request_count(), 4u);
  EXPECT_EQ(a.request_count(), 0u);
}

}  // namespace
}  // namespace gh::integ
