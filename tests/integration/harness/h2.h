// Integration harness, HTTP/2: a client on nghttp2's client API (h2c by prior knowledge, or TLS
// with ALPN h2) that keeps many streams in flight on one connection; a raw frame connection that
// sends what a correct client never would (hand-built frames and HPACK blocks) and reads what
// comes back; and a holding service that keeps requests open and sees their connections close.
// Every wait is bounded, so a gateway that misbehaves fails a test instead of hanging it.
// Thread: an H2Client or RawH2 belongs to one thread; HoldingService's public members are
// thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "harness/http.h"
#include "harness/net.h"
#include "harness/tls.h"

struct nghttp2_session;
struct nghttp2_hd_inflater;

namespace gh::integ {

// HTTP/2 error codes (RFC 9113 §7) and frame types, by name.
namespace h2 {
enum ErrorCode : std::uint32_t {
  NO_ERROR = 0x0,
  PROTOCOL_ERROR = 0x1,
  INTERNAL_ERROR = 0x2,
  FLOW_CONTROL_ERROR = 0x3,
  SETTINGS_TIMEOUT = 0x4,
  STREAM_CLOSED = 0x5,
  FRAME_SIZE_ERROR = 0x6,
  REFUSED_STREAM = 0x7,
  CANCEL = 0x8,
  COMPRESSION_ERROR = 0x9,
  CONNECT_ERROR = 0xa,
  ENHANCE_YOUR_CALM = 0xb,
  INADEQUATE_SECURITY = 0xc,
  HTTP_1_1_REQUIRED = 0xd,
};
enum FrameType : std::uint8_t {
  DATA = 0x0,
  HEADERS = 0x1,
  PRIORITY = 0x2,
  RST_STREAM = 0x3,
  SETTINGS = 0x4,
  PUSH_PROMISE = 0x5,
  PING = 0x6,
  GOAWAY = 0x7,
  WINDOW_UPDATE = 0x8,
  CONTINUATION = 0x9,
};
enum Flag : std::uint8_t {
  END_STREAM = 0x1,
  ACK = 0x1,
  END_HEADERS = 0x4,
  PADDED = 0x8,
  PRIORITY_FLAG = 0x20,
};
enum Setting : std::uint16_t {
  HEADER_TABLE_SIZE = 0x1,
  ENABLE_PUSH = 0x2,
  MAX_CONCURRENT_STREAMS = 0x3,
  INITIAL_WINDOW_SIZE = 0x4,
  MAX_FRAME_SIZE = 0x5,
  MAX_HEADER_LIST_SIZE = 0x6,
};
// "PROTOCOL_ERROR", "0x1b" for unknown codes; for failure messages.
std::string error_name(std::uint32_t code);
std::string frame_name(std::uint8_t type);
}  // namespace h2

// A connection to the gateway, plain or TLS, over a non-blocking socket driven with poll.
class H2Transport {
 public:
  // TLS when TLS is set (its alpn defaults to {"h2"}).
  H2Transport(int port, const std::optional<TlsOptions>& tls, Millis timeout);
  ~H2Transport();
  H2Transport(const H2Transport&) = delete;
  H2Transport& operator=(const H2Transport&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& alpn() const { return alpn_; }

  // Writes every byte before DEADLINE; bytes that arrive meanwhile go to INBOX (so a peer that
  // writes while we write cannot deadlock us). False on timeout, reset or close.
  bool write_all(std::string_view bytes, Clock::time_point deadline, std::string& inbox);
  enum class Read { Data, Eof, Timeout, Error };
  // Appends what is available to OUT, waiting until DEADLINE for something.
  Read read_some(std::string& out, Clock::time_point deadline);
  bool eof() const { return eof_; }
  // Closes the socket at once (RST when ABORT).
  void close(bool abort = false);
  // Keeps what is sent from now on in the kernel (TCP_CORK) until close, so the last bytes and
  // the end of the connection leave in one segment and arrive together.
  void hold_sends();

 private:
  // Raw bytes from the socket into the TLS input (or raw_in_), waiting until DEADLINE.
  Read recv_raw(Clock::time_point deadline);
  // Sends raw_out_ (and, with TLS, what OpenSSL produced) before DEADLINE.
  bool send_raw(Clock::time_point deadline, std::string& inbox);
  // Reads what the socket holds now and decrypts it into OUT.
  Read read_available(std::string& out);
  void decrypt(std::string& out);

  int fd_ = -1;
  void* ctx_ = nullptr;  // SSL_CTX*
  ssl_st* ssl_ = nullptr;  // on memory BIOs; the socket is driven here
  bool ok_ = false;
  bool eof_ = false;        // everything the peer sent has been handed out, and it closed
  bool raw_eof_ = false;    // the socket reached EOF or a reset
  bool tls_closed_ = false; // close_notify or a broken record
  bool write_failed_ = false;
  std::string raw_in_, raw_out_;
  std::string error_, alpn_;
};

struct H2Options {
  std::optional<TlsOptions> tls;      // TLS with ALPN (default {"h2"}); nullopt: h2c
  std::string authority = "gw.test";  // :authority; empty: none sent
  std::string scheme;                 // :scheme; empty: "https" with TLS, "http" without
  Millis timeout = 5s;                // connect, and each wait unless told otherwise
  // The client's SETTINGS (id, value); ENABLE_PUSH 0 is always sent.
  std::vector<std::pair<std::int32_t, std::uint32_t>> settings;
};

struct H2Response {
  int status = 0;     // 0: no final response head
  Headers headers;    // lowercase names, pseudo-fields left out
  std::string body;
  Headers trailers;
  std::int64_t rst_code = -1;  // the RST_STREAM code received for the stream, -1 when none
  bool closed = false;         // the stream ended (END_STREAM both ways, reset, or GOAWAY)
  std::uint32_t close_code = 0;  // nghttp2's error code at close (0 for a clean end)
  std::string error;             // why the response is incomplete ("timeout", "connection closed")
  std::string describe() const;
  // The same response in the HTTP/1.1 model (status, fields, body), for the shared assertions.
  Response as_http1() const;
};

// What the connection saw.
struct H2GoAway {
  std::uint32_t code = 0;
  std::int32_t last_stream_id = 0;
  std::string debug;
};

class H2Client {
 public:
  explicit H2Client(int port, H2Options options = {});
  ~H2Client();
  H2Client(const H2Client&) = delete;
  H2Client& operator=(const H2Client&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& alpn() const { return transport_.alpn(); }

  // Submits a request (pseudo-fields from METHOD, PATH and the options; HEADERS as given,
  // names lower-cased). A BODY is sent as DATA frames under flow control; with END_STREAM false
  // the stream stays open after it (see end_stream()). Returns the stream id, or -1.
  std::int32_t submit(std::string_view method, std::string_view path, const Headers& headers = {},
                      std::string body = {}, bool end_stream = true);
  // Sends RST_STREAM CODE for ID.
  void reset(std::int32_t id, std::uint32_t code = h2::CANCEL);
  void ping();

  // Drives the connection until every submitted stream is closed (true), or TIMEOUT passes, the
  // peer closes, or the session ends (false).
  bool run(Millis timeout);
  bool run() { return run(options_.timeout); }
  // Drives the connection until PRED holds (true) or TIMEOUT passes / the connection ends.
  bool run_until(const std::function<bool()>& pred, Millis timeout);

  // The response of stream ID (an empty one for an unknown id).
  const H2Response& response(std::int32_t id) const;
  // Submits one request and runs until it closes.
  H2Response request(std::string_view method, std::string_view path, const Headers& headers = {},
                     std::string body = {});
  H2Response get(std::string_view path, const Headers& headers = {}) { return request("GET", path, headers); }

  const std::optional<H2GoAway>& goaway() const { return goaway_; }
  bool peer_closed() const { return peer_closed_; }
  // Runs until the peer closes the connection; true when it did within TIMEOUT.
  bool wait_closed(Millis timeout);
  // The server's SETTINGS_MAX_CONCURRENT_STREAMS (0xffffffff when it sent none yet).
  std::uint32_t remote_max_concurrent_streams() const;
  std::size_t open_streams() const;

 private:
  struct Stream;
  friend struct H2Callbacks;
  bool flush(Clock::time_point deadline);
  bool pump_once(Clock::time_point deadline);

  H2Options options_;
  H2Transport transport_;
  nghttp2_session* session_ = nullptr;
  bool ok_ = false;
  bool peer_closed_ = false;
  std::string error_;
  std::string inbox_;
  std::map<std::int32_t, std::unique_ptr<Stream>> streams_;
  std::optional<H2GoAway> goaway_;
};

// ---- raw frames -------------------------------------------------------------------------------

// A hand-encoded HPACK block (RFC 7541), never Huffman-coded.
class Hpack {
 public:
  // Literal header field without indexing, new name (names sent exactly as given).
  Hpack& literal(std::string_view name, std::string_view value);
  // Literal header field with incremental indexing, new name: the field enters the dynamic table
  // (its index is then 62, the newest entry).
  Hpack& insert(std::string_view name, std::string_view value);
  // Indexed header field (1-61 static, 62 and up dynamic, newest first).
  Hpack& indexed(std::size_t index);
  // Dynamic table size update.
  Hpack& table_size(std::size_t size);
  // The four pseudo-fields of a request, as literals.
  Hpack& request(std::string_view method, std::string_view path, std::string_view authority = "gw.test",
                 std::string_view scheme = "http");
  const std::string& bytes() const { return bytes_; }

