#include "proxy/http2_session.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "clients/http2/nghttp2_memory.h"
#include "core/log.h"
#include "core/strings.h"
#include "proxy/downstream.h"
#include "proxy/exchange.h"
#include "proxy/local_reply.h"
#include "proxy/worker.h"

namespace gh::proxy {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr std::size_t kMaxStartsPerRead = 32;       // new streams started per read of the socket
constexpr std::size_t kWriteChunk = 64 * 1024;      // the writer's buffer: at most this much per write
constexpr std::size_t kMaxContinuations = 8;        // CONTINUATION frames after one HEADERS
constexpr std::size_t kMaxDecodedHeaderBlock = 1 << 20;  // beyond: an HPACK bomb, not a request
constexpr std::size_t kMaxEmptyFrames = 16;         // consecutive frames that carry nothing
constexpr auto kSettingsAckTimeout = std::chrono::seconds(10);
// Budgets, as token buckets: frames that make the gateway work without asking for anything
// (PING, SETTINGS, PRIORITY), and stream errors the client's own frames provoke.
constexpr double kControlBurst = 1000, kControlPerSecond = 100;
constexpr double kGlitchBurst = 200, kGlitchPerSecond = 20;
// nghttp2 answers a stream beyond its *acknowledged* concurrency limit with a connection error;
// RFC 9113 §5.1.2 and SPEC §7 want REFUSED_STREAM. nghttp2 is told a higher limit, the client
// is shown the configured one (the SETTINGS frame is amended on its way out), and the gateway
// refuses the streams between the two itself.
constexpr std::uint32_t kInternalStreamSlack = 1000;

// A field whose value differs on every message (the request id): indexed by HPACK, each one
// would evict a useful entry and lengthen the encoder's lookups (all share one name), for no
// gain; it is sent as a literal instead.
bool unique_per_message(std::string_view lower_name) noexcept { return lower_name == "x-request-id"; }

struct Budget {
  double tokens, burst, rate;
  Clock::time_point last;
  Budget(double b, double r, Clock::time_point now) : tokens(b), burst(b), rate(r), last(now) {}
  bool spend(Clock::time_point now) noexcept {
    tokens = std::min(burst, tokens + std::chrono::duration<double>(now - last).count() * rate);
    last = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  }
};

}  // namespace

class Http2Session;

// One request stream: the Downstream of its exchange.
class H2Stream final : public Downstream {
 public:
  enum class State { Headers, Queued, Running, Done };

  H2Stream(Http2Session& s, std::int32_t id, const asio::any_io_executor& ex)
      : s_(s), id_(id), wake_(ex, Clock::time_point::max()), read_wake_(ex, Clock::time_point::max()) {}

  // A finished stream's object serves the next one: its buffers keep their capacity, so a
  // warm connection allocates little per request.
  void reuse(std::int32_t id) noexcept {
    constexpr std::size_t kKeep = 16 * 1024;
    auto clear = [](std::string& str) {
      if (str.capacity() > kKeep) std::string().swap(str);
      else str.clear();
    };
    id_ = id;
    state_ = State::Headers;
    closed_ = refused_ = reset_ = false;
    clear(store_);
    fields_.clear();
    method_ = path_ = authority_ = -1;
    header_bytes_ = header_count_ = 0;
    reject_ = 0;
    reject_reason_ = "";
    clear(cookie_);
    clear(in_);
    clear(out_);
    received_ = consumed_ = handed_ = body_read_ = 0;
    end_stream_ = false;
    first_read_ = true;
    handed_any_ = whole_ = replay_ = sent_continue_ = false;
    clear(resp_store_);
    resp_spans_.clear();
    clear(tail_);
    final_queued_ = false;
    head_pending_ = no_body_ = eof_sent_ = response_started_ = aborted_ = false;
    eof_written_ = reset_after_eof_ = false;
    pending_ = {};
    pending_last_ = false;
    deadline_ = Clock::time_point::max();
    timed_out_ = false;
    stopped_ = false;
    clear(trailer_store_);
    trailer_nv_.clear();
  }

  // Downstream.
  http::RequestHead& head() noexcept override { return sc_->req; }
  std::string_view peer_ip() const noexcept override;
  std::string_view scheme() const noexcept override;
  asio::awaitable<Result<http::BodyPart>> read_body() override;
  bool body_now(http::BodyPart& out) noexcept override;
  bool body_replayable() const noexcept override {
    return sc_->req.body == http::BodyKind::None || whole_ || (end_stream_ && !handed_any_);
  }
  void rewind_body() noexcept override {
    if (whole_) replay_ = true;
  }
  void send_head(const http::ResponseHead& head, bool close) override;
  asio::awaitable<Result<void>> send_body(std::string_view data, bool last) override;
  bool response_started() const noexcept override { return response_started_; }
  void abort() noexcept override { aborted_ = true; }
  asio::awaitable<void> tunnel(clients::Outbound&, std::chrono::milliseconds, std::uint64_t&, std::uint64_t&) override {
    co_return;  // no upgrade over HTTP/2 (an `upgrade` field is refused as connection-specific)
  }
  void arm_after(std::chrono::milliseconds d) noexcept override;
  bool timed_out() const noexcept override { return timed_out_; }
  bool draining() const noexcept override;
  bool cancelled() const noexcept override { return broken(); }
  bool full_duplex() const noexcept override { return true; }
  void stop_body() noexcept override {
    stopped_ = true;
    read_wake_.cancel();
  }
  void set_trailers(const http::Fields& trailers) override;

  // The response side and the request body's reader wait apart: a gRPC call does both at once.
  void wake() noexcept {
    wake_.cancel();
    read_wake_.cancel();
  }
  asio::awaitable<void> wait() { co_await wake_.async_wait(nothrow); }
  asio::awaitable<void> wait_read() { co_await read_wake_.async_wait(nothrow); }
  // Whether the stream can no longer carry its response: reset by the client, or the
  // connection is gone.
  bool broken() const noexcept;
  // Bytes of the request body the exchange may take now.
  std::size_t deliverable() const noexcept {
    if (end_stream_) return in_.size();
    if (sc_ && sc_->req.body == http::BodyKind::Length && received_ >= sc_->req.content_length && !in_.empty())
      return in_.size() - 1;  // the last byte waits for END_STREAM: a longer body must not look complete
    return in_.size();
  }
  void give_back() noexcept;

