#include "harness/h2.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

namespace gh::integ {

namespace h2 {

std::string error_name(std::uint32_t code) {
  static const char* const names[] = {"NO_ERROR",         "PROTOCOL_ERROR",      "INTERNAL_ERROR",
                                      "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",  "STREAM_CLOSED",
                                      "FRAME_SIZE_ERROR", "REFUSED_STREAM",      "CANCEL",
                                      "COMPRESSION_ERROR", "CONNECT_ERROR",      "ENHANCE_YOUR_CALM",
                                      "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"};
  if (code < sizeof names / sizeof names[0]) return names[code];
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", code);
  return buf;
}

std::string frame_name(std::uint8_t type) {
  static const char* const names[] = {"DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS",
                                      "PUSH_PROMISE", "PING", "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"};
  if (type < sizeof names / sizeof names[0]) return names[type];
  return "type" + std::to_string(type);
}

}  // namespace h2

namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

std::string openssl_error() {
  char buf[256];
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

int ms_left(Clock::time_point deadline) {
  auto l = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  return l <= 0 ? 0 : static_cast<int>(std::min<long long>(l, 1'000'000));
}

void put32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xff));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

std::uint32_t get32(std::string_view s, std::size_t at) {
  auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + i])); };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string printable(std::string_view s, std::size_t max = 200) {
  std::string out;
  for (char c : s.substr(0, max)) {
    if (c >= 0x20 && c < 0x7f) out += c;
    else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    }
  }
  if (s.size() > max) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

}  // namespace

// ---- H2Transport ------------------------------------------------------------------------------

H2Transport::H2Transport(int port, const std::optional<TlsOptions>& tls, Millis timeout) {
  fd_ = connect_to(port, timeout);
  if (fd_ < 0) {
    error_ = "cannot connect to port " + std::to_string(port);
    return;
  }
  int flags = ::fcntl(fd_, F_GETFL, 0);
  ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
  if (!tls) {
    ok_ = true;
    return;
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  ctx_ = ctx;
  if (!tls->ca_file.empty()) {
    SSL_CTX_load_verify_locations(ctx, tls->ca_file.c_str(), nullptr);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  std::vector<std::string> alpn = tls->alpn.empty() ? std::vector<std::string>{"h2"} : tls->alpn;
  std::string wire;
  for (const auto& p : alpn) {
    wire.push_back(static_cast<char>(p.size()));
    wire += p;
  }
  SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()), static_cast<unsigned>(wire.size()));
  ssl_ = SSL_new(ctx);
  // Memory BIOs: the socket is ours, so a failed send (the peer closed after its GOAWAY) leaves
  // the TLS state intact and what the peer sent before closing can still be decrypted.
  SSL_set_bio(ssl_, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  if (!tls->sni.empty()) SSL_set_tlsext_host_name(ssl_, tls->sni.c_str());
  if (!tls->verify_name.empty()) SSL_set1_host(ssl_, tls->verify_name.c_str());
  const auto deadline = Clock::now() + timeout;
  std::string ignored;
  ERR_clear_error();
  for (;;) {
    int rc = SSL_connect(ssl_);
    int err = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, rc);
    if (!send_raw(deadline, ignored)) {
      error_ = "TLS handshake: the peer closed";
      return;
    }
    if (rc == 1) break;
    if (err != SSL_ERROR_WANT_READ) {
      error_ = "TLS handshake failed: " + openssl_error();
      return;
    }
    Read r = recv_raw(deadline);
    if (r != Read::Data) {
      error_ = r == Read::Timeout ? "TLS handshake timed out" : "TLS handshake: the peer closed";
      return;
    }
  }
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_, &p, &len);
  if (p) alpn_.assign(reinterpret_cast<const char*>(p), len);
  ok_ = true;
}

H2Transport::~H2Transport() {
  close();
  SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

void H2Transport::close(bool abort) {
  if (fd_ < 0) return;
  if (abort) {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  if (ssl_) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  ::close(fd_);
  fd_ = -1;
  ok_ = false;
}

void H2Transport::hold_sends() {
  const int on = 1;
  if (fd_ >= 0) ::setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
}

H2Transport::Read H2Transport::recv_raw(Clock::time_point deadline) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      if (ssl_) BIO_write(SSL_get_rbio(ssl_), buf, static_cast<int>(n));
      else raw_in_.append(buf, static_cast<std::size_t>(n));
      return Read::Data;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) return Read::Eof;
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, ms_left(deadline));
    if (rc < 0 && errno != EINTR) return Read::Error;
    if (rc == 0) return Read::Timeout;
  }
}

