// Cross-implementation test: tokens minted by the npm `jose` package (tests/fixtures/jose/mint.mjs)
// for every supported algorithm, verified by JwtPolicy. Needs node and the fixture's packages,
// which scripts/deps.sh installs (`npm ci` in tests/fixtures/jose).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "policies/jwt/jose_fixture.h"
#include "policies/jwt/jwt.h"
#include "policies/jwt/jwt_test_util.h"

#ifndef GH_FIXTURES_DIR
#error "GH_FIXTURES_DIR must point at tests/fixtures"
#endif

namespace gh::policies {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Status = JwtCheck::Status;

// Mints once per test binary run.
class JoseTokens : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    out_dir_ = jose_fixture::out_dir("gh_jose_");
    std::string text = jose_fixture::run("mint.mjs", out_dir_, "tokens.json", error_);
    if (!error_.empty()) return;
    tokens_ = json::parse(text, nullptr, false);
    if (tokens_.is_discarded() || !tokens_.contains("keys")) error_ = "tokens.json is not what mint.mjs writes";
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!out_dir_.empty()) fs::remove_all(out_dir_, ec);
  }
  void SetUp() override { ASSERT_TRUE(error_.empty()) << error_; }

  // A policy for one key set, on a clock fixed at the minting time.
  static std::unique_ptr<JwtPolicy> policy_for(const json& key, const std::string& extra_yaml = "",
                                               bool from_file = true) {
    YAML::Node n = YAML::Load("{type: jwt" + extra_yaml + "}");
    if (key["secret"].is_string()) n["secret"] = key["secret"].get<std::string>();
    else if (from_file) n["public_key_file"] = (out_dir_ / key["pem_file"].get<std::string>()).string();
    else n["public_key"] = key["public_key_pem"].get<std::string>();
    n["issuer"] = tokens_["issuer"].get<std::string>();
    n["audience"] = tokens_["audience"].get<std::string>();
    config::PolicyConfig entry;
    entry.name = "auth";
    entry.type = "jwt";
    entry.path = "policies.auth";
    entry.options = n;
    config::Diagnostics diag("t.yaml");
    JwtConfig cfg = parse_jwt(entry, diag);
    for (const auto& d : diag.list()) ADD_FAILURE() << key["alg"] << ": " << d.to_string();
    if (!diag.empty()) return nullptr;
    clock_.set_wall(core::Clock::Wall(std::chrono::seconds(tokens_["now"].get<long long>())));
    return std::make_unique<JwtPolicy>("auth", std::move(cfg), clock_, 1);
  }

  static inline std::string error_;
  static inline fs::path out_dir_;
  static inline json tokens_;
  static inline core::FakeClock clock_;  // at the minting time
};

TEST_F(JoseTokens, CoversEveryAlgorithm) {
  std::vector<std::string> algs;
  for (const auto& k : tokens_["keys"]) algs.push_back(k["alg"].get<std::string>());
  EXPECT_EQ(algs, (std::vector<std::string>{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384",
                                            "PS512", "ES256", "ES384", "EdDSA"}));
}

TEST_F(JoseTokens, ValidTokensAreAcceptedWithTheirPrincipal) {
  for (const auto& key : tokens_["keys"]) {
    const std::string alg = key["alg"].get<std::string>();
    for (bool from_file : {true, false}) {
      auto policy = policy_for(key, "", from_file);
      ASSERT_NE(policy, nullptr) << alg;
      JwtCheck c = policy->check("Bearer " + key["valid"].get<std::string>());
      ASSERT_EQ(c.status, Status::Valid) << alg << ": " << c.detail;
      EXPECT_EQ(c.principal->subject, key["sub"].get<std::string>()) << alg;
      ASSERT_NE(c.principal->claim("role"), nullptr) << alg;
      EXPECT_EQ(c.principal->claim("role")->text, "admin") << alg;
      EXPECT_EQ(c.principal->claim("groups")->strings, (std::vector<std::string>{"ops", "dev"})) << alg;
      EXPECT_EQ(c.principal->claim("level")->text, "3") << alg;
      EXPECT_EQ(c.principal->claim("iss")->text, tokens_["issuer"].get<std::string>()) << alg;
      EXPECT_EQ(explain(*policy, "Bearer " + key["valid"].get<std::string>()),
                "valid, sub=" + key["sub"].get<std::string>() + R"(, role=admin, groups=["ops","dev"], level=3, )"
                "expires in 1h")
          << alg;
    }
    // Restricted to exactly this algorithm, it still verifies.
    auto only = policy_for(key, ", algorithms: [" + alg + "]");
    ASSERT_NE(only, nullptr);
    EXPECT_EQ(only->check("Bearer " + key["valid"].get<std::string>()).status, Status::Valid) << alg;
  }
}

