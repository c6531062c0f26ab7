// Lifecycle: SIGHUP reloads atomically under load, an invalid file is refused while the old
// config keeps serving, SIGTERM drains and exits 0 (SPEC §3, §6).
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

#include "harness/assertions.h"

namespace gh::integ {
namespace {

std::string config_routing_to(const Upstream& a, const Upstream& b, const char* target) {
  return fill(R"(
services:
  a: {instances: ["{A}"]}
  b: {instances: ["{B}"]}
routes:
  - path: /r
    service: {T}
)",
              {{"A", a.url()}, {"B", b.url()}, {"T", target}});
}

TEST(Reload, UnderConcurrentLoadNoRequestIsLost) {
  Upstream a("old-a"), b("new-b");
  Gateway gw(config_routing_to(a, b, "a"));
  GH_START(gw);

  std::atomic<bool> done{false};
  std::atomic<int> ok{0}, from_b{0};
  std::mutex mu;
  std::vector<std::string> failures;
  auto fail = [&](std::string what) {
    std::lock_guard lock(mu);
    if (failures.size() < 20) failures.push_back(std::move(what));
  };

  std::vector<std::thread> clients;
  // Two clients on fresh connections, two on kept-alive ones, one posting bodies.
  for (int t = 0; t < 5; ++t) {
    clients.emplace_back([&, t] {
      std::unique_ptr<Conn> conn;
      while (!done) {
        const bool keep_alive = t == 2 || t == 3;
        const std::string body = t == 4 ? pattern_body(20000, 3) : "";
        const std::string req = make_request(t == 4 ? "POST" : "GET", "/r/" + std::to_string(t), {}, body);
        Response r;
        if (keep_alive) {
          if (!conn || conn->eof()) conn = std::make_unique<Conn>(gw.port());
          if (!conn->send(req)) {
            fail("send failed on a kept-alive connection");
            conn.reset();
            continue;
          }
          auto got = conn->read_response(5s);
          if (!got) {
            fail("kept-alive connection dropped without a response");
            conn.reset();
            continue;
          }
          r = *got;
          if (iequals(r.headers.value_or("Connection", ""), "close")) conn.reset();
        } else {
          r = roundtrip(gw.port(), req, 5s);
        }
        if (r.status / 100 != 2) {
          fail("status " + std::to_string(r.status) + ": " + r.body.substr(0, 200));
        } else {
          ++ok;
          if (r.body == "new-b") ++from_b;
        }
      }
    });
  }

  ASSERT_TRUE(eventually([&] { return ok >= 200; }, 10s)) << "load did not get going";
  gw.write_config(config_routing_to(a, b, "b"));
  ASSERT_TRUE(gw.reload());
  const bool switched = eventually([&] { return from_b >= 100; }, 10s);
  // Two more reloads, back and forth, each followed by a hundred more requests under load.
  for (const char* target : {"a", "b"}) {
    gw.write_config(config_routing_to(a, b, target));
    gw.reload();
    const int base = ok;
    eventually([&] { return ok >= base + 100; }, 5s);
  }
  done = true;
  for (auto& c : clients) c.join();

  EXPECT_TRUE(switched) << "the new route config never took effect";
  EXPECT_TRUE(failures.empty()) << failures.size() << " failure(s), first: " << failures.front();
  EXPECT_GT(ok.load(), 300);
  EXPECT_TRUE(gw.alive());
  // After the last reload, every request goes to b.
  ASSERT_TRUE(eventually([&] { return http_get(gw.port(), "/r/final").body == "new-b"; }, 5s));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(http_get(gw.port(), "/r/after").body, "new-b");
}

TEST(Reload, InvalidFileIsRefusedAndOldConfigKeepsServing) {
  Upstream a("old-a"), b("new-b");
  Gateway gw(config_routing_to(a, b, "a"));
  GH_START(gw);
  ASSERT_EQ(http_get(gw.port(), "/r").body, "old-a");

  gw.write_config(config_routing_to(a, b, "nosuchservice"));
  ASSERT_TRUE(gw.reload());
  EXPECT_TRUE(eventually([&] { return gw.stderr_text().find("nosuchservice") != std::string::npos; }, 5s))
      << "the refused reload was not reported:\n" << gw.diagnostics();
  EXPECT_TRUE(gw.alive());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(http_get(gw.port(), "/r").body, "old-a");

  const std::size_t logged = gw.stderr_text().size();
  gw.write_config("services: [this is: not: valid yaml\n");
  ASSERT_TRUE(gw.reload());
  EXPECT_TRUE(eventually([&] { return gw.stderr_text().size() > logged || !gw.alive(); }, 5s))
      << "the refused reload was not reported";
  ASSERT_TRUE(gw.alive()) << gw.diagnostics();
  EXPECT_EQ(http_get(gw.port(), "/r").body, "old-a");

  // A valid file afterwards is taken.
  gw.write_config(config_routing_to(a, b, "b"));
  ASSERT_TRUE(gw.reload());
  EXPECT_TRUE(eventually([&] { return http_get(gw.port(), "/r").body == "new-b"; }, 5s));
}

TEST(Reload, ReloadAddsAndRemovesRoutes) {
  Upstream a("old-a"), b("new-b");
  Gateway gw(config_routing_to(a, b, "a"));
  GH_START(gw);
  EXPECT_EQ(http_get(gw.port(), "/added").status, 404);
  gw.write_config(fill(R"(
services:
  b: {instances: ["{B}"]}
routes:
  - path: /added
    service: b
)",
                       {{"B", b.url()}}));
  ASSERT_TRUE(gw.reload());
  EXPECT_TRUE(eventually([&] { return http_get(gw.port(), "/added").body == "new-b"; }, 5s));
  EXPECT_TRUE(IsJsonError(http_get(gw.port(), "/r"), 404, "No route"));
}

