// Balancing and health: round robin really rotates, unhealthy or dead instances leave the
// rotation and come back, 503 when none is left, and GET /health (SPEC §2 services, §3).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "harness/assertions.h"

namespace gh::integ {
namespace {

std::string three_instances(const Upstream& a, const Upstream& b, const Upstream& c, std::string extra = "") {
  return fill(R"(
services:
  users:
    instances: ["{A}", "{B}", "{C}"]
{EXTRA}
routes:
  - path: /api
    service: users
)",
              {{"A", a.url()}, {"B", b.url()}, {"C", c.url()}, {"EXTRA", extra}});
}

const std::string kFastHealth =
    "    health_check: {path: /health, interval: 200ms, timeout: 500ms, healthy_after: 1, unhealthy_after: 1}\n";

// Sends N GETs to /api, each on a fresh connection; returns who answered, in order ("" for a
// failure, with its status).
std::vector<std::string> spray(int port, int n) {
  std::vector<std::string> who;
  for (int i = 0; i < n; ++i) {
    auto r = http_get(port, "/api/x");
    who.push_back(r.status == 200 ? r.body : "status " + std::to_string(r.status));
  }
  return who;
}

std::map<std::string, int> tally(const std::vector<std::string>& who) {
  std::map<std::string, int> m;
  for (const auto& w : who) ++m[w];
  return m;
}

std::string joined(const std::vector<std::string>& who) {
  std::string s;
  for (const auto& w : who) s += w + " ";
  return s;
}

// Every instance of ORDER appears in turn: who[i] == who[i % k] with k distinct first entries.
::testing::AssertionResult Rotates(const std::vector<std::string>& who, std::size_t k) {
  for (std::size_t i = 0; i < who.size(); ++i) {
    if (who[i] != who[i % k] || (i < k && std::count(who.begin(), who.begin() + static_cast<long>(k), who[i]) != 1)) {
      return ::testing::AssertionFailure() << "not a rotation over " << k << " instances: " << joined(who);
    }
  }
  return ::testing::AssertionSuccess();
}

TEST(Balancing, RoundRobinRotatesExactlyAcrossConnections) {
  Upstream a("instance-1"), b("instance-2"), c("instance-3");
  Gateway gw(three_instances(a, b, c));
  GH_START(gw);
  auto who = spray(gw.port(), 30);
  auto counts = tally(who);
  EXPECT_EQ(counts["instance-1"], 10) << joined(who);
  EXPECT_EQ(counts["instance-2"], 10) << joined(who);
  EXPECT_EQ(counts["instance-3"], 10) << joined(who);
  EXPECT_TRUE(Rotates(who, 3));
  EXPECT_EQ(a.request_count() + b.request_count() + c.request_count(), 30u);
}

TEST(Balancing, RoundRobinRotatesOnOneKeptAliveConnection) {
  Upstream a("instance-1"), b("instance-2"), c("instance-3");
  Gateway gw(three_instances(a, b, c));
  GH_START(gw);
  Conn conn(gw.port());
  ASSERT_TRUE(conn.ok());
  std::vector<std::string> who;
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(conn.send(make_request("GET", "/api/k")));
    auto r = conn.read_response();
    ASSERT_TRUE(r) << "no response to request " << i;
    who.push_back(r->body);
  }
  auto counts = tally(who);
  EXPECT_EQ(counts["instance-1"], 10) << joined(who);
  EXPECT_EQ(counts["instance-2"], 10) << joined(who);
  EXPECT_EQ(counts["instance-3"], 10) << joined(who);
  EXPECT_TRUE(Rotates(who, 3));
}

TEST(Balancing, WeightedSplitsByWeight) {
  Upstream a("instance-1"), b("instance-2");
  Gateway gw(fill(R"(
services:
  users:
    instances: ["{A}", {url: "{B}", weight: 2}]
    load_balancing: weighted
routes:
  - path: /api
    service: users
)",
                  {{"A", a.url()}, {"B", b.url()}}));
  GH_START(gw);
  auto who = spray(gw.port(), 30);
  EXPECT_EQ(tally(who)["instance-1"], 10) << joined(who);
  EXPECT_EQ(tally(who)["instance-2"], 20) << joined(who);
}

