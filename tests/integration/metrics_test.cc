// GET /metrics on the admin listener, end to end (SPEC §6): the real binary with `admin:`, real
// loopback services, traffic of known statuses; the scrape counts exactly that, passes
// `promtool check metrics`, and keeps its counts across a SIGHUP reload.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "harness/assertions.h"

#ifndef GH_PROMTOOL
#error "GH_PROMTOOL must name promtool (or its NOTFOUND)"
#endif

namespace gh::integ {
namespace {

constexpr const char* kToken = "metrics-test-admin-token";

std::string config(const Upstream& a, const Upstream& b, const Upstream& c, int admin_port, bool extra_route) {
  std::string yaml = fill(R"(
admin: {address: "127.0.0.1:{ADMIN}", token: "{TOKEN}"}
services:
  a: {instances: ["{A}"]}
  b: {instances: ["{B}"]}
  c:
    instances: ["{C}"]
    health_check: {path: /health, interval: 100ms, unhealthy_after: 1, healthy_after: 1}
policies:
  auth: {type: jwt, secret: "a-secret-for-the-metrics-integration-test"}
routes:
  - name: users
    path: /users
    service: a
  - name: errs
    path: /errs
    service: b
  - name: secure
    path: /secure
    service: a
    policies: [auth]
  - name: checked
    path: /checked
    service: c
)",
                          {{"ADMIN", std::to_string(admin_port)}, {"TOKEN", kToken}, {"A", a.url()}, {"B", b.url()},
                           {"C", c.url()}});
  if (extra_route) yaml += "  - {name: added, path: /added, service: a}\n";
  return yaml;
}

// The scrape's samples: "name{labels}" -> value.
std::map<std::string, double> samples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return out;
}

Response scrape(int admin_port) { return http_get(admin_port, "/metrics", {{"Authorization", std::string("Bearer ") + kToken}}); }

// `promtool check metrics` on `text`: "" when it passes, else what it said. Missing promtool is
// a failure, never a skip (scripts/deps.sh installs Debian's `prometheus` package).
std::string promtool_problems(const std::string& text) {
  const std::string promtool = GH_PROMTOOL;
  if (promtool.find("NOTFOUND") != std::string::npos || ::access(promtool.c_str(), X_OK) != 0)
    return "promtool not found (\"" + promtool + "\"): install Debian's `prometheus` package (scripts/deps.sh)";
  TempDir dir;
  const std::string path = dir.write("scrape.txt", text);
  FILE* p = ::popen((promtool + " check metrics < " + path + " 2>&1").c_str(), "r");
  if (!p) return "cannot run promtool";
  std::string output;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, n);
  const int status = ::pclose(p);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !output.empty())
    return "promtool: exit " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + "\n" + output;
  return "";
}

