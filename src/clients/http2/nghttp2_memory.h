// The allocator gatehouse gives nghttp2 (nghttp2_session_*_new3): core/heap.h's functions over
// the global operator new, so the blocks nghttp2 allocates for each stream and frame come from
// the binary's per-thread cache instead of malloc.
#pragma once

#include <nghttp2/nghttp2.h>

#include "core/heap.h"

namespace gh::clients::http2 {

inline nghttp2_mem* nghttp2_memory() noexcept {
  static nghttp2_mem mem{
      nullptr,
      [](std::size_t n, void*) { return core::heap_malloc(n); },
      [](void* p, void*) { core::heap_free(p); },
      [](std::size_t count, std::size_t size, void*) { return core::heap_calloc(count, size); },
      [](void* p, std::size_t n, void*) { return core::heap_realloc(p, n); },
  };
  return &mem;
}

}  // namespace gh::clients::http2
