// net::Stream over a real loopback TCP connection: the plain path of every operation.
#include "net/stream.h"

#include "net/receive_count_test.h"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <optional>
#include <string>
#include <tuple>

namespace gh::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

// A connected pair on 127.0.0.1: `stream` under test, `peer` a plain blocking socket.
struct Pair {
  asio::io_context io{1};
  Stream stream{io.get_executor()};
  tcp::socket peer{io};

  Pair() {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    stream.socket().connect(acceptor.local_endpoint());
    acceptor.accept(peer);
  }

  // Runs `op` to completion on the io_context and returns its result.
  template <class T>
  T run(asio::awaitable<T> op) {
    std::optional<T> out;
    asio::co_spawn(io, std::move(op), [&](std::exception_ptr e, T v) {
      if (e) std::rethrow_exception(e);
      out = std::move(v);
    });
    io.restart();
    io.run();
    return std::move(*out);
  }

  std::string peer_read(std::size_t n) {
    std::string s(n, '\0');
    asio::read(peer, asio::buffer(s));
    return s;
  }
};

TEST(Stream, IsPlainAndOpen) {
  Pair p;
  EXPECT_TRUE(p.stream.is_open());
  EXPECT_FALSE(p.stream.is_tls());
}

TEST(Stream, GatherWriteSendsEveryBufferInOrder) {
  Pair p;
  const std::string head = "HEAD ", body = "and body";
  auto [ec, n] = p.run([&]() -> asio::awaitable<std::tuple<error_code, std::size_t>> {
    std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
    co_return co_await asio::async_write(p.stream, bufs, use_nothrow);
  }());
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(n, head.size() + body.size());
  EXPECT_EQ(p.peer_read(n), "HEAD and body");
}

TEST(Stream, ReadSomeReturnsWhatThePeerSentThenEof) {
  Pair p;
  asio::write(p.peer, asio::buffer(std::string("hello")));
  p.peer.shutdown(tcp::socket::shutdown_send);
  auto got = p.run([&]() -> asio::awaitable<std::string> {
    std::string all;
    std::array<char, 3> chunk;  // smaller than the message: several reads
    for (;;) {
      auto [ec, n] = co_await p.stream.async_read_some(asio::buffer(chunk), use_nothrow);
      if (ec == asio::error::eof) co_return all;
      if (ec) co_return "error: " + ec.message();
      all.append(chunk.data(), n);
    }
  }());
  EXPECT_EQ(got, "hello");
}

TEST(Stream, WaitReadCompletesOnlyOnceBytesArriveAndConsumesNothing) {
  Pair p;
  bool done = false;
  error_code wait_ec;
  asio::co_spawn(p.io, [&]() -> asio::awaitable<void> {
    auto [ec] = co_await p.stream.async_wait(tcp::socket::wait_read, use_nothrow);
    wait_ec = ec;
    done = true;
  }, asio::detached);
  p.io.poll();
  EXPECT_FALSE(done) << "readable with nothing sent";
  asio::write(p.peer, asio::buffer(std::string("x")));
  p.io.run();
  EXPECT_TRUE(done);
  EXPECT_FALSE(wait_ec) << wait_ec.message();
  // The byte is still there to read.
  auto got = p.run([&]() -> asio::awaitable<std::string> {
    char c = 0;
    auto [ec, n] = co_await p.stream.async_read_some(asio::buffer(&c, 1), use_nothrow);
    co_return ec ? ec.message() : std::string(n, c);
  }());
  EXPECT_EQ(got, "x");
}

TEST(Stream, ShutdownEndsSendingButNotReceiving) {
  Pair p;
  auto ec = p.run([&]() -> asio::awaitable<error_code> {
    auto [e] = co_await p.stream.async_shutdown(use_nothrow);
    co_return e;
  }());
  EXPECT_FALSE(ec) << ec.message();
  char c;
  error_code peer_ec;
  p.peer.read_some(asio::buffer(&c, 1), peer_ec);
  EXPECT_EQ(peer_ec, asio::error::eof);
  asio::write(p.peer, asio::buffer(std::string("late")));
  auto got = p.run([&]() -> asio::awaitable<std::string> {
    std::string s(4, '\0');
    auto [e, n] = co_await asio::async_read(p.stream, asio::buffer(s), use_nothrow);
    co_return e ? e.message() : s;
  }());
  EXPECT_EQ(got, "late");
}

