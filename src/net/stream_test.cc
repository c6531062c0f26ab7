// net::Stream over a real loopback TCP connection: the plain path of every operation.
#include "net/stream.h"

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
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

}  // namespace
}  // namespace gh::net
