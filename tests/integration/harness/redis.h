// RedisServer: a real redis-server on a free loopback port, without persistence, for the tests
// of what gateways share through Redis (rate limits, registrations). Killed on destruction;
// restart() kills it and starts a fresh one (empty) on the same port, as a Redis restart
// without persistence does. Dies with the test process (PR_SET_PDEATHSIG).
// Thread: the test's main thread.
#pragma once

#include <sys/types.h>

#include <string>

namespace gh::integ {

class RedisServer {
 public:
  // PASSWORD, when not empty, is required of clients (--requirepass).
  explicit RedisServer(std::string password = "");
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Whether redis-server listens (false: not installed, or it did not start).
  bool ready() const { return ready_; }
  std::string url() const;
  int port() const { return port_; }
  // Kills the server (SIGKILL: nothing is saved).
  void kill();
  // Starts it again on the same port; true once it listens.
  bool start();

 private:
  std::string password_;
  int port_;
  pid_t pid_ = -1;
  bool ready_ = false;
};

}  // namespace gh::integ
