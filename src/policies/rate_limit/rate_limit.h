// RateLimitPolicy: `type: rate_limit`. Counts each request against a budget per key value in
// a RateLimitStore, answers 429 past the limit, and reports the most restrictive limit of the
// request in RateLimit-* response headers.
// Thread: immutable after construction; shared by every route and worker that names it. Its
// counters are the registry's per-worker ones (gatehouse_rate_limit_rejections_total and
// gatehouse_rate_limit_store_errors_total{policy}), each worker writing its own slot. The store
// it holds is shared too and is safe across workers.
// Failure: when the store cannot decide, `on_store_error` allows or answers 503; every such
// decision is counted (store_errors()) and logged (core/log.h), at most one line a second per
// policy (the line says how many decisions it stands for).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "config/config.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "policies/common/resources.h"
#include "policies/rate_limit/rate_limit_config.h"
#include "policies/rate_limit/store.h"
#include "proxy/policy.h"
#include "proxy/request_context.h"

namespace gh::http {
class Fields;
}

namespace gh::policies {

class RateLimitPolicy final : public proxy::Policy {
 public:
  // `metrics` holds the policy's counters (series policy=`name`, kept across reloads);
  // `clock` times the store-error log lines; both must outlive the policy.
  RateLimitPolicy(std::string name, RateLimitConfig cfg, std::shared_ptr<RateLimitStore> store,
                  core::Metrics& metrics, const core::Clock& clock = core::Clock::real());

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "rate_limit"; }
  // Counts the request under its key; 429 `rate_limited` with Retry-After past the limit.
  // A key part that is absent for this request (no such header or claim) means the limit
  // does not apply: Continue without counting.
  boost::asio::awaitable<proxy::Verdict> on_request(proxy::RequestContext& ctx) override;
  // The same at once with the memory store; std::nullopt with a networked one.
  std::optional<proxy::Verdict> decide_now(proxy::RequestContext& ctx) override;
  // Adds RateLimit-Limit/-Remaining/-Reset/-Policy from ctx.rate_limit (the most restrictive
  // limit the request met), replacing any the service sent. Idempotent, so several
  // rate_limit policies on one chain write the same values.
  void on_response(proxy::RequestContext& ctx, http::ResponseHead& head) override;

  // The store key this request is counted under: the policy's name, then each key part
  // length-prefixed, so no two distinct part lists produce one key. Empty: does not apply.
  std::string key_for(const proxy::RequestContext& ctx) const;
  // The same into `key` (its storage reused); false when the limit does not apply.
  bool build_key(const proxy::RequestContext& ctx, std::string& key) const;

  const RateLimitConfig& config() const noexcept { return config_; }
  const RateLimitStore& store() const noexcept { return *store_; }
  // Requests refused with 429, and decisions taken without the store, summed over workers
  // (since the first policy of this name in the process: the counters survive reloads).
  std::uint64_t rejected() const noexcept { return rejected_.value(); }
  std::uint64_t store_errors() const noexcept { return store_errors_.value(); }

 private:
  std::string name_;
  RateLimitConfig config_;
  std::shared_ptr<RateLimitStore> store_;
  core::Counter& rejected_;
  core::Counter& store_errors_;
  // Logging of decisions taken without the store: at most one line a second per policy.
  std::atomic<std::int64_t> last_log_ns_{0};
  std::atomic<std::uint64_t> unlogged_errors_{0};  // store errors since the last line
  const core::Clock& clock_;
  // RateLimit-Limit and RateLimit-Policy for this policy's own rule, formatted once: the
  // values of every response whose most restrictive limit is this rule's.
  std::uint64_t window_seconds_ = 0;
  std::string key_prefix_;  // every key's first part: the policy's name
  std::string limit_text_;
  std::string policy_text_;

  // Counts a decision taken without the store and logs it (rate-limited).
  void store_error(unsigned worker, const Error& e);
  // The verdict of a hit (or of a failed one, by on_store_error); records ctx.rate_limit.
  proxy::Verdict conclude(proxy::RequestContext& ctx, const Result<Decision>& hit);
};

// Builds a policy from a validated entry of a file whose top-level `redis` is `redis_url`
// (empty: none). `store: redis`, or no `store` when `redis_url` is set, uses the resources'
// RedisStore of that URL (one per URL, kept across reloads); `store: memory` their memory store.
std::shared_ptr<proxy::Policy> make_rate_limit_policy(const config::PolicyConfig& entry, const std::string& redis_url,
                                                      Resources& resources);
// The same from the config the entry's validation built (parse_rate_limit without the file's
// `redis`): no `store` means redis when `redis_url` is set.
std::shared_ptr<proxy::Policy> make_rate_limit_policy(std::string name, RateLimitConfig cfg,
                                                      const std::string& redis_url, Resources& resources);

// For `gatehouse route`: what the limit is, without consuming any budget, e.g.
// `100 per 15m by client_ip (fixed_window, memory)`. With the request's headers, says when a
// header key part is missing (the limit then does not apply); claim parts depend on a token
// verified at run time and are noted as such.
std::string explain(const RateLimitPolicy& policy, const http::Fields* request_headers = nullptr);

}  // namespace gh::policies
