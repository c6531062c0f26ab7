// RedisStore against a real redis-server that each test starts on a free loopback port and kills
// at the end (they fail when redis-server is not installed), and against a server that never
// answers. The client's own tests are in clients/redis/redis_client_test.cc.
#include "policies/rate_limit/redis_store.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <optional>
#include <thread>

#include "clients/redis/redis_test_server.h"
#include "core/check.h"
#include "policies/rate_limit/rate_limit.h"
#include "proxy/request_context.h"
#include "proxy/worker.h"

namespace gh::policies {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace redis = clients::redis;
using redis::test::call;
using redis::test::free_port;
using redis::test::RedisServer;
using redis::test::run_until;

std::shared_ptr<RedisStore> make_store(const std::string& url, std::chrono::milliseconds timeout = 100ms) {
  RedisStore::Options o;
  o.url = url;
  o.timeout = timeout;
  auto s = RedisStore::create(o);
  GH_CHECK(s.has_value());
  return *s;
}

// Runs one hit to completion on `io`.
Result<Decision> hit(asio::io_context& io, const RedisStore& store, const std::string& key, const Rule& rule) {
  std::optional<Result<Decision>> out;
  asio::co_spawn(io, store.hit_on(io, key, rule), [&](std::exception_ptr e, Result<Decision> d) {
    if (e) std::rethrow_exception(e);
    out = std::move(d);
  });
  run_until(io, [&] { return out.has_value(); });
  return std::move(*out);
}

Rule rule(std::uint64_t limit, std::chrono::nanoseconds window, Algorithm a) {
  Rule r;
  r.limit = limit;
  r.window = window;
  r.algorithm = a;
  return r;
}

TEST(RedisStore, FixedWindow) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  auto store = make_store(server.url());
  asio::io_context io;
  const Rule r = rule(3, 1min, Algorithm::FixedWindow);
  for (std::uint64_t i = 0; i < 3; ++i) {
    auto d = hit(io, *store, "k", r);
    ASSERT_TRUE(d) << d.error().context;
    EXPECT_TRUE(d->allowed) << i;
    EXPECT_EQ(d->remaining, 2 - i);
    EXPECT_EQ(d->limit, 3u);
    EXPECT_EQ(d->window_seconds, 60u);
    EXPECT_GE(d->reset_seconds, 59u);
    EXPECT_LE(d->reset_seconds, 60u);
  }
  auto refused = hit(io, *store, "k", r);
  ASSERT_TRUE(refused);
  EXPECT_FALSE(refused->allowed);
  EXPECT_EQ(refused->remaining, 0u);
  EXPECT_GE(refused->retry_after_seconds, 59u);
  EXPECT_LE(refused->retry_after_seconds, 60u);
  // Another key has its own budget.
  auto other = hit(io, *store, "other", r);
  ASSERT_TRUE(other);
  EXPECT_TRUE(other->allowed);

  // The window's edge, on the server's clock: full, then a fresh window once it has passed.
  const Rule short_rule = rule(2, 300ms, Algorithm::FixedWindow);
  EXPECT_TRUE(hit(io, *store, "edge", short_rule)->allowed);
  EXPECT_TRUE(hit(io, *store, "edge", short_rule)->allowed);
  EXPECT_FALSE(hit(io, *store, "edge", short_rule)->allowed);
  std::this_thread::sleep_for(350ms);
  auto fresh = hit(io, *store, "edge", short_rule);
  EXPECT_TRUE(fresh->allowed);
  EXPECT_EQ(fresh->remaining, 1u);
}

