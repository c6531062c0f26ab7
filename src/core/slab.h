// Slab: blocks of one size carved from 64 KiB chunks of mapped pages of their own, for the
// objects that come in thousands and live long: the sessions of idle connections.
// Kept out of the heap, they lie dense (no allocator header, no short-lived neighbours), so
// when a burst of connections ends, the heap pages its requests used hold nothing long-lived
// and go back to the kernel (the workers' malloc_trim); a chunk whose blocks are all free is
// unmapped, one such chunk kept spare. Blocks are carved as needed, so a chunk's pages are
// touched only as far as it is used.
// The block size is fixed by the first allocation; a size that rounds to another goes to
// operator new, as does everything in builds with AddressSanitizer (which must see each block).
// Thread: one slab per worker, touched only by its thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

namespace gh::core {

class Slab {
 public:
  static constexpr std::size_t kChunkBytes = 64 * 1024;

  Slab() = default;
  // Unmaps the chunks; if blocks are still in use it leaves them mapped (it never pulls memory
  // from under a live object).
  ~Slab();
  Slab(const Slab&) = delete;
  Slab& operator=(const Slab&) = delete;

  // Memory for `size` bytes, 16-byte aligned; throws std::bad_alloc.
  void* allocate(std::size_t size);
  // REQUIRES: p came from allocate(size) on this slab.
  void deallocate(void* p, std::size_t size) noexcept;

  // False in builds with AddressSanitizer: every block then comes from operator new.
  static bool pooled() noexcept;
  std::size_t block_size() const noexcept { return block_; }
  std::size_t chunks() const noexcept { return chunks_; }
  std::size_t live() const noexcept { return live_; }

 private:
  struct Block {
    Block* next;
  };
  struct Chunk {
    Chunk* prev;
    Chunk* next;
    Block* free;          // freed blocks
    std::uint32_t live;   // blocks in use
    std::uint32_t carved; // blocks handed out at least once, from the start of the chunk
  };
  static constexpr std::size_t kHeader = (sizeof(Chunk) + 15) & ~std::size_t{15};

  bool owns_size(std::size_t size) const noexcept;
  Chunk* map_chunk();
  void unlink(Chunk* c) noexcept;
  void push_front(Chunk* c) noexcept;
  static Chunk* chunk_of(void* p) noexcept;

  std::size_t block_ = 0;     // 0 until the first allocation
  std::size_t per_chunk_ = 0;
  Chunk* open_ = nullptr;     // chunks with a block to give: freed or not yet carved
  std::size_t chunks_ = 0;
  std::size_t empty_ = 0;     // chunks on open_ with no block in use (at most one is kept)
  std::size_t live_ = 0;
};

// An allocator over a Slab for std::allocate_shared (which allocates its control block and
// object together, one at a time).
template <class T>
class SlabAllocator {
 public:
  using value_type = T;
  explicit SlabAllocator(Slab& slab) noexcept : slab_(&slab) {}
  template <class U>
  SlabAllocator(const SlabAllocator<U>& other) noexcept : slab_(other.slab()) {}

  T* allocate(std::size_t n) {
    if (n != 1) return static_cast<T*>(::operator new(n * sizeof(T)));
    return static_cast<T*>(slab_->allocate(sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n != 1) return ::operator delete(p);
    slab_->deallocate(p, sizeof(T));
  }
  Slab* slab() const noexcept { return slab_; }
  template <class U>
  bool operator==(const SlabAllocator<U>& other) const noexcept {
    return slab_ == other.slab();
  }

 private:
  static_assert(alignof(T) <= 16, "a slab's blocks are 16-byte aligned");
  Slab* slab_;
};

}  // namespace gh::core
