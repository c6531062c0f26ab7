#include "policies/rate_limit/redis_store.h"

#include <openssl/evp.h>

#include <fmt/format.h>

#include <array>
#include <map>
#include <mutex>

#include "proxy/worker.h"

namespace gh::policies {

namespace redis = clients::redis;

namespace {

// Shared by the scripts: the server's clock in microseconds (exact in a double until 2255), and
// '%.0f' because Redis turns a Lua number into a string with only 14 significant digits.
// Redis before 5 must be told to replicate effects before a script that reads TIME writes.
constexpr const char* kPrelude = R"lua(
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local function n(x) return string.format('%.0f', x) end
)lua";

// fixed_window: a counter that expires with its window, which its first request opens; the
// server's own expiry ends the window (ms precision). Requests past the limit still count, which
// changes nothing: the window refuses every request until it ends, then starts at zero. The
// gateway derives the decision from {count, ms left} (fixed_window_decision), so the script is
// as cheap as a script can be: INCR and PTTL, and PEXPIRE once per window. A key without an
// expiry (never left behind by this script) is given one.
constexpr const char* kFixedWindow = R"lua(
local c = redis.call('INCR', KEYS[1])
local t = redis.call('PTTL', KEYS[1])
if t < 0 then
  t = tonumber(ARGV[1])
  redis.call('PEXPIRE', KEYS[1], t)
end
return {c, t}
)lua";

// sliding_window: fields s (current window start), c (admitted in it), p (in the previous one).
constexpr const char* kSlidingWindow = R"lua(
local v = redis.call('HMGET', KEYS[1], 's', 'c', 'p')
local start, count, prev = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])
local changed = false
if start == nil or count == nil or prev == nil then
  start = now; count = 0; prev = 0; changed = true
elseif now >= start + window then
  local k = math.floor((now - start) / window)
  if k == 1 then prev = count else prev = 0 end
  count = 0
  start = start + k * window
  changed = true
end
local elapsed = now - start
local budget = limit * window
local used = prev * (window - elapsed) + count * window
local allowed = 0
if used + window <= budget then
  allowed = 1
  count = count + 1
  used = used + window
  changed = true
end
local remaining = 0
if used < budget then remaining = math.floor((budget - used) / window) end
local expires = start + window
if count > 0 then expires = start + 2 * window end
if changed then
  redis.call('HSET', KEYS[1], 's', n(start), 'c', n(count), 'p', n(prev))
  redis.call('PEXPIRE', KEYS[1], n(math.max(1, math.ceil((expires - now) / 1000))))
end
local reset = 0
if count > 0 or prev > 0 then reset = math.ceil((expires - now) / 1000000) end
local retry = 0
if allowed == 0 then
  local at = -1
  if count + 1 <= limit and prev > 0 then
    local keep = math.floor((limit - count - 1) * window / prev)
    local el = window - math.min(keep, window)
    if el < window then at = start + el end
  end
  if at < 0 then
    local el = 0
    if count > 0 then el = window - math.min(math.floor((limit - 1) * window / count), window) end
    at = start + window + el
  end
  retry = math.max(1, math.ceil((at - now) / 1000000))
end
return {allowed, remaining, reset, retry}
)lua";

// token_bucket (GCRA): the theoretical arrival time is t + f/limit µs (t whole µs, 0 <= f <
// limit), so every step below is integer arithmetic on "1/limit µs" units: a request costs
// `window` of them and the bucket holds limit × window.
constexpr const char* kTokenBucket = R"lua(
local v = redis.call('HMGET', KEYS[1], 't', 'f')
local base, frac = tonumber(v[1]), tonumber(v[2])
local ahead = 0
if base ~= nil and frac ~= nil and (base > now or (base == now and frac > 0)) then
  ahead = (base - now) * limit + frac
end
local capacity = window * limit
local nxt = ahead + window
local allowed = 0
if nxt <= capacity then
  allowed = 1
  ahead = nxt
  redis.call('HSET', KEYS[1], 't', n(now + math.floor(ahead / limit)), 'f', n(ahead % limit))
  redis.call('PEXPIRE', KEYS[1], n(math.floor(ahead / limit / 1000) + 1))
end
local remaining = 0
if ahead < capacity then remaining = math.floor((capacity - ahead) / window) end
local per_second = limit * 1000000
local reset = math.ceil(ahead / per_second)
local retry = 0
if allowed == 0 then retry = math.max(1, math.ceil((nxt - capacity) / per_second)) end
return {allowed, remaining, reset, retry}
)lua";

std::string sha1_hex(const std::string& text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha1(), nullptr);
  std::string out;
  for (unsigned i = 0; i < len; ++i) out += fmt::format("{:02x}", md[i]);
  return out;
}

struct Script {
  std::string text;
  std::string sha;
  const char* tag;  // in the key, so a changed algorithm starts afresh
};