TEST(Stream, StillIdleSeesUnsolicitedBytesAndEof) {
  {
    Pair p;
    EXPECT_TRUE(p.stream.still_idle());
    asio::write(p.peer, asio::buffer(std::string("HTTP/1.1 408 Request Timeout\r\n\r\n")));
    EXPECT_FALSE(p.stream.still_idle());
  }
  {
    Pair p;
    p.peer.close();
    // The FIN is on loopback already once close() returns; the peek sees EOF.
    EXPECT_FALSE(p.stream.still_idle());
  }
  {
    Pair p;
    p.stream.close();
    EXPECT_FALSE(p.stream.still_idle());
  }
}

TEST(Stream, CloseAbortsAPendingReadAndIsIdempotent) {
  Pair p;
  error_code read_ec;
  bool done = false;
  asio::co_spawn(p.io, [&]() -> asio::awaitable<void> {
    char c;
    auto [ec, n] = co_await p.stream.async_read_some(asio::buffer(&c, 1), use_nothrow);
    read_ec = ec;
    done = true;
  }, asio::detached);
  p.io.poll();
  ASSERT_FALSE(done);
  p.stream.close();
  p.stream.close();
  p.io.run();
  EXPECT_TRUE(done);
  EXPECT_EQ(read_ec, asio::error::operation_aborted);
  EXPECT_FALSE(p.stream.is_open());
  char c;
  error_code peer_ec;
  p.peer.read_some(asio::buffer(&c, 1), peer_ec);
  EXPECT_EQ(peer_ec, asio::error::eof);
}

TEST(Stream, MovedStreamKeepsTheConnection) {
  Pair p;
  Stream moved(std::move(p.stream));
  EXPECT_TRUE(moved.is_open());
  EXPECT_FALSE(moved.is_tls());
  auto [ec, n] = p.run([&]() -> asio::awaitable<std::tuple<error_code, std::size_t>> {
    co_return co_await asio::async_write(moved, asio::buffer(std::string_view("moved")), use_nothrow);
  }());
  EXPECT_FALSE(ec);
  EXPECT_EQ(p.peer_read(n), "moved");
}


// expect_answer and the idle watch change what the event loop does on epoll; on the io_uring
// backend they do nothing (expect_answer) or always report a possible disturbance.
#if defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
constexpr bool kEpoll = true;
#else
constexpr bool kEpoll = false;
#endif

// Runs the loop for a moment with nothing reading, so it notices what has arrived.
void settle(Pair& p) {
  asio::steady_timer t(p.io, std::chrono::milliseconds(20));
  t.async_wait([](error_code) {});
  p.io.restart();
  p.io.run();
}

// A read of up to 64 bytes whose outcome the test looks at.
struct PendingRead {
  std::array<char, 64> buf{};
  bool done = false;
  error_code ec;
  std::string got;

  void start(Stream& s) {
    s.async_read_some(asio::buffer(buf), [this](error_code e, std::size_t n) { finish(e, n); });
  }
  void start_head(Stream& s) {
    s.async_read_head(asio::buffer(buf), [this](error_code e, std::size_t n) { finish(e, n); });
  }
  void finish(error_code e, std::size_t n) {
    ec = e;
    got.assign(buf.data(), n);
    done = true;
  }
  // Runs the loop until the read completes or `limit` passes.
  bool wait(asio::io_context& io, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    io.restart();
    while (!done && std::chrono::steady_clock::now() < until) io.run_one_for(std::chrono::milliseconds(5));
    return done;
  }
};

TEST(Stream, AReadTriesTheSocketAtOnceButAfterExpectAnswerWaitsForTheNextReadiness) {
  // Bytes that arrived while nothing read, already noticed by the loop: a read finds them.
  Pair plain;
  asio::write(plain.peer, asio::buffer(std::string("stray")));
  settle(plain);
  PendingRead first;
  first.start(plain.stream);
  EXPECT_TRUE(first.wait(plain.io, std::chrono::milliseconds(2000)));
  EXPECT_EQ(first.got, "stray");

  // After expect_answer the read does not try the socket: it waits for what comes next, then
  // reads everything there is.
  Pair p;
  EventLoop loop(p.io);
  asio::write(p.peer, asio::buffer(std::string("stray")));
  settle(p);
  p.stream.expect_answer(loop);
  PendingRead read;
  read.start(p.stream);
  const bool early = read.wait(p.io, std::chrono::milliseconds(100));
  EXPECT_EQ(early, !kEpoll);
  asio::write(p.peer, asio::buffer(std::string("answer")));
  ASSERT_TRUE(read.wait(p.io, std::chrono::milliseconds(2000)));
  EXPECT_FALSE(read.ec) << read.ec.message();
  if (kEpoll) {
    EXPECT_EQ(read.got, "strayanswer");
  }
}

