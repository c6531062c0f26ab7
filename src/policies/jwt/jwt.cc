#include "policies/jwt/jwt.h"

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/strings.h"
#include "policies/common/credentials.h"
#include "proxy/worker.h"

namespace gh::policies {

namespace {

using json = nlohmann::ordered_json;  // claims keep the token's order
using Status = JwtCheck::Status;

constexpr std::chrono::milliseconds kJwksPoll{10};  // how often a request waiting for a JWKS refetch looks
constexpr std::string_view kRealm = R"(Bearer realm="gatehouse")";
constexpr std::string_view kExpiredChallenge =
    R"(Bearer realm="gatehouse", error="invalid_token", error_description="The access token expired")";
constexpr std::string_view kInvalidChallenge =
    R"(Bearer realm="gatehouse", error="invalid_token", error_description="The access token is invalid")";

JwtCheck refuse(Status s, std::string detail) {
  JwtCheck c;
  c.status = s;
  c.detail = std::move(detail);
  return c;
}

const EVP_MD* digest_for(JwtAlg a) {
  switch (a) {
    case JwtAlg::HS256:
    case JwtAlg::RS256:
    case JwtAlg::PS256:
    case JwtAlg::ES256: return EVP_sha256();
    case JwtAlg::HS384:
    case JwtAlg::RS384:
    case JwtAlg::PS384:
    case JwtAlg::ES384: return EVP_sha384();
    case JwtAlg::HS512:
    case JwtAlg::RS512:
    case JwtAlg::PS512:
    case JwtAlg::ES512: return EVP_sha512();
    case JwtAlg::EdDSA: return nullptr;
  }
  return nullptr;
}

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

bool verify_hmac(const EVP_MD* md, std::string_view secret, std::string_view input, std::string_view sig) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(md, secret.data(), static_cast<int>(secret.size()), bytes(input), input.size(), mac, &mac_len) == nullptr)
    return false;
  return sig.size() == mac_len && CRYPTO_memcmp(mac, sig.data(), mac_len) == 0;
}

struct MdCtx {
  EVP_MD_CTX* p = EVP_MD_CTX_new();
  ~MdCtx() { EVP_MD_CTX_free(p); }
};

bool verify_rsa(EVP_PKEY* key, const EVP_MD* md, bool pss, std::string_view input, std::string_view sig) {
  // RFC 8017 §8.2.2 / §8.1.2: the signature is exactly as long as the modulus.
  if (sig.size() != static_cast<std::size_t>(EVP_PKEY_get_size(key))) return false;
  MdCtx ctx;
  EVP_PKEY_CTX* pctx = nullptr;
  if (ctx.p == nullptr || EVP_DigestVerifyInit(ctx.p, &pctx, md, nullptr, key) != 1) return false;
  if (pss) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1)
      return false;
  } else if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
    return false;
  }
  return EVP_DigestVerify(ctx.p, bytes(sig), sig.size(), bytes(input), input.size()) == 1;
}

