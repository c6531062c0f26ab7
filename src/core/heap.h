// Giving memory back after a burst. The gatehouse binary's allocator (src/app/allocator.cc)
// keeps a per-thread cache of freed blocks; a worker calls scavenge_thread_cache() from its
// once-a-second housekeeping so that what a burst of connections freed does not stay cached
// once the burst is over. Without that allocator (tests, sanitizer builds) it does nothing.
// Thread: scavenge_thread_cache() acts on the calling thread's cache only.
#pragma once

#include <cstddef>

namespace gh::core {

using ThreadCacheScavenger = void (*)() noexcept;

// Installed once by the allocator, before main (static initialization).
void set_thread_cache_scavenger(ThreadCacheScavenger scavenger) noexcept;

// Frees the blocks of the calling thread's cache that sat unused since the previous call.
void scavenge_thread_cache() noexcept;

// malloc, free, calloc and realloc over the global operator new and delete, for C libraries
// that take an allocator of their caller's (nghttp2): their blocks then come from the binary's
// per-thread cache like the rest of a request's memory. Null when out of memory, as malloc.
void* heap_malloc(std::size_t n) noexcept;
void heap_free(void* p) noexcept;
void* heap_calloc(std::size_t count, std::size_t size) noexcept;
void* heap_realloc(void* p, std::size_t n) noexcept;

}  // namespace gh::core
