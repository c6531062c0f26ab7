// RedisStore and RedisClient against a real redis-server that each test starts on a free
// loopback port and kills at the end (they fail when redis-server is not installed), and against
// scripted servers that misbehave.
#include "policies/rate_limit/redis_store.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <thread>

#include "core/check.h"
#include "policies/rate_limit/rate_limit.h"
#include "proxy/request_context.h"
#include "proxy/worker.h"

namespace gh::policies {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A free loopback port: bound, read back, released.
std::uint16_t free_port() {
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

bool can_connect(std::uint16_t port) {
  asio::io_context io;
  tcp::socket s(io);
  boost::system::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  return !ec;
}

bool have_redis_server() { return ::system("command -v redis-server >/dev/null 2>&1") == 0; }

// A redis-server child process on 127.0.0.1:port.
class RedisServer {
 public:
  explicit RedisServer(std::uint16_t port = free_port(), std::vector<std::string> extra = {})
      : port_(port), extra_(std::move(extra)) {
    start();
  }
  ~RedisServer() { stop(); }

  void start() {
    GH_CHECK(pid_ <= 0);
    const std::string port = std::to_string(port_);
    pid_ = ::fork();
    GH_CHECK(pid_ >= 0);
    if (pid_ == 0) {
      int null = ::open("/dev/null", O_WRONLY);
      if (null >= 0) {
        ::dup2(null, 1);
        ::dup2(null, 2);
      }
      std::vector<std::string> args = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--loglevel", "warning"};
      args.insert(args.end(), extra_.begin(), extra_.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp("redis-server", argv.data());
      ::_exit(127);
    }
    const auto until = Clock::now() + 5s;  // bounded wait for the listener
    while (!can_connect(port_)) {
      GH_CHECK(Clock::now() < until);
      std::this_thread::sleep_for(10ms);
    }
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  std::uint16_t port_;
  std::vector<std::string> extra_;  // more redis-server arguments
  pid_t pid_ = -1;
};

std::shared_ptr<RedisStore> make_store(const std::string& url, std::chrono::milliseconds timeout = 100ms) {
  RedisStore::Options o;
  o.url = url;
  o.timeout = timeout;
  auto s = RedisStore::create(o);
  GH_CHECK(s.has_value());
  return *s;
}

// Runs `io` until `done()`: a connection's reader keeps the loop busy, so it never runs dry.
template <class F>
void run_until(asio::io_context& io, F done) {
  io.restart();
  while (!done()) GH_CHECK(io.run_one() > 0);
}

// Runs one hit to completion on `io`.
Result<Decision> hit(asio::io_context& io, const RedisStore& store, const std::string& key, const Rule& rule) {
  std::optional<Result<Decision>> out;
  asio::co_spawn(io, store.hit_on(io, key, rule), [&](std::exception_ptr e, Result<Decision> d) {
    if (e) std::rethrow_exception(e);
    out = std::move(d);
  });
  run_until(io, [&] { return out.has_value(); });
  return std::move(*out);
}

// Runs one command to completion on `io`.
Result<redis::Reply> call(asio::io_context& io, const redis::RedisClient& client, redis::Command cmd) {
  std::optional<Result<redis::Reply>> out;
  asio::co_spawn(io, client.command(io, std::move(cmd)), [&](std::exception_ptr e, Result<redis::Reply> r) {
    if (e) std::rethrow_exception(e);
    out = std::move(r);
  });
  run_until(io, [&] { return out.has_value(); });
  return std::move(*out);
}

Rule rule(std::uint64_t limit, std::chrono::nanoseconds window, Algorithm a) {
  Rule r;
  r.limit = limit;
  r.window = window;
  r.algorithm = a;
  return r;
}

// scripts/deps.sh installs redis-server; without it these tests fail rather than pass unchecked.
#define REQUIRE_REDIS_SERVER() \
  if (!have_redis_server()) FAIL() << "redis-server is not installed (scripts/deps.sh installs it)"

TEST(RedisUrl, Parses) {
  auto u = redis::RedisUrl::parse("redis://user:pw@redis.internal:6380/2");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "redis.internal");
  EXPECT_EQ(u->port, 6380);
  EXPECT_EQ(u->user, "user");
  EXPECT_EQ(u->password, "pw");
  EXPECT_EQ(u->db, 2);
  EXPECT_EQ(u->endpoint(), "redis.internal:6380");
  auto d = redis::RedisUrl::parse("redis://127.0.0.1");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->port, 6379);
  EXPECT_EQ(d->db, 0);
  EXPECT_TRUE(d->password.empty());
  auto p = redis::RedisUrl::parse("redis://secret@h:1");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->password, "secret");
  EXPECT_TRUE(p->user.empty());
  auto v6 = redis::RedisUrl::parse("redis://[::1]:7000");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->endpoint(), "[::1]:7000");
  EXPECT_FALSE(redis::RedisUrl::parse("http://h:1"));
  EXPECT_FALSE(redis::RedisUrl::parse("redis://:6379"));
  EXPECT_FALSE(redis::RedisUrl::parse("redis://h:0"));
  EXPECT_FALSE(redis::RedisUrl::parse("redis://h:99999"));
  EXPECT_FALSE(redis::RedisUrl::parse("redis://h:1/x"));
  auto encoded = redis::RedisUrl::parse("redis://us%3Aer:p%2Fs%40s@h:1");
  ASSERT_TRUE(encoded);
  EXPECT_EQ(encoded->user, "us:er");
  EXPECT_EQ(encoded->password, "p/s@s");
  auto raw_slash = redis::RedisUrl::parse("redis://:p/ss@h:6379");
  ASSERT_FALSE(raw_slash);
  EXPECT_EQ(raw_slash.error().context,
            "redis URL: a \"/\" in the user name or password is written %2F; expected redis://[user:pass@]host:port[/db]");
}