  Http2Session& s_;
  std::int32_t id_;
  State state_ = State::Headers;
  bool closed_ = false;   // nghttp2 closed the stream
  bool refused_ = false;  // the gateway reset it before any exchange: ignore what follows
  bool reset_ = false;    // closed before the response ended: the client cancelled

  // The request head as it arrives: names and values back to back in `store_`.
  struct Span {
    std::uint32_t name_off, name_len, value_off, value_len;
  };
  std::string store_;
  std::vector<Span> fields_;
  int method_ = -1, path_ = -1, authority_ = -1;  // indexes in fields_ of the pseudo-fields
  std::size_t header_bytes_ = 0, header_count_ = 0;
  int reject_ = 0;  // the head cannot be served: answer this status with no route or policy
  const char* reject_reason_ = "";
  std::string cookie_;  // cookie crumbs joined for HTTP/1.1 (RFC 9113 §8.2.3)

  // Request body.
  std::string in_, out_;
  std::uint64_t received_ = 0, consumed_ = 0, handed_ = 0, body_read_ = 0;
  bool end_stream_ = false;
  bool first_read_ = true, handed_any_ = false, whole_ = false, replay_ = false, sent_continue_ = false;

  // Response.
  std::string resp_store_;
  std::vector<std::uint32_t> resp_spans_;  // name_off, name_len, value_off, value_len, ...
  std::vector<nghttp2_nv> nv_;
  bool head_pending_ = false, no_body_ = false, eof_sent_ = false, response_started_ = false, aborted_ = false;
  // The frame ending the response has gone out; the request still coming is then reset
  // (NO_ERROR) — only after it: a reset queued before would make nghttp2 drop the response.
  bool eof_written_ = false, reset_after_eof_ = false;
  std::string_view pending_;
  bool pending_last_ = false;
  static constexpr std::size_t kOwnedTail = 16 * 1024;
  std::string tail_;            // the body's last piece, when small (see send_body)
  std::string trailer_store_;   // lowercased trailer names and values
  std::vector<nghttp2_nv> trailer_nv_;
  bool stopped_ = false;        // stop_body()
  bool final_queued_ = false;   // ...queued: the response is complete once it is written

  Clock::time_point deadline_ = Clock::time_point::max();
  bool timed_out_ = false;
  std::unique_ptr<RequestScratch> sc_;
  std::shared_ptr<const Snapshot> snap_;

 private:
  asio::steady_timer wake_, read_wake_;
};

class Http2Session final : public SessionBase, public std::enable_shared_from_this<Http2Session> {
 public:
  Http2Session(Worker& w, net::Stream s, const Http2Start& start)
      : w_(w), client_(std::move(s)), open_(start.open), peer_ip_(start.peer_ip),
        writer_wake_(client_.get_executor(), Clock::time_point::max()),
        reader_wake_(client_.get_executor(), Clock::time_point::max()),
        control_(kControlBurst, kControlPerSecond, w.clock().now()),
        glitches_(kGlitchBurst, kGlitchPerSecond, w.clock().now()) {}
  ~Http2Session() override {
    if (ng_) nghttp2_session_del(ng_);
  }

  void begin(std::string_view initial);

  // SessionBase.
  void close_if_idle() override;
  void close_now() override {
    end();
    cancel_streams();  // again: exchanges still running are told at once
  }
  void check_deadline(Clock::time_point now) override;

  Worker& w_;
  net::Stream client_;
  nghttp2_session* ng_ = nullptr;
  bool alive_ = true;

  void kick() noexcept {
    if (writer_idle_) writer_wake_.cancel();
  }
  // What a stream queued goes out now, from the stream's own turn, when it is the only stream
  // at work and the writer is idle: the writer's pass, done here without waking it (a timer's
  // wait and a resumption per answer). Otherwise (other streams' answers to batch, the writer
  // busy or not started, or the socket takes only part) kick(). Never from nghttp2's
  // callbacks: nghttp2_session_mem_send must not run inside mem_recv.
  void flush();
  // Ends the connection after what is queued (a GOAWAY) has been written.
  void calm(std::uint32_t code, const char* why);
  void glitch(const char* why) {
    if (!glitches_.spend(w_.clock().coarse_now())) calm(NGHTTP2_ENHANCE_YOUR_CALM, why);
  }

 private:
  friend class H2Stream;
  struct Callbacks;

  asio::awaitable<void> read_loop();
  asio::awaitable<void> write_loop();
  // Appends what nghttp2 has to send to out_, up to kWriteChunk; false when it failed (the
  // connection ends).
  bool fill_out();
  bool feed(const char* data, std::size_t n);
  void start_streams();
  asio::awaitable<void> serve_stream(H2Stream* st);
  void stream_done(H2Stream* st, std::exception_ptr e);
  void erase(H2Stream* st);
  void ready(H2Stream* st);
  void end();
  void cancel_streams();
  bool finished() const noexcept {
    return closing_ || !alive_ || (!nghttp2_session_want_read(ng_) && !nghttp2_session_want_write(ng_));
  }
  const config::Http2Limits& limits() const { return w_.snapshot()->config->limits.http2; }
  void amend_settings();

  core::Gauge* open_;
  std::string peer_ip_;
  std::unordered_map<std::int32_t, std::unique_ptr<H2Stream>> streams_;
  std::vector<std::unique_ptr<H2Stream>> spare_;  // finished streams' objects, for the next ones
  static constexpr std::size_t kMaxSpare = 16;
  std::deque<std::int32_t> queued_;
  std::size_t open_streams_ = 0;  // streams open at the protocol level
  std::size_t live_ = 0;          // exchanges running (bounded by max_concurrent_streams)
  std::uint32_t max_streams_ = 100;

  std::string out_;
  bool writer_idle_ = false, writing_ = false, reader_waiting_ = false;
  bool closing_ = false, draining_ = false, settings_amended_ = false, settings_acked_ = false;
  bool start_posted_ = false;
  bool registered_ = true;  // in the worker's session list (until the last exchange ends)
  asio::steady_timer writer_wake_, reader_wake_;
  Clock::time_point idle_deadline_ = Clock::time_point::max();
  Clock::time_point settings_deadline_ = Clock::time_point::max();
  Clock::time_point write_deadline_ = Clock::time_point::max();  // a write that does not finish

  // Defences.
  Budget control_, glitches_;
  std::size_t continuations_ = 0, empty_frames_ = 0, decoded_ = 0;
};

// ---- H2Stream ---------------------------------------------------------------------------------

