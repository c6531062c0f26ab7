#include "policies/jwt/jwt.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>

#include "core/strings.h"
#include "policies/jwt/jwt_test_util.h"

namespace gh::policies {
namespace {

using namespace jwt_test;
using Status = JwtCheck::Status;

constexpr long long kNow = 1'700'000'000;
const std::string kSecret = "a-test-secret-of-32-bytes-length";

config::PolicyConfig entry(const std::string& yaml) {
  config::PolicyConfig p;
  p.name = "auth";
  p.type = "jwt";
  p.path = "policies.auth";
  p.options = YAML::Load(yaml);
  return p;
}

// A config that must parse without errors.
JwtConfig parse_ok(const YAML::Node& n) {
  config::PolicyConfig p = entry("{}");
  p.options = n;
  config::Diagnostics diag("t.yaml");
  JwtConfig cfg = parse_jwt(p, diag);
  for (const auto& d : diag.list()) ADD_FAILURE() << d.to_string();
  return cfg;
}

YAML::Node with_secret(const std::string& extra = "") {
  YAML::Node n = YAML::Load("{type: jwt" + extra + "}");
  n["secret"] = kSecret;
  return n;
}
YAML::Node with_pem(const std::string& pem, const std::string& extra = "") {
  YAML::Node n = YAML::Load("{type: jwt" + extra + "}");
  n["public_key"] = pem;
  return n;
}

std::string hs256(const std::string& payload, const std::string& header = R"({"alg":"HS256","typ":"JWT"})") {
  return mint("HS256", header, payload, kSecret);
}
std::string claims(const std::string& extra = "") {
  return R"({"sub":"42","role":"admin","iat":)" + std::to_string(kNow - 10) + R"(,"exp":)" +
         std::to_string(kNow + 3600) + extra + "}";
}

struct Fixture {
  core::FakeClock clock{core::Clock::Wall(std::chrono::seconds(kNow))};
  core::Metrics metrics{4};
  std::unique_ptr<JwtPolicy> policy;
  // Four workers: the tests use ids 0 and 3.
  explicit Fixture(const YAML::Node& n)
      : policy(std::make_unique<JwtPolicy>("auth", parse_ok(n), clock, 4, nullptr, &metrics)) {}
  std::uint64_t failures(const std::string& reason) {
    return metrics.counter("gatehouse_auth_failures_total", {{"policy", "auth"}, {"reason", reason}}).value();
  }
  JwtCheck check(const std::string& token) const { return policy->check("Bearer " + token); }
};

// ---- configuration ----------------------------------------------------------------------

std::vector<config::Diagnostic> errors_of(const std::string& yaml) {
  config::Diagnostics diag("t.yaml");
  parse_jwt(entry(yaml), diag);
  return diag.list();
}

TEST(JwtConfig, SecretDefaultsAndOptions) {
  JwtConfig c = parse_ok(with_secret(", issuer: https://id.example, audience: [api, web], leeway: 5s, "
                                     "require_exp: false, forward_claims: {sub: X-User-Id, role: X-User-Role}"));
  EXPECT_EQ(c.key_kind, JwtKeyKind::Secret);
  EXPECT_EQ(c.algorithms, (std::vector<JwtAlg>{JwtAlg::HS256, JwtAlg::HS384, JwtAlg::HS512}));
  EXPECT_EQ(c.issuer, "https://id.example");
  EXPECT_EQ(c.audience, (std::vector<std::string>{"api", "web"}));
  EXPECT_EQ(c.leeway, std::chrono::seconds(5));
  EXPECT_FALSE(c.require_exp);
  ASSERT_EQ(c.forward_claims.size(), 2u);
  EXPECT_EQ(c.forward_claims[1], (std::pair<std::string, std::string>{"role", "X-User-Role"}));
  JwtConfig d = parse_ok(with_secret());
  EXPECT_EQ(d.leeway, std::chrono::seconds(30));
  EXPECT_TRUE(d.require_exp);
  EXPECT_TRUE(d.audience.empty());
  EXPECT_EQ(parse_ok(with_secret(", audience: api")).audience, std::vector<std::string>{"api"});
}

TEST(JwtConfig, DefaultAlgorithmsFollowTheKeyType) {
  using A = JwtAlg;
  EXPECT_EQ(parse_ok(with_pem(rsa_key().public_pem)).algorithms,
            (std::vector<A>{A::RS256, A::RS384, A::RS512, A::PS256, A::PS384, A::PS512}));
  EXPECT_EQ(parse_ok(with_pem(p256_key().public_pem)).algorithms, std::vector<A>{A::ES256});
  EXPECT_EQ(parse_ok(with_pem(p384_key().public_pem)).algorithms, std::vector<A>{A::ES384});
  EXPECT_EQ(parse_ok(with_pem(ed25519_key().public_pem)).algorithms, std::vector<A>{A::EdDSA});
  EXPECT_EQ(parse_ok(with_pem(rsa_key().public_pem, ", algorithms: [PS256]")).algorithms, std::vector<A>{A::PS256});
  EXPECT_EQ(parse_ok(with_secret(", algorithms: HS512")).algorithms, std::vector<A>{A::HS512});
}

TEST(JwtConfig, PublicKeyFile) {
  std::string path = ::testing::TempDir() + "gh_jwt_test_key.pem";
  std::ofstream(path) << p256_key().public_pem;
  YAML::Node n = YAML::Load("{type: jwt}");
  n["public_key_file"] = path;
  JwtConfig c = parse_ok(n);
  EXPECT_EQ(c.key_kind, JwtKeyKind::EcP256);
  EXPECT_EQ(c.public_key_pem, p256_key().public_pem);
  std::remove(path.c_str());
  auto errs = errors_of("{type: jwt, public_key_file: /nonexistent/key.pem}");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].path, "policies.auth.public_key_file");
  EXPECT_NE(errs[0].message.find("cannot read"), std::string::npos);
}

