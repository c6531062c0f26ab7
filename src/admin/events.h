// EventsSummarizer: the one-line JSON summary GET /events sends each second (SPEC §6; its
// schema is in docs/metrics.md): requests per second, error shares and p50/p99 latency in
// total, per route and per service, instance health, rate-limit rejections and authentication
// failures per second by policy, open connections and tunnels.
// Rates come from the registry's counters and histograms as deltas since the previous tick (the
// first tick's: since construction), so the summarizer keeps the previous reading of every
// series. Series are never removed from the registry and a reload keeps them, so a delta is
// right across reloads; a series that appeared since the last tick counts whole.
// Thread: one summarizer per stream, used from one thread at a time (the admin server's
// control loop); it reads the registry and the snapshot as a scrape does.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "proxy/snapshot.h"

namespace gh::admin {

class EventsSummarizer {
 public:
  // REQUIRES: `metrics` and `clock` outlive the summarizer.
  explicit EventsSummarizer(const core::Metrics& metrics, const core::Clock& clock = core::Clock::real());

  // The summary of the interval since the previous call (or construction), as one line of
  // JSON without a newline; `snapshot` is the generation serving now (its routes, services
  // and policies name what is listed).
  std::string tick(const proxy::Snapshot& snapshot);

  // The q-quantile (0 < q <= 1) of the observations in `d`, in milliseconds, interpolated
  // linearly inside its bucket (from 0 for the first; the +Inf bucket answers its lower bound,
  // 30 s); nullopt when `d` holds none.
  static std::optional<double> quantile_ms(const core::Histogram::Data& d, double q);

 private:
  // A reading of every counter and histogram, by family name + '{' + label text.
  struct Reading {
    std::map<std::string, std::uint64_t, std::less<>> counters;
    std::map<std::string, core::Histogram::Data, std::less<>> histograms;
  };
  static Reading read(const std::vector<core::Metrics::FamilyData>& families);

  const core::Metrics& metrics_;
  const core::Clock& clock_;
  Reading previous_;
  core::Clock::Monotonic previous_time_;
};

}  // namespace gh::admin
