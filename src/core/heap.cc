#include "core/heap.h"

#include <malloc.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace gh::core {

namespace {
// Constant-initialized: set before main by the allocator's static initializer, read after.
ThreadCacheScavenger g_scavenger = nullptr;
}  // namespace

void set_thread_cache_scavenger(ThreadCacheScavenger scavenger) noexcept { g_scavenger = scavenger; }

void scavenge_thread_cache() noexcept {
  if (g_scavenger) g_scavenger();
}

void* heap_malloc(std::size_t n) noexcept { return ::operator new(n == 0 ? 1 : n, std::nothrow); }

void heap_free(void* p) noexcept { ::operator delete(p); }

void* heap_calloc(std::size_t count, std::size_t size) noexcept {
  if (size != 0 && count > static_cast<std::size_t>(-1) / size) return nullptr;
  void* p = heap_malloc(count * size);
  if (p) std::memset(p, 0, count * size);
  return p;
}

void* heap_realloc(void* p, std::size_t n) noexcept {
  if (!p) return heap_malloc(n);
  if (n == 0) {
    heap_free(p);
    return nullptr;
  }
  // Every block of operator new is a malloc chunk (the binary's allocator caches malloc's own
  // chunks; without it, operator new is malloc), so malloc_usable_size gives its size.
  const std::size_t have = ::malloc_usable_size(p);
  if (have >= n) return p;
  void* q = heap_malloc(n);
  if (!q) return nullptr;
  std::memcpy(q, p, std::min(have, n));
  heap_free(p);
  return q;
}

}  // namespace gh::core
