#include "harness/upstream.h"

#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <system_error>

namespace gh::integ {

namespace {

constexpr std::string_view kHealthPath = "/health";

}  // namespace

Reply Reply::text(std::string body, int status) {
  Reply r;
  r.status = status;
  r.reason = status == 200 ? "OK" : "Status";
  r.headers.add("Content-Type", "text/plain");
  r.body = std::move(body);
  return r;
}

Upstream::Upstream(std::string name) : name_(std::move(name)) {
  handler_ = named();
  start();
}

Upstream::~Upstream() { stop(); }

Handler Upstream::named() const {
  std::string n = name_;
  return [n](const Request&) { return Reply::text(n); };
}

Handler Upstream::echo_body() {
  return [](const Request& req) {
    Reply r;
    r.headers.add("Content-Type", "application/octet-stream");
    r.body = req.body;
    return r;
  };
}

void Upstream::set_handler(Handler h) {
  std::lock_guard lock(mu_);
  handler_ = std::move(h);
}

std::vector<Request> Upstream::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

std::size_t Upstream::request_count() const {
  std::lock_guard lock(mu_);
  return requests_.size();
}

bool Upstream::wait_requests(std::size_t n, Millis timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}

void Upstream::clear() {
  std::lock_guard lock(mu_);
  requests_.clear();
  heads_seen_ = 0;
  bodies_aborted_ = 0;
}

void Upstream::start() {
  if (running_) return;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port_));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // A restart may race the kernel releasing the old socket: retry briefly.
  bool bound = eventually([&] { return ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0; }, 2s);
  if (!bound || ::listen(fd, 512) != 0) {
    ::close(fd);
    throw std::runtime_error("upstream: cannot listen on port " + std::to_string(port_));
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  listen_fd_ = fd;
  stopping_ = false;
  running_ = true;
  acceptor_ = std::thread([this] { accept_loop(); });
}

void Upstream::stop() {
  if (!running_) return;
  stopping_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  ::close(listen_fd_);
  listen_fd_ = -1;
  std::vector<Worker> workers;
  {
    std::lock_guard lock(mu_);
    for (int fd : live_fds_) ::shutdown(fd, SHUT_RDWR);
    workers.swap(workers_);
  }
  for (Worker& w : workers) w.thread.join();
  running_ = false;
}

void Upstream::accept_loop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ++accepted_;
    std::vector<Worker> finished;
    std::lock_guard lock(mu_);
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (it->done->load()) {
        finished.push_back(std::move(*it));
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
    for (Worker& w : finished) w.thread.join();
    auto done = std::make_shared<std::atomic<bool>>(false);
    live_fds_.insert(fd);
    try {
      workers_.push_back({std::thread([this, fd, done] {
                            serve(fd);
                            *done = true;
                          }),
                          done});
    } catch (const std::system_error&) {  // out of threads: refuse this connection
      live_fds_.erase(fd);
      ::close(fd);
    }
  }
}

namespace {

// Reads more bytes into BUF; false on EOF, error or stop.
bool read_more(int fd, std::string& buf, const std::atomic<bool>& stopping) {
  while (!stopping) {
    pollfd p{fd, POLLIN, 0};
    int rc = ::poll(&p, 1, 20);
    if (rc == 0) continue;
    if (rc < 0) return errno == EINTR;
    char chunk[65536];
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buf.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  return false;
}

bool write_all(int fd, std::string_view bytes, const std::atomic<bool>& stopping) {
  while (!bytes.empty() && !stopping) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 20);
      continue;
    }
    return false;
  }
  return bytes.empty();
}

}  // namespace

void Upstream::serve(int fd) {
  std::string buf;
  while (!stopping_ && handle_one(fd, buf)) {
  }
  std::lock_guard lock(mu_);
  live_fds_.erase(fd);
  ::close(fd);
  ++closed_;
}

bool Upstream::handle_one(int fd, std::string& buf) {
  Request req;
  std::size_t head_len = 0;
  for (;;) {
    Parse p = parse_request_head(buf, req, head_len);
    if (p == Parse::Invalid) return false;
    if (p == Parse::Done) break;
    if (!read_more(fd, buf, stopping_)) return false;
  }
  buf.erase(0, head_len);
  const bool health = req.method == "GET" && req.target == kHealthPath;
  if (!health) ++heads_seen_;

  if (iequals(req.headers.value_or("Expect", ""), "100-continue")) {
    if (!write_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", stopping_)) return false;
  }
  if (req.chunked) {
    ChunkedDecoder d;
    for (;;) {
      Parse p = d.feed(buf);
      if (p == Parse::Done) break;
      if (p == Parse::Invalid || !read_more(fd, buf, stopping_)) {
        if (!health) ++bodies_aborted_;
        return false;
      }
    }
    req.body = std::move(d.body);
    buf.erase(0, d.pos);
  } else if (auto cl = req.headers.get("Content-Length")) {
    std::size_t n = 0;
    auto [ptr, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), n);
    if (ec != std::errc{} || ptr != cl->data() + cl->size()) return false;
    while (buf.size() < n) {
      if (!read_more(fd, buf, stopping_)) {
        if (!health) ++bodies_aborted_;
        return false;
      }
    }
    req.body = buf.substr(0, n);
    buf.erase(0, n);
  }

  Reply reply;
  if (health) {
    ++health_probes_;
    reply = healthy_ ? Reply::text("{\"status\":\"ok\"}") : Reply::text("{\"status\":\"down\"}", 500);
  } else {
    Handler h;
    {
      std::lock_guard lock(mu_);
      requests_.push_back(req);
      h = handler_;
    }
    cv_.notify_all();
    reply = h(req);
  }

  const auto until = Clock::now() + reply.delay;
  while (!stopping_ && Clock::now() < until) std::this_thread::sleep_for(5ms);
  if (stopping_) return false;

  if (reply.reset) {
    linger l{1, 0};  // close() now sends RST, not FIN
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    return false;
  }
  if (reply.raw) {
    write_all(fd, *reply.raw, stopping_);
    ::shutdown(fd, SHUT_WR);
    std::string sink;  // let the peer see a clean close rather than a reset
    for (int i = 0; i < 50 && read_more(fd, sink, stopping_); ++i) sink.clear();
    return false;
  }

  std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " " + reply.reason + "\r\n";
  for (const Header& h : reply.headers.list()) out += h.name + ": " + h.value + "\r\n";
  const bool bodiless = req.method == "HEAD" || reply.status == 204 || reply.status == 304;
  if (reply.upgrade || reply.status == 204 || reply.status == 304) {
    out += "\r\n";
  } else if (reply.chunked) {
    out += "Transfer-Encoding: chunked\r\n\r\n";
    if (!bodiless) out += chunk_encode(reply.body, 16384);
  } else {
    out += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n\r\n";
    if (!bodiless) out += reply.body;
  }
  if (!write_all(fd, out, stopping_)) return false;
  if (reply.upgrade) {  // the connection is now a byte stream: echo it
    if (!buf.empty() && !write_all(fd, buf, stopping_)) return false;
    for (std::string chunk; read_more(fd, chunk, stopping_); chunk.clear()) {
      if (!write_all(fd, chunk, stopping_)) break;
    }
    if (!reply.after_eof.empty()) write_all(fd, reply.after_eof, stopping_);
    return false;
  }
  const bool client_close = iequals(req.headers.value_or("Connection", ""), "close");
  return !(reply.close || client_close);
}

}  // namespace gh::integ
