// RedisClient and ReplyReader against a real redis-server that each test starts on a free
// loopback port and kills at the end (they fail when redis-server is not installed), and against
// scripted servers that misbehave.
#include "clients/redis/redis_client.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <optional>
#include <thread>

#include "clients/redis/redis_test_server.h"
#include "clients/redis/resp_reader.h"

namespace gh::clients::redis {
namespace {

using namespace test;

TEST(RedisUrl, Parses) {
  auto u = RedisUrl::parse("redis://user:pw@redis.internal:6380/2");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "redis.internal");
  EXPECT_EQ(u->port, 6380);
  EXPECT_EQ(u->user, "user");
  EXPECT_EQ(u->password, "pw");
  EXPECT_EQ(u->db, 2);
  EXPECT_EQ(u->endpoint(), "redis.internal:6380");
  auto d = RedisUrl::parse("redis://127.0.0.1");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->port, 6379);
  EXPECT_EQ(d->db, 0);
  EXPECT_TRUE(d->password.empty());
  auto p = RedisUrl::parse("redis://secret@h:1");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->password, "secret");
  EXPECT_TRUE(p->user.empty());
  auto v6 = RedisUrl::parse("redis://[::1]:7000");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->endpoint(), "[::1]:7000");
  EXPECT_FALSE(RedisUrl::parse("http://h:1"));
  EXPECT_FALSE(RedisUrl::parse("redis://:6379"));
  EXPECT_FALSE(RedisUrl::parse("redis://h:0"));
  EXPECT_FALSE(RedisUrl::parse("redis://h:99999"));
  EXPECT_FALSE(RedisUrl::parse("redis://h:1/x"));
  auto encoded = RedisUrl::parse("redis://us%3Aer:p%2Fs%40s@h:1");
  ASSERT_TRUE(encoded);
  EXPECT_EQ(encoded->user, "us:er");
  EXPECT_EQ(encoded->password, "p/s@s");
  auto raw_slash = RedisUrl::parse("redis://:p/ss@h:6379");
  ASSERT_FALSE(raw_slash);
  EXPECT_EQ(raw_slash.error().context,
            "redis URL: a \"/\" in the user name or password is written %2F; expected redis://[user:pass@]host:port[/db]");
  // rediss:// is TLS (tests/integration/upstream_tls_test.cc connects through it).
  auto tls = RedisUrl::parse("rediss://:pw@h:6379");
  ASSERT_TRUE(tls) << tls.error().context;
  EXPECT_TRUE(tls->tls);
  EXPECT_EQ(tls->password, "pw");
  EXPECT_FALSE(RedisUrl::parse("redis://:pw@h:6379")->tls);
}

// The password is percent-decoded before AUTH: a server whose password holds "/" accepts it.
TEST(RedisClient, PercentEncodedPasswordIsSentDecoded) {
  REQUIRE_REDIS_SERVER();
  RedisServer server(free_port(), {"--requirepass", "p/ss"});
  const std::string at = "@127.0.0.1:" + std::to_string(server.port());
  asio::io_context io;
  RedisClient good(*RedisUrl::parse("redis://:p%2Fss" + at), ClientOptions{});
  auto r = call(io, good, {"PING"});
  ASSERT_TRUE(r) << r.error().context;
  EXPECT_EQ(r->type, Reply::Type::Status);
  EXPECT_EQ(r->str, "PONG");
  RedisClient with_user(*RedisUrl::parse("redis://default:p%2fss" + at), ClientOptions{});
  r = call(io, with_user, {"PING"});
  ASSERT_TRUE(r) << r.error().context;
  EXPECT_EQ(r->str, "PONG");
  // The same bytes left encoded are the wrong password: AUTH fails, the call with it.
  RedisClient wrong(*RedisUrl::parse("redis://:p%252Fss" + at), ClientOptions{});
  r = call(io, wrong, {"PING"});
  EXPECT_FALSE(r);
}