std::string_view H2Stream::peer_ip() const noexcept { return s_.peer_ip_; }
std::string_view H2Stream::scheme() const noexcept { return s_.client_.is_tls() ? "https" : "http"; }
bool H2Stream::draining() const noexcept { return s_.w_.shared().draining.load(std::memory_order_relaxed); }
bool H2Stream::broken() const noexcept { return reset_ || !s_.alive_ || (closed_ && !eof_sent_); }
void H2Stream::arm_after(std::chrono::milliseconds d) noexcept {
  timed_out_ = false;
  deadline_ = s_.w_.clock().coarse_now() + d;
}

void H2Stream::give_back() noexcept {
  if (handed_ == 0) return;
  if (!closed_ && s_.alive_) nghttp2_session_consume(s_.ng_, id_, handed_);
  consumed_ += handed_;
  handed_ = 0;
  s_.kick();
}

bool H2Stream::body_now(http::BodyPart& out) noexcept {
  if (broken()) return false;  // read_body says so
  if (replay_) {
    replay_ = false;
    out = http::BodyPart{out_, true};
    return true;
  }
  if (sc_->req.body == http::BodyKind::None) {
    out = http::BodyPart{{}, true};
    return true;
  }
  if (!end_stream_ || !first_read_ || in_.size() > s_.w_.snapshot()->config->limits.max_body_bytes) return false;
  // The whole body is here: handed out in one piece, and kept for a retry.
  first_read_ = false;
  handed_any_ = whole_ = true;
  out_.swap(in_);
  in_.clear();
  handed_ = out_.size();
  body_read_ = out_.size();
  out = http::BodyPart{out_, true};
  return true;
}

asio::awaitable<Result<http::BodyPart>> H2Stream::read_body() {
  if (broken()) co_return Error::downstream(ErrorCode::ClientGone, "stream reset");
  if (sc_->req.body == http::BodyKind::None) co_return http::BodyPart{{}, true};
  give_back();  // what was handed out before has been written to the service
  const bool first = first_read_;
  first_read_ = false;
  if (sc_->req.expect_continue && !sent_continue_ && in_.empty() && !end_stream_ && !closed_) {
    sent_continue_ = true;
    static const nghttp2_nv kContinue[] = {{const_cast<std::uint8_t*>(reinterpret_cast<const std::uint8_t*>(":status")),
                                            const_cast<std::uint8_t*>(reinterpret_cast<const std::uint8_t*>("100")), 7,
                                            3, NGHTTP2_NV_FLAG_NONE}};
    nghttp2_submit_headers(s_.ng_, NGHTTP2_FLAG_NONE, id_, nullptr, kContinue, 1, nullptr);
    s_.kick();
  }
  for (;;) {
    if (broken() || (closed_ && !end_stream_) || stopped_)
      co_return Error::downstream(ErrorCode::ClientGone, "stream reset");
    if (timed_out_) co_return Error::downstream(ErrorCode::Timeout, "request body timeout");
    const std::size_t n = deliverable();
    if (n > 0 || end_stream_ || first) {
      const bool last = end_stream_ && n == in_.size();
      if (n == in_.size()) {
        out_.swap(in_);
        in_.clear();
      } else {
        out_.assign(in_, 0, n);
        in_.erase(0, n);
      }
      handed_ = n;
      handed_any_ = handed_any_ || n > 0;
      body_read_ += n;
      if (body_read_ > s_.w_.snapshot()->config->limits.max_body_bytes)
        co_return Error::downstream(ErrorCode::PayloadTooLarge, "request body");
      co_return http::BodyPart{out_, last};
    }
    co_await wait_read();
  }
}

void H2Stream::send_head(const http::ResponseHead& head, bool /*close*/) {
  constexpr std::string_view kStatus = ":status";
  constexpr std::string_view kContentLength = "content-length";
  constexpr std::size_t kMaxDigits = 20;
  // The store is sized once to a bound on what it takes, then written in place (its capacity
  // is kept from stream to stream); each name is lowered as it is copied.
  std::size_t bound = kStatus.size() + kMaxDigits + kContentLength.size() + kMaxDigits;
  for (const auto& f : head.fields) bound += f.name.size() + f.value.size();
  resp_store_.resize(bound);
  resp_spans_.clear();
  char* const base = resp_store_.data();
  std::size_t at = 0;
  auto put = [&](std::string_view s) {
    if (!s.empty()) std::memcpy(base + at, s.data(), s.size());
    at += s.size();
  };
  auto add_value = [&](std::size_t name_at, std::size_t name_len, std::string_view value) {
    resp_spans_.insert(resp_spans_.end(), {static_cast<std::uint32_t>(name_at), static_cast<std::uint32_t>(name_len),
                                           static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(value.size())});
    put(value);
  };
  auto add_number = [&](std::string_view name, std::uint64_t n) {
    const std::size_t name_at = at;
    put(name);
    char* const digits = base + at;
    const std::size_t len = static_cast<std::size_t>(std::to_chars(digits, digits + kMaxDigits, n).ptr - digits);
    resp_spans_.insert(resp_spans_.end(), {static_cast<std::uint32_t>(name_at), static_cast<std::uint32_t>(name.size()),
                                           static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(len)});
    at += len;
  };
  add_number(kStatus, static_cast<std::uint64_t>(head.status));
  for (const auto& f : head.fields) {
    const std::size_t name_at = at;
    gh::lower_copy(base + at, f.name);
    const std::string_view lower(base + at, f.name.size());
    // The framing's content-length is written below; one without a body (HEAD, 304) is the
    // service's own and stays.
    if (http::is_hop_by_hop(lower) || (lower == kContentLength && head.body == http::BodyKind::Length)) continue;
    at += lower.size();
    add_value(name_at, lower.size(), f.value);
  }
  const bool bodiless_status = head.status == 204 || head.status == 304 || head.status < 200;
  if (head.body == http::BodyKind::Length && !bodiless_status) add_number(kContentLength, head.content_length);
  resp_store_.resize(at);
  no_body_ = head.body == http::BodyKind::None || bodiless_status || sc_->req.method == "HEAD";
  head_pending_ = true;
  response_started_ = true;
}

