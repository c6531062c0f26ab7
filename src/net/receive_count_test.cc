// The process's recv, counted for one socket: this definition takes the place of the C
// library's for every caller in the test binary (Asio's reactor and the TLS BIO call recv) and
// makes the same system call.
#include "net/receive_count_test.h"

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace {
std::atomic<int> counted_fd{-1};
std::atomic<int> all_receives{0};
std::atomic<int> empty_receives{0};
}  // namespace

extern "C" ssize_t recv(int fd, void* buf, size_t n, int flags) {
  const long r = ::syscall(SYS_recvfrom, fd, buf, n, flags, nullptr, nullptr);
  if (fd == counted_fd.load(std::memory_order_relaxed)) {
    const int saved = errno;
    all_receives.fetch_add(1, std::memory_order_relaxed);
    if (r < 0 && (saved == EAGAIN || saved == EWOULDBLOCK)) empty_receives.fetch_add(1, std::memory_order_relaxed);
    errno = saved;
  }
  return static_cast<ssize_t>(r);
}

namespace gh::net {

ReceiveCount::ReceiveCount(int fd) noexcept {
  reset();
  counted_fd.store(fd, std::memory_order_relaxed);
}
ReceiveCount::~ReceiveCount() { counted_fd.store(-1, std::memory_order_relaxed); }
int ReceiveCount::all() const noexcept { return all_receives.load(std::memory_order_relaxed); }
int ReceiveCount::empty() const noexcept { return empty_receives.load(std::memory_order_relaxed); }
void ReceiveCount::reset() noexcept {
  all_receives.store(0, std::memory_order_relaxed);
  empty_receives.store(0, std::memory_order_relaxed);
}

}  // namespace gh::net
