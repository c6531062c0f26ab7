// Metrics: a small registry of named counters that outlives config generations (it belongs to
// app::Runtime), so a reload does not reset what a scrape reports.
//
// A Counter keeps one relaxed atomic per writer: one slot per worker plus one for the control
// thread (Metrics::control_slot()). Each slot has a single writer, which increments it with a
// load and a store (no locked instruction on the hot path); a reader sums the slots, and may
// see each one slightly stale.
// Thread: counter() and collect() may be called from any thread (a mutex guards the name map;
// take counters once, when a policy is built, not per request). Counter::inc REQUIRES: called on
// the thread that owns `slot`. A Counter& stays valid for the life of the registry.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/per_worker.h"

namespace gh::core {

class Counter {
 public:
  explicit Counter(unsigned slots) : cells_(slots) {}
  // REQUIRES: on the slot's own thread (worker id, or Metrics::control_slot()).
  void inc(unsigned slot, std::uint64_t n = 1) noexcept {
    std::atomic<std::uint64_t>& c = cells_.local(slot);
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // The sum over every slot; callable from any thread.
  std::uint64_t value() const noexcept {
    std::uint64_t sum = 0;
    cells_.for_each([&sum](const std::atomic<std::uint64_t>& c) { sum += c.load(std::memory_order_relaxed); });
    return sum;
  }

 private:
  PerWorker<std::atomic<std::uint64_t>> cells_;
};

using Labels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  // REQUIRES: workers > 0.
  explicit Metrics(unsigned workers);

  unsigned workers() const noexcept { return workers_; }
  // The slot the control thread (reloads, health checks, JWKS fetches) increments.
  unsigned control_slot() const noexcept { return workers_; }

  // The counter `name{labels}`, made on first use; later calls with the same name and labels
  // (from the next config generation, say) get the same object and its count so far.
  // REQUIRES: `name` and each label name match [a-zA-Z_][a-zA-Z0-9_]* (they come from code,
  // not from users; label values may be anything and are escaped).
  Counter& counter(std::string_view name, const Labels& labels = {});

  struct Sample {
    std::string series;  // name{label="value",...}, as a scrape prints it
    std::uint64_t value = 0;
  };
  // Every counter with its current sum, ordered by series.
  std::vector<Sample> collect() const;

 private:
  unsigned workers_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Counter>, std::less<>> counters_;  // by series
};

}  // namespace gh::core
