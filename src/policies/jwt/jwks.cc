#include "policies/jwt/jwks.h"

#include <fmt/format.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "clients/http1/fetch.h"
#include "core/check.h"
#include "core/log.h"
#include "core/url.h"
#include "http/parser.h"

namespace gh::policies {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
using json = nlohmann::json;

const unsigned char* ubytes(const std::string& s) { return reinterpret_cast<const unsigned char*>(s.data()); }

struct ParamBld {
  OSSL_PARAM_BLD* p = OSSL_PARAM_BLD_new();
  ~ParamBld() { OSSL_PARAM_BLD_free(p); }
};

PublicKey from_params(const char* type, OSSL_PARAM_BLD* bld) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* pkey = nullptr;
  if (params == nullptr || ctx == nullptr || EVP_PKEY_fromdata_init(ctx) != 1 ||
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    pkey = nullptr;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return PublicKey(pkey);
}

PublicKey rsa_key(const std::string& n, const std::string& e) {
  BIGNUM* bn = BN_bin2bn(ubytes(n), static_cast<int>(n.size()), nullptr);
  BIGNUM* be = BN_bin2bn(ubytes(e), static_cast<int>(e.size()), nullptr);
  PublicKey out;
  ParamBld bld;
  if (bn != nullptr && be != nullptr && bld.p != nullptr && OSSL_PARAM_BLD_push_BN(bld.p, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld.p, OSSL_PKEY_PARAM_RSA_E, be) == 1)
    out = from_params("RSA", bld.p);
  BN_free(bn);
  BN_free(be);
  return out;
}

PublicKey ec_key(const char* group, const std::string& x, const std::string& y) {
  std::string point = "\x04" + x + y;  // uncompressed SEC1 point
  ParamBld bld;
  if (bld.p == nullptr ||
      OSSL_PARAM_BLD_push_utf8_string(bld.p, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.p, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1)
    return nullptr;
  PublicKey key = from_params("EC", bld.p);
  if (!key) return nullptr;
  // The point must lie on the curve.
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr);
  bool ok = ctx != nullptr && EVP_PKEY_public_check(ctx) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (!ok) return nullptr;
  return key;
}

// A required base64url member of a JWK, decoded; empty when absent or malformed.
std::string member(const json& jwk, const char* name) {
  auto it = jwk.find(name);
  std::string out;
  if (it == jwk.end() || !it->is_string() || !base64url_decode(it->get_ref<const std::string&>(), out)) return {};
  return out;
}

// Builds one key; returns None kind with `why` set when gatehouse cannot use it.
Jwk parse_jwk(const json& j, std::string& why) {
  Jwk k;
  if (!j.is_object()) {
    why = "not an object";
    return k;
  }
  auto kid = j.find("kid");
  if (kid != j.end()) {
    if (!kid->is_string()) {
      why = "kid is not a string";
      return k;
    }
    k.kid = kid->get<std::string>();
  }
  auto use = j.find("use");
  if (use != j.end() && (!use->is_string() || use->get_ref<const std::string&>() != "sig")) {
    why = "use is not sig";
    return k;
  }
  auto kty_it = j.find("kty");
  const std::string kty = kty_it != j.end() && kty_it->is_string() ? kty_it->get<std::string>() : "";
  auto crv_it = j.find("crv");
  const std::string crv = crv_it != j.end() && crv_it->is_string() ? crv_it->get<std::string>() : "";
  if (kty == "RSA") {
    std::string n = member(j, "n"), e = member(j, "e");
    if (n.empty() || e.empty()) {
      why = "RSA key without n and e";
      return k;
    }
    k.key = rsa_key(n, e);
  } else if (kty == "EC") {
    std::size_t coord = crv == "P-256" ? 32 : crv == "P-384" ? 48 : crv == "P-521" ? 66 : 0;
    const char* group = crv == "P-256" ? "prime256v1" : crv == "P-384" ? "secp384r1" : "secp521r1";
    if (coord == 0) {
      why = "EC curve is not P-256, P-384 or P-521";
      return k;
    }
    std::string x = member(j, "x"), y = member(j, "y");
    if (x.size() != coord || y.size() != coord) {
      why = "EC coordinates of the wrong length";
      return k;
    }
    k.key = ec_key(group, x, y);
  } else if (kty == "OKP") {
    if (crv != "Ed25519") {
      why = "OKP curve is not Ed25519";
      return k;
    }
    std::string x = member(j, "x");
    if (x.size() != 32) {
      why = "Ed25519 key of the wrong length";
      return k;
    }
    k.key = PublicKey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, ubytes(x), x.size()));
  } else if (kty == "oct") {
    why = "symmetric (oct) keys are never used";
    return k;
  } else {
    why = "unsupported kty";
    return k;
  }
  if (!k.key) {
    why = "OpenSSL refused the key";
    return k;
  }
  JwtKeyKind kind = key_kind_of(k.key.get(), why);
  if (kind == JwtKeyKind::None) return k;
  auto alg_it = j.find("alg");
  if (alg_it != j.end()) {
    std::optional<JwtAlg> alg = alg_it->is_string() ? parse_alg(alg_it->get_ref<const std::string&>()) : std::nullopt;
    if (!alg || is_hmac(*alg) || !alg_fits_key(*alg, kind)) {
      why = "alg does not fit the key";
      return k;
    }
    k.algorithms = {*alg};
  } else {
    k.algorithms = default_algorithms(kind);
  }
  k.kind = kind;
  return k;
}

}  // namespace

