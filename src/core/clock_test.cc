#include "core/clock.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "core/metrics.h"
#include "core/per_worker.h"

namespace gh::core {
namespace {

using namespace std::chrono_literals;

TEST(FakeClock, MovesOnlyWhenAdvanced) {
  FakeClock clock;
  const auto mono = clock.now();
  const auto wall = clock.wall_now();
  EXPECT_EQ(clock.now(), mono);
  EXPECT_EQ(wall, Clock::Wall(1'700'000'000s));
  EXPECT_GT(clock.now_ns(), 0);  // far from "unset"
  clock.advance(1500ms);
  EXPECT_EQ(clock.now() - mono, 1500ms);
  EXPECT_EQ(clock.wall_now() - wall, 1500ms);
  EXPECT_EQ(clock.now_ms() - std::chrono::duration_cast<std::chrono::milliseconds>(mono.time_since_epoch()).count(), 1500);
  EXPECT_DOUBLE_EQ(clock.wall_seconds(), 1'700'000'001.5);
  // The calendar may jump, the monotonic time does not follow it.
  clock.set_wall(Clock::Wall(100s));
  EXPECT_EQ(clock.wall_now(), Clock::Wall(100s));
  EXPECT_EQ(clock.now() - mono, 1500ms);
}

TEST(RealClock, FollowsTheProcessClocks) {
  const Clock& c = Clock::real();
  EXPECT_EQ(&c, &Clock::real());
  const auto before = std::chrono::steady_clock::now();
  const auto now = c.now();
  EXPECT_GE(now, before);
  EXPECT_LE(now, std::chrono::steady_clock::now());
  EXPECT_LT(std::chrono::abs(c.wall_now() - std::chrono::system_clock::now()), 1s);
}

struct Tally {
  int hits = 0;
};

TEST(PerWorker, OneAlignedSlotPerWorkerWithoutAMaximum) {
  PerWorker<Tally> slots(300);  // past any fixed table size
  EXPECT_EQ(slots.size(), 300u);
  slots.local(0).hits = 1;
  slots.local(299).hits = 5;
  EXPECT_EQ(slots.at(299).hits, 5);
  const auto a = reinterpret_cast<std::uintptr_t>(&slots.at(1));
  const auto b = reinterpret_cast<std::uintptr_t>(&slots.at(2));
  EXPECT_EQ(a % kCacheLine, 0u);
  EXPECT_GE(b - a, kCacheLine);  // neighbours never share a line
  int sum = 0;
  slots.for_each([&](const Tally& t) { sum += t.hits; });
  EXPECT_EQ(sum, 6);
  EXPECT_DEATH(slots.local(300), "worker_id < size_");
}

TEST(Metrics, CountersAreSummedOverWorkersAndKeptByName) {
  Metrics m(4);
  Counter& rejected = m.counter("gatehouse_rate_limit_rejected_total", {{"policy", "per-ip"}});
  std::vector<std::thread> workers;
  for (unsigned w = 0; w < 4; ++w)
    workers.emplace_back([&rejected, w] {
      for (int i = 0; i < 10000; ++i) rejected.inc(w);
    });
  for (auto& t : workers) t.join();
  rejected.inc(m.control_slot(), 2);
  EXPECT_EQ(rejected.value(), 40002u);
  // A second generation asking for the same series gets the same counter and its count.
  Counter& again = m.counter("gatehouse_rate_limit_rejected_total", {{"policy", "per-ip"}});
  EXPECT_EQ(&again, &rejected);
  EXPECT_NE(&m.counter("gatehouse_rate_limit_rejected_total", {{"policy", "other"}}), &rejected);
  m.counter("gatehouse_jwt_rejected_total").inc(0);
  m.counter("gatehouse_odd_total", {{"route", "a\"b\\c\nd"}});
  auto samples = m.collect();
  ASSERT_EQ(samples.size(), 4u);
  EXPECT_EQ(samples[0].series, "gatehouse_jwt_rejected_total");
  EXPECT_EQ(samples[0].value, 1u);
  EXPECT_EQ(samples[1].series, R"(gatehouse_odd_total{route="a\"b\\c\nd"})");
  EXPECT_EQ(samples[2].series, R"(gatehouse_rate_limit_rejected_total{policy="other"})");
  EXPECT_EQ(samples[3].series, R"(gatehouse_rate_limit_rejected_total{policy="per-ip"})");
  EXPECT_EQ(samples[3].value, 40002u);
  EXPECT_DEATH(m.counter("bad name"), "valid_name");
  EXPECT_DEATH(m.counter("ok", {{"bad-label", "x"}}), "valid_name");
}

}  // namespace
}  // namespace gh::core