bool H2Transport::send_raw(Clock::time_point deadline, std::string& inbox) {
  if (ssl_) {
    BIO* wbio = SSL_get_wbio(ssl_);
    char buf[16384];
    for (int n; (n = BIO_read(wbio, buf, sizeof buf)) > 0;) raw_out_.append(buf, static_cast<std::size_t>(n));
  }
  std::string_view bytes = raw_out_;
  bool ok = true;
  while (!bytes.empty()) {
    ssize_t w = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (w > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(w));
      continue;
    }
    if (w < 0 && errno != EAGAIN && errno != EINTR) {
      ok = false;
      break;
    }
    // Blocked: wait for room, taking in what the peer sends meanwhile (so a peer that writes
    // while we write cannot deadlock us).
    pollfd p{fd_, POLLIN | POLLOUT, 0};
    int rc = ::poll(&p, 1, ms_left(deadline));
    if (rc <= 0) {
      ok = false;
      break;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      if (read_available(inbox) == Read::Eof) {
        ok = false;
        break;
      }
    }
  }
  raw_out_.erase(0, raw_out_.size() - bytes.size());
  if (!ok) raw_out_.clear();
  return ok;
}

H2Transport::Read H2Transport::read_available(std::string& out) {
  Read r = recv_raw(Clock::now());
  if (r == Read::Eof) raw_eof_ = true;
  decrypt(out);
  return r;
}

void H2Transport::decrypt(std::string& out) {
  if (!ssl_) {
    out += raw_in_;
    raw_in_.clear();
    return;
  }
  char buf[16384];
  for (;;) {
    std::size_t n = 0;
    ERR_clear_error();
    if (SSL_read_ex(ssl_, buf, sizeof buf, &n) == 1) {
      out.append(buf, n);
      continue;
    }
    int err = SSL_get_error(ssl_, 0);
    ERR_clear_error();
    if (err != SSL_ERROR_WANT_READ) tls_closed_ = true;  // close_notify, or a broken record
    return;
  }
}

bool H2Transport::write_all(std::string_view bytes, Clock::time_point deadline, std::string& inbox) {
  if (fd_ < 0 || write_failed_) return false;
  if (ssl_) {
    std::size_t n = 0;
    ERR_clear_error();
    if (!bytes.empty() && SSL_write_ex(ssl_, bytes.data(), bytes.size(), &n) != 1) {
      ERR_clear_error();
      write_failed_ = true;
      return false;
    }
  } else {
    raw_out_.append(bytes);
  }
  if (!send_raw(deadline, inbox)) {
    write_failed_ = true;
    return false;
  }
  return true;
}

H2Transport::Read H2Transport::read_some(std::string& out, Clock::time_point deadline) {
  if (fd_ < 0) return Read::Eof;
  for (;;) {
    const std::size_t before = out.size();
    decrypt(out);
    if (out.size() > before) return Read::Data;
    if (raw_eof_ || tls_closed_) {
      eof_ = true;
      return Read::Eof;
    }
    Read r = recv_raw(deadline);
    if (r == Read::Eof) raw_eof_ = true;
    if (r == Read::Timeout || r == Read::Error) return r;
  }
}

// ---- H2Client ---------------------------------------------------------------------------------

struct H2Client::Stream {
  H2Response response;
  std::string body;  // request body to send
  std::size_t sent = 0;
  bool end_stream = true;
  bool final_seen = false;  // a final (non-1xx) head arrived
  bool in_trailers = false;
};

std::string H2Response::describe() const {
  std::string out = "status " + std::to_string(status);
  if (rst_code >= 0) out += ", RST_STREAM " + h2::error_name(static_cast<std::uint32_t>(rst_code));
  if (!closed) out += ", stream not closed";
  if (close_code != 0) out += ", closed with " + h2::error_name(close_code);
  if (!error.empty()) out += ", error: " + error;
  out += "\n" + headers.to_string();
  if (!trailers.list().empty()) out += "trailers:\n" + trailers.to_string();
  out += "body: " + printable(body);
  return out;
}

Response H2Response::as_http1() const {
  Response r;
  r.status = status;
  r.version = "HTTP/2";
  r.headers = headers;
  r.body = body;
  if (rst_code >= 0) r.reason = "(RST_STREAM " + h2::error_name(static_cast<std::uint32_t>(rst_code)) + ")";
  else if (!error.empty()) r.reason = "(" + error + ")";
  return r;
}