// What outlives a config is kept by a reload: the JWKS key set (no new fetch for the same URL
// and options) and the memory rate-limit budgets. Changed JWKS options make a new source.
TEST(Reload, KeepsTheJwksKeySetAndTheRateLimitBudgets) {
  namespace fs = std::filesystem;
  const fs::path jose = fs::path(GH_FIXTURES_DIR) / "jose";
  ASSERT_TRUE(fs::exists(jose / "node_modules" / "jose")) << "the npm fixtures are missing: run scripts/deps.sh";
  TempDir dir;
  const std::string cmd = "timeout 60 node '" + (jose / "jwks.mjs").string() + "' '" + dir.path() + "' >/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const auto minted = nlohmann::json::parse(read_file(dir.path() + "/jwks.json"), nullptr, false);
  ASSERT_TRUE(minted.is_object() && minted["tokens"].is_array() && !minted["tokens"].empty());
  const std::string token = minted["tokens"][0]["token"];
  const std::string keys = minted["initial"].dump();
  Upstream idp("idp");
  idp.set_handler([keys](const Request&) {
    Reply r = Reply::text(keys);
    r.headers.add("Content-Type", "application/json");
    return r;
  });
  Upstream svc("svc");
  auto config = [&](const std::string& refresh, const std::string& extra_route) {
    return fill(R"(
services:
  svc: {instances: ["{SVC}"]}
policies:
  auth: {type: jwt, jwks_url: "{IDP}/.well-known/jwks.json", jwks_refresh: {REFRESH}, issuer: "{ISS}", audience: "{AUD}"}
  three: {type: rate_limit, limit: 3, window: 1h, key: global}
routes:
  - path: /api
    service: svc
    policies: [auth]
  - path: /limited
    service: svc
    policies: [three]
{EXTRA})",
                {{"SVC", svc.url()},
                 {"IDP", idp.url()},
                 {"REFRESH", refresh},
                 {"ISS", minted["issuer"].get<std::string>()},
                 {"AUD", minted["audience"].get<std::string>()},
                 {"EXTRA", extra_route}});
  };
  const Headers bearer = {{"Authorization", "Bearer " + token}};
  Gateway gw(config("5m", ""));
  GH_START(gw);
  ASSERT_TRUE(eventually([&] { return http_get(gw.port(), "/api/x", bearer).status == 200; }, 10s)) << gw.diagnostics();
  EXPECT_EQ(idp.request_count(), 1u);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(http_get(gw.port(), "/limited").status, 200);

  gw.write_config(config("5m", "  - path: /added\n    service: svc\n"));
  ASSERT_TRUE(gw.reload());
  ASSERT_TRUE(eventually([&] { return http_get(gw.port(), "/added").status == 200; }, 5s)) << gw.diagnostics();
  EXPECT_EQ(http_get(gw.port(), "/api/x", bearer).status, 200);  // the keys were kept...
  EXPECT_EQ(idp.request_count(), 1u);                             // ...without fetching them again
  EXPECT_EQ(http_get(gw.port(), "/limited").status, 200);         // the third of three
  EXPECT_EQ(http_get(gw.port(), "/limited").status, 429);         // the budget survived the reload

  // Other JWKS options: another source, which fetches its own keys.
  gw.write_config(config("10m", ""));
  ASSERT_TRUE(gw.reload());
  EXPECT_TRUE(eventually([&] { return idp.request_count() == 2u; }, 5s)) << gw.diagnostics();
  EXPECT_EQ(http_get(gw.port(), "/api/x", bearer).status, 200);
}

