// The seed's flows end to end (docs/configuration.md jwt, require_role, rate_limit; docs/wire.md):
// the project's examples/seed.yaml, its routes, policies and limits as written, run by the real
// binary in front of loopback services. The JWT secret and the services' URLs come from the
// environment, as the file reads them. Tokens are minted both by `gatehouse token` and by the npm
// `jose` package (tests/fixtures/jose/seed_tokens.mjs; needs node, and the packages
// scripts/deps.sh installs).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include "harness/assertions.h"

#ifndef GH_FIXTURES_DIR
#error "GH_FIXTURES_DIR must point at tests/fixtures"
#endif

namespace gh::integ {
namespace {

constexpr const char* kSecret = "seed-integration-secret";

// Replaces the one occurrence of FROM in TEXT by TO; false when FROM is not there exactly once.
bool replace_once(std::string& text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  if (at == std::string::npos || text.find(from, at + 1) != std::string::npos) return false;
  text.replace(at, from.size(), to);
  return true;
}

// The project's examples/seed.yaml as these tests run it: its services reach the harness's
// upstreams through the variables the file reads (USER_SERVICE_URL, ...), its listener moves to
// the harness's loopback port, and its jwt policy forwards the claims the tests look for.
// Everything else (policies, limits, routes) is the file's own. "" and `error` set when the file
// no longer has the lines this edits.
std::string seed_config(std::string& error) {
  const std::string path = examples_dir() + "/seed.yaml";
  std::string text = read_file(path);
  if (text.empty()) {
    error += "cannot read " + path + "\n";
    return "";
  }
  if (!replace_once(text, "listen: \":3000\"\n", "listen: \"127.0.0.1:{PORT}\"\nworkers: 2\naccess_log: off\n")) {
    error += path + ": expected one line `listen: \":3000\"`\n";
  }
  if (!replace_once(text, "    secret: \"${JWT_SECRET}\"\n",
                    "    secret: \"${JWT_SECRET}\"\n    forward_claims: {sub: X-User-Id, role: X-User-Role}\n")) {
    error += path + ": expected one line `    secret: \"${JWT_SECRET}\"`\n";
  }
  return error.empty() ? text : "";
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// Runs CMD through the shell; its stdout, or nullopt when it fails.
std::optional<std::string> capture(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return std::nullopt;
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  if (::pclose(p) != 0) return std::nullopt;
  return out;
}

Headers bearer(const std::string& token, Headers extra = {}) {
  extra.add("Authorization", "Bearer " + token);
  return extra;
}

// The number in header NAME, or -1.
long number_header(const Response& r, std::string_view name) {
  auto v = r.headers.get(name);
  if (!v || v->empty()) return -1;
  char* end = nullptr;
  long n = std::strtol(v->c_str(), &end, 10);
  return *end == '\0' ? n : -1;
}

class Seed : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto mint = [](const std::string& secret, const std::string& sub, const std::string& role) -> std::string {
      auto r = run_gatehouse({"token", "--secret", secret, "--sub", sub, "--role", role, "--ttl", "1h"});
      if (r.exit_code != 0 || r.timed_out) {
        error_ += "gatehouse token failed: " + r.err + "\n";
        return "";
      }
      return trim(r.out);
    };
    admin_ = mint(kSecret, "admin-1", "admin");
    user_token_ = mint(kSecret, "alice", "user");
    other_secret_ = mint("another-secret", "admin-1", "admin");

    namespace fs = std::filesystem;
    const fs::path dir = fs::path(GH_FIXTURES_DIR) / "jose";
    if (!fs::exists(dir / "node_modules" / "jose" / "package.json")) {
      error_ += (dir / "node_modules").string() + " is missing: run scripts/deps.sh (it runs npm ci there)\n";
      return;
    }
    const std::string cmd =
        "timeout 30 node " + shell_quote((dir / "seed_tokens.mjs").string()) + " " + shell_quote(kSecret);
    auto out = capture(cmd);
    auto json = out ? Json::parse(*out) : std::nullopt;
    if (!json || json->type != Json::Type::Object) {
      error_ += "`" + cmd + "` did not print the tokens\n";
      return;
    }
    for (const char* name : {"admin", "user", "expired", "wrong_key", "no_exp"}) {
      const Json* t = json->get(name);
      if (t == nullptr || t->type != Json::Type::String) {
        error_ += std::string("seed_tokens.mjs printed no \"") + name + "\" token\n";
        return;
      }
      jose_[name] = t->string;
    }
  }

