// The admin API (SPEC §6): its own listener, a bearer token on every call, the config with its
// secrets masked, routes, services with their instances, the service registry (memory and
// Redis: two gateways on one real redis-server), reloads, and liveness.
#include <gtest/gtest.h>

#include <signal.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "harness/assertions.h"
#include "harness/redis.h"

namespace gh::integ {
namespace {

using nlohmann::json;

constexpr const char* kToken = "adm1n-t0ken";
constexpr std::size_t kAdminBodyLimitForTest = 64 * 1024;  // admin::kMaxAdminBody

struct Admin {
  int port;
  Response call(std::string_view method, std::string_view target, std::string_view body = {},
                std::string token = kToken) const {
    Headers h;
    if (!token.empty()) h.add("Authorization", "Bearer " + token);
    if (!body.empty()) h.add("Content-Type", "application/json");
    return http_request(port, method, target, h, body);
  }
  json get_json(std::string_view target) const {
    Response r = call("GET", target);
    EXPECT_EQ(r.status, 200) << r.describe();
    return json::parse(r.body, nullptr, false);
  }
  Response add(std::string_view service, const std::string& url, std::string ttl = "\"30s\"") const {
    return call("POST", "/services/" + std::string(service) + "/instances", R"({"url": ")" + url + R"(", "ttl": )" + ttl + "}");
  }
  Response remove(std::string_view service, const std::string& url) const {
    return call("DELETE", "/services/" + std::string(service) + "/instances?url=" + url);
  }
};

// The gateway's config with an admin listener on ADMIN_PORT; SERVICES/ROUTES as given.
std::string with_admin(int admin_port, const std::string& rest) {
  return "admin: {address: \"127.0.0.1:" + std::to_string(admin_port) + "\", token: \"" + kToken + "\"}\n" + rest;
}

// The instances of SERVICE in GET /services, by URL.
std::map<std::string, json> instances_of(const Admin& admin, std::string_view service) {
  std::map<std::string, json> out;
  json all = admin.get_json("/services");
  for (const auto& s : all["services"])
    if (s["name"] == service)
      for (const auto& i : s["instances"]) out[i["url"].get<std::string>()] = i;
  return out;
}

// Which upstreams answer N requests to TARGET through the gateway on PORT.
std::map<std::string, int> spread(int port, std::string_view target, int n) {
  std::map<std::string, int> seen;
  for (int i = 0; i < n; ++i) {
    Response r = http_get(port, target);
    ++seen[r.status == 200 ? r.body : "status " + std::to_string(r.status)];
  }
  return seen;
}

TEST(Admin, EveryCallNeedsTheTokenButLivenessAndTheApiIsNotOnThePublicListener) {
  Upstream user("user");
  const int admin_port = free_port();
  Gateway gw(with_admin(admin_port, fill(R"(
services:
  user: {instances: ["{USER}"]}
routes:
  - {path: /, service: user}
)",
                                         {{"USER", user.url()}})));
  ASSERT_TRUE(gw.start()) << gw.diagnostics();
  Admin admin{admin_port};

