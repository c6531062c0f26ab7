#include "core/clock.h"

namespace gh::core {

const Clock& Clock::real() noexcept {
  static const RealClock clock;
  return clock;
}

}  // namespace gh::core
