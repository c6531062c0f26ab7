// Outbound: what one proxied request needs of a connection to an instance, whatever the
// protocol spoken to it — HTTP/1.1 (clients::http1::Connection), HTTP/2 (clients::http2::Call),
// either as the endpoint says (clients::Upstream) — and what
// a test or `gatehouse route` fakes. One object serves one request at a time and is reused.
// Thread: owned by one request on one worker.
// Deadlines: operations carry none of their own; the caller's per-connection deadline
// cancels them (cancel()), and the caller knows whether it fired.
// Failure: every operation returns an Error, never throws on I/O. `retryable` is set only when
// nothing of this request can have reached the instance.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <string>
#include <string_view>

#include "clients/tls_connect.h"
#include "core/result.h"
#include "http/body.h"
#include "http/head_writer.h"
#include "http/parser.h"
#include "net/stream.h"

namespace gh::clients {

class Outbound {
 public:
  virtual ~Outbound() = default;

  // A connection to `address` speaking HTTP/2 when `http2` (a stream on a shared connection),
  // else HTTP/1.1: the pool's most recent idle one under `pool_key` when `pooled` allows, else a
  // new one, over TLS to `tls` when given (the handshake is part of opening: the caller's
  // connect deadline covers it). `check_idle`: a pooled connection is first
  // checked to be open with nothing unread (for a request that may not be replayed).
  // Error: ConnectRefused, or ConnectFailed for a failed TLS handshake or verification
  // (both retryable: nothing was sent). Later steps of an HTTP/2 stream the instance refused
  // (REFUSED_STREAM, GOAWAY) fail with StreamRefused, retryable: it was not processed.
  virtual boost::asio::awaitable<Result<void>> open(const boost::asio::ip::tcp::endpoint& address,
                                                    const std::string& pool_key, const TlsTarget* tls, bool http2,
                                                    bool pooled, bool check_idle) = 0;
  // open() without waiting, when the pool has a usable connection to `pool_key`: true and the
  // connection is open (reused() is true); false: call open().
  virtual bool open_pooled_now(const std::string& /*pool_key*/, bool /*http2*/, bool /*check_idle*/) noexcept {
    return false;
  }
  // Whether the open connection came from the pool.
  virtual bool reused() const noexcept = 0;

  // Queues the request head; it goes out with the first body part, in one write.
  virtual void send_head(const http::OutgoingRequest& req) = 0;
  // Sends a piece of the request body (framed for the wire), the queued head first.
  // Error: UpstreamClosed, retryable when no byte of this request was written.
  virtual boost::asio::awaitable<Result<void>> send_body(std::string_view data, bool last) = 0;

  // Reads the response head, skipping interim 1xx answers other than 101. `head_request`: the
  // request was HEAD (no body follows). Error: UpstreamClosed (retryable when the connection
  // was pooled and not a byte of response came), BadResponse.
  virtual boost::asio::awaitable<Result<http::ResponseHead*>> read_head(bool head_request) = 0;
  // The next piece of the response body when it is at hand without waiting (no body, or the
  // part of a Content-Length body that came with the head); false: call read_body.
  virtual bool body_now(http::BodyPart& /*out*/) noexcept { return false; }
  // The next decoded piece of the response body. Error: UpstreamClosed (truncated),
  // BadResponse (bad chunked framing).
  virtual boost::asio::awaitable<Result<http::BodyPart>> read_body() = 0;
  // After the last piece of the body: the response's trailer fields, when it had any (HTTP/2);
  // valid until the next request.
  virtual const http::Fields* trailers() const noexcept { return nullptr; }

  // Ends the request: a connection whose response was read whole, with nothing stray after
  // it, and that the instance keeps alive goes back to the pool; any other closes.
  virtual void finish(bool complete) = 0;
  // Closes the connection (if any).
  virtual void close() noexcept = 0;
  // Cancels the operation in progress (the caller's deadline fired).
  virtual void cancel() noexcept = 0;

  // After a 101: the bytes already read past the response head, then the stream itself, for
  // a tunnel. REQUIRES: read_head returned status 101.
  virtual std::string_view take_buffered() noexcept = 0;
  virtual net::Stream* tunnel_stream() noexcept = 0;
};

}  // namespace gh::clients
