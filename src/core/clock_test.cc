#include "core/clock.h"

#include <gtest/gtest.h>

#include <cstdint>

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

// The coarse reading is the same clock as now(), never ahead of it and at most a tick behind:
// deadlines armed from one are checked against the other.
TEST(RealClock, CoarseReadingIsTheSameClockAtMostATickBehind) {
  const Clock& c = Clock::real();
  for (int i = 0; i < 1000; ++i) {
    const auto before = c.now();
    const auto coarse = c.coarse_now();
    const auto after = c.now();
    ASSERT_LE(coarse, after);
    ASSERT_GT(coarse, before - 20ms);  // a tick is 1 to 10 ms
  }
  // It moves: within a second it has advanced.
  const auto first = c.coarse_now();
  while (c.now() < first + 50ms) {
  }
  EXPECT_GT(c.coarse_now(), first + 30ms);
  EXPECT_NEAR(static_cast<double>(c.coarse_now_ms()), static_cast<double>(c.now_ms()), 20.0);
}

TEST(FakeClock, CoarseReadingIsNow) {
  FakeClock clock;
  EXPECT_EQ(clock.coarse_now(), clock.now());
  clock.advance(7ms);
  EXPECT_EQ(clock.coarse_now(), clock.now());
  EXPECT_EQ(clock.coarse_now_ms(), clock.now_ms());
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

}  // namespace
}  // namespace gh::core
