#include "core/check.h"

#include <cstdio>
#include <cstdlib>

namespace gh::detail {
void check_failed(const char* expr, const char* file, int line) noexcept {
  std::fprintf(stderr, "gatehouse: check failed: %s at %s:%d\n", expr, file, line);
  std::abort();
}
}  // namespace gh::detail
