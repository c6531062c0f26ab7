// net::Stream: one TCP connection, plain or TLS. It is an Asio AsyncReadStream and
// AsyncWriteStream (async_read_some, async_write_some), so asio::async_write gathers a head and
// a body into one send through it; async_wait(wait_read) lets an idle connection wait for
// readability without holding a buffer (STYLE §11).
// Plain costs one branch per operation: `tls_` is null and the socket is called directly.
// TLS (start_tls, then async_handshake): the out-of-line tls_* operations of stream.cc call
// OpenSSL on the non-blocking socket and wait for readiness when it asks (net/tls.h); a read
// receives the ciphertext through the event loop, so that waiting for it costs what a plain
// read costs. Callers do not change.
// Thread: like an Asio socket: one strand (here, one worker or the control loop) uses it.
// Failure: every operation completes with an error_code (EOF, reset and cancellation are normal
// outcomes); nothing throws.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <array>
#include <cstddef>
#include <memory>

namespace gh::net {

class TlsSession;  // the TLS state of one connection; defined by the TLS work

// The parts of an Asio event loop (its reactor and scheduler) that Stream::expect_answer and
// the idle watch reach: found once per loop, by a lookup under a lock, and kept by their user
// (a worker's connection pool), which must not outlive the loop.
class EventLoop {
 public:
  explicit EventLoop(boost::asio::execution_context& context);

 private:
  friend class Stream;
  void* reactor_ = nullptr;
  void* scheduler_ = nullptr;
};

// The bytes `parts` hold in all.
template <std::size_t N>
std::size_t total_size(const std::array<boost::asio::const_buffer, N>& parts) noexcept {
  std::size_t n = 0;
  for (const auto& b : parts) n += b.size();
  return n;
}

// Drops the first `n` bytes of `parts` (what write_now sent), leaving the rest to send.
template <std::size_t N>
void consume(std::array<boost::asio::const_buffer, N>& parts, std::size_t n) noexcept {
  for (auto& b : parts) {
    const std::size_t k = n < b.size() ? n : b.size();
    b += k;
    n -= k;
  }
}

// The buffer of a read that starts a request (Stream::async_read_head). A receive into it that
// returns fewer bytes than it holds found the socket's queue empty; when those bytes also end
// where a request head ends (plain: its blank line; TLS: a whole record, the buffer starting at
// one), the event loop takes the socket as drained at that moment, and the next read waits for
// new bytes instead of first trying a receive that would find none. End of file is taken as
// drained too, as Asio does.
class HeadBuffer : public boost::asio::mutable_buffer {
 public:
  enum class Ends { Head, TlsRecord };
  HeadBuffer(boost::asio::mutable_buffer b, Ends ends) noexcept : mutable_buffer(b), ends_(ends) {}
  // Whether receiving `got` bytes into this buffer left the socket drained, as above.
  bool drained_by(std::size_t got) const noexcept;

 private:
  Ends ends_;
};

class Stream {
 public:
  using executor_type = boost::asio::any_io_executor;
  using socket_type = boost::asio::ip::tcp::socket;
  using IoHandler = boost::asio::any_completion_handler<void(boost::system::error_code, std::size_t)>;
  using WaitHandler = boost::asio::any_completion_handler<void(boost::system::error_code)>;

  // A stream that is not open yet: connect socket(), then use it.
  explicit Stream(const executor_type& ex);
  // A stream over a connected (or accepted) plain socket.
  explicit Stream(socket_type socket);
  Stream(Stream&&) noexcept;
  Stream& operator=(Stream&&) noexcept;
  ~Stream();

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  // The TCP socket under any TLS: connect, socket options, addresses.
  socket_type& socket() noexcept { return socket_; }
  const socket_type& socket() const noexcept { return socket_; }
  bool is_open() const noexcept { return socket_.is_open(); }
  bool is_tls() const noexcept { return tls_ != nullptr; }
  TlsSession* tls() const noexcept { return tls_.get(); }

  // Puts a TLS session (made for this socket's descriptor) over the open socket; the
  // handshake comes next. REQUIRES: open, no TLS yet, no operation in flight.
  void start_tls(std::unique_ptr<TlsSession> session);

  // Runs the TLS handshake to its end. Error: of tls_category() (a refused certificate, no
  // shared protocol, plain HTTP...), or the socket's.
  template <class Token>
  auto async_handshake(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [this](auto handler) { tls_handshake(WaitHandler(std::move(handler))); }, token);
  }

