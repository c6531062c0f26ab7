#include "admin/prometheus.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "admin/metrics_test_util.h"
#include "proxy/metrics.h"

namespace gh::admin {
namespace {

// What `promtool check metrics` says of a scrape: its exit status and output.
struct PromtoolVerdict {
  int status = -1;
  std::string output;
};

// Runs promtool on `text`. Fails the test (never skips) when promtool is missing: the check is
// part of what the metrics promise (scripts/deps.sh installs Debian's `prometheus` package).
PromtoolVerdict promtool_check(const std::string& text) {
  const std::string promtool = GH_PROMTOOL;
  if (promtool.empty() || promtool.find("NOTFOUND") != std::string::npos || ::access(promtool.c_str(), X_OK) != 0) {
    ADD_FAILURE() << "promtool not found (got \"" << promtool
                  << "\"): install Debian's `prometheus` package (scripts/deps.sh) and configure again";
    return {};
  }
  char path[] = "/tmp/gh-scrape-XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) {
    ADD_FAILURE() << "mkstemp failed";
    return {};
  }
  ::close(fd);
  std::ofstream(path, std::ios::binary) << text;
  const std::string cmd = promtool + " check metrics < " + path + " 2>&1";
  PromtoolVerdict v;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) v.output.append(buf, n);
    const int raw = ::pclose(p);
    v.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  }
  std::remove(path);
  return v;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::size_t count_lines(const std::string& text, const std::string& prefix) {
  std::size_t n = 0;
  for (const auto& l : lines_of(text)) n += l.rfind(prefix, 0) == 0 ? 1 : 0;
  return n;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines_of(text))
    if (l == line) return true;
  return false;
}