// The password is percent-decoded before AUTH: a server whose password holds "/" accepts it.
TEST(RedisClient, PercentEncodedPasswordIsSentDecoded) {
  REQUIRE_REDIS_SERVER();
  RedisServer server(free_port(), {"--requirepass", "p/ss"});
  const std::string at = "@127.0.0.1:" + std::to_string(server.port());
  asio::io_context io;
  redis::RedisClient good(*redis::RedisUrl::parse("redis://:p%2Fss" + at), redis::ClientOptions{});
  auto r = call(io, good, {"PING"});
  ASSERT_TRUE(r) << r.error().context;
  EXPECT_EQ(r->type, redis::Reply::Type::Status);
  EXPECT_EQ(r->str, "PONG");
  redis::RedisClient with_user(*redis::RedisUrl::parse("redis://default:p%2fss" + at), redis::ClientOptions{});
  r = call(io, with_user, {"PING"});
  ASSERT_TRUE(r) << r.error().context;
  EXPECT_EQ(r->str, "PONG");
  // The same bytes left encoded are the wrong password: AUTH fails, the call with it.
  redis::RedisClient wrong(*redis::RedisUrl::parse("redis://:p%252Fss" + at), redis::ClientOptions{});
  r = call(io, wrong, {"PING"});
  EXPECT_FALSE(r);
}

