#include "net/stream.h"

#include <boost/asio/append.hpp>
#include <boost/asio/post.hpp>

#include <sys/socket.h>

#include <cerrno>

#include "core/check.h"

namespace gh::net {

namespace asio = boost::asio;

// Placeholder until the TLS work: nothing constructs one, so every Stream is plain and the
// tls_* operations below are unreachable (they crash loudly rather than pretend).
class TlsSession {};

Stream::Stream(const executor_type& ex) : socket_(ex) {}
Stream::Stream(socket_type socket) : socket_(std::move(socket)) {}
Stream::Stream(Stream&&) noexcept = default;
Stream& Stream::operator=(Stream&&) noexcept = default;
Stream::~Stream() = default;

bool Stream::still_idle() noexcept {
  if (!socket_.is_open() || tls_) return false;
  char byte;
  ssize_t n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  // -1 with EAGAIN: nothing to read, the peer has not closed. 0: EOF. >0: unsolicited bytes.
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void Stream::close() noexcept {
  tls_.reset();
  boost::system::error_code ignored;
  socket_.close(ignored);
}

void Stream::plain_shutdown(WaitHandler handler) {
  boost::system::error_code ec;
  socket_.shutdown(socket_type::shutdown_send, ec);
  asio::post(socket_.get_executor(), asio::append(std::move(handler), ec));
}

void Stream::tls_read_some(asio::mutable_buffer, IoHandler) { GH_CHECK(!"no TLS session exists yet"); }
void Stream::tls_write_some(asio::const_buffer, IoHandler) { GH_CHECK(!"no TLS session exists yet"); }
void Stream::tls_wait(socket_type::wait_type, WaitHandler) { GH_CHECK(!"no TLS session exists yet"); }
void Stream::tls_shutdown(WaitHandler) { GH_CHECK(!"no TLS session exists yet"); }

}  // namespace gh::net