  void SetUp() override {
    ASSERT_TRUE(error_.empty()) << error_;
    std::string error;
    const std::string yaml = seed_config(error);
    ASSERT_TRUE(error.empty()) << error;
    Gateway::Options options;
    options.add_header = false;
    options.env = {{"JWT_SECRET", kSecret},
                   {"USER_SERVICE_URL", user_.url()},
                   {"PRODUCT_SERVICE_URL", product_.url()},
                   {"ORDER_SERVICE_URL", order_.url()}};
    gw_ = std::make_unique<Gateway>(yaml, options);
    GH_START(*gw_);
  }

  int port() const { return gw_->port(); }

  // Admin token, user token (sub alice), an admin token signed with another secret.
  static inline std::string admin_, user_token_, other_secret_;
  static inline std::map<std::string, std::string> jose_;
  static inline std::string error_;

  Upstream user_{"user"}, product_{"product"}, order_{"order"};
  std::unique_ptr<Gateway> gw_;
};

::testing::AssertionResult IsBearerChallenge(const Response& r, bool invalid_token) {
  auto v = r.headers.get("WWW-Authenticate");
  if (!v || v->rfind("Bearer", 0) != 0) {
    return ::testing::AssertionFailure() << "no WWW-Authenticate: Bearer challenge:\n" << r.describe();
  }
  // RFC 6750 §3.1: a token that failed carries error="invalid_token"; a request without one
  // gets no error code.
  const bool has_error = v->find("error=") != std::string::npos;
  if (invalid_token && v->find("error=\"invalid_token\"") == std::string::npos) {
    return ::testing::AssertionFailure() << "challenge lacks error=\"invalid_token\": " << *v;
  }
  if (!invalid_token && has_error) {
    return ::testing::AssertionFailure() << "challenge to a request without a token has an error code: " << *v;
  }
  return ::testing::AssertionSuccess();
}

TEST_F(Seed, NoTokenIs401WithABearerChallenge) {
  for (const char* path : {"/api/users", "/api/users/42", "/api/admin", "/api/orders"}) {
    auto r = http_get(port(), path);
    EXPECT_TRUE(IsJsonError(r, 401, "Access token required")) << path;
    EXPECT_TRUE(IsBearerChallenge(r, false)) << path;
  }
  // An empty Bearer credential is no token either.
  auto r = http_get(port(), "/api/users", {{"Authorization", "Bearer "}});
  EXPECT_EQ(r.status, 401) << r.describe();
  EXPECT_TRUE(ReachedNothing(user_));
  EXPECT_TRUE(ReachedNothing(order_));
}

TEST_F(Seed, MalformedOrBadlySignedTokenIs401Invalid) {
  const std::string& t = user_token_;
  const std::size_t dot1 = t.find('.'), dot2 = t.rfind('.');
  ASSERT_NE(dot1, std::string::npos);
  ASSERT_NE(dot1, dot2);
  // The admin token's payload under the user token's signature.
  const std::string swapped_payload =
      t.substr(0, dot1) + admin_.substr(admin_.find('.'), admin_.rfind('.') - admin_.find('.')) + t.substr(dot2);
  // One character of the signature changed (in the middle, where every bit counts).
  std::string flipped = t;
  char& c = flipped[dot2 + 10];
  c = c == 'A' ? 'B' : 'A';
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not a jwt", "not-a-jwt"},
      {"three junk parts", "aaa.bbb.ccc"},
      {"two parts", t.substr(0, dot2)},
      {"payload swapped", swapped_payload},
      {"signature changed", flipped},
      {"signed with another secret", other_secret_},
      {"jose, another key", jose_["wrong_key"]},
      {"jose, no exp", jose_["no_exp"]},
  };
  for (const auto& [what, token] : cases) {
    for (const char* path : {"/api/users", "/api/admin"}) {
      auto r = http_get(port(), path, bearer(token));
      EXPECT_TRUE(IsJsonError(r, 401, "Invalid token")) << what << " on " << path;
      EXPECT_TRUE(IsBearerChallenge(r, true)) << what << " on " << path;
    }
  }
  EXPECT_TRUE(ReachedNothing(user_));
}