TEST(Balancing, MaxInFlightAnswers503AtOnce) {
  Upstream a("instance-1");
  a.set_handler([](const Request&) {
    Reply r = Reply::text("slow");
    r.delay = 800ms;
    return r;
  });
  Gateway gw(fill(R"(
services:
  users:
    instances: ["{A}"]
    max_in_flight: 1
routes:
  - path: /api
    service: users
)",
                  {{"A", a.url()}}));
  GH_START(gw);
  Conn first(gw.port());
  ASSERT_TRUE(first.send(make_request("GET", "/api/first")));
  ASSERT_TRUE(a.wait_requests(1));
  const auto t0 = Clock::now();
  auto r = http_get(gw.port(), "/api/second");
  EXPECT_TRUE(IsJsonError(r, 503, "Service unavailable"));
  EXPECT_LT(Clock::now() - t0, 500ms) << "the 503 waited for the request in flight";
  auto j = Json::parse(r.body);
  EXPECT_TRUE(j && j->get("service") && j->get("service")->is_string("users")) << r.body;
  auto done = first.read_response(5s);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, 200);
  EXPECT_EQ(a.request_count(), 1u);
  // Once it finished, the budget is free again.
  a.set_handler(a.named());
  EXPECT_EQ(http_get(gw.port(), "/api/third").status, 200);
}

TEST(Balancing, FailedHealthCheckLeavesRotationAndRecoveryReturns) {
  Upstream a("instance-1"), b("instance-2"), c("instance-3");
  Gateway gw(three_instances(a, b, c, kFastHealth));
  GH_START(gw);
  ASSERT_TRUE(eventually([&] { return b.health_probes() >= 1; }, 5s)) << "instance-2 never probed";

  b.set_healthy(false);
  // Once the checker has seen the failure, instance-2 gets nothing more.
  ASSERT_TRUE(eventually(
      [&] {
        auto who = spray(gw.port(), 6);
        return tally(who)["instance-2"] == 0;
      },
      5s, 50ms))
      << "instance-2 still receives traffic after failing its health check";
  b.clear();
  auto who = spray(gw.port(), 20);
  EXPECT_EQ(b.request_count(), 0u) << joined(who);
  EXPECT_EQ(tally(who)["instance-1"], 10) << joined(who);
  EXPECT_EQ(tally(who)["instance-3"], 10) << joined(who);
  EXPECT_TRUE(Rotates(who, 2));

  b.set_healthy(true);
  ASSERT_TRUE(eventually([&] { return tally(spray(gw.port(), 6))["instance-2"] == 2; }, 5s, 50ms))
      << "instance-2 never came back after recovering";
  who = spray(gw.port(), 30);
  EXPECT_EQ(tally(who)["instance-2"], 10) << joined(who);
  EXPECT_TRUE(Rotates(who, 3));
}

TEST(Balancing, KilledInstanceStopsReceivingTrafficAndComesBack) {
  Upstream a("instance-1"), b("instance-2"), c("instance-3");
  Gateway gw(three_instances(a, b, c, kFastHealth));
  GH_START(gw);
  EXPECT_EQ(tally(spray(gw.port(), 3))["instance-2"], 1);

  b.stop();
  // GETs never fail: a refused connection is retried on another instance.
  auto who = spray(gw.port(), 30);
  auto counts = tally(who);
  EXPECT_EQ(counts["instance-1"] + counts["instance-3"], 30) << joined(who);

  b.start();
  ASSERT_TRUE(eventually([&] { return tally(spray(gw.port(), 6))["instance-2"] == 2; }, 5s, 50ms))
      << "instance-2 never came back after restarting";
  who = spray(gw.port(), 30);
  EXPECT_EQ(tally(who)["instance-2"], 10) << joined(who);
}

