#include "admin/events.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "admin/metrics_test_util.h"
#include "proxy/metrics.h"

namespace gh::admin {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

json parse(const std::string& line) {
  EXPECT_EQ(line.find('\n'), std::string::npos) << "one line";
  json j = json::parse(line, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << line;
  return j;
}

const json& named(const json& list, const std::string& name) {
  for (const auto& e : list)
    if (e["name"] == name) return e;
  static const json none;
  ADD_FAILURE() << "no entry " << name << " in " << list.dump();
  return none;
}

// 100 requests on `users`: 50 at 0.3 ms, 49 at 2 ms, 1 at 40 ms; 90 2xx, 6 4xx, 4 5xx.
void hundred_requests(const proxy::RouteMetrics& users) {
  for (int i = 0; i < 100; ++i) {
    const double seconds = i < 50 ? 0.0003 : i < 99 ? 0.002 : 0.04;
    const int status = i < 90 ? 200 : i < 96 ? 429 : 502;
    users.record(static_cast<unsigned>(i % 2), status, seconds, 0.1);
  }
}

TEST(EventsSummarizer, RatesSharesAndPercentilesOverTheInterval) {
  testing::Gateway gw;
  gw.build();
  gw.clock.set_wall(core::Clock::Wall(std::chrono::milliseconds(1'796'544'000'250)));  // 2026-12-06T08:00:00.250Z
  EventsSummarizer events(gw.metrics(), gw.clock);
  gw.clock.advance(2s);

  hundred_requests(gw.route(0));
  for (int i = 0; i < 10; ++i) gw.snapshot->metrics->unmatched.record(0, 404, 0.00005, -1);
  gw.metrics().counter(proxy::kRateLimitRejections, {{"policy", "per-ip"}}).inc(0, 4);
  gw.metrics().counter(proxy::kAuthFailures, {{"policy", "auth"}, {"reason", "token_missing"}}).inc(1, 2);
  gw.metrics().counter(proxy::kAuthFailures, {{"policy", "auth"}, {"reason", "token_invalid"}}).inc(0, 4);
  gw.snapshot->metrics->connections_open[0]->add(0, 7);
  gw.snapshot->metrics->connections_open[0]->add(1, 5);
  gw.snapshot->metrics->websocket_tunnels->add(1, 1);
  gw.snapshot->services[0]->endpoints()[1]->active_healthy = false;
  gw.snapshot->services[0]->endpoints()[0]->in_flight = 3;

  json j = parse(events.tick(*gw.snapshot));
  SCOPED_TRACE(j.dump(2));
  EXPECT_EQ(j["time"], "2026-12-06T08:00:02.250Z");
  EXPECT_DOUBLE_EQ(j["interval_s"].get<double>(), 2.0);
  EXPECT_EQ(j["generation"], gw.snapshot->generation);

  // Totals: 110 requests over 2 s, 16 4xx (6 + the 10 that matched no route), 4 5xx.
  const json& t = j["totals"];
  EXPECT_DOUBLE_EQ(t["rps"].get<double>(), 55.0);
  EXPECT_NEAR(t["error_rate_4xx"].get<double>(), 16.0 / 110, 1e-4);
  EXPECT_NEAR(t["error_rate_5xx"].get<double>(), 4.0 / 110, 1e-4);
  // p50: the 55th of 110 is among the 0.3 ms ones, in (0.25, 0.5]; p99 among the 2 ms, in (1, 2.5].
  EXPECT_GT(t["p50_ms"].get<double>(), 0.25);
  EXPECT_LE(t["p50_ms"].get<double>(), 0.5);
  EXPECT_GT(t["p99_ms"].get<double>(), 1.0);
  EXPECT_LE(t["p99_ms"].get<double>(), 2.5);

  ASSERT_EQ(j["routes"].size(), 2u);
  const json& users = named(j["routes"], "users");
  EXPECT_EQ(users["service"], "user");
  EXPECT_DOUBLE_EQ(users["rps"].get<double>(), 50.0);
  EXPECT_DOUBLE_EQ(users["error_rate_4xx"].get<double>(), 0.06);
  EXPECT_DOUBLE_EQ(users["error_rate_5xx"].get<double>(), 0.04);
  // Linear inside the bucket: the 50th of 100 closes (0.25, 0.5]; the 99th closes (1, 2.5].
  EXPECT_DOUBLE_EQ(users["p50_ms"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(users["p99_ms"].get<double>(), 2.5);
  const json& orders = named(j["routes"], "orders");
  EXPECT_EQ(orders["service"], "order");
  EXPECT_DOUBLE_EQ(orders["rps"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(orders["error_rate_4xx"].get<double>(), 0.0);
  EXPECT_TRUE(orders["p50_ms"].is_null());
  EXPECT_TRUE(orders["p99_ms"].is_null());

  ASSERT_EQ(j["services"].size(), 2u);
  const json& user = named(j["services"], "user");
  EXPECT_DOUBLE_EQ(user["rps"].get<double>(), 50.0);
  EXPECT_DOUBLE_EQ(user["error_rate_5xx"].get<double>(), 0.04);
  EXPECT_DOUBLE_EQ(user["p99_ms"].get<double>(), 2.5);
  EXPECT_EQ(user["healthy"], 1);
  EXPECT_EQ(user["total"], 2);
  ASSERT_EQ(user["instances"].size(), 2u);
  EXPECT_EQ(user["instances"][0], json::parse(R"({"url":"http://127.0.0.1:3001","source":"static","healthy":true,"in_flight":3})"));
  EXPECT_EQ(user["instances"][1]["healthy"], false);
  const json& order = named(j["services"], "order");
  EXPECT_DOUBLE_EQ(order["rps"].get<double>(), 0.0);
  EXPECT_TRUE(order["p50_ms"].is_null());
  EXPECT_EQ(order["healthy"], 1);

  EXPECT_EQ(j["rate_limit_rejections"], json::parse(R"({"per-ip": 2})"));
  EXPECT_EQ(j["auth_failures"], json::parse(R"({"auth": 3, "keys": 0, "admins": 0})"));
  EXPECT_EQ(j["connections_open"], 12);
  EXPECT_EQ(j["websocket_tunnels_open"], 1);

  // The next second: no request. Rates fall to 0, percentiles to null; gauges stay.
  gw.clock.advance(1s);
  json quiet = parse(events.tick(*gw.snapshot));
  EXPECT_DOUBLE_EQ(quiet["interval_s"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(quiet["totals"]["rps"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(quiet["totals"]["error_rate_4xx"].get<double>(), 0.0);
  EXPECT_TRUE(quiet["totals"]["p50_ms"].is_null());
  EXPECT_TRUE(quiet["totals"]["p99_ms"].is_null());
  EXPECT_DOUBLE_EQ(named(quiet["routes"], "users")["rps"].get<double>(), 0.0);
  EXPECT_EQ(quiet["rate_limit_rejections"], json::parse(R"({"per-ip": 0})"));
  EXPECT_EQ(quiet["connections_open"], 12);
}

// A reload builds a new snapshot: the same route names keep their series, so the next
// interval counts only what happened in it, whichever generation served it.
TEST(EventsSummarizer, DeltasGoOnAcrossAReload) {
  testing::Gateway gw;
  gw.build();
  EventsSummarizer events(gw.metrics(), gw.clock);
  hundred_requests(gw.route(0));
  gw.clock.advance(1s);
  EXPECT_DOUBLE_EQ(parse(events.tick(*gw.snapshot))["totals"]["rps"].get<double>(), 100.0);

  const auto old = gw.snapshot;
  gw.build();  // a reload: same routes, a new generation
  ASSERT_NE(gw.snapshot->generation, old->generation);
  EXPECT_EQ(gw.route(0).duration, old->routes[0].metrics->duration);  // the same series
  for (int i = 0; i < 10; ++i) gw.route(0).record(0, 200, 0.001, 0.5);
  for (int i = 0; i < 5; ++i) old->routes[0].metrics->record(1, 500, 0.001, 0.5);  // in flight on the old one
  gw.clock.advance(500ms);
  json j = parse(events.tick(*gw.snapshot));
  EXPECT_EQ(j["generation"], gw.snapshot->generation);
  EXPECT_DOUBLE_EQ(j["interval_s"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j["totals"]["rps"].get<double>(), 30.0);
  EXPECT_NEAR(j["totals"]["error_rate_5xx"].get<double>(), 5.0 / 15, 1e-4);
  EXPECT_DOUBLE_EQ(named(j["routes"], "users")["rps"].get<double>(), 30.0);
}

// Before any request: a summary of zeros and nulls that is still valid JSON of the schema.
TEST(EventsSummarizer, NothingYet) {
  testing::Gateway gw;
  gw.build();
  EventsSummarizer events(gw.metrics(), gw.clock);
  json j = parse(events.tick(*gw.snapshot));  // no time has passed: rates are 0, not NaN
  EXPECT_DOUBLE_EQ(j["interval_s"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(j["totals"]["rps"].get<double>(), 0.0);
  EXPECT_TRUE(j["totals"]["p50_ms"].is_null());
  EXPECT_EQ(j["connections_open"], 0);
  EXPECT_EQ(j["rate_limit_rejections"], json::parse(R"({"per-ip": 0})"));
}

TEST(EventsSummarizer, QuantilesInterpolateInsideTheirBucket) {
  core::Histogram::Data d;
  EXPECT_FALSE(EventsSummarizer::quantile_ms(d, 0.5));
  d.buckets[0] = 4;  // [0, 0.1 ms]
  EXPECT_DOUBLE_EQ(*EventsSummarizer::quantile_ms(d, 0.5), 0.05);
  d.buckets[core::Histogram::kBuckets - 1] = 4;  // above 30 s
  EXPECT_DOUBLE_EQ(*EventsSummarizer::quantile_ms(d, 0.99), 30000.0);
  EXPECT_DOUBLE_EQ(*EventsSummarizer::quantile_ms(d, 0.5), 0.1);  // the 4th closes the first bucket
}

}  // namespace
}  // namespace gh::admin
