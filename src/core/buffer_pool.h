// BufferPool: fixed-size I/O buffers, borrowed when data arrives and given back when a
// connection goes idle (STYLE §11: an idle connection holds no buffer).
// Buffers are mapped pages of their own, not heap memory: bursts of buffers come and go
// without scattering the long-lived small objects of idle connections over the heap, so the
// memory a burst used goes back to the kernel when it ends.
// Thread: one pool per worker, touched only by its thread.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace gh {

struct BufferUnmap {
  std::size_t size = 0;
  void operator()(char* p) const noexcept;
};

struct IoBuffer {
  std::unique_ptr<char[], BufferUnmap> data;
  std::size_t cap = 0;
};

class BufferPool {
 public:
  using Buffer = IoBuffer;
  // A buffer of at least min_size bytes (16 KiB ones are recycled). Throws std::bad_alloc.
  Buffer get(std::size_t min_size);
  void put(Buffer&& b);
  // Called about once a second: free buffers beyond kKeptFree that stayed unused since the last
  // call go back to the kernel. Under load the free list holds what the load cycles through (no
  // mmap and munmap per request); after it, the memory goes back.
  void trim() noexcept;

 private:
  static constexpr std::size_t kDefaultSize = 16 * 1024;
  static constexpr std::size_t kMaxFree = 1024;
  static constexpr std::size_t kKeptFree = 64;
  std::size_t low_ = 0;  // the fewest free buffers since the last trim
  std::vector<Buffer> free_;
};

}  // namespace gh
