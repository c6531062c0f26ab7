// libgh_count_malloc.so: preloaded into a gatehouse process (LD_PRELOAD) by allocation_test.cc
// to count every call into glibc's allocator — malloc, calloc, realloc, and the aligned
// forms — as a perf uprobe on them would. The count lives in a file the test names in
// GH_COUNT_MALLOC_FILE (8 bytes, shared mapping), so the test reads it live without asking the
// process anything. Before the mapping exists (the first allocations of the dynamic loader)
// nothing is counted. Every call is passed on to glibc's own entry points unchanged.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
}

namespace {

std::uint64_t* counter = nullptr;

inline void count() noexcept {
  if (counter) __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

[[gnu::constructor]] void map_counter() {
  const char* path = std::getenv("GH_COUNT_MALLOC_FILE");
  if (!path) return;
  const int fd = ::open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  void* p = ::mmap(nullptr, sizeof(std::uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p != MAP_FAILED) counter = static_cast<std::uint64_t*>(p);
}

}  // namespace

extern "C" {

void* malloc(std::size_t n) noexcept {
  count();
  return __libc_malloc(n);
}

void* calloc(std::size_t n, std::size_t size) noexcept {
  count();
  return __libc_calloc(n, size);
}

void* realloc(void* p, std::size_t n) noexcept {
  count();
  return __libc_realloc(p, n);
}

void* memalign(std::size_t align, std::size_t n) noexcept {
  count();
  return __libc_memalign(align, n);
}

void* aligned_alloc(std::size_t align, std::size_t n) noexcept {
  count();
  return __libc_memalign(align, n);
}

int posix_memalign(void** out, std::size_t align, std::size_t n) noexcept {
  count();
  if (align < sizeof(void*) || (align & (align - 1)) != 0) return EINVAL;
  void* p = __libc_memalign(align, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

}  // extern "C"