bool base64url_decode(std::string_view in, std::string& out) {
  static const auto kTable = [] {
    std::array<std::int8_t, 256> t{};
    t.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
    return t;
  }();
  if (in.size() % 4 == 1) return false;
  out.clear();
  out.reserve(in.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    int v = kTable[static_cast<unsigned char>(ch)];
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Leftover bits (2 or 4) must be zero.
  return (acc & ((1u << bits) - 1)) == 0;
}

std::optional<HttpUrl> parse_http_url(std::string_view url, std::string& error) {
  auto u = Url::parse(url, &error);
  if (!u) return std::nullopt;
  if (u->scheme != "http" && u->scheme != "https") {
    error = "expected an http(s)://host[:port]/path URL";
    return std::nullopt;
  }
  if (u->has_userinfo) {
    error = "the URL has user information";
    return std::nullopt;
  }
  if (u->has_fragment) {
    error = "the URL has a fragment";
    return std::nullopt;
  }
  HttpUrl out;
  out.host = u->host;
  if (u->port) out.port = std::to_string(*u->port);
  else if (u->scheme == "https") out.port = "443";
  out.target = u->path.empty() ? "/" : u->path;
  if (u->query) out.target += "?" + *u->query;
  out.host_header = u->authority();
  return out;
}

bool Jwk::allows(JwtAlg a) const noexcept {
  for (JwtAlg x : algorithms)
    if (x == a) return true;
  return false;
}

std::shared_ptr<const KeySet> KeySet::parse(std::string_view json_text, std::uint64_t generation, std::string& error,
                                            std::vector<std::string>* skipped) {
  json doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    error = "not a JSON object";
    return nullptr;
  }
  auto keys = doc.find("keys");
  if (keys == doc.end() || !keys->is_array()) {
    error = "no \"keys\" array";
    return nullptr;
  }
  auto set = std::make_shared<KeySet>();
  set->generation_ = generation;
  std::size_t index = 0;
  for (const auto& j : *keys) {
    std::string why;
    Jwk k = parse_jwk(j, why);
    bool dup = false;
    for (const Jwk& have : set->keys_) dup |= have.kid == k.kid;
    if (k.kind != JwtKeyKind::None && dup) why = "duplicate kid";
    if (k.kind == JwtKeyKind::None || dup) {
      if (skipped) skipped->push_back("keys[" + std::to_string(index) + "]: " + why);
    } else if (set->keys_.size() >= kMaxKeys) {
      if (skipped) skipped->push_back("keys[" + std::to_string(index) + "]: more than " + std::to_string(kMaxKeys) + " keys");
    } else {
      set->keys_.push_back(std::move(k));
    }
    ++index;
  }
  // keys_ no longer changes: the views stay valid.
  for (std::size_t i = 0; i < set->keys_.size(); ++i) set->by_kid_.emplace(set->keys_[i].kid, i);
  return set;
}

const Jwk* KeySet::find(std::string_view kid) const {
  if (kid.empty() && keys_.size() == 1) return &keys_[0];
  auto it = by_kid_.find(kid);
  return it == by_kid_.end() ? nullptr : &keys_[it->second];
}

// ---------------------------------------------------------------------------------------------
// Fetching

namespace {

struct FetchResult {
  bool ok = false;
  std::string body;
  std::string error;
};

// GET url once (`Connection: close`) through clients/http1: the body of a 200 response, at most
// max_bytes, within timeout. Any other status, a malformed or oversize response are failures.
asio::awaitable<FetchResult> http_get(std::string url, std::chrono::milliseconds timeout, std::size_t max_bytes) {
  clients::http1::FetchOptions options;
  options.timeout = timeout;
  options.max_body_bytes = max_bytes;
  options.fields = {{"Accept", "application/jwk-set+json, application/json"}, {"User-Agent", "gatehouse"}};
  auto r = co_await clients::http1::fetch(std::move(url), std::move(options));
  FetchResult out;
  if (!r) {
    out.error = r.error().context;
  } else if (r->status != 200) {
    out.error = "status " + std::to_string(r->status);
  } else {
    out.ok = true;
    out.body = std::move(r->body);
  }
  co_return out;
}

}  // namespace

