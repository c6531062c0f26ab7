#include "net/stream.h"

#include <boost/asio/append.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#if defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/scheduler.hpp>
#define GH_EPOLL_SOCKETS 1
#endif

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <string>
#include <utility>

#include "core/check.h"
#include "core/fault.h"
#include "net/tls.h"

namespace gh::net {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// OpenSSL's error queue must be empty before an I/O call, or SSL_get_error may misread the
// call's result. Emptying it clears each of its 16 slots, about 400 instructions; looking
// first costs a quarter of that, and before an I/O call the queue is nearly always empty
// already (every failure empties it as it is read).
void clear_tls_errors() noexcept {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

}  // namespace

bool HeadBuffer::drained_by(std::size_t got) const noexcept {
  if (got >= size()) return false;  // the buffer filled: more may be queued
  const auto* p = static_cast<const unsigned char*>(data());
  if (ends_ == Ends::Head) return got >= 4 && std::memcmp(p + got - 4, "\r\n\r\n", 4) == 0;
  std::size_t at = 0;  // TLS records: a 5-byte header whose last two bytes are the length
  while (at + 5 <= got) at += 5 + (std::size_t{p[at + 3]} << 8 | p[at + 4]);
  return at == got;
}

Stream::Stream(const executor_type& ex) : socket_(ex) {}
Stream::Stream(socket_type socket) : socket_(std::move(socket)) {}
Stream::Stream(Stream&& o) noexcept
    : socket_(std::move(o.socket_)), tls_(std::move(o.tls_)), idle_watch_(std::exchange(o.idle_watch_, nullptr)) {}
Stream& Stream::operator=(Stream&& o) noexcept {
  if (this == &o) return *this;
  drop_idle_watch();
  socket_ = std::move(o.socket_);  // closing this socket completes its watch, if any
  tls_ = std::move(o.tls_);
  idle_watch_ = std::exchange(o.idle_watch_, nullptr);
  return *this;
}
Stream::~Stream() { drop_idle_watch(); }

bool Stream::still_idle() noexcept {
  if (!socket_.is_open()) return false;
  if (tls_) {
    // A TLS 1.3 server sends its session tickets after the handshake: records that carry no
    // data leave the connection idle; data, a close_notify or EOF do not.
    char byte;
    std::size_t n = 0;
    clear_tls_errors();
    int r = SSL_peek_ex(tls_->ssl(), &byte, 1, &n);
    if (r == 1) return false;
    int err = SSL_get_error(tls_->ssl(), r);
    ERR_clear_error();
    return err == SSL_ERROR_WANT_READ;
  }
  char byte;
  ssize_t n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  // -1 with EAGAIN: nothing to read, the peer has not closed. 0: EOF. >0: unsolicited bytes.
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

bool Stream::peer_has_closed() noexcept {
  // CLOSE_WAIT: the peer's FIN came (with or after any close_notify); CLOSE: a reset.
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return false;
  return info.tcpi_state == TCP_CLOSE_WAIT || info.tcpi_state == TCP_CLOSE;
}

#if GH_EPOLL_SOCKETS
namespace {

using asio::detail::epoll_reactor;
using asio::detail::reactor_op;
using asio::detail::scheduler;
using asio::detail::scheduler_operation;

// The socket's reactor state, which Asio keeps in the protected implementation of basic_socket.
struct SocketAccess : Stream::socket_type {
  static auto& impl(Stream::socket_type& s) noexcept { return s.*(&SocketAccess::impl_); }
};

// The ops come from operator new: in the gatehouse binary, its per-thread cache (an idle watch
// lives as long as its connection idles, longer than Asio's small handler cache keeps blocks).
// Null when memory runs out (or the fault point "stream_op_alloc" is on): the caller then goes
// without the mark or the watch, which costs a read tried at once, never a wrong answer.
template <class Op>
Op* new_op() noexcept {
  static const bool fail = GH_FAULT_ACTIVE("stream_op_alloc");
  if (fail) return nullptr;
  return new (std::nothrow) Op();
}

template <class Op>
void free_op(Op* op) {
  delete op;
}

// Asio's epoll reactor tries every new read at once and takes a socket as drained only when a
// receive returns end of file. This operation reads nothing: started with a read allowed to
// run at once, it reports the socket exhausted, so the reactor queues the next read until the
// descriptor's next readiness event instead of trying it first. Run later from an event (when
// queued behind another read), it reports nothing. Its completion only frees it.
class DrainedMark final : public reactor_op {
 public:
  DrainedMark() : reactor_op(error_code(), &perform, &complete) {}
  static inline thread_local bool starting = false;

 private:
  static status perform(reactor_op*) { return starting ? done_and_exhausted : done; }
  static void complete(void*, scheduler_operation* base, const error_code&, std::size_t) {
    free_op(static_cast<DrainedMark*>(base));
  }
};

// A read that never finishes: each readiness event of the socket performs it, which notes the
// event and leaves it queued. It is started as a read allowed to run at once (Asio re-arms the
// descriptor with epoll_ctl for any other); that first run notes nothing. Only cancellation or
// closing completes it. It is freed once both have happened: its completion, and its Stream
// letting go of it (release). It is not work: started, it gives back the count the reactor
// took, and takes it again when it completes, so an io_context with nothing else to do still
// stops.
class IdleWatch final : public reactor_op {
 public:
  IdleWatch() : reactor_op(error_code(), &perform, &complete) { cancellation_key_ = this; }
  bool disturbed = false;
  bool completed = false;
  static inline thread_local bool starting = false;

  static void release(IdleWatch* op) noexcept {
    if (op->completed) free_op(op);
    else op->released_ = true;
  }

 private:
  bool released_ = false;

  static status perform(reactor_op* base) {
    if (!starting) static_cast<IdleWatch*>(base)->disturbed = true;
    return not_done;
  }
  static void complete(void* owner, scheduler_operation* base, const error_code&, std::size_t) {
    if (owner) static_cast<scheduler*>(owner)->compensating_work_started();
    auto* op = static_cast<IdleWatch*>(base);
    if (op->released_) free_op(op);
    else op->completed = true;
  }
};

}  // namespace

EventLoop::EventLoop(asio::execution_context& context)
    : reactor_(&asio::use_service<epoll_reactor>(context)), scheduler_(&asio::use_service<scheduler>(context)) {}

void Stream::expect_answer(const EventLoop& loop) noexcept {
  auto& state = SocketAccess::impl(socket_).get_implementation();
  if (state.socket_ == asio::detail::invalid_socket || !state.reactor_data_) return;
  auto* op = new_op<DrainedMark>();
  if (!op) return;
  DrainedMark::starting = true;
  static_cast<epoll_reactor*>(loop.reactor_)
      ->start_op(epoll_reactor::read_op, state.socket_, state.reactor_data_, op, /*is_continuation=*/true,
                 /*allow_speculative=*/true);
  DrainedMark::starting = false;
}

void Stream::start_idle_watch(const EventLoop& loop) noexcept {
  auto& state = SocketAccess::impl(socket_).get_implementation();
  if (idle_watch_ || state.socket_ == asio::detail::invalid_socket || !state.reactor_data_) return;
  auto* op = new_op<IdleWatch>();
  if (!op) return;  // no watch: end_idle_watch then reports that nothing is known
  IdleWatch::starting = true;
  static_cast<epoll_reactor*>(loop.reactor_)
      ->start_op(epoll_reactor::read_op, state.socket_, state.reactor_data_, op, /*is_continuation=*/true,
                 /*allow_speculative=*/true);
  IdleWatch::starting = false;
  static_cast<scheduler*>(loop.scheduler_)->work_finished();
  idle_watch_ = op;
}

bool Stream::end_idle_watch(const EventLoop& loop) noexcept {
  auto* op = static_cast<IdleWatch*>(std::exchange(idle_watch_, nullptr));
  if (!op) return true;
  // Completed already: the reactor did not keep it (it is shutting down), so nothing is known.
  const bool disturbed = op->disturbed || op->completed || (tls_ && tls_->has_input());
  if (!op->completed) {
    auto& state = SocketAccess::impl(socket_).get_implementation();
    static_cast<epoll_reactor*>(loop.reactor_)
        ->cancel_ops_by_key(state.socket_, state.reactor_data_, epoll_reactor::read_op, op);
  }
  IdleWatch::release(op);
  return disturbed;
}

void Stream::drop_idle_watch() noexcept {
  if (auto* op = static_cast<IdleWatch*>(std::exchange(idle_watch_, nullptr))) IdleWatch::release(op);
}
#else
EventLoop::EventLoop(asio::execution_context&) {}
void Stream::expect_answer(const EventLoop&) noexcept {}
void Stream::start_idle_watch(const EventLoop&) noexcept {}
bool Stream::end_idle_watch(const EventLoop&) noexcept { return true; }
void Stream::drop_idle_watch() noexcept {}
#endif

std::size_t Stream::write_now(const asio::const_buffer* parts, std::size_t n) noexcept {
  if (!socket_.is_open()) return 0;
  if (tls_) return tls_write_now(parts, n);
  constexpr std::size_t kMaxParts = 8;
  iovec iov[kMaxParts];
  std::size_t count = 0;
  for (std::size_t i = 0; i < n && count < kMaxParts; ++i)
    if (parts[i].size() > 0) iov[count++] = {const_cast<void*>(parts[i].data()), parts[i].size()};
  if (count == 0) return 0;
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = count;
  const ssize_t sent = ::sendmsg(socket_.native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  return sent > 0 ? static_cast<std::size_t>(sent) : 0;
}

void Stream::close() noexcept {
  drop_idle_watch();  // closing the socket completes it
  tls_.reset();
  error_code ignored;
  socket_.close(ignored);
}

void Stream::close_gracefully() noexcept {
  if (tls_ && socket_.is_open() && SSL_is_init_finished(tls_->ssl()) == 1) {
    clear_tls_errors();
    SSL_shutdown(tls_->ssl());  // non-blocking: close_notify goes out if the socket has room
    ERR_clear_error();
  }
  close();
}

void Stream::start_tls(std::unique_ptr<TlsSession> session) {
  GH_CHECK(session && !tls_);
  error_code ignored;
  socket_.native_non_blocking(true, ignored);
  tls_ = std::move(session);
}

void Stream::plain_shutdown(WaitHandler handler) {
  error_code ec;
  socket_.shutdown(socket_type::shutdown_send, ec);
  asio::post(socket_.get_executor(), asio::append(std::move(handler), ec));
}

// Each TLS operation calls OpenSSL once; when OpenSSL needs the socket readable or writable
// first, it waits for that and calls again with the same arguments (as OpenSSL requires). The
// first attempt completes through a post (an Asio operation never completes inside its
// initiation); a retry already runs in a completion handler and completes directly.
struct Stream::TlsOps {
  // What an OpenSSL call that returned `ret` <= 0 means. `saved_errno`: errno right after it.
  static error_code failure(int ssl_err, int saved_errno) {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (ssl_err == SSL_ERROR_ZERO_RETURN) return asio::error::eof;
    if (ssl_err == SSL_ERROR_SYSCALL && e == 0)
      return saved_errno != 0 ? error_code(saved_errno, boost::system::system_category()) : error_code(asio::error::eof);
    if (e != 0) return error_code(static_cast<int>(e), tls_category());
    return asio::error::connection_reset;
  }

  // Waits as OpenSSL asked, then runs `again` (a retry); a cancelled or failed wait, or a
  // session closed meanwhile, completes `handler` with the error.
  template <class Handler, class Again>
  static void wait_then(Stream& s, int want, Handler handler, Again again) {
    auto slot = asio::get_associated_cancellation_slot(handler);
    s.socket_.async_wait(want == SSL_ERROR_WANT_READ ? socket_type::wait_read : socket_type::wait_write,
                         asio::bind_cancellation_slot(slot, [&s, h = std::move(handler), again](error_code ec) mutable {
                           if (!ec && !s.tls_) ec = asio::error::operation_aborted;
                           if (ec) return fail(std::move(h), ec);
                           again(s, std::move(h));
                         }));
  }
  static void fail(IoHandler h, error_code ec) { std::move(h)(ec, 0); }
  static void fail(WaitHandler h, error_code ec) { std::move(h)(ec); }

  // Completes a first attempt from the event loop's queue. A worker's sockets run on an
  // io_context, so it is posted there as a plain function that calls the handler: posting the
  // type-erased handler through any_io_executor would wrap the executor anew (three heap
  // allocations, then a dispatch to the handler's executor) on every TLS read and write that
  // OpenSSL finished at once. The handler's executor is that same loop's.
  template <class Handler, class... Args>
  static void complete_soon(Stream& s, Handler h, Args... args) {
    const auto& ex = s.socket_.get_executor();
    if (const auto* loop = ex.target<asio::io_context::executor_type>())
      return asio::post(*loop, [h = std::move(h), args...]() mutable { std::move(h)(args...); });
    asio::post(ex, asio::append(std::move(h), args...));
  }

  // OpenSSL reads only what was received for it here (TlsSession::lend): when it wants more,
  // the socket receives into the caller's buffer as a plain read does (one receive for every
  // record that has arrived; no re-arming of the descriptor to wait). A buffer too
  // small to receive a record's worth lets OpenSSL receive for itself, and waits for
  // readability when it must.
  static constexpr std::size_t kLendAtLeast = 1024;
  // `head`: a read of a request's head (async_read_head), whose first receive starts at a record.
  static void read(Stream& s, asio::mutable_buffer b, IoHandler h, bool retry, bool head = false) {
    TlsSession& t = *s.tls_;
    const bool lend = b.size() >= kLendAtLeast;
    // With nothing received waiting, OpenSSL could only ask for more: receive first, one
    // SSL_read (and its error-queue clearing, about 1,500 instructions) less per read. Nothing
    // waiting includes no part of a record (SSL_has_pending), so what comes starts one.
    if (lend && !retry && t.awaits_bytes()) return receive(s, b, std::move(h), head);
    std::size_t n = 0;
    clear_tls_errors();
    t.direct_reads(!lend);
    int r = SSL_read_ex(t.ssl(), b.data(), b.size(), &n);
    t.direct_reads(true);
    t.keep_rest();
    error_code ec;
    if (r != 1) {
      int saved = errno;
      int err = SSL_get_error(t.ssl(), r);
      if (err == SSL_ERROR_WANT_READ && lend) return receive(s, b, std::move(h));
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        return wait_then(s, err, std::move(h), [b](Stream& st, IoHandler hh) { read(st, b, std::move(hh), true); });
      ec = failure(err, saved);
      n = 0;
    }
    if (retry) std::move(h)(ec, n);
    else complete_soon(s, std::move(h), ec, n);
  }

  static void receive(Stream& s, asio::mutable_buffer b, IoHandler h, bool head = false) {
    auto slot = asio::get_associated_cancellation_slot(h);
    asio::mutable_buffer into(b.data(), std::min(b.size(), TlsSession::kMaxLend));
    auto done = asio::bind_cancellation_slot(slot, [&s, b, into, h = std::move(h)](error_code ec, std::size_t n) mutable {
      if (!s.tls_ && (!ec || ec == asio::error::eof)) ec = asio::error::operation_aborted;
      if (ec && ec != asio::error::eof) return fail(std::move(h), ec);
      s.tls_->lend(static_cast<const char*>(into.data()), ec ? 0 : n);
      read(s, b, std::move(h), true);
    });
    if (head) s.socket_.async_receive(HeadBuffer(into, HeadBuffer::Ends::TlsRecord), std::move(done));
    else s.socket_.async_receive(asio::buffer(into), std::move(done));
  }

  // `b` may be the thread's gather buffer, which another connection reuses while this one
  // waits: OpenSSL wants the same bytes again (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets them
  // move), so a wait keeps its own copy.
  static void write(Stream& s, asio::const_buffer b, IoHandler h, bool retry,
                    std::shared_ptr<std::string> kept = nullptr) {
    std::size_t n = 0;
    clear_tls_errors();
    int r = SSL_write_ex(s.tls_->ssl(), b.data(), b.size(), &n);
    error_code ec;
    if (r != 1) {
      int saved = errno;
      int err = SSL_get_error(s.tls_->ssl(), r);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        if (!kept) {
          kept = std::make_shared<std::string>(static_cast<const char*>(b.data()), b.size());
          b = asio::const_buffer(kept->data(), kept->size());
        }
        return wait_then(s, err, std::move(h),
                         [b, kept](Stream& st, IoHandler hh) { write(st, b, std::move(hh), true, kept); });
      }
      ec = failure(err, saved);
      n = 0;
    }
    if (retry) std::move(h)(ec, n);
    else complete_soon(s, std::move(h), ec, n);
  }

  static void handshake(Stream& s, WaitHandler h, bool retry) {
    clear_tls_errors();
    int r = SSL_do_handshake(s.tls_->ssl());
    error_code ec;
    if (r != 1) {
      int saved = errno;
      int err = SSL_get_error(s.tls_->ssl(), r);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        return wait_then(s, err, std::move(h), [](Stream& st, WaitHandler hh) { handshake(st, std::move(hh), true); });
      ec = failure(err, saved);
      if (ec == asio::error::eof) ec = asio::error::connection_reset;  // a handshake cut short is no clean end
    }
    if (retry) std::move(h)(ec);
    else complete_soon(s, std::move(h), ec);
  }

  // Sends close_notify, then ends the TCP sending direction; reading goes on.
  static void shutdown(Stream& s, WaitHandler h, bool retry) {
    clear_tls_errors();
    int r = SSL_shutdown(s.tls_->ssl());
    error_code ec;
    if (r < 0) {
      int saved = errno;
      int err = SSL_get_error(s.tls_->ssl(), r);
      if (err == SSL_ERROR_WANT_WRITE)
        return wait_then(s, err, std::move(h), [](Stream& st, WaitHandler hh) { shutdown(st, std::move(hh), true); });
      if (err != SSL_ERROR_WANT_READ) ec = failure(err, saved);
      ERR_clear_error();
    }
    error_code tcp;
    s.socket_.shutdown(socket_type::shutdown_send, tcp);
    if (!ec) ec = tcp;
    if (retry) std::move(h)(ec);
    else complete_soon(s, std::move(h), ec);
  }
};

void Stream::tls_read_some(asio::mutable_buffer buffer, IoHandler handler, bool head) {
  if (buffer.size() == 0) return asio::post(socket_.get_executor(), asio::append(std::move(handler), error_code(), 0));
  TlsOps::read(*this, buffer, std::move(handler), false, head);
}

asio::const_buffer Stream::tls_gather(const asio::const_buffer* parts, std::size_t n) noexcept {
  // Several parts (a response head and its body): those that fit in one TLS record are copied
  // together, so they go out in one record and one send instead of one each. The same parts
  // always gather the same way: a write OpenSSL could not finish is retried with the same bytes.
  std::size_t total = parts[0].size(), k = 1;
  while (k < n && total + parts[k].size() <= kTlsRecord) total += parts[k++].size();
  if (k == 1) return parts[0];
  thread_local std::array<char, kTlsRecord> gather;
  std::size_t at = 0;
  for (std::size_t i = 0; i < k; ++i) {
    if (parts[i].size() > 0) std::memcpy(gather.data() + at, parts[i].data(), parts[i].size());
    at += parts[i].size();
  }
  return asio::const_buffer(gather.data(), total);
}

void Stream::tls_write_some(const asio::const_buffer* parts, std::size_t n, IoHandler handler) {
  if (n == 0) return asio::post(socket_.get_executor(), asio::append(std::move(handler), error_code(), 0));
  TlsOps::write(*this, tls_gather(parts, n), std::move(handler), false);
}

std::size_t Stream::tls_write_now(const asio::const_buffer* parts, std::size_t n) noexcept {
  // The non-empty parts, as async_write_some takes them: a write OpenSSL cannot finish now is
  // retried there with the same bytes.
  std::array<asio::const_buffer, kTlsGather> kept;
  std::size_t k = 0;
  for (std::size_t i = 0; i < n && k < kept.size(); ++i)
    if (parts[i].size() != 0) kept[k++] = parts[i];
  if (k == 0) return 0;
  const asio::const_buffer b = tls_gather(kept.data(), k);
  std::size_t written = 0;
  clear_tls_errors();
  if (SSL_write_ex(tls_->ssl(), b.data(), b.size(), &written) == 1) return written;
  // Nothing taken that is not taken again: OpenSSL wants the same bytes once the socket has
  // room (the asynchronous write that follows sends them), or the write failed (it meets the
  // error again).
  ERR_clear_error();
  return 0;
}

void Stream::tls_wait(socket_type::wait_type what, WaitHandler handler) {
  // Bytes already received (decrypted or not) make the stream readable whatever the socket says.
  if (what == socket_type::wait_read && tls_->has_input())
    return asio::post(socket_.get_executor(), asio::append(std::move(handler), error_code()));
  socket_.async_wait(what, std::move(handler));
}

void Stream::tls_shutdown(WaitHandler handler) { TlsOps::shutdown(*this, std::move(handler), false); }

void Stream::tls_handshake(WaitHandler handler) {
  if (!tls_) return asio::post(socket_.get_executor(), asio::append(std::move(handler), error_code(asio::error::bad_descriptor)));
  TlsOps::handshake(*this, std::move(handler), false);
}

}  // namespace gh::net