  // Reads some bytes (of the first non-empty buffer when TLS). EOF is asio::error::eof.
  template <class MutableBufferSequence, class Token>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBufferSequence& b) {
          if (tls_) [[unlikely]]
            tls_read_some(first_buffer<boost::asio::mutable_buffer>(b), IoHandler(std::move(handler)));
          else
            socket_.async_read_some(b, std::move(handler));
        },
        token, buffers);
  }

  // Reads some bytes of a request's head into `buffer`, as async_read_some does. When they end
  // a head (plain) or a TLS record with nothing more queued, the socket is known drained,
  // so the next read of it waits for readiness without a receive that finds nothing: one system
  // call less per keep-alive request. What that costs: a peer's close that came with the head
  // is seen when the next readiness check is armed (Http1Session's linger ends), not at once.
  // Epoll only; elsewhere it is async_read_some.
  template <class Token>
  auto async_read_head(boost::asio::mutable_buffer buffer, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, boost::asio::mutable_buffer b) {
          if (tls_) [[unlikely]]
            tls_read_some(b, IoHandler(std::move(handler)), /*head=*/true);
          else
            socket_.async_read_some(HeadBuffer(b, HeadBuffer::Ends::Head), std::move(handler));
        },
        token, buffer);
  }

  // Reads some bytes of HTTP/2 frames, as async_read_some does; over TLS, whole records with
  // nothing more queued leave the socket known drained as in async_read_head (plain frames say
  // nothing: a buffer may start inside one). The same cost: a peer's close that came with the
  // last records is seen when something else looks (a write, a timeout), not by the next read.
  template <class Token>
  auto async_read_frames(boost::asio::mutable_buffer buffer, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, boost::asio::mutable_buffer b) {
          if (tls_)
            tls_read_some(b, IoHandler(std::move(handler)), /*head=*/true);
          else
            socket_.async_read_some(b, std::move(handler));
        },
        token, buffer);
  }

  // Writes some bytes; plain: one gathering send of the whole sequence; TLS: small buffers of
  // the sequence (a head and a body) go out together, in one record. Use asio::async_write to
  // write everything.
  template <class ConstBufferSequence, class Token>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBufferSequence& b) {
          if (tls_) [[unlikely]] {
            std::array<boost::asio::const_buffer, kTlsGather> parts;
            std::size_t n = 0;
            for (auto it = boost::asio::buffer_sequence_begin(b); it != boost::asio::buffer_sequence_end(b) && n < parts.size(); ++it)
              if (boost::asio::const_buffer part(*it); part.size() != 0) parts[n++] = part;
            tls_write_some(parts.data(), n, IoHandler(std::move(handler)));
          } else {
            socket_.async_write_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

  // Waits until the stream is readable (wait_read) or writable, without reading: an idle
  // connection holds no buffer while it waits.
  template <class Token>
  auto async_wait(socket_type::wait_type what, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [this](auto handler, socket_type::wait_type w) {
          if (tls_) [[unlikely]]
            tls_wait(w, WaitHandler(std::move(handler)));
          else
            socket_.async_wait(w, std::move(handler));
        },
        token, what);
  }

  // Ends the sending direction (plain: shutdown(SHUT_WR), the peer reads EOF); reading still
  // works. Completes with the shutdown's error, if any.
  template <class Token>
  auto async_shutdown(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [this](auto handler) {
          if (tls_) [[unlikely]]
            tls_shutdown(WaitHandler(std::move(handler)));
          else
            plain_shutdown(WaitHandler(std::move(handler)));
        },
        token);
  }

  // A write that needs no waiting, done at once: a plain socket takes what fits in one
  // non-blocking send (sendmsg with MSG_DONTWAIT), a TLS stream what OpenSSL writes in one
  // call (it writes to the non-blocking socket itself); most often all of it, with no
  // operation through the event loop and no suspension of the caller. Returns how many bytes
  // went out: 0 for a full socket or an error (the asynchronous write that carries the rest
  // then meets it). REQUIRES: no write in flight.
  std::size_t write_now(const boost::asio::const_buffer* parts, std::size_t n) noexcept;

  // Declares that nothing the peer sent can be waiting unread: call it right before sending a
  // whole request in one write, on a connection whose watch (below), kept since it was opened or
  // since its last answer ended, saw nothing, to a peer that speaks only when asked. The next read then waits for the socket
  // to become readable instead of first trying a receive that would find nothing: one system
  // call less per response. No effect on the io_uring backend.
  void expect_answer(const EventLoop& loop) noexcept;

  // Watches a connection while nothing reads it (between an answer and the next request):
  // start_idle_watch() has the event loop note any readiness of the socket from now on (bytes,
  // the peer's close, an error) at no cost of its own; a second start keeps the first watch.
  // end_idle_watch() ends it and says whether anything came, or may have (no watch, TLS bytes
  // left unread). REQUIRES: no read in flight meanwhile. close() and moves keep it right.
  // io_uring: always reports that something may have come.
  void start_idle_watch(const EventLoop& loop) noexcept;
  bool end_idle_watch(const EventLoop& loop) noexcept;

  // Whether a connection kept idle can carry another request: open, nothing unread and no EOF
  // or error pending. One non-blocking peek; never waits. A stale answer (e.g. a 408 sent while
  // idle) makes it false, so a reused connection never reads a response to no request.
  bool still_idle() noexcept;

  // Whether the peer's end (FIN) or a reset has come, from the TCP state: nothing is read, so
  // bytes that came before it stay to be read. One system call; false if it fails.
  bool peer_has_closed() noexcept;

  // Closes the socket and drops any TLS state at once (no close_notify). Operations in flight
  // complete with operation_aborted. Safe to call more than once.
  void close() noexcept;
  // TLS: sends close_notify if the socket takes it now (never waits), so that the peer sees
  // an orderly end rather than a truncation; then close(). Plain: close(). Only for a
  // connection whose last message was complete.
  void close_gracefully() noexcept;

 private:
  template <class Buffer, class Sequence>
  static Buffer first_buffer(const Sequence& seq) {
    for (auto it = boost::asio::buffer_sequence_begin(seq); it != boost::asio::buffer_sequence_end(seq); ++it)
      if (Buffer b(*it); b.size() != 0) return b;
    return Buffer();
  }

  void plain_shutdown(WaitHandler handler);
  void tls_read_some(boost::asio::mutable_buffer buffer, IoHandler handler, bool head = false);
  static constexpr std::size_t kTlsGather = 4;
  static constexpr std::size_t kTlsRecord = 16384;  // TLS's largest record payload
  void tls_write_some(const boost::asio::const_buffer* parts, std::size_t n, IoHandler handler);
  std::size_t tls_write_now(const boost::asio::const_buffer* parts, std::size_t n) noexcept;
  static boost::asio::const_buffer tls_gather(const boost::asio::const_buffer* parts, std::size_t n) noexcept;
  void tls_wait(socket_type::wait_type what, WaitHandler handler);
  void tls_shutdown(WaitHandler handler);
  void tls_handshake(WaitHandler handler);
  void drop_idle_watch() noexcept;  // lets go of the watch; its completion may come later

  struct TlsOps;  // stream.cc: the retrying steps of the tls_* operations
  friend struct TlsOps;

  socket_type socket_;
  std::unique_ptr<TlsSession> tls_;  // null: plain
  void* idle_watch_ = nullptr;       // stream.cc's IdleWatch while one is on the socket
};

}  // namespace gh::net

