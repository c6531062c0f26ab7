#include "core/buffer_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace gh {

void BufferUnmap::operator()(char* p) const noexcept { ::munmap(p, size); }

BufferPool::Class* BufferPool::class_of(std::size_t size) noexcept {
  for (Class& c : classes_)
    if (c.size == size) return &c;
  return nullptr;
}

BufferPool::Buffer BufferPool::get(std::size_t min_size) {
  std::size_t size = std::max(kSmall, min_size);
  size = (size + 4095) & ~std::size_t{4095};
  if (Class* c = class_of(size); c && !c->free.empty()) {
    Buffer b = std::move(c->free.back());
    c->free.pop_back();
    c->low = std::min(c->low, c->free.size());
    free_bytes_ -= size;
    return b;
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return Buffer{std::unique_ptr<char[], BufferUnmap>(static_cast<char*>(p), BufferUnmap{size}), size};
}

void BufferPool::put(Buffer&& b) {
  if (b.data && free_bytes_ + b.cap <= kMaxFreeBytes) {
    if (Class* c = class_of(b.cap)) {
      free_bytes_ += b.cap;
      c->free.push_back(std::move(b));
    }
  }
  b = {};
}

std::size_t BufferPool::enlarge(Buffer& b, std::size_t begin, std::size_t end) noexcept {
  const std::size_t n = end - begin;
  Buffer large;
  try {
    large = get(kLarge);
  } catch (const std::bad_alloc&) {
    if (begin > 0 && n > 0) std::memmove(b.data.get(), b.data.get() + begin, n);
    return n;
  }
  if (n > 0) std::memcpy(large.data.get(), b.data.get() + begin, n);
  put(std::move(b));
  b = std::move(large);
  return n;
}

void BufferPool::trim() noexcept {
  for (Class& c : classes_) {
    // The buffers never drawn on since the last trim (the list's low-water mark) are spare.
    const std::size_t kept = kKeptFreeBytes / c.size;
    std::size_t spare = std::min(c.low, c.free.size());
    while (spare > 0 && c.free.size() > kept) {
      c.free.pop_back();
      free_bytes_ -= c.size;
      --spare;
    }
    c.low = c.free.size();
  }
}

}  // namespace gh
