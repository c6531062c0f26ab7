// RateLimitStore: where rate-limit counters live, behind one interface so the policy does not
// care whether they are in this process (MemoryStore) or shared through Redis (RedisStore).
// Thread: implementations are shared by every worker; `hit` may be called from any of them
// at once and must be exact across them.
// Failure: `hit` returns an Error (StoreUnavailable) when the store cannot decide; the
// policy's `on_store_error` then allows or refuses. It never throws for an outage.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/check.h"
#include "core/result.h"

namespace gh::proxy {
class Worker;
}

namespace gh::policies {

// How a key's requests are counted. In every algorithm a refused request consumes nothing.
//
// fixed_window: a key's window starts with its first request and lasts `window`; it admits
//   `limit` requests in it, then the next request opens a new window (express-rate-limit's
//   memory store). Bursts of up to 2 × limit can straddle two consecutive windows.
//   reset = until the window ends.
//
// sliding_window: the sliding window counter. Time is cut into consecutive windows from the
//   key's first request; a request is admitted when
//       prev × (window − elapsed) / window + current + 1 ≤ limit
//   where `prev` and `current` are the admitted counts of the previous and the current window
//   and `elapsed` is the time since the current window began (exact rational arithmetic, no
//   rounding). It assumes the previous window's requests were spread evenly across it.
//   Error bound: it never admits more than `limit` within one of the key's windows, so any
//   interval of length `window` holds fewer than 2 × limit admitted requests, and that worst
//   case needs all of the previous window's requests bunched at its very end; when they were
//   spread evenly it is exact, and when they came early it is stricter than a true sliding log.
//   reset = until both counts have decayed to zero (up to 2 × window).
//
// token_bucket: GCRA (the generic cell rate algorithm). A bucket of `limit` tokens, refilled
//   continuously at limit per window: bursts of up to `limit`, then one request every
//   window / limit. Kept as one theoretical arrival time per key, in units of 1/limit ns, so
//   it is exact for any limit. reset = until the bucket is full again.
enum class Algorithm { FixedWindow, SlidingWindow, TokenBucket };

std::string_view to_string(Algorithm a) noexcept;

// What one limit allows: `limit` requests per `window`, counted by `algorithm`.
struct Rule {
  std::uint64_t limit = 0;                 // > 0
  std::chrono::nanoseconds window{0};      // > 0
  Algorithm algorithm = Algorithm::FixedWindow;
};

// `d` in whole seconds, rounded up (0 for none or less): the unit of the RateLimit-* and
// Retry-After fields.
inline std::uint64_t whole_seconds_up(std::chrono::nanoseconds d) noexcept {
  const std::int64_t ns = d.count();
  return ns <= 0 ? 0 : static_cast<std::uint64_t>(ns / 1'000'000'000 + (ns % 1'000'000'000 != 0));
}

// The outcome of one hit. A refused hit consumes no budget.
struct Decision {
  bool allowed = false;
  std::uint64_t limit = 0;
  std::uint64_t remaining = 0;            // requests still admitted now, after this one
  std::uint64_t reset_seconds = 0;        // until the whole budget is back (rounded up)
  std::uint64_t retry_after_seconds = 0;  // refused: until the next request would be admitted
  std::uint64_t window_seconds = 0;       // the rule's window, rounded up to whole seconds
};

class RateLimitStore {
 public:
  virtual ~RateLimitStore() = default;
  // "memory" or "redis", for `gatehouse route` and logs.
  virtual std::string_view kind() const noexcept = 0;
  // Counts one request for `key` under `rule` and says whether it is admitted.
  // `worker` is the calling worker (a networked store uses that worker's own connection);
  // the caller awaits the call at once, so the reference outlives it.
  virtual boost::asio::awaitable<Result<Decision>> hit(proxy::Worker& worker, std::string key, Rule rule) = 0;
  // True when the store decides without waiting on I/O (the memory store): the policy then
  // calls hit_now and spends no coroutine on the call.
  virtual bool decides_at_once() const noexcept { return false; }
  // `hit`, synchronously. REQUIRES: decides_at_once(). The key is copied only when it is new.
  virtual Decision hit_now(std::string_view key, const Rule& rule) {
    GH_CHECK(!"hit_now on a store that waits on I/O");
    static_cast<void>(key);
    static_cast<void>(rule);
    return {};
  }
};

}  // namespace gh::policies
