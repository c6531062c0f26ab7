#include "admin/service_registry.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "clients/redis/redis_client.h"
#include "clients/redis/resp_reader.h"
#include "core/log.h"

namespace gh::admin {

namespace asio = boost::asio;
using asio::ip::tcp;
using std::chrono::milliseconds;
namespace redis = clients::redis;

namespace {

constexpr std::string_view kPrefix = "gatehouse:registry:";

// ARGV: prefix, service, url, weight, ttl_ms, channel. Returns 1 when new, 0 when renewed.
constexpr std::string_view kRegister = R"lua(
local p, s, u = ARGV[1], ARGV[2], ARGV[3]
local k = p .. 'instance:' .. s .. ':' .. u
local existed = redis.call('EXISTS', k)
redis.call('SET', k, ARGV[4], 'PX', ARGV[5])
redis.call('SADD', p .. 'urls:' .. s, u)
redis.call('SADD', p .. 'services', s)
redis.call('PUBLISH', ARGV[6], s)
return 1 - existed
)lua";

// ARGV: prefix, service, url, channel. Returns 1 when it was registered.
constexpr std::string_view kRemove = R"lua(
local p, s, u = ARGV[1], ARGV[2], ARGV[3]
local n = redis.call('DEL', p .. 'instance:' .. s .. ':' .. u)
redis.call('SREM', p .. 'urls:' .. s, u)
if n == 1 then redis.call('PUBLISH', ARGV[4], s) end
return n
)lua";

// ARGV: prefix, then (service, url, weight, ttl_ms) four at a time: written back only where
// absent (after a Redis restart lost them). Returns how many were written.
constexpr std::string_view kRestore = R"lua(
local p, n = ARGV[1], 0
for i = 2, #ARGV, 4 do
  local s, u = ARGV[i], ARGV[i + 1]
  if redis.call('SET', p .. 'instance:' .. s .. ':' .. u, ARGV[i + 2], 'PX', ARGV[i + 3], 'NX') then
    redis.call('SADD', p .. 'urls:' .. s, u)
    redis.call('SADD', p .. 'services', s)
    n = n + 1
  end
end
return n
)lua";

// ARGV: prefix. Returns service, url, weight, pttl four at a time; drops expired index entries.
constexpr std::string_view kRead = R"lua(
local p = ARGV[1]
local out = {}
for _, s in ipairs(redis.call('SMEMBERS', p .. 'services')) do
  local idx = p .. 'urls:' .. s
  for _, u in ipairs(redis.call('SMEMBERS', idx)) do
    local k = p .. 'instance:' .. s .. ':' .. u
    local ttl = redis.call('PTTL', k)
    local w = redis.call('GET', k)
    if ttl > 0 and w then
      out[#out + 1] = s; out[#out + 1] = u; out[#out + 1] = w; out[#out + 1] = ttl
    else
      redis.call('SREM', idx, u)
    end
  end
  if redis.call('SCARD', idx) == 0 then redis.call('SREM', p .. 'services', s) end
end
return out
)lua";

struct Entry {
  config::InstanceConfig instance;
  core::Clock::Monotonic expires;
};
using View = std::map<std::string, std::map<std::string, Entry>, std::less<>>;  // service -> url -> entry

bool same_instances(const std::map<std::string, Entry>& a, const std::map<std::string, Entry>& b) {
  if (a.size() != b.size()) return false;
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib)
    if (ia->first != ib->first || ia->second.instance.weight != ib->second.instance.weight) return false;
  return true;
}

}  // namespace

struct ServiceRegistry::State : std::enable_shared_from_this<State> {
  State(asio::io_context& io, const core::Clock& clock, core::Metrics& metrics)
      : io(io), clock(clock), store_errors(described_counter(metrics)), control_slot(metrics.control_slot()) {}

  static core::Counter& described_counter(core::Metrics& metrics) {
    metrics.describe("gatehouse_registry_store_errors_total", core::MetricType::Counter,
                     "Failed calls to the Redis that holds registered instances (the last known ones stay in use).");
    return metrics.counter("gatehouse_registry_store_errors_total");
  }

  asio::io_context& io;
  const core::Clock& clock;
  core::Counter& store_errors;
  unsigned control_slot;
  std::optional<redis::RedisClient> client;
  std::string channel;
  View view;
  std::function<void(const std::string&)> changed;
  bool stopped = false;
  bool started = false;
  // Redis reads: one at a time; a request while one runs makes one more after it.
  bool reading = false;
  bool read_again = false;
  bool outage = false;          // the last Redis call failed; logged once until one succeeds
  core::Clock::Monotonic last_expiry_read{};
  asio::steady_timer tick{io};
  std::optional<tcp::socket> subscriber;

