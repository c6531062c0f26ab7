// JwtPolicy: requires `Authorization: Bearer <JWS compact token>`, verifies its signature with
// OpenSSL 3 and checks exp/nbf/iat/iss/aud (SPEC §2, RFC 7515, RFC 7519, RFC 6750 §3). On
// success it publishes ctx.principal; on_upstream_request forwards chosen claims as headers
// after removing any copies the client sent.
//
// Thread: the configuration, the key and the algorithm list are immutable after construction
// and shared by every worker. With `jwks_url` the keys come from a JwksSource (fetched on the
// control loop, shared with every policy of the same options and kept across reloads by
// app::Runtime); the request path only loads its current key set. A token whose kid the set
// lacks asks for a refetch (single-flight, at most one per `jwks_min_refetch`) and, when one is
// running, waits for it on the worker's own executor (a timer, polling; never blocking the
// thread) for up to `jwks_wait`. The verification cache and the counters live in a
// PerWorker<Slot>, indexed by `ctx.worker().id()`: each slot is touched only by its own worker
// thread (no lock), except that stats() reads the counters, which are relaxed atomics with a
// single writer.
// Time: exp/nbf/iat are compared with the wall time of the Clock given at construction.
// Failure: every problem with a token is a 401 LocalReply, never an exception.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/per_worker.h"
#include "policies/common/resources.h"
#include "policies/jwt/jwks.h"
#include "policies/jwt/jwt_config.h"
#include "proxy/metrics.h"
#include "proxy/policy.h"
#include "proxy/request_context.h"

namespace gh::policies {

// The result of checking one Authorization value, before it becomes a reply.
struct JwtCheck {
  enum class Status { Valid, Missing, Expired, Invalid };
  Status status = Status::Invalid;
  std::shared_ptr<const proxy::Principal> principal;  // Valid only
  std::optional<double> exp;                          // the token's `exp`, when it has one
  std::string detail;                                 // why it was refused; for logs and `gatehouse route`
  bool unknown_kid = false;  // JWKS: no key for the token's kid (a refetch may help)
};

// Where a request's token was found (token_from), or why none can be used.
// Not copyable: `token` may point into `storage`.
struct TokenLookup {
  std::optional<JwtCheck> refusal;      // set: no token (Missing), or an ambiguous one (Invalid)
  std::string_view token;               // the token, when found
  const TokenSource* source = nullptr;  // where it was found
  std::string storage;                  // a query parameter's decoded value
  TokenLookup() = default;
  TokenLookup(const TokenLookup&) = delete;
  TokenLookup& operator=(const TokenLookup&) = delete;
};

class JwtPolicy final : public proxy::Policy {
 public:
  static constexpr std::size_t kMaxTokenBytes = 8 * 1024;
  static constexpr std::size_t kCacheEntries = 1024;  // per worker

  // REQUIRES: `cfg` came from parse_jwt without errors; `jwks` is given exactly when the key
  // kind is Jwks; `clock` outlives the policy; requests come from workers 0 .. workers - 1.
  // `metrics` (may be null: not counted; else it outlives the policy) counts each refusal in
  // gatehouse_auth_failures_total{policy=name, reason=token_missing|token_expired|token_invalid}.
  JwtPolicy(std::string name, JwtConfig cfg, const core::Clock& clock, unsigned workers,
            std::shared_ptr<JwksSource> jwks = nullptr, core::Metrics* metrics = nullptr);
  ~JwtPolicy() override;

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "jwt"; }
  // 401 unless the request carries one valid bearer token; publishes ctx.principal.
  std::optional<proxy::Verdict> decide_now(proxy::RequestContext& ctx) override;
  boost::asio::awaitable<proxy::Verdict> on_request(proxy::RequestContext& ctx) override;
  // Removes a token taken from the query or a cookie (the parameter from the query, the cookie
  // from Cookie, the field when no cookie is left), then client-sent `forward_claims` headers,
  // then adds one per claim the principal holds.
  void on_upstream_request(proxy::RequestContext& ctx, std::vector<http::Field>& fields) override;

  // Verifies an Authorization field value without the cache. Pure apart from the clock; used by
  // on_request (on a cache miss) and by explain().
  JwtCheck check(std::string_view authorization) const;
  // The reply for a refused check.
  static proxy::LocalReply reply_for(const JwtCheck& c);

