// Integration harness, sockets: loopback TCP helpers and the raw client. Every call is bounded
// by a deadline, so a gateway that stops answering fails a test instead of hanging it.
// Thread: a Conn belongs to one thread; the free functions are thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "harness/http.h"

namespace gh::integ {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// A port that was free on 127.0.0.1 a moment ago (bound to port 0, read back, closed).
int free_port();

// Connects to 127.0.0.1:PORT; -1 on failure or timeout.
int connect_to(int port, Millis timeout = 2s);

// True once a connection to PORT succeeds, polling until TIMEOUT.
bool wait_for_port(int port, Millis timeout = 10s);

// Polls PRED every POLL until it holds or TIMEOUT passes; returns its last value.
template <class Pred>
bool eventually(Pred pred, Millis timeout = 5s, Millis poll = 10ms);

// One client connection carrying raw bytes.
class Conn {
 public:
  explicit Conn(int port, Millis timeout = 2s);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  bool ok() const { return fd_ >= 0; }
  // Sends every byte; false when the peer reset or closed, or on timeout.
  bool send(std::string_view bytes, Millis timeout = 5s);
  // Reads the next response (interim 1xx ones included); nullopt on timeout, EOF before a
  // complete response, or unparsable bytes (see garbage()).
  std::optional<Response> read_response(Millis timeout = 5s, bool head_request = false);
  // True when the peer closes (EOF or reset) within TIMEOUT; bytes read meanwhile are kept.
  bool wait_closed(Millis timeout = 3s);
  // True once the bytes received and not consumed contain NEEDLE (waiting up to TIMEOUT).
  bool wait_for(std::string_view needle, Millis timeout = 3s);
  // True when nothing arrives and the connection stays open for DURATION.
  bool silent_for(Millis duration);
  void shutdown_write();
  // Keeps what is sent from now on in the kernel (TCP_CORK) until shutdown_write, so the last
  // bytes and the end of the client's side leave in one segment and arrive together.
  void hold_sends();
  bool eof() const { return eof_; }
  // Bytes received and not consumed by read_response.
  const std::string& pending() const { return buf_; }
  bool garbage() const { return garbage_; }

 private:
  // Reads what is available, waiting at most until DEADLINE; false on timeout.
  bool fill(Clock::time_point deadline);

  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
  bool garbage_ = false;
};

// Renders a request. HOST is sent unless empty; Content-Length is added when BODY is not empty
// or the method is POST/PUT/PATCH, unless EXTRA already frames the body.
std::string make_request(std::string_view method, std::string_view target, const Headers& extra = {},
                         std::string_view body = {}, std::string_view host = "gw.test");

// Sends BYTES on a fresh connection and reads one final response (1xx skipped). status is 0
// when none arrived in time.
Response roundtrip(int port, std::string_view bytes, Millis timeout = 5s);

Response http_get(int port, std::string_view target, const Headers& extra = {});
Response http_request(int port, std::string_view method, std::string_view target,
                      const Headers& extra = {}, std::string_view body = {});

template <class Pred>
bool eventually(Pred pred, Millis timeout, Millis poll) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(poll);
  }
}

}  // namespace gh::integ