TEST(RedisCommand, WritesResp) {
  EXPECT_EQ(redis::Command({"GET", "k"}).resp(), "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
  redis::Command c(4);
  EXPECT_FALSE(c.complete());
  c.arg("SET").arg_parts({"a:", "", "b\r\nc"}).arg(std::uint64_t{12345}).arg("");
  EXPECT_TRUE(c.complete());
  // Binary-safe: lengths, not delimiters, frame each argument.
  EXPECT_EQ(c.resp(), "*4\r\n$3\r\nSET\r\n$6\r\na:b\r\nc\r\n$5\r\n12345\r\n$0\r\n\r\n");
}

// The reader on its own: replies split anywhere, several in one read, errors that stick until
// reset(), and headers that announce more than they bring cost nothing until it comes.
TEST(ReplyReader, SplitsPipelinesAndFails) {
  redis::ReplyReader reader;
  const std::string bytes = "*3\r\n:1\r\n$2\r\nab\r\n*1\r\n$-1\r\n+OK\r\n";
  for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
    reader.reset();
    reader.feed(bytes.data(), cut);
    std::vector<redis::Reply> got;
    for (auto r = reader.next(); r && *r; r = reader.next()) got.push_back(std::move(**r));
    reader.feed(bytes.data() + cut, bytes.size() - cut);
    for (auto r = reader.next(); r && *r; r = reader.next()) got.push_back(std::move(**r));
    ASSERT_EQ(got.size(), 2u) << cut;
    ASSERT_EQ(got[0].elements.size(), 3u) << cut;
    EXPECT_EQ(got[0].elements[0].integer, 1);
    EXPECT_EQ(got[0].elements[1].str, "ab");
    ASSERT_EQ(got[0].elements[2].elements.size(), 1u);
    EXPECT_EQ(got[0].elements[2].elements[0].type, redis::Reply::Type::Nil);
    EXPECT_EQ(got[1].type, redis::Reply::Type::Status);
  }
  reader.reset();
  const std::string many = "*65536\r\n:1\r\n:2\r\n";  // at the cap, 2 of 65,536 sent
  reader.feed(many.data(), many.size());
  auto waiting = reader.next();
  ASSERT_TRUE(waiting);
  EXPECT_FALSE(waiting->has_value());
  reader.reset();
  const std::string too_many = "*65537\r\n";
  reader.feed(too_many.data(), too_many.size());
  EXPECT_FALSE(reader.next());
  EXPECT_FALSE(reader.next());  // it sticks
  reader.reset();
  reader.feed(":7\r\n", 4);
  auto fresh = reader.next();
  ASSERT_TRUE(fresh && *fresh);
  EXPECT_EQ((*fresh)->integer, 7);
}

TEST(RedisClient, PipelinesCommandsInOrder) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  redis::RedisClient client(*redis::RedisUrl::parse(server.url() + "/3"), redis::ClientOptions{});
  asio::io_context io;
  std::vector<std::optional<Result<redis::Reply>>> out(50);
  for (int i = 0; i < 50; ++i) {
    asio::co_spawn(io, client.command(io, {"INCR", "counter"}), [&out, i](std::exception_ptr e, Result<redis::Reply> r) {
      if (e) std::rethrow_exception(e);
      out[i] = std::move(r);
    });
  }
  run_until(io, [&] { return out.back().has_value(); });
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(out[i] && *out[i]) << i;
    EXPECT_EQ((*out[i])->type, redis::Reply::Type::Integer);
    EXPECT_EQ((*out[i])->integer, i + 1);  // replies matched to their calls in order
  }
}

// Every reply shape, read into Reply by hiredis' reader: nested arrays, nil, status, error,
// binary bulk strings; then the connection is still in step.
TEST(RedisClient, ReadsEveryReplyShape) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  redis::RedisClient client(*redis::RedisUrl::parse(server.url()), redis::ClientOptions{});
  asio::io_context io;
  auto run = [&](redis::Command cmd) { return call(io, client, std::move(cmd)); };
  using T = redis::Reply::Type;
  auto r = run({"EVAL", "return {1, 'a\\0b', {2, false, {}}, redis.status_reply('FINE'), -7}", "0"});
  ASSERT_TRUE(r) << r.error().context;
  ASSERT_EQ(r->type, T::Array);
  ASSERT_EQ(r->elements.size(), 5u);
  EXPECT_EQ(r->elements[0].type, T::Integer);
  EXPECT_EQ(r->elements[0].integer, 1);
  EXPECT_EQ(r->elements[1].type, T::String);
  EXPECT_EQ(r->elements[1].str, std::string("a\0b", 3));
  ASSERT_EQ(r->elements[2].type, T::Array);
  ASSERT_EQ(r->elements[2].elements.size(), 3u);
  EXPECT_EQ(r->elements[2].elements[0].integer, 2);
  EXPECT_EQ(r->elements[2].elements[1].type, T::Nil);
  EXPECT_EQ(r->elements[2].elements[2].type, T::Array);
  EXPECT_TRUE(r->elements[2].elements[2].elements.empty());
  EXPECT_EQ(r->elements[3].type, T::Status);
  EXPECT_EQ(r->elements[3].str, "FINE");
  EXPECT_EQ(r->elements[4].integer, -7);
  auto err = run({"NOSUCHCOMMAND"});
  ASSERT_TRUE(err);
  EXPECT_TRUE(err->is_error());
  EXPECT_NE(err->str.find("unknown command"), std::string::npos) << err->str;
  auto nil = run({"GET", "absent"});
  ASSERT_TRUE(nil);
  EXPECT_EQ(nil->type, T::Nil);
  std::string big(100'000, 'x');
  big[50'000] = '\r';
  ASSERT_TRUE(run({"SET", "big", big}));
  auto back = run({"GET", "big"});  // arrives over several reads
  ASSERT_TRUE(back);
  EXPECT_EQ(back->str, big);
  auto pong = run({"PING"});
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->type, T::Status);
  EXPECT_EQ(pong->str, "PONG");
}