  void notify(const std::string& service) {
    if (!stopped && changed) changed(service);
  }

  void store_failed(std::string_view what, const Error& e) {
    store_errors.inc(control_slot);
    if (!outage) {
      std::size_t n = 0;
      for (const auto& [_, urls] : view) n += urls.size();
      log::error("registry: Redis {} failed: {}; keeping the {} known registration{} until it answers", what,
                 e.context, n, n == 1 ? "" : "s");
    }
    outage = true;
  }

  // Replaces the view; notifies each service whose instances differ.
  void replace(View next) {
    std::set<std::string> services;
    for (const auto& [s, _] : view) services.insert(s);
    for (const auto& [s, _] : next) services.insert(s);
    View old = std::move(view);
    view = std::move(next);
    for (const auto& s : services) {
      static const std::map<std::string, Entry> kNone;
      auto a = old.find(s);
      auto b = view.find(s);
      if (!same_instances(a == old.end() ? kNone : a->second, b == view.end() ? kNone : b->second)) notify(s);
    }
  }

  bool any_expired(core::Clock::Monotonic now) const {
    for (const auto& [_, urls] : view)
      for (const auto& [__, e] : urls)
        if (e.expires <= now) return true;
    return false;
  }

  // Memory store: drops what expired.
  void expire_local() {
    const auto now = clock.now();
    View next = view;
    for (auto it = next.begin(); it != next.end();) {
      std::erase_if(it->second, [&](const auto& kv) { return kv.second.expires <= now; });
      it = it->second.empty() ? next.erase(it) : std::next(it);
    }
    replace(std::move(next));
  }

  template <class... Args>
  static redis::Command eval(std::string_view script, const Args&... args) {
    redis::Command c(3 + sizeof...(args));
    c.arg("EVAL").arg(script).arg(std::uint64_t{0});
    (c.arg(std::string_view(args)), ...);
    return c;
  }

  asio::awaitable<void> read_loop() {
    auto self = shared_from_this();
    if (reading) {
      read_again = true;
      co_return;
    }
    reading = true;
    do {
      read_again = false;
      co_await read_once();
    } while (read_again && !stopped);
    reading = false;
  }

  asio::awaitable<void> read_once() {
    auto reply = co_await client->command(io, eval(kRead, kPrefix));
    if (stopped) co_return;
    if (!reply || reply->is_error() || reply->type != redis::Reply::Type::Array || reply->elements.size() % 4 != 0) {
      store_failed("read", reply ? Error::upstream(ErrorCode::StoreUnavailable, reply->str.empty() ? "unexpected reply" : reply->str)
                                 : reply.error());
      co_return;
    }
    View next = parse_view(*reply);
    if (outage) {
      // Back after an outage: write again what Redis lost (a restart without persistence)
      // with the TTL it had left here; SET NX leaves whatever another gateway renewed.
      outage = false;
      log::info("registry: Redis answers again");
      if (auto restore = restore_command(next)) {
        auto r = co_await client->command(io, std::move(*restore));
        if (stopped) co_return;
        if (!r || r->is_error()) store_failed("restore", r ? Error::upstream(ErrorCode::StoreUnavailable, r->str) : r.error());
        else if (r->integer > 0) log::info("registry: wrote back {} registration{} Redis had lost", r->integer, r->integer == 1 ? "" : "s");
      }
    }
    replace(std::move(next));
  }

  // Coroutine bodies here stay thin: the work on maps is in plain functions (GCC 12 has
  // miscompiled range-for over structured bindings inside a coroutine frame).
  template <class... Args>
  static std::string command(const Args&... args) {
    redis::Command c(sizeof...(args));
    (c.arg(std::string_view(args)), ...);
    return c.resp();
  }

  // A read's reply as a view (entries that are not instance URLs are skipped).
  View parse_view(const redis::Reply& reply) const {
    log::debug("registry: read {} registration{} from Redis", reply.elements.size() / 4, reply.elements.size() == 4 ? "" : "s");
    const auto now = clock.now();
    View next;
    const auto& e = reply.elements;
    for (std::size_t i = 0; i + 3 < e.size(); i += 4) {
      config::InstanceConfig inst;
      std::string why;
      if (config::parse_instance(e[i + 1].str, inst, why) != config::InstanceUrl::Ok) continue;  // not ours
      inst.weight = static_cast<std::uint32_t>(std::clamp<long long>(std::atoll(e[i + 2].str.c_str()), 1, 1'000'000));
      const std::string url = inst.url;
      next[e[i].str][url] = Entry{std::move(inst), now + milliseconds(e[i + 3].integer)};
    }
    return next;
  }

