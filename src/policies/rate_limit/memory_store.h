// MemoryStore: `store: memory`, the rate-limit counters of this process.
//
// SHARED MUTABLE HOT STRUCTURE: this is the one piece of mutable state on the request path that
// every worker touches (STYLE §5). It is exact across workers without a global lock: keys are
// spread over N stripes by a keyed hash, and each stripe has its own mutex and hash map. A
// stripe's lock is held only for one lookup and a few arithmetic operations, never across a
// co_await, and the stripes are cache-line aligned so two workers on different stripes do not
// share a line.
//
// Memory is bounded under a flood of distinct keys: every insert also sweeps a few buckets of
// its stripe and reclaims expired entries, and a stripe at its cap first evicts expired
// entries, then (only when every sampled entry is still live) the one that expires soonest.
// An expired entry is indistinguishable from an absent one, so reclaiming it changes no
// decision.
//
// Thread: every public member may be called from any thread at once.
// Failure: never fails; `hit` always returns a Decision.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/clock.h"
#include "policies/rate_limit/store.h"

namespace gh::policies {

class MemoryStore final : public RateLimitStore {
 public:
  struct Options {
    std::size_t stripes = 64;                     // rounded up to a power of two
    std::size_t max_entries_per_stripe = 8192;    // the hard cap: stripes × this entries in all
    const core::Clock* clock = nullptr;           // null: core::Clock::real(); must outlive the store
    std::uint64_t hash_seed[2] = {0, 0};          // {0, 0}: a random seed per store
  };

  MemoryStore() : MemoryStore(Options{}) {}
  explicit MemoryStore(Options opts);

  std::string_view kind() const noexcept override { return "memory"; }
  boost::asio::awaitable<Result<Decision>> hit(proxy::Worker& worker, std::string key, Rule rule) override;

  bool decides_at_once() const noexcept override { return true; }
  // The synchronous core of `hit`: counts one request for `key` at the clock's current time.
  Decision hit_now(std::string_view key, const Rule& rule) override;

  // Entries held, expired ones not yet reclaimed included. Takes each stripe's lock in turn.
  std::size_t size() const;
  // The most entries the store ever holds.
  std::size_t capacity() const noexcept { return stripe_count_ * max_per_stripe_; }
  // Reclaims every expired entry now; returns how many. For periodic housekeeping and tests.
  std::size_t purge_expired();

 private:
  struct Key {
    std::string text;
    std::uint64_t hash = 0;
    bool operator==(const Key& o) const noexcept { return hash == o.hash && text == o.text; }
  };
  // A key looked up without a copy of its text: a hit on a known key allocates nothing.
  struct KeyView {
    std::string_view text;
    std::uint64_t hash = 0;
  };
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(const Key& k) const noexcept { return static_cast<std::size_t>(k.hash); }
    std::size_t operator()(const KeyView& k) const noexcept { return static_cast<std::size_t>(k.hash); }
  };
  struct KeyEqual {
    using is_transparent = void;
    bool operator()(const Key& a, const Key& b) const noexcept { return a == b; }
    bool operator()(const KeyView& a, const Key& b) const noexcept { return a.hash == b.hash && a.text == b.text; }
    bool operator()(const Key& a, const KeyView& b) const noexcept { return (*this)(b, a); }
  };
  // Per algorithm: fixed_window uses start/count; sliding_window start/count/prev;
  // token_bucket keeps its theoretical arrival time as start + count/limit nanoseconds.
  struct Entry {
    std::int64_t start = 0;
    std::uint64_t count = 0;
    std::uint64_t prev = 0;
    std::int64_t expires = 0;  // from this instant on, the entry equals no entry
    Algorithm algorithm = Algorithm::FixedWindow;
  };
  using Map = std::unordered_map<Key, Entry, KeyHash, KeyEqual>;
  struct alignas(64) Stripe {
    mutable std::mutex mu;
    Map map;
    std::size_t cursor = 0;  // next bucket the incremental sweep looks at
  };

  // The algorithms: update `e` for one request at `now`; `fresh` = no live entry before.
  static Decision apply(Entry& e, bool fresh, const Rule& rule, std::int64_t now);
  // REQUIRES: s.mu held. Reclaims expired entries from the next few buckets.
  void sweep_some(Stripe& s, std::int64_t now);
  // REQUIRES: s.mu held and s.map at its cap. Frees at least one entry.
  void evict_one(Stripe& s, std::int64_t now);

  const core::Clock& clock_;
  std::size_t stripe_count_;
  std::size_t max_per_stripe_;
  std::uint64_t seed_[2];
  std::unique_ptr<Stripe[]> stripes_;

};

// SipHash-2-4 of `data` under the 128-bit key {k0, k1}: a keyed hash, so clients who choose
// their own key values (header:NAME) cannot aim them all at one bucket.
std::uint64_t siphash24(std::uint64_t k0, std::uint64_t k1, std::string_view data) noexcept;

}  // namespace gh::policies
