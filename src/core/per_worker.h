// PerWorker<T>: one T per worker thread, indexed by the worker's id, for state that each worker
// keeps for itself (caches, counters, connections). Sized once, at construction, from the
// worker count; there is no maximum and no overflow case.
// Thread: slot i is touched only by worker i (no lock); another thread may read a slot only
// through what T makes safe to read concurrently (e.g. relaxed atomics with one writer, summed
// at scrape). Slots are cache-line aligned so that neighbouring workers do not share a line.
// Failure: an id at or past size() is a bug and crashes (GH_CHECK).
#pragma once

#include <cstddef>
#include <memory>

#include "core/check.h"

namespace gh::core {

inline constexpr std::size_t kCacheLine = 64;

template <class T>
class PerWorker {
 public:
  // REQUIRES: workers > 0. Each slot is value-initialized.
  explicit PerWorker(unsigned workers) : size_(workers), slots_(new Slot[workers]()) { GH_CHECK(workers > 0); }
  PerWorker(const PerWorker&) = delete;
  PerWorker& operator=(const PerWorker&) = delete;

  // REQUIRES: called on worker `worker_id` (or before the workers run).
  T& local(unsigned worker_id) noexcept {
    GH_CHECK(worker_id < size_);
    return slots_[worker_id].value;
  }
  const T& at(unsigned worker_id) const noexcept {
    GH_CHECK(worker_id < size_);
    return slots_[worker_id].value;
  }
  unsigned size() const noexcept { return size_; }

  // Calls f(const T&) for every slot, in id order; e.g. to sum counters.
  template <class F>
  void for_each(F&& f) const {
    for (unsigned i = 0; i < size_; ++i) f(slots_[i].value);
  }

 private:
  struct alignas(kCacheLine) Slot {
    T value{};
  };
  unsigned size_;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace gh::core