TEST(RedisStore, FixedWindow) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  auto store = make_store(server.url());
  asio::io_context io;
  const Rule r = rule(3, 1min, Algorithm::FixedWindow);
  for (std::uint64_t i = 0; i < 3; ++i) {
    auto d = hit(io, *store, "k", r);
    ASSERT_TRUE(d) << d.error().context;
    EXPECT_TRUE(d->allowed) << i;
    EXPECT_EQ(d->remaining, 2 - i);
    EXPECT_EQ(d->limit, 3u);
    EXPECT_EQ(d->window_seconds, 60u);
    EXPECT_GE(d->reset_seconds, 59u);
    EXPECT_LE(d->reset_seconds, 60u);
  }
  auto refused = hit(io, *store, "k", r);
  ASSERT_TRUE(refused);
  EXPECT_FALSE(refused->allowed);
  EXPECT_EQ(refused->remaining, 0u);
  EXPECT_GE(refused->retry_after_seconds, 59u);
  EXPECT_LE(refused->retry_after_seconds, 60u);
  // Another key has its own budget.
  auto other = hit(io, *store, "other", r);
  ASSERT_TRUE(other);
  EXPECT_TRUE(other->allowed);

  // The window's edge, on the server's clock: full, then a fresh window once it has passed.
  const Rule short_rule = rule(2, 300ms, Algorithm::FixedWindow);
  EXPECT_TRUE(hit(io, *store, "edge", short_rule)->allowed);
  EXPECT_TRUE(hit(io, *store, "edge", short_rule)->allowed);
  EXPECT_FALSE(hit(io, *store, "edge", short_rule)->allowed);
  std::this_thread::sleep_for(350ms);
  auto fresh = hit(io, *store, "edge", short_rule);
  EXPECT_TRUE(fresh->allowed);
  EXPECT_EQ(fresh->remaining, 1u);
}

