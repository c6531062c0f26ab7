// Several instances, one gateway (SPEC §4): two gatehouse processes pointed at one Redis share
// one rate-limit budget, so concurrent clients spread over both get exactly the limit in total.
// The test starts its own redis-server on a free loopback port and kills it at the end (it fails
// when redis-server is not installed: scripts/deps.sh installs it).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "harness/assertions.h"
#include "harness/redis.h"

namespace gh::integ {
namespace {

TEST(RedisRateLimit, TwoGatewaysShareOneBudget) {
  RedisServer redis;
  ASSERT_TRUE(redis.ready()) << "redis-server did not listen";
  Upstream user("user");
  const std::string yaml = fill(R"(
redis: {REDIS}
services:
  user:
    instances: ["{USER}"]
policies:
  per-ip:
    type: rate_limit
    limit: 20
    window: 1m
    store: redis
    on_store_error: deny
routes:
  - path: /api
    service: user
    policies: [per-ip]
)",
                                {{"REDIS", redis.url()}, {"USER", user.url()}});
  Gateway a(yaml), b(yaml);
  ASSERT_TRUE(a.start()) << a.diagnostics();
  ASSERT_TRUE(b.start()) << b.diagnostics();

  constexpr int kClients = 8, kEach = 10;
  std::atomic<int> ok{0}, limited{0}, other{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kEach; ++i) {
        const int port = (c + i) % 2 == 0 ? a.port() : b.port();
        Response r = http_get(port, "/api/x");
        if (r.status == 200) ++ok;
        else if (r.status == 429) ++limited;
        else ++other;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(other.load(), 0) << a.stderr_text() << b.stderr_text();
  EXPECT_EQ(ok.load(), 20) << a.stderr_text() << b.stderr_text();
  EXPECT_EQ(limited.load(), kClients * kEach - 20);
  EXPECT_EQ(user.request_count(), 20u);

  // Both gateways see the spent budget.
  EXPECT_EQ(http_get(a.port(), "/api/x").status, 429);
  Response last = http_get(b.port(), "/api/x");
  EXPECT_EQ(last.status, 429);
  EXPECT_TRUE(last.headers.has("Retry-After")) << last.describe();
}

// A password holding "/" is written %2F in the URL and sent decoded: the shared budget works.
TEST(RedisRateLimit, PercentEncodedPasswordAuthenticates) {
  RedisServer redis("p/ss");
  ASSERT_TRUE(redis.ready()) << "redis-server did not listen";
  Upstream user("user");
  auto config = [&](const std::string& userinfo) {
    return fill(R"(
redis: "redis://{USERINFO}@127.0.0.1:{PORT}"
services:
  user:
    instances: ["{USER}"]
policies:
  per-ip:
    type: rate_limit
    limit: 2
    window: 1m
    store: redis
    on_store_error: deny
routes:
  - path: /api
    service: user
    policies: [per-ip]
)",
                {{"USERINFO", userinfo}, {"PORT", std::to_string(redis.port())}, {"USER", user.url()}});
  };
  {
    Gateway gw(config(":p%2Fss"));
    ASSERT_TRUE(gw.start()) << gw.diagnostics();
    EXPECT_EQ(http_get(gw.port(), "/api/a").status, 200) << gw.diagnostics();
    EXPECT_EQ(http_get(gw.port(), "/api/a").status, 200);
    EXPECT_EQ(http_get(gw.port(), "/api/a").status, 429);  // the budget is counted in Redis
  }
  {
    // Left encoded twice, the password is wrong: every request meets a store error (deny).
    Gateway gw(config(":p%252Fss"));
    ASSERT_TRUE(gw.start()) << gw.diagnostics();
    auto r = http_get(gw.port(), "/api/a");
    EXPECT_NE(r.status, 200) << r.describe();
    EXPECT_NE(r.status, 429) << r.describe();
  }
}

}  // namespace
}  // namespace gh::integ