struct H2Callbacks {
  static H2Client& self(void* user) { return *static_cast<H2Client*>(user); }

  static H2Client::Stream* stream(H2Client& c, std::int32_t id) {
    auto it = c.streams_.find(id);
    return it == c.streams_.end() ? nullptr : it->second.get();
  }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    auto* s = stream(self(user), frame->hd.stream_id);
    if (!s) return 0;
    if (s->final_seen) {
      s->in_trailers = true;
    } else {
      s->response.headers = Headers();  // after a 1xx head, the final one replaces it
    }
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    auto* s = stream(self(user), frame->hd.stream_id);
    if (!s) return 0;
    std::string n(reinterpret_cast<const char*>(name), namelen);
    std::string v(reinterpret_cast<const char*>(value), valuelen);
    if (s->in_trailers) {
      s->response.trailers.add(std::move(n), std::move(v));
    } else if (n == ":status") {
      int status = 0;
      std::from_chars(v.data(), v.data() + v.size(), status);
      s->response.status = status;
      if (status >= 200) s->final_seen = true;
    } else if (n.empty() || n[0] != ':') {
      s->response.headers.add(std::move(n), std::move(v));
    }
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    H2Client& c = self(user);
    if (frame->hd.type == NGHTTP2_GOAWAY && !c.goaway_) {
      H2GoAway g;
      g.code = frame->goaway.error_code;
      g.last_stream_id = frame->goaway.last_stream_id;
      g.debug.assign(reinterpret_cast<const char*>(frame->goaway.opaque_data), frame->goaway.opaque_data_len);
      c.goaway_ = g;
    } else if (frame->hd.type == NGHTTP2_RST_STREAM) {
      if (auto* s = stream(c, frame->hd.stream_id)) s->response.rst_code = frame->rst_stream.error_code;
    }
    return 0;
  }

  static int on_data_chunk(nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* data, std::size_t len,
                           void* user) {
    if (auto* s = stream(self(user), id)) s->response.body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static int on_stream_close(nghttp2_session*, std::int32_t id, std::uint32_t code, void* user) {
    if (auto* s = stream(self(user), id)) {
      s->response.closed = true;
      s->response.close_code = code;
    }
    return 0;
  }

  static ssize_t read_body(nghttp2_session*, std::int32_t id, std::uint8_t* buf, std::size_t length,
                           std::uint32_t* data_flags, nghttp2_data_source*, void* user) {
    auto* s = stream(self(user), id);
    if (!s) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    std::size_t n = std::min(length, s->body.size() - s->sent);
    std::memcpy(buf, s->body.data() + s->sent, n);
    s->sent += n;
    if (s->sent == s->body.size()) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!s->end_stream) *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return static_cast<ssize_t>(n);
  }
};

H2Client::H2Client(int port, H2Options options)
    : options_(std::move(options)), transport_(port, options_.tls, options_.timeout) {
  if (!transport_.ok()) {
    error_ = transport_.error();
    return;
  }
  if (options_.tls && transport_.alpn() != "h2") {
    error_ = "ALPN chose \"" + transport_.alpn() + "\", not h2";
    return;
  }
  if (options_.scheme.empty()) options_.scheme = options_.tls ? "https" : "http";
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, H2Callbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, H2Callbacks::on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, H2Callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, H2Callbacks::on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, H2Callbacks::on_stream_close);
  nghttp2_session_client_new(&session_, cbs, this);
  nghttp2_session_callbacks_del(cbs);

  std::vector<nghttp2_settings_entry> iv{{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
  for (auto [id, value] : options_.settings) iv.push_back({id, value});
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv.data(), iv.size());
  ok_ = flush(Clock::now() + options_.timeout);
  if (!ok_) error_ = "cannot send the preface";
}

H2Client::~H2Client() {
  if (session_) nghttp2_session_del(session_);
}

bool H2Client::flush(Clock::time_point deadline) {
  for (;;) {
    const std::uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      error_ = std::string("nghttp2_session_mem_send: ") + nghttp2_strerror(static_cast<int>(n));
      return false;
    }
    if (n == 0) return true;
    if (!transport_.write_all({reinterpret_cast<const char*>(data), static_cast<std::size_t>(n)}, deadline, inbox_)) {
      peer_closed_ = peer_closed_ || transport_.eof();
      if (error_.empty()) error_ = "write failed (peer closed or reset)";
      return false;
    }
  }
}

