#include "policies/rate_limit/memory_store.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <thread>
#include <vector>

#include "proxy/worker.h"

namespace gh::policies {
namespace {

using namespace std::chrono_literals;

struct StoreFixture {
  std::shared_ptr<core::FakeClock> clock = std::make_shared<core::FakeClock>();
  std::shared_ptr<MemoryStore> store;
  explicit StoreFixture(std::size_t stripes = 64, std::size_t cap = 8192) {
    MemoryStore::Options o;
    o.stripes = stripes;
    o.max_entries_per_stripe = cap;
    o.clock = clock.get();
    store = std::make_shared<MemoryStore>(o);
  }
  Decision hit(const std::string& key, const Rule& rule) { return store->hit_now(key, rule); }
};

Rule rule(std::uint64_t limit, std::chrono::nanoseconds window, Algorithm a = Algorithm::FixedWindow) {
  return Rule{limit, window, a};
}

TEST(SipHash, ReferenceVectors) {
  // From the SipHash paper: key 00..0f; messages empty and 00..0e.
  const std::uint64_t k0 = 0x0706050403020100ULL, k1 = 0x0f0e0d0c0b0a0908ULL;
  EXPECT_EQ(siphash24(k0, k1, ""), 0x726fdb47dd0e0e31ULL);
  std::string msg;
  for (int i = 0; i < 15; ++i) msg += char(i);
  EXPECT_EQ(siphash24(k0, k1, msg), 0xa129ca6149be45e5ULL);
}

TEST(WholeSeconds, RoundUpAndNoneForNothing) {
  using std::chrono::nanoseconds;
  EXPECT_EQ(whole_seconds_up(nanoseconds(0)), 0u);
  EXPECT_EQ(whole_seconds_up(nanoseconds(-5)), 0u);
  EXPECT_EQ(whole_seconds_up(nanoseconds(1)), 1u);
  EXPECT_EQ(whole_seconds_up(std::chrono::seconds(1)), 1u);
  EXPECT_EQ(whole_seconds_up(std::chrono::seconds(1) + nanoseconds(1)), 2u);
  EXPECT_EQ(whole_seconds_up(std::chrono::milliseconds(59'500)), 60u);
  EXPECT_EQ(whole_seconds_up(nanoseconds::max()), 9'223'372'037u);  // no overflow on the way
}

TEST(FixedWindow, CountsDownAndRefusesPastTheLimit) {
  StoreFixture f;
  const Rule r = rule(3, 10s);
  for (std::uint64_t i = 0; i < 3; ++i) {
    Decision d = f.hit("k", r);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.remaining, 2 - i);
    EXPECT_EQ(d.reset_seconds, 10u);
    EXPECT_EQ(d.limit, 3u);
    EXPECT_EQ(d.window_seconds, 10u);
  }
  Decision d = f.hit("k", r);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.remaining, 0u);
  EXPECT_EQ(d.retry_after_seconds, 10u);
}

TEST(FixedWindow, WindowEdges) {
  StoreFixture f;
  const Rule r = rule(2, 10s);
  EXPECT_TRUE(f.hit("k", r).allowed);
  f.clock->advance(4s);
  EXPECT_TRUE(f.hit("k", r).allowed);
  // Just before the window ends: still refused, one second to wait (rounded up).
  f.clock->advance(6s - 1ns);
  Decision before = f.hit("k", r);
  EXPECT_FALSE(before.allowed);
  EXPECT_EQ(before.reset_seconds, 1u);
  EXPECT_EQ(before.retry_after_seconds, 1u);
  // Exactly at the boundary: a new window begins with this request.
  f.clock->advance(1ns);
  Decision at = f.hit("k", r);
  EXPECT_TRUE(at.allowed);
  EXPECT_EQ(at.remaining, 1u);
  EXPECT_EQ(at.reset_seconds, 10u);
  // Just after: the new window runs from the boundary.
  f.clock->advance(1ns);
  Decision after = f.hit("k", r);
  EXPECT_TRUE(after.allowed);
  EXPECT_EQ(after.remaining, 0u);
  EXPECT_EQ(after.reset_seconds, 10u);  // 10s - 1ns, rounded up
  EXPECT_FALSE(f.hit("k", r).allowed);
}

TEST(FixedWindow, EachKeyWindowStartsWithItsFirstRequest) {
  StoreFixture f;
  const Rule r = rule(1, 10s);
  EXPECT_TRUE(f.hit("a", r).allowed);
  f.clock->advance(6s);
  EXPECT_TRUE(f.hit("b", r).allowed);
  f.clock->advance(4s);  // a's window is over, b's has 6s left
  EXPECT_TRUE(f.hit("a", r).allowed);
  Decision b = f.hit("b", r);
  EXPECT_FALSE(b.allowed);
  EXPECT_EQ(b.retry_after_seconds, 6u);
}

TEST(SlidingWindow, WindowEdges) {
  StoreFixture f;
  const Rule r = rule(10, 10s, Algorithm::SlidingWindow);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(f.hit("k", r).allowed);
  Decision full = f.hit("k", r);
  EXPECT_FALSE(full.allowed);
  EXPECT_EQ(full.remaining, 0u);
  EXPECT_EQ(full.reset_seconds, 20u);      // both windows must pass before the budget is whole
  EXPECT_EQ(full.retry_after_seconds, 11u);  // the next window, once 1/10 of it has passed
  // Just before the window boundary: the current window is full.
  f.clock->advance(10s - 1ns);
  EXPECT_FALSE(f.hit("k", r).allowed);
  // Exactly at the boundary: the previous window still weighs 10 × 10/10 = 10.
  f.clock->advance(1ns);
  Decision at = f.hit("k", r);
  EXPECT_FALSE(at.allowed);
  EXPECT_EQ(at.retry_after_seconds, 1u);
  // 1s into the new window the previous one weighs 9: one request fits, exactly then.
  f.clock->advance(1s - 1ns);
  EXPECT_FALSE(f.hit("k", r).allowed);
  f.clock->advance(1ns);
  Decision in = f.hit("k", r);
  EXPECT_TRUE(in.allowed);
  EXPECT_EQ(in.remaining, 0u);
  EXPECT_FALSE(f.hit("k", r).allowed);
  // Halfway: 10 × 0.5 + 1 = 6 used, 4 left.
  f.clock->advance(4s);
  Decision half = f.hit("k", r);
  EXPECT_TRUE(half.allowed);
  EXPECT_EQ(half.remaining, 3u);
}

TEST(SlidingWindow, SmoothsTheBoundaryBurst) {
  // A fixed window admits 2 × limit around a boundary; the sliding counter does not.
  StoreFixture f;
  const Rule fixed = rule(10, 10s), sliding = rule(10, 10s, Algorithm::SlidingWindow);
  f.hit("f", fixed);
  f.hit("s", sliding);
  f.clock->advance(9s);
  for (int i = 0; i < 9; ++i) {
    f.hit("f", fixed);
    f.hit("s", sliding);
  }
  f.clock->advance(1s);  // the boundary
  int fixed_ok = 0, sliding_ok = 0;
  for (int i = 0; i < 10; ++i) {
    fixed_ok += f.hit("f", fixed).allowed;
    sliding_ok += f.hit("s", sliding).allowed;
  }
  EXPECT_EQ(fixed_ok, 10);
  EXPECT_EQ(sliding_ok, 0);
}

TEST(SlidingWindow, IdleKeyStartsFresh) {
  StoreFixture f;
  const Rule r = rule(2, 10s, Algorithm::SlidingWindow);
  EXPECT_TRUE(f.hit("k", r).allowed);
  EXPECT_TRUE(f.hit("k", r).allowed);
  f.clock->advance(20s);  // two whole windows: nothing of the old ones weighs any more
  Decision d = f.hit("k", r);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 1u);
}

TEST(TokenBucket, BurstThenRefillEdges) {
  StoreFixture f;
  const Rule r = rule(2, 10s, Algorithm::TokenBucket);  // burst 2, one token per 5s
  Decision first = f.hit("k", r);
  EXPECT_TRUE(first.allowed);
  EXPECT_EQ(first.remaining, 1u);
  EXPECT_EQ(first.reset_seconds, 5u);
  Decision second = f.hit("k", r);
  EXPECT_TRUE(second.allowed);
  EXPECT_EQ(second.remaining, 0u);
  EXPECT_EQ(second.reset_seconds, 10u);
  Decision third = f.hit("k", r);
  EXPECT_FALSE(third.allowed);
  EXPECT_EQ(third.retry_after_seconds, 5u);
  // Just before a token is back: refused. Exactly at it: admitted. Just after: empty again.
  f.clock->advance(5s - 1ns);
  EXPECT_FALSE(f.hit("k", r).allowed);
  f.clock->advance(1ns);
  Decision at = f.hit("k", r);
  EXPECT_TRUE(at.allowed);
  EXPECT_EQ(at.remaining, 0u);
  f.clock->advance(1ns);
  Decision after = f.hit("k", r);
  EXPECT_FALSE(after.allowed);
  EXPECT_EQ(after.retry_after_seconds, 5u);  // 5s - 1ns, rounded up
  // A full window idle: the whole burst again.
  f.clock->advance(10s);
  EXPECT_TRUE(f.hit("k", r).allowed);
  EXPECT_TRUE(f.hit("k", r).allowed);
  EXPECT_FALSE(f.hit("k", r).allowed);
}

TEST(TokenBucket, ExactForLimitsThatDoNotDivideTheWindow) {
  StoreFixture f;
  const Rule r = rule(3, 1s, Algorithm::TokenBucket);  // one token per 333333333.33ns
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(f.hit("k", r).allowed);
  EXPECT_FALSE(f.hit("k", r).allowed);
  f.clock->advance(1s);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(f.hit("k", r).allowed) << i;
  EXPECT_FALSE(f.hit("k", r).allowed);
  // Over a long steady stream, exactly 3 per second are admitted.
  int admitted = 0;
  for (int ms = 0; ms < 10'000; ++ms) {
    f.clock->advance(1ms);
    admitted += f.hit("k", r).allowed;
  }
  EXPECT_EQ(admitted, 30);
}

TEST(MemoryStore, DistinctKeysAreIndependent) {
  StoreFixture f;
  for (Algorithm a : {Algorithm::FixedWindow, Algorithm::SlidingWindow, Algorithm::TokenBucket}) {
    const Rule r = rule(1, 1h, a);
    const std::string tag(to_string(a));
    EXPECT_TRUE(f.hit(tag + "a", r).allowed);
    EXPECT_FALSE(f.hit(tag + "a", r).allowed);
    EXPECT_TRUE(f.hit(tag + "b", r).allowed);
    EXPECT_FALSE(f.hit(tag + "b", r).allowed);
  }
}

TEST(MemoryStore, ChangedAlgorithmStartsTheKeyAfresh) {
  StoreFixture f;
  EXPECT_TRUE(f.hit("k", rule(1, 1h)).allowed);
  EXPECT_FALSE(f.hit("k", rule(1, 1h)).allowed);
  EXPECT_TRUE(f.hit("k", rule(1, 1h, Algorithm::TokenBucket)).allowed);
}

TEST(MemoryStore, ExactAcrossThreads) {
  StoreFixture f;
  const Rule r = rule(25'000, 1h);
  constexpr int kThreads = 4, kHits = 10'000;
  proxy::GatewayShared shared;
  std::vector<std::unique_ptr<proxy::Worker>> workers;
  for (int i = 0; i < kThreads; ++i) workers.push_back(std::make_unique<proxy::Worker>(i, shared, nullptr));
  std::atomic<int> allowed{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      boost::asio::io_context io;
      proxy::Worker& w = *workers[t];
      auto loop = [&]() -> boost::asio::awaitable<void> {
        for (int i = 0; i < kHits; ++i) {
          std::string key = "one-key";
          Result<Decision> d = co_await f.store->hit(w, std::move(key), r);
          if (!d) ++errors;
          else if (d->allowed) ++allowed;
        }
      };
      boost::asio::co_spawn(io, loop(), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
      io.run();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(allowed.load(), 25'000);
  EXPECT_EQ(f.store->size(), 1u);
}

TEST(MemoryStore, AMillionDistinctKeysStayBounded) {
  StoreFixture f(64, 1024);  // at most 65,536 entries
  const Rule r = rule(5, 1s);
  std::size_t peak = 0;
  // 1,000,000 keys over 100 seconds: about 10,000 are live at any moment.
  for (int i = 0; i < 1'000'000; ++i) {
    if (i % 10 == 0) f.clock->advance(1ms);
    ASSERT_TRUE(f.hit("client-" + std::to_string(i), r).allowed);
    if (i % 10'000 == 0) peak = std::max(peak, f.store->size());
  }
  EXPECT_LE(peak, f.store->capacity());
  EXPECT_LE(f.store->size(), f.store->capacity());
  // Expired entries are reclaimed as new keys arrive, so the store holds little beyond the
  // live ones (about 10,000 here), well under its cap.
  EXPECT_LT(f.store->size(), 30'000u);
  // Once every window is over, a trickle of new keys keeps reclaiming; an explicit purge
  // empties what is left.
  f.clock->advance(2s);
  for (int i = 0; i < 20'000; ++i) f.hit("late-" + std::to_string(i), r);
  EXPECT_LT(f.store->size(), 30'000u);
  f.clock->advance(2s);
  f.store->purge_expired();
  EXPECT_EQ(f.store->size(), 0u);
}

TEST(MemoryStore, FullStripeEvictsExpiredFirstThenTheSoonestToExpire) {
  StoreFixture f(1, 8);
  // Live keys beyond the cap: the store never holds more than 8.
  for (int i = 0; i < 20; ++i) {
    f.hit("live-" + std::to_string(i), rule(1, std::chrono::hours(1 + i)));
    EXPECT_LE(f.store->size(), 8u);
  }
  // The longest-lived key survives: evictions take the entry that expires soonest.
  EXPECT_FALSE(f.hit("live-19", rule(1, std::chrono::hours(20))).allowed);
  // After those windows are over, new keys reuse the space.
  f.clock->advance(std::chrono::hours(30));
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(f.hit("new-" + std::to_string(i), rule(1, 1h)).allowed);
  EXPECT_LE(f.store->size(), 8u);
}

}  // namespace
}  // namespace gh::policies
