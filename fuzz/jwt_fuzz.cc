// libFuzzer target for JWT parsing and verification (JwtPolicy::check, src/policies/jwt/jwt.h).
// Four policies hold fixed keys for this process: an HS256/384/512 secret (with an issuer and
// audiences to check), an RSA key (RS* and PS*), a P-256 key (ES256) and an Ed25519 key. The
// input is either an Authorization value as it is, or a recipe for a token: a header and a
// payload (well-formed ones built from the input's values, or the input's bytes), signed by one
// of the keys, by a wrong secret or not at all ("none"), then possibly changed by one byte.
// Checked: nothing crashes; a token is Valid only when it is exactly the one signed, by the
// policy's own key, with the algorithm its header names, and its claims allow it; a well-formed
// token signed by the right key gets exactly the verdict its claims call for; explain() agrees.
#include <fuzzer/FuzzedDataProvider.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "policies/jwt/jwt.h"
#include "policies/jwt/jwt_test_util.h"

namespace {

using namespace gh::policies;
using gh::policies::jwt_test::b64url;
using json = nlohmann::json;
using Status = JwtCheck::Status;

constexpr long long kNow = 1'800'000'000;
constexpr long long kLeeway = 30;
const std::string kSecret = "fuzz-secret-of-at-least-32-bytes!";
const std::string kIssuer = "https://issuer.test";

enum Owner { kHmac, kRsa, kEc, kEd, kNobody };

struct Signer {
  const char* alg;  // as written in the header
  Owner owner;      // the policy whose key it uses; kNobody for a wrong secret or "none"
};
constexpr Signer kSigners[] = {
    {"HS256", kHmac}, {"HS384", kHmac}, {"HS512", kHmac}, {"HS256", kNobody}, {"RS256", kRsa}, {"RS512", kRsa},
    {"PS256", kRsa},  {"PS384", kRsa},  {"ES256", kEc},   {"EdDSA", kEd},     {"none", kNobody},
};

struct World {
  jwt_test::Key rsa = jwt_test::generate("RSA");
  jwt_test::Key ec = jwt_test::generate("EC", "P-256");
  jwt_test::Key ed = jwt_test::generate("ED25519");
  gh::core::FakeClock clock{gh::core::Clock::Wall(std::chrono::seconds(kNow))};
  std::vector<std::unique_ptr<JwtPolicy>> policies;  // indexed by Owner

  World() {
    auto make = [&](JwtKeyKind kind, const std::string& pem) {
      JwtConfig c;
      c.key_kind = kind;
      c.public_key_pem = pem;
      c.algorithms = default_algorithms(kind);
      c.leeway = std::chrono::seconds(kLeeway);
      return c;
    };
    JwtConfig hmac = make(JwtKeyKind::Secret, "");
    hmac.secret = kSecret;
    hmac.issuer = kIssuer;
    hmac.audience = {"api", "web"};
    policies.push_back(std::make_unique<JwtPolicy>("hmac", hmac, clock, 1));
    policies.push_back(std::make_unique<JwtPolicy>("rsa", make(JwtKeyKind::Rsa, rsa.public_pem), clock, 1));
    policies.push_back(std::make_unique<JwtPolicy>("ec", make(JwtKeyKind::EcP256, ec.public_pem), clock, 1));
    policies.push_back(std::make_unique<JwtPolicy>("ed", make(JwtKeyKind::Ed25519, ed.public_pem), clock, 1));
  }

