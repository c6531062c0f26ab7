// RedisStore: `store: redis`, rate-limit counters shared by every gateway instance that points
// at the same Redis (SPEC §4). Each decision is one Lua script run atomically by the server, on
// the server's clock, so instances never disagree about time or race on a counter. The
// algorithms are those of MemoryStore (store.h): a refused hit consumes nothing. Keys are
// `gatehouse:rl:<algorithm>:<key>`, where <key> begins with the policy's name, and expire with
// their window. Scripts are SCRIPT LOADed on connect and called with EVALSHA, with EVAL as
// the fallback on NOSCRIPT.
//
// Thread: each connection is used only by its own worker (RedisClient); the object itself is
// immutable after construction and shared by all workers.
// Failure: StoreUnavailable (or Timeout) within the client's timeout on any outage, never
// throws; the policy's on_store_error decides, and logs and counts each such decision.
// Limiting resumes by itself when Redis returns (the client reconnects with backoff).
//
// Precision: token_bucket is exact while limit × window in microseconds stays below 2^53
// (e.g. a million per day); beyond it the server's doubles round by under a microsecond.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "clients/redis/redis_client.h"
#include "policies/rate_limit/store.h"

namespace gh::policies {

class RedisStore final : public RateLimitStore {
 public:
  struct Options {
    std::string url;                            // redis://[user:pass@]host:port[/db]
    std::chrono::milliseconds timeout{100};     // per decision, connecting included
    std::chrono::milliseconds backoff_min{100};
    std::chrono::milliseconds backoff_max{2000};
  };

  // Error (InvalidConfig) for a malformed URL. Connects only when first used.
  static Result<std::shared_ptr<RedisStore>> create(const Options& opts);

  std::string_view kind() const noexcept override { return "redis"; }
  boost::asio::awaitable<Result<Decision>> hit(proxy::Worker& worker, std::string key, Rule rule) override;
  // The same on any loop; for tests and tools that have no Worker.
  // REQUIRES: called on the thread running `io`.
  boost::asio::awaitable<Result<Decision>> hit_on(boost::asio::io_context& io, std::string key, Rule rule) const;

  const clients::redis::RedisClient& client() const noexcept { return client_; }

  explicit RedisStore(clients::redis::RedisClient client);

 private:
  clients::redis::RedisClient client_;
};

// The Lua source of an algorithm's script (KEYS[1] = the key). fixed_window: ARGV = window in
// ms; it returns {count in the window, this one included; ms until the window ends}, and
// fixed_window_decision makes the Decision of them. The others: ARGV = limit, window in µs;
// they return {allowed (0|1), remaining, reset_seconds, retry_after_seconds}.
const std::string& redis_script(Algorithm a);

Decision fixed_window_decision(const Rule& rule, std::uint64_t count, std::chrono::milliseconds left);

}  // namespace gh::policies