TEST_F(Seed, ExpiredTokenIs401Expired) {
  for (const char* path : {"/api/users", "/api/admin", "/api/orders"}) {
    auto r = http_get(port(), path, bearer(jose_["expired"]));
    EXPECT_TRUE(IsJsonError(r, 401, "Token expired")) << path;
    EXPECT_TRUE(IsBearerChallenge(r, true)) << path;
  }
  EXPECT_TRUE(ReachedNothing(user_));
  EXPECT_TRUE(ReachedNothing(order_));
}

TEST_F(Seed, UserTokenOnAdminIs403) {
  for (const char* path : {"/api/admin", "/api/admin/stats"}) {
    auto r = http_get(port(), path, bearer(user_token_));
    EXPECT_TRUE(IsJsonError(r, 403, "Insufficient permissions")) << path;
  }
  EXPECT_TRUE(ReachedNothing(user_));
  // The same token is good on the users route.
  auto ok = http_get(port(), "/api/users", bearer(user_token_));
  EXPECT_EQ(ok.status, 200) << ok.describe();
  ASSERT_EQ(user_.request_count(), 1u);
  EXPECT_EQ(user_.requests()[0].target, "/api/users");
}

TEST_F(Seed, AdminTokenReachesTheAdminService) {
  auto r = http_get(port(), "/api/admin", bearer(admin_));
  EXPECT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.body, "user");
  auto sub = http_get(port(), "/api/admin/stats?x=1", bearer(admin_));
  EXPECT_EQ(sub.status, 200) << sub.describe();
  ASSERT_EQ(user_.request_count(), 2u);
  EXPECT_EQ(user_.requests()[0].method, "GET");
  EXPECT_EQ(user_.requests()[0].target, "/api/admin");
  EXPECT_EQ(user_.requests()[1].target, "/api/admin/stats?x=1");
  EXPECT_TRUE(ReachedNothing(product_));
  EXPECT_TRUE(ReachedNothing(order_));
}

TEST_F(Seed, ProductsNeedNoTokenOrdersDo) {
  auto r = http_get(port(), "/api/products");
  EXPECT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.body, "product");
  // The defaults run here too: helmet's headers and the per-ip budget.
  EXPECT_EQ(r.headers.value_or("X-Content-Type-Options", ""), "nosniff") << r.describe();
  EXPECT_EQ(number_header(r, "RateLimit-Limit"), 100) << r.describe();
  EXPECT_EQ(number_header(r, "RateLimit-Remaining"), 99) << r.describe();
  EXPECT_EQ(r.headers.value_or("RateLimit-Policy", ""), "100;w=900") << r.describe();
  EXPECT_EQ(http_get(port(), "/api/products/7").status, 200);
  ASSERT_EQ(product_.request_count(), 2u);
  EXPECT_EQ(product_.requests()[1].target, "/api/products/7");

  EXPECT_TRUE(IsJsonError(http_get(port(), "/api/orders"), 401, "Access token required"));
  EXPECT_TRUE(ReachedNothing(order_));
  auto o = http_get(port(), "/api/orders", bearer(user_token_));
  EXPECT_EQ(o.status, 200) << o.describe();
  EXPECT_EQ(o.body, "order");
  EXPECT_EQ(order_.request_count(), 1u);
}