// The decision fixed_window's script leaves to the gateway: {count, ms left} → Decision.
TEST(RedisStore, FixedWindowDecision) {
  const Rule r = rule(3, 90s, Algorithm::FixedWindow);
  Decision first = fixed_window_decision(r, 1, 90'000ms);
  EXPECT_TRUE(first.allowed);
  EXPECT_EQ(first.remaining, 2u);
  EXPECT_EQ(first.reset_seconds, 90u);
  EXPECT_EQ(first.retry_after_seconds, 0u);
  EXPECT_EQ(first.window_seconds, 90u);
  Decision last = fixed_window_decision(r, 3, 1'001ms);
  EXPECT_TRUE(last.allowed);
  EXPECT_EQ(last.remaining, 0u);
  EXPECT_EQ(last.reset_seconds, 2u);  // rounded up
  Decision over = fixed_window_decision(r, 4, 999ms);
  EXPECT_FALSE(over.allowed);
  EXPECT_EQ(over.remaining, 0u);
  EXPECT_EQ(over.reset_seconds, 1u);
  EXPECT_EQ(over.retry_after_seconds, 1u);
  Decision far_over = fixed_window_decision(r, 1'000'000, 0ms);
  EXPECT_FALSE(far_over.allowed);
  EXPECT_EQ(far_over.remaining, 0u);
}

// A counter found without an expiry (written by hand, say) is given the window's, so it can
// never lock a key out for good; a key of another type is a store error, not a crash.
TEST(RedisStore, FixedWindowRepairsAKeyWithoutExpiry) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  auto store = make_store(server.url());
  asio::io_context io;
  auto run = [&](redis::Command cmd) { return call(io, store->client(), std::move(cmd)); };
  ASSERT_TRUE(run({"SET", "gatehouse:rl:fw:stuck", "7"}));
  auto d = hit(io, *store, "stuck", rule(3, 2s, Algorithm::FixedWindow));
  ASSERT_TRUE(d) << d.error().context;
  EXPECT_FALSE(d->allowed);
  EXPECT_EQ(d->reset_seconds, 2u);
  auto ttl = run({"PTTL", "gatehouse:rl:fw:stuck"});
  ASSERT_TRUE(ttl);
  EXPECT_GT(ttl->integer, 1'000);
  EXPECT_LE(ttl->integer, 2'000);

  ASSERT_TRUE(run({"HSET", "gatehouse:rl:fw:hash", "a", "1"}));
  auto wrong = hit(io, *store, "hash", rule(3, 2s, Algorithm::FixedWindow));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ErrorCode::StoreUnavailable);
  EXPECT_NE(wrong.error().context.find("WRONGTYPE"), std::string::npos) << wrong.error().context;
  // The connection is still good.
  EXPECT_TRUE(hit(io, *store, "fine", rule(3, 2s, Algorithm::FixedWindow))->allowed);
}

TEST(RedisStore, RefusedHitsConsumeNothing) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  auto store = make_store(server.url());
  asio::io_context io;
  const Rule r = rule(2, 300ms, Algorithm::FixedWindow);
  EXPECT_TRUE(hit(io, *store, "k", r)->allowed);
  EXPECT_TRUE(hit(io, *store, "k", r)->allowed);
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(hit(io, *store, "k", r)->allowed);
  std::this_thread::sleep_for(350ms);
  EXPECT_TRUE(hit(io, *store, "k", r)->allowed);
  EXPECT_TRUE(hit(io, *store, "k", r)->allowed);
}

TEST(RedisStore, SlidingWindow) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  auto store = make_store(server.url());
  asio::io_context io;
  const Rule r = rule(2, 400ms, Algorithm::SlidingWindow);
  const auto t0 = Clock::now();
  EXPECT_TRUE(hit(io, *store, "k", r)->allowed);
  auto second = hit(io, *store, "k", r);
  EXPECT_TRUE(second->allowed);
  EXPECT_EQ(second->remaining, 0u);
  auto third = hit(io, *store, "k", r);
  EXPECT_FALSE(third->allowed);
  EXPECT_GE(third->retry_after_seconds, 1u);
  // Early in the next window the previous window's 2 still weigh more than 1.
  std::this_thread::sleep_until(t0 + 450ms);
  EXPECT_FALSE(hit(io, *store, "k", r)->allowed);
  // Past its middle they weigh less than 1: one more fits.
  std::this_thread::sleep_until(t0 + 720ms);
  EXPECT_TRUE(hit(io, *store, "k", r)->allowed);
  EXPECT_FALSE(hit(io, *store, "k", r)->allowed);
}

TEST(RedisStore, TokenBucket) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  auto store = make_store(server.url());
  asio::io_context io;
  const Rule r = rule(2, 400ms, Algorithm::TokenBucket);  // a token every 200ms
  auto first = hit(io, *store, "k", r);
  EXPECT_TRUE(first->allowed);
  EXPECT_EQ(first->remaining, 1u);
  EXPECT_EQ(first->reset_seconds, 1u);
  EXPECT_TRUE(hit(io, *store, "k", r)->allowed);
  auto refused = hit(io, *store, "k", r);
  EXPECT_FALSE(refused->allowed);
  EXPECT_EQ(refused->retry_after_seconds, 1u);
  std::this_thread::sleep_for(230ms);
  EXPECT_TRUE(hit(io, *store, "k", r)->allowed);
  EXPECT_FALSE(hit(io, *store, "k", r)->allowed);
  // A long window: bursts of `limit`, exact.
  const Rule big = rule(5, 1h, Algorithm::TokenBucket);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(hit(io, *store, "big", big)->allowed) << i;
  auto over = hit(io, *store, "big", big);
  EXPECT_FALSE(over->allowed);
  EXPECT_GE(over->retry_after_seconds, 719u);  // one token every 12 minutes
  EXPECT_LE(over->retry_after_seconds, 720u);
}