// Found by fuzz/config_fuzz: `public_key_file: /dev/zero` made `gatehouse check` read until it
// ran out of memory, and a FIFO would have blocked it for good.
TEST(JwtConfig, PublicKeyFileMustBeASmallRegularFile) {
  auto only_error = [](const std::string& file) {
    YAML::Node n = YAML::Load("{type: jwt}");
    n["public_key_file"] = file;
    config::PolicyConfig p = entry("{}");
    p.options = n;
    config::Diagnostics diag("t.yaml");
    parse_jwt(p, diag);
    EXPECT_EQ(diag.list().size(), 1u) << file;
    return diag.list().empty() ? std::string() : diag.list()[0].path + ": " + diag.list()[0].message;
  };
  EXPECT_EQ(only_error("/dev/zero"), "policies.auth.public_key_file: \"/dev/zero\" is not a regular file");

  const std::string fifo = ::testing::TempDir() + "gh_jwt_test_fifo";
  std::remove(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(only_error(fifo), "policies.auth.public_key_file: \"" + fifo + "\" is not a regular file");
  std::remove(fifo.c_str());

  EXPECT_EQ(only_error(::testing::TempDir()),
            "policies.auth.public_key_file: \"" + ::testing::TempDir() + "\" is not a regular file");

  const std::string big = ::testing::TempDir() + "gh_jwt_test_big.pem";
  std::ofstream(big) << p256_key().public_pem << std::string(1024 * 1024, '\n');
  EXPECT_EQ(only_error(big),
            "policies.auth.public_key_file: \"" + big + "\" is larger than 1 MiB; expected a PEM public key");
  std::remove(big.c_str());

  const std::string empty = ::testing::TempDir() + "gh_jwt_test_empty.pem";
  std::ofstream{empty};
  EXPECT_EQ(only_error(empty), "policies.auth.public_key_file: \"" + empty + "\" is empty");
  std::remove(empty.c_str());
}

struct ConfigError {
  std::string yaml;
  std::string path;
  std::string message_part;
};

TEST(JwtConfig, ReportsEveryErrorWithItsPath) {
  // A flow scalar would fold the PEM's line breaks; use a literal block instead.
  std::string rsa_block = "|\n";
  for (std::size_t i = 0, j; i < rsa_key().public_pem.size(); i = j + 1) {
    j = rsa_key().public_pem.find('\n', i);
    rsa_block += "  " + rsa_key().public_pem.substr(i, j - i) + "\n";
  }
  const std::vector<ConfigError> cases = {
      {"{type: jwt}", "policies.auth", "missing key; expected one of secret, public_key"},
      {"{type: jwt, secret: s, public_key: x}", "policies.auth.public_key", "only one of"},
      {"{type: jwt, secret: ''}", "policies.auth.secret", "expected a non-empty string"},
      {"{type: jwt, secret: [a]}", "policies.auth.secret", "expected a non-empty string, got a list"},
      {"{type: jwt, secret: s, secert: s}", "policies.auth.secert", "did you mean \"secret\""},
      {"{type: jwt, secret: s, audiance: a}", "policies.auth.audiance", "did you mean \"audience\""},
      {"{type: jwt, public_key: not-a-pem}", "policies.auth.public_key", "not a PEM public key (OpenSSL: "},
      {"{type: jwt, secret: s, algorithms: [none]}", "policies.auth.algorithms[0]", "\"none\" algorithm is never"},
      {"{type: jwt, secret: s, algorithms: [HS256, NONE]}", "policies.auth.algorithms[1]", "never accepted"},
      {"{type: jwt, secret: s, algorithms: [HS257]}", "policies.auth.algorithms[0]", "did you mean \"HS256\""},
      {"{type: jwt, secret: s, algorithms: []}", "policies.auth.algorithms", "expected a non-empty list"},
      {"{type: jwt, secret: s, algorithms: [RS256]}", "policies.auth.algorithms[0]",
       "RS256 cannot be verified with an HMAC secret"},
      {"type: jwt\nalgorithms: [RS256, HS256]\npublic_key: " + rsa_block, "policies.auth.algorithms[1]",
       "HS256 cannot be used with an RSA key"},
      {"type: jwt\nalgorithms: [ES256]\npublic_key: " + rsa_block, "policies.auth.algorithms[0]",
       "ES256 cannot be verified with an RSA key"},
      {"{type: jwt, secret: s, issuer: ''}", "policies.auth.issuer", "expected a non-empty string"},
      {"{type: jwt, secret: s, audience: {a: b}}", "policies.auth.audience", "expected an audience string"},
      {"{type: jwt, secret: s, audience: [a, [b]]}", "policies.auth.audience[1]", "expected a non-empty string"},
      {"{type: jwt, secret: s, leeway: soon}", "policies.auth.leeway", "expected a duration like 250ms"},
      {"{type: jwt, secret: s, require_exp: maybe}", "policies.auth.require_exp", "expected true or false"},
      {"{type: jwt, secret: s, forward_claims: [sub]}", "policies.auth.forward_claims", "expected a mapping"},
      {"{type: jwt, secret: s, forward_claims: {sub: 'X User'}}", "policies.auth.forward_claims.sub",
       "expected a header name"},
      {"{type: jwt, secret: s, forward_claims: {sub: Host}}", "policies.auth.forward_claims.sub",
       "cannot forward a claim as Host"},
      {"{type: jwt, jwks_url: 'ftp://127.0.0.1:9/jwks'}", "policies.auth.jwks_url",
       "expected an http(s)://host[:port]/path URL"},
      {"{type: jwt, secret: s, jwks_refresh: 1m}", "policies.auth.jwks_refresh", "applies only with jwks_url"},
      {"{type: jwt, jwks_url: 'http://127.0.0.1:9/jwks', jwks_refresh: 0s}", "policies.auth.jwks_refresh",
       "expected a positive duration"},
  };
  for (const auto& c : cases) {
    auto errs = errors_of(c.yaml);
    bool found = false;
    for (const auto& e : errs) found |= e.path == c.path && e.message.find(c.message_part) != std::string::npos;
    EXPECT_TRUE(found) << c.yaml << "\n  wanted " << c.path << ": " << c.message_part << "\n  got "
                       << (errs.empty() ? std::string("no error") : errs[0].to_string());
  }
}

TEST(JwtConfig, ErrorsCarryTheLineAndColumn) {
  auto errs = errors_of("type: jwt\nsecret: s\nleeway: soon\n");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].to_string(), "t.yaml:3:9: policies.auth.leeway: expected a duration like 250ms, 30s, 15m or 1h, got \"soon\"");
}

TEST(JwtConfig, RejectsSmallRsaAndUnsupportedCurves) {
  Key small = generate("RSA", nullptr, 1024);
  config::Diagnostics diag("t.yaml");
  config::PolicyConfig p = entry("{}");
  p.options = with_pem(small.public_pem);
  parse_jwt(p, diag);
  ASSERT_EQ(diag.list().size(), 1u);
  EXPECT_NE(diag.list()[0].message.find("too small"), std::string::npos);
  Key k1 = generate("EC", "secp256k1");
  config::Diagnostics diag2("t.yaml");
  p.options = with_pem(k1.public_pem);
  parse_jwt(p, diag2);
  ASSERT_EQ(diag2.list().size(), 1u);
  EXPECT_NE(diag2.list()[0].message.find("not supported"), std::string::npos);
}

// ---- verdicts ---------------------------------------------------------------------------