std::int32_t H2Client::submit(std::string_view method, std::string_view path, const Headers& headers, std::string body,
                              bool end_stream) {
  if (!ok_) return -1;
  std::vector<std::pair<std::string, std::string>> fields{
      {":method", std::string(method)}, {":scheme", options_.scheme}, {":path", std::string(path)}};
  if (!options_.authority.empty()) fields.insert(fields.begin() + 2, {":authority", options_.authority});
  for (const Header& h : headers.list()) fields.emplace_back(lower(h.name), h.value);
  std::vector<nghttp2_nv> nva;
  for (auto& [n, v] : fields) {
    nva.push_back({reinterpret_cast<std::uint8_t*>(n.data()), reinterpret_cast<std::uint8_t*>(v.data()), n.size(),
                   v.size(), NGHTTP2_NV_FLAG_NONE});
  }
  auto s = std::make_unique<Stream>();
  s->body = std::move(body);
  s->end_stream = end_stream;
  const bool has_body = !s->body.empty() || !end_stream;
  nghttp2_data_provider prd{};
  prd.read_callback = H2Callbacks::read_body;
  std::int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), has_body ? &prd : nullptr, nullptr);
  if (id < 0) {
    error_ = std::string("nghttp2_submit_request: ") + nghttp2_strerror(id);
    return -1;
  }
  streams_[id] = std::move(s);
  return id;
}

void H2Client::reset(std::int32_t id, std::uint32_t code) {
  if (!ok_) return;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, code);
  flush(Clock::now() + options_.timeout);
}

void H2Client::ping() {
  if (!ok_) return;
  nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr);
  flush(Clock::now() + options_.timeout);
}

bool H2Client::pump_once(Clock::time_point deadline) {
  // A failed write (the peer closed or reset) still leaves what the peer sent to read.
  flush(deadline);
  if (!inbox_.empty()) {
    std::string bytes;
    bytes.swap(inbox_);
    ssize_t rc = nghttp2_session_mem_recv(session_, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    if (rc < 0) {
      error_ = std::string("nghttp2_session_mem_recv: ") + nghttp2_strerror(static_cast<int>(rc));
      ok_ = false;
      return false;
    }
    flush(deadline);
    return true;
  }
  if (peer_closed_) return false;
  if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) {
    if (error_.empty()) error_ = "session ended";
    return false;
  }
  switch (transport_.read_some(inbox_, deadline)) {
    case H2Transport::Read::Data:
      return true;
    case H2Transport::Read::Timeout:
      return false;
    case H2Transport::Read::Eof:
    case H2Transport::Read::Error:
      peer_closed_ = true;
      return !inbox_.empty();
  }
  return false;
}

bool H2Client::run_until(const std::function<bool()>& pred, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (!ok_ || !pump_once(deadline)) {
      // Take in whatever arrived before the end.
      if (ok_ && !inbox_.empty()) pump_once(Clock::now());
      return pred();
    }
  }
  return true;
}

bool H2Client::run(Millis timeout) {
  bool done = run_until([&] { return open_streams() == 0; }, timeout);
  for (auto& [id, s] : streams_) {
    if (s->response.closed || !s->response.error.empty()) continue;
    s->response.error = peer_closed_ ? "connection closed" : !ok_ ? error_ : "timeout";
  }
  return done;
}

std::size_t H2Client::open_streams() const {
  std::size_t n = 0;
  for (const auto& [id, s] : streams_) n += s->response.closed ? 0 : 1;
  return n;
}

const H2Response& H2Client::response(std::int32_t id) const {
  static const H2Response none{};
  auto it = streams_.find(id);
  return it == streams_.end() ? none : it->second->response;
}

H2Response H2Client::request(std::string_view method, std::string_view path, const Headers& headers, std::string body) {
  std::int32_t id = submit(method, path, headers, std::move(body));
  if (id < 0) {
    H2Response r;
    r.error = error_.empty() ? "not connected" : error_;
    return r;
  }
  run_until([&] { return streams_[id]->response.closed; }, options_.timeout);
  H2Response r = streams_[id]->response;
  if (!r.closed && r.error.empty()) r.error = peer_closed_ ? "connection closed" : !ok_ ? error_ : "timeout";
  return r;
}

bool H2Client::wait_closed(Millis timeout) {
  run_until([&] { return peer_closed_; }, timeout);
  return peer_closed_;
}