TEST(Metrics, TheScrapeCountsWhatWasServedAndSurvivesAReload) {
  Upstream a("a"), b("b"), c("c");
  b.set_handler([](const Request& r) {
    if (r.target.find("/404") != std::string::npos) return Reply::text("missing", 404);
    if (r.target.find("/500") != std::string::npos) return Reply::text("broken", 500);
    if (r.target.find("/302") != std::string::npos) {
      Reply moved = Reply::text("", 302);
      moved.headers.add("Location", "/elsewhere");
      return moved;
    }
    return Reply::text("b");
  });
  c.set_healthy(false);
  const int admin_port = free_port();
  Gateway gw(config(a, b, c, admin_port, false));
  GH_START(gw);
  ASSERT_TRUE(wait_for_port(admin_port)) << gw.diagnostics();

  for (int i = 0; i < 5; ++i) EXPECT_EQ(http_get(gw.port(), "/users/" + std::to_string(i)).status, 200);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(http_get(gw.port(), "/errs/404").status, 404);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(http_get(gw.port(), "/errs/500").status, 500);
  EXPECT_EQ(http_get(gw.port(), "/errs/302").status, 302);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(http_get(gw.port(), "/nowhere").status, 404);
  EXPECT_EQ(http_get(gw.port(), "/secure").status, 401);  // no token: refused by jwt
  // `c` fails its health check: no instance to send to.
  ASSERT_TRUE(eventually([&] { return http_get(gw.port(), "/checked").status == 503; }, 5s, 50ms));
  // One client connection held open (keep-alive) while scraping.
  Conn held(gw.port());
  ASSERT_TRUE(held.send(make_request("GET", "/users/held")));
  ASSERT_TRUE(held.read_response());
  const std::string listener = "127.0.0.1:" + std::to_string(gw.port());

  // A request is counted when its exchange ends, just after the last byte of its response is
  // written, so the client may read the answer first: scrape until the last request is in.
  Response r;
  std::map<std::string, double> s;
  eventually([&] {
    r = scrape(admin_port);
    s = samples(r.body);
    return r.status == 200 && s[R"(gatehouse_requests_total{route="users",service="a",code="2xx"})"] >= 6;
  }, 3s, 20ms);
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_NE(r.headers.value_or("Content-Type", "").find("text/plain; version=0.0.4"), std::string::npos);
  SCOPED_TRACE(r.body);
  EXPECT_EQ(s[R"(gatehouse_requests_total{route="users",service="a",code="2xx"})"], 6);
  EXPECT_EQ(s[R"(gatehouse_requests_total{route="users",service="a",code="4xx"})"], 0);
  EXPECT_EQ(s[R"(gatehouse_requests_total{route="errs",service="b",code="4xx"})"], 3);
  EXPECT_EQ(s[R"(gatehouse_requests_total{route="errs",service="b",code="5xx"})"], 2);
  EXPECT_EQ(s[R"(gatehouse_requests_total{route="errs",service="b",code="3xx"})"], 1);
  EXPECT_EQ(s[R"(gatehouse_requests_total{route="",service="",code="4xx"})"], 2);
  EXPECT_EQ(s[R"(gatehouse_requests_total{route="secure",service="a",code="4xx"})"], 1);
  EXPECT_GE(s[R"(gatehouse_requests_total{route="checked",service="c",code="5xx"})"], 1);
  EXPECT_EQ(s[R"(gatehouse_request_duration_seconds_count{route="users"})"], 6);
  EXPECT_EQ(s[R"(gatehouse_request_duration_seconds_bucket{route="users",le="+Inf"})"], 6);
  EXPECT_GT(s[R"(gatehouse_request_duration_seconds_sum{route="users"})"], 0);
  EXPECT_EQ(s[R"(gatehouse_request_duration_seconds_count{route="errs"})"], 6);
  EXPECT_EQ(s[R"(gatehouse_upstream_duration_seconds_count{route="errs"})"], 6);
  EXPECT_EQ(s[R"(gatehouse_upstream_duration_seconds_count{route="secure"})"], 0);  // refused before any instance
  EXPECT_EQ(s[R"(gatehouse_request_duration_seconds_count{route=""})"], 2);
  EXPECT_EQ(s[R"(gatehouse_auth_failures_total{policy="auth",reason="token_missing"})"], 1);
  EXPECT_EQ(s[R"(gatehouse_instance_healthy{service="a",instance=")" + a.url() + "\"}"], 1);
  EXPECT_EQ(s[R"(gatehouse_instance_healthy{service="c",instance=")" + c.url() + "\"}"], 0);
  EXPECT_EQ(s["gatehouse_connections_open{listener=\"" + listener + "\"}"], 1);  // the held one
  EXPECT_EQ(s["gatehouse_websocket_tunnels_open"], 0);
  EXPECT_EQ(promtool_problems(r.body), "");

  // The held connection closes: the gauge follows.
  held.shutdown_write();
  ASSERT_TRUE(held.wait_closed());
  EXPECT_TRUE(eventually([&] {
    return samples(scrape(admin_port).body)["gatehouse_connections_open{listener=\"" + listener + "\"}"] == 0;
  }));

  // A reload (a route added): counts go on from where they were.
  gw.write_config(config(a, b, c, admin_port, true));
  ASSERT_TRUE(gw.reload());
  ASSERT_TRUE(eventually([&] { return http_get(gw.port(), "/added").status == 200; }, 5s, 50ms)) << gw.diagnostics();
  for (int i = 0; i < 2; ++i) EXPECT_EQ(http_get(gw.port(), "/users").status, 200);
  s = samples(scrape(admin_port).body);
  EXPECT_EQ(s[R"(gatehouse_requests_total{route="users",service="a",code="2xx"})"], 8);
  EXPECT_EQ(s[R"(gatehouse_requests_total{route="errs",service="b",code="4xx"})"], 3);
  EXPECT_EQ(s[R"(gatehouse_requests_total{route="added",service="a",code="2xx"})"], 1);
  EXPECT_EQ(s[R"(gatehouse_request_duration_seconds_count{route="users"})"], 8);
  EXPECT_EQ(s[R"(gatehouse_auth_failures_total{policy="auth",reason="token_missing"})"], 1);
  EXPECT_EQ(s[R"(gatehouse_config_reloads_total{result="success"})"], 1);
  EXPECT_EQ(s[R"(gatehouse_config_reloads_total{result="failure"})"], 0);

  // A refused reload is counted as a failure, and the counts stay.
  gw.write_config("routes: [this is not a config");
  ASSERT_TRUE(gw.reload());
  EXPECT_TRUE(eventually([&] {
    return samples(scrape(admin_port).body)[R"(gatehouse_config_reloads_total{result="failure"})"] == 1;
  })) << gw.diagnostics();
  s = samples(scrape(admin_port).body);
  EXPECT_EQ(s[R"(gatehouse_requests_total{route="users",service="a",code="2xx"})"], 8);
}