TEST(Prometheus, ARealisticScrapePassesPromtool) {
  testing::Gateway gw;
  gw.build();
  const auto& users = gw.route(0);
  // Worker 0 and worker 1 both serve: the scrape sums them.
  users.record(0, 200, 0.0003, 0.2);
  users.record(1, 200, 0.002, 1.5);
  users.record(1, 404, 0.0001, 0.05);
  users.record(0, 503, 0.04, -1);  // no instance was asked
  users.record(0, 101, 12.0, 0.4);  // a WebSocket tunnel's whole life
  gw.snapshot->metrics->unmatched.record(1, 404, 0.00005, -1);
  gw.snapshot->metrics->connections_open[0]->add(0, 3);
  gw.snapshot->metrics->connections_open[0]->add(1, 2);
  gw.snapshot->metrics->websocket_tunnels->add(0, 1);
  gw.metrics().counter(proxy::kAuthFailures, {{"policy", "auth"}, {"reason", "token_expired"}}).inc(1, 2);
  gw.metrics().counter(proxy::kRateLimitRejections, {{"policy", "per-ip"}}).inc(0, 7);
  gw.runtime.count_reload(true);
  gw.runtime.count_reload(false);
  gw.runtime.count_reload(true);
  // One instance of `user` fails its active check.
  gw.snapshot->services[0]->endpoints()[1]->active_healthy = false;

  const std::string text = render_prometheus(gw.metrics(), *gw.snapshot, gw.clock);
  SCOPED_TRACE(text);

  EXPECT_TRUE(has_line(text, R"(gatehouse_requests_total{route="users",service="user",code="2xx"} 2)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_requests_total{route="users",service="user",code="1xx"} 1)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_requests_total{route="users",service="user",code="4xx"} 1)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_requests_total{route="users",service="user",code="5xx"} 1)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_requests_total{route="users",service="user",code="3xx"} 0)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_requests_total{route="orders",service="order",code="2xx"} 0)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_requests_total{route="",service="",code="4xx"} 1)"));
  // Cumulative buckets; count = +Inf bucket; sum in seconds.
  EXPECT_TRUE(has_line(text, R"(gatehouse_request_duration_seconds_bucket{route="users",le="0.0001"} 1)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_request_duration_seconds_bucket{route="users",le="0.0005"} 2)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_request_duration_seconds_bucket{route="users",le="0.0025"} 3)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_request_duration_seconds_bucket{route="users",le="0.05"} 4)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_request_duration_seconds_bucket{route="users",le="10"} 4)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_request_duration_seconds_bucket{route="users",le="30"} 5)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_request_duration_seconds_bucket{route="users",le="+Inf"} 5)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_request_duration_seconds_count{route="users"} 5)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_request_duration_seconds_sum{route="users"} 12.0424)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_upstream_duration_seconds_count{route="users"} 4)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_upstream_duration_seconds_bucket{route="users",le="0.0001"} 1)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_upstream_duration_seconds_count{route=""} 0)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_connections_open{listener="127.0.0.1:0"} 5)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_websocket_tunnels_open 1)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_auth_failures_total{policy="auth",reason="token_expired"} 2)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_auth_failures_total{policy="keys",reason="invalid_api_key"} 0)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_auth_failures_total{policy="admins",reason="insufficient_role"} 0)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_rate_limit_rejections_total{policy="per-ip"} 7)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_rate_limit_store_errors_total{policy="per-ip"} 0)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_config_reloads_total{result="success"} 2)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_config_reloads_total{result="failure"} 1)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_instance_healthy{service="user",instance="http://127.0.0.1:3001"} 1)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_instance_healthy{service="user",instance="http://127.0.0.1:3002"} 0)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_instance_healthy{service="order",instance="http://127.0.0.1:3003"} 1)"));
  // No TLS listener: the family is there, with no series.
  EXPECT_TRUE(has_line(text, "# TYPE gatehouse_tls_handshake_failures_total counter"));
  EXPECT_EQ(count_lines(text, "gatehouse_tls_handshake_failures_total"), 0u);

  // Every family of SPEC §6 once, with its help and type.
  for (const char* family :
       {"gatehouse_requests_total", "gatehouse_request_duration_seconds", "gatehouse_upstream_duration_seconds",
        "gatehouse_instance_healthy", "gatehouse_rate_limit_rejections_total", "gatehouse_rate_limit_store_errors_total",
        "gatehouse_auth_failures_total", "gatehouse_connections_open", "gatehouse_websocket_tunnels_open",
        "gatehouse_config_reloads_total", "gatehouse_tls_handshake_failures_total"}) {
    EXPECT_EQ(count_lines(text, std::string("# HELP ") + family + " "), 1u) << family;
    EXPECT_EQ(count_lines(text, std::string("# TYPE ") + family + " "), 1u) << family;
  }
  EXPECT_TRUE(has_line(text, "# TYPE gatehouse_request_duration_seconds histogram"));
  EXPECT_TRUE(has_line(text, "# TYPE gatehouse_instance_healthy gauge"));
  // Every sample line names a gatehouse_ series.
  for (const auto& l : lines_of(text)) {
    if (!l.empty() && l[0] != '#') {
      EXPECT_EQ(l.rfind("gatehouse_", 0), 0u) << l;
    }
  }

  PromtoolVerdict v = promtool_check(text);
  EXPECT_EQ(v.status, 0) << v.output;
  EXPECT_EQ(v.output, "");
}

TEST(Prometheus, LabelValuesAndHelpAreEscaped) {
  testing::Gateway gw;
  gw.build(R"(
listen: 127.0.0.1:0
access_log: off
services:
  api:
    instances: [http://127.0.0.1:3001]
routes:
  - name: "say \"hi\" \\ there\nnow"
    path: /hi
    service: api
)");
  gw.route(0).record(0, 200, 0.001, 0.5);
  gw.metrics().describe("gatehouse_odd_total", core::MetricType::Counter, "A help text with \\ and\na newline.");
  gw.metrics().counter("gatehouse_odd_total").inc(0);
  const std::string text = render_prometheus(gw.metrics(), *gw.snapshot, gw.clock);
  SCOPED_TRACE(text);
  EXPECT_TRUE(has_line(text, R"(gatehouse_requests_total{route="say \"hi\" \\ there\nnow",service="api",code="2xx"} 1)"));
  EXPECT_TRUE(has_line(text, R"(# HELP gatehouse_odd_total A help text with \\ and\na newline.)"));
  PromtoolVerdict v = promtool_check(text);
  EXPECT_EQ(v.status, 0) << v.output;
}

// The check this file relies on does catch a bad scrape.
TEST(Prometheus, PromtoolReportsProblems) {
  core::Metrics m(1);
  m.describe("gatehouse_requests", core::MetricType::Counter, "A counter without _total.");
  m.counter("gatehouse_requests").inc(0);
  testing::Gateway gw;
  gw.build();
  PromtoolVerdict v = promtool_check(render_prometheus(m, *gw.snapshot, gw.clock));
  EXPECT_NE(v.status, 0);
  EXPECT_NE(v.output.find("_total"), std::string::npos) << v.output;
}

TEST(Prometheus, AnInstanceOfAHostNameCarriesItsAddress) {
  upstream::Endpoint e;
  e.url = "http://127.0.0.1:3001";
  e.pool_key = "127.0.0.1:3001";
  EXPECT_EQ(instance_label(e), "http://127.0.0.1:3001");
  e.url = "http://api.internal:3001";
  e.pool_key = "10.0.0.5:3001";
  e.source = upstream::Origin::Dns;
  EXPECT_EQ(instance_label(e), "http://api.internal:3001 (10.0.0.5:3001)");
}

}  // namespace
}  // namespace gh::admin