TEST(Stream, AnAnswerThatArrivesBeforeTheReadStartsIsReadAtOnce) {
  Pair p;
  EventLoop loop(p.io);
  p.stream.expect_answer(loop);
  asio::write(p.stream.socket(), asio::buffer(std::string("ask")));
  EXPECT_EQ(p.peer_read(3), "ask");
  asio::write(p.peer, asio::buffer(std::string("answer")));
  settle(p);  // the loop notices the answer before anything reads it
  PendingRead read;
  read.start(p.stream);
  ASSERT_TRUE(read.wait(p.io, std::chrono::milliseconds(2000)));
  EXPECT_EQ(read.got, "answer");
}

TEST(Stream, ExpectAnswerOnAConnectionThePeerClosedWhileIdleStillEndsTheRead) {
  // The peer's close was noticed while nothing read; the request then provokes a reset.
  Pair p;
  EventLoop loop(p.io);
  p.peer.close();
  settle(p);
  p.stream.expect_answer(loop);
  error_code wec;
  asio::write(p.stream.socket(), asio::buffer(std::string("GET / HTTP/1.1\r\n\r\n")), wec);
  PendingRead read;
  read.start(p.stream);
  ASSERT_TRUE(read.wait(p.io, std::chrono::milliseconds(3000))) << "the read hangs";
  EXPECT_TRUE(read.ec == asio::error::eof || read.ec == asio::error::connection_reset) << read.ec.message();
}