TEST_F(Seed, ForwardedClaimsReachTheServiceAndReplaceTheClients) {
  auto r = http_get(port(), "/api/users",
                    bearer(user_token_, {{"X-User-Id", "mallory"}, {"x-user-role", "admin"}, {"X-USER-ID", "eve"}}));
  EXPECT_EQ(r.status, 200) << r.describe();
  auto a = http_get(port(), "/api/admin", bearer(admin_, {{"X-User-Id", "mallory"}}));
  EXPECT_EQ(a.status, 200) << a.describe();
  ASSERT_EQ(user_.request_count(), 2u);
  const Request u = user_.requests()[0];
  EXPECT_EQ(u.headers.all("X-User-Id"), std::vector<std::string>{"alice"}) << u.headers.to_string();
  EXPECT_EQ(u.headers.all("X-User-Role"), std::vector<std::string>{"user"}) << u.headers.to_string();
  const Request ad = user_.requests()[1];
  EXPECT_EQ(ad.headers.all("X-User-Id"), std::vector<std::string>{"admin-1"}) << ad.headers.to_string();
  EXPECT_EQ(ad.headers.all("X-User-Role"), std::vector<std::string>{"admin"}) << ad.headers.to_string();
}

TEST_F(Seed, JoseTokensAreAcceptedEndToEnd) {
  auto a = http_get(port(), "/api/admin", bearer(jose_["admin"]));
  EXPECT_EQ(a.status, 200) << a.describe();
  auto u = http_get(port(), "/api/users", bearer(jose_["user"]));
  EXPECT_EQ(u.status, 200) << u.describe();
  EXPECT_TRUE(IsJsonError(http_get(port(), "/api/admin", bearer(jose_["user"])), 403, "Insufficient permissions"));
  ASSERT_EQ(user_.request_count(), 2u);
  EXPECT_EQ(user_.requests()[0].target, "/api/admin");
  EXPECT_EQ(user_.requests()[0].headers.value_or("X-User-Id", ""), "jose-admin");
  EXPECT_EQ(user_.requests()[0].headers.value_or("X-User-Role", ""), "admin");
  EXPECT_EQ(user_.requests()[1].target, "/api/users");
  EXPECT_EQ(user_.requests()[1].headers.value_or("X-User-Id", ""), "jose-user");
}

TEST_F(Seed, PathTricksNeverReachTheAdminServiceWithoutAnAdminToken) {
  const std::vector<std::string> tricks = {
      "//api/admin",        "/api/./admin",        "/api/%61dmin",     "/api/x/../admin",
      "/api/admin/../admin", "/API/admin",         "/api//admin",      "/api/users/../admin",
      "/api/%2e/admin",     "/api/%2E%2E/api/admin", "/api/Admin",     "/api/admin%2f",
  };
  for (const std::string& path : tricks) {
    auto u = http_get(port(), path, bearer(user_token_));
    EXPECT_TRUE(u.status == 400 || u.status == 403 || u.status == 404) << path << " with a user token:\n" << u.describe();
    auto n = http_get(port(), path);
    EXPECT_TRUE(n.status == 400 || n.status == 401 || n.status == 404) << path << " without a token:\n" << n.describe();
    EXPECT_TRUE(ReachedNothing(user_)) << "after " << path;
  }
  // Paths that normalize to /api/admin meet its policies.
  for (const char* path : {"//api/admin", "/api/./admin", "/api/%61dmin", "/api/x/../admin", "/api/admin/../admin",
                           "/api/users/../admin"}) {
    EXPECT_TRUE(IsJsonError(http_get(port(), path, bearer(user_token_)), 403, "Insufficient permissions")) << path;
  }
  // Case matters: /API/admin is no route of the seed's.
  EXPECT_TRUE(IsJsonError(http_get(port(), "/API/admin", bearer(admin_)), 404, "No route"));
  EXPECT_TRUE(ReachedNothing(user_));
  EXPECT_TRUE(ReachedNothing(product_));
  EXPECT_TRUE(ReachedNothing(order_));
}