  // What this gateway knew and `read` lacks, with TTL left: added to `read`, and the command
  // that writes it back; nullopt when nothing is missing.
  std::optional<redis::Command> restore_command(View& read) const {
    const auto now = clock.now();
    std::vector<std::string> args{std::string(kPrefix)};
    for (const auto& [s, urls] : view)
      for (const auto& [u, entry] : urls) {
        const auto left = std::chrono::duration_cast<milliseconds>(entry.expires - now);
        auto found = read.find(s);
        if (left.count() <= 0 || (found != read.end() && found->second.count(u))) continue;
        for (std::string a : {s, u, std::to_string(entry.instance.weight), std::to_string(left.count())}) args.push_back(std::move(a));
        read[s][u] = entry;
      }
    if (args.size() == 1) return std::nullopt;
    redis::Command c(3 + args.size());
    c.arg("EVAL").arg(kRestore).arg(std::uint64_t{0});
    for (const auto& a : args) c.arg(a);
    return c;
  }

  void read_soon() {
    asio::co_spawn(io, [self = shared_from_this()]() { return self->read_loop(); }, asio::detached);
  }

  // Every kExpiryCheck: the memory store drops what expired; with Redis, an expiry seen here
  // (or kFullReadEvery since the last read) makes a read.
  asio::awaitable<void> tick_loop() {
    auto self = shared_from_this();
    auto last_full = clock.now();
    while (!stopped) {
      tick.expires_after(kExpiryCheck);
      boost::system::error_code ec;
      co_await tick.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (stopped) co_return;
      const auto now = clock.now();
      if (!client) {
        expire_local();
        continue;
      }
      const bool expired = any_expired(now);
      // While Redis is down an expiry stays visible: read at most once a second for it.
      if ((expired && now - last_expiry_read >= std::chrono::seconds(1)) || now - last_full >= kFullReadEvery) {
        if (expired) last_expiry_read = now;
        last_full = now;
        co_await read_loop();
      }
    }
  }

  // The change feed: a connection of its own, SUBSCRIBEd; each announcement (and each new
  // subscription, which may follow missed ones) makes a read. Reconnects with backoff.
  asio::awaitable<void> subscribe_loop() {
    auto self = shared_from_this();
    milliseconds backoff{100};
    while (!stopped) {
      std::string why = co_await subscribe_once(backoff);
      if (stopped) co_return;
      if (!outage) {
        // Announcements are missed until the feed is back: read (and write back what Redis
        // lost) on the next answer, as after a failed call.
        store_failed("change feed", Error::upstream(ErrorCode::StoreUnavailable, why));
      }
      if (!why.empty()) log::debug("registry: change feed: {}; again in {} ms", why, backoff.count());
      asio::steady_timer wait(io, backoff);
      boost::system::error_code ec;
      co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      backoff = std::min(backoff * 2, milliseconds(1000));
    }
  }