 private:
  void integer(std::size_t value, int prefix_bits, std::uint8_t first);
  void string(std::string_view s);
  std::string bytes_;
};

struct Frame {
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
  std::int32_t stream = 0;
  std::string payload;
  // HEADERS (with its CONTINUATIONs folded in): the decoded fields, pseudo-fields included.
  Headers headers;
  bool has(std::uint8_t flag) const { return (flags & flag) != 0; }
  std::string describe() const;
};

// The frame bytes, for batching many frames into one write.
namespace frame {
std::string make(std::uint8_t type, std::uint8_t flags, std::int32_t stream, std::string_view payload);
std::string settings(const std::vector<std::pair<std::uint16_t, std::uint32_t>>& params = {});
std::string settings_ack();
std::string headers(std::int32_t stream, std::string_view block, bool end_stream, bool end_headers = true);
std::string continuation(std::int32_t stream, std::string_view block, bool end_headers);
// PAD: with padding of that many bytes (the PADDED flag); -1: no padding field.
std::string data(std::int32_t stream, std::string_view bytes, bool end_stream, int pad = -1);
std::string rst_stream(std::int32_t stream, std::uint32_t code);
std::string ping(std::string_view opaque8 = "12345678", bool ack = false);
std::string priority(std::int32_t stream, std::int32_t depends_on, std::uint8_t weight = 15, bool exclusive = false);
std::string window_update(std::int32_t stream, std::uint32_t increment);
std::string goaway(std::int32_t last_stream, std::uint32_t code);
}  // namespace frame

// What a raw stream received.
struct RawResponse {
  int status = 0;
  Headers headers;  // pseudo-fields left out
  std::string body;
  std::int64_t rst_code = -1;
  bool ended = false;  // END_STREAM received
  std::string describe() const;
};

// One raw HTTP/2 connection: bytes out exactly as built, frames in parsed (HPACK decoded with
// nghttp2's inflater so response heads can be checked).
class RawH2 {
 public:
  explicit RawH2(int port, std::optional<TlsOptions> tls = std::nullopt, Millis timeout = 3s);
  ~RawH2();
  RawH2(const RawH2&) = delete;
  RawH2& operator=(const RawH2&) = delete;