// Sends N GETs of PATH (fresh connections), expecting 200 from each.
void expect_admitted(int port, const std::string& path, int n, const Headers& headers = {}) {
  for (int i = 0; i < n; ++i) {
    auto r = http_get(port, path, headers);
    ASSERT_EQ(r.status, 200) << "request " << i + 1 << " of " << path << ":\n" << r.describe();
  }
}

::testing::AssertionResult IsRateLimited(const Response& r, long limit, long window_seconds) {
  auto ok = IsJsonError(r, 429, "Too many requests");
  if (!ok) return ok;
  const long retry = number_header(r, "Retry-After");
  if (retry < 1 || retry > window_seconds) {
    return ::testing::AssertionFailure() << "Retry-After is not 1.." << window_seconds << ":\n" << r.describe();
  }
  if (number_header(r, "RateLimit-Limit") != limit || number_header(r, "RateLimit-Remaining") != 0) {
    return ::testing::AssertionFailure() << "expected RateLimit-Limit " << limit << ", Remaining 0:\n" << r.describe();
  }
  const long reset = number_header(r, "RateLimit-Reset");
  if (reset < 0 || reset > window_seconds) {
    return ::testing::AssertionFailure() << "RateLimit-Reset is not 0.." << window_seconds << ":\n" << r.describe();
  }
  const std::string policy = std::to_string(limit) + ";w=" + std::to_string(window_seconds);
  if (r.headers.value_or("RateLimit-Policy", "") != policy) {
    return ::testing::AssertionFailure() << "expected RateLimit-Policy " << policy << ":\n" << r.describe();
  }
  return ::testing::AssertionSuccess();
}

TEST_F(Seed, ThePerIpLimitAnswers429AfterAHundred) {
  expect_admitted(port(), "/api/products", 100);
  auto r = http_get(port(), "/api/products");
  EXPECT_TRUE(IsRateLimited(r, 100, 900));
  EXPECT_EQ(product_.request_count(), 100u);
}

TEST_F(Seed, UsersRouteReportsTheMostRestrictiveLimit) {
  auto first = http_get(port(), "/api/users", bearer(user_token_));
  ASSERT_EQ(first.status, 200) << first.describe();
  EXPECT_EQ(number_header(first, "RateLimit-Limit"), 50) << first.describe();
  EXPECT_EQ(number_header(first, "RateLimit-Remaining"), 49) << first.describe();
  EXPECT_EQ(first.headers.value_or("RateLimit-Policy", ""), "50;w=900") << first.describe();
  expect_admitted(port(), "/api/users", 49, bearer(user_token_));
  auto r = http_get(port(), "/api/users", bearer(user_token_));
  EXPECT_TRUE(IsRateLimited(r, 50, 900));
  EXPECT_EQ(user_.request_count(), 50u);
}

TEST_F(Seed, SpoofedForwardedForDoesNotBuyAFreshBudget) {
  expect_admitted(port(), "/api/products", 100);
  EXPECT_TRUE(IsRateLimited(http_get(port(), "/api/products"), 100, 900));
  // The peer (loopback) is no trusted proxy: its X-Forwarded-For names no client.
  for (const char* xff : {"203.0.113.7", "198.51.100.1, 203.0.113.8", "10.0.0.1", "127.0.0.2", "::1"}) {
    auto r = http_get(port(), "/api/products", {{"X-Forwarded-For", xff}});
    EXPECT_TRUE(IsRateLimited(r, 100, 900)) << "X-Forwarded-For: " << xff;
  }
  auto r = http_get(port(), "/api/products", {{"X-Real-IP", "203.0.113.9"}, {"Forwarded", "for=203.0.113.9"}});
  EXPECT_TRUE(IsRateLimited(r, 100, 900)) << "X-Real-IP / Forwarded";
  EXPECT_EQ(product_.request_count(), 100u);
}

}  // namespace
}  // namespace gh::integ