TEST(JwtPolicy, NoTokenIsAccessTokenRequired) {
  Fixture f(with_secret());
  for (const char* value : {"", "Basic dXNlcjpwYXNz", "Bearer", "Bearer   "}) {
    Harness h;
    if (*value) h.header("Authorization", value);
    proxy::Verdict v = h.run(*f.policy);
    auto* r = std::get_if<proxy::LocalReply>(&v);
    ASSERT_NE(r, nullptr) << value;
    EXPECT_EQ(r->status, 401);
    EXPECT_EQ(r->reason, "token_missing");
    EXPECT_EQ(r->message, "Access token required");
    ASSERT_EQ(r->headers.size(), 1u);
    EXPECT_EQ(r->headers[0].first, "WWW-Authenticate");
    EXPECT_EQ(r->headers[0].second, R"(Bearer realm="gatehouse")");
    EXPECT_EQ(h.ctx->principal, nullptr);
  }
}

TEST(JwtPolicy, ASpaceOrTabInsideTheTokenIsInvalid) {
  Fixture f(with_secret());
  const std::string token = hs256(claims());
  EXPECT_EQ(f.check(token).status, JwtCheck::Status::Valid);
  EXPECT_EQ(f.check(token + "  ").status, JwtCheck::Status::Valid) << "spaces after it are not in it";
  for (const char* sep : {" ", "\t"}) {
    const JwtCheck c = f.check(token.substr(0, 20) + sep + token.substr(20));
    EXPECT_EQ(c.status, JwtCheck::Status::Invalid);
    EXPECT_EQ(c.detail, "space inside the token");
  }
}

TEST(JwtPolicy, ValidTokenPublishesThePrincipal) {
  Fixture f(with_secret());
  Harness h;
  h.header("authorization", "bEaReR " + hs256(claims(R"(,"groups":["a","b"],"level":3,"admin":true,"o":{"k":1})")));
  proxy::Verdict v = h.run(*f.policy);
  ASSERT_TRUE(std::holds_alternative<proxy::Continue>(v));
  ASSERT_NE(h.ctx->principal, nullptr);
  const proxy::Principal& p = *h.ctx->principal;
  EXPECT_EQ(p.subject, "42");
  EXPECT_EQ(p.source, "jwt");
  ASSERT_NE(p.claim("role"), nullptr);
  EXPECT_EQ(p.claim("role")->text, "admin");
  EXPECT_TRUE(p.claim("role")->is_string);
  EXPECT_EQ(p.claim("groups")->text, R"(["a","b"])");
  EXPECT_FALSE(p.claim("groups")->is_string);
  EXPECT_EQ(p.claim("groups")->strings, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(p.claim("level")->text, "3");
  EXPECT_EQ(p.claim("admin")->text, "true");
  EXPECT_EQ(p.claim("o")->text, R"({"k":1})");
  EXPECT_EQ(p.claim("exp")->text, std::to_string(kNow + 3600));
  EXPECT_EQ(p.claim("missing"), nullptr);
}

TEST(JwtPolicy, ExpiredTokenSaysSo) {
  Fixture f(with_secret());
  Harness h;
  h.bearer(hs256(R"({"sub":"1","exp":)" + std::to_string(kNow - 31) + "}"));
  proxy::Verdict v = h.run(*f.policy);
  auto* r = std::get_if<proxy::LocalReply>(&v);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->reason, "token_expired");
  EXPECT_EQ(r->message, "Token expired");
  ASSERT_EQ(r->headers.size(), 1u);
  EXPECT_EQ(r->headers[0].second,
            R"(Bearer realm="gatehouse", error="invalid_token", error_description="The access token expired")");
  // Within the 30 s leeway it still passes; with leeway 0 it does not.
  EXPECT_EQ(f.check(hs256(R"({"exp":)" + std::to_string(kNow - 29) + "}")).status, Status::Valid);
  Fixture strict(with_secret(", leeway: 0s"));
  EXPECT_EQ(strict.check(hs256(R"({"exp":)" + std::to_string(kNow) + "}")).status, Status::Expired);
  EXPECT_EQ(strict.check(hs256(R"({"exp":)" + std::to_string(kNow + 1) + "}")).status, Status::Valid);
}

// The exchange takes a jwt decision at once (decide_now) unless a key set must be fetched;
// on_request, which waits when it must, decides every case alike.
TEST(JwtPolicy, AwaitedAndImmediateDecisionsAgree) {
  Fixture f(with_secret());
  const std::vector<std::string> values{
      "", "Bearer " + hs256(claims()), "Bearer " + hs256(R"({"sub":"1","exp":)" + std::to_string(kNow - 31) + "}"),
      "Bearer not.a.token", "Basic abc"};
  for (const std::string& value : values) {
    Harness now, later;
    if (!value.empty()) {
      now.header("Authorization", value);
      later.header("Authorization", value);
    }
    std::optional<proxy::Verdict> a = f.policy->decide_now(*now.ctx);
    ASSERT_TRUE(a.has_value()) << value;
    proxy::Verdict b = later.run_async(*f.policy);
    ASSERT_EQ(a->index(), b.index()) << value;
    if (auto* r = std::get_if<proxy::LocalReply>(&*a)) {
      EXPECT_EQ(r->status, std::get<proxy::LocalReply>(b).status) << value;
      EXPECT_EQ(r->reason, std::get<proxy::LocalReply>(b).reason) << value;
    } else {
      ASSERT_NE(now.ctx->principal, nullptr);
      ASSERT_NE(later.ctx->principal, nullptr);
      EXPECT_EQ(now.ctx->principal->subject, later.ctx->principal->subject);
    }
  }
}

void expect_invalid(const Fixture& f, const std::string& token, const std::string& detail_part = "") {
  Harness h;
  h.header("Authorization", "Bearer " + token);
  proxy::Verdict v = h.run(*f.policy);
  auto* r = std::get_if<proxy::LocalReply>(&v);
  ASSERT_NE(r, nullptr) << token;
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->reason, "token_invalid");
  EXPECT_EQ(r->message, "Invalid token");
  ASSERT_EQ(r->headers.size(), 1u);
  EXPECT_EQ(r->headers[0].second,
            R"(Bearer realm="gatehouse", error="invalid_token", error_description="The access token is invalid")");
  EXPECT_EQ(h.ctx->principal, nullptr);
  if (!detail_part.empty()) {
    JwtCheck c = f.check(token);
    EXPECT_NE(c.detail.find(detail_part), std::string::npos) << c.detail;
  }
}