  for (const char* path : {"/config", "/routes", "/services", "/nope", "/metrics"}) {
    Response none = admin.call("GET", path, {}, "");
    EXPECT_EQ(none.status, 401) << path << "\n" << none.describe();
    EXPECT_EQ(none.headers.value_or("Content-Type", ""), "application/json");
    EXPECT_EQ(json::parse(none.body, nullptr, false), json({{"error", "Unauthorized"}}));
    EXPECT_TRUE(none.headers.value_or("WWW-Authenticate", "").starts_with("Bearer")) << none.describe();
    EXPECT_EQ(admin.call("GET", path, {}, "wrong").status, 401) << path;
    EXPECT_EQ(admin.call("GET", path, {}, std::string(kToken) + "x").status, 401) << path;
    EXPECT_EQ(admin.call("GET", path, {}, std::string(kToken).substr(1)).status, 401) << path;
  }
  // Basic credentials or a token in the query are not a bearer token.
  EXPECT_EQ(http_get(admin_port, "/config", {{"Authorization", std::string("Basic ") + kToken}}).status, 401);
  EXPECT_EQ(http_get(admin_port, std::string("/config?token=") + kToken).status, 401);
  EXPECT_EQ(admin.call("POST", "/services/user/instances", R"({"url": "http://127.0.0.1:1"})", "").status, 401);
  EXPECT_EQ(admin.call("POST", "/reload", {}, "").status, 401);

  EXPECT_EQ(admin.call("GET", "/config").status, 200);
  EXPECT_EQ(admin.call("GET", "/nope").status, 404);
  Response live = admin.call("GET", "/livez", {}, "");
  EXPECT_EQ(live.status, 200) << live.describe();
  EXPECT_EQ(json::parse(live.body, nullptr, false)["status"], "alive");

  // The dashboard's files need no token and hold no data; the page gets a strict CSP.
  Response page = admin.call("GET", "/", {}, "");
  EXPECT_EQ(page.status, 200) << page.describe();
  EXPECT_TRUE(page.headers.value_or("Content-Type", "").starts_with("text/html")) << page.describe();
  EXPECT_NE(page.headers.value_or("Content-Security-Policy", "").find("default-src 'self'"), std::string::npos);
  EXPECT_EQ(page.body.find(user.url()), std::string::npos);
  for (const char* file : {"/dashboard.js", "/dashboard.css"}) EXPECT_EQ(admin.call("GET", file, {}, "").status, 200) << file;

  // The public listener knows nothing of the admin API: its paths go to the service.
  http_get(gw.port(), "/config", {{"Authorization", std::string("Bearer ") + kToken}});
  ASSERT_EQ(user.request_count(), 1u);
  EXPECT_EQ(user.requests()[0].target, "/config");
}

TEST(Admin, ConfigMasksEverySecret) {
  Upstream user("user");
  const int admin_port = free_port();
  Gateway gw(with_admin(admin_port, fill(R"(
services:
  user: {instances: ["{USER}"]}
policies:
  auth: {type: jwt, secret: "jwt-s3cret-value"}
  keys: {type: api_key, header: X-Key, keys: {"k3y-value-1": mobile}}
  per-ip: {type: rate_limit, limit: 5, window: 1m, store: memory}
routes:
  - {path: /, service: user, policies: [auth]}
)",
                                         {{"USER", user.url()}})));
  ASSERT_TRUE(gw.start()) << gw.diagnostics();
  Admin admin{admin_port};
  Response r = admin.call("GET", "/config");
  ASSERT_EQ(r.status, 200) << r.describe();
  for (const char* secret : {"jwt-s3cret-value", "k3y-value-1", kToken})
    EXPECT_EQ(r.body.find(secret), std::string::npos) << secret << " in " << r.body;
  json c = json::parse(r.body, nullptr, false);
  EXPECT_EQ(c["policies"]["auth"]["secret"], "***");
  EXPECT_EQ(c["policies"]["keys"]["keys"], "***");
  EXPECT_EQ(c["admin"]["token"], "***");
  EXPECT_EQ(c["policies"]["per-ip"]["limit"], 5);
  EXPECT_EQ(c["services"]["user"]["instances"][0], user.url());
}

TEST(Admin, ConfigMasksTheRedisPassword) {
  RedisServer redis("pa55word");
  ASSERT_TRUE(redis.ready()) << "redis-server did not listen";
  Upstream user("user");
  const int admin_port = free_port();
  Gateway gw(with_admin(admin_port, fill(R"(
redis: "redis://:pa55word@127.0.0.1:{PORT}"
services:
  user: {instances: ["{USER}"]}
routes:
  - {path: /, service: user}
)",
                                         {{"USER", user.url()}, {"PORT", std::to_string(redis.port())}})));
  ASSERT_TRUE(gw.start()) << gw.diagnostics();
  Response r = Admin{admin_port}.call("GET", "/config");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body.find("pa55word"), std::string::npos) << r.body;
  EXPECT_EQ(json::parse(r.body)["redis"], "redis://:***@127.0.0.1:" + std::to_string(redis.port()));
}