  std::string sign(const Signer& s, std::string_view input) const {
    const std::string_view alg = s.alg;
    if (alg == "none") return "";
    if (s.owner == kNobody) return jwt_test::sign(alg, input, "not-" + kSecret, nullptr);
    EVP_PKEY* key = s.owner == kRsa ? rsa.pkey.get() : s.owner == kEc ? ec.pkey.get() : ed.pkey.get();
    return jwt_test::sign(alg, input, kSecret, key);
  }
};

const World& world() {
  static const World w;
  return w;
}

// The claims of a well-formed payload, and the verdict they call for under policy `owner`.
struct Claims {
  json payload = json::object();
  Status expect = Status::Valid;
};

Claims build_claims(FuzzedDataProvider& in, Owner owner) {
  Claims c;
  bool invalid = false, expired = false;
  if (in.ConsumeBool()) c.payload["sub"] = in.ConsumeRandomLengthString(40);
  if (in.ConsumeBool()) c.payload["role"] = in.ConsumeRandomLengthString(20);
  if (in.ConsumeBool()) {
    const long long exp = kNow + in.ConsumeIntegralInRange<long long>(-200, 200);
    c.payload["exp"] = exp;
    expired = kNow >= exp + kLeeway;
  } else {
    invalid = true;  // exp is required
  }
  for (const char* name : {"nbf", "iat"}) {
    if (!in.ConsumeBool()) continue;
    const long long t = kNow + in.ConsumeIntegralInRange<long long>(-200, 200);
    c.payload[name] = t;
    invalid |= t > kNow + kLeeway;
  }
  switch (in.ConsumeIntegralInRange(0, 2)) {
    case 0: break;
    case 1: c.payload["iss"] = kIssuer; break;
    case 2: c.payload["iss"] = in.ConsumeRandomLengthString(20); break;
  }
  switch (in.ConsumeIntegralInRange(0, 4)) {
    case 0: break;
    case 1: c.payload["aud"] = "api"; break;
    case 2: c.payload["aud"] = json::array({"x", "web"}); break;
    case 3: c.payload["aud"] = json::array({in.ConsumeRandomLengthString(10)}); break;
    case 4: c.payload["aud"] = in.ConsumeIntegral<int>(); break;
  }
  if (owner == kHmac) {
    const auto iss = c.payload.find("iss");
    invalid |= iss == c.payload.end() || *iss != kIssuer;
    bool aud = false;
    if (const auto a = c.payload.find("aud"); a != c.payload.end()) {
      for (const json& v : a->is_array() ? *a : json::array({*a}))
        aud |= v.is_string() && (v == "api" || v == "web");
    }
    invalid |= !aud;
  }
  // The policy refuses an expired token before looking at nbf, iat, iss and aud.
  c.expect = expired && c.payload.contains("exp") ? Status::Expired : invalid ? Status::Invalid : Status::Valid;
  return c;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// What a Valid verdict from `policy` (owned by `owner`) requires of the token it was given.
void check_valid(const JwtCheck& r, Owner owner, const std::string& token, const std::string& signed_token,
                 const Signer* signer, const std::string& header, const std::string& payload) {
  FUZZ_CHECK(signer != nullptr);  // never for bytes nobody signed
  // Spaces and tabs around the token belong to the header field (OWS) and to the scheme's
  // separator (1*SP), not to the token: a mutation that only added one there leaves it valid.
  std::string_view bare = token;
  while (!bare.empty() && (bare.front() == ' ' || bare.front() == '\t')) bare.remove_prefix(1);
  while (!bare.empty() && (bare.back() == ' ' || bare.back() == '\t')) bare.remove_suffix(1);
  FUZZ_CHECK(bare == signed_token);
  FUZZ_CHECK(signer->owner == owner);
  const json h = json::parse(header, nullptr, false);
  FUZZ_CHECK(h.is_object() && h.contains("alg") && h["alg"] == signer->alg && !h.contains("crit"));
  const json p = json::parse(payload, nullptr, false);
  FUZZ_CHECK(p.is_object() && p.contains("exp") && p["exp"].is_number());
  FUZZ_CHECK(kNow < p["exp"].get<double>() + kLeeway);
  FUZZ_CHECK(r.principal != nullptr && r.principal->source == "jwt");
  if (p.contains("sub")) FUZZ_CHECK(p["sub"].is_string() && r.principal->subject == p["sub"].get<std::string>());
  if (owner == kHmac) FUZZ_CHECK(p.contains("iss") && p["iss"] == kIssuer);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const World& w = world();
  FuzzedDataProvider in(data, size);

  if (in.ConsumeBool()) {
    // Bytes as they come, with and without a Bearer scheme: nothing signed them.
    const std::string raw = in.ConsumeRemainingBytesAsString();
    for (const std::string& auth : {raw, "Bearer " + raw}) {
      for (const auto& p : w.policies) {
        const JwtCheck r = p->check(auth);
        FUZZ_CHECK(r.status != Status::Valid);
        FUZZ_CHECK(!explain(*p, auth).starts_with("valid"));
      }
    }
    return 0;
  }

  const Signer& signer = kSigners[in.ConsumeIntegralInRange<std::size_t>(0, std::size(kSigners) - 1)];
  const bool canonical_header = in.ConsumeBool();
  const std::string header =
      canonical_header ? std::string(R"({"alg":")") + signer.alg + R"(","typ":"JWT"})" : in.ConsumeRandomLengthString(200);
  std::optional<Claims> claims;
  std::string payload;
  if (in.ConsumeBool()) {
    claims = build_claims(in, signer.owner);
    payload = dump(claims->payload);
  } else {
    payload = in.ConsumeRandomLengthString(400);
  }
  const std::string input = b64url(header) + "." + b64url(payload);
  const std::string signed_token = input + "." + b64url(w.sign(signer, input));

  std::string token = signed_token;
  switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0: break;
    case 1: token[in.ConsumeIntegralInRange<std::size_t>(0, token.size() - 1)] = in.ConsumeIntegral<char>(); break;
    case 2: token.erase(in.ConsumeIntegralInRange<std::size_t>(0, token.size() - 1), 1); break;
    case 3: token.insert(in.ConsumeIntegralInRange<std::size_t>(0, token.size()), 1, in.ConsumeIntegral<char>()); break;
  }
  const std::string auth = (in.ConsumeBool() ? "Bearer " : "bEaReR \t") + token;

  for (int owner = kHmac; owner < kNobody; ++owner) {
    const JwtPolicy& policy = *w.policies[static_cast<std::size_t>(owner)];
    const JwtCheck r = policy.check(auth);
    FUZZ_CHECK(explain(policy, auth).starts_with("valid") == (r.status == Status::Valid));
    if (r.status == Status::Valid)
      check_valid(r, static_cast<Owner>(owner), token, signed_token, &signer, header, payload);
    // A well-formed token, unchanged and signed with this policy's key: its claims decide.
    if (token == signed_token && canonical_header && claims && signer.owner == owner)
      FUZZ_CHECK(r.status == claims->expect);
  }
  return 0;
}
