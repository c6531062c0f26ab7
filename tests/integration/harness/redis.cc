#include "harness/redis.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/net.h"

namespace gh::integ {

RedisServer::RedisServer(std::string password) : password_(std::move(password)), port_(free_port()) { start(); }

RedisServer::~RedisServer() { kill(); }

std::string RedisServer::url() const {
  return "redis://" + (password_.empty() ? std::string() : ":" + password_ + "@") + "127.0.0.1:" + std::to_string(port_);
}

void RedisServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
  ready_ = false;
}

bool RedisServer::start() {
  kill();
  const std::string port = std::to_string(port_);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) {
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    if (password_.empty())
      ::execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", static_cast<char*>(nullptr));
    else
      ::execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--requirepass", password_.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ready_ = pid_ > 0 && wait_for_port(port_, 5s);
  return ready_;
}

}  // namespace gh::integ