namespace {
ssize_t read_response_body(nghttp2_session* ng, std::int32_t id, std::uint8_t* buf, std::size_t length,
                           std::uint32_t* flags, nghttp2_data_source* source, void*) {
  auto* st = static_cast<H2Stream*>(source->ptr);
  const std::size_t n = std::min(length, st->pending_.size());
  if (n > 0) std::memcpy(buf, st->pending_.data(), n);
  st->pending_.remove_prefix(n);
  if (st->pending_.empty()) {
    if (st->pending_last_) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      st->eof_sent_ = true;
      // Trailers end the stream instead of this DATA frame (nghttp2 copies them).
      if (!st->trailer_nv_.empty() &&
          nghttp2_submit_trailer(ng, id, st->trailer_nv_.data(), st->trailer_nv_.size()) == 0)
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    st->wake();
    if (n == 0 && !st->pending_last_) return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<ssize_t>(n);
}
}  // namespace

asio::awaitable<Result<void>> H2Stream::send_body(std::string_view data, bool last) {
  if (broken()) co_return Error::downstream(ErrorCode::ClientGone, "stream reset");
  // A deadline that fired for the step before (the 504 that follows a response timeout) does
  // not cut the answer short; it gets the client's idle time to go out.
  if (timed_out_) arm_after(s_.w_.snapshot()->config->limits.idle_timeout);
  if (no_body_) data = {};
  if (head_pending_) {
    head_pending_ = false;
    std::vector<nghttp2_nv>& nv = nv_;
    nv.clear();
    auto* base = reinterpret_cast<std::uint8_t*>(resp_store_.data());
    for (std::size_t i = 0; i + 3 < resp_spans_.size(); i += 4)
      nv.push_back({base + resp_spans_[i], base + resp_spans_[i + 2], resp_spans_[i + 1], resp_spans_[i + 3],
                    unique_per_message(std::string_view(resp_store_).substr(resp_spans_[i], resp_spans_[i + 1]))
                        ? std::uint8_t(NGHTTP2_NV_FLAG_NO_INDEX)
                        : std::uint8_t(NGHTTP2_NV_FLAG_NONE)});
    int rv;
    if (no_body_ || (last && data.empty() && trailer_nv_.empty())) {
      rv = nghttp2_submit_response(s_.ng_, id_, nv.data(), nv.size(), nullptr);
      eof_sent_ = rv == 0;
    } else {
      nghttp2_data_provider provider;
      provider.source.ptr = this;
      provider.read_callback = read_response_body;
      rv = nghttp2_submit_response(s_.ng_, id_, nv.data(), nv.size(), &provider);
    }
    if (rv != 0) {
      s_.kick();
      co_return Error::downstream(ErrorCode::ClientGone, nghttp2_strerror(rv));
    }
    if (eof_sent_ || final_queued_ || (data.empty() && !last)) {
      s_.flush();
      co_return Result<void>{};
    }
  }
  if (eof_sent_ || final_queued_ || (data.empty() && !last)) co_return Result<void>{};
  if (last && data.size() <= kOwnedTail) {
    // The last piece of a small body is kept by the stream and goes out with the writer's
    // next pass: the exchange ends now instead of waiting for the copy. The stream stays until
    // it is sent; limits.idle_timeout bounds the wait for a client that keeps its window shut.
    tail_.assign(data);
    pending_ = tail_;
    pending_last_ = true;
    final_queued_ = true;
    arm_after(s_.w_.snapshot()->config->limits.idle_timeout);
    nghttp2_session_resume_data(s_.ng_, id_);
    s_.flush();
    co_return Result<void>{};
  }
  pending_ = data;
  pending_last_ = last;
  nghttp2_session_resume_data(s_.ng_, id_);
  s_.flush();
  while (!pending_.empty() || (pending_last_ && !eof_sent_)) {
    if (broken() || timed_out_) {
      pending_ = {};
      co_return Error::downstream(ErrorCode::ClientGone, timed_out_ ? "client not reading" : "stream reset");
    }
    co_await wait();
  }
  co_return Result<void>{};
}

void H2Stream::set_trailers(const http::Fields& trailers) {
  trailer_store_.clear();
  std::vector<std::uint32_t> spans;
  for (const auto& f : trailers) {
    spans.push_back(static_cast<std::uint32_t>(trailer_store_.size()));
    for (char c : f.name) trailer_store_.push_back(ascii_lower(c));
    spans.push_back(static_cast<std::uint32_t>(f.name.size()));
    if (http::is_hop_by_hop(std::string_view(trailer_store_).substr(spans[spans.size() - 2]))) {
      trailer_store_.resize(spans[spans.size() - 2]);
      spans.resize(spans.size() - 2);
      continue;
    }
    spans.push_back(static_cast<std::uint32_t>(trailer_store_.size()));
    trailer_store_.append(f.value);
    spans.push_back(static_cast<std::uint32_t>(f.value.size()));
  }
  trailer_nv_.clear();
  auto* base = reinterpret_cast<std::uint8_t*>(trailer_store_.data());
  for (std::size_t i = 0; i + 3 < spans.size(); i += 4)
    trailer_nv_.push_back({base + spans[i], base + spans[i + 2], spans[i + 1], spans[i + 3], NGHTTP2_NV_FLAG_NONE});
}

// ---- nghttp2 callbacks ------------------------------------------------------------------------

struct Http2Session::Callbacks {
  static Http2Session& self(void* p) { return *static_cast<Http2Session*>(p); }
  static H2Stream* stream(nghttp2_session* ng, std::int32_t id) {
    return static_cast<H2Stream*>(nghttp2_session_get_stream_user_data(ng, id));
  }

