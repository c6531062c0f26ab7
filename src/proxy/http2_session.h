// Http2Session: one HTTP/2 client connection (RFC 9113), after ALPN "h2" on a TLS listener or
// the connection preface on an `h2c: true` listener (SPEC §7). nghttp2 does the framing, HPACK
// and flow control, driven on the worker's loop: a reader feeds nghttp2_session_mem_recv, a
// writer drains nghttp2_session_mem_send into a bounded buffer (a writer that cannot write
// stops the reader: a client that does not read cannot make the gateway buffer). Each request
// stream is a Downstream with its own Exchange, exactly as an HTTP/1.1 request is: the same
// routing, policies, headers, limits, errors and access-log line.
// Flow control: automatic window updates are off; a stream's bytes are given back to the
// client's window (nghttp2_session_consume) only once they have been written to the service.
// Defences: limits.http2 (concurrent streams, windows, idle timeout), header lists bounded by
// max_header_bytes / max_headers (431 on the stream), at most 8 CONTINUATION frames, nghttp2's
// reset-rate limit, and budgets of our own for frames that cost work without making any (PING,
// SETTINGS, PRIORITY, empty frames) and for stream errors the client provokes; an exhausted
// budget ends the connection with GOAWAY(ENHANCE_YOUR_CALM).
// Thread: worker thread only. Deadlines: the worker's sweep (SessionBase::check_deadline).
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "core/metrics.h"
#include "net/stream.h"

namespace gh::proxy {

class Worker;

// What an HTTP/1.1 session hands over when its connection turns out to speak HTTP/2. The
// connection keeps its place in connections_open and in the gateway's connection count.
struct Http2Start {
  core::Gauge* open = nullptr;
  std::string peer_ip;
  std::string_view initial;  // bytes already read from the client (the h2c preface, ...)
};

// The client connection preface (RFC 9113 §3.4).
inline constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// Starts serving `stream` as HTTP/2 on `worker`. The session owns itself until the connection
// ends; it copies `start.initial`.
void start_http2_session(Worker& worker, net::Stream stream, const Http2Start& start);

}  // namespace gh::proxy
