#include "upstream/service.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

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

// A resolver answering from a table, at once; a name missing from the table does not resolve.
struct FakeResolver final : Resolver {
  std::map<std::string, std::vector<std::string>> table;
  int asked = 0;
  void resolve(const std::string& host, std::function<void(Answer)> done) override {
    ++asked;
    Answer a;
    auto it = table.find(host);
    if (it != table.end())
      for (const auto& t : it->second) a.addresses.push_back(boost::asio::ip::make_address(t));
    std::sort(a.addresses.begin(), a.addresses.end());
    if (a.addresses.empty()) a.error = "no such host";
    done(std::move(a));
  }
};

config::ServiceConfig named(config::Balance lb = config::Balance::RoundRobin) {
  config::ServiceConfig c;
  c.name = "svc";
  c.load_balancing = lb;
  config::InstanceConfig by_name;
  by_name.host = "api.internal";
  by_name.port = 8080;
  by_name.url = "http://api.internal:8080";
  c.instances.push_back(by_name);
  config::InstanceConfig literal;
  literal.host = "10.9.9.9";
  literal.port = 9000;
  literal.url = "http://10.9.9.9:9000";
  c.instances.push_back(literal);
  return c;
}

std::set<std::string> addresses(const Service& s) {
  std::set<std::string> out;
  for (const auto& e : s.endpoints()) out.insert(e->address.address().to_string() + ":" + std::to_string(e->address.port()));
  return out;
}

TEST(ServiceDns, EveryAddressOfANameIsAnEndpointWithTheNamesHost) {
  FakeResolver r;
  r.table["api.internal"] = {"10.0.0.2", "10.0.0.1", "fd00::7"};
  auto s = Service::build(named(), r);
  ASSERT_TRUE(s.has_value()) << s.error().context;
  EXPECT_EQ(addresses(**s), (std::set<std::string>{"10.0.0.1:8080", "10.0.0.2:8080", "fd00::7:8080", "10.9.9.9:9000"}));
  EXPECT_EQ(r.asked, 1);  // the literal is not resolved
  for (const auto& e : (*s)->endpoints()) {
    if (e->host == "api.internal") {
      EXPECT_EQ(e->host_header, "api.internal:8080");
      EXPECT_EQ(e->url, "http://api.internal:8080");
    }
  }
  // Round robin reaches all four.
  std::set<const Endpoint*> seen;
  for (int i = 0; i < 8; ++i) seen.insert((*s)->pick({}));
  EXPECT_EQ(seen.size(), 4u);
  EXPECT_TRUE((*s)->has_names());
}

TEST(Service, Ipv6LiteralHostFieldHasBrackets) {
  config::ServiceConfig c;
  c.name = "svc";
  config::InstanceConfig inst;
  inst.host = "::1";
  inst.port = 8080;
  inst.url = "http://[::1]:8080";
  c.instances.push_back(inst);
  auto s = build(c);
  EXPECT_EQ(s->endpoints()[0]->host_header, "[::1]:8080");
  EXPECT_EQ(s->endpoints()[0]->pool_key, "[::1]:8080");
}

TEST(ServiceDns, ANameThatDoesNotResolveAtBuildIsAnError) {
  FakeResolver r;
  auto s = Service::build(named(), r);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().context, "service \"svc\": cannot resolve host \"api.internal\": no such host");
}

