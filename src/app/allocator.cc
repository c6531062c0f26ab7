// The gatehouse binary's global operator new and delete: a per-thread cache of freed blocks in
// front of malloc, so that serving a request calls no allocator at all.
//
// What a request allocates is its coroutine frames (Exchange::run, route, proxy, the session's
// handle_request, the body pumps): the same few sizes, freed and allocated again on every
// request of every connection. Boost.Asio recycles only frames up to 1020 bytes and only a few
// of them per thread, so the larger ones went to malloc and free each time — nine malloc calls
// per proxied request. Asio's own frame recycling is turned off
// (BOOST_ASIO_DISABLE_AWAITABLE_FRAME_RECYCLING, set for the whole build) and every frame comes
// from here.
//
// How: sizes up to 17 KiB fall into classes of 16 bytes, laid out exactly as glibc's malloc
// chunks (a request of N bytes takes the class whose chunk malloc(N) would take), so the cache
// wastes no memory against plain malloc. A freed block goes onto its thread's list for its
// class while the thread caches less than 4 MiB; anything else goes back to free(). (At 1 MiB,
// 50 TLS connections with a request in flight on each, after others had closed, made 1.5
// allocator calls per HTTP/1.1 request and 3 to 8 per HTTP/2 request: what a burst of answers
// and closed connections freed at once did not fit, and the requests' blocks went back to
// malloc.) A block may
// be freed on another thread than the one that allocated it (it simply joins that thread's
// cache). Sized deletes (what the compiler emits for frames and std::allocator) give the class
// directly; an unsized delete asks malloc_usable_size, and a block whose usable size is larger
// than its class needs (glibc did not split the chunk) goes to a larger class — it holds that
// class's bytes, so every block handed out holds at least what was asked.
//
// Once a second each worker scavenges its cache (core/heap.h): the blocks of a class that were
// never drawn on since the last time (the list's low-water mark) go back to free(), so what a
// burst of connections freed does not stay cached after it; steady traffic keeps its blocks.
//
// When a thread exits, its cache is drained back to malloc; blocks freed after that, by later
// thread-exit destructors, go straight to free().
//
// Not built with AddressSanitizer: ASan's own operator new must stay in place to check every
// allocation, and a cache would hide use-after-free. (GCC says so with __SANITIZE_ADDRESS__,
// clang with __has_feature.)
#if defined(__SANITIZE_ADDRESS__)
#define GH_ALLOCATOR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GH_ALLOCATOR_ASAN 1
#endif
#endif
#if !defined(GH_ALLOCATOR_ASAN)

#include <malloc.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "core/heap.h"

namespace {

constexpr std::size_t kGranule = 16;
// Larger blocks are never cached. 17 KiB: OpenSSL's record buffers (16,584 and 16,712 bytes),
// allocated and freed on every TLS read and write, are cached too.
constexpr std::size_t kMaxCached = 17 * 1024;
constexpr std::size_t kClasses = kMaxCached / kGranule + 2;   // class c: chunk of c * 16 bytes
constexpr std::size_t kThreadCacheBytes = std::size_t{4} << 20;

// glibc: malloc(N) takes a chunk of max(32, round_up(N + 8, 16)) bytes, of which N + padding
// are usable (chunk size - 8).
constexpr std::size_t class_of_request(std::size_t n) noexcept {
  const std::size_t c = (n + 8 + kGranule - 1) / kGranule;
  return c < 2 ? 2 : c;
}
constexpr std::size_t usable_of_class(std::size_t c) noexcept { return c * kGranule - 8; }
constexpr std::size_t class_of_usable(std::size_t usable) noexcept { return (usable + 8) / kGranule; }

struct Block {
  Block* next;
};

// Zero-initialized and trivially destructible: reaching it costs no guard.
struct Cache {
  Block* head[kClasses];
  std::uint32_t count[kClasses];  // blocks on each list
  std::uint32_t low[kClasses];    // each list's fewest blocks since the last scavenge
  std::size_t bytes;
  bool registered;  // the thread's Drain exists
  bool dead;        // the thread is exiting and its cache was drained
};
thread_local Cache t_cache;

struct Drain {
  ~Drain() {
    for (Block*& head : t_cache.head) {
      while (head) {
        Block* next = head->next;
        std::free(head);
        head = next;
      }
    }
    t_cache.bytes = 0;
    t_cache.dead = true;
    for (std::size_t c = 0; c < kClasses; ++c) t_cache.count[c] = t_cache.low[c] = 0;
  }
};

[[gnu::noinline]] void register_drain() {
  static thread_local Drain drain;
  (void)drain;
  t_cache.registered = true;
}

[[gnu::noinline]] void* allocate_slow(std::size_t bytes) {
  for (;;) {
    if (void* p = std::malloc(bytes)) return p;
    std::new_handler handler = std::get_new_handler();
    if (!handler) throw std::bad_alloc();
    handler();
  }
}

inline void* allocate(std::size_t n) {
  if (n <= kMaxCached) {
    const std::size_t c = class_of_request(n);
    Cache& cache = t_cache;
    if (Block* b = cache.head[c]) {
      cache.head[c] = b->next;
      cache.bytes -= usable_of_class(c);
      if (--cache.count[c] < cache.low[c]) cache.low[c] = cache.count[c];
      return b;
    }
    return allocate_slow(usable_of_class(c));
  }
  return allocate_slow(n);  // n > kMaxCached: never 0
}

inline void release(void* p, std::size_t c) noexcept {
  Cache& cache = t_cache;
  const std::size_t size = usable_of_class(c);
  if (c < kClasses && !cache.dead && cache.bytes + size <= kThreadCacheBytes) {
    if (!cache.registered) register_drain();
    auto* b = static_cast<Block*>(p);
    b->next = cache.head[c];
    cache.head[c] = b;
    cache.bytes += size;
    ++cache.count[c];
    return;
  }
  std::free(p);
}

void scavenge() noexcept {
  Cache& cache = t_cache;
  if (cache.dead) return;
  for (std::size_t c = 0; c < kClasses; ++c) {
    for (std::uint32_t spare = cache.low[c]; spare > 0 && cache.head[c]; --spare) {
      Block* b = cache.head[c];
      cache.head[c] = b->next;
      cache.bytes -= usable_of_class(c);
      --cache.count[c];
      std::free(b);
    }
    cache.low[c] = cache.count[c];
  }
}

[[maybe_unused]] const bool g_scavenger_set = (gh::core::set_thread_cache_scavenger(&scavenge), true);

}  // namespace

void* operator new(std::size_t n) { return allocate(n); }
void* operator new[](std::size_t n) { return allocate(n); }

void operator delete(void* p) noexcept {
  if (p) release(p, class_of_usable(malloc_usable_size(p)));
}
void operator delete[](void* p) noexcept {
  if (p) release(p, class_of_usable(malloc_usable_size(p)));
}
void operator delete(void* p, std::size_t n) noexcept {
  if (!p) return;
  if (n <= kMaxCached) {
    release(p, class_of_request(n));
  } else {
    std::free(p);
  }
}
void operator delete[](void* p, std::size_t) noexcept { operator delete[](p); }

#endif  // !defined(GH_ALLOCATOR_ASAN)