struct JwksSource::State {
  State(Options o, HttpUrl u, asio::any_io_executor ex, const core::Clock& c)
      : opt(std::move(o)), url(std::move(u)), control(std::move(ex)), clock(c) {}
  const Options opt;
  const HttpUrl url;
  const asio::any_io_executor control;
  const core::Clock& clock;
  std::atomic<std::shared_ptr<const KeySet>> current;
  std::atomic<bool> in_flight{false};
  std::atomic<std::int64_t> last_start_ns{0};  // clock.now_ns() of the latest fetch start
  std::atomic<std::uint64_t> started{0};
  std::atomic<std::uint64_t> finished{0};
  std::atomic<bool> stopped{false};  // the source is gone: publish nothing, refresh no more
  // Touched only on the control executor:
  std::string last_body;  // of the published set: an unchanged document is not republished
  std::uint64_t generation = 0;
  asio::steady_timer* refresh_timer = nullptr;  // the refresher's, while it waits

  // One fetch; publishes on success, keeps the old set otherwise. REQUIRES: in_flight claimed.
  static asio::awaitable<void> fetch(std::shared_ptr<State> self) {
    FetchResult r = co_await http_get(self->opt.url, self->opt.timeout, self->opt.max_bytes);
    std::string error = r.error;
    if (self->stopped.load(std::memory_order_acquire)) co_return;
    if (r.ok && r.body != self->last_body) {
      std::vector<std::string> skipped;
      auto set = KeySet::parse(r.body, self->generation + 1, error, &skipped);
      if (set && set->size() == 0) {
        error = "no usable key" + (skipped.empty() ? std::string() : " (" + skipped.front() + ")");
        set = nullptr;
      }
      if (set) {
        ++self->generation;
        self->last_body = std::move(r.body);
        self->current.store(std::move(set), std::memory_order_release);
      }
    }
    if (!error.empty()) {
      auto have = self->current.load(std::memory_order_acquire);
      log::warn("JWKS fetch from {} failed: {}; keeping {} key(s)", self->opt.url, error, have ? have->size() : 0);
    }
    self->finished.fetch_add(1, std::memory_order_release);
    self->in_flight.store(false, std::memory_order_release);
  }

  // Fetches now, then every `refresh`, until the source is gone.
  static asio::awaitable<void> refresher(std::shared_ptr<State> self) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (!self->stopped.load(std::memory_order_acquire)) {
      if (!self->in_flight.exchange(true, std::memory_order_acq_rel)) {
        self->last_start_ns.store(self->clock.now_ns(), std::memory_order_relaxed);
        self->started.fetch_add(1, std::memory_order_relaxed);
        co_await fetch(self);
      }
      if (self->stopped.load(std::memory_order_acquire)) break;
      timer.expires_after(self->opt.refresh);
      self->refresh_timer = &timer;
      auto [ec] = co_await timer.async_wait(use_nothrow);
      self->refresh_timer = nullptr;
      if (ec) break;
    }
  }
};

JwksSource::JwksSource(Options options, asio::any_io_executor control, const core::Clock& clock) {
  std::string error;
  auto url = parse_http_url(options.url, error);
  GH_CHECK(url.has_value());
  state_ = std::make_shared<State>(std::move(options), std::move(*url), std::move(control), clock);
  asio::co_spawn(state_->control, State::refresher(state_), asio::detached);
}

JwksSource::~JwksSource() {
  state_->stopped.store(true, std::memory_order_release);
  asio::post(state_->control, [s = state_] {
    if (s->refresh_timer != nullptr) s->refresh_timer->cancel();
  });
}

const JwksSource::Options& JwksSource::options() const noexcept { return state_->opt; }

std::shared_ptr<const KeySet> JwksSource::current() const { return state_->current.load(std::memory_order_acquire); }

std::uint64_t JwksSource::fetches_started() const noexcept { return state_->started.load(std::memory_order_relaxed); }

std::uint64_t JwksSource::fetches_finished() const noexcept {
  return state_->finished.load(std::memory_order_acquire);
}

bool JwksSource::request_refresh() {
  State& s = *state_;
  if (s.in_flight.load(std::memory_order_acquire)) return true;
  const std::int64_t now = s.clock.now_ns();
  const std::int64_t min_gap = std::chrono::duration_cast<std::chrono::nanoseconds>(s.opt.min_refetch).count();
  if (now - s.last_start_ns.load(std::memory_order_relaxed) < min_gap) return false;
  if (s.in_flight.exchange(true, std::memory_order_acq_rel)) return true;  // another thread started one
  // Owned now; the window may have been taken by a fetch that just ended.
  if (now - s.last_start_ns.load(std::memory_order_relaxed) < min_gap) {
    s.in_flight.store(false, std::memory_order_release);
    return false;
  }
  s.last_start_ns.store(now, std::memory_order_relaxed);
  s.started.fetch_add(1, std::memory_order_relaxed);
  asio::co_spawn(s.control, State::fetch(state_), asio::detached);
  return true;
}

}  // namespace gh::policies