  bool ok() const { return transport_.ok(); }
  const std::string& error() const { return transport_.error(); }

  // The client preface followed by a SETTINGS frame with PARAMS.
  bool handshake(const std::vector<std::pair<std::uint16_t, std::uint32_t>>& params = {});
  // Sends BYTES (any frames); false when the peer closed or reset before all were written.
  bool send(std::string_view bytes, Millis timeout = 5s);

  // Whether received SETTINGS are acknowledged and received DATA is given back in WINDOW_UPDATE
  // frames (both on by default).
  bool auto_ack_settings = true;
  bool auto_window_update = true;

  // The next frame, or nullopt on timeout or close.
  std::optional<Frame> next(Millis timeout = 5s);
  // Reads frames until PRED accepts one (returned) or TIMEOUT passes / the peer closes.
  std::optional<Frame> wait_for(const std::function<bool(const Frame&)>& pred, Millis timeout = 5s);
  // Reads until a GOAWAY arrives.
  std::optional<H2GoAway> wait_for_goaway(Millis timeout = 5s);
  // Reads (and keeps) frames until the peer closes; true when it did within TIMEOUT.
  bool wait_closed(Millis timeout = 5s);
  bool closed() const { return transport_.eof(); }
  // Reads until stream ID ends (END_STREAM or RST_STREAM), or TIMEOUT / GOAWAY / close.
  RawResponse response(std::int32_t id, Millis timeout = 5s);