  static int on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* p) {
    Http2Session& s = self(p);
    const auto now = s.w_.clock().coarse_now();
    switch (hd->type) {
      case NGHTTP2_HEADERS:
        s.continuations_ = 0;
        s.decoded_ = 0;
        break;
      case NGHTTP2_CONTINUATION:
        if (++s.continuations_ > kMaxContinuations) {
          s.calm(NGHTTP2_ENHANCE_YOUR_CALM, "too many CONTINUATION frames");
          return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        break;
      case NGHTTP2_PING:
      case NGHTTP2_SETTINGS:
      case NGHTTP2_PRIORITY:
        if (!(hd->flags & NGHTTP2_FLAG_ACK) && !s.control_.spend(now)) {
          s.calm(NGHTTP2_ENHANCE_YOUR_CALM, "control frame flood");
          return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        break;
      default: break;
    }
    // Frames that carry nothing and end nothing, one after another (DATA, whose padding is
    // known only once read, is counted in on_frame_recv).
    if (hd->type == NGHTTP2_HEADERS || hd->type == NGHTTP2_CONTINUATION) {
      if (hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM) && !(hd->flags & NGHTTP2_FLAG_END_HEADERS)) {
        if (++s.empty_frames_ > kMaxEmptyFrames) {
          s.calm(NGHTTP2_ENHANCE_YOUR_CALM, "empty frame flood");
          return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
      } else {
        s.empty_frames_ = 0;
      }
    }
    return 0;
  }

  static int on_begin_headers(nghttp2_session* ng, const nghttp2_frame* frame, void* p) {
    Http2Session& s = self(p);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    std::unique_ptr<H2Stream> st;
    if (!s.spare_.empty()) {
      st = std::move(s.spare_.back());
      s.spare_.pop_back();
      st->reuse(frame->hd.stream_id);
    } else {
      st = std::make_unique<H2Stream>(s, frame->hd.stream_id, s.client_.get_executor());
    }
    H2Stream* raw = st.get();
    s.streams_.emplace(frame->hd.stream_id, std::move(st));
    nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, raw);
    s.idle_deadline_ = Clock::time_point::max();
    if (++s.open_streams_ > s.max_streams_) {
      raw->refused_ = true;
      nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
      s.glitch("streams beyond max_concurrent_streams");
    }
    return 0;
  }

  static int on_header(nghttp2_session* ng, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* p) {
    Http2Session& s = self(p);
    s.decoded_ += namelen + valuelen;
    if (s.decoded_ > kMaxDecodedHeaderBlock) {
      s.calm(NGHTTP2_ENHANCE_YOUR_CALM, "header block too large (HPACK bomb)");
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    H2Stream* st = stream(ng, frame->hd.stream_id);
    if (!st || st->refused_ || st->state_ != H2Stream::State::Headers) return 0;  // trailers: not forwarded
    std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    const auto& pl = s.w_.snapshot()->parse_limits;
    st->header_bytes_ += namelen + valuelen + 4;  // as "name: value\r\n"
    if (n.empty() || n.front() != ':') ++st->header_count_;
    if (st->reject_ != 0) return 0;
    if (st->header_bytes_ > pl.max_header_bytes || st->header_count_ > pl.max_headers) {
      st->reject_ = 431;
      st->reject_reason_ = "head_too_large";
      return 0;
    }
    if (!http::is_clean_field_value(v)) {
      st->refused_ = true;
      nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id_, NGHTTP2_PROTOCOL_ERROR);
      s.glitch("malformed field value");
      return 0;
    }
    const auto index = static_cast<int>(st->fields_.size());
    if (n == ":method") st->method_ = index;
    else if (n == ":path") st->path_ = index;
    else if (n == ":authority") st->authority_ = index;
    H2Stream::Span span;
    span.name_off = static_cast<std::uint32_t>(st->store_.size());
    span.name_len = static_cast<std::uint32_t>(namelen);
    st->store_.append(n);
    span.value_off = static_cast<std::uint32_t>(st->store_.size());
    span.value_len = static_cast<std::uint32_t>(valuelen);
    st->store_.append(v);
    st->fields_.push_back(span);
    if (n == ":path" && valuelen > pl.max_uri_bytes) {
      st->reject_ = 414;
      st->reject_reason_ = "uri_too_long";
    }
    return 0;
  }

  static int on_invalid_header(nghttp2_session* ng, const nghttp2_frame* frame, const std::uint8_t*, std::size_t,
                               const std::uint8_t*, std::size_t, std::uint8_t, void* p) {
    if (H2Stream* st = stream(ng, frame->hd.stream_id)) st->refused_ = true;
    self(p).glitch("malformed field");
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // RST_STREAM(PROTOCOL_ERROR)
  }

  static int on_invalid_frame(nghttp2_session*, const nghttp2_frame*, int, void* p) {
    self(p).glitch("invalid frame");
    return 0;
  }

  static int on_frame_recv(nghttp2_session* ng, const nghttp2_frame* frame, void* p) {
    Http2Session& s = self(p);
    switch (frame->hd.type) {
      case NGHTTP2_SETTINGS:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
          s.settings_acked_ = true;
          s.settings_deadline_ = Clock::time_point::max();
        }
        return 0;
      case NGHTTP2_DATA:
        if (frame->hd.length <= frame->data.padlen && !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
          if (++s.empty_frames_ > kMaxEmptyFrames) {
            s.calm(NGHTTP2_ENHANCE_YOUR_CALM, "empty frame flood");
            return NGHTTP2_ERR_CALLBACK_FAILURE;
          }
        } else {
          s.empty_frames_ = 0;
        }
        break;
      case NGHTTP2_HEADERS: break;
      default: return 0;
    }
    H2Stream* st = stream(ng, frame->hd.stream_id);
    if (!st) return 0;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
      st->end_stream_ = true;
      st->wake();
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST && !st->refused_)
      s.ready(st);
    return 0;
  }

  static int on_data_chunk(nghttp2_session* ng, std::uint8_t, std::int32_t id, const std::uint8_t* data,
                           std::size_t len, void*) {
    H2Stream* st = stream(ng, id);
    if (!st || st->refused_ || st->state_ == H2Stream::State::Done || st->state_ == H2Stream::State::Headers) {
      nghttp2_session_consume(ng, id, len);  // nobody will read it: give the window back at once
      return 0;
    }
    st->in_.append(reinterpret_cast<const char*>(data), len);
    st->received_ += len;
    st->wake();
    return 0;
  }

  static int on_stream_close(nghttp2_session*, std::int32_t id, std::uint32_t, void* p) {
    Http2Session& s = self(p);
    auto it = s.streams_.find(id);
    if (it == s.streams_.end()) return 0;
    H2Stream* st = it->second.get();
    st->closed_ = true;
    if (s.open_streams_ > 0) --s.open_streams_;
    if (st->state_ == H2Stream::State::Running) {
      if (!st->eof_sent_) {
        // The client cancelled: the service's work stops now.
        st->reset_ = true;
        if (st->sc_) st->sc_->upstream.cancel();  // the exchange then closes it
      }
      st->wake();
      return 0;
    }
    s.erase(st);
    return 0;
  }

  static int on_frame_send(nghttp2_session* ng, const nghttp2_frame* frame, void*) {
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
        (frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS))
      return 0;
    H2Stream* st = stream(ng, frame->hd.stream_id);
    if (!st) return 0;
    st->eof_written_ = true;
    if (st->reset_after_eof_ && !st->closed_ && !st->end_stream_)
      nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id_, NGHTTP2_NO_ERROR);
    return 0;
  }

  static int on_error(nghttp2_session*, int, const char* msg, std::size_t len, void* p) {
    log::debug("HTTP/2 from {}: {}", self(p).peer_ip_, std::string_view(msg, len));
    return 0;
  }
};