TEST(RedisStore, KeysAreNamespacedAndExpire) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  auto store = make_store(server.url());
  asio::io_context io;
  ASSERT_TRUE(hit(io, *store, "p5:per-ip", rule(3, 1min, Algorithm::FixedWindow)));
  auto ttl = call(io, store->client(), {"PTTL", "gatehouse:rl:fw:p5:per-ip"});
  ASSERT_TRUE(ttl);
  EXPECT_GT(ttl->integer, 59'000);
  EXPECT_LE(ttl->integer, 60'000);
}

TEST(RedisStore, ScriptFlushFallsBackToEval) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  auto store = make_store(server.url());
  asio::io_context io;
  for (Algorithm a : {Algorithm::FixedWindow, Algorithm::SlidingWindow, Algorithm::TokenBucket}) {
    const Rule r = rule(3, 1min, a);
    ASSERT_TRUE(hit(io, *store, "k", r)->allowed) << to_string(a);
    ASSERT_TRUE(call(io, store->client(), {"SCRIPT", "FLUSH"}));
    auto d = hit(io, *store, "k", r);  // EVALSHA → NOSCRIPT → EVAL
    ASSERT_TRUE(d) << d.error().context;
    EXPECT_TRUE(d->allowed) << to_string(a);
    EXPECT_EQ(d->remaining, 1u) << to_string(a);
  }
}

// Two gateways: two stores (two clients, two connections), each on its own worker thread,
// hammering one key at once. Between them they admit exactly the limit.
TEST(RedisStore, TwoInstancesShareOneBudgetExactly) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  constexpr int kPerInstance = 150;
  constexpr std::uint64_t kLimit = 100;
  for (Algorithm a : {Algorithm::FixedWindow, Algorithm::SlidingWindow, Algorithm::TokenBucket}) {
    std::atomic<int> admitted{0}, refused{0}, failed{0};
    auto instance = [&](unsigned id) {
      int done = 0;
      proxy::GatewayShared shared;
      proxy::Worker worker{id, shared, nullptr};
      auto store = make_store(server.url(), 1000ms);
      const Rule r = rule(kLimit, 1min, a);
      for (int i = 0; i < kPerInstance; ++i) {
        asio::co_spawn(worker.io(), store->hit(worker, "shared", r), [&](std::exception_ptr e, Result<Decision> d) {
          if (e || !d) ++failed;
          else if (d->allowed) ++admitted;
          else ++refused;
          ++done;
        });
      }
      run_until(worker.io(), [&] { return done == kPerInstance; });
    };
    std::thread one(instance, 0), two(instance, 1);
    one.join();
    two.join();
    EXPECT_EQ(failed.load(), 0) << to_string(a);
    EXPECT_EQ(admitted.load(), static_cast<int>(kLimit)) << to_string(a);
    EXPECT_EQ(refused.load(), 2 * kPerInstance - static_cast<int>(kLimit)) << to_string(a);
  }
}

// A server that accepts and never answers: every call fails at its deadline, not later.
TEST(RedisStore, SilentServerFailsWithinTheDeadline) {
  asio::io_context listen_io;
  tcp::acceptor acceptor(listen_io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::string url = "redis://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  auto store = make_store(url, 80ms);
  asio::io_context io;
  const auto t0 = Clock::now();
  auto d = hit(io, *store, "k", rule(1, 1s, Algorithm::FixedWindow));
  const auto elapsed = Clock::now() - t0;
  ASSERT_FALSE(d);
  EXPECT_GE(elapsed, 75ms);
  EXPECT_LT(elapsed, 300ms);
  // Backing off: the next call fails at once instead of waiting again.
  const auto t1 = Clock::now();
  auto again = hit(io, *store, "k", rule(1, 1s, Algorithm::FixedWindow));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::StoreUnavailable);
  EXPECT_LT(Clock::now() - t1, 50ms);
}