TEST(Admin, RoutesAndServicesDescribeWhatRuns) {
  Upstream a("a"), b("b");
  const int admin_port = free_port();
  Gateway gw(with_admin(admin_port, fill(R"(
services:
  user:
    instances: ["{A}", {url: "http://localhost:{BPORT}", weight: 2}]
    load_balancing: weighted
policies:
  per-ip: {type: rate_limit, limit: 100, window: 1m, store: memory}
defaults:
  policies: [per-ip]
routes:
  - {name: users, path: /api/users, service: user, methods: [GET]}
  - {exact: /health-of-user, service: user, strip_prefix: false}
)",
                                         {{"A", a.url()}, {"BPORT", std::to_string(b.port())}})));
  ASSERT_TRUE(gw.start()) << gw.diagnostics();
  Admin admin{admin_port};
  json routes = admin.get_json("/routes")["routes"];
  ASSERT_EQ(routes.size(), 2u) << routes.dump();
  EXPECT_EQ(routes[0]["name"], "users");
  EXPECT_EQ(routes[0]["match"], "path");
  EXPECT_EQ(routes[0]["methods"], json({"GET"}));
  EXPECT_EQ(routes[0]["policies"], json({"per-ip"}));
  EXPECT_EQ(routes[1]["match"], "exact");
  EXPECT_EQ(routes[1]["service"], "user");

  for (int i = 0; i < 6; ++i) http_get(gw.port(), "/api/users");
  auto inst = instances_of(admin, "user");
  ASSERT_EQ(inst.size(), 2u);
  const json& ia = inst[a.url()];
  const json& ib = inst["http://localhost:" + std::to_string(b.port())];
  EXPECT_EQ(ia["source"], "static");
  EXPECT_EQ(ib["source"], "dns");
  EXPECT_EQ(ib["weight"], 2);
  EXPECT_EQ(ia["healthy"], true);
  EXPECT_EQ(ia["requests"].get<int>() + ib["requests"].get<int>(), 6);
  EXPECT_EQ(ia["requests"], static_cast<int>(a.request_count()));
  EXPECT_EQ(ia["in_flight"], 0);
  EXPECT_EQ(ia["errors"], 0);
  EXPECT_EQ(ia["recent_errors"], 0);
  EXPECT_EQ(ia["ejections"], 0);
}

TEST(Admin, ServicesShowErrorsAndPassiveEjections) {
  Upstream good("good");
  const int dead = free_port();  // nothing listens: every connect is refused
  const int admin_port = free_port();
  Gateway gw(with_admin(admin_port, fill(R"(
services:
  user: {instances: ["{GOOD}", "http://127.0.0.1:{DEAD}"]}
routes:
  - {path: /, service: user}
)",
                                         {{"GOOD", good.url()}, {"DEAD", std::to_string(dead)}})));
  ASSERT_TRUE(gw.start()) << gw.diagnostics();
  Admin admin{admin_port};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(http_get(gw.port(), "/x").status, 200);  // retried on the good one
  auto inst = instances_of(admin, "user");
  const json& d = inst["http://127.0.0.1:" + std::to_string(dead)];
  EXPECT_GE(d["errors"].get<int>(), 3) << d.dump();
  EXPECT_GE(d["recent_errors"].get<int>(), 3) << d.dump();
  EXPECT_EQ(d["ejections"], 1) << d.dump();
  EXPECT_EQ(d["ejected"], true);
  EXPECT_EQ(d["healthy"], false);
  EXPECT_GT(d["ejected_for_ms"].get<int>(), 0);
}