  const JwtConfig& config() const noexcept { return cfg_; }
  // The key source with `jwks_url`, else null.
  const JwksSource* jwks() const noexcept { return jwks_.get(); }
  std::chrono::system_clock::time_point now() const { return clock_.wall_now(); }

  struct Stats {
    std::uint64_t signature_checks = 0;  // tokens whose signature was verified (cache misses)
    std::uint64_t cache_hits = 0;
    std::uint64_t accepted = 0;
    std::uint64_t rejected = 0;
    std::uint64_t jwks_fetches = 0;  // every JWKS fetch started: first, periodic and for unknown kids
  };
  // Sums every worker's counters; callable from any thread.
  Stats stats() const;

 private:
  // Looks for the token in the sources of `token_from`, in order: the first that holds one
  // wins. An Authorization field without a Bearer credential (e.g. Basic) holds none, and
  // neither does an empty query parameter or cookie; several Authorization fields, or several
  // query parameters or cookies of the name, are refused as ambiguous.
  void find_token(const http::RequestHead& req, TokenLookup& out) const;
  // Sets ctx.logged_target to the target without the query parameters token_from names, when
  // it holds any: the access log never shows a token.
  void hide_query_tokens(proxy::RequestContext& ctx) const;
  // The request's token checked (through the cache); an unknown kid is left for the
  // caller to wait on (unknown_kid set, nothing counted).
  JwtCheck check_request(const proxy::RequestContext& ctx) const;
  // The verdict of a finished check: Continue with the principal set, or the refusal.
  proxy::Verdict conclude(proxy::RequestContext& ctx, JwtCheck c) const;
  struct Counters {
    std::atomic<std::uint64_t> signature_checks{0};
    std::atomic<std::uint64_t> cache_hits{0};
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> rejected{0};
  };
  struct CacheEntry {
    std::shared_ptr<const proxy::Principal> principal;
    std::optional<double> exp;
    std::uint64_t key_generation = 0;  // JWKS: the key set it was verified against (0 otherwise)
  };
  // Hashes a token's last 32 bytes, part of its signature: the cache holds verified tokens
  // only, whose signatures no one predicts without the key, so they spread the buckets as well
  // as the whole token would, at a fifth of the bytes. Lookups still compare whole tokens.
  struct TokenHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      constexpr std::size_t kTail = 32;
      return std::hash<std::string_view>{}(s.size() > kTail ? s.substr(s.size() - kTail) : s);
    }
  };
  // One worker's cache and counters. REQUIRES: touched only by that worker's thread.
  struct Slot {
    std::unordered_map<std::string, CacheEntry, TokenHash, std::equal_to<>> cache;  // keyed by the whole token
    Counters counters;
  };

  JwtCheck check_token(std::string_view token) const;
  bool verify_signature(JwtAlg alg, EVP_PKEY* key, std::string_view signing_input, std::string_view signature) const;
  // The verdict for a token (without its "Bearer "), through this worker's cache. With
  // `defer_unknown_kid`, a refusal for an unknown kid is returned without being counted.
  JwtCheck check_cached(std::string_view token, unsigned worker_id, bool defer_unknown_kid = false) const;
  std::uint64_t key_generation() const;
  void count_rejected(unsigned worker_id) const;

  std::string name_;
  JwtConfig cfg_;
  const core::Clock& clock_;
  PublicKey key_;  // null with an HMAC secret or a JWKS
  std::shared_ptr<JwksSource> jwks_;
  // Per-worker state: the policy object is shared, each slot belongs to one worker.
  mutable core::PerWorker<Slot> slots_;
  proxy::AuthFailureCounters failures_;
};

// Builds a policy from a validated entry; a JWKS source comes from `resources` (shared by the
// policies with the same URL and options, kept across reloads).
std::shared_ptr<JwtPolicy> make_jwt_policy(const config::PolicyConfig& entry, Resources& resources);
// The same from the config the entry's validation built.
std::shared_ptr<JwtPolicy> make_jwt_policy(std::string name, JwtConfig cfg, Resources& resources);

// One line for `gatehouse route`: "valid, sub=42, role=admin, expires in 59m",
// "401 Access token required", "401 Token expired" or "401 Invalid token: <why>".
std::string explain(const JwtPolicy& policy, std::string_view authorization_header_value);

}  // namespace gh::policies
