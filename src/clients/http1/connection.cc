#include "clients/http1/connection.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>

#include "core/clock.h"
#include "core/log.h"

namespace gh::clients::http1 {

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

Connection::~Connection() { release_buffer(); }

void Connection::release_buffer() noexcept {
  if (in_.data) buffers_.put(std::move(in_));
  in_ = {};
  begin_ = end_ = 0;
}

void Connection::close() noexcept {
  stream_.close();
  release_buffer();
}

void Connection::cancel() noexcept {
  boost::system::error_code ignore;
  if (stream_.is_open()) stream_.socket().cancel(ignore);
}

bool Connection::open_pooled_now(const std::string& pool_key, bool /*http2*/, bool check_idle) noexcept {
  close();
  pool_key_ = &pool_key;
  sent_ = false;
  head_pending_ = false;
  body_started_ = body_done_ = false;
  reused_ = pool_.take(pool_key, clock_.coarse_now_ms(), stream_);
  if (reused_ && check_idle && !stream_.still_idle()) {
    close();  // see open()
    reused_ = false;
  }
  return reused_;
}

asio::awaitable<Result<void>> Connection::open(const tcp::endpoint& address, const std::string& pool_key,
                                               const TlsTarget* tls, bool /*http2*/, bool pooled,
                                               bool check_idle) {
  close();
  pool_key_ = &pool_key;
  sent_ = false;
  head_pending_ = false;
  body_started_ = body_done_ = false;
  reused_ = pooled && pool_.take(pool_key, clock_.coarse_now_ms(), stream_);
  if (reused_ && check_idle && !stream_.still_idle()) {
    // A request that may not be replayed never goes on a pooled connection the service has
    // already closed (or that holds stray bytes): it would fail after being sent. One peek,
    // for such requests only; a replayable one is sent again instead if it fails.
    close();
    reused_ = false;
  }
  if (reused_) co_return Result<void>{};
  stream_ = net::Stream(stream_.get_executor());
  auto [ec] = co_await stream_.socket().async_connect(address, nothrow);
  if (ec) {
    close();
    co_return Error::upstream(ErrorCode::ConnectRefused, ec.message(), true);
  }
  boost::system::error_code ignore;
  stream_.socket().set_option(tcp::no_delay(true), ignore);
  if (tls) {
    const std::string a = address.address().to_string();
    const std::string peer = (address.address().is_v6() ? "[" + a + "]" : a) + ":" + std::to_string(address.port());
    Result<void> shaken = co_await tls_handshake(stream_, *tls, peer);
    if (!shaken) {
      close();
      // A refused certificate is the operator's to fix: said at warn; anything else (a reset,
      // the deadline) at debug, like a refused connect.
      if (shaken.error().context.find("certificate verify failed") != std::string::npos)
        log::warn("{}", shaken.error().context);
      else
        log::debug("{}", shaken.error().context);
      co_return shaken;
    }
  }
  // Watched from now until the request's first byte: see send_body.
  stream_.start_idle_watch(pool_.event_loop(stream_));
  co_return Result<void>{};
}

void Connection::send_head(const http::OutgoingRequest& req) {
  head_out_.clear();
  http::write_request_head(head_out_, req);
  head_pending_ = true;
  request_body_ = req.body;
}

asio::awaitable<Result<void>> Connection::send_body(std::string_view data, bool last) {
  char hdr[24];
  std::size_t hn = 0;
  std::string_view tail;
  if (request_body_ == http::BodyKind::Chunked) {
    if (!data.empty()) {
      hn = http::format_chunk_header(hdr, data.size());
      tail = last ? std::string_view("\r\n0\r\n\r\n") : std::string_view("\r\n");
    } else if (last) {
      tail = "0\r\n\r\n";
    }
  }
  if (!head_pending_ && data.empty() && tail.empty()) co_return Result<void>{};
  std::array<asio::const_buffer, 4> bufs{
      asio::buffer(head_pending_ ? head_out_.data() : nullptr, head_pending_ ? head_out_.size() : 0),
      asio::buffer(hdr, hn), asio::buffer(data.data(), data.size()), asio::buffer(tail.data(), tail.size())};
  if (head_pending_) {
    // Whether the service sent anything (a close, stray bytes) since the connection was opened
    // or its last response ended: the event loop watched it until now. If not, and the whole
    // request goes in one write, the service has nothing to say before its answer: the response
    // read waits for it instead of first finding nothing.
    const net::EventLoop& loop = pool_.event_loop(stream_);
    const bool quiet = !stream_.end_idle_watch(loop);
    if (quiet && last) stream_.expect_answer(loop);
  }
  head_pending_ = false;
  // Most requests fit the socket at once: written now, without an operation through the loop.
  const std::size_t now = stream_.write_now(bufs.data(), bufs.size());
  if (now > 0) sent_ = true;
  if (now == net::total_size(bufs)) co_return Result<void>{};
  net::consume(bufs, now);
  auto [ec, n] = co_await asio::async_write(stream_, bufs, nothrow);
  if (n > 0) sent_ = true;
  if (ec) co_return Error::upstream(ErrorCode::UpstreamClosed, ec.message(), !sent_);
  co_return Result<void>{};
}

asio::awaitable<Result<http::ResponseHead*>> Connection::read_head(bool head_request) {
  if (!in_.data) in_ = buffers_.get(limits_->max_header_bytes);
  begin_ = end_ = 0;
  for (;;) {
    http::ParseOutcome out =
        http::parse_response(std::string_view(in_.data.get() + begin_, end_ - begin_), *limits_, head_request, resp_);
    if (out.state == http::ParseState::Complete && resp_.status >= 100 && resp_.status < 200 && resp_.status != 101) {
      begin_ += resp_.head_size;  // interim response: skip it
      continue;
    }
    if (out.state == http::ParseState::Invalid)
      co_return Error::upstream(ErrorCode::BadResponse, out.detail);
    if (out.state == http::ParseState::Complete) break;
    if (begin_ > 0) {
      std::memmove(in_.data.get(), in_.data.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (end_ >= in_.cap) co_return Error::upstream(ErrorCode::BadResponse, "response head too large");
    auto [ec, n] = co_await stream_.async_read_some(asio::buffer(in_.data.get() + end_, in_.cap - end_), nothrow);
    if (ec) {
      // Retryable: a pooled connection that closed before a byte of answer came.
      const bool nothing = end_ == 0 && begin_ == 0;
      co_return Error::upstream(ErrorCode::UpstreamClosed, ec.message(), reused_ && nothing);
    }
    end_ += n;
  }
  begin_ += resp_.head_size;
  chunked_ = http::ChunkedDecoder{};
  left_ = resp_.body == http::BodyKind::Length ? resp_.content_length : 0;
  body_started_ = false;
  read_filled_ = false;
  body_done_ = resp_.body == http::BodyKind::None;
  if (body_done_) watch_if_reusable();
  co_return &resp_;
}

// Once the response has ended on a connection that may be reused, the event loop watches it:
// whatever the service sends from now (a close, stray bytes) is noted, even while the client
// is still taking the response, so that the next request knows whether anything waits unread.
void Connection::watch_if_reusable() noexcept {
  if (body_done_ && begin_ == end_ && resp_.keep_alive && resp_.status != 101 && stream_.is_open())
    stream_.start_idle_watch(pool_.event_loop(stream_));
}

// What the buffered bytes hold of the body, decoded (chunked: in place).
Result<http::BodyPart> Connection::decode_buffered() {
  switch (resp_.body) {
    case http::BodyKind::None: body_done_ = true; return http::BodyPart{{}, true};
    case http::BodyKind::Length: {
      std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(end_ - begin_, left_));
      std::string_view part(in_.data.get() + begin_, take);
      begin_ += take;
      left_ -= take;
      body_done_ = left_ == 0;
      if (body_done_) watch_if_reusable();
      return http::BodyPart{part, body_done_};
    }
    case http::BodyKind::UntilClose: {
      std::string_view part(in_.data.get() + begin_, end_ - begin_);
      begin_ = end_;
      return http::BodyPart{part, false};
    }
    case http::BodyKind::Chunked: break;
  }
  char* base = in_.data.get();
  const std::size_t start = begin_;
  std::size_t pos = begin_, write_pos = begin_;
  while (pos < end_ && !body_done_) {
    auto step = chunked_.feed(std::string_view(base + pos, end_ - pos));
    if (step.error) return Error::upstream(ErrorCode::BadResponse, step.detail);
    if (!step.data.empty()) {
      std::memmove(base + write_pos, step.data.data(), step.data.size());
      write_pos += step.data.size();
    }
    pos += step.consumed;
    body_done_ = step.done;
    if (step.consumed == 0 && step.data.empty() && !step.done) break;
  }
  begin_ = pos;
  if (body_done_) watch_if_reusable();
  return http::BodyPart{std::string_view(base + start, write_pos - start), body_done_};
}

bool Connection::body_now(http::BodyPart& out) noexcept {
  if (body_done_) {
    out = http::BodyPart{{}, true};
    return true;
  }
  if (body_started_ || (resp_.body != http::BodyKind::Length && resp_.body != http::BodyKind::None)) return false;
  body_started_ = true;
  Result<http::BodyPart> part = decode_buffered();  // never fails for these two framings
  out = *part;
  return true;
}

asio::awaitable<Result<http::BodyPart>> Connection::read_body() {
  if (body_done_) co_return http::BodyPart{{}, true};
  if (!body_started_) {
    // The first piece is what came with the head, without waiting: the head reaches the
    // client at once even when the body is slow to follow.
    body_started_ = true;
    co_return decode_buffered();
  }
  for (;;) {
    // A body longer than the buffer, or one that filled it on the last read, is read in a large
    // buffer from here on: a quarter of the reads (the head it held was sent already).
    const bool long_body = resp_.body == http::BodyKind::Length ? left_ > in_.cap : read_filled_;
    if (in_.cap < BufferPool::kLarge && long_body) {
      end_ = buffers_.enlarge(in_, begin_, end_);
      begin_ = 0;
    }
    if (begin_ == end_) {
      begin_ = end_ = 0;
    } else if (begin_ > 0) {
      std::memmove(in_.data.get(), in_.data.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (end_ == in_.cap) co_return Error::upstream(ErrorCode::BadResponse, "body framing line too long");
    std::size_t want = in_.cap - end_;
    if (resp_.body == http::BodyKind::Length) want = static_cast<std::size_t>(std::min<std::uint64_t>(want, left_));
    auto [ec, n] = co_await stream_.async_read_some(asio::buffer(in_.data.get() + end_, want), nothrow);
    if (ec) {
      if (resp_.body == http::BodyKind::UntilClose && ec == asio::error::eof) {
        body_done_ = true;
        co_return http::BodyPart{{}, true};
      }
      co_return Error::upstream(ErrorCode::UpstreamClosed, ec.message());
    }
    read_filled_ = end_ + n == in_.cap;
    end_ += n;
    Result<http::BodyPart> part = decode_buffered();
    if (!part || !part->data.empty() || part->last) co_return part;
  }
}

void Connection::finish(bool complete) {
  const bool clean = complete && body_done_ && begin_ == end_ && resp_.keep_alive && stream_.is_open();
  if (clean && pool_key_) {
    // Moved from, stream_ is as a new one on the same executor (closed, no TLS, no watch).
    pool_.put(*pool_key_, std::move(stream_), clock_.coarse_now_ms());
    release_buffer();
  } else {
    close();
  }
}

std::string_view Connection::take_buffered() noexcept {
  std::string_view rest(in_.data.get() + begin_, end_ - begin_);
  begin_ = end_;
  return rest;
}

}  // namespace gh::clients::http1
