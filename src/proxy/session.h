// Session: one client connection, served by one coroutine on the worker that accepted it
// (STYLE §3). Reads request heads in place, runs the route's policy chain, forwards to an
// upstream endpoint (pooled connection, retries), streams bodies both ways and writes the
// access log. Thread: worker thread only.
// Deadlines: one steady_timer per connection, watched by a second small coroutine that
// cancels the sockets when the current phase's deadline passes; moving a deadline later
// costs nothing, so the hot path does not re-arm the timer per phase.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <chrono>

namespace gh::proxy {

class Worker;

// Starts serving `socket` on `worker`. The session owns itself until the connection ends.
void start_session(Worker& worker, boost::asio::ip::tcp::socket socket);

// Worker-driven shutdown helpers (worker thread only).
class Session;
void session_close_if_idle(Session& s);
void session_close_now(Session& s);

}  // namespace gh::proxy
