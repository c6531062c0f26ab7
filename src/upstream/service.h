// Service: a named set of endpoints and the balancer that picks among the available ones.
// Thread: built once per config generation on the control thread, then shared read-only by
// every worker; picking touches only atomics (rotation counter, endpoint state).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/result.h"
#include "upstream/endpoint.h"

namespace gh::upstream {

struct PickInput {
  std::uint64_t hash = 0;                    // with Balance::Hash: the hashed key
  bool has_hash = false;                     // false: the hash key was absent; fall back to round robin
  const Endpoint* const* avoid = nullptr;    // endpoints already tried by this request
  std::size_t avoid_count = 0;
};

class Service {
 public:
  // Resolves instance hosts (blocking DNS: control thread only) and builds the balancer.
  static Result<std::shared_ptr<Service>> build(const config::ServiceConfig& cfg);

  const std::string& name() const noexcept { return config_.name; }
  const config::ServiceConfig& config() const noexcept { return config_; }
  const std::vector<std::shared_ptr<Endpoint>>& endpoints() const noexcept { return endpoints_; }

  // Picks an available endpoint, preferring one not in `in.avoid`; nullptr when none is available.
  Endpoint* pick(const PickInput& in) const;
  // Number of endpoints available now.
  std::size_t available_count() const noexcept;

  // Service-wide concurrency (max_in_flight): try_acquire fails when the limit is reached.
  bool try_acquire() const noexcept;
  void release() const noexcept;
  std::uint32_t in_flight() const noexcept { return in_flight_.load(std::memory_order_relaxed); }

  // Copies health state from a previous generation's endpoints with the same url.
  void inherit_health(const Service& previous);

 private:
  explicit Service(config::ServiceConfig cfg) : config_(std::move(cfg)) {}
  Endpoint* pick_hash(const PickInput& in, std::int64_t now) const;

  config::ServiceConfig config_;
  std::vector<std::shared_ptr<Endpoint>> endpoints_;
  std::vector<std::uint32_t> weighted_sequence_;              // smooth weighted round robin order
  std::vector<std::pair<std::uint64_t, std::uint32_t>> ring_; // hash ring: point -> endpoint index
  mutable std::atomic<std::uint64_t> rotation_{0};
  mutable std::atomic<std::uint32_t> in_flight_{0};
};

// 64-bit FNV-1a, for hash_on keys and the ring.
std::uint64_t hash_key(std::string_view key) noexcept;

}  // namespace gh::upstream
