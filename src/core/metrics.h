// Metrics: the registry of named counters, gauges and histograms that outlives config
// generations (it belongs to app::Runtime), so a reload does not reset what a scrape reports.
//
// Every metric keeps one cell per writer: one per worker plus one for the control thread
// (Metrics::control_slot()), cache-line aligned so that neighbouring workers never share a
// line. Each cell has a single writer, which updates it with relaxed loads and stores (no
// locked instruction on the hot path); a reader sums the cells, and may see each one slightly
// stale (a histogram's count and sum may be one observation apart).
//
// A family is every series of one name; describe() gives it the TYPE and HELP a scrape prints
// once, and makes it appear in families() even before it has a series.
//
// Thread: describe(), counter(), gauge(), histogram(), collect() and families() may be called
// from any thread (a mutex guards the maps): take the objects once, when a snapshot, a policy
// or a worker is built, never per request. Counter::inc, Gauge::add and Histogram::observe
// REQUIRE: called on the thread that owns `slot`. A returned reference stays valid for the
// life of the registry, and the same name and labels always give the same object.
#pragma once

#include <array>
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

// A value that goes up and down (open connections, say). Each slot holds its writer's own
// balance, so the sum is exact once every writer's increments and decrements are in.
class Gauge {
 public:
  explicit Gauge(unsigned slots) : cells_(slots) {}
  // REQUIRES: on the slot's own thread.
  void add(unsigned slot, std::int64_t d) noexcept {
    std::atomic<std::int64_t>& c = cells_.local(slot);
    c.store(c.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  }
  std::int64_t value() const noexcept {
    std::int64_t sum = 0;
    cells_.for_each([&sum](const std::atomic<std::int64_t>& c) { sum += c.load(std::memory_order_relaxed); });
    return sum;
  }

 private:
  PerWorker<std::atomic<std::int64_t>> cells_;
};

// Durations in seconds, in fixed buckets suited to a gateway: from 100 us (a loopback proxy
// answers in about that) to 30 s (past every default timeout), 2.5x or 2x apart.
class Histogram {
 public:
  // Upper bounds (inclusive, as Prometheus' `le`), in seconds; a last bucket takes the rest (+Inf).
  static constexpr std::array<double, 17> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                     0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                     1,      2.5,     5,      10,    30};
  static constexpr std::size_t kBuckets = kBounds.size() + 1;

  explicit Histogram(unsigned slots) : cells_(slots) {}

  // The bucket `seconds` falls in: the first whose bound is >= seconds (kBuckets - 1: above all).
  static std::size_t bucket_of(double seconds) noexcept {
    std::size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) ++i;
    return i;
  }

  // REQUIRES: on the slot's own thread. A negative duration counts as 0, one past 10^9 s (a
  // clock gone wrong) as 10^9 s, so the sum in nanoseconds never overflows one observation.
  void observe(unsigned slot, double seconds) noexcept {
    if (!(seconds > 0)) seconds = 0;  // also NaN
    if (seconds > 1e9) seconds = 1e9;
    Cell& c = cells_.local(slot);
    std::atomic<std::uint64_t>& b = c.buckets[bucket_of(seconds)];
    b.store(b.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    const auto ns = static_cast<std::uint64_t>(seconds * 1e9 + 0.5);
    c.sum_ns.store(c.sum_ns.load(std::memory_order_relaxed) + ns, std::memory_order_relaxed);
  }

  struct Data {
    std::array<std::uint64_t, kBuckets> buckets{};  // observations per bucket (not cumulative)
    double sum = 0;                                 // seconds
    std::uint64_t count() const noexcept {
      std::uint64_t n = 0;
      for (auto b : buckets) n += b;
      return n;
    }
  };
  // The sums over every slot; callable from any thread.
  Data read() const noexcept {
    Data d;
    std::uint64_t sum_ns = 0;
    cells_.for_each([&](const Cell& c) {
      for (std::size_t i = 0; i < kBuckets; ++i) d.buckets[i] += c.buckets[i].load(std::memory_order_relaxed);
      sum_ns += c.sum_ns.load(std::memory_order_relaxed);
    });
    d.sum = static_cast<double>(sum_ns) / 1e9;
    return d;
  }

 private:
  struct Cell {
    std::array<std::atomic<std::uint64_t>, kBuckets> buckets{};
    std::atomic<std::uint64_t> sum_ns{0};  // integer nanoseconds: exact, and no float in the cell
  };
  PerWorker<Cell> cells_;
};

using Labels = std::vector<std::pair<std::string, std::string>>;

enum class MetricType { Counter, Gauge, Histogram };
// "counter", "gauge", "histogram", as a TYPE line writes it.
std::string_view type_name(MetricType t) noexcept;

// Appends the exposition format's escaping of a label value: backslash, double quote, newline.
void append_label_value(std::string& out, std::string_view v);

class Metrics {
 public:
  // REQUIRES: workers > 0.
  explicit Metrics(unsigned workers);

  unsigned workers() const noexcept { return workers_; }
  // The slot the control thread (reloads, health checks, JWKS fetches) writes.
  unsigned control_slot() const noexcept { return workers_; }

  // Gives the family `name` its type and help text. The first description stays; describing it
  // again with another type is a bug, as is asking it for a series of another type.
  void describe(std::string_view name, MetricType type, std::string_view help);

  // The series `name{labels}`, made on first use; later calls with the same name and labels
  // (from the next config generation, say) get the same object and its count so far. A family
  // not described takes the type of its first series and has no help text.
  // REQUIRES: `name` and each label name match [a-zA-Z_][a-zA-Z0-9_]* (they come from code,
  // not from users; label values may be anything and are escaped); a histogram has no `le`.
  Counter& counter(std::string_view name, const Labels& labels = {});
  Gauge& gauge(std::string_view name, const Labels& labels = {});
  Histogram& histogram(std::string_view name, const Labels& labels = {});

  struct Sample {
    std::string series;  // name{label="value",...}, as a scrape prints it
    std::uint64_t value = 0;
  };
  // Every counter with its current sum, ordered by name, then by labels.
  std::vector<Sample> collect() const;

  struct SeriesData {
    Labels labels;
    std::string label_text;         // label="value",... escaped, without braces; "" when no label
    std::uint64_t counter = 0;      // MetricType::Counter
    std::int64_t gauge = 0;         // MetricType::Gauge
    Histogram::Data histogram;      // MetricType::Histogram
  };
  struct FamilyData {
    std::string name;
    MetricType type = MetricType::Counter;
    std::string help;
    std::vector<SeriesData> series;  // ordered by label_text
  };
  // Every family (described ones even without a series) with the current value of each
  // series, ordered by name.
  std::vector<FamilyData> families() const;

 private:
  struct Series {
    Labels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  struct Family {
    MetricType type = MetricType::Counter;
    std::string help;
    std::map<std::string, Series, std::less<>> series;  // by label text
  };
  // The series' entry, made on first use. REQUIRES: mu_ held.
  Series& series(std::string_view name, MetricType type, const Labels& labels);

  unsigned workers_;
  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;  // by name
};

}  // namespace gh::core
