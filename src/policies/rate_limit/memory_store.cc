#include "policies/rate_limit/memory_store.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <random>

#include "core/check.h"

namespace gh::policies {

namespace {

using u128 = unsigned __int128;
constexpr std::int64_t kNsPerSecond = 1'000'000'000;

// Whole seconds in `ns` nanoseconds, rounded up; 0 for none or less.
std::uint64_t ceil_seconds(std::int64_t ns) { return whole_seconds_up(std::chrono::nanoseconds(ns)); }

// How many buckets one incremental sweep may visit, and how many entries it looks at.
constexpr std::size_t kSweepBuckets = 16;
constexpr std::size_t kSweepEntries = 4;
// How many entries an eviction samples when the stripe is full.
constexpr std::size_t kEvictSample = 16;

}  // namespace

std::uint64_t siphash24(std::uint64_t k0, std::uint64_t k1, std::string_view data) noexcept {
  std::uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
  std::uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
  std::uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
  std::uint64_t v3 = k1 ^ 0x7465646279746573ULL;
  auto round = [&] {
    v0 += v1; v1 = std::rotl(v1, 13); v1 ^= v0; v0 = std::rotl(v0, 32);
    v2 += v3; v3 = std::rotl(v3, 16); v3 ^= v2;
    v0 += v3; v3 = std::rotl(v3, 21); v3 ^= v0;
    v2 += v1; v1 = std::rotl(v1, 17); v1 ^= v2; v2 = std::rotl(v2, 32);
  };
  auto load_le = [](const unsigned char* p, std::size_t n) {
    std::uint64_t m = 0;
    for (std::size_t i = 0; i < n; ++i) m |= std::uint64_t(p[i]) << (8 * i);
    return m;
  };
  auto load_word = [&](const unsigned char* p) {
    if constexpr (std::endian::native == std::endian::little) {
      std::uint64_t m;
      std::memcpy(&m, p, 8);
      return m;
    } else {
      return load_le(p, 8);
    }
  };
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t len = data.size();
  std::size_t blocks = len / 8;
  for (std::size_t i = 0; i < blocks; ++i) {
    std::uint64_t m = load_word(p + 8 * i);
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  std::uint64_t last = (std::uint64_t(len) << 56) | load_le(p + 8 * blocks, len % 8);
  v3 ^= last;
  round();
  round();
  v0 ^= last;
  v2 ^= 0xff;
  round();
  round();
  round();
  round();
  return v0 ^ v1 ^ v2 ^ v3;
}

MemoryStore::MemoryStore(Options opts)
    : clock_(opts.clock ? *opts.clock : core::Clock::real()),
      stripe_count_(std::bit_ceil(std::max<std::size_t>(opts.stripes, 1))),
      max_per_stripe_(std::max<std::size_t>(opts.max_entries_per_stripe, 1)),
      seed_{opts.hash_seed[0], opts.hash_seed[1]},
      stripes_(new Stripe[stripe_count_]) {
  if (seed_[0] == 0 && seed_[1] == 0) {
    std::random_device rd;
    seed_[0] = (std::uint64_t(rd()) << 32) ^ rd();
    seed_[1] = (std::uint64_t(rd()) << 32) ^ rd();
  }
}

boost::asio::awaitable<Result<Decision>> MemoryStore::hit(proxy::Worker&, std::string key, Rule rule) {
  co_return hit_now(key, rule);
}

Decision MemoryStore::apply(Entry& e, bool fresh, const Rule& rule, std::int64_t now) {
  GH_ASSERT(rule.limit > 0 && rule.window.count() > 0);
  const std::uint64_t limit = rule.limit;
  const std::int64_t window = rule.window.count();
  Decision d;
  d.limit = limit;
  d.window_seconds = ceil_seconds(window);
  e.algorithm = rule.algorithm;

  switch (rule.algorithm) {
    case Algorithm::FixedWindow: {
      if (fresh || now >= e.start + window) {
        e.start = now;
        e.count = 0;
      }
      d.allowed = e.count < limit;
      if (d.allowed) ++e.count;
      d.remaining = e.count >= limit ? 0 : limit - e.count;
      e.expires = e.start + window;
      d.reset_seconds = ceil_seconds(e.expires - now);
      if (!d.allowed) d.retry_after_seconds = d.reset_seconds;
      break;
    }

    case Algorithm::SlidingWindow: {
      if (fresh) {
        e.start = now;
        e.count = 0;
        e.prev = 0;
      } else if (now >= e.start + window) {
        std::int64_t k = (now - e.start) / window;
        e.prev = k == 1 ? e.count : 0;
        e.count = 0;
        e.start += k * window;
      }
      const u128 w = static_cast<u128>(window);
      const u128 budget = u128(limit) * w;
      auto used = [&](std::int64_t elapsed, std::uint64_t prev, std::uint64_t count) {
        return u128(prev) * u128(window - elapsed) + u128(count) * w;
      };
      const std::int64_t elapsed = now - e.start;
      d.allowed = used(elapsed, e.prev, e.count) + w <= budget;
      if (d.allowed) ++e.count;
      const u128 now_used = used(elapsed, e.prev, e.count);
      d.remaining = now_used >= budget ? 0 : static_cast<std::uint64_t>((budget - now_used) / w);
      e.expires = e.start + (e.count > 0 ? 2 * window : window);
      d.reset_seconds = (e.count > 0 || e.prev > 0) ? ceil_seconds(e.expires - now) : 0;
      if (!d.allowed) {
        // The first instant a request fits: later in this window once `prev` has decayed
        // enough, else in the next window, where this window's count becomes `prev`.
        std::int64_t at = -1;
        if (e.count + 1 <= limit && e.prev > 0) {
          u128 slack = u128(limit - e.count - 1) * w;  // room left for prev's weighted share
          u128 keep = slack / e.prev;                  // the largest (window - elapsed) that fits
          std::int64_t el = window - static_cast<std::int64_t>(std::min<u128>(keep, w));
          if (el < window) at = e.start + el;
        }
        if (at < 0) {
          std::int64_t el = 0;
          if (e.count > 0) {
            u128 keep = u128(limit - 1) * w / e.count;
            el = window - static_cast<std::int64_t>(std::min<u128>(keep, w));
          }
          at = e.start + window + el;
        }
        d.retry_after_seconds = std::max<std::uint64_t>(1, ceil_seconds(at - now));
      }
      break;
    }

    case Algorithm::TokenBucket: {
      // Times in units of 1/limit ns: one request costs `window` units, the bucket holds
      // limit × window units.
      const u128 now_s = u128(now) * limit;
      const u128 cost = static_cast<u128>(window);
      const u128 capacity = cost * limit;
      u128 tat = fresh ? now_s : std::max(now_s, u128(e.start) * limit + std::min<std::uint64_t>(e.count, limit - 1));
      const u128 next = tat + cost;
      d.allowed = next - now_s <= capacity;
      if (d.allowed) tat = next;
      const u128 ahead = tat - now_s;  // how far the bucket is from full
      d.remaining = ahead >= capacity ? 0 : static_cast<std::uint64_t>((capacity - ahead) / cost);
      const u128 per_second = u128(limit) * kNsPerSecond;
      d.reset_seconds = ahead == 0 ? 0 : static_cast<std::uint64_t>((ahead + per_second - 1) / per_second);
      if (!d.allowed) {
        const u128 wait = next - now_s - capacity;
        d.retry_after_seconds = std::max<std::uint64_t>(1, static_cast<std::uint64_t>((wait + per_second - 1) / per_second));
      }
      e.start = static_cast<std::int64_t>(tat / limit);
      e.count = static_cast<std::uint64_t>(tat % limit);
      e.prev = 0;
      e.expires = e.start + (e.count > 0 ? 1 : 0);
      break;
    }
  }
  return d;
}

Decision MemoryStore::hit_now(std::string_view key, const Rule& rule) {
  const std::uint64_t h = siphash24(seed_[0], seed_[1], key);
  // The map's buckets use the hash modulo a prime; the stripe takes the top bits.
  Stripe& s = stripes_[(h >> 32) & (stripe_count_ - 1)];
  std::lock_guard lock(s.mu);
  // Read under the lock, so the hits of one key see time move forward only.
  const std::int64_t now = clock_.now_ns();
  auto it = s.map.find(KeyView{key, h});
  if (it != s.map.end()) {
    Entry& e = it->second;
    bool fresh = e.expires <= now || e.algorithm != rule.algorithm;
    return apply(e, fresh, rule, now);
  }
  if (s.map.size() >= max_per_stripe_) evict_one(s, now);
  it = s.map.emplace(Key{std::string(key), h}, Entry{}).first;
  Decision d = apply(it->second, true, rule, now);
  sweep_some(s, now);  // never reclaims the entry just written: it expires after `now`
  return d;
}

void MemoryStore::sweep_some(Stripe& s, std::int64_t now) {
  const std::size_t buckets = s.map.bucket_count();
  const Key* expired[kSweepBuckets * 2];
  std::size_t n_expired = 0, seen = 0;
  // Never visit a bucket twice in one sweep (a small map has fewer buckets than kSweepBuckets):
  // the same entry collected twice would be erased twice.
  const std::size_t visit = std::min(kSweepBuckets, buckets);
  for (std::size_t i = 0; i < visit && seen < kSweepEntries; ++i) {
    std::size_t b = s.cursor++ % buckets;
    for (auto it = s.map.begin(b); it != s.map.end(b) && n_expired < std::size(expired); ++it) {
      ++seen;
      if (it->second.expires <= now) expired[n_expired++] = &it->first;
    }
  }
  // Erasing one element leaves pointers to the others valid.
  for (std::size_t i = 0; i < n_expired; ++i) s.map.erase(s.map.find(*expired[i]));
}

void MemoryStore::evict_one(Stripe& s, std::int64_t now) {
  const std::size_t before = s.map.size();
  sweep_some(s, now);  // expired entries first
  if (s.map.size() < before) return;
  // Every entry looked at is live: evict the one that expires soonest among a sample.
  const std::size_t buckets = s.map.bucket_count();
  const Key* victim = nullptr;
  std::int64_t soonest = std::numeric_limits<std::int64_t>::max();
  std::size_t seen = 0;
  for (std::size_t i = 0; i < buckets && seen < kEvictSample; ++i) {
    std::size_t b = s.cursor++ % buckets;
    for (auto it = s.map.begin(b); it != s.map.end(b); ++it) {
      ++seen;
      if (it->second.expires <= soonest) {
        soonest = it->second.expires;
        victim = &it->first;
      }
    }
  }
  GH_CHECK(victim != nullptr);
  s.map.erase(s.map.find(*victim));
}

std::size_t MemoryStore::size() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < stripe_count_; ++i) {
    std::lock_guard lock(stripes_[i].mu);
    n += stripes_[i].map.size();
  }
  return n;
}

std::size_t MemoryStore::purge_expired() {
  std::size_t removed = 0;
  for (std::size_t i = 0; i < stripe_count_; ++i) {
    Stripe& s = stripes_[i];
    std::lock_guard lock(s.mu);
    const std::int64_t now = clock_.now_ns();
    removed += std::erase_if(s.map, [now](const auto& kv) { return kv.second.expires <= now; });
  }
  return removed;
}

}  // namespace gh::policies