// A server that answers anything with `payload` (once), then keeps the connection open.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::string payload)
      : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), payload_(std::move(payload)) {
    thread_ = std::thread([this] {
      boost::system::error_code ec;
      tcp::socket s(io_);
      acceptor_.accept(s, ec);
      if (ec) return;
      char buf[4096];
      s.read_some(asio::buffer(buf), ec);
      if (!ec) asio::write(s, asio::buffer(payload_), ec);
      while (!ec) s.read_some(asio::buffer(buf), ec);  // until the client closes
    });
  }
  ~ScriptedServer() {
    boost::system::error_code ignore;
    acceptor_.close(ignore);
    thread_.join();
  }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()); }

 private:
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::string payload_;
  std::thread thread_;
};

// Replies that are not Redis's: each fails the call with a clear error at once, never a crash,
// a hang or a huge allocation.
TEST(RedisClient, MalformedRepliesFailTheCall) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"*2147483647\r\n", "Out of memory"},               // announces 2^31 elements
      {"*100000\r\n", "Out of memory"},                   // more than a reply of ours can have
      {"HTTP/1.1 200 OK\r\n\r\n", "protocol error"},     // not RESP at all
      {"$-5\r\n", "protocol error"},                      // a negative bulk length
      {"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", "protocol error"},  // too deep
  };
  for (const auto& [payload, why] : cases) {
    ScriptedServer server(payload);
    redis::ClientOptions opts;
    opts.timeout = 2s;
    redis::RedisClient client(*redis::RedisUrl::parse(server.url()), opts);
    asio::io_context io;
    const auto t0 = Clock::now();
    testing::internal::CaptureStderr();
    auto out = call(io, client, {"GET", "k"});
    const std::string log = testing::internal::GetCapturedStderr();
    ASSERT_FALSE(out) << payload;
    EXPECT_EQ(out.error().code, ErrorCode::StoreUnavailable) << payload;
    EXPECT_NE(out.error().context.find(why), std::string::npos) << payload << ": " << out.error().context;
    EXPECT_LT(Clock::now() - t0, 1s) << payload;  // at once, not at the deadline
    EXPECT_NE(log.find("retrying in"), std::string::npos) << log;
  }
}

