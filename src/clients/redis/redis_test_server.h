// Test helpers for code that talks to Redis: a real redis-server child process on a free
// loopback port (killed by the destructor), and loops run until a call completes.
// Thread: each helper is used by the test's own thread.
// Failure: a redis-server that does not listen within 5 s, or a loop that runs dry, aborts the
// test binary (GH_CHECK); REQUIRE_REDIS_SERVER() fails a test when redis-server is missing.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "clients/redis/redis_client.h"
#include "core/check.h"

namespace gh::clients::redis::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A free loopback port: bound, read back, released.
inline std::uint16_t free_port() {
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

inline bool can_connect(std::uint16_t port) {
  asio::io_context io;
  tcp::socket s(io);
  boost::system::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  return !ec;
}

inline bool have_redis_server() { return ::system("command -v redis-server >/dev/null 2>&1") == 0; }

// A redis-server child process on 127.0.0.1:port.
class RedisServer {
 public:
  explicit RedisServer(std::uint16_t port = free_port(), std::vector<std::string> extra = {})
      : port_(port), extra_(std::move(extra)) {
    start();
  }
  ~RedisServer() { stop(); }

  void start() {
    GH_CHECK(pid_ <= 0);
    const std::string port = std::to_string(port_);
    pid_ = ::fork();
    GH_CHECK(pid_ >= 0);
    if (pid_ == 0) {
      int null = ::open("/dev/null", O_WRONLY);
      if (null >= 0) {
        ::dup2(null, 1);
        ::dup2(null, 2);
      }
      std::vector<std::string> args = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--loglevel", "warning"};
      args.insert(args.end(), extra_.begin(), extra_.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp("redis-server", argv.data());
      ::_exit(127);
    }
    const auto until = Clock::now() + 5s;  // bounded wait for the listener
    while (!can_connect(port_)) {
      GH_CHECK(Clock::now() < until);
      std::this_thread::sleep_for(10ms);
    }
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  std::uint16_t port_;
  std::vector<std::string> extra_;  // more redis-server arguments
  pid_t pid_ = -1;
};

// Runs `io` until `done()`: a connection's reader keeps the loop busy, so it never runs dry.
template <class F>
void run_until(asio::io_context& io, F done) {
  io.restart();
  while (!done()) GH_CHECK(io.run_one() > 0);
}

// Runs one command to completion on `io`.
inline Result<Reply> call(asio::io_context& io, const RedisClient& client, Command cmd) {
  std::optional<Result<Reply>> out;
  asio::co_spawn(io, client.command(io, std::move(cmd)), [&](std::exception_ptr e, Result<Reply> r) {
    if (e) std::rethrow_exception(e);
    out = std::move(r);
  });
  run_until(io, [&] { return out.has_value(); });
  return std::move(*out);
}

}  // namespace gh::clients::redis::test

// scripts/deps.sh installs redis-server; without it these tests fail rather than pass unchecked.
#define REQUIRE_REDIS_SERVER()                          \
  if (!::gh::clients::redis::test::have_redis_server()) \
  FAIL() << "redis-server is not installed (scripts/deps.sh installs it)"
