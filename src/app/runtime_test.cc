// Runtime: what outlives a config generation is reused by the next build (Redis stores by URL,
// JWKS sources by URL and options, the memory store, metrics), and nothing is kept for a
// config that no longer names it.
#include "app/runtime.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include <filesystem>
#include <fstream>

#include "app/registry.h"
#include "app/snapshot_builder.h"
#include "policies/jwt/jwt.h"
#include "policies/rate_limit/rate_limit.h"
#include "proxy/request_context.h"
#include "proxy/worker.h"

namespace gh::app {
namespace {

using namespace std::chrono_literals;

// Loads `yaml` through the same path as `run` and `check`.
std::shared_ptr<const config::Config> load(const std::string& yaml) {
  const auto path = std::filesystem::path(::testing::TempDir()) / ("gh_runtime_test_" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(path) << yaml;
  auto r = load_config(path.string());
  std::filesystem::remove(path);
  for (const auto& e : r.errors) ADD_FAILURE() << e.to_string();
  return r.config ? std::make_shared<const config::Config>(std::move(*r.config)) : nullptr;
}

std::string config_text(const std::string& redis, const std::string& jwks, int limit) {
  return "redis: " + redis + R"(
services:
  user: {instances: ["http://127.0.0.1:9"]}
policies:
  auth: {type: jwt, jwks_url: ")" + jwks + R"(", issuer: "https://idp.example", audience: api}
  shared: {type: rate_limit, limit: 5, window: 1m}
  local: {type: rate_limit, limit: )" + std::to_string(limit) + R"(, window: 1m, store: memory}
routes:
  - path: /api
    service: user
    policies: [auth, shared, local]
)";
}

const proxy::Policy& policy(const proxy::Snapshot& s, std::string_view name) {
  for (const auto& p : s.routes.at(0).chain)
    if (p->name() == name) return *p;
  ADD_FAILURE() << "no policy " << name;
  std::abort();
}
const policies::JwksSource* jwks_of(const proxy::Snapshot& s) {
  return static_cast<const policies::JwtPolicy&>(policy(s, "auth")).jwks();
}
const policies::RateLimitStore* store_of(const proxy::Snapshot& s, std::string_view name) {
  return &static_cast<const policies::RateLimitPolicy&>(policy(s, name)).store();
}

// One request from `ip` through `name`'s decision, on worker 0.
bool admitted(const proxy::Snapshot& s, std::string_view name, const std::string& ip) {
  proxy::GatewayShared shared;
  proxy::Worker worker(0, shared, nullptr);
  http::RequestHead req;
  req.method = "GET";
  req.path = "/api/x";
  proxy::RequestContext ctx(worker, nullptr, req);
  ctx.client_ip_ = ip;
  auto v = const_cast<proxy::Policy&>(policy(s, name)).decide_now(ctx);
  EXPECT_TRUE(v.has_value());
  return v && std::holds_alternative<proxy::Continue>(*v);
}

TEST(Runtime, ASecondBuildReusesWhatOutlivesTheConfig) {
  boost::asio::io_context control;  // never run: nothing is fetched or connected
  core::FakeClock clock;
  Runtime runtime(control.get_executor(), 2, clock);
  const std::string redis = "redis://127.0.0.1:1";
  const std::string jwks = "http://127.0.0.1:9/jwks";

  auto first = build_snapshot(load(config_text(redis, jwks, 1)), nullptr, runtime);
  ASSERT_TRUE(first) << first.error().context;
  const proxy::Snapshot& a = **first;
  EXPECT_EQ(a.generation, 1u);
  EXPECT_EQ(store_of(a, "shared")->kind(), "redis");  // the top-level redis is the default store
  EXPECT_EQ(store_of(a, "shared"), runtime.redis_store(redis).get());
  EXPECT_EQ(store_of(a, "local"), runtime.memory_store().get());
  ASSERT_NE(jwks_of(a), nullptr);
  EXPECT_EQ(jwks_of(a)->fetches_started(), 0u);  // fetches run on the control loop, not here
  EXPECT_TRUE(admitted(a, "local", "203.0.113.7"));
  EXPECT_FALSE(admitted(a, "local", "203.0.113.7"));  // limit 1

  // A reload: new policy objects on the same stores and the same key source.
  auto second = build_snapshot(load(config_text(redis, jwks, 2)), &a, runtime);
  ASSERT_TRUE(second) << second.error().context;
  const proxy::Snapshot& b = **second;
  EXPECT_EQ(b.generation, 2u);
  EXPECT_NE(&policy(b, "auth"), &policy(a, "auth"));
  EXPECT_EQ(jwks_of(b), jwks_of(a));
  EXPECT_EQ(store_of(b, "shared"), store_of(a, "shared"));
  EXPECT_EQ(store_of(b, "local"), store_of(a, "local"));
  // The memory store kept the budget: one of the new limit of 2 is already spent.
  EXPECT_TRUE(admitted(b, "local", "203.0.113.7"));
  EXPECT_FALSE(admitted(b, "local", "203.0.113.7"));
  EXPECT_TRUE(admitted(b, "local", "198.51.100.1"));

  // Another URL: another store and another source.
  auto third = build_snapshot(load(config_text("redis://127.0.0.1:2", "http://127.0.0.1:9/other", 2)), &b, runtime);
  ASSERT_TRUE(third) << third.error().context;
  EXPECT_NE(store_of(**third, "shared"), store_of(b, "shared"));
  EXPECT_NE(jwks_of(**third), jwks_of(b));
  EXPECT_EQ(jwks_of(**third)->options().url, "http://127.0.0.1:9/other");
}

TEST(Runtime, JwksSourcesAreSharedByOptionsAndDropWithTheLastSnapshot) {
  boost::asio::io_context control;
  Runtime runtime(control.get_executor(), 1);
  policies::JwksOptions o;
  o.url = "http://127.0.0.1:9/jwks";
  auto s1 = runtime.jwks_source(o);
  EXPECT_EQ(runtime.jwks_source(o), s1);
  policies::JwksOptions faster = o;
  faster.refresh = 1min;
  EXPECT_NE(runtime.jwks_source(faster), s1);  // other options, other source
  // The runtime does not keep a source alive: it goes with the last policy that used it.
  std::weak_ptr<policies::JwksSource> gone = s1;
  s1.reset();
  EXPECT_TRUE(gone.expired());
  auto s2 = runtime.jwks_source(o);  // a config naming it again gets a new one
  EXPECT_EQ(s2->fetches_started(), 0u);
  // A malformed Redis URL makes no store (the loader refuses it before).
  EXPECT_EQ(runtime.redis_store("redis://"), nullptr);
  EXPECT_EQ(runtime.redis_store("redis://127.0.0.1:3"), runtime.redis_store("redis://127.0.0.1:3"));
}

TEST(Runtime, PolicyFactoryPicksTheStore) {
  boost::asio::io_context control;
  Runtime runtime(control.get_executor(), 1);
  auto entry = [](const std::string& name, const std::string& yaml) {
    config::PolicyConfig e;
    e.name = name;
    e.type = "rate_limit";
    e.path = "policies." + name;
    e.options = YAML::Load(yaml);
    config::Diagnostics diag("t.yaml");
    e.built = policy_catalog().supported.at("rate_limit")(e, diag);  // as the loader does
    EXPECT_TRUE(diag.empty());
    return e;
  };
  auto kind = [](const std::shared_ptr<proxy::Policy>& p) {
    return std::string(static_cast<const policies::RateLimitPolicy&>(*p).store().kind());
  };
  const std::string url = "redis://127.0.0.1:1";
  auto by_default = make_policy(entry("a", "{type: rate_limit, limit: 1, window: 1s}"), runtime, url);
  auto given = make_policy(entry("b", "{type: rate_limit, limit: 1, window: 1s, store: redis}"), runtime, url);
  auto memory = make_policy(entry("c", "{type: rate_limit, limit: 1, window: 1s, store: memory}"), runtime, url);
  auto no_redis = make_policy(entry("d", "{type: rate_limit, limit: 1, window: 1s}"), runtime);
  EXPECT_EQ(kind(by_default), "redis");
  EXPECT_EQ(kind(given), "redis");
  EXPECT_EQ(kind(memory), "memory");
  EXPECT_EQ(kind(no_redis), "memory");
  EXPECT_EQ(&static_cast<const policies::RateLimitPolicy&>(*by_default).store(), runtime.redis_store(url).get());
  EXPECT_EQ(&static_cast<const policies::RateLimitPolicy&>(*memory).store(), runtime.memory_store().get());
  EXPECT_EQ(policies::explain(static_cast<const policies::RateLimitPolicy&>(*given)),
            "1 per 1s by client_ip (fixed_window, redis)");
}

TEST(Runtime, MemoryStoreReadsTheRuntimeClock) {
  boost::asio::io_context control;
  core::FakeClock clock;
  Runtime runtime(control.get_executor(), 1, clock);
  const policies::Rule rule{1, std::chrono::seconds(10), policies::Algorithm::FixedWindow};
  EXPECT_TRUE(runtime.memory_store()->hit_now("k", rule).allowed);
  clock.advance(10s - 1ns);
  EXPECT_FALSE(runtime.memory_store()->hit_now("k", rule).allowed);
  clock.advance(1ns);
  EXPECT_TRUE(runtime.memory_store()->hit_now("k", rule).allowed);
}

TEST(Runtime, MetricsOutliveTheBuilds) {
  boost::asio::io_context control;
  Runtime runtime(control.get_executor(), 3);
  EXPECT_EQ(runtime.metrics().workers(), 3u);
  runtime.count_reload(true);
  runtime.count_reload(false);
  runtime.count_reload(true);
  EXPECT_EQ(runtime.metrics().counter("gatehouse_config_reloads_total", {{"result", "success"}}).value(), 2u);
  EXPECT_EQ(runtime.metrics().counter("gatehouse_config_reloads_total", {{"result", "failure"}}).value(), 1u);
  // Every family of SPEC §6 kept in the registry is described from the start.
  std::size_t described = 0;
  for (const auto& f : runtime.metrics().families()) described += f.help.empty() ? 0 : 1;
  EXPECT_EQ(described, 10u);
}

// `admin:` turns metrics on: each route gets its series, taken once per build; the same route
// names get the same series in the next generation. The listener labels are those of the first
// generation (listeners change only with a restart).
TEST(Runtime, SnapshotsRecordMetricsOnlyWithAdmin) {
  boost::asio::io_context control;
  Runtime runtime(control.get_executor(), 1);
  auto build = [&](const std::string& listen, bool admin, const proxy::Snapshot* previous) {
    auto loaded = config::load_string("listen: " + listen + R"(
services:
  user: {instances: ["http://127.0.0.1:9"]}
routes:
  - {name: users, path: /users, service: user}
  - {path: /other, service: user}
)",
                                      "t.yaml", policy_catalog());
    EXPECT_TRUE(loaded.config);
    if (admin) loaded.config->admin = config::AdminConfig{"127.0.0.1", 0, "t", {}};
    auto built = build_snapshot(std::make_shared<const config::Config>(std::move(*loaded.config)), previous, runtime);
    EXPECT_TRUE(built);
    return *built;
  };
  auto off = build("\"[::1]:8080\"", false, nullptr);
  EXPECT_EQ(off->metrics, nullptr);
  EXPECT_EQ(off->routes[0].metrics, nullptr);
  EXPECT_EQ(off->listeners, std::vector<std::string>{"[::1]:8080"});