// JOSE carries ECDSA signatures as the raw r||s (RFC 7518 §3.4); OpenSSL wants DER.
bool verify_ecdsa(EVP_PKEY* key, const EVP_MD* md, std::size_t coord, std::string_view input, std::string_view sig) {
  if (sig.size() != 2 * coord) return false;
  ECDSA_SIG* es = ECDSA_SIG_new();
  if (es == nullptr) return false;
  BIGNUM* r = BN_bin2bn(bytes(sig), static_cast<int>(coord), nullptr);
  BIGNUM* s = BN_bin2bn(bytes(sig) + coord, static_cast<int>(coord), nullptr);
  if (r == nullptr || s == nullptr || ECDSA_SIG_set0(es, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return false;
  }
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(es, &der);
  ECDSA_SIG_free(es);
  if (der_len <= 0) return false;
  MdCtx ctx;
  bool ok = ctx.p != nullptr && EVP_DigestVerifyInit(ctx.p, nullptr, md, nullptr, key) == 1 &&
            EVP_DigestVerify(ctx.p, der, static_cast<std::size_t>(der_len), bytes(input), input.size()) == 1;
  OPENSSL_free(der);
  return ok;
}

bool verify_ed25519(EVP_PKEY* key, std::string_view input, std::string_view sig) {
  if (sig.size() != 64) return false;
  MdCtx ctx;
  return ctx.p != nullptr && EVP_DigestVerifyInit(ctx.p, nullptr, nullptr, nullptr, key) == 1 &&
         EVP_DigestVerify(ctx.p, bytes(sig), sig.size(), bytes(input), input.size()) == 1;
}

double seconds_since_epoch(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// Splits "Bearer <token>" (scheme case-insensitive, RFC 6750 §2.1). Missing when there is no
// bearer credential at all; Invalid when there is one that cannot be a token.
std::optional<JwtCheck> bearer_token(std::string_view value, std::string_view& token) {
  value = trim_ows(value);
  if (value.empty()) return refuse(Status::Missing, "no Authorization field");
  // The scheme ends at the first space or tab (a loop: find_first_of calls memchr per byte).
  std::size_t sp = 0;
  while (sp < value.size() && value[sp] != ' ' && value[sp] != '\t') ++sp;
  if (sp == value.size()) sp = std::string_view::npos;
  std::string_view scheme = value.substr(0, sp);
  if (!iequals(scheme, "bearer")) return refuse(Status::Missing, "no Bearer credential");
  if (sp == std::string_view::npos) return refuse(Status::Missing, "empty Bearer credential");
  token = trim_ows(value.substr(sp));
  if (token.empty()) return refuse(Status::Missing, "empty Bearer credential");
  if (token.size() > JwtPolicy::kMaxTokenBytes)
    return refuse(Status::Invalid, "token longer than " + std::to_string(JwtPolicy::kMaxTokenBytes) + " bytes");
  // Two scans for one byte each, not find_first_of(" \t"), which calls memchr over the two
  // for every byte of the token.
  if (token.find(' ') != std::string_view::npos || token.find('\t') != std::string_view::npos)
    return refuse(Status::Invalid, "space inside the token");
  return std::nullopt;
}

bool has_ctl(std::string_view s) {
  for (unsigned char c : s)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return true;
  return false;
}

std::string short_duration(double seconds) {
  auto s = static_cast<long long>(seconds);
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m";
  if (s < 86400) {
    long long h = s / 3600, m = s % 3600 / 60;
    return std::to_string(h) + "h" + (m ? std::to_string(m) + "m" : "");
  }
  long long d = s / 86400, h = s % 86400 / 3600;
  return std::to_string(d) + "d" + (h ? std::to_string(h) + "h" : "");
}

}  // namespace

JwtPolicy::JwtPolicy(std::string name, JwtConfig cfg, const core::Clock& clock, unsigned workers,
                     std::shared_ptr<JwksSource> jwks, core::Metrics* metrics)
    : name_(std::move(name)), cfg_(std::move(cfg)), clock_(clock), jwks_(std::move(jwks)), slots_(workers) {
  if (metrics) failures_ = proxy::AuthFailureCounters(*metrics, name_, {"token_missing", "token_expired", "token_invalid"});
  GH_CHECK(!cfg_.algorithms.empty());
  GH_CHECK((cfg_.key_kind == JwtKeyKind::Jwks) == (jwks_ != nullptr));
  if (cfg_.key_kind != JwtKeyKind::Jwks && cfg_.key_kind != JwtKeyKind::Secret) {
    std::string error;
    key_ = load_public_key(cfg_.public_key_pem, error);
    GH_CHECK(key_ != nullptr);
    GH_CHECK(key_kind_of(key_.get(), error) == cfg_.key_kind);
  }
  for (JwtAlg a : cfg_.algorithms) GH_CHECK(alg_fits_key(a, cfg_.key_kind));
}

JwtPolicy::~JwtPolicy() = default;

bool JwtPolicy::verify_signature(JwtAlg alg, EVP_PKEY* key, std::string_view input, std::string_view sig) const {
  const EVP_MD* md = digest_for(alg);
  switch (alg) {
    case JwtAlg::HS256:
    case JwtAlg::HS384:
    case JwtAlg::HS512:
      return cfg_.key_kind == JwtKeyKind::Secret && verify_hmac(md, cfg_.secret, input, sig);
    case JwtAlg::RS256:
    case JwtAlg::RS384:
    case JwtAlg::RS512: return key && verify_rsa(key, md, false, input, sig);
    case JwtAlg::PS256:
    case JwtAlg::PS384:
    case JwtAlg::PS512: return key && verify_rsa(key, md, true, input, sig);
    case JwtAlg::ES256: return key && verify_ecdsa(key, md, 32, input, sig);
    case JwtAlg::ES384: return key && verify_ecdsa(key, md, 48, input, sig);
    case JwtAlg::ES512: return key && verify_ecdsa(key, md, 66, input, sig);
    case JwtAlg::EdDSA: return key && verify_ed25519(key, input, sig);
  }
  return false;
}

JwtCheck JwtPolicy::check(std::string_view authorization) const {
  std::string_view token;
  if (auto refused = bearer_token(authorization, token)) return *refused;
  return check_token(token);
}

JwtCheck JwtPolicy::check_token(std::string_view token) const {
  if (token.size() > kMaxTokenBytes) return refuse(Status::Invalid, "token too long");
  const std::size_t d1 = token.find('.');
  const std::size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return refuse(Status::Invalid, "not three dot-separated segments");
  std::string header_raw, payload_raw, sig;
  if (!base64url_decode(token.substr(0, d1), header_raw) ||
      !base64url_decode(token.substr(d1 + 1, d2 - d1 - 1), payload_raw) ||
      !base64url_decode(token.substr(d2 + 1), sig))
    return refuse(Status::Invalid, "malformed base64url");

  // Header: a JSON object naming an allowed algorithm; nothing critical.
  json header = json::parse(header_raw, nullptr, false);
  if (header.is_discarded() || !header.is_object()) return refuse(Status::Invalid, "header is not a JSON object");
  auto alg_it = header.find("alg");
  if (alg_it == header.end() || !alg_it->is_string()) return refuse(Status::Invalid, "header without alg");
  const std::string& alg_text = alg_it->get_ref<const std::string&>();
  auto alg = parse_alg(alg_text);
  bool allowed = false;
  if (alg)
    for (JwtAlg a : cfg_.algorithms) allowed |= a == *alg;
  if (!allowed) return refuse(Status::Invalid, "algorithm \"" + alg_text + "\" is not accepted");
  if (header.contains("crit")) return refuse(Status::Invalid, "crit header is not supported");

  // The key: the configured one, or the JWKS key named by `kid` (HMAC never reaches here with a
  // JWKS: the algorithm list holds none).
  EVP_PKEY* key = key_.get();
  std::shared_ptr<const KeySet> set;  // keeps the key alive while verifying
  if (jwks_) {
    std::string kid;
    if (auto kid_it = header.find("kid"); kid_it != header.end()) {
      if (!kid_it->is_string()) return refuse(Status::Invalid, "kid is not a string");
      kid = kid_it->get<std::string>();
    }
    set = jwks_->current();
    const Jwk* jwk = set ? set->find(kid) : nullptr;
    if (jwk == nullptr) {
      JwtCheck c = refuse(Status::Invalid, !set ? "no JWKS keys yet" : kid.empty() ? "token has no kid" : "unknown kid");
      c.unknown_kid = true;
      return c;
    }
    if (!jwk->allows(*alg)) return refuse(Status::Invalid, "algorithm \"" + alg_text + "\" does not fit the key");
    key = jwk->key.get();
  }
  if (!verify_signature(*alg, key, token.substr(0, d2), sig)) return refuse(Status::Invalid, "signature does not match");

  // Payload: a JSON object with well-typed registered claims.
  json payload = json::parse(payload_raw, nullptr, false);
  if (payload.is_discarded() || !payload.is_object()) return refuse(Status::Invalid, "payload is not a JSON object");
  std::optional<double> exp, nbf, iat;
  for (auto [name, out] : {std::pair{"exp", &exp}, std::pair{"nbf", &nbf}, std::pair{"iat", &iat}}) {
    auto it = payload.find(name);
    if (it == payload.end()) continue;
    if (!it->is_number() || !std::isfinite(it->get<double>()))
      return refuse(Status::Invalid, std::string(name) + " is not a number");
    *out = it->get<double>();
  }
  auto sub_it = payload.find("sub");
  if (sub_it != payload.end() && !sub_it->is_string()) return refuse(Status::Invalid, "sub is not a string");
  if (!exp && cfg_.require_exp) return refuse(Status::Invalid, "token has no exp");

  const double now = seconds_since_epoch(this->now());
  const double leeway = std::chrono::duration<double>(cfg_.leeway).count();
  if (exp && now >= *exp + leeway) {
    JwtCheck c = refuse(Status::Expired, "expired " + short_duration(now - *exp) + " ago");
    c.exp = exp;
    return c;
  }
  if (nbf && *nbf > now + leeway) return refuse(Status::Invalid, "not valid before nbf");
  if (iat && *iat > now + leeway) return refuse(Status::Invalid, "issued in the future (iat)");

  if (cfg_.issuer) {
    auto it = payload.find("iss");
    if (it == payload.end() || !it->is_string() || it->get_ref<const std::string&>() != *cfg_.issuer)
      return refuse(Status::Invalid, "wrong issuer");
  }
  if (!cfg_.audience.empty()) {
    auto it = payload.find("aud");
    bool match = false;
    auto matches = [&](const json& v) {
      if (!v.is_string()) return false;
      for (const auto& a : cfg_.audience)
        if (v.get_ref<const std::string&>() == a) return true;
      return false;
    };
    if (it != payload.end()) {
      if (it->is_array())
        for (const auto& v : *it) match |= matches(v);
      else
        match = matches(*it);
    }
    if (!match) return refuse(Status::Invalid, "wrong audience");
  }

  auto principal = std::make_shared<proxy::Principal>();
  principal->source = "jwt";
  if (sub_it != payload.end()) principal->subject = sub_it->get<std::string>();
  principal->claims.reserve(payload.size());
  for (auto it = payload.begin(); it != payload.end(); ++it) {
    proxy::Principal::Claim c;
    c.name = it.key();
    if (it->is_string()) {
      c.text = it->get<std::string>();
      c.is_string = true;
    } else {
      c.text = it->dump();
      if (it->is_array())
        for (const auto& v : *it)
          if (v.is_string()) c.strings.push_back(v.get<std::string>());
    }
    principal->claims.push_back(std::move(c));
  }
  JwtCheck ok;
  ok.status = Status::Valid;
  ok.principal = std::move(principal);
  ok.exp = exp;
  return ok;
}

std::uint64_t JwtPolicy::key_generation() const {
  if (!jwks_) return 0;
  auto set = jwks_->current();
  return set ? set->generation() : 0;
}

namespace {
// Single writer per slot: load + store instead of a locked read-modify-write.
void bump(std::atomic<std::uint64_t>& c) { c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
}  // namespace

void JwtPolicy::count_rejected(unsigned worker_id) const { bump(slots_.local(worker_id).counters.rejected); }

JwtCheck JwtPolicy::check_cached(std::string_view token, unsigned worker_id, bool defer_unknown_kid) const {
  Slot* slot = &slots_.local(worker_id);
  Counters& counters = slot->counters;
  auto finish = [&](JwtCheck c) {
    bump(c.status == Status::Valid ? counters.accepted : counters.rejected);
    return c;
  };

  {
    auto it = slot->cache.find(token);
    // A token verified against an older key set is checked again (its key may be gone).
    if (it != slot->cache.end() && jwks_ && it->second.key_generation != key_generation()) {
      slot->cache.erase(it);
      it = slot->cache.end();
    }
    if (it != slot->cache.end()) {
      bump(counters.cache_hits);
      const CacheEntry& e = it->second;
      const double now = seconds_since_epoch(this->now());
      if (e.exp && now >= *e.exp + std::chrono::duration<double>(cfg_.leeway).count()) {
        JwtCheck c = refuse(Status::Expired, "expired");
        c.exp = e.exp;
        slot->cache.erase(it);
        return finish(std::move(c));
      }
      JwtCheck c;
      c.status = Status::Valid;
      c.principal = e.principal;
      c.exp = e.exp;
      return finish(std::move(c));
    }
  }

  bump(counters.signature_checks);
  const std::uint64_t generation = key_generation();  // before the check: never newer than the set used
  JwtCheck c = check_token(token);
  if (defer_unknown_kid && c.unknown_kid) return c;
  if (c.status == Status::Valid) {
    auto& cache = slot->cache;
    if (cache.size() >= kCacheEntries) {
      const double now = seconds_since_epoch(this->now());
      const double leeway = std::chrono::duration<double>(cfg_.leeway).count();
      std::erase_if(cache, [&](const auto& kv) { return kv.second.exp && now >= *kv.second.exp + leeway; });
      // Still full: drop an eighth, whichever entries come first.
      while (cache.size() >= kCacheEntries - kCacheEntries / 8) cache.erase(cache.begin());
    }
    cache.emplace(std::string(token), CacheEntry{c.principal, c.exp, generation});
  }
  return finish(std::move(c));
}

proxy::LocalReply JwtPolicy::reply_for(const JwtCheck& c) {
  proxy::LocalReply r;
  r.status = 401;
  switch (c.status) {
    case Status::Missing:
      r.reason = "token_missing";
      r.message = "Access token required";
      r.headers.emplace_back("WWW-Authenticate", kRealm);
      break;
    case Status::Expired:
      r.reason = "token_expired";
      r.message = "Token expired";
      r.headers.emplace_back("WWW-Authenticate", kExpiredChallenge);
      break;
    case Status::Invalid:
    case Status::Valid:
      r.reason = "token_invalid";
      r.message = "Invalid token";
      r.headers.emplace_back("WWW-Authenticate", kInvalidChallenge);
      break;
  }
  return r;
}

void JwtPolicy::find_token(const http::RequestHead& req, TokenLookup& out) const {
  using Kind = TokenSource::Kind;
  std::optional<JwtCheck> header_missing;  // why Authorization held no token
  for (const TokenSource& src : cfg_.token_from) {
    out.token = {};
    switch (src.kind) {
      case Kind::Header: {
        if (req.fields.count("authorization") > 1) {
          out.refusal = refuse(Status::Invalid, "several Authorization fields");
          return;
        }
        std::optional<JwtCheck> refused = bearer_token(req.fields.get("authorization"), out.token);
        if (refused && refused->status == Status::Missing) {  // none, or another scheme: not a token
          header_missing = std::move(refused);
          out.token = {};
          continue;
        }
        if (refused) {
          out.refusal = std::move(refused);
          return;
        }
        break;
      }
      case Kind::Query: {
        const std::size_t n = query_param_count(req.query, src.name);
        if (n > 1) {
          out.refusal = refuse(Status::Invalid, "several " + src.name + " query parameters");
          return;
        }
        if (n == 0) continue;
        out.storage = query_param(req.query, src.name).value_or("");
        if (out.storage.empty()) continue;
        out.token = out.storage;
        break;
      }
      case Kind::Cookie: {
        std::size_t n = 0;
        for (const http::Field& f : req.fields) {
          if (!iequals(f.name, "cookie")) continue;
          for_each_cookie(f.value, [&](std::string_view name, std::string_view value, std::string_view) {
            if (name != src.name) return;
            ++n;
            out.token = value;
          });
        }
        if (n > 1) {
          out.token = {};
          out.refusal = refuse(Status::Invalid, "several " + src.name + " cookies");
          return;
        }
        if (out.token.empty()) continue;
        break;
      }
    }
    out.source = &src;
    return;
  }
  // No source holds a token. With Authorization alone, say what it held, as before token_from.
  if (cfg_.token_from.size() == 1 && header_missing) {
    out.refusal = std::move(header_missing);
    return;
  }
  std::string where;
  for (const TokenSource& src : cfg_.token_from) where += (where.empty() ? "" : ", ") + describe(src);
  out.refusal = refuse(Status::Missing, "no token in " + where);
}

void JwtPolicy::hide_query_tokens(proxy::RequestContext& ctx) const {
  const http::RequestHead& req = ctx.request();
  std::string_view target = ctx.logged_target.empty() ? req.target : ctx.logged_target;
  for (const TokenSource& src : cfg_.token_from) {
    if (src.kind != TokenSource::Kind::Query) continue;
    const std::size_t q = target.find('?');
    if (q == std::string_view::npos || query_param_count(target.substr(q + 1), src.name) == 0) continue;
    std::string rest = remove_query_param(target.substr(q + 1), src.name);
    std::string shown(target.substr(0, rest.empty() ? q : q + 1));
    target = ctx.logged_target = ctx.keep(shown + rest);
  }
}

JwtCheck JwtPolicy::check_request(const proxy::RequestContext& ctx) const {
  TokenLookup found;
  find_token(ctx.request(), found);
  if (found.refusal) {
    count_rejected(ctx.worker().id());
    return std::move(*found.refusal);
  }
  return check_cached(found.token, ctx.worker().id(), jwks_ != nullptr);
}

std::optional<proxy::Verdict> JwtPolicy::decide_now(proxy::RequestContext& ctx) {
  hide_query_tokens(ctx);
  JwtCheck c = check_request(ctx);
  if (c.unknown_kid) return std::nullopt;  // on_request waits for the key set to be fetched
  return conclude(ctx, std::move(c));
}

proxy::Verdict JwtPolicy::conclude(proxy::RequestContext& ctx, JwtCheck c) const {
  if (c.status == Status::Valid) {
    ctx.principal = std::move(c.principal);
    return proxy::Continue{};
  }
  proxy::LocalReply r = reply_for(c);
  failures_.count(ctx.worker().id(), r.reason);
  return r;
}

boost::asio::awaitable<proxy::Verdict> JwtPolicy::on_request(proxy::RequestContext& ctx) {
  hide_query_tokens(ctx);
  JwtCheck c = check_request(ctx);
  if (c.unknown_kid) {
    // Ask for a refetch; when one is running, wait for it without blocking this worker.
    const unsigned worker_id = ctx.worker().id();
    const std::uint64_t seen = jwks_->fetches_finished();
    if (jwks_->request_refresh()) {
      boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
      // A number of polls rather than a deadline: the wait is the timer's, no clock is read.
      const std::int64_t polls = (cfg_.jwks_wait + kJwksPoll - std::chrono::milliseconds(1)) / kJwksPoll;
      for (std::int64_t i = 0; i < polls && jwks_->fetches_finished() == seen; ++i) {
        timer.expires_after(kJwksPoll);
        co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      }
      TokenLookup found;
      find_token(ctx.request(), found);  // found before: the same token, read again
      c = found.refusal ? std::move(*found.refusal) : check_cached(found.token, worker_id);
    } else {
      count_rejected(worker_id);
    }
  }
  co_return conclude(ctx, std::move(c));
}

void JwtPolicy::on_upstream_request(proxy::RequestContext& ctx, std::vector<http::Field>& fields) {
  if (cfg_.token_from.size() > 1 || cfg_.token_from[0].kind != TokenSource::Kind::Header) {
    // The token goes no further than the gateway when it came in the query or a cookie.
    TokenLookup found;
    find_token(ctx.request(), found);
    if (found.source && found.source->kind == TokenSource::Kind::Query) {
      std::string_view query = ctx.upstream_query.value_or(ctx.request().query);
      ctx.upstream_query = ctx.keep(remove_query_param(query, found.source->name));
    } else if (found.source && found.source->kind == TokenSource::Kind::Cookie) {
      for (http::Field& f : fields)
        if (iequals(f.name, "cookie")) f.value = ctx.keep(remove_cookie(f.value, found.source->name));
      std::erase_if(fields, [](const http::Field& f) { return iequals(f.name, "cookie") && f.value.empty(); });
    }
  }
  if (cfg_.forward_claims.empty()) return;
  std::erase_if(fields, [&](const http::Field& f) {
    for (const auto& fc : cfg_.forward_claims)
      if (iequals(f.name, fc.second)) return true;
    return false;
  });
  const proxy::Principal* p = ctx.principal.get();
  if (p == nullptr || p->source != "jwt") return;
  for (const auto& [claim, header] : cfg_.forward_claims) {
    const proxy::Principal::Claim* c = p->claim(claim);
    // A value that would break the header (CR, LF, NUL...) is not forwarded at all.
    if (c == nullptr || has_ctl(c->text)) continue;
    fields.push_back({header, ctx.keep(c->text)});
  }
}

JwtPolicy::Stats JwtPolicy::stats() const {
  Stats s;
  auto add = [&s](const Counters& c) {
    s.signature_checks += c.signature_checks.load(std::memory_order_relaxed);
    s.cache_hits += c.cache_hits.load(std::memory_order_relaxed);
    s.accepted += c.accepted.load(std::memory_order_relaxed);
    s.rejected += c.rejected.load(std::memory_order_relaxed);
  };
  slots_.for_each([&](const Slot& slot) { add(slot.counters); });
  if (jwks_) s.jwks_fetches = jwks_->fetches_started();
  return s;
}

std::shared_ptr<JwtPolicy> make_jwt_policy(const config::PolicyConfig& entry, Resources& resources) {
  config::Diagnostics ignore;  // the entry was validated when the config was loaded
  return make_jwt_policy(entry.name, parse_jwt(entry, ignore), resources);
}

std::shared_ptr<JwtPolicy> make_jwt_policy(std::string name, JwtConfig cfg, Resources& resources) {
  std::shared_ptr<JwksSource> jwks;
  if (cfg.key_kind == JwtKeyKind::Jwks) {
    JwksOptions o;
    o.url = cfg.jwks_url;
    o.refresh = cfg.jwks_refresh;
    o.min_refetch = cfg.jwks_min_refetch;
    jwks = resources.jwks_source(o);
  }
  return std::make_shared<JwtPolicy>(std::move(name), std::move(cfg), resources.clock(), resources.workers(),
                                     std::move(jwks), &resources.metrics());
}

std::string explain(const JwtPolicy& policy, std::string_view authorization_header_value) {
  JwtCheck c = policy.check(authorization_header_value);
  switch (c.status) {
    case Status::Missing: return "401 Access token required";
    case Status::Expired: return "401 Token expired (" + c.detail + ")";
    case Status::Invalid: return "401 Invalid token: " + c.detail;
    case Status::Valid: break;
  }
  std::string out = "valid";
  if (!c.principal->subject.empty()) out += ", sub=" + c.principal->subject;
  static constexpr std::string_view kRegistered[] = {"iss", "sub", "aud", "exp", "nbf", "iat", "jti"};
  for (const auto& claim : c.principal->claims) {
    bool registered = false;
    for (auto r : kRegistered) registered |= claim.name == r;
    if (!registered) out += ", " + claim.name + "=" + claim.text;
  }
  if (c.exp) {
    double left = *c.exp - std::chrono::duration<double>(policy.now().time_since_epoch()).count();
    out += left > 0 ? ", expires in " + short_duration(left) : ", expired within the leeway";
  } else {
    out += ", no expiry";
  }
  return out;
}

}  // namespace gh::policies