TEST(RedisCommand, WritesResp) {
  EXPECT_EQ(Command({"GET", "k"}).resp(), "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
  Command c(4);
  EXPECT_FALSE(c.complete());
  c.arg("SET").arg_parts({"a:", "", "b\r\nc"}).arg(std::uint64_t{12345}).arg("");
  EXPECT_TRUE(c.complete());
  // Binary-safe: lengths, not delimiters, frame each argument.
  EXPECT_EQ(c.resp(), "*4\r\n$3\r\nSET\r\n$6\r\na:b\r\nc\r\n$5\r\n12345\r\n$0\r\n\r\n");
}

// The reader on its own: replies split anywhere, several in one read, errors that stick until
// reset(), and headers that announce more than they bring cost nothing until it comes.
TEST(ReplyReader, SplitsPipelinesAndFails) {
  ReplyReader reader;
  const std::string bytes = "*3\r\n:1\r\n$2\r\nab\r\n*1\r\n$-1\r\n+OK\r\n";
  for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
    reader.reset();
    reader.feed(bytes.data(), cut);
    std::vector<Reply> got;
    for (auto r = reader.next(); r && *r; r = reader.next()) got.push_back(std::move(**r));
    reader.feed(bytes.data() + cut, bytes.size() - cut);
    for (auto r = reader.next(); r && *r; r = reader.next()) got.push_back(std::move(**r));
    ASSERT_EQ(got.size(), 2u) << cut;
    ASSERT_EQ(got[0].elements.size(), 3u) << cut;
    EXPECT_EQ(got[0].elements[0].integer, 1);
    EXPECT_EQ(got[0].elements[1].str, "ab");
    ASSERT_EQ(got[0].elements[2].elements.size(), 1u);
    EXPECT_EQ(got[0].elements[2].elements[0].type, Reply::Type::Nil);
    EXPECT_EQ(got[1].type, Reply::Type::Status);
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
  RedisClient client(*RedisUrl::parse(server.url() + "/3"), ClientOptions{});
  asio::io_context io;
  std::vector<std::optional<Result<Reply>>> out(50);
  for (int i = 0; i < 50; ++i) {
    asio::co_spawn(io, client.command(io, {"INCR", "counter"}), [&out, i](std::exception_ptr e, Result<Reply> r) {
      if (e) std::rethrow_exception(e);
      out[i] = std::move(r);
    });
  }
  run_until(io, [&] { return out.back().has_value(); });
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(out[i] && *out[i]) << i;
    EXPECT_EQ((*out[i])->type, Reply::Type::Integer);
    EXPECT_EQ((*out[i])->integer, i + 1);  // replies matched to their calls in order
  }
}

// Every reply shape, read into Reply by hiredis' reader: nested arrays, nil, status, error,
// binary bulk strings; then the connection is still in step.
TEST(RedisClient, ReadsEveryReplyShape) {
  REQUIRE_REDIS_SERVER();
  RedisServer server;
  RedisClient client(*RedisUrl::parse(server.url()), ClientOptions{});
  asio::io_context io;
  auto run = [&](Command cmd) { return call(io, client, std::move(cmd)); };
  using T = Reply::Type;
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
    ClientOptions opts;
    opts.timeout = 2s;
    RedisClient client(*RedisUrl::parse(server.url()), opts);
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
  ClientOptions opts;
  opts.timeout = 10s;
  RedisClient client(*RedisUrl::parse("redis://127.0.0.1:" +
                                                    std::to_string(acceptor.local_endpoint().port())),
                            opts);
  int completed = 0;
  {
    asio::io_context io;
    for (int i = 0; i < 10; ++i)
      asio::co_spawn(io, client.command(io, {"PING"}), [&](std::exception_ptr, Result<Reply>) { ++completed; });
    io.run_for(100ms);
    EXPECT_EQ(completed, 0);
  }
  EXPECT_EQ(completed, 0);
}

}  // namespace
}  // namespace gh::clients::redis
