// Session: one client connection, served by one coroutine on the worker that accepted it
// (STYLE §3). Reads request heads in place, runs the route's policy chain, forwards to an
// upstream endpoint (pooled connection, retries), streams bodies both ways and writes the
// access log. Thread: worker thread only.
// Deadlines: each phase sets deadline_; the worker's periodic sweep (kDeadlineTickMillis)
// cancels the sockets of a session whose deadline passed, so no timer is armed per request
// or held per idle connection.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <chrono>

namespace gh::proxy {

class Worker;

// Starts serving `socket` on `worker`. The session owns itself until the connection ends.
void start_session(Worker& worker, boost::asio::ip::tcp::socket socket);


}  // namespace gh::proxy
