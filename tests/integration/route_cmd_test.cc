// `gatehouse route` tells the truth: it runs the gateway's own decisions (parser, checks,
// route table, policies, balancer), so its answers are those a running gateway gives.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "harness/assertions.h"

namespace gh::integ {
namespace {

std::string mint(const std::string& secret, const std::string& sub, const std::string& role = "") {
  std::vector<std::string> args = {"token", "--secret", secret, "--sub", sub};
  if (!role.empty()) args.insert(args.end(), {"--role", role});
  auto r = run_gatehouse(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out.substr(0, r.out.find_first_of("\r\n"));
}

bool has_line(const std::string& out, const std::string& needle) { return out.find(needle) != std::string::npos; }

TEST(RouteCommand, RequireRoleVerdictFromAVerifiedToken) {
  TempDir dir;
  const std::string cfg = dir.write("gw.yaml", R"(
services:
  user: {instances: ["http://127.0.0.1:9"]}
policies:
  auth: {type: jwt, secret: route-secret}
  admins: {type: require_role, roles: [admin]}
routes:
  - path: /api/admin
    service: user
    policies: [auth, admins]
)");
  auto admin = run_gatehouse({"route", "-c", cfg, "GET", "/api/admin/x", "-H",
                              "Authorization: Bearer " + mint("route-secret", "ann", "admin")});
  ASSERT_EQ(admin.exit_code, 0) << admin.err;
  EXPECT_TRUE(has_line(admin.out, "policy 1: auth (jwt): continues (verified, sub \"ann\")")) << admin.out;
  EXPECT_TRUE(has_line(admin.out, "policy 2: admins (require_role): continues")) << admin.out;
  EXPECT_TRUE(has_line(admin.out, "verdict:  proxied to user")) << admin.out;

  auto user = run_gatehouse({"route", "-c", cfg, "GET", "/api/admin/x", "-H",
                             "Authorization: Bearer " + mint("route-secret", "bob", "user")});
  EXPECT_TRUE(has_line(user.out, "policy 2: admins (require_role): 403 Insufficient permissions")) << user.out;
  EXPECT_TRUE(has_line(user.out, "the chain stops at policy 2 \"admins\"")) << user.out;
  EXPECT_FALSE(has_line(user.out, "proxied")) << user.out;

  auto none = run_gatehouse({"route", "-c", cfg, "GET", "/api/admin/x"});
  EXPECT_TRUE(has_line(none.out, "policy 1: auth (jwt): 401 Access token required")) << none.out;
  EXPECT_TRUE(has_line(none.out, "policy 2: admins (require_role): not reached")) << none.out;

  auto forged = run_gatehouse({"route", "-c", cfg, "GET", "/api/admin/x", "-H",
                               "Authorization: Bearer " + mint("another-secret", "ann", "admin")});
  EXPECT_TRUE(has_line(forged.out, "policy 1: auth (jwt): 401 Invalid token")) << forged.out;
}

TEST(RouteCommand, JwksKeysAreFetchedBeforeItAnswers) {
  namespace fs = std::filesystem;
  const fs::path jose = fs::path(GH_FIXTURES_DIR) / "jose";
  ASSERT_TRUE(fs::exists(jose / "node_modules" / "jose")) << "the npm fixtures are missing: run scripts/deps.sh";
  TempDir dir;
  const std::string cmd = "timeout 60 node '" + (jose / "jwks.mjs").string() + "' '" + dir.path() + "' >/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const auto minted = nlohmann::json::parse(read_file(dir.path() + "/jwks.json"), nullptr, false);
  ASSERT_TRUE(minted.is_object() && minted["tokens"].is_array() && !minted["tokens"].empty());
  const std::string token = minted["tokens"][0]["token"];
  const std::string sub = minted["tokens"][0]["sub"];
  const std::string keys = minted["initial"].dump();

  Upstream idp("idp");
  idp.set_handler([keys](const Request&) {
    Reply r = Reply::text(keys);
    r.headers.add("Content-Type", "application/json");
    return r;
  });
  const std::string cfg = dir.write("gw.yaml", fill(R"(
services:
  user: {instances: ["http://127.0.0.1:9"]}
policies:
  auth: {type: jwt, jwks_url: "{IDP}/.well-known/jwks.json", issuer: "{ISS}", audience: "{AUD}"}
  admins: {type: require_role, roles: [admin]}
routes:
  - path: /api
    service: user
    policies: [auth, admins]
)",
                                                    {{"IDP", idp.url()},
                                                     {"ISS", minted["issuer"].get<std::string>()},
                                                     {"AUD", minted["audience"].get<std::string>()}}));
  auto r = run_gatehouse({"route", "-c", cfg, "GET", "/api/x", "-H", "Authorization: Bearer " + token});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has_line(r.out, "policy 1: auth (jwt): continues (verified, sub \"" + sub + "\")")) << r.out;
  EXPECT_TRUE(has_line(r.out, "policy 2: admins (require_role): continues")) << r.out;
  EXPECT_GE(idp.request_count(), 1u);
}

// An identity provider that cannot be reached: the answer comes once the first fetch has
// failed, with a note, not after waiting out a fixed delay.
TEST(RouteCommand, UnreachableJwksIsNotedWithoutWaiting) {
  TempDir dir;
  const std::string cfg = dir.write("gw.yaml", fill(R"(
services:
  user: {instances: ["http://127.0.0.1:9"]}
policies:
  auth: {type: jwt, jwks_url: "http://127.0.0.1:{PORT}/jwks", issuer: x, audience: y}
routes:
  - path: /api
    service: user
    policies: [auth]
)",
                                                    {{"PORT", std::to_string(free_port())}}));
  const auto start = std::chrono::steady_clock::now();
  auto r = run_gatehouse({"route", "-c", cfg, "GET", "/api/x", "-H", "Authorization: Bearer a.b.c"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_TRUE(has_line(r.out, "note:     the JWKS keys could not be fetched (see the log above)")) << r.out;
  EXPECT_NE(r.err.find("JWKS fetch from"), std::string::npos) << r.err;
  EXPECT_TRUE(has_line(r.out, "policy 1: auth (jwt): 401 Invalid token (token_invalid)")) << r.out;
}

TEST(RouteCommand, CorsPreflightIsRoutedByItsAnnouncedMethod) {
  TempDir dir;
  const std::string cfg = dir.write("gw.yaml", R"(
services:
  orders: {instances: ["http://127.0.0.1:9"]}
policies:
  web: {type: cors, origins: ["https://app.example"], methods: [POST]}
  auth: {type: jwt, secret: s}
routes:
  - path: /api/orders
    methods: [POST]
    service: orders
    policies: [web, auth]
)");
  auto r = run_gatehouse({"route", "-c", cfg, "OPTIONS", "/api/orders", "-H", "Origin: https://app.example", "-H",
                          "Access-Control-Request-Method: POST"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has_line(r.out, "routed:   as POST")) << r.out;
  EXPECT_TRUE(has_line(r.out, "route:    routes[0]")) << r.out;
  EXPECT_TRUE(has_line(r.out, "policy 1: web (cors): 204")) << r.out;
  EXPECT_TRUE(has_line(r.out, "policy 2: auth (jwt): not reached")) << r.out;
}

TEST(RouteCommand, ChecksBeforeRoutingAreTheGatewaysOwn) {
  TempDir dir;
  const std::string cfg = dir.write("gw.yaml", R"(
limits: {underscores_in_headers: reject}
services:
  s: {instances: ["http://127.0.0.1:9"]}
routes:
  - regex: "^/v2/orders/"
    service: s
)");
  auto found = run_gatehouse({"route", "-c", cfg, "GET", "/v2/orders/abc"});
  EXPECT_TRUE(has_line(found.out, "route:    routes[0]")) << found.out;
  auto underscore = run_gatehouse({"route", "-c", cfg, "GET", "/v2/orders/abc", "-H", "X_Api: 1"});
  EXPECT_TRUE(has_line(underscore.out, "verdict:  400 Bad request (underscore_in_field_name)")) << underscore.out;
  auto unsafe = run_gatehouse({"route", "-c", cfg, "GET", "/v2/%2e%2e/%2e%2e/etc"});
  EXPECT_TRUE(has_line(unsafe.out, "verdict:  400")) << unsafe.out;
  auto connect = run_gatehouse({"route", "-c", cfg, "CONNECT", "example.com:443"});
  EXPECT_TRUE(has_line(connect.out, "verdict:  ")) << connect.out;
  EXPECT_FALSE(has_line(connect.out, "proxied")) << connect.out;
}

TEST(RouteCommand, PicksTheInstanceTheGatewayPicks) {
  Upstream a("a"), b("b");
  const std::string yaml = fill(R"(
services:
  svc:
    instances: ["{A}", "{B}"]
    load_balancing: hash
    hash_on: claim:sub
policies:
  auth: {type: jwt, secret: pick-secret}
routes:
  - path: /api
    service: svc
    policies: [auth]
)",
                                {{"A", a.url()}, {"B", b.url()}});
  Gateway gw(yaml);
  GH_START(gw);
  TempDir dir;
  const std::string cfg = dir.write("gw.yaml", yaml);
  for (int s = 0; s < 6; ++s) {
    const std::string token = mint("pick-secret", "subject-" + std::to_string(s));
    auto said = run_gatehouse({"route", "-c", cfg, "GET", "/api/x", "-H", "Authorization: Bearer " + token});
    auto got = http_get(gw.port(), "/api/x", {{"Authorization", "Bearer " + token}});
    ASSERT_EQ(got.status, 200);
    const std::string url = got.body == "a" ? a.url() : b.url();
    EXPECT_TRUE(has_line(said.out, "instance: " + url)) << "gateway sent it to " << got.body << "; route said\n"
                                                        << said.out;
  }
}

}  // namespace
}  // namespace gh::integ