// A registered instance is balanced like a static one, renewed by posting again, dropped when
// its TTL runs out or when it is deleted; bad registrations are refused with the reason.
TEST(AdminRegistry, RegisterRenewExpireAndDeleteInMemory) {
  Upstream fixed("fixed"), extra("extra");
  const int admin_port = free_port();
  Gateway gw(with_admin(admin_port, fill(R"(
services:
  user: {instances: ["{FIXED}"]}
routes:
  - {path: /, service: user}
)",
                                         {{"FIXED", fixed.url()}})));
  ASSERT_TRUE(gw.start()) << gw.diagnostics();
  Admin admin{admin_port};

  Response added = admin.add("user", extra.url(), "\"2s\"");
  ASSERT_EQ(added.status, 201) << added.describe();
  json a = json::parse(added.body);
  EXPECT_EQ(a["registered"], "new");
  EXPECT_EQ(a["url"], extra.url());
  EXPECT_EQ(a["ttl_s"], 2.0);
  auto seen = spread(gw.port(), "/x", 6);
  EXPECT_EQ(seen["fixed"], 3) << testing::PrintToString(seen);
  EXPECT_EQ(seen["extra"], 3) << testing::PrintToString(seen);
  EXPECT_EQ(instances_of(admin, "user")[extra.url()]["source"], "registered");

  // Renewed (a number of seconds works too) before the 2 s run out: still there after them.
  std::this_thread::sleep_for(1200ms);
  Response renewed = admin.add("user", extra.url(), "3");
  ASSERT_EQ(renewed.status, 200) << renewed.describe();
  EXPECT_EQ(json::parse(renewed.body)["registered"], "renewed");
  std::this_thread::sleep_for(1200ms);
  EXPECT_EQ(spread(gw.port(), "/x", 4)["extra"], 2);

  // Not renewed: dropped once the 3 s run out.
  ASSERT_TRUE(eventually([&] { return instances_of(admin, "user").count(extra.url()) == 0; }, 4s, 100ms));
  EXPECT_EQ(spread(gw.port(), "/x", 4)["fixed"], 4);

  // Deleted.
  ASSERT_EQ(admin.add("user", extra.url()).status, 201);
  EXPECT_EQ(instances_of(admin, "user").size(), 2u);
  Response del = admin.remove("user", extra.url());
  EXPECT_EQ(del.status, 200) << del.describe();
  EXPECT_EQ(instances_of(admin, "user").size(), 1u);
  EXPECT_EQ(spread(gw.port(), "/x", 4)["fixed"], 4);
  Response again = admin.remove("user", extra.url());
  EXPECT_EQ(again.status, 404) << again.describe();
  EXPECT_EQ(admin.call("DELETE", "/services/user/instances").status, 400);
}