#if defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#include <boost/asio/detail/reactive_socket_recv_op.hpp>

namespace boost::asio::detail {

// The receive of a HeadBuffer: Asio's own receive, except that it reports the socket exhausted
// (which has the reactor queue the next read until the descriptor's next readiness event) when
// the HeadBuffer says the bytes drained it. The reactor notes that under the descriptor's lock
// right after the receive, before any later event of the socket is handled, so bytes that come
// after it always find a read tried or an event pending: none waits unseen.
template <>
class reactive_socket_recv_op_base<gh::net::HeadBuffer> : public reactor_op {
 public:
  reactive_socket_recv_op_base(const boost::system::error_code& success_ec, socket_type socket,
                               socket_ops::state_type state, const gh::net::HeadBuffer& buffer,
                               socket_base::message_flags flags, func_type complete_func)
      : reactor_op(success_ec, &do_perform, complete_func), socket_(socket), state_(state), buffer_(buffer), flags_(flags) {}

  static status do_perform(reactor_op* base) {
    auto* o = static_cast<reactive_socket_recv_op_base*>(base);
    const bool stream = (o->state_ & socket_ops::stream_oriented) != 0;
    if (!socket_ops::non_blocking_recv1(o->socket_, o->buffer_.data(), o->buffer_.size(), o->flags_, stream, o->ec_,
                                        o->bytes_transferred_))
      return not_done;
    if (stream && o->bytes_transferred_ == 0) return done_and_exhausted;  // end of file, as Asio's
    return !o->ec_ && o->buffer_.drained_by(o->bytes_transferred_) ? done_and_exhausted : done;
  }

 private:
  socket_type socket_;
  socket_ops::state_type state_;
  gh::net::HeadBuffer buffer_;
  socket_base::message_flags flags_;
};

}  // namespace boost::asio::detail
#endif