const Script& script(Algorithm a) {
  static const std::array<Script, 3> scripts = [] {
    std::array<Script, 3> out{{
        {std::string(kFixedWindow), {}, "fw"},
        {std::string(kPrelude) + kSlidingWindow, {}, "sw"},
        {std::string(kPrelude) + kTokenBucket, {}, "tb"},
    }};
    for (Script& s : out) s.sha = sha1_hex(s.text);
    return out;
  }();
  switch (a) {
    case Algorithm::FixedWindow: return scripts[0];
    case Algorithm::SlidingWindow: return scripts[1];
    case Algorithm::TokenBucket: return scripts[2];
  }
  return scripts[0];
}

Error bad_reply(std::string_view why) {
  return Error::upstream(ErrorCode::StoreUnavailable, fmt::format("redis rate-limit script: {}", why));
}

}  // namespace

Decision fixed_window_decision(const Rule& rule, std::uint64_t count, std::chrono::milliseconds left) {
  Decision d;
  d.allowed = count <= rule.limit;
  d.limit = rule.limit;
  d.remaining = d.allowed ? rule.limit - count : 0;
  d.reset_seconds = static_cast<std::uint64_t>((left.count() + 999) / 1000);
  d.retry_after_seconds = d.allowed ? 0 : d.reset_seconds;
  d.window_seconds = whole_seconds_up(rule.window);
  return d;
}

const std::string& redis_script(Algorithm a) { return script(a).text; }

RedisStore::RedisStore(redis::RedisClient client) : client_(std::move(client)) {}

Result<std::shared_ptr<RedisStore>> RedisStore::create(const Options& opts) {
  auto url = redis::RedisUrl::parse(opts.url);
  if (!url) return url.error();
  redis::ClientOptions co;
  co.timeout = opts.timeout;
  co.backoff_min = opts.backoff_min;
  co.backoff_max = opts.backoff_max;
  for (Algorithm a : {Algorithm::FixedWindow, Algorithm::SlidingWindow, Algorithm::TokenBucket})
    co.scripts.push_back(script(a).text);
  redis::RedisClient client(std::move(*url), std::move(co));
  return std::make_shared<RedisStore>(std::move(client));
}

boost::asio::awaitable<Result<Decision>> RedisStore::hit(proxy::Worker& worker, std::string key, Rule rule) {
  return hit_on(worker.io(), std::move(key), rule);
}

boost::asio::awaitable<Result<Decision>> RedisStore::hit_on(boost::asio::io_context& io, std::string key,
                                                            Rule rule) const {
  const Script& s = script(rule.algorithm);
  const bool fixed = rule.algorithm == Algorithm::FixedWindow;
  // fixed_window: ARGV = {window in ms}; the others: {limit, window in µs}.
  const auto window_ms = std::max<std::int64_t>(1, (rule.window.count() + 999'999) / 1'000'000);
  const auto window_us = std::max<std::int64_t>(1, (rule.window.count() + 999) / 1000);
  auto call = [&](bool by_sha) {
    redis::Command c(fixed ? 5 : 6, 160 + key.size() + (by_sha ? 0 : s.text.size()));
    c.arg(by_sha ? std::string_view("EVALSHA") : std::string_view("EVAL"));
    c.arg(by_sha ? s.sha : s.text).arg("1").arg_parts({"gatehouse:rl:", s.tag, ":", key});
    if (fixed) {
      c.arg(static_cast<std::uint64_t>(window_ms));
    } else {
      c.arg(rule.limit).arg(static_cast<std::uint64_t>(window_us));
    }
    return c;
  };
  // EVALSHA; EVAL when the server has lost the script (SCRIPT FLUSH, a restart).
  Result<redis::Reply> reply = co_await client_.command(io, call(true));
  if (reply && reply->is_error() && reply->str.starts_with("NOSCRIPT")) reply = co_await client_.command(io, call(false));
  if (!reply) co_return reply.error();
  if (reply->is_error()) co_return bad_reply(reply->str);
  const auto& e = reply->elements;
  const std::size_t want = fixed ? 2 : 4;
  if (reply->type != redis::Reply::Type::Array || e.size() != want)
    co_return bad_reply(fmt::format("expected an array of {} integers", want));
  for (const auto& x : e)
    if (x.type != redis::Reply::Type::Integer || x.integer < 0) co_return bad_reply("expected non-negative integers");
  if (fixed) {
    Decision d = fixed_window_decision(rule, static_cast<std::uint64_t>(e[0].integer),
                                       std::chrono::milliseconds(e[1].integer));
    co_return d;
  }
  Decision d;
  d.allowed = e[0].integer == 1;
  d.limit = rule.limit;
  d.remaining = static_cast<std::uint64_t>(e[1].integer);
  d.reset_seconds = static_cast<std::uint64_t>(e[2].integer);
  d.retry_after_seconds = static_cast<std::uint64_t>(e[3].integer);
  d.window_seconds = whole_seconds_up(rule.window);
  co_return d;
}

}  // namespace gh::policies