  // Every frame read so far, and the first GOAWAY among them.
  const std::vector<Frame>& seen() const { return seen_; }
  const std::optional<H2GoAway>& goaway() const { return goaway_; }
  // The server's SETTINGS values, from the frames read so far.
  std::optional<std::uint32_t> server_setting(std::uint16_t id) const;
  std::size_t bytes_received() const { return bytes_received_; }
  // A summary of the frames seen, for failure messages.
  std::string summary() const;
  void close(bool abort = false) { transport_.close(abort); }
  void hold_sends() { transport_.hold_sends(); }

 private:
  std::optional<Frame> parse_one();
  void on_frame(Frame& f);

  H2Transport transport_;
  nghttp2_hd_inflater* inflater_ = nullptr;
  std::string inbox_;
  std::vector<Frame> seen_;
  std::optional<H2GoAway> goaway_;
  std::map<std::uint16_t, std::uint32_t> server_settings_;
  std::size_t bytes_received_ = 0;
  // A HEADERS frame waiting for its CONTINUATIONs.
  std::optional<Frame> partial_;
};

// ---- a service that holds requests ------------------------------------------------------------

// An HTTP/1.1 service on 127.0.0.1 that holds every request open for HOLD (or until release()),
// then answers 200 with BODY; it counts requests in flight at once, and sees the gateway close a
// connection while a request is held (a cancel reaching the service).
class HoldingService {
 public:
  explicit HoldingService(Millis hold = 3s, std::string body = "held");
  ~HoldingService();
  HoldingService(const HoldingService&) = delete;
  HoldingService& operator=(const HoldingService&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Answers every held request now, and every later one at once.
  void release();

  int heads() const { return heads_; }
  int in_flight() const { return in_flight_; }
  int max_in_flight() const { return max_in_flight_; }
  // Held requests whose connection the gateway closed before the answer.
  int cancelled() const { return cancelled_; }
  int answered() const { return answered_; }
  int connections() const { return connections_; }

 private:
  void accept_loop();
  void serve(int fd);

  Millis hold_;
  std::string body_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> released_{false};
  std::atomic<int> heads_{0}, in_flight_{0}, max_in_flight_{0}, cancelled_{0}, answered_{0}, connections_{0};
  std::thread acceptor_;
  std::mutex mu_;
  // Connection threads; finished ones are joined on the next accept, so a gateway that opens
  // thousands of connections does not exhaust the test's threads.
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Worker> threads_;
};

// The resident set size of process PID in KiB (VmRSS), -1 when unknown.
long rss_kib(int pid);
// The CPU time (user + system) process PID has used, in seconds; -1 when unknown.
double cpu_seconds(int pid);

}  // namespace gh::integ