TEST(AdminRegistry, BadRegistrationsAreRefusedWithTheReason) {
  Upstream fixed("fixed");
  const int admin_port = free_port();
  Gateway gw(with_admin(admin_port, fill(R"(
services:
  user: {instances: ["{FIXED}"]}
  grpc: {instances: ["{FIXED}"], protocol: h2c}
  secure: {instances: ["https://127.0.0.1:8"], protocol: h2}
routes:
  - {path: /, service: user}
  - {path: /grpc, service: grpc}
  - {path: /secure, service: secure}
)",
                                         {{"FIXED", fixed.url()}})));
  ASSERT_TRUE(gw.start()) << gw.diagnostics();
  Admin admin{admin_port};
  auto reason = [&](std::string_view target, std::string_view body) {
    Response r = admin.call("POST", target, body);
    EXPECT_EQ(r.status, 400) << body << "\n" << r.describe();
    json j = json::parse(r.body, nullptr, false);
    EXPECT_EQ(j["error"], "Bad request") << r.body;
    return j["reason"].is_string() ? j["reason"].get<std::string>() : std::string("(none)");
  };
  EXPECT_EQ(reason("/services/usr/instances", R"({"url": "http://127.0.0.1:9"})"), "unknown service \"usr\"");
  EXPECT_EQ(reason("/services/user/instances", R"({"url": "ftp://127.0.0.1:9"})"),
            "url: the scheme is not http://, https:// or h2c://");
  // HTTP/2 instances: the service's protocol and its routes' WebSocket decide what may join.
  EXPECT_EQ(reason("/services/user/instances", R"({"url": "h2c://127.0.0.1:9"})"),
            "url: h2c://127.0.0.1:9 speaks HTTP/2, and route \"/\" lets WebSocket upgrades through to \"user\" "
            "(they need HTTP/1.1); set websocket: false on the route first");
  EXPECT_EQ(reason("/services/grpc/instances", R"({"url": "https://127.0.0.1:9"})"),
            "url: \"https://127.0.0.1:9\" is an https:// instance, but protocol h2c is cleartext HTTP/2 and needs "
            "http:// or h2c:// instances; for HTTP/2 over TLS write protocol: h2");
  EXPECT_EQ(reason("/services/secure/instances", R"({"url": "http://127.0.0.1:9"})"),
            "url: \"http://127.0.0.1:9\" is a cleartext http:// instance, but protocol h2 is HTTP/2 over TLS (ALPN "
            "h2) and needs https:// instances; for cleartext HTTP/2 write protocol: h2c");
  EXPECT_NE(reason("/services/secure/instances", R"({"url": "h2c://127.0.0.1:9"})").find("needs https://"),
            std::string::npos);
  EXPECT_NE(reason("/services/user/instances", R"({"url": "http://127.0.0.1:9/path"})").find("no path"), std::string::npos);
  EXPECT_NE(reason("/services/user/instances", R"({"url": "not a url"})").find("url:"), std::string::npos);
  EXPECT_NE(reason("/services/user/instances", R"({"url": 7})").find("url:"), std::string::npos);
  EXPECT_NE(reason("/services/user/instances", R"({"ttl": "30s"})").find("url:"), std::string::npos);
  EXPECT_NE(reason("/services/user/instances", R"({"url": "http://127.0.0.1:9", "ttl": "soon"})").find("ttl:"), std::string::npos);
  EXPECT_NE(reason("/services/user/instances", R"({"url": "http://127.0.0.1:9", "ttl": 0})").find("ttl:"), std::string::npos);
  EXPECT_NE(reason("/services/user/instances", R"({"url": "http://127.0.0.1:9", "weight": 0})").find("weight:"), std::string::npos);
  EXPECT_NE(reason("/services/user/instances", R"({"url": "http://127.0.0.1:9", "wieght": 2})").find("unknown field"), std::string::npos);
  EXPECT_NE(reason("/services/user/instances", "{not json").find("JSON"), std::string::npos);
  EXPECT_NE(reason("/services/user/instances", R"({"url": "http://no-such-host.invalid:9"})").find("cannot resolve"), std::string::npos);
  EXPECT_NE(reason("/services/user/instances", R"({"url": ")" + fixed.url() + R"("})").find("already an instance"), std::string::npos);
  EXPECT_EQ(admin.call("GET", "/services/user/instances").status, 405);
  // Nothing was registered by any of it.
  EXPECT_EQ(instances_of(admin, "user").size(), 1u);
  // An https:// instance is registered like an http:// one.
  Response https = admin.call("POST", "/services/user/instances", R"({"url": "https://127.0.0.1:9"})");
  EXPECT_EQ(https.status / 100, 2) << https.describe();
  EXPECT_EQ(instances_of(admin, "user").count("https://127.0.0.1:9"), 1u);
  // h2c:// joins a service that speaks HTTP/2 (no route of it lets WebSocket through), and so
  // do http:// instances under protocol h2c and https:// ones under h2.
  for (auto [service, url] : {std::pair{"grpc", "h2c://127.0.0.1:9"}, std::pair{"grpc", "http://127.0.0.1:10"},
                              std::pair{"secure", "https://127.0.0.1:9"}}) {
    Response ok = admin.call("POST", std::string("/services/") + service + "/instances",
                             std::string(R"({"url": ")") + url + R"("})");
    EXPECT_EQ(ok.status / 100, 2) << service << " " << url << "\n" << ok.describe();
    EXPECT_EQ(instances_of(admin, service).count(url), 1u) << service << " " << url;
  }
  EXPECT_TRUE(gw.alive());
}

TEST(AdminRegistry, RegistrationsSurviveReloadsAndAreHealthChecked) {
  Upstream fixed("fixed"), extra("extra"), sick("sick");
  sick.set_healthy(false);
  const int admin_port = free_port();
  auto config = [&](const std::string& extra_route) {
    return with_admin(admin_port, fill(R"(
services:
  user:
    instances: ["{FIXED}"]
    health_check: {path: /health, interval: 200ms, timeout: 1s, healthy_after: 1, unhealthy_after: 1}
routes:
  - {path: /, service: user}
)",
                                       {{"FIXED", fixed.url()}}) + extra_route);
  };
  Gateway gw(config(""));
  ASSERT_TRUE(gw.start()) << gw.diagnostics();
  Admin admin{admin_port};
  ASSERT_EQ(admin.add("user", extra.url()).status, 201);
  ASSERT_EQ(admin.add("user", sick.url()).status, 201);
  // The sick one is probed like a static instance and leaves the rotation.
  ASSERT_TRUE(eventually([&] { return instances_of(admin, "user")[sick.url()]["healthy"] == false; }, 3s, 50ms));
  EXPECT_GT(sick.health_probes(), 0);
  auto seen = spread(gw.port(), "/x", 6);
  EXPECT_EQ(seen["fixed"], 3) << testing::PrintToString(seen);
  EXPECT_EQ(seen["extra"], 3);

  // A reload (through the API) keeps the registrations, and their health.
  gw.write_config(config("  - {path: /other, service: user}\n"));
  Response reloaded = admin.call("POST", "/reload");
  ASSERT_EQ(reloaded.status, 200) << reloaded.describe();
  json report = json::parse(reloaded.body);
  EXPECT_EQ(report["reloaded"], true);
  EXPECT_EQ(report["changes"]["routes"]["added"], json({"/other"})) << report.dump();
  EXPECT_EQ(report["changes"]["routes"]["removed"], json::array()) << report.dump();
  EXPECT_EQ(report["changes"]["services"]["changed"], json::array()) << report.dump();
  auto inst = instances_of(admin, "user");
  EXPECT_EQ(inst.size(), 3u);
  EXPECT_EQ(inst[sick.url()]["healthy"], false);
  seen = spread(gw.port(), "/other", 6);
  EXPECT_EQ(seen["fixed"], 3) << testing::PrintToString(seen);
  EXPECT_EQ(seen["extra"], 3);

  // A SIGHUP too.
  gw.write_config(config(""));
  ASSERT_TRUE(gw.reload());
  ASSERT_TRUE(eventually([&] { return admin.get_json("/routes")["routes"].size() == 1; }));
  EXPECT_TRUE(eventually([&] { return gw.stderr_text().find("routes: -/other") != std::string::npos; }, 2s))
      << gw.stderr_text();
  EXPECT_EQ(instances_of(admin, "user").size(), 3u);

  // An invalid file is refused with its errors; the running config and registrations stay.
  gw.write_config(config("  - {path: /bad, service: nope}\n"));
  Response refused = admin.call("POST", "/reload");
  EXPECT_EQ(refused.status, 400) << refused.describe();
  json r = json::parse(refused.body);
  EXPECT_EQ(r["error"], "Invalid config");
  ASSERT_EQ(r["errors"].size(), 1u) << r.dump();
  EXPECT_NE(r["errors"][0].get<std::string>().find("unknown service \"nope\""), std::string::npos) << r.dump();
  EXPECT_EQ(instances_of(admin, "user").size(), 3u);
  EXPECT_EQ(spread(gw.port(), "/x", 2)["fixed"], 1);
}

// A registration that a reload makes unfit (here: an h2c:// instance once a route lets WebSocket
// through to its service) is left out with a warning, and comes back when a reload makes it fit.
TEST(AdminRegistry, RegistrationsAReloadMakesUnfitAreLeftOutUntilTheyFitAgain) {
  Upstream fixed("fixed");
  const int admin_port = free_port();
  auto config = [&](const std::string& route_extra) {
    return with_admin(admin_port, fill(R"(
services:
  user: {instances: ["{FIXED}"]}
routes:
  - {path: /, service: user{EXTRA}}
)",
                                       {{"FIXED", fixed.url()}, {"EXTRA", route_extra}}));
  };
  Gateway gw(config(", websocket: false"));
  ASSERT_TRUE(gw.start()) << gw.diagnostics();
  Admin admin{admin_port};
  ASSERT_EQ(admin.add("user", "h2c://127.0.0.1:9").status, 201);
  ASSERT_TRUE(eventually([&] { return instances_of(admin, "user").count("h2c://127.0.0.1:9") == 1; }));

  gw.write_config(config(""));
  Response reloaded = admin.call("POST", "/reload");
  ASSERT_EQ(reloaded.status, 200) << reloaded.describe();
  EXPECT_EQ(instances_of(admin, "user").count("h2c://127.0.0.1:9"), 0u);
  EXPECT_EQ(instances_of(admin, "user").size(), 1u);
  EXPECT_TRUE(eventually([&] {
    return gw.stderr_text().find("registered instance h2c://127.0.0.1:9: h2c://127.0.0.1:9 speaks HTTP/2, and route "
                                 "\"/\" lets WebSocket upgrades through to \"user\"") != std::string::npos;
  }, 2s)) << gw.stderr_text();
  EXPECT_EQ(spread(gw.port(), "/x", 2)["fixed"], 2);

  gw.write_config(config(", websocket: false"));
  reloaded = admin.call("POST", "/reload");
  ASSERT_EQ(reloaded.status, 200) << reloaded.describe();
  EXPECT_EQ(instances_of(admin, "user").count("h2c://127.0.0.1:9"), 1u);
  EXPECT_TRUE(gw.alive());
}

TEST(Admin, MalformedAndOversizedRequestsGetAClearError) {
  Upstream user("user");
  const int admin_port = free_port();
  Gateway gw(with_admin(admin_port, fill("services:\n  user: {instances: [\"{USER}\"]}\nroutes:\n  - {path: /, service: user}\n",
                                         {{"USER", user.url()}})));
  ASSERT_TRUE(gw.start()) << gw.diagnostics();
  Response bad = roundtrip(admin_port, "GET /config HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n");
  EXPECT_EQ(bad.status, 400) << bad.describe();
  std::string big(kAdminBodyLimitForTest + 1, 'x');
  Response large = Admin{admin_port}.call("POST", "/services/user/instances", big);
  EXPECT_EQ(large.status, 413) << large.describe();
  Response chunked = roundtrip(admin_port, std::string("POST /reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") + kToken +
                                               "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.status, 411) << chunked.describe();
  // Expect: 100-continue (curl sends it for larger bodies) is answered before the body is read.
  const std::string body = R"({"url": ")" + user.url() + R"("})";
  Conn conn(admin_port);
  ASSERT_TRUE(conn.send(std::string("POST /services/user/instances HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") + kToken +
                        "\r\nExpect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
  auto interim = conn.read_response(2s);
  ASSERT_TRUE(interim) << conn.pending();
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(conn.send(body));
  auto final_response = conn.read_response(2s);
  ASSERT_TRUE(final_response) << conn.pending();
  EXPECT_EQ(final_response->status, 400) << final_response->describe();  // read whole: a static instance
  EXPECT_NE(final_response->body.find("already an instance"), std::string::npos) << final_response->describe();
  EXPECT_EQ(Admin{admin_port}.call("GET", "/livez").status, 200);
  EXPECT_TRUE(gw.alive());
}

TEST(Admin, ItsPortMustNotBeAListenersPort) {
  TempDir dir;
  const int port = free_port();
  auto path = dir.write("gw.yaml", fill(R"(listen: "127.0.0.1:{P}"
admin: {address: "127.0.0.1:{P}", token: t}
services:
  user: {instances: ["http://127.0.0.1:9"]}
routes:
  - {path: /, service: user}
)",
                                        {{"P", std::to_string(port)}}));
  ProcessResult r = run_gatehouse({"check", "-c", path});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("gw.yaml:2:8: admin.address: the admin API needs a port of its own"), std::string::npos)
      << r.out << r.err;
}

// Several gateways, one registry (SPEC §4): a registration made through one gateway is routed
// to by another within a second; Redis enforces the TTL; a Redis restart loses nothing.
TEST(AdminRegistry, TwoGatewaysShareRegistrationsThroughRedis) {
  RedisServer redis;
  ASSERT_TRUE(redis.ready()) << "redis-server did not listen (scripts/deps.sh installs it)";
  Upstream fixed("fixed"), extra("extra");
  const int admin_a = free_port(), admin_b = free_port();
  auto config = [&](int admin_port) {
    return with_admin(admin_port, fill(R"(
redis: "{REDIS}"
services:
  user: {instances: ["{FIXED}"]}
routes:
  - {path: /, service: user}
)",
                                       {{"REDIS", redis.url()}, {"FIXED", fixed.url()}}));
  };
  Gateway::Options debug;
  debug.args = {"--log-level", "debug"};
  Gateway a(config(admin_a), debug), b(config(admin_b), debug);
  ASSERT_TRUE(a.start()) << a.diagnostics();
  ASSERT_TRUE(b.start()) << b.diagnostics();
  Admin on_a{admin_a}, on_b{admin_b};
  EXPECT_EQ(on_a.get_json("/services")["registry"], "redis");

  // Register on A; B routes to it within a second.
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(on_a.add("user", extra.url(), "\"3s\"").status, 201);
  ASSERT_TRUE(eventually([&] { return instances_of(on_b, "user").count(extra.url()) == 1; }, 1s, 20ms))
      << "B did not learn the registration within 1 s\n" << b.diagnostics();
  const auto learnt = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(learnt, 1s);
  auto seen = spread(b.port(), "/x", 6);
  EXPECT_EQ(seen["extra"], 3) << testing::PrintToString(seen);

  // Renewed through B: A keeps it past the first TTL.
  std::this_thread::sleep_for(1500ms);
  ASSERT_EQ(on_b.add("user", extra.url(), "\"3s\"").status, 200);
  std::this_thread::sleep_for(2000ms);  // past the first registration's 3 s
  EXPECT_EQ(instances_of(on_a, "user").count(extra.url()), 1u);
  EXPECT_EQ(spread(a.port(), "/x", 4)["extra"], 2);

  // Not renewed: Redis expires it and both gateways drop it.
  ASSERT_TRUE(eventually([&] { return instances_of(on_a, "user").count(extra.url()) == 0; }, 3s, 50ms));
  ASSERT_TRUE(eventually([&] { return instances_of(on_b, "user").count(extra.url()) == 0; }, 1s, 50ms));
  EXPECT_EQ(spread(b.port(), "/x", 4)["fixed"], 4);

  // Deleted on B: gone on A at once.
  ASSERT_EQ(on_a.add("user", extra.url(), "\"30s\"").status, 201);
  ASSERT_TRUE(eventually([&] { return instances_of(on_b, "user").count(extra.url()) == 1; }, 1s, 20ms));
  ASSERT_EQ(on_b.remove("user", extra.url()).status, 200);
  ASSERT_TRUE(eventually([&] { return instances_of(on_a, "user").count(extra.url()) == 0; }, 1s, 20ms));

  // Redis restarts (empty: no persistence). While it is down both keep routing to what they
  // knew, registrations are refused with 503; once it is back the registration is written again
  // and both still route to it; a new one made after the restart reaches the other gateway.
  ASSERT_EQ(on_a.add("user", extra.url(), "\"30s\"").status, 201);
  ASSERT_TRUE(eventually([&] { return instances_of(on_b, "user").count(extra.url()) == 1; }, 1s, 20ms));
  redis.kill();
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(spread(a.port(), "/x", 4)["extra"], 2);
  EXPECT_EQ(spread(b.port(), "/x", 4)["extra"], 2);
  Upstream late("late");
  Response down = on_a.add("user", late.url());
  EXPECT_EQ(down.status, 503) << down.describe();
  EXPECT_EQ(json::parse(down.body)["error"], "Registry store unavailable");
  ASSERT_TRUE(redis.start());
  ASSERT_TRUE(eventually([&] { return on_a.add("user", late.url()).status == 201; }, 3s, 100ms));
  // (after an outage each gateway's change feed reconnects within its backoff, at most 1 s)
  ASSERT_TRUE(eventually([&] { return instances_of(on_b, "user").count(late.url()) == 1; }, 2s, 20ms))
      << b.diagnostics();
  seen = spread(b.port(), "/x", 6);
  EXPECT_EQ(seen["late"], 2) << testing::PrintToString(seen);
  EXPECT_EQ(seen["extra"], 2);
  EXPECT_EQ(instances_of(on_a, "user").count(extra.url()), 1u);
  EXPECT_EQ(instances_of(on_b, "user").count(extra.url()), 1u);
  // What Redis lost in the restart was written back: a gateway started now, which knows only
  // what Redis holds, routes to both.
  const int admin_c = free_port();
  Gateway c(config(admin_c));
  ASSERT_TRUE(c.start()) << c.diagnostics();
  ASSERT_TRUE(eventually([&] { return instances_of(Admin{admin_c}, "user").size() == 3; }, 2s, 50ms))
      << Admin{admin_c}.get_json("/services").dump() << "\n" << c.diagnostics();
  EXPECT_NE(a.stderr_text().find("registry: Redis"), std::string::npos) << a.stderr_text();
}

}  // namespace
}  // namespace gh::integ
