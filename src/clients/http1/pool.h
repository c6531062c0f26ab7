// ConnectionPool: idle keep-alive connections to instances, for one worker.
// Thread: owned by its worker; never shared. Keyed by endpoint address, so connections
// survive a config reload. Most recently idle first (LIFO): warm connections are reused and
// the oldest age out.
#pragma once

#include "net/stream.h"

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace gh::clients::http1 {

// An idle connection older than this is closed instead of reused. Short, because many
// services (Node's http server among them) close idle keep-alive connections after 5 s.
constexpr std::int64_t kPoolIdleMillis = 4'000;
// Idle connections kept per instance and worker. HTTP/2 clients put many requests in flight on
// few connections, so the requests at an instance at once can far outnumber client
// connections; a cap below that concurrency turns every burst into connects and closes. An idle
// connection holds no buffer, and kPoolIdleMillis bounds how long it stays.
constexpr std::size_t kPoolMaxIdlePerEndpoint = 1024;

class ConnectionPool {
 public:
  struct Idle {
    Idle(net::Stream&& s, std::int64_t since) noexcept : stream(std::move(s)), since_ms(since) {}
    net::Stream stream;
    std::int64_t since_ms;
  };

  // Takes the most recently idle connection to `key`, if one is fresh enough. Its idle watch
  // (net::Stream) goes on until the user ends it.
  bool take(const std::string& key, std::int64_t now_ms, net::Stream& out);
  // Returns a connection that finished a response cleanly and may be reused; the event loop
  // watches it while it idles, if it did not already.
  void put(const std::string& key, net::Stream&& s, std::int64_t now_ms);
  // The event loop of this pool's worker (that of `s`), for Stream::expect_answer.
  const net::EventLoop& event_loop(net::Stream& s);
  // Closes connections idle for too long; called periodically by the worker.
  void sweep(std::int64_t now_ms);
  void clear();
  std::size_t idle_count() const;

 private:
  std::unordered_map<std::string, std::vector<Idle>> idle_;
  std::optional<net::EventLoop> loop_;  // found at the first use
};

}  // namespace gh::clients::http1
