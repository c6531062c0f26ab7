// RedisClient: an asynchronous Redis client on the calling worker's own event loop (generic:
// it knows nothing of rate limits; rate_limit's RedisStore is its user today). hiredis
// parses the replies (ReplyReader); commands are written in RESP by Command; the networking
// is Boost.Asio.
//
// One connection per (client, io_context): it lives in a service of that io_context, so it is
// touched only by the thread running that loop and is closed when the loop is torn down. It is
// connected lazily by the first call, then sends AUTH / SELECT / SCRIPT LOAD before anything
// else. Calls are pipelined: each appends its command to the write buffer and waits for its
// reply in a FIFO. The buffer is written once per turn of the loop, so the calls a turn makes
// (one per request that reached the rate limit, say) go out in one system call.
// Deadlines cost nothing per call: replies come in order, so the oldest call has the nearest
// deadline and one timer per connection, armed for it, watches them all.
//
// Thread: the RedisClient object is immutable after construction and may be shared by every
// worker; `command` REQUIRES: called on the thread running `io`.
// Failure: every call is bounded by `timeout` and never throws for an outage. On a timeout,
// a disconnect or a protocol error the connection fails every pending call with
// StoreUnavailable, closes, and is reconnected by a later call once the backoff (from
// `backoff_min`, doubling up to `backoff_max`) has passed; calls during the backoff fail at
// once. A connection outlives a discarded client until its loop ends (one idle socket).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "clients/redis/resp_reader.h"
#include "core/result.h"

namespace gh::clients::redis {

// `redis://[user:pass@]host:port[/db]`, or `rediss://` for TLS; the port defaults to 6379 and
// the db to 0. Parsed by core's parse_redis_url: reserved characters in the user or password
// are written %XX. rediss:// verifies the server against the system's CAs and its host name
// (clients/tls_connect.h); a private CA is given the OpenSSL way, with SSL_CERT_FILE or
// SSL_CERT_DIR in the gateway's environment. The TLS handshake is part of connecting: it
// counts against `timeout`, and a failed one is an outage like a refused connect.
struct RedisUrl {
  std::string host;
  std::uint16_t port = 6379;
  std::string user;      // empty: AUTH with the password only (when there is one)
  std::string password;  // empty: no AUTH
  int db = 0;
  bool tls = false;      // rediss://: TLS verified against the system's CAs

  static Result<RedisUrl> parse(std::string_view text);
  // host:port, for logs (never the password).
  std::string endpoint() const;
};

struct ClientOptions {
  std::chrono::milliseconds timeout{100};       // per call, connecting included
  std::chrono::milliseconds backoff_min{100};   // the first wait after a failure
  std::chrono::milliseconds backoff_max{2000};  // the longest
  std::vector<std::string> scripts;             // SCRIPT LOADed on every connect
};

// One command in RESP, built in place with one allocation:
//   Command c(2); c.arg("GET").arg_parts({"prefix:", key});
// REQUIRES: exactly `argc` arguments are added before the command is sent.
class Command {
 public:
  explicit Command(std::size_t argc, std::size_t reserve = 128);
  Command(std::initializer_list<std::string_view> args);
  Command& arg(std::string_view a);
  // One argument made of several pieces, without joining them first.
  Command& arg_parts(std::initializer_list<std::string_view> parts);
  Command& arg(std::uint64_t n);

  const std::string& resp() const noexcept { return buf_; }
  bool complete() const noexcept { return left_ == 0; }

 private:
  void length(std::size_t n);
  std::string buf_;
  std::size_t left_;
};

class RedisClient {
 public:
  RedisClient(RedisUrl url, ClientOptions opts);

  // Sends one command on this loop's connection and returns its reply; a Redis error reply is
  // a Reply of Type::Error, not an Error. Error (StoreUnavailable, or Timeout past the
  // deadline) on timeout, disconnect or while backing off. Sent when awaited.
  // REQUIRES: called, and awaited, on the thread running `io`; cmd.complete().
  boost::asio::awaitable<Result<Reply>> command(boost::asio::io_context& io, Command cmd) const;

  const RedisUrl& url() const noexcept;
  const ClientOptions& options() const noexcept;

  struct Shared;

 private:
  std::uint64_t id_;  // names this client's connection in each loop's service
  std::shared_ptr<const Shared> shared_;
};

}  // namespace gh::clients::redis