// The decision fixed_window's script leaves to the gateway: {count, ms left} → Decision.
TEST(RedisStore, FixedWindowDecision) {
  const Rule r = rule(3, 90s, Algorithm::FixedWindow);
  Decision first = fixed_window_decision(r, 1, 90'000ms);
  EXPECT_TRUE(first.allowed);
  EXPECT_EQ(first.remaining, 2u);
  EXPECT_EQ(first.reset_seconds, 90u);
  EXPECT_EQ(first.retry_after_seconds, 0u);
  EXPECT_EQ(first.window_seconds, 90u);
  Decision last = fixed_window_decision(r, 3, 1'001ms);
  EXPECT_TRUE(last.allowed);
  EXPECT_EQ(last.remaining, 0u);
  EXPECT_EQ(last.reset_seconds, 2u);  // rounded up
  Decision over = fixed_window_decision(r, 4, 999ms);
  EXPECT_FALSE(over.allowed);
  EXPECT_EQ(over.remaining, 0u);
  EXPECT_EQ(over.reset_seconds, 1u);
  EXPECT_EQ(over.retry_after_seconds, 1u);
  Decision far_over = fixed_window_decision(r, 1'000'000, 0ms);
  EXPECT_FALSE(far_over.allowed);
  EXPECT_EQ(far_over.remaining, 0u);
}

// A counter found without an expiry (written by hand, say) is given the window's, so it can
// never lock a key out for good; a key of another type is a store error, not a crash.
TEST(RedisStore, FixedWindowRepairsAKeyWithoutExpiry) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  auto store = make_store(server.url());
  asio::io_context io;
  auto run = [&](redis::Command cmd) { return call(io, store->client(), std::move(cmd)); };
  ASSERT_TRUE(run({"SET", "gatehouse:rl:fw:stuck", "7"}));
  auto d = hit(io, *store, "stuck", rule(3, 2s, Algorithm::FixedWindow));
  ASSERT_TRUE(d) << d.error().context;
  EXPECT_FALSE(d->allowed);
  EXPECT_EQ(d->reset_seconds, 2u);
  auto ttl = run({"PTTL", "gatehouse:rl:fw:stuck"});
  ASSERT_TRUE(ttl);
  EXPECT_GT(ttl->integer, 1'000);
  EXPECT_LE(ttl->integer, 2'000);

  ASSERT_TRUE(run({"HSET", "gatehouse:rl:fw:hash", "a", "1"}));
  auto wrong = hit(io, *store, "hash", rule(3, 2s, Algorithm::FixedWindow));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ErrorCode::StoreUnavailable);
  EXPECT_NE(wrong.error().context.find("WRONGTYPE"), std::string::npos) << wrong.error().context;
  // The connection is still good.
  EXPECT_TRUE(hit(io, *store, "fine", rule(3, 2s, Algorithm::FixedWindow))->allowed);
}

TEST(RedisStore, RefusedHitsConsumeNothing) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  auto store = make_store(server.url());
  asio::io_context io;
  const Rule r = rule(2, 300ms, Algorithm::FixedWindow);
  EXPECT_TRUE(hit(io, *store, "k", r)->allowed);
  EXPECT_TRUE(hit(io, *store, "k", r)->allowed);
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(hit(io, *store, "k", r)->allowed);
  std::this_thread::sleep_for(350ms);
  EXPECT_TRUE(hit(io, *store, "k", r)->allowed);
  EXPECT_TRUE(hit(io, *store, "k", r)->allowed);
}

TEST(RedisStore, SlidingWindow) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  auto store = make_store(server.url());
  asio::io_context io;
  const Rule r = rule(2, 400ms, Algorithm::SlidingWindow);
  const auto t0 = Clock::now();
  EXPECT_TRUE(hit(io, *store, "k", r)->allowed);
  auto second = hit(io, *store, "k", r);
  EXPECT_TRUE(second->allowed);
  EXPECT_EQ(second->remaining, 0u);
  auto third = hit(io, *store, "k", r);
  EXPECT_FALSE(third->allowed);
  EXPECT_GE(third->retry_after_seconds, 1u);
  // Early in the next window the previous window's 2 still weigh more than 1.
  std::this_thread::sleep_until(t0 + 450ms);
  EXPECT_FALSE(hit(io, *store, "k", r)->allowed);
  // Past its middle they weigh less than 1: one more fits.
  std::this_thread::sleep_until(t0 + 720ms);
  EXPECT_TRUE(hit(io, *store, "k", r)->allowed);
  EXPECT_FALSE(hit(io, *store, "k", r)->allowed);
}

TEST(RedisStore, TokenBucket) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  auto store = make_store(server.url());
  asio::io_context io;
  const Rule r = rule(2, 400ms, Algorithm::TokenBucket);  // a token every 200ms
  auto first = hit(io, *store, "k", r);
  EXPECT_TRUE(first->allowed);
  EXPECT_EQ(first->remaining, 1u);
  EXPECT_EQ(first->reset_seconds, 1u);
  EXPECT_TRUE(hit(io, *store, "k", r)->allowed);
  auto refused = hit(io, *store, "k", r);
  EXPECT_FALSE(refused->allowed);
  EXPECT_EQ(refused->retry_after_seconds, 1u);
  std::this_thread::sleep_for(230ms);
  EXPECT_TRUE(hit(io, *store, "k", r)->allowed);
  EXPECT_FALSE(hit(io, *store, "k", r)->allowed);
  // A long window: bursts of `limit`, exact.
  const Rule big = rule(5, 1h, Algorithm::TokenBucket);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(hit(io, *store, "big", big)->allowed) << i;
  auto over = hit(io, *store, "big", big);
  EXPECT_FALSE(over->allowed);
  EXPECT_GE(over->retry_after_seconds, 719u);  // one token every 12 minutes
  EXPECT_LE(over->retry_after_seconds, 720u);
}