TEST(JwtPolicy, RefusesAlgNone) {
  Fixture f(with_secret());
  std::string payload = b64url(claims());
  expect_invalid(f, b64url(R"({"alg":"none","typ":"JWT"})") + "." + payload + ".", "\"none\" is not accepted");
  expect_invalid(f, b64url(R"({"alg":"none"})") + "." + payload + "." + b64url("x"), "not accepted");
  expect_invalid(f, b64url(R"({"alg":"None"})") + "." + payload + "." + b64url("x"), "not accepted");
  expect_invalid(f, b64url(R"({"typ":"JWT"})") + "." + payload + "." + b64url("x"), "without alg");
  expect_invalid(f, b64url(R"({"alg":256})") + "." + payload + "." + b64url("x"), "without alg");
}

TEST(JwtPolicy, RefusesHs256SignedWithThePublicKey) {
  Fixture f(with_pem(rsa_key().public_pem));
  // The classic key-confusion attack: HMAC keyed with the PEM the gateway trusts.
  std::string forged = mint("HS256", R"({"alg":"HS256","typ":"JWT"})", claims(), rsa_key().public_pem);
  expect_invalid(f, forged, "\"HS256\" is not accepted");
  // A genuine RS256 token still passes.
  std::string good = mint("RS256", R"({"alg":"RS256"})", claims(), {}, rsa_key().pkey.get());
  EXPECT_EQ(f.check(good).status, Status::Valid);
}

TEST(JwtPolicy, AcceptsEveryAlgorithmOfItsKey) {
  struct Case {
    const Key* key;
    std::vector<std::string> algs;
  };
  for (const Case& c : {Case{&rsa_key(), {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}},
                        Case{&p256_key(), {"ES256"}}, Case{&p384_key(), {"ES384"}}, Case{&ed25519_key(), {"EdDSA"}}}) {
    Fixture f(with_pem(c.key->public_pem));
    for (const auto& alg : c.algs) {
      std::string token = mint(alg, R"({"alg":")" + alg + R"("})", claims(), {}, c.key->pkey.get());
      JwtCheck ok = f.check(token);
      EXPECT_EQ(ok.status, Status::Valid) << alg << ": " << ok.detail;
      // Another payload under the same signature fails.
      std::size_t d1 = token.find('.'), d2 = token.rfind('.');
      std::string tampered = token.substr(0, d1 + 1) + b64url(claims(R"(,"x":1)")) + token.substr(d2);
      EXPECT_EQ(f.check(tampered).detail, "signature does not match") << alg;
    }
  }
  Fixture hs(with_secret());
  for (std::string alg : {"HS256", "HS384", "HS512"})
    EXPECT_EQ(hs.check(mint(alg, R"({"alg":")" + alg + R"("})", claims(), kSecret)).status, Status::Valid) << alg;
  EXPECT_EQ(hs.check(mint("HS256", R"({"alg":"HS256"})", claims(), "another secret")).detail,
            "signature does not match");
}

TEST(JwtPolicy, RefusesAlgorithmsOutsideTheList) {
  Fixture f(with_pem(rsa_key().public_pem, ", algorithms: [RS256]"));
  std::string ps = mint("PS256", R"({"alg":"PS256"})", claims(), {}, rsa_key().pkey.get());
  expect_invalid(f, ps, "not accepted");
  // ES256 header against an RSA key.
  std::string es = mint("ES256", R"({"alg":"ES256"})", claims(), {}, p256_key().pkey.get());
  expect_invalid(f, es, "not accepted");
}

TEST(JwtPolicy, RefusesTruncatedOrAlteredSignatures) {
  Fixture rsa(with_pem(rsa_key().public_pem));
  std::string token = mint("RS256", R"({"alg":"RS256"})", claims(), {}, rsa_key().pkey.get());
  const std::string input = token.substr(0, token.rfind('.'));
  const std::string sig = sign("RS256", input, {}, rsa_key().pkey.get());
  expect_invalid(rsa, input + "." + b64url(sig.substr(0, sig.size() - 6)), "signature does not match");
  expect_invalid(rsa, input + "." + b64url(sig + std::string(1, '\0')), "signature does not match");
  expect_invalid(rsa, token.substr(0, token.size() - 4), "");
  expect_invalid(rsa, token.substr(0, token.rfind('.') + 1), "signature does not match");
  Fixture ec(with_pem(p256_key().public_pem));
  std::string es = mint("ES256", R"({"alg":"ES256"})", claims(), {}, p256_key().pkey.get());
  expect_invalid(ec, es.substr(0, es.size() - 3), "");
  Fixture hs(with_secret());
  std::string h = hs256(claims());
  expect_invalid(hs, h.substr(0, h.size() - 1), "");
  std::string flipped = h;
  flipped[flipped.size() - 5] = flipped[flipped.size() - 5] == 'A' ? 'B' : 'A';
  expect_invalid(hs, flipped, "signature does not match");
}

TEST(JwtPolicy, RefusesMalformedTokens) {
  Fixture f(with_secret());
  std::string good = hs256(claims());
  std::size_t d1 = good.find('.'), d2 = good.rfind('.');
  expect_invalid(f, good.substr(0, d2), "three");                        // two segments
  expect_invalid(f, good + ".abc", "three");                             // four segments
  expect_invalid(f, "abc", "three");
  expect_invalid(f, good + "=", "base64url");                            // padding
  expect_invalid(f, good.substr(0, d1) + "+" + good.substr(d1), "base64url");  // standard alphabet
  expect_invalid(f, good.substr(0, d1 + 1) + "!" + good.substr(d1 + 1), "base64url");
  expect_invalid(f, "A" + good, "base64url");                            // length 4n+1 header
  expect_invalid(f, b64url("[1]") + good.substr(d1), "not a JSON object");
  expect_invalid(f, b64url("{\"alg\":") + good.substr(d1), "not a JSON object");
  // Non-zero unused bits in the last character: a 16-byte header leaves a tail with 4 spare bits.
  std::string h16 = b64url(R"({"alg":"HS256"} )");
  ASSERT_NE(h16.size() % 4, 0u);
  std::string tampered_tail = h16;
  tampered_tail.back() = static_cast<char>(tampered_tail.back() + 1);
  std::string input = tampered_tail + "." + b64url(claims());
  expect_invalid(f, input + "." + b64url(sign("HS256", input, kSecret, nullptr)), "base64url");
}

TEST(JwtPolicy, RefusesOversizedTokensBeforeDecoding) {
  Fixture f(with_secret());
  std::string big = hs256(claims(R"(,"pad":")" + std::string(7000, 'x') + "\""));
  ASSERT_GT(big.size(), JwtPolicy::kMaxTokenBytes);
  expect_invalid(f, big, "longer than 8192 bytes");
  expect_invalid(f, std::string(9000, 'A'), "longer than");
  std::string fits = hs256(claims(R"(,"pad":")" + std::string(5000, 'x') + "\""));
  ASSERT_LT(fits.size(), JwtPolicy::kMaxTokenBytes);
  EXPECT_EQ(f.check(fits).status, Status::Valid);
}