// async_read_head: a read that ends a request head leaves the socket known drained, so the
// next read costs no receive until bytes come; any other read leaves the next to try at once.
// (The counts are what the epoll reactor promises; io_uring receives its own way.)
TEST(Stream, AfterAWholeHeadTheNextReadWaitsForBytesWithoutAnEmptyReceive) {
  Pair p;
  ReceiveCount count(static_cast<int>(p.stream.socket().native_handle()));
  asio::write(p.peer, asio::buffer(std::string("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")));
  settle(p);
  PendingRead head;
  head.start_head(p.stream);
  ASSERT_TRUE(head.wait(p.io, std::chrono::milliseconds(2000)));
  EXPECT_EQ(head.got, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n");

  count.reset();
  PendingRead next;
  next.start_head(p.stream);
  EXPECT_FALSE(next.wait(p.io, std::chrono::milliseconds(100))) << "nothing was sent";
  EXPECT_EQ(count.all(), 0) << "a receive was tried on a socket known drained";
  asio::write(p.peer, asio::buffer(std::string("GET /2 HTTP/1.1\r\n\r\n")));
  ASSERT_TRUE(next.wait(p.io, std::chrono::milliseconds(2000)));
  EXPECT_EQ(next.got, "GET /2 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(count.all(), kEpoll ? 1 : 0) << "one receive, the one that found the bytes";
  EXPECT_EQ(count.empty(), 0);

  // Bytes that stop inside a head say nothing of what may follow: the next read tries at once.
  asio::write(p.peer, asio::buffer(std::string("GET /3 HT")));
  PendingRead part;
  part.start_head(p.stream);
  ASSERT_TRUE(part.wait(p.io, std::chrono::milliseconds(2000)));
  EXPECT_EQ(part.got, "GET /3 HT");
  count.reset();
  PendingRead rest;
  rest.start_head(p.stream);
  EXPECT_FALSE(rest.wait(p.io, std::chrono::milliseconds(100)));
  EXPECT_EQ(count.empty(), kEpoll ? 1 : 0) << "the read after a part of a head tries the socket first";
  asio::write(p.peer, asio::buffer(std::string("TP/1.1\r\n\r\n")));
  ASSERT_TRUE(rest.wait(p.io, std::chrono::milliseconds(2000)));
  EXPECT_EQ(rest.got, "TP/1.1\r\n\r\n");
}

TEST(Stream, BytesThatCameRightAfterAHeadAreReadAtOnce) {
  // Sent after the head's receive: an event for them is pending, so the read does not wait.
  Pair p;
  asio::write(p.peer, asio::buffer(std::string("GET / HTTP/1.1\r\n\r\n")));
  settle(p);
  PendingRead head;
  head.start_head(p.stream);
  ASSERT_TRUE(head.wait(p.io, std::chrono::milliseconds(2000)));
  asio::write(p.peer, asio::buffer(std::string("POST")));
  settle(p);  // the loop handles their event while nothing reads
  PendingRead next;
  next.start_head(p.stream);
  ASSERT_TRUE(next.wait(p.io, std::chrono::milliseconds(2000))) << "bytes already here were left waiting";
  EXPECT_EQ(next.got, "POST");
}

TEST(Stream, APartOfAHeadThenTheEndIsEofAtOnce) {
  Pair p;
  asio::write(p.peer, asio::buffer(std::string("GET / HTTP/1.1\r\nHo")));
  p.peer.shutdown(tcp::socket::shutdown_send);
  settle(p);
  PendingRead head;
  head.start_head(p.stream);
  ASSERT_TRUE(head.wait(p.io, std::chrono::milliseconds(2000)));
  EXPECT_EQ(head.got, "GET / HTTP/1.1\r\nHo");
  PendingRead next;
  next.start_head(p.stream);
  ASSERT_TRUE(next.wait(p.io, std::chrono::milliseconds(2000))) << "the peer's end was missed";
  EXPECT_EQ(next.ec, asio::error::eof);
}

TEST(Stream, AWholeHeadThenTheEndIsSeenByTheNextReadinessWait) {
  // Read together with the head, the end is not seen by a read (it waits for bytes), but a
  // wait for readiness re-arms the descriptor and sees it: what Http1Session does when its
  // linger ends.
  Pair p;
  asio::write(p.peer, asio::buffer(std::string("GET / HTTP/1.1\r\n\r\n")));
  p.peer.shutdown(tcp::socket::shutdown_send);
  settle(p);
  PendingRead head;
  head.start_head(p.stream);
  ASSERT_TRUE(head.wait(p.io, std::chrono::milliseconds(2000)));
  bool readable = false;
  p.stream.async_wait(tcp::socket::wait_read, [&](error_code ec) { readable = !ec; });
  p.io.restart();
  p.io.run_for(std::chrono::seconds(2));
  ASSERT_TRUE(readable);
  PendingRead next;
  next.start_head(p.stream);
  ASSERT_TRUE(next.wait(p.io, std::chrono::milliseconds(2000)));
  EXPECT_EQ(next.ec, asio::error::eof);
}

TEST(Stream, TheIdleWatchTellsWhetherThePeerSentOrClosed) {
  Pair p;
  EventLoop loop(p.io);
  p.stream.start_idle_watch(loop);
  settle(p);
  EXPECT_EQ(p.stream.end_idle_watch(loop), !kEpoll) << "nothing came";

  p.stream.start_idle_watch(loop);
  asio::write(p.peer, asio::buffer(std::string("late")));
  settle(p);
  EXPECT_TRUE(p.stream.end_idle_watch(loop));
  PendingRead read;  // what came is still there to read
  read.start(p.stream);
  ASSERT_TRUE(read.wait(p.io, std::chrono::milliseconds(2000)));
  EXPECT_EQ(read.got, "late");

  p.stream.start_idle_watch(loop);
  p.peer.shutdown(tcp::socket::shutdown_send);
  settle(p);
  EXPECT_TRUE(p.stream.end_idle_watch(loop)) << "the peer's end came";
}

TEST(Stream, AnIdleWatchKeepsNoLoopRunningAndFollowsMovesAndClose) {
  Pair p;
  EventLoop loop(p.io);
  p.stream.start_idle_watch(loop);
  p.io.restart();
  const auto t0 = std::chrono::steady_clock::now();
  p.io.run();  // nothing but the watch: returns at once
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));

  Stream moved(std::move(p.stream));
  EXPECT_TRUE(p.stream.end_idle_watch(loop)) << "a moved-from stream has no watch";
  asio::write(p.peer, asio::buffer(std::string("x")));
  settle(p);
  EXPECT_TRUE(moved.end_idle_watch(loop)) << "the watch moved with the connection";

  moved.start_idle_watch(loop);
  moved.close();  // completes and frees the watch
  p.io.restart();
  p.io.run();
  EXPECT_FALSE(moved.is_open());

  // A stream that goes away watched, and a loop that ends with a watch on: nothing leaks
  // (the sanitizer build checks).
  Pair q;
  EventLoop qloop(q.io);
  {
    Stream gone(std::move(q.stream));
    gone.start_idle_watch(qloop);
  }
  Pair r;
  r.stream.start_idle_watch(EventLoop(r.io));
}

}  // namespace
}  // namespace gh::net