TEST(ServiceDns, ChangedAnswerSwapsEndpointsAndKeepsTheStateOfUnchangedOnes) {
  FakeResolver r;
  r.table["api.internal"] = {"10.0.0.1", "10.0.0.2"};
  auto built = Service::build(named(), r);
  ASSERT_TRUE(built.has_value());
  auto s = *built;
  Endpoint* kept = nullptr;
  Endpoint* dropped = nullptr;
  for (const auto& e : s->endpoints()) {
    if (e->address.address().to_string() == "10.0.0.1") kept = e.get();
    if (e->address.address().to_string() == "10.0.0.2") dropped = e.get();
  }
  ASSERT_TRUE(kept && dropped);
  kept->active_healthy = false;
  kept->in_flight = 3;
  kept->requests = 17;
  dropped->in_flight = 1;  // a request still holds it

  r.table["api.internal"] = {"10.0.0.1", "10.0.0.3"};
  int calls = 0;
  bool changed = false;
  s->refresh(r, [&](bool c) {
    ++calls;
    changed = c;
  });
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(changed);
  EXPECT_EQ(addresses(*s), (std::set<std::string>{"10.0.0.1:8080", "10.0.0.3:8080", "10.9.9.9:9000"}));
  for (const auto& e : s->endpoints()) {
    if (e->address.address().to_string() != "10.0.0.1") continue;
    EXPECT_EQ(e.get(), kept);
    EXPECT_FALSE(e->active_healthy);
    EXPECT_EQ(e->in_flight, 3u);
    EXPECT_EQ(e->requests, 17u);
  }
  // The dropped endpoint is retired, never picked, and still alive for the request holding it.
  EXPECT_TRUE(dropped->retired);
  EXPECT_EQ(dropped->in_flight, 1u);
  for (int i = 0; i < 12; ++i) EXPECT_NE(s->pick({}), dropped);
  // It comes back with its state when the name answers it again.
  dropped->requests = 5;
  r.table["api.internal"] = {"10.0.0.2"};
  s->refresh(r, [&](bool c) { changed = c; });
  EXPECT_TRUE(changed);
  EXPECT_EQ(addresses(*s), (std::set<std::string>{"10.0.0.2:8080", "10.9.9.9:9000"}));
  EXPECT_FALSE(dropped->retired);
  EXPECT_TRUE(kept->retired);
  bool found = false;
  for (const auto& e : s->endpoints()) found = found || (e.get() == dropped && e->requests == 5u);
  EXPECT_TRUE(found);
}

TEST(ServiceDns, SameAnswerChangesNothing) {
  FakeResolver r;
  r.table["api.internal"] = {"10.0.0.1", "10.0.0.2"};
  auto s = *Service::build(named(), r);
  auto before = s->endpoints();
  bool changed = true;
  s->refresh(r, [&](bool c) { changed = c; });
  EXPECT_FALSE(changed);
  EXPECT_EQ(s->endpoints(), before);
}

TEST(ServiceDns, FailedOrEmptyAnswerKeepsTheLastAddresses) {
  FakeResolver r;
  r.table["api.internal"] = {"10.0.0.1", "10.0.0.2"};
  auto s = *Service::build(named(), r);
  auto before = s->endpoints();
  r.table.erase("api.internal");  // stops resolving
  bool changed = true;
  int calls = 0;
  s->refresh(r, [&](bool c) {
    changed = c;
    ++calls;
  });
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(changed);
  EXPECT_EQ(s->endpoints(), before);
  r.table["api.internal"] = {};  // an empty answer
  s->refresh(r, [&](bool c) { changed = c; });
  EXPECT_FALSE(changed);
  EXPECT_EQ(s->endpoints(), before);
  for (const auto& e : before) EXPECT_FALSE(e->retired);
}

TEST(ServiceDns, HashRingFollowsTheNewAddresses) {
  FakeResolver r;
  r.table["api.internal"] = {"10.0.0.1", "10.0.0.2"};
  auto c = named(config::Balance::Hash);
  c.hash_on = config::HashOn{config::HashOn::Kind::Header, "X-User"};
  auto s = *Service::build(c, r);
  r.table["api.internal"] = {"10.0.0.5"};
  s->refresh(r, [](bool) {});
  std::set<std::string> seen;
  PickInput in;
  in.has_hash = true;
  for (int k = 0; k < 200; ++k) {
    in.hash = hash_key("key-" + std::to_string(k));
    seen.insert(s->pick(in)->address.address().to_string());
  }
  EXPECT_EQ(seen, (std::set<std::string>{"10.0.0.5", "10.9.9.9"}));
}

