#include "core/buffer_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <new>

namespace gh {

void BufferUnmap::operator()(char* p) const noexcept { ::munmap(p, size); }

BufferPool::Buffer BufferPool::get(std::size_t min_size) {
  std::size_t size = std::max(kDefaultSize, min_size);
  size = (size + 4095) & ~std::size_t{4095};
  if (size == kDefaultSize && !free_.empty()) {
    Buffer b = std::move(free_.back());
    free_.pop_back();
    low_ = std::min(low_, free_.size());
    return b;
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return Buffer{std::unique_ptr<char[], BufferUnmap>(static_cast<char*>(p), BufferUnmap{size}), size};
}

void BufferPool::put(Buffer&& b) {
  if (b.data && b.cap == kDefaultSize && free_.size() < kMaxFree) free_.push_back(std::move(b));
  b = {};
}

void BufferPool::trim() noexcept {
  // The buffers never drawn on since the last trim (the list's low-water mark) are spare.
  std::size_t spare = std::min(low_, free_.size());
  while (spare > 0 && free_.size() > kKeptFree) {
    free_.pop_back();
    --spare;
  }
  low_ = free_.size();
}

}  // namespace gh
