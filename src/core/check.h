// GH_CHECK (always) and GH_ASSERT (debug builds): invariants that crash loudly when broken.
#pragma once

namespace gh::detail {
[[noreturn]] void check_failed(const char* expr, const char* file, int line) noexcept;
}

#define GH_CHECK(cond) \
  ((cond) ? static_cast<void>(0) : ::gh::detail::check_failed(#cond, __FILE__, __LINE__))
#ifdef NDEBUG
#define GH_ASSERT(cond) static_cast<void>(0)
#else
#define GH_ASSERT(cond) GH_CHECK(cond)
#endif