// GET /events: one summary a second, computed from the same series; requests served between
// two summaries show in the next one as rates.
TEST(Metrics, EventsStreamSummariesOfWhatIsServed) {
  Upstream a("a"), b("b"), c("c");
  b.set_handler([](const Request&) { return Reply::text("missing", 404); });
  const int admin_port = free_port();
  Gateway gw(config(a, b, c, admin_port, false));
  GH_START(gw);
  ASSERT_TRUE(wait_for_port(admin_port)) << gw.diagnostics();
  Conn events(admin_port);
  ASSERT_TRUE(events.send(make_request("GET", "/events", {{"Authorization", std::string("Bearer ") + kToken}})));
  ASSERT_TRUE(events.wait_for("\r\n\r\n")) << events.pending();
  EXPECT_NE(events.pending().find("Content-Type: text/event-stream"), std::string::npos) << events.pending();

  // Traffic until a summary shows it for a whole interval (each covers about a second): the
  // second summary with requests in it.
  nlohmann::json seen;
  int with_traffic = 0;
  const bool shown = eventually(
      [&] {
        for (int i = 0; i < 8; ++i) EXPECT_EQ(http_get(gw.port(), "/users").status, 200);
        for (int i = 0; i < 2; ++i) EXPECT_EQ(http_get(gw.port(), "/errs").status, 404);
        events.wait_for("\x01", 100ms);  // reads what has come
        const std::string& text = events.pending();
        with_traffic = 0;
        for (std::size_t at = text.find("data: "); at != std::string::npos; at = text.find("data: ", at + 1)) {
          const std::size_t end = text.find('\n', at);
          if (end == std::string::npos) break;
          auto j = nlohmann::json::parse(text.substr(at + 6, end - at - 6), nullptr, false);
          if (j.is_discarded()) {
            ADD_FAILURE() << "not JSON: " << text.substr(at, end - at);
            return true;
          }
          if (j["totals"]["rps"].get<double>() > 0 && ++with_traffic == 2) {
            seen = j;
            return true;
          }
        }
        return false;
      },
      8s, 100ms);
  ASSERT_TRUE(shown) << events.pending();
  SCOPED_TRACE(seen.dump());
  EXPECT_EQ(seen["generation"], 1);
  EXPECT_GT(seen["interval_s"].get<double>(), 0.5);
  EXPECT_NEAR(seen["totals"]["error_rate_4xx"].get<double>(), 0.2, 0.06);  // 2 of every 10
  EXPECT_EQ(seen["totals"]["error_rate_5xx"], 0);
  EXPECT_FALSE(seen["totals"]["p50_ms"].is_null());
  bool users = false, errs = false;
  for (const auto& r : seen["routes"]) {
    if (r["name"] == "users") users = r["rps"].get<double>() > 0 && r["error_rate_4xx"] == 0;
    if (r["name"] == "errs") errs = r["error_rate_4xx"] == 1;
  }
  EXPECT_TRUE(users);
  EXPECT_TRUE(errs);
  ASSERT_EQ(seen["services"].size(), 3u);
  EXPECT_EQ(seen["services"][0]["instances"][0]["url"], a.url());
  EXPECT_EQ(seen["auth_failures"], nlohmann::json::parse(R"({"auth": 0})"));
}

TEST(Metrics, TheScrapeNeedsTheToken) {
  Upstream a("a"), b("b"), c("c");
  const int admin_port = free_port();
  Gateway gw(config(a, b, c, admin_port, false));
  GH_START(gw);
  ASSERT_TRUE(wait_for_port(admin_port)) << gw.diagnostics();
  EXPECT_EQ(http_get(admin_port, "/metrics").status, 401);
  EXPECT_EQ(http_get(admin_port, "/metrics", {{"Authorization", "Bearer wrong"}}).status, 401);
  // Never on the public listener.
  EXPECT_EQ(http_get(gw.port(), "/metrics", {{"Authorization", std::string("Bearer ") + kToken}}).status, 404);
}

}  // namespace
}  // namespace gh::integ