std::uint32_t H2Client::remote_max_concurrent_streams() const {
  if (!session_) return 0;
  return nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

// ---- Hpack ------------------------------------------------------------------------------------

void Hpack::integer(std::size_t value, int prefix_bits, std::uint8_t first) {
  const std::size_t max = (std::size_t{1} << prefix_bits) - 1;
  if (value < max) {
    bytes_.push_back(static_cast<char>(first | value));
    return;
  }
  bytes_.push_back(static_cast<char>(first | max));
  value -= max;
  while (value >= 128) {
    bytes_.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  bytes_.push_back(static_cast<char>(value));
}

void Hpack::string(std::string_view s) {
  integer(s.size(), 7, 0x00);  // H = 0: not Huffman-coded
  bytes_.append(s);
}

Hpack& Hpack::literal(std::string_view name, std::string_view value) {
  bytes_.push_back(0x00);
  string(name);
  string(value);
  return *this;
}

Hpack& Hpack::insert(std::string_view name, std::string_view value) {
  bytes_.push_back(0x40);
  string(name);
  string(value);
  return *this;
}

Hpack& Hpack::indexed(std::size_t index) {
  integer(index, 7, 0x80);
  return *this;
}

Hpack& Hpack::table_size(std::size_t size) {
  integer(size, 5, 0x20);
  return *this;
}

Hpack& Hpack::request(std::string_view method, std::string_view path, std::string_view authority,
                      std::string_view scheme) {
  literal(":method", method);
  literal(":scheme", scheme);
  if (!authority.empty()) literal(":authority", authority);
  literal(":path", path);
  return *this;
}

// ---- frames -----------------------------------------------------------------------------------

namespace frame {

std::string make(std::uint8_t type, std::uint8_t flags, std::int32_t stream, std::string_view payload) {
  std::string out;
  const std::size_t n = payload.size();
  out.push_back(static_cast<char>((n >> 16) & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  out.push_back(static_cast<char>(n & 0xff));
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags));
  put32(out, static_cast<std::uint32_t>(stream) & 0x7fffffffu);
  out.append(payload);
  return out;
}

std::string settings(const std::vector<std::pair<std::uint16_t, std::uint32_t>>& params) {
  std::string p;
  for (auto [id, value] : params) {
    p.push_back(static_cast<char>(id >> 8));
    p.push_back(static_cast<char>(id & 0xff));
    put32(p, value);
  }
  return make(h2::SETTINGS, 0, 0, p);
}

std::string settings_ack() { return make(h2::SETTINGS, h2::ACK, 0, {}); }

std::string headers(std::int32_t stream, std::string_view block, bool end_stream, bool end_headers) {
  std::uint8_t flags = (end_stream ? h2::END_STREAM : 0) | (end_headers ? h2::END_HEADERS : 0);
  return make(h2::HEADERS, flags, stream, block);
}

std::string continuation(std::int32_t stream, std::string_view block, bool end_headers) {
  return make(h2::CONTINUATION, end_headers ? h2::END_HEADERS : 0, stream, block);
}

std::string data(std::int32_t stream, std::string_view bytes, bool end_stream, int pad) {
  std::uint8_t flags = end_stream ? h2::END_STREAM : 0;
  if (pad < 0) return make(h2::DATA, flags, stream, bytes);
  std::string p;
  p.push_back(static_cast<char>(pad));
  p.append(bytes);
  p.append(static_cast<std::size_t>(pad), '\0');
  return make(h2::DATA, flags | h2::PADDED, stream, p);
}

std::string rst_stream(std::int32_t stream, std::uint32_t code) {
  std::string p;
  put32(p, code);
  return make(h2::RST_STREAM, 0, stream, p);
}

std::string ping(std::string_view opaque8, bool ack) {
  std::string p(opaque8.substr(0, 8));
  p.resize(8, '\0');
  return make(h2::PING, ack ? h2::ACK : 0, 0, p);
}

std::string priority(std::int32_t stream, std::int32_t depends_on, std::uint8_t weight, bool exclusive) {
  std::string p;
  put32(p, (static_cast<std::uint32_t>(depends_on) & 0x7fffffffu) | (exclusive ? 0x80000000u : 0));
  p.push_back(static_cast<char>(weight));
  return make(h2::PRIORITY, 0, stream, p);
}

std::string window_update(std::int32_t stream, std::uint32_t increment) {
  std::string p;
  put32(p, increment & 0x7fffffffu);
  return make(h2::WINDOW_UPDATE, 0, stream, p);
}

std::string goaway(std::int32_t last_stream, std::uint32_t code) {
  std::string p;
  put32(p, static_cast<std::uint32_t>(last_stream) & 0x7fffffffu);
  put32(p, code);
  return make(h2::GOAWAY, 0, 0, p);
}

}  // namespace frame

std::string Frame::describe() const {
  std::string out = h2::frame_name(type) + " stream " + std::to_string(stream) + " flags 0x";
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02x", flags);
  out += buf;
  out += " length " + std::to_string(payload.size());
  if ((type == h2::RST_STREAM && payload.size() == 4)) out += " " + h2::error_name(get32(payload, 0));
  if (type == h2::GOAWAY && payload.size() >= 8)
    out += " last " + std::to_string(get32(payload, 0) & 0x7fffffffu) + " " + h2::error_name(get32(payload, 4)) +
           (payload.size() > 8 ? " \"" + printable(std::string_view(payload).substr(8)) + "\"" : "");
  if (type == h2::WINDOW_UPDATE && payload.size() == 4) out += " +" + std::to_string(get32(payload, 0));
  if (type == h2::HEADERS) {
    for (const Header& h : headers.list()) out += " [" + h.name + ": " + printable(h.value, 60) + "]";
  }
  return out;
}

std::string RawResponse::describe() const {
  std::string out = "status " + std::to_string(status);
  if (rst_code >= 0) out += ", RST_STREAM " + h2::error_name(static_cast<std::uint32_t>(rst_code));
  if (!ended) out += ", not ended";
  return out + "\n" + headers.to_string() + "body: " + printable(body);
}

// ---- RawH2 ------------------------------------------------------------------------------------

RawH2::RawH2(int port, std::optional<TlsOptions> tls, Millis timeout) : transport_(port, tls, timeout) {
  nghttp2_hd_inflate_new(&inflater_);
}

RawH2::~RawH2() {
  if (inflater_) nghttp2_hd_inflate_del(inflater_);
}

bool RawH2::handshake(const std::vector<std::pair<std::uint16_t, std::uint32_t>>& params) {
  return send(std::string(kPreface) + frame::settings(params));
}

bool RawH2::send(std::string_view bytes, Millis timeout) {
  if (!transport_.ok()) return false;
  const std::size_t before = inbox_.size();
  bool ok = transport_.write_all(bytes, Clock::now() + timeout, inbox_);
  bytes_received_ += inbox_.size() - before;
  return ok;
}

std::optional<Frame> RawH2::parse_one() {
  if (inbox_.size() < 9) return std::nullopt;
  const std::size_t len = (static_cast<std::size_t>(static_cast<unsigned char>(inbox_[0])) << 16) |
                          (static_cast<std::size_t>(static_cast<unsigned char>(inbox_[1])) << 8) |
                          static_cast<std::size_t>(static_cast<unsigned char>(inbox_[2]));
  if (inbox_.size() < 9 + len) return std::nullopt;
  Frame f;
  f.type = static_cast<std::uint8_t>(inbox_[3]);
  f.flags = static_cast<std::uint8_t>(inbox_[4]);
  f.stream = static_cast<std::int32_t>(get32(inbox_, 5) & 0x7fffffffu);
  f.payload = inbox_.substr(9, len);
  inbox_.erase(0, 9 + len);
  return f;
}

namespace {

// The header block fragment of a HEADERS frame (padding and priority removed).
std::string_view header_block(const Frame& f) {
  std::string_view p = f.payload;
  std::size_t pad = 0;
  if (f.has(h2::PADDED) && !p.empty()) {
    pad = static_cast<unsigned char>(p[0]);
    p.remove_prefix(1);
  }
  if (f.has(h2::PRIORITY_FLAG)) p.remove_prefix(std::min<std::size_t>(5, p.size()));
  if (pad <= p.size()) p.remove_suffix(pad);
  return p;
}

Headers inflate(nghttp2_hd_inflater* inflater, std::string_view block) {
  Headers out;
  auto* in = reinterpret_cast<const std::uint8_t*>(block.data());
  std::size_t left = block.size();
  for (;;) {
    nghttp2_nv nv;
    int flags = 0;
    ssize_t rv = nghttp2_hd_inflate_hd2(inflater, &nv, &flags, in, left, 1);
    if (rv < 0) {
      out.add(":hpack-error", nghttp2_strerror(static_cast<int>(rv)));
      return out;
    }
    in += rv;
    left -= static_cast<std::size_t>(rv);
    if (flags & NGHTTP2_HD_INFLATE_EMIT) {
      out.add(std::string(reinterpret_cast<const char*>(nv.name), nv.namelen),
              std::string(reinterpret_cast<const char*>(nv.value), nv.valuelen));
    }
    if (flags & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(inflater);
      return out;
    }
    if (rv == 0 && left == 0) return out;
  }
}

}  // namespace

void RawH2::on_frame(Frame& f) {
  switch (f.type) {
    case h2::SETTINGS:
      if (!f.has(h2::ACK)) {
        for (std::size_t i = 0; i + 6 <= f.payload.size(); i += 6) {
          std::uint16_t id = static_cast<std::uint16_t>((static_cast<unsigned char>(f.payload[i]) << 8) |
                                                        static_cast<unsigned char>(f.payload[i + 1]));
          server_settings_[id] = get32(f.payload, i + 2);
        }
        if (auto_ack_settings) send(frame::settings_ack());
      }
      break;
    case h2::GOAWAY:
      if (!goaway_ && f.payload.size() >= 8) {
        H2GoAway g;
        g.last_stream_id = static_cast<std::int32_t>(get32(f.payload, 0) & 0x7fffffffu);
        g.code = get32(f.payload, 4);
        g.debug = f.payload.substr(8);
        goaway_ = g;
      }
      break;
    case h2::DATA:
      if (auto_window_update && !f.payload.empty()) {
        auto n = static_cast<std::uint32_t>(f.payload.size());
        send(frame::window_update(0, n) + (f.has(h2::END_STREAM) ? "" : frame::window_update(f.stream, n)));
      }
      break;
    case h2::PING:
      if (!f.has(h2::ACK)) send(frame::ping(f.payload, true));
      break;
    default:
      break;
  }
}

std::optional<Frame> RawH2::next(Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    while (auto f = parse_one()) {
      if (partial_) {
        // Fold CONTINUATIONs into the HEADERS they belong to.
        if (f->type != h2::CONTINUATION) {
          Frame odd = *f;
          partial_.reset();
          seen_.push_back(odd);
          return odd;
        }
        partial_->payload += f->payload;
        if (!f->has(h2::END_HEADERS)) continue;
        Frame h = *partial_;
        partial_.reset();
        h.flags |= h2::END_HEADERS;
        h.headers = inflate(inflater_, h.payload);
        seen_.push_back(h);
        return h;
      }
      if (f->type == h2::HEADERS && !f->has(h2::END_HEADERS)) {
        partial_ = *f;
        partial_->payload = std::string(header_block(*f));
        partial_->flags &= static_cast<std::uint8_t>(~(h2::PADDED | h2::PRIORITY_FLAG));
        continue;
      }
      if (f->type == h2::HEADERS) f->headers = inflate(inflater_, header_block(*f));
      on_frame(*f);
      seen_.push_back(*f);
      return f;
    }
    if (transport_.eof()) return std::nullopt;
    const std::size_t before = inbox_.size();
    auto r = transport_.read_some(inbox_, deadline);
    bytes_received_ += inbox_.size() - before;
    if (r == H2Transport::Read::Timeout || r == H2Transport::Read::Error) return std::nullopt;
    if (r == H2Transport::Read::Eof && inbox_.size() < 9) return std::nullopt;
  }
}

std::optional<Frame> RawH2::wait_for(const std::function<bool(const Frame&)>& pred, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto f = next(std::chrono::duration_cast<Millis>(deadline - Clock::now()));
    if (!f) return std::nullopt;
    if (pred(*f)) return f;
  }
}