TEST(JwtPolicy, RefusesClaimsOfTheWrongType) {
  Fixture f(with_secret());
  expect_invalid(f, hs256(R"({"exp":")" + std::to_string(kNow + 60) + R"("})"), "exp is not a number");
  expect_invalid(f, hs256(R"({"exp":)" + std::to_string(kNow + 60) + R"(,"nbf":"0"})"), "nbf is not a number");
  expect_invalid(f, hs256(R"({"exp":)" + std::to_string(kNow + 60) + R"(,"iat":true})"), "iat is not a number");
  expect_invalid(f, hs256(R"({"exp":null})"), "exp is not a number");
  expect_invalid(f, hs256(R"({"exp":)" + std::to_string(kNow + 60) + R"(,"sub":42})"), "sub is not a string");
  expect_invalid(f, hs256("[1,2]"), "payload is not a JSON object");
  expect_invalid(f, hs256("not json"), "payload is not a JSON object");
  EXPECT_EQ(f.check(hs256(R"({"exp":)" + std::to_string(kNow + 60) + ".5}")).status, Status::Valid);
}

TEST(JwtPolicy, RequiresExpUnlessToldOtherwise) {
  Fixture f(with_secret());
  expect_invalid(f, hs256(R"({"sub":"1"})"), "no exp");
  Fixture lax(with_secret(", require_exp: false"));
  EXPECT_EQ(lax.check(hs256(R"({"sub":"1"})")).status, Status::Valid);
}

TEST(JwtPolicy, RefusesTokensNotYetValid) {
  Fixture f(with_secret());
  std::string exp = R"("exp":)" + std::to_string(kNow + 3600);
  expect_invalid(f, hs256("{" + exp + R"(,"nbf":)" + std::to_string(kNow + 31) + "}"), "nbf");
  EXPECT_EQ(f.check(hs256("{" + exp + R"(,"nbf":)" + std::to_string(kNow + 29) + "}")).status, Status::Valid);
  expect_invalid(f, hs256("{" + exp + R"(,"iat":)" + std::to_string(kNow + 120) + "}"), "iat");
  EXPECT_EQ(f.check(hs256("{" + exp + R"(,"iat":)" + std::to_string(kNow + 10) + "}")).status, Status::Valid);
}

