// BufferPool: fixed-size I/O buffers, borrowed when data arrives and given back when a
// connection goes idle (STYLE §11: an idle connection holds no buffer).
// Two sizes are recycled: small buffers (16 KiB) for heads and the bodies that fit in them, and
// large ones (64 KiB) that a connection trades up to once a body outgrows its small buffer, so
// a big body crosses the kernel in a quarter of the calls.
// Buffers are mapped pages of their own, not heap memory: bursts of buffers come and go
// without scattering the long-lived small objects of idle connections over the heap, so the
// memory a burst used goes back to the kernel when it ends.
// Thread: one pool per worker, touched only by its thread.
#pragma once

#include <array>
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
  static constexpr std::size_t kSmall = 16 * 1024;
  static constexpr std::size_t kLarge = 64 * 1024;

  // A buffer of at least min_size bytes, rounded up to whole pages. Throws std::bad_alloc.
  Buffer get(std::size_t min_size);
  void put(Buffer&& b);
  // Trades b for a large buffer holding b's bytes [begin, end) at its start; returns where they
  // end in it. Without memory for it, b stays as it is and end - begin is still returned after
  // the same move to its start, so the caller's view is right either way.
  std::size_t enlarge(Buffer& b, std::size_t begin, std::size_t end) noexcept;
  // Called about once a second: free buffers beyond a class's kept share that stayed unused
  // since the last call go back to the kernel. Under load the free lists hold what the load
  // cycles through (no mmap and munmap per request); after it, the memory goes back.
  void trim() noexcept;
  std::size_t free_bytes() const noexcept { return free_bytes_; }

 private:
  struct Class {
    std::size_t size;
    std::vector<Buffer> free;
    std::size_t low = 0;  // the fewest free buffers since the last trim
  };
  static constexpr std::size_t kMaxFreeBytes = 16 * 1024 * 1024;  // both classes together
  static constexpr std::size_t kKeptFreeBytes = 1024 * 1024;      // each class, after a trim
  Class* class_of(std::size_t size) noexcept;

  std::array<Class, 2> classes_{{{kSmall, {}, 0}, {kLarge, {}, 0}}};
  std::size_t free_bytes_ = 0;
};

}  // namespace gh
