// Http1Session: one HTTP/1.1 client connection, served by one coroutine on the worker that
// accepted it (STYLE §3): accept, idle and keep-alive, pipelining, reading heads in place, the
// request body's framing (Content-Length, chunked, 100-continue), the response's framing,
// deadlines and lingering, over a net::Stream (where TLS goes in). Each request's life is an
// Exchange; the session is its Downstream.
// Thread: worker thread only.
// Deadlines: each phase sets one deadline per connection; the worker's periodic sweep
// (kDeadlineTickMillis) cancels the sockets of a session whose deadline passed — the client's
// and the request's upstream connection — so no timer is armed per request or held per idle
// connection.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "core/metrics.h"

namespace gh::proxy {

class Worker;

// Starts serving `socket` on `worker`. The session owns itself until the connection ends.
// `open` (may be null): the gauge of open connections it counts in while it lives.
void start_session(Worker& worker, boost::asio::ip::tcp::socket socket, core::Gauge* open = nullptr);

}  // namespace gh::proxy
