// Clock: the one source of the current time for everything in gatehouse that reads it.
// Monotonic time (now()) measures intervals: windows, deadlines, refetch limits, ejections.
// coarse_now() is the same clock read to within a few milliseconds (the kernel's last tick) at
// a fifth of the cost: for deadlines the worker checks on its 100 ms tick and for ages of
// seconds (pooled connections, ejections), read several times per request. Durations that are
// reported (latencies, access logs) use now().
// Wall time (wall_now()) is for what is compared with the calendar: JWT exp/nbf/iat and
// timestamps. Code that reads the time takes a `const Clock&` (normally Clock::real()); unit
// tests pass a FakeClock and advance it instead of sleeping.
// Timers (asio::steady_timer) still wait on the real clock: a FakeClock makes reads
// deterministic, not waits.
// Thread: both implementations may be read from every thread at once; FakeClock::advance and
// set_wall may be called from any thread too (relaxed atomics).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace gh::core {

class Clock {
 public:
  using Monotonic = std::chrono::steady_clock::time_point;
  using Wall = std::chrono::system_clock::time_point;

  virtual ~Clock() = default;
  // Monotonic: never goes backwards; its epoch means nothing.
  virtual Monotonic now() const noexcept = 0;
  // The calendar time.
  virtual Wall wall_now() const noexcept = 0;
  // now(), or up to one kernel tick (1 to 10 ms) before it; never after it.
  virtual Monotonic coarse_now() const noexcept { return now(); }

  // now() as an integer since the monotonic epoch, for atomics.
  std::int64_t now_ns() const noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(now().time_since_epoch()).count();
  }
  std::int64_t now_ms() const noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(now().time_since_epoch()).count();
  }
  std::int64_t coarse_now_ms() const noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(coarse_now().time_since_epoch()).count();
  }
  // wall_now() in (fractional) seconds since the Unix epoch, as JWT claims count.
  double wall_seconds() const noexcept { return std::chrono::duration<double>(wall_now().time_since_epoch()).count(); }

  // The process's real clock (steady_clock and system_clock). Lives for the whole process.
  static const Clock& real() noexcept;
};

class RealClock final : public Clock {
 public:
  Monotonic now() const noexcept override { return std::chrono::steady_clock::now(); }
  Wall wall_now() const noexcept override { return std::chrono::system_clock::now(); }
  // CLOCK_MONOTONIC_COARSE: the base steady_clock reads (CLOCK_MONOTONIC) as of the last tick.
  Monotonic coarse_now() const noexcept override;
};

// A clock that moves only when told to: advance() moves both times, set_wall() the calendar
// only. The monotonic time starts far from zero so that no instant is mistaken for "unset".
class FakeClock final : public Clock {
 public:
  static constexpr std::chrono::seconds kStart{1'000'000};
  // The calendar starts at 2023-11-14T22:13:20Z (Unix time 1'700'000'000) unless given.
  FakeClock() : FakeClock(Wall(std::chrono::seconds(1'700'000'000))) {}
  explicit FakeClock(Wall wall)
      : mono_ns_(std::chrono::nanoseconds(kStart).count()),
        wall_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(wall.time_since_epoch()).count()) {}

  Monotonic now() const noexcept override {
    return Monotonic(std::chrono::duration_cast<Monotonic::duration>(
        std::chrono::nanoseconds(mono_ns_.load(std::memory_order_relaxed))));
  }
  Wall wall_now() const noexcept override {
    return Wall(std::chrono::duration_cast<Wall::duration>(std::chrono::nanoseconds(wall_ns_.load(std::memory_order_relaxed))));
  }

  // REQUIRES: d >= 0 (monotonic time never goes backwards).
  void advance(std::chrono::nanoseconds d) noexcept {
    mono_ns_.fetch_add(d.count(), std::memory_order_relaxed);
    wall_ns_.fetch_add(d.count(), std::memory_order_relaxed);
  }
  // Sets the calendar time alone (a wall clock may jump; the monotonic one does not move).
  void set_wall(Wall w) noexcept {
    wall_ns_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(w.time_since_epoch()).count(),
                   std::memory_order_relaxed);
  }

 private:
  std::atomic<std::int64_t> mono_ns_;
  std::atomic<std::int64_t> wall_ns_;
};

}  // namespace gh::core