TEST_F(JoseTokens, InvalidTokensAreRefusedWithTheRightMessage) {
  const std::vector<std::pair<std::string, Status>> cases = {
      {"expired", Status::Expired},       {"wrong_aud", Status::Invalid}, {"wrong_iss", Status::Invalid},
      {"not_yet_valid", Status::Invalid}, {"no_exp", Status::Invalid},    {"wrong_key", Status::Invalid},
      {"tampered", Status::Invalid},      {"alg_none", Status::Invalid},  {"hmac_with_public_key", Status::Invalid},
  };
  for (const auto& key : tokens_["keys"]) {
    const std::string alg = key["alg"].get<std::string>();
    auto policy = policy_for(key);
    ASSERT_NE(policy, nullptr) << alg;
    for (const auto& [name, want] : cases) {
      if (!key.contains(name)) continue;
      JwtCheck c = policy->check("Bearer " + key[name].get<std::string>());
      EXPECT_EQ(c.status, want) << alg << " " << name << ": " << c.detail;
      if (c.status != Status::Valid) {
        proxy::LocalReply r = JwtPolicy::reply_for(c);
        EXPECT_EQ(r.status, 401);
        EXPECT_EQ(r.message, want == Status::Expired ? "Token expired" : "Invalid token") << alg << " " << name;
      }
    }
  }
  // Keys do not cross: RS256's valid token against the PS256 key set, ES256's against ES384's.
  auto find = [&](const std::string& alg) -> const json& {
    for (const auto& k : tokens_["keys"])
      if (k["alg"] == alg) return k;
    throw std::runtime_error("no " + alg);
  };
  EXPECT_EQ(policy_for(find("PS256"))->check("Bearer " + find("RS256")["valid"].get<std::string>()).status,
            Status::Invalid);
  EXPECT_EQ(policy_for(find("ES384"))->check("Bearer " + find("ES256")["valid"].get<std::string>()).status,
            Status::Invalid);
  EXPECT_EQ(policy_for(find("HS512"))->check("Bearer " + find("HS256")["valid"].get<std::string>()).status,
            Status::Invalid);
}

// token_from: a jose token carried in the query or in a cookie, as a browser's WebSocket sends it.
TEST_F(JoseTokens, TokensFromTheQueryAndACookie) {
  for (const auto& key : tokens_["keys"]) {
    const std::string alg = key["alg"].get<std::string>();
    auto policy = policy_for(key, ", token_from: [query:access_token, cookie:session]");
    ASSERT_NE(policy, nullptr) << alg;
    const std::string token = key["valid"].get<std::string>();
    jwt_test::Harness q;
    q.query("access_token=" + token + "&room=1");
    ASSERT_TRUE(std::holds_alternative<proxy::Continue>(q.run(*policy))) << alg;
    EXPECT_EQ(q.ctx->principal->subject, key["sub"].get<std::string>()) << alg;
    std::vector<http::Field> fields;
    policy->on_upstream_request(*q.ctx, fields);
    ASSERT_TRUE(q.ctx->upstream_query.has_value()) << alg;
    EXPECT_EQ(*q.ctx->upstream_query, "room=1") << alg;

    jwt_test::Harness c;
    c.header("Cookie", "session=" + token + "; theme=dark");
    ASSERT_TRUE(std::holds_alternative<proxy::Continue>(c.run(*policy))) << alg;
    fields.assign(c.req.fields.begin(), c.req.fields.end());
    policy->on_upstream_request(*c.ctx, fields);
    ASSERT_EQ(fields.size(), 1u) << alg;
    EXPECT_EQ(fields[0].value, "theme=dark") << alg;

    jwt_test::Harness expired;
    expired.query("access_token=" + key["expired"].get<std::string>());
    proxy::Verdict v = expired.run(*policy);
    auto* r = std::get_if<proxy::LocalReply>(&v);
    ASSERT_NE(r, nullptr) << alg;
    EXPECT_EQ(r->reason, "token_expired") << alg;
  }
}

}  // namespace
}  // namespace gh::policies
