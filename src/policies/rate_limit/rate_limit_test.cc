#include "policies/rate_limit/rate_limit.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "core/check.h"
#include "policies/rate_limit/memory_store.h"
#include "proxy/worker.h"

namespace gh::policies {
namespace {

using namespace std::chrono_literals;

// A store that is always down, for on_store_error.
class FailingStore final : public RateLimitStore {
 public:
  std::string_view kind() const noexcept override { return "redis"; }
  boost::asio::awaitable<Result<Decision>> hit(proxy::Worker&, std::string, Rule) override {
    co_return Error::upstream(ErrorCode::StoreUnavailable, "connection refused");
  }
};

// io_context + FakeClock + one worker + a memory store on that clock.
struct Harness {
  std::shared_ptr<core::FakeClock> clock = std::make_shared<core::FakeClock>();
  std::shared_ptr<MemoryStore> store;
  proxy::GatewayShared shared;
  proxy::Worker worker{0, shared, nullptr};
  core::Metrics metrics{1};  // the policies' counters; the worker's id is 0
  boost::asio::io_context io;
  std::vector<std::unique_ptr<config::RouteConfig>> route_configs;
  std::vector<std::unique_ptr<proxy::CompiledRoute>> routes;

  Harness() {
    MemoryStore::Options o;
    o.clock = clock.get();
    store = std::make_shared<MemoryStore>(o);
  }

  std::shared_ptr<RateLimitPolicy> policy(const std::string& name, const std::string& yaml,
                                          std::shared_ptr<RateLimitStore> s = nullptr) {
    config::PolicyConfig e;
    e.name = name;
    e.type = "rate_limit";
    e.path = "policies." + name;
    e.options = YAML::Load(yaml);
    config::Diagnostics diag("t.yaml");
    RateLimitConfig cfg = parse_rate_limit(e, diag);
    EXPECT_TRUE(diag.empty()) << (diag.empty() ? "" : diag.list()[0].message);
    return std::make_shared<RateLimitPolicy>(name, cfg, s ? s : store, metrics);
  }

  const proxy::CompiledRoute* route(const std::string& name) {
    auto rc = std::make_unique<config::RouteConfig>();
    rc->name = name;
    auto cr = std::make_unique<proxy::CompiledRoute>();
    cr->config = rc.get();
    route_configs.push_back(std::move(rc));
    routes.push_back(std::move(cr));
    return routes.back().get();
  }

