#include "upstream/endpoint.h"

#include "core/clock.h"

namespace gh::upstream {

std::int64_t steady_now_ms() noexcept { return core::Clock::real().coarse_now_ms(); }

void Endpoint::report_connect_failure(std::int64_t now_ms) noexcept {
  errors.fetch_add(1, std::memory_order_relaxed);
  if (connect_failures.fetch_add(1, std::memory_order_relaxed) + 1 >= kEjectAfterConnectFailures) {
    connect_failures.store(0, std::memory_order_relaxed);
    ejected_until_ms.store(now_ms + kEjectMillis, std::memory_order_relaxed);
    ejections.fetch_add(1, std::memory_order_relaxed);
  }
}

void Endpoint::report_status(int status, std::int64_t now_ms) noexcept {
  connect_failures.store(0, std::memory_order_relaxed);
  if (status >= 500) {
    errors.fetch_add(1, std::memory_order_relaxed);
    if (server_errors.fetch_add(1, std::memory_order_relaxed) + 1 >= kEjectAfter5xx) {
      server_errors.store(0, std::memory_order_relaxed);
      ejected_until_ms.store(now_ms + kEjectMillis, std::memory_order_relaxed);
      ejections.fetch_add(1, std::memory_order_relaxed);
    ejections.fetch_add(1, std::memory_order_relaxed);
    }
  } else {
    server_errors.store(0, std::memory_order_relaxed);
  }
}

void Endpoint::report_success() noexcept {
  connect_failures.store(0, std::memory_order_relaxed);
}

}  // namespace gh::upstream