TEST(Balancing, RefusedConnectionIsRetriedOnAnotherInstanceForGet) {
  Upstream a("instance-1"), b("instance-2");
  Gateway gw(fill(R"(
services:
  users:
    instances: ["{A}", "{B}"]
routes:
  - path: /api
    service: users
)",
                  {{"A", a.url()}, {"B", b.url()}}));
  GH_START(gw);
  b.stop();
  for (int i = 0; i < 10; ++i) {
    auto r = http_get(gw.port(), "/api/r");
    EXPECT_EQ(r.status, 200) << "request " << i << ":\n" << r.describe();
    EXPECT_EQ(r.body, "instance-1");
  }
  EXPECT_EQ(a.request_count(), 10u);
}

TEST(Balancing, AllInstancesUnhealthyIs503NamingTheService) {
  Upstream a("instance-1"), b("instance-2");
  Gateway gw(fill(R"(
services:
  users:
    instances: ["{A}", "{B}"]
{HC}
routes:
  - path: /api
    service: users
)",
                  {{"A", a.url()}, {"B", b.url()}, {"HC", kFastHealth}}));
  GH_START(gw);
  EXPECT_EQ(http_get(gw.port(), "/api/x").status, 200);
  a.set_healthy(false);
  b.set_healthy(false);
  Response r;
  ASSERT_TRUE(eventually([&] { return (r = http_get(gw.port(), "/api/x")).status == 503; }, 5s, 50ms))
      << r.describe();
  EXPECT_TRUE(IsJsonError(r, 503, "Service unavailable"));
  auto json = Json::parse(r.body);
  ASSERT_TRUE(json);
  ASSERT_TRUE(json->get("service"));
  EXPECT_TRUE(json->get("service")->is_string("users")) << r.body;

  // And back.
  a.set_healthy(true);
  ASSERT_TRUE(eventually([&] { return http_get(gw.port(), "/api/x").status == 200; }, 5s, 50ms));
}

TEST(Balancing, AllInstancesKilledIs503) {
  Upstream a("instance-1"), b("instance-2");
  Gateway gw(fill(R"(
services:
  users:
    instances: ["{A}", "{B}"]
{HC}
routes:
  - path: /api
    service: users
)",
                  {{"A", a.url()}, {"B", b.url()}, {"HC", kFastHealth}}));
  GH_START(gw);
  a.stop();
  b.stop();
  Response r;
  ASSERT_TRUE(eventually([&] { return (r = http_get(gw.port(), "/api/x")).status == 503; }, 5s, 50ms))
      << r.describe();
  EXPECT_TRUE(IsJsonError(r, 503, "Service unavailable"));
}

TEST(Balancing, HealthEndpointAggregatesServices) {
  Upstream u1("u1"), u2("u2"), o1("o1");
  Gateway gw(fill(R"(
services:
  users:
    instances: ["{U1}", "{U2}"]
{HC}
  orders:
    instances: ["{O1}"]
{HC}
routes:
  - path: /api/users
    service: users
  - path: /api/orders
    service: orders
)",
                  {{"U1", u1.url()}, {"U2", u2.url()}, {"O1", o1.url()}, {"HC", kFastHealth}}));
  GH_START(gw);

  auto check = [&](const Response& r, const char* status, int users_healthy, int orders_healthy) {
    auto json = Json::parse(r.body);
    if (!json || !json->get("status") || !json->get("services")) return false;
    const Json* users = json->get("services")->get("users");
    const Json* orders = json->get("services")->get("orders");
    return json->get("status")->is_string(status) && users && orders && users->get("healthy") &&
           users->get("healthy")->is_number(users_healthy) && users->get("total") &&
           users->get("total")->is_number(2) && orders->get("healthy") &&
           orders->get("healthy")->is_number(orders_healthy) && orders->get("total") &&
           orders->get("total")->is_number(1);
  };

  Response r;
  ASSERT_TRUE(eventually([&] { return check(r = http_get(gw.port(), "/health"), "ok", 2, 1); }, 5s, 50ms))
      << r.describe();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.value_or("Content-Type", "").rfind("application/json", 0), 0u) << r.describe();
  EXPECT_EQ(r.body.find("127.0.0.1"), std::string::npos) << "reveals instance addresses: " << r.body;

  u2.set_healthy(false);
  ASSERT_TRUE(eventually([&] { return check(r = http_get(gw.port(), "/health"), "ok", 1, 1); }, 5s, 50ms))
      << r.describe();
  EXPECT_EQ(r.status, 200);

  o1.set_healthy(false);
  ASSERT_TRUE(eventually([&] { return check(r = http_get(gw.port(), "/health"), "degraded", 1, 0); }, 5s, 50ms))
      << r.describe();
  EXPECT_EQ(r.status, 503);

  o1.set_healthy(true);
  ASSERT_TRUE(eventually([&] { return http_get(gw.port(), "/health").status == 200; }, 5s, 50ms));
  // The aggregated health is the gateway's own answer, not a route to a service.
  EXPECT_EQ(u1.request_count() + u2.request_count() + o1.request_count(), 0u);
}

