#include "core/slab.h"

#include <sys/mman.h>

#include <cstdint>

#if defined(__SANITIZE_ADDRESS__)
#define GH_SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GH_SLAB_ASAN 1
#endif
#endif

namespace gh::core {

namespace {
[[maybe_unused]] constexpr std::size_t round16(std::size_t n) noexcept { return (n + 15) & ~std::size_t{15}; }
}  // namespace

bool Slab::pooled() noexcept {
#if defined(GH_SLAB_ASAN)
  return false;
#else
  return true;
#endif
}

Slab::~Slab() {
  if (live_ != 0) return;
  while (open_) {
    Chunk* c = open_;
    open_ = c->next;
    ::munmap(c, kChunkBytes);
  }
}

bool Slab::owns_size(std::size_t size) const noexcept {
#if defined(GH_SLAB_ASAN)
  (void)size;
  return false;
#else
  return size != 0 && round16(size) == block_;
#endif
}

Slab::Chunk* Slab::chunk_of(void* p) noexcept {
  return reinterpret_cast<Chunk*>(reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{kChunkBytes - 1});
}

void Slab::unlink(Chunk* c) noexcept {
  if (c->prev) c->prev->next = c->next;
  else open_ = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = nullptr;
}

void Slab::push_front(Chunk* c) noexcept {
  c->prev = nullptr;
  c->next = open_;
  if (open_) open_->prev = c;
  open_ = c;
}

// A chunk aligned to its size, so a block finds its chunk by masking its address: map twice
// the size and unmap what lies outside the aligned half.
Slab::Chunk* Slab::map_chunk() {
  void* p = ::mmap(nullptr, 2 * kChunkBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  const auto base = reinterpret_cast<std::uintptr_t>(p);
  const auto aligned = (base + kChunkBytes - 1) & ~std::uintptr_t{kChunkBytes - 1};
  if (aligned > base) ::munmap(p, aligned - base);
  if (const auto tail = base + 2 * kChunkBytes - (aligned + kChunkBytes); tail > 0)
    ::munmap(reinterpret_cast<void*>(aligned + kChunkBytes), tail);
  auto* c = reinterpret_cast<Chunk*>(aligned);
  *c = Chunk{nullptr, nullptr, nullptr, 0, 0};
  ++chunks_;
  return c;
}

void* Slab::allocate(std::size_t size) {
#if !defined(GH_SLAB_ASAN)
  if (block_ == 0 && size != 0 && round16(size) <= (kChunkBytes - kHeader) / 8) {
    block_ = round16(size);
    per_chunk_ = (kChunkBytes - kHeader) / block_;
  }
#endif
  if (!owns_size(size)) return ::operator new(size);
  if (!open_) {
    push_front(map_chunk());
    ++empty_;
  }
  Chunk* c = open_;
  void* p;
  if (c->free) {
    p = c->free;
    c->free = c->free->next;
  } else {
    p = reinterpret_cast<char*>(c) + kHeader + c->carved * block_;
    ++c->carved;
  }
  if (c->live++ == 0) --empty_;
  ++live_;
  if (!c->free && c->carved == per_chunk_) unlink(c);  // full: off the open list
  return p;
}

void Slab::deallocate(void* p, std::size_t size) noexcept {
  if (!p) return;
  if (!owns_size(size)) return ::operator delete(p);
  Chunk* c = chunk_of(p);
  const bool was_full = !c->free && c->carved == per_chunk_;
  auto* b = static_cast<Block*>(p);
  b->next = c->free;
  c->free = b;
  --live_;
  if (was_full) push_front(c);
  if (--c->live == 0) {
    if (empty_ >= 1) {
      unlink(c);
      ::munmap(c, kChunkBytes);
      --chunks_;
    } else {
      ++empty_;
    }
  }
}

}  // namespace gh::core
