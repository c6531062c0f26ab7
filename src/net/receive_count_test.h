// Counts the receives (recv) made on one socket in this test process: the system calls that the
// event loop's reads cost, which the tests of Stream::async_read_head pin.
// Thread: any; one counter at a time.
#pragma once

namespace gh::net {

class ReceiveCount {
 public:
  explicit ReceiveCount(int fd) noexcept;
  ~ReceiveCount();
  ReceiveCount(const ReceiveCount&) = delete;
  ReceiveCount& operator=(const ReceiveCount&) = delete;

  int all() const noexcept;    // receives on the socket since the start or reset()
  int empty() const noexcept;  // those that found nothing (EAGAIN)
  void reset() noexcept;
};

}  // namespace gh::net