TEST(Balancing, HealthEndpointCanMoveOrBeTurnedOff) {
  Upstream up("svc");
  const std::string rest = fill(R"(
services:
  svc: {instances: ["{U}"]}
routes:
  - path: /
    service: svc
)",
                                {{"U", up.url()}});
  {
    Gateway gw("health_endpoint: /healthz\n" + rest);
    GH_START(gw);
    auto r = http_get(gw.port(), "/healthz");
    EXPECT_EQ(r.status, 200);
    auto j = Json::parse(r.body);
    EXPECT_TRUE(j && j->get("status") && j->get("status")->is_string("ok")) << r.describe();
    EXPECT_EQ(up.request_count(), 0u);
    EXPECT_EQ(http_get(gw.port(), "/health/x").body, "svc");  // now an ordinary path
  }
  up.clear();
  {
    Gateway gw("health_endpoint: false\n" + rest);
    GH_START(gw);
    // GET /health is now routed like any path (the service's own /health answers it).
    const int before = up.health_probes();
    auto r = http_get(gw.port(), "/health");
    EXPECT_EQ(r.status, 200) << r.describe();
    EXPECT_EQ(up.health_probes(), before + 1) << "the gateway answered /health itself:\n" << r.describe();
  }
}

}  // namespace
}  // namespace gh::integ

namespace gh::integ {
namespace {

// hash_on: claim:NAME hashes on the verified token's claim: one subject always reaches the same
// instance, and subjects spread over the instances.
TEST(Balancing, HashOnClaimFollowsTheVerifiedSubject) {
  Upstream a("a"), b("b");
  Gateway gw(fill(R"(
services:
  svc:
    instances: ["{A}", "{B}"]
    load_balancing: hash
    hash_on: claim:sub
policies:
  auth: {type: jwt, secret: hash-test-secret}
routes:
  - path: /api
    service: svc
    policies: [auth]
)",
                  {{"A", a.url()}, {"B", b.url()}}));
  GH_START(gw);
  std::map<std::string, int> per_instance;
  // The ring depends on the upstreams' ports (random): with 20 subjects, all landing on one
  // instance of two happens about once in 27,000 runs even on a 60/40 ring (10 did once in 500).
  for (int s = 0; s < 20; ++s) {
    const std::string sub = "user-" + std::to_string(s);
    auto t = run_gatehouse({"token", "--secret", "hash-test-secret", "--sub", sub});
    ASSERT_EQ(t.exit_code, 0) << t.err;
    std::string token = t.out.substr(0, t.out.find_first_of("\r\n"));
    std::set<std::string> reached;
    for (int i = 0; i < 5; ++i) {
      auto r = http_get(gw.port(), "/api/x", {{"Authorization", "Bearer " + token}});
      ASSERT_EQ(r.status, 200) << r.describe();
      reached.insert(r.body);
    }
    EXPECT_EQ(reached.size(), 1u) << sub << " alternated between instances";
    ++per_instance[*reached.begin()];
  }
  EXPECT_EQ(per_instance.size(), 2u) << "twenty subjects all hashed to one instance";
}

}  // namespace
}  // namespace gh::integ