std::optional<H2GoAway> RawH2::wait_for_goaway(Millis timeout) {
  if (goaway_) return goaway_;
  wait_for([](const Frame& f) { return f.type == h2::GOAWAY; }, timeout);
  return goaway_;
}

bool RawH2::wait_closed(Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!transport_.eof()) {
    if (Clock::now() >= deadline) return false;
    if (!next(std::chrono::duration_cast<Millis>(deadline - Clock::now())) && !transport_.eof()) return false;
  }
  return true;
}

RawResponse RawH2::response(std::int32_t id, Millis timeout) {
  RawResponse r;
  auto take = [&](const Frame& f) {
    if (f.stream != id) return;
    if (f.type == h2::HEADERS) {
      for (const Header& h : f.headers.list()) {
        if (h.name == ":status") {
          int s = 0;
          std::from_chars(h.value.data(), h.value.data() + h.value.size(), s);
          if (r.status < 200) r.status = s;
        } else if (!h.name.empty() && h.name[0] != ':') {
          r.headers.add(h.name, h.value);
        }
      }
    } else if (f.type == h2::DATA) {
      std::string_view p = f.payload;
      if (f.has(h2::PADDED) && !p.empty()) {
        std::size_t pad = static_cast<unsigned char>(p[0]);
        p.remove_prefix(1);
        if (pad <= p.size()) p.remove_suffix(pad);
      }
      r.body.append(p);
    } else if (f.type == h2::RST_STREAM && f.payload.size() == 4) {
      r.rst_code = get32(f.payload, 0);
    }
    if ((f.type == h2::HEADERS || f.type == h2::DATA) && f.has(h2::END_STREAM)) r.ended = true;
  };
  for (const Frame& f : seen_) take(f);
  if (r.ended || r.rst_code >= 0) return r;
  wait_for(
      [&](const Frame& f) {
        take(f);
        if (f.type == h2::GOAWAY) {
          auto last = static_cast<std::int32_t>(get32(f.payload, 0) & 0x7fffffffu);
          if (last < id) return true;  // the stream will never be answered
        }
        return r.ended || r.rst_code >= 0;
      },
      timeout);
  return r;
}

