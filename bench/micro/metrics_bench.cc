// What the request path pays to record one request's metrics (proxy::RouteMetrics::record:
// a status-class counter and two histograms, each in the worker's own cache lines), against the
// ~25 us of CPU a proxied request of the seed's chain costs (bench/metrics.sh).
#include <benchmark/benchmark.h>

#include "core/metrics.h"
#include "proxy/metrics.h"

namespace {

void BM_RecordRequest(benchmark::State& state) {
  gh::core::Metrics m(2);
  const gh::proxy::RouteMetrics route = gh::proxy::RouteMetrics::make(m, "users", "user");
  double seconds = 0.0002;
  for (auto _ : state) {
    route.record(1, 200, seconds, 0.12);
    seconds += 1e-9;  // not a constant the compiler could fold
  }
  benchmark::DoNotOptimize(route.duration->read());
}
BENCHMARK(BM_RecordRequest);

// The same with the bucket far from the first: the bucket search walks further.
void BM_RecordSlowRequest(benchmark::State& state) {
  gh::core::Metrics m(2);
  const gh::proxy::RouteMetrics route = gh::proxy::RouteMetrics::make(m, "users", "user");
  double seconds = 2.0;
  for (auto _ : state) {
    route.record(1, 503, seconds, 1900.0);
    seconds += 1e-9;
  }
  benchmark::DoNotOptimize(route.duration->read());
}
BENCHMARK(BM_RecordSlowRequest);

}  // namespace