  auto on = build("[\"127.0.0.1:3000\", \":3001\"]", true, nullptr);
  ASSERT_NE(on->metrics, nullptr);
  EXPECT_EQ(on->listeners, (std::vector<std::string>{"127.0.0.1:3000", ":3001"}));
  ASSERT_EQ(on->metrics->connections_open.size(), 2u);
  EXPECT_EQ(on->metrics->connections_open[1], &runtime.metrics().gauge("gatehouse_connections_open", {{"listener", ":3001"}}));
  EXPECT_EQ(on->routes[0].metrics, &on->metrics->routes[0]);
  EXPECT_EQ(on->routes[0].metrics->requests[1],
            &runtime.metrics().counter("gatehouse_requests_total", {{"route", "users"}, {"service", "user"}, {"code", "2xx"}}));
  EXPECT_EQ(on->routes[1].metrics->duration, &runtime.metrics().histogram("gatehouse_request_duration_seconds", {{"route", "/other"}}));
  EXPECT_EQ(on->metrics->unmatched.requests[3],
            &runtime.metrics().counter("gatehouse_requests_total", {{"route", ""}, {"service", ""}, {"code", "4xx"}}));

  auto next = build("\":4000\"", true, on.get());
  EXPECT_EQ(next->listeners, on->listeners);
  EXPECT_EQ(next->metrics->connections_open, on->metrics->connections_open);
  EXPECT_EQ(next->routes[0].metrics->requests, on->routes[0].metrics->requests);
  EXPECT_EQ(next->metrics->websocket_tunnels, on->metrics->websocket_tunnels);
}

}  // namespace
}  // namespace gh::app