std::optional<std::uint32_t> RawH2::server_setting(std::uint16_t id) const {
  auto it = server_settings_.find(id);
  if (it == server_settings_.end()) return std::nullopt;
  return it->second;
}

std::string RawH2::summary() const {
  std::string out = std::to_string(seen_.size()) + " frames";
  if (transport_.eof()) out += ", then the connection closed";
  out += ":\n";
  std::size_t shown = 0;
  std::map<std::string, int> skipped;
  for (const Frame& f : seen_) {
    if (shown < 40 || f.type == h2::GOAWAY) {
      out += "  " + f.describe() + "\n";
      ++shown;
    } else {
      ++skipped[h2::frame_name(f.type)];
    }
  }
  for (auto& [name, n] : skipped) out += "  (+" + std::to_string(n) + " more " + name + ")\n";
  return out;
}

// ---- HoldingService ---------------------------------------------------------------------------

HoldingService::HoldingService(Millis hold, std::string body) : hold_(hold), body_(std::move(body)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::listen(listen_fd_, 1024);
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

HoldingService::~HoldingService() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  std::vector<Worker> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(threads_);
  }
  for (auto& w : threads) w.thread.join();
}

void HoldingService::release() { released_ = true; }

void HoldingService::accept_loop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++connections_;
    std::lock_guard lock(mu_);
    std::erase_if(threads_, [](Worker& w) {
      if (!*w.done) return false;
      w.thread.join();
      return true;
    });
    auto done = std::make_shared<std::atomic<bool>>(false);
    threads_.push_back({std::thread([this, fd, done] {
                          serve(fd);
                          *done = true;
                        }),
                        done});
  }
}