// ---- Http2Session -----------------------------------------------------------------------------

void start_http2_session(Worker& worker, net::Stream stream, const Http2Start& start) {
  auto s = std::make_shared<Http2Session>(worker, std::move(stream), start);
  worker.add_session(s.get());
  s->begin(start.initial);
}

void Http2Session::begin(std::string_view initial) {
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_option* opt = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0) {
    if (cb) nghttp2_session_callbacks_del(cb);
    return end();
  }
  nghttp2_session_callbacks_set_on_begin_frame_callback(cb, Callbacks::on_begin_frame);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, Callbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, Callbacks::on_header);
  nghttp2_session_callbacks_set_on_invalid_header_callback(cb, Callbacks::on_invalid_header);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, Callbacks::on_invalid_frame);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, Callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, Callbacks::on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, Callbacks::on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, Callbacks::on_frame_send);
  nghttp2_session_callbacks_set_error_callback2(cb, Callbacks::on_error);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_continuations(opt, kMaxContinuations);
  nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);  // rapid reset (CVE-2023-44487)
  nghttp2_option_set_max_outbound_ack(opt, 1000);
  nghttp2_option_set_max_settings(opt, 32);
  nghttp2_option_set_no_closed_streams(opt, 1);
  int rv = nghttp2_session_server_new3(&ng_, cb, this, opt, clients::http2::nghttp2_memory());
  nghttp2_session_callbacks_del(cb);
  nghttp2_option_del(opt);
  if (rv != 0) {
    ng_ = nullptr;
    return end();
  }

  const config::Config& cfg = *w_.snapshot()->config;
  const config::Http2Limits& h2 = cfg.limits.http2;
  max_streams_ = static_cast<std::uint32_t>(h2.max_concurrent_streams);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams_ + kInternalStreamSlack},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<std::uint32_t>(h2.stream_window)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
       static_cast<std::uint32_t>(std::min<std::uint64_t>(cfg.limits.max_header_bytes + 32 * cfg.limits.max_headers,
                                                          0xffffffffu))},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  nghttp2_submit_settings(ng_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(ng_, NGHTTP2_FLAG_NONE, 0, static_cast<std::int32_t>(h2.connection_window));
  const auto now = w_.clock().coarse_now();
  settings_deadline_ = now + kSettingsAckTimeout;
  idle_deadline_ = now + h2.idle_timeout;

  auto self = shared_from_this();
  asio::co_spawn(client_.get_executor(), write_loop(), [self](std::exception_ptr) { self->end(); });
  if (!initial.empty() && !feed(initial.data(), initial.size())) return kick();
  asio::co_spawn(client_.get_executor(), read_loop(), [self](std::exception_ptr) {
    self->closing_ = true;  // the client is gone or broke the protocol: finish writing, then end
    self->kick();
  });
}

// The server's SETTINGS frame, the first one written, shows the configured stream limit.
void Http2Session::amend_settings() {
  settings_amended_ = true;
  if (out_.size() < 9 || static_cast<std::uint8_t>(out_[3]) != NGHTTP2_SETTINGS) return;
  const std::size_t len = (std::size_t(std::uint8_t(out_[0])) << 16) | (std::size_t(std::uint8_t(out_[1])) << 8) |
                          std::uint8_t(out_[2]);
  for (std::size_t i = 9; i + 6 <= 9 + len && i + 6 <= out_.size(); i += 6) {
    const unsigned id = (unsigned(std::uint8_t(out_[i])) << 8) | std::uint8_t(out_[i + 1]);
    if (id != NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) continue;
    for (int b = 0; b < 4; ++b) out_[i + 2 + b] = static_cast<char>((max_streams_ >> (24 - 8 * b)) & 0xff);
  }
}

