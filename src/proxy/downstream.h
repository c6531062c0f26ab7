// Downstream: what the exchange needs of the client side of one request — the HTTP/1.1
// connection today (Http1Session), an HTTP/2 stream later, a fake in tests and `gatehouse route`.
// A Downstream frames bytes for its protocol and keeps its connection's deadlines; it never sees
// a route or a policy. The exchange never sees a byte of a protocol.
// Thread: owned by one connection's coroutine on one worker.
// Failure: body and write errors are values (Error), never exceptions.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <string_view>

#include "clients/outbound.h"
#include "core/result.h"
#include "http/body.h"
#include "http/parser.h"

namespace gh::proxy {

class Downstream {
 public:
  virtual ~Downstream() = default;

  // The parsed request head; its views stay valid until the exchange ends. The exchange may
  // drop fields from it before routing (limits.underscores_in_headers).
  virtual http::RequestHead& head() noexcept = 0;
  // The address of the peer, as text ("203.0.113.7"); X-Forwarded-For is the exchange's.
  virtual std::string_view peer_ip() const noexcept = 0;
  // "http" or "https": what X-Forwarded-Proto says.
  virtual std::string_view scheme() const noexcept = 0;

  // The next decoded piece of the request body; the first call returns what arrived with the
  // head without waiting. Error: Timeout (body_timeout, or slower than min_body_rate),
  // BadRequest (malformed chunked framing), PayloadTooLarge, ClientGone.
  virtual boost::asio::awaitable<Result<http::BodyPart>> read_body() = 0;
  // The next piece when it is at hand without waiting (a request without a body, or the
  // part of a Content-Length body that came with the head), so the exchange spends no
  // coroutine on it; false: call read_body.
  virtual bool body_now(http::BodyPart& /*out*/) noexcept { return false; }
  // Whether the whole body is still held, so that it can be sent again from its start.
  virtual bool body_replayable() const noexcept = 0;
  // Back to the start of the body. REQUIRES: body_replayable().
  virtual void rewind_body() noexcept = 0;

  // Queues the response head; it goes out with the first send_body, in one write. The head's
  // `body` and `content_length` say how the body comes (None, Length, or streamed: Chunked /
  // UntilClose); a 101 turns the connection into a tunnel. `close`: the connection may not
  // carry another request after this response.
  virtual void send_head(const http::ResponseHead& head, bool close) = 0;
  // Sends a piece of the response body (the queued head first). For a HEAD request no body
  // byte is sent. Error: ClientGone.
  virtual boost::asio::awaitable<Result<void>> send_body(std::string_view data, bool last) = 0;
  // Whether a byte of the response may have been sent (after that, no other answer can be).
  virtual bool response_started() const noexcept = 0;
  // The response cannot be completed (the instance broke off): the connection is closed once
  // the exchange ends, so the client sees the message end early rather than a wrong one.
  virtual void abort() noexcept = 0;

  // After a 101 was sent: relays bytes both ways between the client and `up`'s socket until
  // both have finished, or `idle` passes with no byte either way. Counts into bytes_in/out.
  virtual boost::asio::awaitable<void> tunnel(clients::Outbound& up, std::chrono::milliseconds idle,
                                             std::uint64_t& bytes_in, std::uint64_t& bytes_out) = 0;

  // The current phase's deadline, which covers the client and the request's outbound
  // connection: when it passes, their operations are cancelled and timed_out() is true.
  virtual void arm_after(std::chrono::milliseconds d) noexcept = 0;
  virtual bool timed_out() const noexcept = 0;
  // Whether the gateway is draining (the connection closes after this response).
  virtual bool draining() const noexcept = 0;
  // Whether the client cancelled the request (an HTTP/2 RST_STREAM, or its connection gone):
  // a failure of the upstream work that follows is the cancellation's, never the instance's.
  virtual bool cancelled() const noexcept { return false; }

  // Whether the request body can be read while the response is being sent (HTTP/2 streams):
  // a gRPC call then streams both ways at once.
  virtual bool full_duplex() const noexcept { return false; }
  // A read_body in progress, and any later one, ends (ClientGone): the exchange is over.
  virtual void stop_body() noexcept {}
  // Trailer fields to send after the body's last piece (HTTP/2: a HEADERS frame ending the
  // stream); the views must stay valid until the last send_body returns. HTTP/1.1 drops them.
  virtual void set_trailers(const http::Fields& /*trailers*/) {}
};

}  // namespace gh::proxy