TEST(ServiceDns, LiteralOnlyServiceHasNoNames) {
  auto s = build(make(config::Balance::RoundRobin, {1, 1}));
  EXPECT_FALSE(s->has_names());
  int calls = 0;
  FakeResolver r;
  s->refresh(r, [&](bool changed) {
    ++calls;
    EXPECT_FALSE(changed);
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(r.asked, 0);
}

TEST(DnsRefresher, ResolvesAgainOnTheLoopAndReportsChanges) {
  boost::asio::io_context io;
  auto r = std::make_shared<FakeResolver>();
  r->table["api.internal"] = {"10.0.0.1"};
  auto c = named();
  c.dns_refresh = std::chrono::milliseconds(20);
  auto s = *Service::build(c, *r);
  int changes = 0;
  DnsRefresher refresher(io, {s}, r, [&] { ++changes; });
  refresher.start();
  io.run_for(std::chrono::milliseconds(90));
  EXPECT_GE(r->asked, 3);  // build, then every 20 ms
  EXPECT_EQ(changes, 0);
  r->table["api.internal"] = {"10.0.0.4", "10.0.0.5"};
  io.run_for(std::chrono::milliseconds(60));
  EXPECT_EQ(changes, 1);
  EXPECT_EQ(addresses(*s), (std::set<std::string>{"10.0.0.4:8080", "10.0.0.5:8080", "10.9.9.9:9000"}));
  refresher.stop();
  const int asked = r->asked;
  r->table["api.internal"] = {"10.0.0.6"};
  io.restart();
  io.run_for(std::chrono::milliseconds(60));
  EXPECT_EQ(r->asked, asked);  // stopped: no more lookups, no more changes
  EXPECT_EQ(changes, 1);
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

namespace gh::upstream {
namespace {

config::InstanceConfig registered(std::uint16_t port, std::uint32_t weight = 1) {
  config::InstanceConfig inst;
  inst.host = "127.0.0.1";
  inst.port = port;
  inst.url = "http://127.0.0.1:" + std::to_string(port);
  inst.weight = weight;
  return inst;
}

TEST(ServiceRegistered, AddedInstancesAreBalancedAndKeepTheirStateAcrossChanges) {
  auto s = build(make(config::Balance::RoundRobin, {1}));
  EXPECT_TRUE(s->set_registered({registered(5001)}));
  auto eps = s->endpoints();
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_EQ(eps[0]->source, Origin::Static);
  EXPECT_EQ(eps[1]->source, Origin::Registered);
  EXPECT_EQ(eps[1]->pool_key, "127.0.0.1:5001");
  std::map<std::string, int> seen;
  for (int i = 0; i < 4; ++i) seen[s->pick({})->url]++;
  EXPECT_EQ(seen["http://127.0.0.1:4001"], 2);
  EXPECT_EQ(seen["http://127.0.0.1:5001"], 2);

  // The same list again changes nothing; adding one keeps the first's endpoint and its state.
  eps[1]->active_healthy = false;
  EXPECT_FALSE(s->set_registered({registered(5001)}));
  EXPECT_TRUE(s->set_registered({registered(5001), registered(5002)}));
  auto after = s->endpoints();
  ASSERT_EQ(after.size(), 3u);
  EXPECT_EQ(after[1], eps[1]);
  EXPECT_FALSE(after[1]->active_healthy);

  // Dropped: retired (a request holding it finishes), no longer picked; back again with its state.
  EXPECT_TRUE(s->set_registered({registered(5002)}));
  EXPECT_TRUE(eps[1]->retired.load());
  for (int i = 0; i < 6; ++i) EXPECT_NE(s->pick({})->url, "http://127.0.0.1:5001");
  EXPECT_TRUE(s->set_registered({registered(5001), registered(5002)}));
  EXPECT_EQ(s->endpoints()[1], eps[1]);
  EXPECT_FALSE(eps[1]->retired.load());

  // A new weight is a new endpoint; an empty list leaves only the file's instance.
  EXPECT_TRUE(s->set_registered({registered(5001, 3)}));
  EXPECT_EQ(s->endpoints()[1]->weight, 3u);
  EXPECT_TRUE(s->set_registered({}));
  EXPECT_EQ(s->endpoints().size(), 1u);
}

TEST(ServiceRegistered, AHostThatDoesNotResolveIsSkipped) {
  auto s = build(make(config::Balance::RoundRobin, {1}));
  config::InstanceConfig bad = registered(5001);
  bad.host = "no-such-host.invalid";
  bad.url = "http://no-such-host.invalid:5001";
  EXPECT_FALSE(s->set_registered({bad}));
  EXPECT_EQ(s->endpoints().size(), 1u);
}

// https:// instances carry what a connection needs (the service's TLS context, the host for SNI
// and the name check, server_name), and pool keys that keep them apart from plain connections
// to the same address and from connections made with other TLS settings.
TEST(Service, HttpsInstancesCarryTheirTlsTargetAndPoolKey) {
  config::ServiceConfig c = make(config::Balance::RoundRobin, {1, 1});
  c.instances[1].port = c.instances[0].port;
  c.instances[1].url = "https://127.0.0.1:" + std::to_string(c.instances[1].port);
  c.instances[1].tls = true;
  auto s = build(c);
  ASSERT_TRUE(s);
  const auto eps = s->endpoints();
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_EQ(eps[0]->tls, nullptr);
  ASSERT_NE(eps[1]->tls, nullptr);
  ASSERT_NE(eps[1]->tls->context, nullptr);
  EXPECT_TRUE(eps[1]->tls->context->verify());
  EXPECT_EQ(eps[1]->tls->host, "127.0.0.1");
  EXPECT_EQ(eps[1]->tls->checked_name(), "127.0.0.1");
  EXPECT_EQ(eps[0]->address, eps[1]->address);
  EXPECT_NE(eps[0]->pool_key, eps[1]->pool_key);
  EXPECT_EQ(eps[1]->pool_key.rfind(eps[0]->pool_key + "/tls-", 0), 0u) << eps[1]->pool_key;

  // The same settings give the same key (a reload keeps pooled connections); others do not.
  EXPECT_EQ(build(c)->endpoints()[1]->pool_key, eps[1]->pool_key);
  config::ServiceConfig named = c;
  named.tls.server_name = "billing.internal";
  auto n = build(named);
  EXPECT_NE(n->endpoints()[1]->pool_key, eps[1]->pool_key);
  EXPECT_EQ(n->endpoints()[1]->tls->checked_name(), "billing.internal");
  config::ServiceConfig unverified = c;
  unverified.tls.verify = false;
  auto u = build(unverified);
  EXPECT_NE(u->endpoints()[1]->pool_key, eps[1]->pool_key);
  EXPECT_FALSE(u->endpoints()[1]->tls->context->verify());
}

TEST(Service, AnUnloadableTlsSettingIsAnError) {
  config::ServiceConfig c = make(config::Balance::RoundRobin, {1});
  c.instances[0].url = "https://127.0.0.1:4001";
  c.instances[0].tls = true;
  c.tls.ca = "/nonexistent/ca.pem";
  auto s = Service::build(c);
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().context.find("service \"svc\": tls: cannot load ca /nonexistent/ca.pem"), std::string::npos)
      << s.error().context;
  // A service without https instances needs no context, whatever its tls says.
  c.instances[0].url = "http://127.0.0.1:4001";
  c.instances[0].tls = false;
  EXPECT_TRUE(Service::build(c).has_value());
}

}  // namespace
}  // namespace gh::upstream