// The loop goes while calls wait on a server that never answers: the waiters' frames and the
// connection are freed with it, nothing completes afterwards (ASan and LSan watch this).
TEST(RedisClient, LoopTornDownWithCallsPending) {
  asio::io_context listen_io;
  tcp::acceptor acceptor(listen_io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  redis::ClientOptions opts;
  opts.timeout = 10s;
  redis::RedisClient client(*redis::RedisUrl::parse("redis://127.0.0.1:" +
                                                    std::to_string(acceptor.local_endpoint().port())),
                            opts);
  int completed = 0;
  {
    asio::io_context io;
    for (int i = 0; i < 10; ++i)
      asio::co_spawn(io, client.command(io, {"PING"}), [&](std::exception_ptr, Result<redis::Reply>) { ++completed; });
    io.run_for(100ms);
    EXPECT_EQ(completed, 0);
  }
  EXPECT_EQ(completed, 0);
}

// Runs a policy's on_request to completion on `worker`'s loop.
proxy::Verdict run_policy(proxy::Worker& worker, proxy::Policy& p, proxy::RequestContext& ctx) {
  std::optional<proxy::Verdict> out;
  asio::co_spawn(worker.io(), p.on_request(ctx), [&](std::exception_ptr e, proxy::Verdict v) {
    if (e) std::rethrow_exception(e);
    out = std::move(v);
  });
  run_until(worker.io(), [&] { return out.has_value(); });
  GH_CHECK(out.has_value());
  return std::move(*out);
}

std::shared_ptr<RateLimitPolicy> policy(const std::string& name, const std::string& yaml,
                                        std::shared_ptr<RateLimitStore> store,
                                        const core::Clock& clock = core::Clock::real()) {
  config::PolicyConfig e;
  e.name = name;
  e.type = "rate_limit";
  e.path = "policies." + name;
  e.options = YAML::Load(yaml);
  config::Diagnostics diag("t.yaml");
  RateLimitConfig cfg = parse_rate_limit(e, diag, true);
  EXPECT_TRUE(diag.empty());
  return std::make_shared<RateLimitPolicy>(name, cfg, std::move(store), clock);
}

bool continues(const proxy::Verdict& v) { return std::holds_alternative<proxy::Continue>(v); }

// Redis dies mid-run: each decision fails within the deadline and on_store_error applies;
// Redis comes back on the same port: limiting resumes without restarting anything.
TEST(RedisStore, OutageThenRecovery) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  proxy::GatewayShared shared;
  proxy::Worker worker{0, shared, nullptr};
  auto store = make_store(server.url(), 100ms);
  auto allow = policy("lenient", "{type: rate_limit, key: global, limit: 2, window: 1m, on_store_error: allow}", store);
  auto deny = policy("strict", "{type: rate_limit, key: global, limit: 2, window: 1m, on_store_error: deny}", store);
  http::RequestHead head;
  head.method = "GET";
  head.path = "/";
  proxy::RequestContext ctx(worker, nullptr, head);
  ctx.client_ip_ = "192.0.2.1";

  EXPECT_TRUE(continues(run_policy(worker, *allow, ctx)));
  EXPECT_TRUE(continues(run_policy(worker, *allow, ctx)));
  EXPECT_FALSE(continues(run_policy(worker, *allow, ctx)));  // limited through Redis
  EXPECT_TRUE(continues(run_policy(worker, *deny, ctx)));

  server.stop();
  for (int i = 0; i < 5; ++i) {
    auto t0 = Clock::now();
    EXPECT_TRUE(continues(run_policy(worker, *allow, ctx))) << i;  // allow: admitted uncounted
    auto v = run_policy(worker, *deny, ctx);
    ASSERT_FALSE(continues(v)) << i;
    EXPECT_EQ(std::get<proxy::LocalReply>(v).status, 503);
    EXPECT_LT(Clock::now() - t0, 250ms) << i;  // both decisions, each bounded by 100ms
  }
  EXPECT_EQ(allow->stats().store_errors.load(), 5u);
  EXPECT_EQ(deny->stats().store_errors.load(), 5u);

  server.start();  // same port, empty data
  const auto until = Clock::now() + 5s;  // the backoff is at most 2s
  bool back = false;
  while (Clock::now() < until) {
    auto before = deny->stats().store_errors.load();
    auto v = run_policy(worker, *deny, ctx);
    if (deny->stats().store_errors.load() == before) {
      back = true;
      EXPECT_TRUE(continues(v));  // a fresh budget on the new server
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(back) << "limiting did not resume within 5s of Redis returning";
  EXPECT_TRUE(continues(run_policy(worker, *deny, ctx)));
  EXPECT_FALSE(continues(run_policy(worker, *deny, ctx)));  // counted again: limit 2 reached
}

// Decisions taken without the store: every one counted, at most one log line a second.
TEST(RedisStore, StoreErrorsAreCountedAndLoggedSparingly) {
  proxy::GatewayShared shared;
  proxy::Worker worker{0, shared, nullptr};
  auto store = make_store("redis://127.0.0.1:" + std::to_string(free_port()), 100ms);  // nobody listens
  core::FakeClock clock;
  auto p = policy("down", "{type: rate_limit, key: global, limit: 5, window: 1m}", store, clock);
  http::RequestHead head;
  head.method = "GET";
  head.path = "/";
  proxy::RequestContext ctx(worker, nullptr, head);
  auto lines_in = [](const std::string& err) {
    std::size_t lines = 0;
    for (std::size_t at = 0; (at = err.find("rate_limit \"down\"", at)) != std::string::npos; ++at) ++lines;
    return lines;
  };
  testing::internal::CaptureStderr();
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(continues(run_policy(worker, *p, ctx)));  // allow by default
  clock.advance(999ms);
  EXPECT_TRUE(continues(run_policy(worker, *p, ctx)));
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(p->stats().store_errors.load(), 21u);
  EXPECT_EQ(lines_in(err), 1u) << err;  // within one second: one line
  EXPECT_NE(err.find("allowed 1 request without counting"), std::string::npos) << err;
  // A second later the next decision logs again, for the 20 it stands for.
  testing::internal::CaptureStderr();
  clock.advance(1ms);
  EXPECT_TRUE(continues(run_policy(worker, *p, ctx)));
  err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(lines_in(err), 1u) << err;
  EXPECT_NE(err.find("allowed 21 requests without counting"), std::string::npos) << err;
}

}  // namespace
}  // namespace gh::policies
