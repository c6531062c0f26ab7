#include "core/clock.h"

#include <time.h>

namespace gh::core {

const Clock& Clock::real() noexcept {
  static const RealClock clock;
  return clock;
}

Clock::Monotonic RealClock::coarse_now() const noexcept {
  static_assert(std::chrono::steady_clock::is_steady);
  timespec ts{};
  if (::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0) return std::chrono::steady_clock::now();
  return Monotonic(std::chrono::duration_cast<Monotonic::duration>(std::chrono::seconds(ts.tv_sec) +
                                                                    std::chrono::nanoseconds(ts.tv_nsec)));
}

}  // namespace gh::core
