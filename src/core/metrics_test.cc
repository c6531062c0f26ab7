#include "core/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

namespace gh::core {
namespace {

TEST(Metrics, CountersAreSummedOverWorkersAndKeptByName) {
  Metrics m(4);
  Counter& rejected = m.counter("gatehouse_rate_limit_rejected_total", {{"policy", "per-ip"}});
  std::vector<std::thread> workers;
  for (unsigned w = 0; w < 4; ++w)
    workers.emplace_back([&rejected, w] {
      for (int i = 0; i < 10000; ++i) rejected.inc(w);
    });
  for (auto& t : workers) t.join();
  rejected.inc(m.control_slot(), 2);
  EXPECT_EQ(rejected.value(), 40002u);
  // A second generation asking for the same series gets the same counter and its count.
  Counter& again = m.counter("gatehouse_rate_limit_rejected_total", {{"policy", "per-ip"}});
  EXPECT_EQ(&again, &rejected);
  EXPECT_NE(&m.counter("gatehouse_rate_limit_rejected_total", {{"policy", "other"}}), &rejected);
  m.counter("gatehouse_jwt_rejected_total").inc(0);
  m.counter("gatehouse_odd_total", {{"route", "a\"b\\c\nd"}});
  auto samples = m.collect();
  ASSERT_EQ(samples.size(), 4u);
  EXPECT_EQ(samples[0].series, "gatehouse_jwt_rejected_total");
  EXPECT_EQ(samples[0].value, 1u);
  EXPECT_EQ(samples[1].series, R"(gatehouse_odd_total{route="a\"b\\c\nd"})");
  EXPECT_EQ(samples[2].series, R"(gatehouse_rate_limit_rejected_total{policy="other"})");
  EXPECT_EQ(samples[3].series, R"(gatehouse_rate_limit_rejected_total{policy="per-ip"})");
  EXPECT_EQ(samples[3].value, 40002u);
  EXPECT_DEATH(m.counter("bad name"), "valid_name");
  EXPECT_DEATH(m.counter("ok", {{"bad-label", "x"}}), "valid_name");
}

TEST(Metrics, GaugesGoUpAndDownPerWorker) {
  Metrics m(3);
  Gauge& open = m.gauge("gatehouse_connections_open", {{"listener", ":3000"}});
  std::vector<std::thread> workers;
  for (unsigned w = 0; w < 3; ++w)
    workers.emplace_back([&open, w] {
      for (int i = 0; i < 10000; ++i) open.add(w, 1);
      for (int i = 0; i < 9990; ++i) open.add(w, -1);
    });
  for (auto& t : workers) t.join();
  EXPECT_EQ(open.value(), 30);
  EXPECT_EQ(&m.gauge("gatehouse_connections_open", {{"listener", ":3000"}}), &open);
  open.add(m.control_slot(), -30);
  EXPECT_EQ(open.value(), 0);
}

TEST(Histogram, BucketsAreInclusiveUpperBounds) {
  EXPECT_EQ(Histogram::bucket_of(0), 0u);
  EXPECT_EQ(Histogram::bucket_of(0.0001), 0u);  // le="0.0001" includes 100 us
  EXPECT_EQ(Histogram::bucket_of(0.00011), 1u);
  EXPECT_EQ(Histogram::bucket_of(0.0007), 3u);  // (0.0005, 0.001]
  EXPECT_EQ(Histogram::bucket_of(1.0), 12u);
  EXPECT_EQ(Histogram::bucket_of(30.0), 16u);
  EXPECT_EQ(Histogram::bucket_of(30.5), 17u);  // +Inf
  EXPECT_EQ(Histogram::kBuckets, 18u);
  for (std::size_t i = 1; i < Histogram::kBounds.size(); ++i) EXPECT_LT(Histogram::kBounds[i - 1], Histogram::kBounds[i]);
}

TEST(Histogram, ObservationsAreSummedOverWorkers) {
  Metrics m(2);
  Histogram& h = m.histogram("gatehouse_request_duration_seconds", {{"route", "users"}});
  std::vector<std::thread> workers;
  for (unsigned w = 0; w < 2; ++w)
    workers.emplace_back([&h, w] {
      for (int i = 0; i < 1000; ++i) h.observe(w, 0.002);   // (0.001, 0.0025]
      for (int i = 0; i < 10; ++i) h.observe(w, 45.0);      // +Inf
    });
  for (auto& t : workers) t.join();
  h.observe(m.control_slot(), -1);  // a clock step backwards: 0
  h.observe(m.control_slot(), std::numeric_limits<double>::quiet_NaN());
  Histogram::Data d = h.read();
  EXPECT_EQ(d.count(), 2022u);
  Histogram& wild = m.histogram("gatehouse_request_duration_seconds", {{"route", "wild"}});
  wild.observe(0, std::numeric_limits<double>::infinity());
  EXPECT_EQ(wild.read().buckets[17], 1u);
  EXPECT_DOUBLE_EQ(wild.read().sum, 1e9);
  EXPECT_EQ(d.buckets[0], 2u);
  EXPECT_EQ(d.buckets[4], 2000u);
  EXPECT_EQ(d.buckets[17], 20u);
  EXPECT_NEAR(d.sum, 2000 * 0.002 + 20 * 45.0, 1e-6);
  EXPECT_EQ(&m.histogram("gatehouse_request_duration_seconds", {{"route", "users"}}), &h);
  EXPECT_DEATH(m.histogram("gatehouse_x_seconds", {{"le", "1"}}), "le");
}

TEST(Metrics, FamiliesCarryTypeHelpAndTheirSeries) {
  Metrics m(1);
  m.describe("gatehouse_tls_handshake_failures_total", MetricType::Counter, "TLS handshakes that failed.");
  m.describe("gatehouse_connections_open", MetricType::Gauge, "Open client connections.");
  m.describe("gatehouse_connections_open", MetricType::Gauge, "Another text.");  // the first stays
  m.gauge("gatehouse_connections_open", {{"listener", "b"}}).add(0, 2);
  m.gauge("gatehouse_connections_open", {{"listener", "a"}}).add(0, 1);
  m.histogram("gatehouse_request_duration_seconds").observe(0, 0.5);
  m.counter("gatehouse_undescribed_total").inc(0, 7);

  auto fams = m.families();
  ASSERT_EQ(fams.size(), 4u);
  EXPECT_EQ(fams[0].name, "gatehouse_connections_open");
  EXPECT_EQ(fams[0].type, MetricType::Gauge);
  EXPECT_EQ(fams[0].help, "Open client connections.");
  ASSERT_EQ(fams[0].series.size(), 2u);
  EXPECT_EQ(fams[0].series[0].label_text, R"(listener="a")");
  EXPECT_EQ(fams[0].series[0].gauge, 1);
  EXPECT_EQ(fams[0].series[1].labels, (Labels{{"listener", "b"}}));
  EXPECT_EQ(fams[0].series[1].gauge, 2);
  EXPECT_EQ(fams[1].name, "gatehouse_request_duration_seconds");
  EXPECT_EQ(fams[1].type, MetricType::Histogram);
  ASSERT_EQ(fams[1].series.size(), 1u);
  EXPECT_EQ(fams[1].series[0].label_text, "");
  EXPECT_EQ(fams[1].series[0].histogram.count(), 1u);
  // Described, no series yet: listed, so that a scrape prints its HELP and TYPE.
  EXPECT_EQ(fams[2].name, "gatehouse_tls_handshake_failures_total");
  EXPECT_TRUE(fams[2].series.empty());
  EXPECT_EQ(fams[3].name, "gatehouse_undescribed_total");
  EXPECT_EQ(fams[3].type, MetricType::Counter);
  EXPECT_EQ(fams[3].help, "");
  EXPECT_EQ(fams[3].series[0].counter, 7u);

  // A name has one type.
  EXPECT_DEATH(m.counter("gatehouse_connections_open"), "type");
  EXPECT_DEATH(m.describe("gatehouse_undescribed_total", MetricType::Gauge, "x"), "type");
  EXPECT_EQ(type_name(MetricType::Histogram), "histogram");
}

}  // namespace
}  // namespace gh::core