TEST(JwtPolicy, ChecksIssuerAndAudience) {
  Fixture f(with_secret(", issuer: https://id.example, audience: [api, web]"));
  std::string base = R"("exp":)" + std::to_string(kNow + 60);
  EXPECT_EQ(f.check(hs256("{" + base + R"(,"iss":"https://id.example","aud":"api"})")).status, Status::Valid);
  EXPECT_EQ(f.check(hs256("{" + base + R"(,"iss":"https://id.example","aud":["x","web"]})")).status, Status::Valid);
  expect_invalid(f, hs256("{" + base + R"(,"iss":"https://evil.example","aud":"api"})"), "wrong issuer");
  expect_invalid(f, hs256("{" + base + R"(,"aud":"api"})"), "wrong issuer");
  expect_invalid(f, hs256("{" + base + R"(,"iss":"https://id.example","aud":"other"})"), "wrong audience");
  expect_invalid(f, hs256("{" + base + R"(,"iss":"https://id.example","aud":["x",["api"]]})"), "wrong audience");
  expect_invalid(f, hs256("{" + base + R"(,"iss":"https://id.example"})"), "wrong audience");
}

TEST(JwtPolicy, RefusesCritHeaders) {
  Fixture f(with_secret());
  expect_invalid(f, hs256(claims(), R"({"alg":"HS256","crit":["exp"]})"), "crit");
  expect_invalid(f, hs256(claims(), R"({"alg":"HS256","b64":false,"crit":["b64"]})"), "crit");
  expect_invalid(f, hs256(claims(), R"({"alg":"HS256","crit":[]})"), "crit");
  // kid and typ are fine with a single configured key.
  EXPECT_EQ(f.check(hs256(claims(), R"({"alg":"HS256","kid":"k1","typ":"at+jwt"})")).status, Status::Valid);
}

TEST(JwtPolicy, RefusesSeveralAuthorizationFields) {
  Fixture f(with_secret());
  Harness h;
  h.bearer(hs256(claims())).bearer(hs256(claims()));
  proxy::Verdict v = h.run(*f.policy);
  auto* r = std::get_if<proxy::LocalReply>(&v);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->reason, "token_invalid");
}

// Each refusal is counted once, by its reply reason, whichever path decided it.
TEST(JwtPolicy, RefusalsAreCountedByReason) {
  Fixture f(with_secret());
  auto refuse = [&f](Harness& h) {
    proxy::Verdict v = h.run(*f.policy);
    auto* r = std::get_if<proxy::LocalReply>(&v);
    return r ? std::string(r->reason) : std::string("admitted");
  };
  Harness none;
  EXPECT_EQ(refuse(none), "token_missing");
  Harness expired;
  expired.bearer(hs256(R"({"sub":"1","exp":)" + std::to_string(kNow - 3600) + "}"));
  EXPECT_EQ(refuse(expired), "token_expired");
  Harness forged(3);
  forged.bearer(hs256(claims()) + "x");
  EXPECT_EQ(refuse(forged), "token_invalid");
  Harness twice;
  twice.bearer(hs256(claims())).bearer(hs256(claims()));
  EXPECT_EQ(refuse(twice), "token_invalid");
  Harness good;
  good.bearer(hs256(claims()));
  EXPECT_EQ(refuse(good), "admitted");
  EXPECT_EQ(f.failures("token_missing"), 1u);
  EXPECT_EQ(f.failures("token_expired"), 1u);
  EXPECT_EQ(f.failures("token_invalid"), 2u);
  EXPECT_EQ(f.policy->stats().rejected, 4u);
}

// ---- cache ------------------------------------------------------------------------------

TEST(JwtPolicy, CacheSkipsTheSignatureCheckOfARepeatedToken) {
  Fixture f(with_pem(rsa_key().public_pem));
  std::string token = mint("RS256", R"({"alg":"RS256"})", claims(), {}, rsa_key().pkey.get());
  std::shared_ptr<const proxy::Principal> first;
  for (int i = 0; i < 3; ++i) {
    Harness h;
    h.bearer(token);
    ASSERT_TRUE(std::holds_alternative<proxy::Continue>(h.run(*f.policy)));
    if (i == 0) first = h.ctx->principal;
    EXPECT_EQ(h.ctx->principal, first);  // the same shared Principal
  }
  JwtPolicy::Stats s = f.policy->stats();
  EXPECT_EQ(s.signature_checks, 1u);
  EXPECT_EQ(s.cache_hits, 2u);
  EXPECT_EQ(s.accepted, 3u);

  // Another worker has its own cache.
  Harness other(3);
  other.bearer(token);
  ASSERT_TRUE(std::holds_alternative<proxy::Continue>(other.run(*f.policy)));
  EXPECT_EQ(f.policy->stats().signature_checks, 2u);

  // A refused token is never cached. One character well inside the signature changes (its last
  // characters carry padding bits, and may already read "AA": a tampering there can leave the
  // signature as it was).
  std::string bad = token;
  char& c = bad[bad.size() - 20];
  c = c == 'A' ? 'B' : 'A';
  for (int i = 0; i < 2; ++i) {
    Harness h;
    h.bearer(bad);
    ASSERT_TRUE(std::holds_alternative<proxy::LocalReply>(h.run(*f.policy)));
  }
  EXPECT_EQ(f.policy->stats().signature_checks, 4u);
  EXPECT_EQ(f.policy->stats().rejected, 2u);
}

TEST(JwtPolicy, CachedTokenStillExpires) {
  Fixture f(with_secret());
  std::string token = hs256(R"({"sub":"1","exp":)" + std::to_string(kNow + 60) + "}");
  Harness h;
  h.bearer(token);
  ASSERT_TRUE(std::holds_alternative<proxy::Continue>(h.run(*f.policy)));
  f.clock.advance(std::chrono::seconds(60 + 30));  // past exp + leeway
  Harness later;
  later.bearer(token);
  proxy::Verdict v = later.run(*f.policy);
  auto* r = std::get_if<proxy::LocalReply>(&v);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->message, "Token expired");
  EXPECT_EQ(f.policy->stats().signature_checks, 1u);
  EXPECT_EQ(f.policy->stats().cache_hits, 1u);
}

TEST(JwtPolicy, CacheStaysBounded) {
  Fixture f(with_secret());
  for (std::size_t i = 0; i < JwtPolicy::kCacheEntries + 10; ++i)
    ASSERT_EQ(f.check(hs256(claims(R"(,"n":)" + std::to_string(i)))).status, Status::Valid);
  for (std::size_t i = 0; i < JwtPolicy::kCacheEntries + 10; ++i) {
    Harness h;
    h.bearer(hs256(claims(R"(,"n":)" + std::to_string(i))));
    ASSERT_TRUE(std::holds_alternative<proxy::Continue>(h.run(*f.policy)));
  }
  // Re-running the last one hits.
  Harness h;
  h.bearer(hs256(claims(R"(,"n":)" + std::to_string(JwtPolicy::kCacheEntries + 9))));
  ASSERT_TRUE(std::holds_alternative<proxy::Continue>(h.run(*f.policy)));
  EXPECT_EQ(f.policy->stats().cache_hits, 1u);
  EXPECT_EQ(f.policy->stats().signature_checks, JwtPolicy::kCacheEntries + 10);
}

// ---- forward_claims ---------------------------------------------------------------------

TEST(JwtPolicy, ForwardClaimsReplacesSpoofedHeaders) {
  Fixture f(with_secret(", forward_claims: {sub: X-User-Id, role: X-User-Role, groups: X-Groups, tenant: X-Tenant}"));
  Harness h;
  h.bearer(hs256(claims(R"(,"groups":["a","b"])")));
  ASSERT_TRUE(std::holds_alternative<proxy::Continue>(h.run(*f.policy)));
  std::vector<http::Field> up = {{"Host", "svc"}, {"x-user-id", "1"}, {"X-USER-ROLE", "admin"},
                                 {"X-Tenant", "spoofed"}, {"Accept", "*/*"}};
  f.policy->on_upstream_request(*h.ctx, up);
  auto values = [&](std::string_view name) {
    std::vector<std::string> out;
    for (const auto& fld : up)
      if (iequals(fld.name, name)) out.emplace_back(fld.value);
    return out;
  };
  EXPECT_EQ(values("X-User-Id"), std::vector<std::string>{"42"});
  EXPECT_EQ(values("X-User-Role"), std::vector<std::string>{"admin"});
  EXPECT_EQ(values("X-Groups"), std::vector<std::string>{R"(["a","b"])"});
  EXPECT_TRUE(values("X-Tenant").empty());  // spoofed copy removed, no such claim
  EXPECT_EQ(values("Host"), std::vector<std::string>{"svc"});
  EXPECT_EQ(values("Accept"), std::vector<std::string>{"*/*"});
}

TEST(JwtPolicy, ForwardClaimsNeverInjectsControlCharacters) {
  Fixture f(with_secret(", forward_claims: {role: X-User-Role}"));
  Harness h;
  h.bearer(hs256(claims(R"(,"role":"admin\r\nX-Evil: 1")")));
  ASSERT_TRUE(std::holds_alternative<proxy::Continue>(h.run(*f.policy)));
  std::vector<http::Field> up = {{"X-User-Role", "spoofed"}};
  f.policy->on_upstream_request(*h.ctx, up);
  EXPECT_TRUE(up.empty());
}

// ---- token_from -------------------------------------------------------------------------

TEST(JwtConfig, TokenFromDefaultsToTheHeader) {
  EXPECT_EQ(parse_ok(with_secret()).token_from, std::vector<TokenSource>{TokenSource{}});
  using K = TokenSource::Kind;
  EXPECT_EQ(parse_ok(with_secret(", token_from: [query:access_token, header, cookie:session]")).token_from,
            (std::vector<TokenSource>{{K::Query, "access_token"}, {K::Header, ""}, {K::Cookie, "session"}}));
  EXPECT_EQ(parse_ok(with_secret(", token_from: 'query:t'")).token_from, (std::vector<TokenSource>{{K::Query, "t"}}));
}

TEST(JwtConfig, TokenFromErrors) {
  const std::vector<ConfigError> cases = {
      {"{type: jwt, secret: s, token_from: []}", "policies.auth.token_from", "expected a non-empty list of token sources"},
      {"{type: jwt, secret: s, token_from: {query: t}}", "policies.auth.token_from", "expected a non-empty list"},
      {"{type: jwt, secret: s, token_from: [header, body:t]}", "policies.auth.token_from[1]",
       "unknown token source \"body:t\"; expected header, query:NAME or cookie:NAME"},
      {"{type: jwt, secret: s, token_from: ['qeury:t']}", "policies.auth.token_from[0]", "did you mean \"query\"?"},
      {"{type: jwt, secret: s, token_from: [Header]}", "policies.auth.token_from[0]", "did you mean \"header\"?"},
      {"{type: jwt, secret: s, token_from: ['query:']}", "policies.auth.token_from[0]",
       "query needs a name, e.g. query:access_token"},
      {"{type: jwt, secret: s, token_from: [query]}", "policies.auth.token_from[0]", "query needs a name"},
      {"{type: jwt, secret: s, token_from: ['cookie:']}", "policies.auth.token_from[0]",
       "cookie needs a name, e.g. cookie:access_token"},
      {"{type: jwt, secret: s, token_from: ['cookie:a b']}", "policies.auth.token_from[0]", "a cookie name is a token"},
      {"{type: jwt, secret: s, token_from: ['cookie:a=b']}", "policies.auth.token_from[0]", "a cookie name is a token"},
      {"{type: jwt, secret: s, token_from: ['query:a&b']}", "policies.auth.token_from[0]",
       "a query parameter name cannot hold"},
      {"{type: jwt, secret: s, token_from: ['header:X-Token']}", "policies.auth.token_from[0]", "header takes no name"},
      {"{type: jwt, secret: s, token_from: [header, 'query:t', header]}", "policies.auth.token_from[2]",
       "header is listed twice"},
      {"{type: jwt, secret: s, token_from: ['cookie:t', 'cookie:t']}", "policies.auth.token_from[1]",
       "cookie:t is listed twice"},
      {"{type: jwt, secret: s, token_from: [[header]]}", "policies.auth.token_from[0]", "unknown token source"},
      {"{type: jwt, secret: s, tokenfrom: [header]}", "policies.auth.tokenfrom", "did you mean \"token_from\""},
  };
  for (const auto& c : cases) {
    auto errs = errors_of(c.yaml);
    bool found = false;
    for (const auto& e : errs) found |= e.path == c.path && e.message.find(c.message_part) != std::string::npos;
    EXPECT_TRUE(found) << c.yaml << "\n  wanted " << c.path << ": " << c.message_part << "\n  got "
                       << (errs.empty() ? std::string("no error") : errs[0].to_string());
  }
}

std::string refusal(proxy::Verdict v) {
  auto* r = std::get_if<proxy::LocalReply>(&v);
  return r ? std::string(r->reason) : std::string("admitted");
}

// The upstream fields and query after every on_upstream_request, as the exchange runs them.
struct Upstream {
  std::vector<http::Field> fields;
  std::optional<std::string_view> query;
};
Upstream upstream_of(JwtPolicy& p, Harness& h) {
  Upstream up;
  for (const auto& f : h.req.fields) up.fields.push_back(f);
  h.ctx->upstream_query.reset();
  p.on_upstream_request(*h.ctx, up.fields);
  up.query = h.ctx->upstream_query;
  return up;
}
std::vector<std::string> cookie_fields(const Upstream& up) {
  std::vector<std::string> out;
  for (const auto& f : up.fields)
    if (iequals(f.name, "cookie")) out.emplace_back(f.value);
  return out;
}

TEST(JwtPolicy, DefaultReadsOnlyTheAuthorizationField) {
  Fixture f(with_secret());
  Harness h;
  h.query("access_token=" + hs256(claims()));
  h.header("Cookie", "access_token=" + hs256(claims()));
  EXPECT_EQ(refusal(h.run(*f.policy)), "token_missing");
  Harness ok;
  ok.bearer(hs256(claims())).query("access_token=x");
  EXPECT_EQ(refusal(ok.run(*f.policy)), "admitted");
  Upstream up = upstream_of(*f.policy, ok);
  EXPECT_FALSE(up.query.has_value());  // nothing taken from the query: it goes on untouched
}

TEST(JwtPolicy, TokenFromTheQueryIsRemovedBeforeForwarding) {
  Fixture f(with_secret(", token_from: [query:access_token]"));
  const std::string token = hs256(claims());
  Harness h;
  h.query("room=7&access_token=" + token + "&b=%20x&z");
  ASSERT_EQ(refusal(h.run(*f.policy)), "admitted");
  ASSERT_NE(h.ctx->principal, nullptr);
  EXPECT_EQ(h.ctx->principal->subject, "42");
  Upstream up = upstream_of(*f.policy, h);
  ASSERT_TRUE(up.query.has_value());
  EXPECT_EQ(*up.query, "room=7&b=%20x&z");  // the others kept as sent, in order

  Harness alone;
  alone.query("access_token=" + token);
  ASSERT_EQ(refusal(alone.run(*f.policy)), "admitted");
  up = upstream_of(*f.policy, alone);
  ASSERT_TRUE(up.query.has_value());
  EXPECT_EQ(*up.query, "");  // the service sees no '?'

  // The name is compared percent-decoded, and the value decoded, as a browser encodes them.
  Harness encoded;
  encoded.query("access%5Ftoken=" + token + "&x=1");
  ASSERT_EQ(refusal(encoded.run(*f.policy)), "admitted");
  EXPECT_EQ(*upstream_of(*f.policy, encoded).query, "x=1");

  // A Bearer header is not read: the query is the only source.
  Harness header;
  header.bearer(token);
  EXPECT_EQ(refusal(header.run(*f.policy)), "token_missing");
}

TEST(JwtPolicy, TokenFromTheQueryIsKeptOutOfTheAccessLog) {
  Fixture f(with_secret(", token_from: [header, query:access_token, query:t]"));
  const std::string token = hs256(claims());
  Harness h;
  h.target("/chat?room=7&access_token=" + token + "&t=" + token + "x&lang=fr");
  EXPECT_EQ(refusal(h.run(*f.policy)), "admitted");
  EXPECT_EQ(h.ctx->logged_target, "/chat?room=7&lang=fr");
  // Refused requests too: the line of a 401 shows no token either.
  Harness bad;
  bad.target("/chat?access_token=" + token + "x");
  EXPECT_EQ(refusal(bad.run(*f.policy)), "token_invalid");
  EXPECT_EQ(bad.ctx->logged_target, "/chat");
  // Nothing to hide: the request's own target is logged.
  Harness header;
  header.target("/chat?room=7").bearer(token);
  EXPECT_EQ(refusal(header.run(*f.policy)), "admitted");
  EXPECT_EQ(header.ctx->logged_target, "");
}

TEST(JwtPolicy, TokenFromACookieIsRemovedBeforeForwarding) {
  Fixture f(with_secret(", token_from: [cookie:jwt]"));
  const std::string token = hs256(claims());
  Harness h;
  h.header("Cookie", "theme=dark; jwt=" + token + "; lang=fr").header("Accept", "*/*");
  ASSERT_EQ(refusal(h.run(*f.policy)), "admitted");
  Upstream up = upstream_of(*f.policy, h);
  EXPECT_EQ(cookie_fields(up), std::vector<std::string>{"theme=dark; lang=fr"});
  EXPECT_FALSE(up.query.has_value());

  // The only cookie: the field is dropped. A quoted value is read without its quotes.
  Harness only;
  only.header("Cookie", "jwt=\"" + token + "\"").header("Accept", "*/*");
  ASSERT_EQ(refusal(only.run(*f.policy)), "admitted");
  up = upstream_of(*f.policy, only);
  EXPECT_TRUE(cookie_fields(up).empty());
  ASSERT_EQ(up.fields.size(), 1u);
  EXPECT_EQ(up.fields[0].name, "Accept");

  // Several Cookie fields (as HTTP/2 sends them): only the token's own goes.
  Harness split;
  split.header("Cookie", "a=1").header("cookie", "jwt=" + token).header("Cookie", "b=2");
  ASSERT_EQ(refusal(split.run(*f.policy)), "admitted");
  EXPECT_EQ(cookie_fields(upstream_of(*f.policy, split)), (std::vector<std::string>{"a=1", "b=2"}));

  // Names are case-sensitive (RFC 6265): JWT= is another cookie.
  Harness other;
  other.header("Cookie", "JWT=" + token);
  EXPECT_EQ(refusal(other.run(*f.policy)), "token_missing");
}

TEST(JwtPolicy, TokenFromTriesEachSourceInOrder) {
  Fixture f(with_secret(", token_from: [header, query:access_token, cookie:jwt]"));
  const std::string good = hs256(claims());
  const std::string other = hs256(claims(R"(,"n":2)"));
  // The header wins: the query's copy is not the token and stays.
  Harness h;
  h.bearer(good).query("access_token=" + hs256(claims()) + "x");
  EXPECT_EQ(refusal(h.run(*f.policy)), "admitted");
  EXPECT_FALSE(upstream_of(*f.policy, h).query.has_value());
  // A non-Bearer Authorization (Basic, for the service) holds no token: the query's is used,
  // and the Authorization field goes on untouched.
  Harness basic;
  basic.header("Authorization", "Basic dXNlcjpwYXNz").query("access_token=" + good);
  EXPECT_EQ(refusal(basic.run(*f.policy)), "admitted");
  Upstream up = upstream_of(*f.policy, basic);
  EXPECT_EQ(*up.query, "");
  ASSERT_EQ(up.fields.size(), 1u);
  EXPECT_EQ(up.fields[0].value, "Basic dXNlcjpwYXNz");
  // A Bearer token that fails is final: a good one later in the list does not rescue it.
  Harness forged;
  forged.bearer(good + "x").query("access_token=" + good);
  EXPECT_EQ(refusal(forged.run(*f.policy)), "token_invalid");
  // An empty query parameter holds no token: the cookie's is used, and only it is removed.
  Harness empty;
  empty.query("access_token=&a=1").header("Cookie", "jwt=" + other);
  EXPECT_EQ(refusal(empty.run(*f.policy)), "admitted");
  up = upstream_of(*f.policy, empty);
  EXPECT_FALSE(up.query.has_value());
  EXPECT_TRUE(cookie_fields(up).empty());
  // Nowhere: token_missing, saying where it looked.
  Harness none;
  none.header("Cookie", "jwt=").query("a=1");
  EXPECT_EQ(refusal(none.run(*f.policy)), "token_missing");
  EXPECT_EQ(f.failures("token_missing"), 1u);
}

TEST(JwtPolicy, TokenFromRefusesAmbiguousRequests) {
  Fixture f(with_secret(", token_from: [query:access_token, cookie:jwt]"));
  const std::string good = hs256(claims());
  Harness twice;
  twice.query("access_token=" + good + "&access_token=" + good);
  EXPECT_EQ(refusal(twice.run(*f.policy)), "token_invalid");
  Harness cookies;
  cookies.header("Cookie", "jwt=" + good + "; jwt=" + good);
  EXPECT_EQ(refusal(cookies.run(*f.policy)), "token_invalid");
  Harness fields;
  fields.header("Cookie", "jwt=" + good).header("Cookie", "jwt=" + good);
  EXPECT_EQ(refusal(fields.run(*f.policy)), "token_invalid");
  Harness bad;
  bad.query("access_token=" + good + "x");
  EXPECT_EQ(refusal(bad.run(*f.policy)), "token_invalid");
  EXPECT_EQ(f.failures("token_invalid"), 4u);
  EXPECT_EQ(f.policy->stats().rejected, 4u);
}

TEST(JwtPolicy, TokenFromTheQueryUsesTheCache) {
  Fixture f(with_pem(rsa_key().public_pem, ", token_from: [cookie:jwt, query:t]"));
  std::string token = mint("RS256", R"({"alg":"RS256"})", claims(), {}, rsa_key().pkey.get());
  Harness a;
  a.query("t=" + token);
  ASSERT_EQ(refusal(a.run(*f.policy)), "admitted");
  Harness b;
  b.header("Cookie", "jwt=" + token);
  ASSERT_EQ(refusal(b.run(*f.policy)), "admitted");
  EXPECT_EQ(f.policy->stats().signature_checks, 1u);
  EXPECT_EQ(f.policy->stats().cache_hits, 1u);
}

// ---- explain ----------------------------------------------------------------------------

TEST(JwtExplain, DescribesTheVerdict) {
  Fixture f(with_secret());
  EXPECT_EQ(explain(*f.policy, ""), "401 Access token required");
  EXPECT_EQ(explain(*f.policy, "Bearer " + hs256(R"({"sub":"42","role":"admin","iat":)" + std::to_string(kNow) +
                                                 R"(,"exp":)" + std::to_string(kNow + 3599) + "}")),
            "valid, sub=42, role=admin, expires in 59m");
  EXPECT_EQ(explain(*f.policy, "Bearer " + hs256(R"({"sub":"7","exp":)" + std::to_string(kNow + 7200) + "}")),
            "valid, sub=7, expires in 2h");
  EXPECT_EQ(explain(*f.policy, "Bearer " + hs256(R"({"exp":)" + std::to_string(kNow - 3600) + "}")),
            "401 Token expired (expired 1h ago)");
  EXPECT_EQ(explain(*f.policy, "Bearer x.y"), "401 Invalid token: not three dot-separated segments");
  Fixture lax(with_secret(", require_exp: false"));
  EXPECT_EQ(explain(*lax.policy, "Bearer " + hs256(R"({"sub":"1"})")), "valid, sub=1, no expiry");
}

}  // namespace
}  // namespace gh::policies