bool Http2Session::feed(const char* data, std::size_t n) {
  const auto rv = nghttp2_session_mem_recv(ng_, reinterpret_cast<const std::uint8_t*>(data), n);
  if (rv < 0) {
    log::debug("HTTP/2 connection from {} ends: {}", peer_ip_, nghttp2_strerror(static_cast<int>(rv)));
    if (rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
      nghttp2_session_terminate_session(ng_, NGHTTP2_ENHANCE_YOUR_CALM);
    else if (rv != NGHTTP2_ERR_CALLBACK_FAILURE && rv != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
      nghttp2_session_terminate_session(ng_, NGHTTP2_PROTOCOL_ERROR);
    closing_ = true;
    kick();
    return false;
  }
  start_streams();
  // The writer wakes only for what it has to do: frames nghttp2 queued (acknowledgements,
  // window updates, resets) or the connection's end. A request's answer wakes it when queued.
  if (finished() || nghttp2_session_want_write(ng_)) kick();
  return !closing_;
}

void Http2Session::calm(std::uint32_t code, const char* why) {
  if (closing_) return;
  log::debug("HTTP/2 connection from {} ends: {}", peer_ip_, why);
  nghttp2_session_terminate_session(ng_, code);
  closing_ = true;
  kick();
}

asio::awaitable<void> Http2Session::read_loop() {
  IoBuffer buf = w_.buffers().get(16 * 1024);
  for (;;) {
    if (!alive_ || closing_) break;
    // A client that does not read what it asked for gets nothing more read from it.
    while (writing_ && alive_ && nghttp2_session_get_outbound_queue_size(ng_) > 64) {
      reader_waiting_ = true;
      reader_wake_.expires_at(Clock::time_point::max());
      co_await reader_wake_.async_wait(nothrow);
      reader_waiting_ = false;
    }
    auto [ec, n] = co_await client_.async_read_frames(asio::buffer(buf.data.get(), buf.cap), nothrow);
    if (ec || !alive_) break;
    if (!feed(buf.data.get(), n)) break;
  }
  w_.buffers().put(std::move(buf));
}

bool Http2Session::fill_out() {
  while (alive_ && out_.size() < kWriteChunk) {
    const std::uint8_t* data = nullptr;
    const auto n = nghttp2_session_mem_send(ng_, &data);
    if (n < 0) {
      log::debug("HTTP/2 connection from {} ends: {}", peer_ip_, nghttp2_strerror(static_cast<int>(n)));
      return false;
    }
    if (n == 0) break;
    out_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
  return true;
}

void Http2Session::flush() {
  // With other streams at work, the writer's pass batches their answers into one write.
  if (live_ > 1 || !alive_ || !writer_idle_ || !settings_amended_ || !out_.empty()) return kick();
  if (!fill_out()) return end();
  if (out_.empty()) {
    if (finished()) kick();
    return;
  }
  const std::array<asio::const_buffer, 1> part{asio::buffer(out_)};
  const std::size_t now = client_.write_now(part.data(), part.size());
  if (now < out_.size()) {
    out_.erase(0, now);  // the rest waits for room, in the writer
    return kick();
  }
  out_.clear();
  if (reader_waiting_) reader_wake_.cancel();
  if (finished()) kick();
}

asio::awaitable<void> Http2Session::write_loop() {
  for (;;) {
    // out_ may hold what a stream's flush() could not write at once: it goes first.
    if (!fill_out()) co_return;
    if (!alive_) co_return;
    if (out_.empty()) {
      if (finished()) co_return;
      writer_idle_ = true;
      writer_wake_.expires_at(Clock::time_point::max());
      co_await writer_wake_.async_wait(nothrow);
      writer_idle_ = false;
      continue;
    }
    if (!settings_amended_) amend_settings();
    // What the socket takes now goes at once; only the rest waits for room.
    std::array<asio::const_buffer, 1> part{asio::buffer(out_)};
    const std::size_t now = client_.write_now(part.data(), part.size());
    boost::system::error_code ec;
    if (now < out_.size()) {
      net::consume(part, now);
      writing_ = true;
      write_deadline_ = w_.clock().coarse_now() + limits().idle_timeout;
      std::size_t n = 0;
      std::tie(ec, n) = co_await asio::async_write(client_, part, nothrow);
      writing_ = false;
      write_deadline_ = Clock::time_point::max();
    }
    out_.clear();
    if (reader_waiting_) reader_wake_.cancel();
    if (ec) co_return;
  }
}

void Http2Session::ready(H2Stream* st) {
  if (st->state_ != H2Stream::State::Headers) return;
  // host and :authority must name the same (RFC 9113 §8.3.1); a request with neither has no
  // Host for HTTP/1.1 and is answered 400 like one.
  std::string_view authority =
      st->authority_ >= 0 ? std::string_view(st->store_).substr(st->fields_[st->authority_].value_off,
                                                                st->fields_[st->authority_].value_len)
                          : std::string_view{};
  for (const auto& f : st->fields_) {
    std::string_view n(st->store_.data() + f.name_off, f.name_len);
    if (n != "host") continue;
    std::string_view v(st->store_.data() + f.value_off, f.value_len);
    if (!authority.empty() && !iequals(v, authority)) {
      st->refused_ = true;
      nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, st->id_, NGHTTP2_PROTOCOL_ERROR);
      glitch("host disagrees with :authority");
      return;
    }
    if (authority.empty()) authority = v;
  }
  if (authority.empty() && st->reject_ == 0) {
    st->reject_ = 400;
    st->reject_reason_ = "no_host";
  }
  // The :path becomes the service's request line: the bytes an HTTP/1.1 request-target may not
  // hold are refused as they are over HTTP/1.1 (a fragment is never sent; no space or control).
  if (st->path_ >= 0 && st->reject_ == 0) {
    const std::string_view path =
        std::string_view(st->store_).substr(st->fields_[st->path_].value_off, st->fields_[st->path_].value_len);
    for (unsigned char c : path) {
      if (c <= 0x20 || c == 0x7f || c == '#') {
        st->reject_ = 400;
        st->reject_reason_ = "bad_target";
        break;
      }
    }
  }
  st->state_ = H2Stream::State::Queued;
  queued_.push_back(st->id_);
}

void Http2Session::start_streams() {
  std::size_t started = 0;
  while (!queued_.empty() && started < kMaxStartsPerRead && live_ < max_streams_ && alive_) {
    const std::int32_t id = queued_.front();
    queued_.pop_front();
    auto it = streams_.find(id);
    if (it == streams_.end() || it->second->state_ != H2Stream::State::Queued) continue;
    H2Stream* st = it->second.get();
    ++started;
    ++live_;
    st->state_ = H2Stream::State::Running;
    st->snap_ = w_.snapshot();
    st->sc_ = w_.take_scratch();
    st->sc_->upstream.set_parse_limits(&st->snap_->parse_limits);

    // The request head, as views into the stream's store.
    http::RequestHead& req = st->sc_->req;
    req.reset();
    const std::string_view store = st->store_;
    std::size_t cookies = 0;
    for (const auto& f : st->fields_) {
      std::string_view n = store.substr(f.name_off, f.name_len);
      std::string_view v = store.substr(f.value_off, f.value_len);
      if (n == ":method") req.method = v;
      else if (n == ":path") req.target = v;
      else if (n == ":authority") req.host = v;
      else if (!n.empty() && n.front() == ':') continue;
      else if (n == "cookie") {
        if (cookies++ > 0) st->cookie_ += "; ";
        st->cookie_ += v;
      } else {
        if (n == "host" && req.host.empty()) req.host = v;
        req.fields.add(n, v);
      }
    }
    if (cookies > 0) req.fields.add("cookie", st->cookie_);
    if (!req.host.empty() && !req.fields.has("host")) req.fields.add("host", req.host);
    const auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string_view::npos) req.query = req.target.substr(q + 1);
    req.version_minor = 1;
    req.keep_alive = true;
    req.head_size = st->header_bytes_;
    req.expect_continue = iequals(req.fields.get("expect"), "100-continue");
    if (st->end_stream_ && st->received_ == 0) {
      req.body = http::BodyKind::None;
    } else if (std::string_view cl = req.fields.get("content-length"); !cl.empty()) {
      std::uint64_t n = 0;
      std::from_chars(cl.data(), cl.data() + cl.size(), n);  // nghttp2 checked its form
      req.body = http::BodyKind::Length;
      req.content_length = n;
    } else {
      req.body = http::BodyKind::Chunked;  // length unknown: the service gets it chunked
    }
    if (req.method.empty() && st->reject_ == 0) {
      st->reject_ = 400;
      st->reject_reason_ = "bad_head";
    }

    auto self = shared_from_this();
    asio::co_spawn(client_.get_executor(), serve_stream(st),
                   [self, st](std::exception_ptr e) { self->stream_done(st, e); });
  }
  // More are waiting: the next batch starts after what else the loop has to do.
  if (started == kMaxStartsPerRead && !queued_.empty() && !start_posted_) {
    start_posted_ = true;
    asio::post(client_.get_executor(), [self = shared_from_this()] {
      self->start_posted_ = false;
      if (!self->alive_) return;
      self->start_streams();
      self->kick();
    });
  }
}

asio::awaitable<void> Http2Session::serve_stream(H2Stream* st) {
  Exchange exchange(w_, st->snap_, *st, st->sc_->upstream, st->sc_->exchange);
  if (st->reject_ != 0) co_await exchange.reject_head(st->reject_, st->reject_reason_);
  else co_await exchange.run();
}

void Http2Session::stream_done(H2Stream* st, std::exception_ptr e) {
  if (e) {
    w_.shared().internal_errors.fetch_add(1, std::memory_order_relaxed);
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log::error("internal error on an HTTP/2 stream from {}: {}", peer_ip_, ex.what());
    } catch (...) {
      log::error("internal error on an HTTP/2 stream from {}", peer_ip_);
    }
  }
  st->state_ = H2Stream::State::Done;
  if (!st->final_queued_) st->pending_ = {};  // a queued last piece is the stream's own (tail_)
  --live_;
  if (!st->closed_ && alive_) {
    // A response cut short is reset; a whole one while the request still comes ends the
    // request too (RFC 9113 §8.1).
    if (!st->eof_sent_ && !st->final_queued_)
      nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, st->id_, NGHTTP2_INTERNAL_ERROR);
    else if (!st->end_stream_ && st->eof_written_)
      nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, st->id_, NGHTTP2_NO_ERROR);
    else if (!st->end_stream_)
      st->reset_after_eof_ = true;  // on_frame_send resets it once the response is out
    const std::uint64_t unconsumed = st->received_ - st->consumed_;
    if (unconsumed > 0) nghttp2_session_consume(ng_, st->id_, unconsumed);
    st->consumed_ = st->received_;
  }
  if (st->sc_) {
    st->sc_->req.reset();
    w_.return_scratch(std::move(st->sc_));
  }
  st->snap_.reset();
  if (st->closed_ || !alive_) erase(st);
  if (!alive_ && live_ == 0 && registered_) {
    registered_ = false;
    w_.remove_session(this);
  }
  if (alive_) {
    start_streams();
    // A reset queued above, or the connection's end, goes out now; a stream's answer went
    // with its last send_body.
    if (finished() || nghttp2_session_want_write(ng_)) flush();
  }
}

