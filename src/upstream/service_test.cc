#include "upstream/service.h"

#include <gtest/gtest.h>

#include <map>

namespace gh::upstream {
namespace {

config::ServiceConfig make(config::Balance lb, std::vector<std::uint32_t> weights) {
  config::ServiceConfig c;
  c.name = "svc";
  c.load_balancing = lb;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    config::InstanceConfig inst;
    inst.port = static_cast<std::uint16_t>(4001 + i);
    inst.host = "127.0.0.1";
    inst.url = "http://127.0.0.1:" + std::to_string(inst.port);
    inst.weight = weights[i];
    c.instances.push_back(inst);
  }
  return c;
}

std::shared_ptr<Service> build(const config::ServiceConfig& c) {
  auto s = Service::build(c);
  EXPECT_TRUE(s.has_value());
  return *s;
}

TEST(Service, RoundRobinRotatesExactly) {
  auto s = build(make(config::Balance::RoundRobin, {1, 1, 1}));
  std::vector<std::string> order;
  for (int i = 0; i < 6; ++i) order.push_back(s->pick({})->url);
  EXPECT_EQ(order[0], order[3]);
  EXPECT_EQ(order[1], order[4]);
  EXPECT_EQ(order[2], order[5]);
  EXPECT_NE(order[0], order[1]);
  EXPECT_NE(order[1], order[2]);
  EXPECT_NE(order[0], order[2]);
}

TEST(Service, SkipsUnavailableEndpoints) {
  auto s = build(make(config::Balance::RoundRobin, {1, 1, 1}));
  s->endpoints()[1]->active_healthy = false;
  std::map<std::string, int> seen;
  for (int i = 0; i < 10; ++i) seen[s->pick({})->url]++;
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen.count(s->endpoints()[1]->url), 0u);
  EXPECT_EQ(s->available_count(), 2u);
  for (auto& e : s->endpoints()) e->active_healthy = false;
  EXPECT_EQ(s->pick({}), nullptr);
}

TEST(Service, PrefersEndpointsNotYetTried) {
  auto s = build(make(config::Balance::RoundRobin, {1, 1}));
  const Endpoint* first = s->pick({});
  PickInput in;
  in.avoid = &first;
  in.avoid_count = 1;
  for (int i = 0; i < 4; ++i) EXPECT_NE(s->pick(in), first);
}

TEST(Service, WeightedFollowsWeightsSmoothly) {
  auto s = build(make(config::Balance::Weighted, {1, 2}));
  std::map<std::string, int> seen;
  std::string prev;
  int repeats = 0;
  for (int i = 0; i < 300; ++i) {
    std::string u = s->pick({})->url;
    seen[u]++;
    if (u == prev) repeats++;
    prev = u;
  }
  EXPECT_EQ(seen[s->endpoints()[0]->url], 100);
  EXPECT_EQ(seen[s->endpoints()[1]->url], 200);
  EXPECT_LE(repeats, 100);  // smooth: the heavy one never runs three in a row
}

TEST(Service, HashIsStableAndMovesOnlyWhenUnavailable) {
  auto c = make(config::Balance::Hash, {1, 1, 1});
  c.hash_on = config::HashOn{config::HashOn::Kind::Header, "X-User"};
  auto s = build(c);
  PickInput in;
  in.has_hash = true;
  in.hash = hash_key("user-42");
  Endpoint* a = s->pick(in);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(s->pick(in), a);
  a->active_healthy = false;
  Endpoint* b = s->pick(in);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(b, a);
  // Keys spread over every endpoint.
  a->active_healthy = true;
  std::map<const Endpoint*, int> spread;
  for (int k = 0; k < 300; ++k) {
    in.hash = hash_key("key-" + std::to_string(k));
    spread[s->pick(in)]++;
  }
  EXPECT_EQ(spread.size(), 3u);
  for (auto& [e, n] : spread) EXPECT_GT(n, 50);
}

TEST(Service, LeastRequestPrefersIdleEndpoint) {
  auto s = build(make(config::Balance::LeastRequest, {1, 1}));
  s->endpoints()[0]->in_flight = 10;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s->pick({}), s->endpoints()[1].get());
}

TEST(Service, MaxInFlightRefusesBeyondLimit) {
  auto c = make(config::Balance::RoundRobin, {1});
  c.max_in_flight = 2;
  auto s = build(c);
  EXPECT_TRUE(s->try_acquire());
  EXPECT_TRUE(s->try_acquire());
  EXPECT_FALSE(s->try_acquire());
  s->release();
  EXPECT_TRUE(s->try_acquire());
}

TEST(Endpoint, PassiveEjectionAfterConsecutiveConnectFailures) {
  Endpoint e;
  const std::int64_t now = 1'000'000;
  e.report_connect_failure(now);
  e.report_connect_failure(now);
  EXPECT_TRUE(e.available(now));
  e.report_connect_failure(now);
  EXPECT_FALSE(e.available(now));
  EXPECT_TRUE(e.available(now + kEjectMillis));
}

TEST(Endpoint, SuccessResetsFailureCount) {
  Endpoint e;
  const std::int64_t now = 1'000'000;
  e.report_connect_failure(now);
  e.report_connect_failure(now);
  e.report_status(200, now);
  e.report_connect_failure(now);
  EXPECT_TRUE(e.available(now));
}

}  // namespace
}  // namespace gh::upstream
