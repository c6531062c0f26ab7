#include "core/heap.h"

namespace gh::core {

namespace {
// Constant-initialized: set before main by the allocator's static initializer, read after.
ThreadCacheScavenger g_scavenger = nullptr;
}  // namespace

void set_thread_cache_scavenger(ThreadCacheScavenger scavenger) noexcept { g_scavenger = scavenger; }

void scavenge_thread_cache() noexcept {
  if (g_scavenger) g_scavenger();
}

}  // namespace gh::core
