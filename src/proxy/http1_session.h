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

#include <memory>

#include "core/metrics.h"
#include "net/tls.h"

namespace gh::proxy {

class Worker;

// How an accepted connection is to be served.
struct SessionStart {
  std::size_t listener = 0;    // index in the config's listeners
  core::Gauge* open = nullptr;  // connections_open{listener} it counts in while it lives, or null
  std::shared_ptr<const net::TlsServerContext> tls;  // a TLS listener's certificates; null: plain
};

// Starts serving `socket` on `worker`. The session owns itself until the connection ends.
void start_session(Worker& worker, boost::asio::ip::tcp::socket socket, SessionStart start = {});

}  // namespace gh::proxy