  // Returns why the subscription ended.
  asio::awaitable<std::string> subscribe_once(milliseconds& backoff) {
    const redis::RedisUrl& url = client->url();
    boost::system::error_code ec;
    tcp::resolver resolver(io);
    auto found = co_await resolver.async_resolve(url.host, std::to_string(url.port), asio::redirect_error(asio::use_awaitable, ec));
    if (ec || stopped) co_return "cannot resolve " + url.endpoint();
    subscriber.emplace(io);
    asio::steady_timer guard(io, kRedisTimeout);  // connect and subscribe within the timeout
    guard.async_wait([this](boost::system::error_code e) {
      if (!e && subscriber) subscriber->close();
    });
    co_await asio::async_connect(*subscriber, found, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || stopped) co_return "cannot connect to " + url.endpoint();
    std::string out;
    if (!url.password.empty())
      out += url.user.empty() ? command("AUTH", url.password) : command("AUTH", url.user, url.password);
    out += command("SUBSCRIBE", channel);
    co_await asio::async_write(*subscriber, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
    if (ec || stopped) co_return "cannot write to " + url.endpoint();
    redis::ReplyReader reader;
    std::array<char, 4096> buf;
    bool subscribed = false;
    while (!stopped) {
      std::size_t n = co_await subscriber->async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
      if (ec || stopped) break;
      reader.feed(buf.data(), n);
      for (;;) {
        auto next = reader.next();
        if (!next) co_return "not a Redis reply";
        if (!*next) break;
        const redis::Reply& r = **next;
        if (r.is_error()) co_return "refused: " + r.str;
        if (r.type != redis::Reply::Type::Array || r.elements.size() < 3) continue;  // AUTH's +OK
        if (r.elements[0].str == "subscribe") {
          log::debug("registry: change feed subscribed");
          subscribed = true;
          backoff = milliseconds(100);
          guard.cancel();
          read_soon();  // announcements may have been missed while not subscribed
        } else if (r.elements[0].str == "message") {
          log::debug("registry: change announced for service \"{}\"", r.elements.size() > 2 ? r.elements[2].str : "");
          read_soon();
        }
      }
    }
    guard.cancel();
    co_return subscribed ? "connection lost" : "no subscription";
  }
};

ServiceRegistry::ServiceRegistry(asio::io_context& io, const core::Clock& clock, std::string redis_url, core::Metrics& metrics)
    : state_(std::make_shared<State>(io, clock, metrics)) {
  if (redis_url.empty()) return;
  auto url = redis::RedisUrl::parse(redis_url);
  if (!url) {
    log::error("registry: {}; registrations stay in this process", url.error().context);
    return;
  }
  state_->channel = fmt::format("{}changes:db{}", kPrefix, url->db);
  redis::ClientOptions opts;
  opts.timeout = kRedisTimeout;
  state_->client.emplace(std::move(*url), opts);
}

ServiceRegistry::~ServiceRegistry() { stop(); }

void ServiceRegistry::on_change(std::function<void(const std::string&)> f) { state_->changed = std::move(f); }

bool ServiceRegistry::uses_redis() const noexcept { return state_->client.has_value(); }

void ServiceRegistry::start() {
  if (state_->started) return;
  state_->started = true;
  asio::co_spawn(state_->io, [s = state_]() { return s->tick_loop(); }, asio::detached);
  if (state_->client) {
    asio::co_spawn(state_->io, [s = state_]() { return s->subscribe_loop(); }, asio::detached);
    state_->read_soon();
  }
}

void ServiceRegistry::stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  state_->tick.cancel();
  if (state_->subscriber) {
    boost::system::error_code ec;
    state_->subscriber->close(ec);
  }
}

asio::awaitable<Result<bool>> ServiceRegistry::add(std::string service, config::InstanceConfig inst, milliseconds ttl) {
  auto s = state_;
  const auto expires = s->clock.now() + ttl;
  bool added = true;
  if (s->client) {
    auto reply = co_await s->client->command(
        s->io, State::eval(kRegister, kPrefix, service, inst.url, std::to_string(inst.weight), std::to_string(ttl.count()), s->channel));
    if (!reply) {
      s->store_failed("write", reply.error());
      co_return reply.error();
    }
    if (reply->is_error()) co_return Error::upstream(ErrorCode::StoreUnavailable, "redis: " + reply->str);
    added = reply->integer == 1;
  }
  View next = s->view;
  auto& urls = next[service];
  if (!s->client) added = urls.find(inst.url) == urls.end();
  const std::string url = inst.url;
  urls[url] = Entry{std::move(inst), expires};
  s->replace(std::move(next));
  co_return added;
}

asio::awaitable<Result<bool>> ServiceRegistry::remove(std::string service, std::string url) {
  auto s = state_;
  bool removed = false;
  if (s->client) {
    auto reply = co_await s->client->command(s->io, State::eval(kRemove, kPrefix, service, url, s->channel));
    if (!reply) {
      s->store_failed("write", reply.error());
      co_return reply.error();
    }
    if (reply->is_error()) co_return Error::upstream(ErrorCode::StoreUnavailable, "redis: " + reply->str);
    removed = reply->integer == 1;
  }
  View next = s->view;
  if (auto it = next.find(service); it != next.end()) {
    if (it->second.erase(url) == 1 && !s->client) removed = true;
    if (it->second.empty()) next.erase(it);
  }
  s->replace(std::move(next));
  co_return removed;
}

std::vector<config::InstanceConfig> ServiceRegistry::instances(std::string_view service) const {
  std::vector<config::InstanceConfig> out;
  if (auto it = state_->view.find(service); it != state_->view.end())
    for (const auto& [_, e] : it->second) out.push_back(e.instance);
  return out;
}

std::vector<Registration> ServiceRegistry::all() const {
  std::vector<Registration> out;
  for (const auto& [s, urls] : state_->view)
    for (const auto& [_, e] : urls) out.push_back(Registration{s, e.instance, e.expires});
  return out;
}

}  // namespace gh::admin
