// HTTP/2 to instances (SPEC §7, `protocol: h2` over TLS with ALPN, `h2c` and `h2c://` in
// cleartext): a worker's connections to an instance are shared by its requests, each request a
// stream, up to the instance's SETTINGS_MAX_CONCURRENT_STREAMS per connection. nghttp2 does the
// framing, HPACK and flow control, driven on the worker's loop like the client side
// (proxy/http2_session): a reader feeding nghttp2_session_mem_recv, a writer draining
// nghttp2_session_mem_send.
//   Pool: a worker's HTTP/2 connections, by pool key. A connection with room for another stream
//     is shared; a new one is opened when none has room. Swept every second: a connection with
//     no stream for kIdleMillis closes; one silent for kPingMillis is sent a PING, and closes
//     when the PING is not answered within kPingTimeoutMillis (its streams fail).
//   Call: one request on one stream, a clients::Outbound. Flow control: automatic window
//     updates are off; a piece of response body is given back to the instance's window when
//     the exchange asks for the next one, i.e. once it went to the client. A stream the instance
//     refuses (REFUSED_STREAM, or beyond the last stream of its GOAWAY) fails with
//     ErrorCode::StreamRefused: it was not processed, and may be sent again whatever its method.
// Thread: worker thread only.
// Deadlines: a Call has none of its own (see Outbound); cancel() stops its waits. Opening a new
// connection is bounded by kConnectMillis whoever waits for it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "clients/outbound.h"
#include "core/clock.h"

namespace gh::clients::http2 {

class Connection;

constexpr std::int64_t kIdleMillis = 60'000;
constexpr std::int64_t kPingMillis = 30'000;
constexpr std::int64_t kPingTimeoutMillis = 10'000;
constexpr std::int64_t kConnectMillis = 10'000;

class Pool {
 public:
  explicit Pool(const core::Clock& clock = core::Clock::real()) : clock_(clock) {}
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // A connection to `key` with room for one more stream (also one still connecting), or null.
  std::shared_ptr<Connection> take(const std::string& key);
  // A new connection to `address` under `key`, connecting now (the pool keeps it).
  std::shared_ptr<Connection> open(const boost::asio::any_io_executor& ex, const std::string& key,
                                   const boost::asio::ip::tcp::endpoint& address, const TlsTarget* tls);
  // Idle connections close, silent ones are pinged (see above); the worker calls it each second.
  void sweep();
  // Closes every connection (the worker stops).
  void clear();
  std::size_t connection_count() const;

  const core::Clock& clock() const noexcept { return clock_; }

 private:
  const core::Clock& clock_;
  std::unordered_map<std::string, std::vector<std::shared_ptr<Connection>>> conns_;
};

class Call final : public Outbound {
 public:
  Call(const boost::asio::any_io_executor& ex, Pool& pool);
  ~Call() override;
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  boost::asio::awaitable<Result<void>> open(const boost::asio::ip::tcp::endpoint& address, const std::string& pool_key,
                                            const TlsTarget* tls, bool http2, bool pooled, bool check_idle) override;
  bool open_pooled_now(const std::string& pool_key, bool http2, bool check_idle) noexcept override;
  bool reused() const noexcept override { return reused_; }
  void send_head(const http::OutgoingRequest& req) override;
  boost::asio::awaitable<Result<void>> send_body(std::string_view data, bool last) override;
  boost::asio::awaitable<Result<http::ResponseHead*>> read_head(bool head_request) override;
  boost::asio::awaitable<Result<http::BodyPart>> read_body() override;
  const http::Fields* trailers() const noexcept override { return trailers_.empty() ? nullptr : &trailers_; }
  void finish(bool complete) override;
  void close() noexcept override;
  void cancel() noexcept override;
  std::string_view take_buffered() noexcept override { return {}; }
  net::Stream* tunnel_stream() noexcept override { return nullptr; }

  // For the connection's callbacks (client.cc).
  struct Span {
    std::uint32_t name_off, name_len, value_off, value_len;
  };
  void on_header(std::string_view name, std::string_view value);
  void on_headers_end(bool end_stream);
  void on_data(const std::uint8_t* data, std::size_t len);
  void on_end_stream();
  void on_close(std::uint32_t error_code);
  void on_connection_lost(const char* why);
  // What the request body's data source reads (client.cc).
  std::string_view pending_;
  bool pending_last_ = false;
  bool eof_sent_ = false;
  void wake_send() noexcept { send_wake_.cancel(); }

 private:
  void detach() noexcept;
  void reset_state() noexcept;
  boost::asio::awaitable<void> wait(boost::asio::steady_timer& t);
  Result<void> submit();
  Error failure(const char* where) const;

  Pool& pool_;
  std::shared_ptr<Connection> conn_;
  std::int32_t id_ = -1;
  bool reused_ = false;
  bool cancelled_ = false;
  const char* lost_ = nullptr;  // the connection ended under the stream: why

  // Request.
  std::string req_store_;
  std::vector<Span> req_spans_;
  bool has_body_ = false, submitted_ = false;

  // Response.
  std::string resp_store_, trailer_store_;
  std::vector<Span> resp_spans_, trailer_spans_;
  std::size_t resp_bytes_ = 0;
  bool head_done_ = false, head_ready_ = false, end_stream_ = false, closed_ = false, too_large_ = false;
  bool head_request_ = false;
  std::uint32_t error_code_ = 0;
  http::ResponseHead resp_;
  http::Fields trailers_;
  std::string in_, out_;
  std::size_t handed_ = 0;

  boost::asio::steady_timer send_wake_, recv_wake_;
};

}  // namespace gh::clients::http2
