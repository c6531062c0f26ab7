// route_bench: RouteTable::match and normalize_path cost, for a small and a large route table.
// Each match benchmark runs at 100 and 10,000 routes; the two figures should be close, showing that
// lookup does not grow with the number of routes (except regex hits, which walk the regex list).
//
// Table of N routes, in file order: N/100 regexes (at least 4) "/re<k>/[0-9]+/items", then
// alternately a prefix "/svc<i>/v1/items" (every tenth limited to GET and POST) and an exact path
// "/svc<i>/v1/status".

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "routing/normalize.h"
#include "routing/route_table.h"

namespace gh::routing {
namespace {

struct Table {
  std::shared_ptr<const RouteTable> table;
  int last_prefix = -1;  // service number of the last prefix route, and its index
  int last_prefix_index = -1;
  int last_exact = -1;
  int last_exact_index = -1;
  int last_regex = -1;
  int last_regex_index = -1;
};

const Table& table_of(int n) {
  static std::map<int, Table> cache;
  auto [it, inserted] = cache.try_emplace(n);
  Table& t = it->second;
  if (!inserted) return t;

  std::vector<config::RouteConfig> routes;
  routes.reserve(static_cast<std::size_t>(n));
  const int regexes = std::max(4, n / 100);
  for (int k = 0; k < regexes; ++k) {
    config::RouteConfig r{.kind = config::MatchKind::Regex, .pattern = "/re" + std::to_string(k) + "/[0-9]+/items"};
    t.last_regex = k;
    t.last_regex_index = static_cast<int>(routes.size());
    routes.push_back(std::move(r));
  }
  for (int i = 0; static_cast<int>(routes.size()) < n; ++i) {
    config::RouteConfig r;
    if (i % 2 == 0) {
      r.kind = config::MatchKind::Prefix;
      r.pattern = "/svc" + std::to_string(i) + "/v1/items";
      if (i % 20 == 0) r.methods = {"GET", "POST"};
      t.last_prefix = i;
      t.last_prefix_index = static_cast<int>(routes.size());
    } else {
      r.kind = config::MatchKind::Exact;
      r.pattern = "/svc" + std::to_string(i) + "/v1/status";
      t.last_exact = i;
      t.last_exact_index = static_cast<int>(routes.size());
    }
    routes.push_back(std::move(r));
  }
  std::string error;
  t.table = RouteTable::build(routes, &error);
  if (!t.table) std::abort();
  return t;
}

void run_match(benchmark::State& state, const std::string& path, int want) {
  const Table& t = table_of(static_cast<int>(state.range(0)));
  const MatchInput in{.method = "GET", .host = "api.example.com:8080", .path = path};
  if (t.table->match(in) != want) {
    state.SkipWithError("unexpected route");
    return;
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(in);
    int r = t.table->match(in);
    benchmark::DoNotOptimize(r);
  }
  state.counters["routes"] = static_cast<double>(t.table->size());
}

void BM_MatchPrefixDeep(benchmark::State& state) {
  const Table& t = table_of(static_cast<int>(state.range(0)));
  run_match(state, "/svc" + std::to_string(t.last_prefix) + "/v1/items/12345/details", t.last_prefix_index);
}

void BM_MatchExact(benchmark::State& state) {
  const Table& t = table_of(static_cast<int>(state.range(0)));
  run_match(state, "/svc" + std::to_string(t.last_exact) + "/v1/status", t.last_exact_index);
}

void BM_MatchRegexLast(benchmark::State& state) {
  const Table& t = table_of(static_cast<int>(state.range(0)));
  run_match(state, "/re" + std::to_string(t.last_regex) + "/42/items", t.last_regex_index);
}

void BM_MissUnknownService(benchmark::State& state) {
  run_match(state, "/nothing/here/at/all", -1);
}

void BM_MissNearPrefix(benchmark::State& state) {
  const Table& t = table_of(static_cast<int>(state.range(0)));
  run_match(state, "/svc" + std::to_string(t.last_prefix) + "/v1/itemsX/1", -1);
}

BENCHMARK(BM_MatchPrefixDeep)->Arg(100)->Arg(10000);
BENCHMARK(BM_MatchExact)->Arg(100)->Arg(10000);
BENCHMARK(BM_MatchRegexLast)->Arg(100)->Arg(10000);
BENCHMARK(BM_MissUnknownService)->Arg(100)->Arg(10000);
BENCHMARK(BM_MissNearPrefix)->Arg(100)->Arg(10000);

void BM_Build(benchmark::State& state) {
  // Build cost is paid once per config reload, off the hot path.
  std::vector<config::RouteConfig> routes;
  for (int i = 0; i < state.range(0); ++i)
    routes.push_back({.kind = config::MatchKind::Prefix, .pattern = "/svc" + std::to_string(i) + "/v1/items"});
  for (auto _ : state) {
    auto table = RouteTable::build(routes, nullptr);
    benchmark::DoNotOptimize(table);
  }
}
BENCHMARK(BM_Build)->Arg(100)->Arg(10000)->Unit(benchmark::kMicrosecond);

void BM_NormalizeClean(benchmark::State& state) {
  std::string out;
  for (auto _ : state) {
    bool ok = normalize_path("/api/v1/users/12345/orders", out);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_NormalizeClean);

void BM_NormalizeMessy(benchmark::State& state) {
  std::string out;
  for (auto _ : state) {
    bool ok = normalize_path("//api/v1/./users/%61bc/../12345/%3a/orders/", out);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_NormalizeMessy);

}  // namespace
}  // namespace gh::routing