TEST(RedisStore, KeysAreNamespacedAndExpire) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  auto store = make_store(server.url());
  asio::io_context io;
  ASSERT_TRUE(hit(io, *store, "p5:per-ip", rule(3, 1min, Algorithm::FixedWindow)));
  auto ttl = call(io, store->client(), {"PTTL", "gatehouse:rl:fw:p5:per-ip"});
  ASSERT_TRUE(ttl);
  EXPECT_GT(ttl->integer, 59'000);
  EXPECT_LE(ttl->integer, 60'000);
}

TEST(RedisStore, ScriptFlushFallsBackToEval) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  auto store = make_store(server.url());
  asio::io_context io;
  for (Algorithm a : {Algorithm::FixedWindow, Algorithm::SlidingWindow, Algorithm::TokenBucket}) {
    const Rule r = rule(3, 1min, a);
    ASSERT_TRUE(hit(io, *store, "k", r)->allowed) << to_string(a);
    ASSERT_TRUE(call(io, store->client(), {"SCRIPT", "FLUSH"}));
    auto d = hit(io, *store, "k", r);  // EVALSHA → NOSCRIPT → EVAL
    ASSERT_TRUE(d) << d.error().context;
    EXPECT_TRUE(d->allowed) << to_string(a);
    EXPECT_EQ(d->remaining, 1u) << to_string(a);
  }
}

// Two gateways: two stores (two clients, two connections), each on its own worker thread,
// hammering one key at once. Between them they admit exactly the limit.
TEST(RedisStore, TwoInstancesShareOneBudgetExactly) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  constexpr int kPerInstance = 150;
  constexpr std::uint64_t kLimit = 100;
  for (Algorithm a : {Algorithm::FixedWindow, Algorithm::SlidingWindow, Algorithm::TokenBucket}) {
    std::atomic<int> admitted{0}, refused{0}, failed{0};
    auto instance = [&](unsigned id) {
      int done = 0;
      proxy::GatewayShared shared;
      proxy::Worker worker{id, shared, nullptr};
      auto store = make_store(server.url(), 1000ms);
      const Rule r = rule(kLimit, 1min, a);
      for (int i = 0; i < kPerInstance; ++i) {
        asio::co_spawn(worker.io(), store->hit(worker, "shared", r), [&](std::exception_ptr e, Result<Decision> d) {
          if (e || !d) ++failed;
          else if (d->allowed) ++admitted;
          else ++refused;
          ++done;
        });
      }
      run_until(worker.io(), [&] { return done == kPerInstance; });
    };
    std::thread one(instance, 0), two(instance, 1);
    one.join();
    two.join();
    EXPECT_EQ(failed.load(), 0) << to_string(a);
    EXPECT_EQ(admitted.load(), static_cast<int>(kLimit)) << to_string(a);
    EXPECT_EQ(refused.load(), 2 * kPerInstance - static_cast<int>(kLimit)) << to_string(a);
  }
}

// A server that accepts and never answers: every call fails at its deadline, not later.
TEST(RedisStore, SilentServerFailsWithinTheDeadline) {
  asio::io_context listen_io;
  tcp::acceptor acceptor(listen_io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::string url = "redis://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  auto store = make_store(url, 80ms);
  asio::io_context io;
  const auto t0 = Clock::now();
  auto d = hit(io, *store, "k", rule(1, 1s, Algorithm::FixedWindow));
  const auto elapsed = Clock::now() - t0;
  ASSERT_FALSE(d);
  EXPECT_GE(elapsed, 75ms);
  EXPECT_LT(elapsed, 300ms);
  // Backing off: the next call fails at once instead of waiting again.
  const auto t1 = Clock::now();
  auto again = hit(io, *store, "k", rule(1, 1s, Algorithm::FixedWindow));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::StoreUnavailable);
  EXPECT_LT(Clock::now() - t1, 50ms);
}

// Runs a policy's on_request to completion on `worker`'s loop.
proxy::Verdict run_policy(proxy::Worker& worker, proxy::Policy& p, proxy::RequestContext& ctx) {
  std::optional<proxy::Verdict> out;
  asio::co_spawn(worker.io(), p.on_request(ctx), [&](std::exception_ptr e, proxy::Verdict v) {
    if (e) std::rethrow_exception(e);
    out = std::move(v);
  });
  run_until(worker.io(), [&] { return out.has_value(); });
  GH_CHECK(out.has_value());
  return std::move(*out);
}

// `metrics`: where the policy counts (its worker's id must be 0).
std::shared_ptr<RateLimitPolicy> policy(core::Metrics& metrics, const std::string& name, const std::string& yaml,
                                        std::shared_ptr<RateLimitStore> store,
                                        const core::Clock& clock = core::Clock::real()) {
  config::PolicyConfig e;
  e.name = name;
  e.type = "rate_limit";
  e.path = "policies." + name;
  e.options = YAML::Load(yaml);
  config::Diagnostics diag("t.yaml");
  RateLimitConfig cfg = parse_rate_limit(e, diag, true);
  EXPECT_TRUE(diag.empty());
  return std::make_shared<RateLimitPolicy>(name, cfg, std::move(store), metrics, clock);
}

