#include "harness/net.h"

#include <arpa/inet.h>
#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <mutex>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <unordered_set>

namespace gh::integ {

namespace {

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

int bound_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = loopback(0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

// The kernel may hand the same free port to two binds in a row once the first socket is closed,
// so a test asking for a listener port and an admin port could get one port twice. Ports given
// out once in this process are never given again.
int free_port() {
  static std::mutex mutex;
  static std::unordered_set<int> given;
  std::lock_guard lock(mutex);
  for (int attempt = 0; attempt < 64; ++attempt) {
    int port = bound_port();
    if (port < 0) return -1;
    if (given.insert(port).second) return port;
  }
  return -1;
}

int connect_to(int port, Millis timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  sockaddr_in a = loopback(port);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  if (rc != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  if (rc != 0) {
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1 ||
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      ::close(fd);
      return -1;
    }
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool wait_for_port(int port, Millis timeout) {
  return eventually(
      [&] {
        int fd = connect_to(port, 200ms);
        if (fd < 0) return false;
        ::close(fd);
        return true;
      },
      timeout, 10ms);
}

Conn::Conn(int port, Millis timeout) : fd_(connect_to(port, timeout)) {}

Conn::~Conn() {
  if (fd_ >= 0) ::close(fd_);
}

bool Conn::send(std::string_view bytes, Millis timeout) {
  if (fd_ < 0) return false;
  const auto deadline = Clock::now() + timeout;
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, remaining_ms(deadline)) <= 0) return false;
      if (p.revents & (POLLERR | POLLHUP)) return false;
      continue;
    }
    return false;
  }
  return true;
}

bool Conn::fill(Clock::time_point deadline) {
  if (fd_ < 0 || eof_) return false;
  pollfd p{fd_, POLLIN, 0};
  int rc = ::poll(&p, 1, remaining_ms(deadline));
  if (rc <= 0) return false;
  char chunk[65536];
  ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
  if (n > 0) {
    buf_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  if (n == 0 || (errno != EAGAIN && errno != EINTR)) eof_ = true;  // EOF or reset
  return true;
}

std::optional<Response> Conn::read_response(Millis timeout, bool head_request) {
  const auto deadline = Clock::now() + timeout;
  // Re-parsing a growing multi-MiB buffer on every read would be quadratic: parse again only
  // when the buffer has doubled, the peer paused, or the stream ended.
  std::size_t parsed_at = 0;
  bool parse_now = true;
  for (;;) {
    if (parse_now || eof_) {
      Response r;
      std::size_t used = 0;
      Parse p = parse_response(buf_, eof_, head_request, r, used);
      if (p == Parse::Done) {
        buf_.erase(0, used);
        return r;
      }
      if (p == Parse::Invalid) {
        garbage_ = !buf_.empty();
        return std::nullopt;
      }
      parsed_at = buf_.size();
    }
    if (eof_ || Clock::now() >= deadline) return std::nullopt;
    const std::size_t before = buf_.size();
    fill(std::min(deadline, Clock::now() + 20ms));
    const bool paused = buf_.size() == before;
    parse_now = paused || buf_.size() >= 2 * parsed_at || buf_.size() < 65536;
  }
}

bool Conn::wait_closed(Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!eof_) {
    if (Clock::now() >= deadline) return false;
    if (!fill(deadline) && !eof_) return false;
  }
  return true;
}

bool Conn::wait_for(std::string_view needle, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (buf_.find(needle) == std::string::npos) {
    if (eof_ || Clock::now() >= deadline) return false;
    fill(deadline);
  }
  return true;
}

bool Conn::silent_for(Millis duration) {
  const auto deadline = Clock::now() + duration;
  std::size_t before = buf_.size();
  while (Clock::now() < deadline && !eof_) fill(deadline);
  return !eof_ && buf_.size() == before;
}

void Conn::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void Conn::hold_sends() {
  const int on = 1;
  if (fd_ >= 0) ::setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
}

std::string make_request(std::string_view method, std::string_view target, const Headers& extra,
                         std::string_view body, std::string_view host) {
  std::string s;
  s.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  if (!host.empty()) s.append("Host: ").append(host).append("\r\n");
  for (const Header& h : extra.list()) s += h.name + ": " + h.value + "\r\n";
  const bool framed = extra.has("Content-Length") || extra.has("Transfer-Encoding");
  if (!framed && (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")) {
    s += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  s += "\r\n";
  s.append(body);
  return s;
}

Response roundtrip(int port, std::string_view bytes, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  Conn c(port);
  if (!c.ok()) return {};
  c.send(bytes, timeout);  // a peer may answer and close before taking every byte
  for (;;) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (left <= 0ms) return {};
    auto r = c.read_response(left);
    if (!r) return {};
    if (r->status / 100 != 1 || r->status == 101) return *r;
  }
}

Response http_get(int port, std::string_view target, const Headers& extra) {
  return roundtrip(port, make_request("GET", target, extra));
}

Response http_request(int port, std::string_view method, std::string_view target, const Headers& extra,
                      std::string_view body) {
  return roundtrip(port, make_request(method, target, extra, body));
}

}  // namespace gh::integ