void HoldingService::serve(int fd) {
  std::string buf;
  char chunk[65536];
  auto read_more = [&]() -> bool {
    while (!stopping_) {
      pollfd p{fd, POLLIN, 0};
      int rc = ::poll(&p, 1, 20);
      if (rc == 0) continue;
      if (rc < 0) return errno == EINTR;
      ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buf.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
    return false;
  };
  for (;;) {
    Request req;
    std::size_t head_len = 0;
    Parse parsed;
    while ((parsed = parse_request_head(buf, req, head_len)) == Parse::NeedMore) {
      if (!read_more()) {
        ::close(fd);
        return;
      }
    }
    if (parsed == Parse::Invalid) break;
    buf.erase(0, head_len);
    ++heads_;
    int now = ++in_flight_;
    for (int m = max_in_flight_; now > m && !max_in_flight_.compare_exchange_weak(m, now);) {
    }
    // Hold: watch the connection for its close, reading (and dropping) any body meanwhile.
    const auto until = Clock::now() + hold_;
    bool gone = false;
    while (!stopping_ && !released_ && Clock::now() < until) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 10) <= 0) continue;
      ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) {
        gone = true;
        break;
      }
    }
    --in_flight_;
    if (gone) {
      ++cancelled_;
      break;
    }
    if (stopping_) break;
    std::string out = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body_.size()) +
                      "\r\n\r\n" + body_;
    std::string_view rest = out;
    while (!rest.empty()) {
      ssize_t n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n <= 0) break;
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
    ++answered_;
    buf.clear();  // a body that came with the request was read during the hold
  }
  ::close(fd);
}

long rss_kib(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

double cpu_seconds(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // Fields after the command (which may hold spaces) start after the last ')'.
  const std::size_t close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream in(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  const long hz = ::sysconf(_SC_CLK_TCK);
  return hz > 0 ? static_cast<double>(utime + stime) / static_cast<double>(hz) : -1;
}

}  // namespace gh::integ