bool continues(const proxy::Verdict& v) { return std::holds_alternative<proxy::Continue>(v); }

// Redis dies mid-run: each decision fails within the deadline and on_store_error applies;
// Redis comes back on the same port: limiting resumes without restarting anything.
TEST(RedisStore, OutageThenRecovery) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  proxy::GatewayShared shared;
  proxy::Worker worker{0, shared, nullptr};
  auto store = make_store(server.url(), 100ms);
  core::Metrics metrics(1);
  auto allow = policy(metrics, "lenient", "{type: rate_limit, key: global, limit: 2, window: 1m, on_store_error: allow}", store);
  auto deny = policy(metrics, "strict", "{type: rate_limit, key: global, limit: 2, window: 1m, on_store_error: deny}", store);
  http::RequestHead head;
  head.method = "GET";
  head.path = "/";
  proxy::RequestContext ctx(worker, nullptr, head);
  ctx.client_ip_ = "192.0.2.1";

  EXPECT_TRUE(continues(run_policy(worker, *allow, ctx)));
  EXPECT_TRUE(continues(run_policy(worker, *allow, ctx)));
  EXPECT_FALSE(continues(run_policy(worker, *allow, ctx)));  // limited through Redis
  EXPECT_TRUE(continues(run_policy(worker, *deny, ctx)));

  server.stop();
  for (int i = 0; i < 5; ++i) {
    auto t0 = Clock::now();
    EXPECT_TRUE(continues(run_policy(worker, *allow, ctx))) << i;  // allow: admitted uncounted
    auto v = run_policy(worker, *deny, ctx);
    ASSERT_FALSE(continues(v)) << i;
    EXPECT_EQ(std::get<proxy::LocalReply>(v).status, 503);
    EXPECT_LT(Clock::now() - t0, 250ms) << i;  // both decisions, each bounded by 100ms
  }
  EXPECT_EQ(allow->store_errors(), 5u);
  EXPECT_EQ(deny->store_errors(), 5u);

  server.start();  // same port, empty data
  const auto until = Clock::now() + 5s;  // the backoff is at most 2s
  bool back = false;
  while (Clock::now() < until) {
    auto before = deny->store_errors();
    auto v = run_policy(worker, *deny, ctx);
    if (deny->store_errors() == before) {
      back = true;
      EXPECT_TRUE(continues(v));  // a fresh budget on the new server
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(back) << "limiting did not resume within 5s of Redis returning";
  EXPECT_TRUE(continues(run_policy(worker, *deny, ctx)));
  EXPECT_FALSE(continues(run_policy(worker, *deny, ctx)));  // counted again: limit 2 reached
}

// Decisions taken without the store: every one counted, at most one log line a second.
TEST(RedisStore, StoreErrorsAreCountedAndLoggedSparingly) {
  proxy::GatewayShared shared;
  proxy::Worker worker{0, shared, nullptr};
  auto store = make_store("redis://127.0.0.1:" + std::to_string(free_port()), 100ms);  // nobody listens
  core::FakeClock clock;
  core::Metrics metrics(1);
  auto p = policy(metrics, "down", "{type: rate_limit, key: global, limit: 5, window: 1m}", store, clock);
  http::RequestHead head;
  head.method = "GET";
  head.path = "/";
  proxy::RequestContext ctx(worker, nullptr, head);
  auto lines_in = [](const std::string& err) {
    std::size_t lines = 0;
    for (std::size_t at = 0; (at = err.find("rate_limit \"down\"", at)) != std::string::npos; ++at) ++lines;
    return lines;
  };
  testing::internal::CaptureStderr();
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(continues(run_policy(worker, *p, ctx)));  // allow by default
  clock.advance(999ms);
  EXPECT_TRUE(continues(run_policy(worker, *p, ctx)));
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(p->store_errors(), 21u);
  EXPECT_EQ(lines_in(err), 1u) << err;  // within one second: one line
  EXPECT_NE(err.find("allowed 1 request without counting"), std::string::npos) << err;
  // A second later the next decision logs again, for the 20 it stands for.
  testing::internal::CaptureStderr();
  clock.advance(1ms);
  EXPECT_TRUE(continues(run_policy(worker, *p, ctx)));
  err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(lines_in(err), 1u) << err;
  EXPECT_NE(err.find("allowed 21 requests without counting"), std::string::npos) << err;
}

}  // namespace
}  // namespace gh::policies
