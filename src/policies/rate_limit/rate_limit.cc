#include "policies/rate_limit/rate_limit.h"

#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include <chrono>

#include "core/log.h"
#include "core/strings.h"
#include "http/fields.h"
#include "policies/rate_limit/memory_store.h"
#include "policies/rate_limit/redis_store.h"
#include "proxy/metrics.h"
#include "proxy/worker.h"

namespace gh::policies {

namespace {

// Appends one length-prefixed key part: "<tag><length>:<value>".
void append_part(std::string& key, char tag, std::string_view value) {
  char head[24];
  head[0] = tag;
  char* p = std::to_chars(head + 1, head + sizeof head - 1, value.size()).ptr;
  *p++ = ':';
  key.append(head, static_cast<std::size_t>(p - head));
  key.append(value);
}

// Whether any field's name starts with "RateLimit-", in any case.
bool has_rate_limit_field(const http::Fields& fields) noexcept {
  constexpr std::string_view kPrefix = "ratelimit-";
  for (const auto& f : fields)
    if (f.name.size() > kPrefix.size() && iequals(f.name.substr(0, kPrefix.size()), kPrefix)) return true;
  return false;
}

// The more restrictive of two limits: fewer requests left; on a tie, the longer wait.
bool more_restrictive(const proxy::RateLimitState& a, const proxy::RateLimitState& b) {
  if (a.remaining != b.remaining) return a.remaining < b.remaining;
  return a.reset_seconds > b.reset_seconds;
}

}  // namespace

RateLimitPolicy::RateLimitPolicy(std::string name, RateLimitConfig cfg, std::shared_ptr<RateLimitStore> store,
                                 core::Metrics& metrics, const core::Clock& clock)
    : name_(std::move(name)),
      config_(std::move(cfg)),
      store_(std::move(store)),
      rejected_(metrics.counter(proxy::kRateLimitRejections, {{"policy", name_}})),
      store_errors_(metrics.counter(proxy::kRateLimitStoreErrors, {{"policy", name_}})),
      clock_(clock) {
  window_seconds_ = whole_seconds_up(config_.rule.window);
  append_part(key_prefix_, 'p', name_);
  limit_text_ = std::to_string(config_.rule.limit);
  policy_text_ = limit_text_ + ";w=" + std::to_string(window_seconds_);
}

std::string RateLimitPolicy::key_for(const proxy::RequestContext& ctx) const {
  std::string key;
  if (!build_key(ctx, key)) key.clear();
  return key;
}

bool RateLimitPolicy::build_key(const proxy::RequestContext& ctx, std::string& key) const {
  key.assign(key_prefix_);
  for (const KeyPart& part : config_.key) {
    std::string_view value;
    char tag = 'g';
    switch (part.kind) {
      case KeyPart::Kind::ClientIp:
        value = ctx.client_ip();
        tag = 'i';
        break;
      case KeyPart::Kind::Header:
        value = ctx.request().fields.get(part.name);
        tag = 'h';
        break;
      case KeyPart::Kind::Claim: {
        const proxy::Principal::Claim* c = ctx.principal ? ctx.principal->claim(part.name) : nullptr;
        // Strings, numbers and booleans count; arrays, objects and null do not name a caller.
        if (c && (c->is_string || (!c->text.empty() && c->text[0] != '[' && c->text[0] != '{' && c->text != "null")))
          value = c->text;
        tag = 'c';
        break;
      }
      case KeyPart::Kind::Route:
        if (ctx.route() && ctx.route()->config) value = ctx.route()->config->name;
        tag = 'r';
        break;
      case KeyPart::Kind::Global:
        value = "*";
        tag = 'g';
        break;
    }
    if (value.empty()) return false;
    append_part(key, tag, value);
  }
  return true;
}

std::optional<proxy::Verdict> RateLimitPolicy::decide_now(proxy::RequestContext& ctx) {
  if (!store_->decides_at_once()) return std::nullopt;
  // The key is built in a buffer each worker thread reuses: counting a known key allocates
  // nothing.
  thread_local std::string key;
  if (!build_key(ctx, key)) return proxy::Continue{};
  return conclude(ctx, store_->hit_now(key, config_.rule));
}

boost::asio::awaitable<proxy::Verdict> RateLimitPolicy::on_request(proxy::RequestContext& ctx) {
  std::string key = key_for(ctx);
  if (key.empty()) co_return proxy::Continue{};
  Result<Decision> hit = co_await store_->hit(ctx.worker(), std::move(key), config_.rule);
  co_return conclude(ctx, hit);
}

proxy::Verdict RateLimitPolicy::conclude(proxy::RequestContext& ctx, const Result<Decision>& hit) {
  if (!hit) {
    store_error(ctx.worker().id(), hit.error());
    if (config_.on_store_error == OnStoreError::Allow) return proxy::Continue{};
    proxy::LocalReply reply;
    reply.status = 503;
    reply.reason = "rate_limit_store_error";
    reply.message = "Rate limit store unavailable";
    return reply;
  }
  const Decision& d = *hit;
  proxy::RateLimitState state;
  state.limit = d.limit;
  state.remaining = d.remaining;
  state.reset_seconds = d.reset_seconds;
  state.window_seconds = d.window_seconds;
  if (!ctx.rate_limit || more_restrictive(state, *ctx.rate_limit)) ctx.rate_limit = state;
  if (d.allowed) return proxy::Continue{};

  rejected_.inc(ctx.worker().id());
  proxy::LocalReply reply;
  reply.status = 429;
  reply.reason = "rate_limited";
  reply.headers.emplace_back("Retry-After", std::to_string(std::max<std::uint64_t>(d.retry_after_seconds, 1)));
  reply.message = config_.message;
  return reply;
}

void RateLimitPolicy::store_error(unsigned worker, const Error& e) {
  store_errors_.inc(worker);
  // Shared atomics: a store outage is rare, and its log line must stand for every worker.
  unlogged_errors_.fetch_add(1, std::memory_order_relaxed);
  const std::int64_t now = clock_.now_ns();
  std::int64_t last = last_log_ns_.load(std::memory_order_relaxed);
  if (last != 0 && now - last < 1'000'000'000) return;
  if (!last_log_ns_.compare_exchange_strong(last, now, std::memory_order_relaxed)) return;
  const std::uint64_t n = std::max<std::uint64_t>(unlogged_errors_.exchange(0, std::memory_order_relaxed), 1);
  log::warn("rate_limit \"{}\": store {} unavailable ({}); {} {} request{} without counting", name_,
            store_->kind(), e.context, config_.on_store_error == OnStoreError::Allow ? "allowed" : "refused with 503",
            n, n == 1 ? "" : "s");
}

void RateLimitPolicy::on_response(proxy::RequestContext& ctx, http::ResponseHead& head) {
  if (!ctx.rate_limit) return;
  const proxy::RateLimitState& s = *ctx.rate_limit;
  // One kept string holds the four values back to back; the fields view slices of it. Five
  // numbers of at most 20 digits and ";w=" fit.
  char buf[128];
  char* p = buf;
  std::size_t ends[4];
  auto number = [&](std::uint64_t v) { p = std::to_chars(p, buf + sizeof buf, v).ptr; };
  auto text = [&](std::string_view t) {
    const std::size_t n = std::min(t.size(), static_cast<std::size_t>(buf + sizeof buf - p));
    std::memcpy(p, t.data(), n);
    p += n;
  };
  // The limit and the policy are this rule's own text when the state is this rule's: the
  // policy outlives the response. Otherwise they are formatted with the rest.
  const bool own = s.limit == config_.rule.limit && s.window_seconds == window_seconds_;
  if (!own) number(s.limit);
  ends[0] = static_cast<std::size_t>(p - buf);
  number(s.remaining);
  ends[1] = static_cast<std::size_t>(p - buf);
  number(s.reset_seconds);
  ends[2] = static_cast<std::size_t>(p - buf);
  if (!own) {
    number(s.limit);
    text(";w=");
    number(s.window_seconds);
  }
  ends[3] = static_cast<std::size_t>(p - buf);
  const std::string_view kept = ctx.keep(std::string_view(buf, ends[3]));
  std::string_view parts[4];
  for (std::size_t i = 0, from = 0; i < 4; from = ends[i], ++i) parts[i] = kept.substr(from, ends[i] - from);
  if (own) {
    parts[0] = limit_text_;
    parts[3] = policy_text_;
  }
  // Most services send none of these: one pass tells, and the four are appended.
  const bool replace = has_rate_limit_field(head.fields);
  auto put = [&](std::string_view name, std::string_view value) {
    if (replace) head.fields.set(name, value);
    else head.fields.add(name, value);
  };
  put("RateLimit-Limit", parts[0]);
  put("RateLimit-Remaining", parts[1]);
  put("RateLimit-Reset", parts[2]);
  put("RateLimit-Policy", parts[3]);
}

std::shared_ptr<proxy::Policy> make_rate_limit_policy(const config::PolicyConfig& entry, const std::string& redis_url,
                                                      Resources& resources) {
  config::Diagnostics ignore;
  return make_rate_limit_policy(entry.name, parse_rate_limit(entry, ignore), redis_url, resources);
}

std::shared_ptr<proxy::Policy> make_rate_limit_policy(std::string name, RateLimitConfig cfg,
                                                      const std::string& redis_url, Resources& resources) {
  if (!cfg.store_given && !redis_url.empty()) cfg.store = StoreKind::Redis;
  std::shared_ptr<RateLimitStore> store;
  if (cfg.store == StoreKind::Redis && !redis_url.empty()) store = resources.redis_store(redis_url);
  if (!store) store = resources.memory_store();
  return std::make_shared<RateLimitPolicy>(std::move(name), std::move(cfg), std::move(store), resources.metrics(),
                                           resources.clock());
}

std::string explain(const RateLimitPolicy& policy, const http::Fields* request_headers) {
  const RateLimitConfig& c = policy.config();
  std::string by;
  for (const KeyPart& part : c.key) by += (by.empty() ? "" : " + ") + part.to_string();
  std::string out = fmt::format("{} per {} by {} ({}, {})", c.rule.limit, format_window(c.rule.window), by,
                                to_string(c.rule.algorithm), policy.store().kind());
  for (const KeyPart& part : c.key) {
    if (part.kind == KeyPart::Kind::Header && request_headers && request_headers->get(part.name).empty())
      out += fmt::format("; does not apply: no {} header", part.name);
    if (part.kind == KeyPart::Kind::Claim)
      out += fmt::format("; applies only when a verified token carries claim \"{}\"", part.name);
  }
  return out;
}

}  // namespace gh::policies