TEST(Lifecycle, SigtermExitsZero) {
  Upstream a("a"), b("b");
  Gateway gw(config_routing_to(a, b, "a"));
  GH_START(gw);
  EXPECT_EQ(http_get(gw.port(), "/r").status, 200);
  auto code = gw.stop(10s);
  ASSERT_TRUE(code) << "did not exit within 10 s of SIGTERM";
  EXPECT_EQ(*code, 0) << gw.diagnostics();
}

TEST(Lifecycle, SigtermFinishesInFlightRequestsThenExitsZero) {
  Upstream a("a"), b("b");
  a.set_handler([](const Request&) {
    Reply r = Reply::text("finished");
    r.delay = 700ms;
    return r;
  });
  Gateway gw(config_routing_to(a, b, "a"));
  GH_START(gw);
  Conn c(gw.port());
  ASSERT_TRUE(c.send(make_request("GET", "/r/inflight")));
  ASSERT_TRUE(a.wait_requests(1));
  ASSERT_TRUE(gw.signal(SIGTERM));
  auto r = c.read_response(5s);
  ASSERT_TRUE(r) << "the in-flight request was cut by SIGTERM";
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "finished");
  // It stops accepting, and exits 0 once drained.
  EXPECT_TRUE(eventually(
      [&] {
        int fd = connect_to(gw.port(), 200ms);
        if (fd >= 0) ::close(fd);
        return fd < 0 || !gw.alive();
      },
      5s));
  auto code = gw.stop(10s);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0) << gw.diagnostics();
}

TEST(Lifecycle, DrainTimeoutBoundsTheWaitAndStillExitsZero) {
  Upstream a("a"), b("b");
  a.set_handler([](const Request&) {
    Reply r = Reply::text("too late");
    r.delay = 20s;
    return r;
  });
  Gateway gw("limits: {drain_timeout: 300ms}\n" + config_routing_to(a, b, "a"));
  GH_START(gw);
  Conn c(gw.port());
  ASSERT_TRUE(c.send(make_request("GET", "/r/stuck")));
  ASSERT_TRUE(a.wait_requests(1));
  const auto t0 = Clock::now();
  auto code = gw.stop(10s);
  ASSERT_TRUE(code) << "did not exit after its drain timeout";
  EXPECT_EQ(*code, 0) << gw.diagnostics();
  EXPECT_LT(Clock::now() - t0, 3s);
}

TEST(Lifecycle, RunRefusesAnInvalidConfig) {
  Gateway gw(R"(
services:
  user: {instances: ["http://127.0.0.1:1"]}
routes:
  - path: /api
    service: usr
)");
  EXPECT_FALSE(gw.start(5s)) << "gatehouse ran on an invalid config";
  EXPECT_NE(gw.stderr_text().find("usr"), std::string::npos) << gw.diagnostics();
  auto code = gw.exited();
  ASSERT_TRUE(code);
  EXPECT_NE(*code, 0);
}

}  // namespace
}  // namespace gh::integ
