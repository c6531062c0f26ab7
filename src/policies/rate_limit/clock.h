// Clock: the time source of the rate-limit stores, injectable so tests advance time instead
// of sleeping. Thread: implementations are safe to read from every worker at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace gh::policies {

// Monotonic nanoseconds since an arbitrary epoch. Never goes backwards.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::int64_t now_ns() const noexcept = 0;
};

// The process's steady clock.
class SteadyClock final : public Clock {
 public:
  std::int64_t now_ns() const noexcept override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that moves only when told to. Starts far from zero so no time is mistaken for "unset".
class FakeClock final : public Clock {
 public:
  explicit FakeClock(std::int64_t start_ns = std::int64_t{1'000'000} * 1'000'000'000) : now_(start_ns) {}
  std::int64_t now_ns() const noexcept override { return now_.load(std::memory_order_relaxed); }
  void advance(std::chrono::nanoseconds d) noexcept { now_.fetch_add(d.count(), std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> now_;
};

}  // namespace gh::policies