  // As the exchange does: the decision at once when the policy can take it, else awaited.
  proxy::Verdict run(proxy::Policy& p, proxy::RequestContext& ctx) {
    if (auto now = p.decide_now(ctx)) return std::move(*now);
    return run_async(p, ctx);
  }
  proxy::Verdict run_async(proxy::Policy& p, proxy::RequestContext& ctx) {
    std::optional<proxy::Verdict> out;
    boost::asio::co_spawn(io, p.on_request(ctx), [&](std::exception_ptr e, proxy::Verdict v) {
      if (e) std::rethrow_exception(e);
      out = std::move(v);
    });
    io.restart();
    io.run();
    GH_CHECK(out.has_value());
    return std::move(*out);
  }
};

// One request: its head, its context, and helpers to run a chain over it.
struct Request {
  http::RequestHead head;
  std::unique_ptr<proxy::RequestContext> ctx;
  Request(Harness& h, std::string ip, const proxy::CompiledRoute* route = nullptr,
          std::vector<std::pair<std::string, std::string>> headers = {})
      : header_store(std::move(headers)) {
    head.method = "GET";
    head.path = "/api/products";
    for (const auto& [n, v] : header_store) head.fields.add(n, v);
    ctx = std::make_unique<proxy::RequestContext>(h.worker, nullptr, head);
    ctx->client_ip_ = std::move(ip);
    ctx->set_route(route);
  }
  std::vector<std::pair<std::string, std::string>> header_store;
};

bool continues(const proxy::Verdict& v) { return std::holds_alternative<proxy::Continue>(v); }
const proxy::LocalReply& reply(const proxy::Verdict& v) { return std::get<proxy::LocalReply>(v); }
std::string header(const proxy::LocalReply& r, std::string_view name) {
  for (const auto& [n, v] : r.headers)
    if (n == name) return v;
  return "";
}

// Runs `chain` in order as the exchange does, stopping at the first local reply, then every
// on_response in reverse order. Returns the verdict and fills `head`.
proxy::Verdict run_chain(Harness& h, const std::vector<std::shared_ptr<RateLimitPolicy>>& chain, Request& req,
                         http::ResponseHead& head) {
  proxy::Verdict v = proxy::Continue{};
  for (const auto& p : chain) {
    v = h.run(*p, *req.ctx);
    if (!continues(v)) break;
  }
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) (*it)->on_response(*req.ctx, head);
  return v;
}

const char* kPerIp = "{type: rate_limit, key: client_ip, limit: 100, window: 15m}";
const char* kUsersPerIp = "{type: rate_limit, key: client_ip, limit: 50, window: 15m}";

TEST(RateLimitPolicy, SeedLimitRefusesThe101stRequestFromOneIp) {
  Harness h;
  auto per_ip = h.policy("per-ip", kPerIp);
  for (int i = 1; i <= 100; ++i) {
    Request r(h, "203.0.113.7");
    http::ResponseHead head;
    ASSERT_TRUE(continues(run_chain(h, {per_ip}, r, head))) << i;
    EXPECT_EQ(head.fields.get("RateLimit-Limit"), "100");
    EXPECT_EQ(head.fields.get("RateLimit-Remaining"), std::to_string(100 - i));
    EXPECT_EQ(head.fields.get("RateLimit-Reset"), "900");
    EXPECT_EQ(head.fields.get("RateLimit-Policy"), "100;w=900");
  }
  h.clock->advance(5min);
  Request r(h, "203.0.113.7");
  http::ResponseHead head;
  proxy::Verdict v = run_chain(h, {per_ip}, r, head);
  ASSERT_FALSE(continues(v));
  EXPECT_EQ(reply(v).status, 429);
  EXPECT_EQ(reply(v).reason, "rate_limited");
  EXPECT_EQ(reply(v).message, "Too many requests");
  EXPECT_EQ(header(reply(v), "Retry-After"), "600");
  EXPECT_EQ(head.fields.get("RateLimit-Limit"), "100");
  EXPECT_EQ(head.fields.get("RateLimit-Remaining"), "0");
  EXPECT_EQ(head.fields.get("RateLimit-Reset"), "600");
  EXPECT_EQ(head.fields.get("RateLimit-Policy"), "100;w=900");
  EXPECT_EQ(per_ip->rejected(), 1u);
  // Another IP has its own budget.
  Request other(h, "198.51.100.1");
  EXPECT_TRUE(continues(h.run(*per_ip, *other.ctx)));
  EXPECT_EQ(other.ctx->rate_limit->remaining, 99u);
  // When the window is over the IP is admitted again with a full budget.
  h.clock->advance(10min);
  Request again(h, "203.0.113.7");
  EXPECT_TRUE(continues(h.run(*per_ip, *again.ctx)));
  EXPECT_EQ(again.ctx->rate_limit->remaining, 99u);
}

TEST(RateLimitPolicy, SeedUsersRouteMeetsBothLimitsAndReportsTheStricter) {
  Harness h;
  auto per_ip = h.policy("per-ip", kPerIp);
  auto users = h.policy("users-per-ip", kUsersPerIp);
  for (int i = 1; i <= 50; ++i) {
    Request r(h, "203.0.113.7");
    http::ResponseHead head;
    ASSERT_TRUE(continues(run_chain(h, {per_ip, users}, r, head)));
    EXPECT_EQ(head.fields.get("RateLimit-Limit"), "50");
    EXPECT_EQ(head.fields.get("RateLimit-Remaining"), std::to_string(50 - i));
    EXPECT_EQ(head.fields.get("RateLimit-Policy"), "50;w=900");
    EXPECT_EQ(head.fields.count("RateLimit-Limit"), 1u);
  }
  Request r(h, "203.0.113.7");
  http::ResponseHead head;
  proxy::Verdict v = run_chain(h, {per_ip, users}, r, head);
  ASSERT_FALSE(continues(v));
  EXPECT_EQ(reply(v).status, 429);
  EXPECT_EQ(head.fields.get("RateLimit-Limit"), "50");
  EXPECT_EQ(head.fields.get("RateLimit-Remaining"), "0");
  EXPECT_EQ(users->rejected(), 1u);
  EXPECT_EQ(per_ip->rejected(), 0u);
  // per-ip counted all 51 requests: 49 left for the other routes.
  Request products(h, "203.0.113.7");
  ASSERT_TRUE(continues(h.run(*per_ip, *products.ctx)));
  EXPECT_EQ(products.ctx->rate_limit->remaining, 48u);
}

TEST(RateLimitPolicy, MostRestrictiveTieGoesToTheLongerReset) {
  Harness h;
  auto a = h.policy("a", "{type: rate_limit, limit: 2, window: 1m}");
  auto b = h.policy("b", "{type: rate_limit, limit: 2, window: 1h}");
  Request r(h, "10.0.0.1");
  http::ResponseHead head;
  ASSERT_TRUE(continues(run_chain(h, {a, b}, r, head)));
  EXPECT_EQ(head.fields.get("RateLimit-Remaining"), "1");
  EXPECT_EQ(head.fields.get("RateLimit-Reset"), "3600");
  EXPECT_EQ(head.fields.get("RateLimit-Policy"), "2;w=3600");
}

TEST(RateLimitPolicy, TwoPoliciesNeverShareABudget) {
  Harness h;
  auto one = h.policy("one", "{type: rate_limit, limit: 1, window: 1m}");
  auto two = h.policy("two", "{type: rate_limit, limit: 1, window: 1m}");
  Request r1(h, "10.0.0.1"), r2(h, "10.0.0.1");
  EXPECT_TRUE(continues(h.run(*one, *r1.ctx)));
  EXPECT_TRUE(continues(h.run(*two, *r2.ctx)));
  Request r3(h, "10.0.0.1");
  EXPECT_FALSE(continues(h.run(*one, *r3.ctx)));
}

TEST(RateLimitPolicy, RoutesShareAPolicyBudgetUnlessTheKeyIncludesRoute) {
  Harness h;
  auto shared = h.policy("shared", "{type: rate_limit, key: client_ip, limit: 1, window: 1m}");
  auto per_route = h.policy("per-route", "{type: rate_limit, key: [client_ip, route], limit: 1, window: 1m}");
  const auto* users = h.route("/api/users");
  const auto* orders = h.route("/api/orders");
  {
    Request a(h, "10.0.0.1", users), b(h, "10.0.0.1", orders);
    EXPECT_TRUE(continues(h.run(*shared, *a.ctx)));
    EXPECT_FALSE(continues(h.run(*shared, *b.ctx)));  // the same budget on another route
  }
  {
    Request a(h, "10.0.0.1", users), b(h, "10.0.0.1", orders), c(h, "10.0.0.1", users);
    EXPECT_TRUE(continues(h.run(*per_route, *a.ctx)));
    EXPECT_TRUE(continues(h.run(*per_route, *b.ctx)));
    EXPECT_FALSE(continues(h.run(*per_route, *c.ctx)));
  }
}

TEST(RateLimitPolicy, MissingHeaderMeansTheLimitDoesNotApply) {
  Harness h;
  auto p = h.policy("per-key", "{type: rate_limit, key: \"header:X-Api-Key\", limit: 1, window: 1m}");
  for (int i = 0; i < 3; ++i) {
    Request r(h, "10.0.0.1");
    http::ResponseHead head;
    EXPECT_TRUE(continues(run_chain(h, {p}, r, head)));
    EXPECT_FALSE(r.ctx->rate_limit.has_value());
    EXPECT_FALSE(head.fields.has("RateLimit-Limit"));
  }
  EXPECT_EQ(h.store->size(), 0u);
  Request k1(h, "10.0.0.1", nullptr, {{"x-api-key", "abc"}});
  Request k2(h, "10.0.0.2", nullptr, {{"X-Api-Key", "abc"}});
  Request k3(h, "10.0.0.2", nullptr, {{"X-Api-Key", "def"}});
  EXPECT_TRUE(continues(h.run(*p, *k1.ctx)));
  EXPECT_FALSE(continues(h.run(*p, *k2.ctx)));  // same key value, another IP: same budget
  EXPECT_TRUE(continues(h.run(*p, *k3.ctx)));
}

TEST(RateLimitPolicy, ClaimKeyNeedsAVerifiedClaim) {
  Harness h;
  auto p = h.policy("per-user", "{type: rate_limit, key: \"claim:sub\", limit: 1, window: 1m}");
  Request anon(h, "10.0.0.1");
  EXPECT_TRUE(continues(h.run(*p, *anon.ctx)));
  EXPECT_FALSE(anon.ctx->rate_limit.has_value());
  auto alice = std::make_shared<proxy::Principal>();
  alice->subject = "alice";
  alice->claims.push_back({"sub", "alice", true, {}});
  Request a1(h, "10.0.0.1"), a2(h, "10.0.0.9");
  a1.ctx->principal = alice;
  a2.ctx->principal = alice;
  EXPECT_TRUE(continues(h.run(*p, *a1.ctx)));
  EXPECT_FALSE(continues(h.run(*p, *a2.ctx)));
}

TEST(RateLimitPolicy, GlobalKeyIsOneBudgetForEveryone) {
  Harness h;
  auto p = h.policy("all", "{type: rate_limit, key: global, limit: 2, window: 1m}");
  Request a(h, "10.0.0.1"), b(h, "10.0.0.2"), c(h, "10.0.0.3");
  EXPECT_TRUE(continues(h.run(*p, *a.ctx)));
  EXPECT_TRUE(continues(h.run(*p, *b.ctx)));
  EXPECT_FALSE(continues(h.run(*p, *c.ctx)));
}

TEST(RateLimitPolicy, KeyPartsCannotBeConfusedWithEachOther) {
  Harness h;
  auto p = h.policy("combo", "{type: rate_limit, key: [\"header:A\", \"header:B\"], limit: 1, window: 1m}");
  Request x(h, "1.1.1.1", nullptr, {{"A", "x:1"}, {"B", "y"}});
  Request y(h, "1.1.1.1", nullptr, {{"A", "x"}, {"B", "1:y"}});
  EXPECT_NE(p->key_for(*x.ctx), p->key_for(*y.ctx));
  EXPECT_TRUE(continues(h.run(*p, *x.ctx)));
  EXPECT_TRUE(continues(h.run(*p, *y.ctx)));
}

TEST(RateLimitPolicy, CustomMessageAndEveryAlgorithmRefuses) {
  for (const char* algo : {"fixed_window", "sliding_window", "token_bucket"}) {
    Harness h;
    auto p = h.policy("p", std::string("{type: rate_limit, limit: 1, window: 30s, message: Slow down, algorithm: ") +
                               algo + "}");
    Request a(h, "10.0.0.1"), b(h, "10.0.0.1");
    EXPECT_TRUE(continues(h.run(*p, *a.ctx))) << algo;
    proxy::Verdict v = h.run(*p, *b.ctx);
    ASSERT_FALSE(continues(v)) << algo;
    EXPECT_EQ(reply(v).message, "Slow down");
    // With a limit of 1 the sliding counter waits for the previous window to decay fully.
    EXPECT_EQ(header(reply(v), "Retry-After"), std::string(algo) == "sliding_window" ? "60" : "30") << algo;
  }
}

TEST(RateLimitPolicy, StoreErrorAllowOrDeny) {
  Harness h;
  auto down = std::make_shared<FailingStore>();
  auto allow = h.policy("allow", "{type: rate_limit, limit: 1, window: 1m}", down);
  auto deny = h.policy("deny", "{type: rate_limit, limit: 1, window: 1m, on_store_error: deny}", down);
  Request a(h, "10.0.0.1"), b(h, "10.0.0.1");
  EXPECT_TRUE(continues(h.run(*allow, *a.ctx)));
  EXPECT_FALSE(a.ctx->rate_limit.has_value());
  proxy::Verdict v = h.run(*deny, *b.ctx);
  ASSERT_FALSE(continues(v));
  EXPECT_EQ(reply(v).status, 503);
  EXPECT_EQ(reply(v).reason, "rate_limit_store_error");
  EXPECT_EQ(reply(v).message, "Rate limit store unavailable");
  EXPECT_EQ(allow->store_errors(), 1u);
  EXPECT_EQ(deny->store_errors(), 1u);
  // They are the registry's series, by policy name, as a scrape reports them.
  EXPECT_EQ(h.metrics.counter("gatehouse_rate_limit_store_errors_total", {{"policy", "deny"}}).value(), 1u);
  EXPECT_EQ(h.metrics.counter("gatehouse_rate_limit_rejections_total", {{"policy", "deny"}}).value(), 0u);
}

// A reload builds the policy again: the counts of its name go on from where they were.
TEST(RateLimitPolicy, CountsSurviveARebuildOfTheSameName) {
  Harness h;
  auto first = h.policy("per-ip", "{type: rate_limit, key: client_ip, limit: 1, window: 1m}");
  Request a(h, "10.0.0.1"), b(h, "10.0.0.1");
  EXPECT_TRUE(continues(h.run(*first, *a.ctx)));
  EXPECT_FALSE(continues(h.run(*first, *b.ctx)));
  EXPECT_EQ(first->rejected(), 1u);
  auto second = h.policy("per-ip", "{type: rate_limit, key: client_ip, limit: 1, window: 1m}");
  Request c(h, "10.0.0.1");
  EXPECT_FALSE(continues(h.run(*second, *c.ctx)));  // the memory store kept the budget too
  EXPECT_EQ(second->rejected(), 2u);
  EXPECT_EQ(h.metrics.counter("gatehouse_rate_limit_rejections_total", {{"policy", "per-ip"}}).value(), 2u);
}

// With the memory store the decision is taken at once; with a store that waits on I/O it is
// left to on_request. Both paths decide alike.
TEST(RateLimitPolicy, MemoryStoreDecidesAtOnceOthersWait) {
  Harness h;
  auto at_once = h.policy("at-once", "{type: rate_limit, limit: 2, window: 1m}");
  auto awaited = h.policy("awaited", "{type: rate_limit, limit: 2, window: 1m}");
  auto down = h.policy("down", "{type: rate_limit, limit: 2, window: 1m}", std::make_shared<FailingStore>());
  Request r(h, "10.0.0.9");
  EXPECT_FALSE(down->decide_now(*r.ctx).has_value());
  EXPECT_EQ(down->store_errors(), 0u);  // nothing was counted by asking
  for (int i = 1; i <= 3; ++i) {
    Request a(h, "10.0.0.9"), b(h, "10.0.0.9");
    std::optional<proxy::Verdict> now = at_once->decide_now(*a.ctx);
    ASSERT_TRUE(now.has_value());
    proxy::Verdict later = h.run_async(*awaited, *b.ctx);
    EXPECT_EQ(continues(*now), i <= 2) << i;
    EXPECT_EQ(continues(later), i <= 2) << i;
    EXPECT_EQ(a.ctx->rate_limit->remaining, b.ctx->rate_limit->remaining) << i;
  }
}

TEST(RateLimitPolicy, OnResponseWithoutStateAddsNothingAndReplacesTheServiceHeaders) {
  Harness h;
  auto p = h.policy("p", "{type: rate_limit, limit: 5, window: 1m}");
  Request before(h, "10.0.0.1");  // an earlier policy answered: this one never ran
  http::ResponseHead empty;
  p->on_response(*before.ctx, empty);
  EXPECT_TRUE(empty.fields.empty());
  Request r(h, "10.0.0.1");
  ASSERT_TRUE(continues(h.run(*p, *r.ctx)));
  http::ResponseHead head;
  head.fields.add("RateLimit-Limit", "9999");
  head.fields.add("ratelimit-REMAINING", "77");
  p->on_response(*r.ctx, head);
  p->on_response(*r.ctx, head);  // idempotent
  EXPECT_EQ(head.fields.count("RateLimit-Limit"), 1u);
  EXPECT_EQ(head.fields.get("RateLimit-Limit"), "5");
  EXPECT_EQ(head.fields.count("RateLimit-Remaining"), 1u);
  EXPECT_EQ(head.fields.get("RateLimit-Remaining"), "4");
  EXPECT_EQ(head.fields.size(), 4u);
  // A head without them gets the four appended, once however often the policy runs.
  http::ResponseHead plain;
  plain.fields.add("Content-Type", "text/plain");
  p->on_response(*r.ctx, plain);
  p->on_response(*r.ctx, plain);
  EXPECT_EQ(plain.fields.size(), 5u);
  EXPECT_EQ(plain.fields.get("RateLimit-Reset"), "60");
  EXPECT_EQ(plain.fields.get("RateLimit-Policy"), "5;w=60");
}

TEST(RateLimitPolicy, ExplainDescribesWithoutConsumingBudget) {
  Harness h;
  auto p = h.policy("per-ip", kPerIp);
  EXPECT_EQ(explain(*p), "100 per 15m by client_ip (fixed_window, memory)");
  EXPECT_EQ(h.store->size(), 0u);
  auto combo = h.policy("combo",
                        "{type: rate_limit, key: [\"header:X-Api-Key\", route], limit: 10, window: 1h, "
                        "algorithm: token_bucket}");
  http::Fields none;
  EXPECT_EQ(explain(*combo, &none),
            "10 per 1h by header:X-Api-Key + route (token_bucket, memory); does not apply: no X-Api-Key header");
  http::Fields with;
  with.add("X-Api-Key", "k");
  EXPECT_EQ(explain(*combo, &with), "10 per 1h by header:X-Api-Key + route (token_bucket, memory)");
}

}  // namespace
}  // namespace gh::policies
