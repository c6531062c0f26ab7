// ChildProcess: a test fixture as a child process (`node server.mjs ...`, `python3 server.py
// ...`) whose standard output is read line by line. Killed (SIGTERM, then SIGKILL) when
// destroyed; it dies with the test process too (PR_SET_PDEATHSIG).
// Thread: one thread at a time (line() may run on a reader thread of the owner's).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "harness/net.h"

namespace gh::integ {

class ChildProcess {
 public:
  // ARGV[0] is looked up on PATH. A failed start leaves a process that has ended().
  explicit ChildProcess(std::vector<std::string> argv);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The next line of output, or nullopt at EOF or after TIMEOUT.
  std::optional<std::string> line(Millis timeout = std::chrono::seconds(10));
  // Its output ended (EOF): line() has nothing more to give once its buffer is read.
  bool ended() const { return fd_ < 0 || eof_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
};

}  // namespace gh::integ
