// Connection: one HTTP/1.1 connection to an instance, as the proxy uses it — open (pooled or
// new), send the head and body (one gather write for the head and what is at hand of the body),
// read the response head strictly, stream the body decoded, give the connection back to the
// worker's pool or close it, over a net::Stream (where TLS goes in). Implements clients::Outbound.
// Thread: owned by one worker; one request at a time. Reused across requests: its head buffer
// and field vectors keep their capacity; the read buffer is borrowed from the worker's
// BufferPool for the request only.
// Deadlines: none of its own (see Outbound); cancel() aborts the operation in progress.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <string>

#include "clients/http1/pool.h"
#include "clients/outbound.h"
#include "core/buffer_pool.h"
#include "core/clock.h"

namespace gh::clients::http1 {

class Connection final : public Outbound {
 public:
  Connection(const boost::asio::any_io_executor& ex, ConnectionPool& pool, BufferPool& buffers,
             const core::Clock& clock = core::Clock::real())
      : stream_(ex), pool_(pool), buffers_(buffers), clock_(clock) {}
  ~Connection() override;

  // The limits response heads are parsed with (the pinned snapshot's). REQUIRES: set before
  // read_head; the object must outlive the request.
  void set_parse_limits(const http::ParseLimits* limits) noexcept { limits_ = limits; }

  boost::asio::awaitable<Result<void>> open(const boost::asio::ip::tcp::endpoint& address, const std::string& pool_key,
                                            const TlsTarget* tls, bool http2, bool pooled, bool check_idle) override;
  bool open_pooled_now(const std::string& pool_key, bool http2, bool check_idle) noexcept override;
  bool reused() const noexcept override { return reused_; }
  void send_head(const http::OutgoingRequest& req) override;
  boost::asio::awaitable<Result<void>> send_body(std::string_view data, bool last) override;
  boost::asio::awaitable<Result<http::ResponseHead*>> read_head(bool head_request) override;
  bool body_now(http::BodyPart& out) noexcept override;
  boost::asio::awaitable<Result<http::BodyPart>> read_body() override;
  void finish(bool complete) override;
  void close() noexcept override;
  void cancel() noexcept override;
  std::string_view take_buffered() noexcept override;
  net::Stream* tunnel_stream() noexcept override { return &stream_; }

 private:
  void release_buffer() noexcept;
  Result<http::BodyPart> decode_buffered();
  void watch_if_reusable() noexcept;

  net::Stream stream_;
  ConnectionPool& pool_;
  BufferPool& buffers_;
  const core::Clock& clock_;
  const http::ParseLimits* limits_ = nullptr;
  const std::string* pool_key_ = nullptr;
  bool reused_ = false;

  // Request side.
  std::string head_out_;
  bool head_pending_ = false;
  bool sent_ = false;
  http::BodyKind request_body_ = http::BodyKind::None;

  // Response side.
  IoBuffer in_;
  std::size_t begin_ = 0, end_ = 0;
  http::ResponseHead resp_;
  http::ChunkedDecoder chunked_;
  std::uint64_t left_ = 0;  // Length bodies: bytes not yet handed out
  bool body_started_ = false;
  bool body_done_ = false;
  bool read_filled_ = false;  // the last body read filled the buffer: the service sends fast
};

}  // namespace gh::clients::http1