void Http2Session::erase(H2Stream* st) {
  if (ng_ && !st->closed_) nghttp2_session_set_stream_user_data(ng_, st->id_, nullptr);
  auto it = streams_.find(st->id_);
  if (it == streams_.end()) return;
  if (spare_.size() < kMaxSpare && alive_) spare_.push_back(std::move(it->second));
  streams_.erase(it);
  if (streams_.empty() && alive_) idle_deadline_ = w_.clock().coarse_now() + limits().idle_timeout;
}

void Http2Session::close_if_idle() {
  // Draining: GOAWAY names the last stream that will be served; those finish, then the
  // connection closes.
  if (!alive_ || draining_ || !ng_) return;
  draining_ = true;
  nghttp2_submit_goaway(ng_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(ng_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  if (streams_.empty()) closing_ = true;
  kick();
}

void Http2Session::check_deadline(Clock::time_point now) {
  if (alive_ && now >= write_deadline_) {
    // The client has not taken a byte for limits.http2.idle_timeout: nothing more can be said.
    log::debug("HTTP/2 connection from {} ends: the client does not read", peer_ip_);
    return end();
  }
  for (auto& entry : streams_) {
    H2Stream* st = entry.second.get();
    if (now < st->deadline_) continue;
    if (st->state_ == H2Stream::State::Done && st->final_queued_ && !st->eof_sent_ && !st->closed_ && alive_) {
      // The client never opened its window for the rest of the response.
      st->deadline_ = Clock::time_point::max();
      nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, st->id_, NGHTTP2_CANCEL);
      kick();
      continue;
    }
    if (st->state_ != H2Stream::State::Running) continue;
    st->timed_out_ = true;
    st->deadline_ = Clock::time_point::max();
    if (st->sc_) st->sc_->upstream.cancel();
    st->wake();
  }
  if (!alive_) return;  // exchanges that outlive the connection keep their deadlines
  // The reader's read waits for new bytes after whole records (Stream::async_read_frames), so a
  // client's end that came with its last records is not read. While streams work at services,
  // the TCP state is looked at instead, and the read ends as an EOF would have ended it.
  if (!streams_.empty() && !closing_ && !writing_ && !reader_waiting_ && client_.peer_has_closed()) {
    boost::system::error_code ignore;
    client_.socket().cancel(ignore);
  }
  if (now >= settings_deadline_) {
    settings_deadline_ = Clock::time_point::max();
    calm(NGHTTP2_SETTINGS_TIMEOUT, "SETTINGS not acknowledged");
  } else if (streams_.empty() && now >= idle_deadline_) {
    idle_deadline_ = Clock::time_point::max();
    calm(NGHTTP2_NO_ERROR, "idle");
  }
}

void Http2Session::end() {
  if (!alive_) return;
  alive_ = false;
  client_.close_gracefully();
  client_.close();
  writer_wake_.cancel();
  reader_wake_.cancel();
  cancel_streams();
  // Streams not running go now; running ones when their exchange ends, which keeps the session
  // in the worker's list (and under its deadline sweep) until then.
  for (auto it = streams_.begin(); it != streams_.end();) {
    if (it->second->state_ == H2Stream::State::Running) ++it;
    else it = streams_.erase(it);
  }
  queued_.clear();
  w_.shared().open_connections.fetch_sub(1, std::memory_order_relaxed);
  if (open_) open_->add(w_.id(), -1);
  if (live_ == 0 && registered_) {
    registered_ = false;
    w_.remove_session(this);
  }
}

// The connection is gone: every running exchange stops its upstream work and wakes.
void Http2Session::cancel_streams() {
  for (auto& entry : streams_) {
    H2Stream* st = entry.second.get();
    if (st->state_ != H2Stream::State::Running) continue;
    if (st->sc_ && !st->eof_sent_) st->sc_->upstream.cancel();
    st->wake();
  }
}

}  // namespace gh::proxy
