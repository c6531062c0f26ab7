// Connections: bodiless statuses keep the stream in step, pooled connections the service closed
// are not reused blindly, many clients at once, WebSocket upgrades, idle timeout (SPEC §2, §3).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "harness/assertions.h"
#include "harness/tls.h"

namespace gh::integ {
namespace {

using namespace std::string_literals;

std::string one_service(const Upstream& up, const std::string& top = "") {
  return fill(R"(
{TOP}
services:
  svc: {instances: ["{U}"]}
routes:
  - path: /
    service: svc
)",
              {{"TOP", top}, {"U", up.url()}});
}

TEST(Connections, BodilessStatusesKeepTheConnectionInStep) {
  Upstream up("svc");
  up.set_handler([](const Request& r) {
    if (r.target == "/204") return Reply::text("", 204);
    if (r.target == "/304") {
      Reply reply;
      reply.status = 304;
      reply.reason = "Not Modified";
      reply.headers.add("ETag", "\"v1\"");
      return reply;
    }
    return Reply::text("after " + r.target);
  });
  Gateway gw(one_service(up));
  GH_START(gw);
  Conn c(gw.port());
  for (const char* path : {"/204", "/x", "/304", "/y"}) {
    ASSERT_TRUE(c.send(make_request("GET", path)));
    auto r = c.read_response();
    ASSERT_TRUE(r) << path;
    if (std::string(path) == "/204") {
      EXPECT_EQ(r->status, 204);
    } else if (std::string(path) == "/304") {
      EXPECT_EQ(r->status, 304);
      EXPECT_EQ(r->headers.value_or("ETag", ""), "\"v1\"");
    } else {
      EXPECT_EQ(r->body, std::string("after ") + path);
    }
  }
  EXPECT_TRUE(c.silent_for(100ms)) << "stray bytes after the responses: " << c.pending();
}

TEST(Connections, PooledConnectionClosedByTheServiceIsNotAFailure) {
  Upstream up("svc");
  up.set_handler([](const Request& r) {
    Reply reply = Reply::text("ok " + r.method);
    reply.close = true;  // closes after each answer, without saying so
    return reply;
  });
  Gateway gw(one_service(up));
  GH_START(gw);
  for (int i = 0; i < 10; ++i) {
    // Wait until the service has closed every connection the gateway may have pooled.
    ASSERT_TRUE(eventually([&] { return up.connections_closed() == up.connections_accepted(); }, 2s));
    const bool post = i % 2 == 1;
    auto r = post ? http_request(gw.port(), "POST", "/p", {}, "body") : http_get(gw.port(), "/g");
    EXPECT_EQ(r.status, 200) << "request " << i << (post ? " (POST)" : " (GET)") << ":\n" << r.describe();
  }
  EXPECT_EQ(up.request_count(), 10u);
}

// Every path to the one instance at URL, with its response timeout.
std::string service_at(const std::string& url, const std::string& response_timeout) {
  return fill(R"(
services:
  svc:
    instances: ["{U}"]
    timeouts: {response: {T}}
routes:
  - path: /
    service: svc
)",
              {{"U", url}, {"T", response_timeout}});
}

// A loopback service on raw sockets, for behaviours the harness's Upstream does not have: one
// thread per connection runs SERVE(fd), which closes fd and should end soon once stopping().
// Its owner declares it after what SERVE uses, so that it stops first.
class RawService {
 public:
  explicit RawService(std::function<void(int)> serve) : serve_(std::move(serve)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listener_, 16) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("raw service: cannot listen");
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] {
      while (!stop_) {
        pollfd p{listener_, POLLIN, 0};
        if (::poll(&p, 1, 50) != 1) continue;
        const int fd = ::accept(listener_, nullptr, nullptr);
        if (fd < 0) continue;
        ++connections_;
        served_.emplace_back([this, fd] { serve_(fd); });
      }
    });
  }
  ~RawService() {
    stop_ = true;
    acceptor_.join();
    for (auto& t : served_) t.join();
    ::close(listener_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_; }
  bool stopping() const { return stop_; }

 private:
  std::function<void(int)> serve_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread acceptor_;
  std::vector<std::thread> served_;
};

// A service that ends an idle keep-alive connection the way a lingering close does (Apache's,
// for one): shutdown(SHUT_WR) after 300 ms without a request, then it reads and discards what
// still comes for a while, then close(). After its FIN nothing it does raises a new event at
// the gateway, so a request sent there would wait for an answer that never comes.
class LingeringService {
 public:
  std::string url() const { return raw_.url(); }
  int requests() const { return requests_; }
  int connections() const { return raw_.connections(); }

 private:
  void serve(int fd) {
    char buf[4096];
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 300) != 1) break;  // idle: end the connection
      std::string req;
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
          ::close(fd);
          return;
        }
        req.append(buf, static_cast<std::size_t>(n));
      }
      ++requests_;
      const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
      if (::write(fd, answer.data(), answer.size()) != static_cast<ssize_t>(answer.size())) break;
    }
    ::shutdown(fd, SHUT_WR);
    for (;;) {  // linger: read and discard until the gateway closes, or 2 s of silence
      pollfd p{fd, POLLIN, 0};
      if (raw_.stopping() || ::poll(&p, 1, 2000) != 1 || ::read(fd, buf, sizeof buf) <= 0) break;
    }
    ::close(fd);
  }

  std::atomic<int> requests_{0};
  RawService raw_{[this](int fd) { serve(fd); }};
};

// A request after the service half-closed the pooled connection goes on a new one at once.
void expect_lingering_not_waited_on(Gateway::Options options) {
  LingeringService svc;
  options.workers = 1;
  Gateway gw(service_at(svc.url(), "5s"), std::move(options));
  GH_START(gw);
  auto first = http_get(gw.port(), "/one");
  ASSERT_EQ(first.status, 200) << first.describe();
  std::this_thread::sleep_for(std::chrono::milliseconds(700));  // the service half-closes at 300 ms
  const auto t0 = std::chrono::steady_clock::now();
  auto second = http_get(gw.port(), "/two");
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(second.status, 200) << second.describe();
  EXPECT_LT(took, std::chrono::seconds(2)) << "the gateway waited on a connection the service had ended";
  EXPECT_EQ(svc.connections(), 2) << "the second request goes on a new connection";
}

TEST(Connections, PooledConnectionALingeringServiceHalfClosedIsNotWaitedOn) {
  expect_lingering_not_waited_on(Gateway::Options{});
}

// A service that reads each request head and never answers; it notes when the gateway closes
// the connection (EOF or reset), as a service whose work is cancelled sees it.
class SilentService {
 public:
  std::string url() const { return raw_.url(); }
  int heads() const { return heads_; }
  int closed_by_gateway() const { return closed_; }

 private:
  void serve(int fd) {
    char buf[4096];
    std::string req;
    while (!raw_.stopping() && req.find("\r\n\r\n") == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) != 1) continue;
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      req.append(buf, static_cast<std::size_t>(n));
    }
    if (req.find("\r\n\r\n") != std::string::npos) {
      ++heads_;
      while (!raw_.stopping()) {  // no answer: wait for the gateway to give up on the request
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) != 1) continue;
        if (::read(fd, buf, sizeof buf) <= 0) {
          ++closed_;
          break;
        }
      }
    }
    ::close(fd);
  }

  std::atomic<int> heads_{0}, closed_{0};
  RawService raw_{[this](int fd) { serve(fd); }};
};

// A client that closes its connection while the service works on its request: the gateway
// notices (within a tick or two of its 100 ms sweep), closes the service's connection so its
// work stops, and logs the request 499 client_gone, as nginx does. Long before the response
// timeout.
// After its client left: the first request SVC holds, to PATH, has its service connection
// closed within 2 s and is logged 499 client_gone.
void expect_request_cancelled(const SilentService& svc, const Gateway& gw, const std::string& path) {
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(eventually([&] { return svc.closed_by_gateway() == 1; }, 3s))
      << "the service's connection stayed open after the client left";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_TRUE(eventually([&] {
    const std::string log = gw.access_log_text();
    return log.find("\"" + path + "\"") != std::string::npos && log.find("499") != std::string::npos &&
           log.find("client_gone") != std::string::npos;
  })) << "access log:\n" << gw.access_log_text();
}

TEST(Connections, AClientThatClosesWhileTheServiceWorksCancelsTheRequest) {
  SilentService svc;
  Gateway gw(service_at(svc.url(), "20s"), Gateway::Options{.workers = 1, .access_log_file = true});
  GH_START(gw);
  {
    Conn c(gw.port());
    ASSERT_TRUE(c.send(make_request("GET", "/slow-work")));
    ASSERT_TRUE(eventually([&] { return svc.heads() == 1; })) << gw.diagnostics();
    std::this_thread::sleep_for(std::chrono::milliseconds(250));  // the watch is on by now
  }  // the client closes
  expect_request_cancelled(svc, gw, "/slow-work");

  // Closed before the first tick has looked: noticed all the same (the first look peeks).
  {
    Conn c(gw.port());
    ASSERT_TRUE(c.send(make_request("GET", "/slow-work-2")));
    ASSERT_TRUE(eventually([&] { return svc.heads() == 2; })) << gw.diagnostics();
  }
  EXPECT_TRUE(eventually([&] { return svc.closed_by_gateway() == 2; }, 3s));

  // A half-close after the request counts as leaving too (as in nginx): nobody answers it.
  Conn c(gw.port());
  ASSERT_TRUE(c.send(make_request("GET", "/slow-work-3")));
  c.shutdown_write();
  EXPECT_TRUE(eventually([&] { return svc.closed_by_gateway() == 3; }, 3s));
  EXPECT_TRUE(c.wait_closed(3s));
  EXPECT_EQ(c.pending(), "") << "an answer went to a client taken for gone";
}

// The gateway's TLS listener on {PORT}, with a certificate for 127.0.0.1, one worker and an
// access log; SERVICES_YAML after it.
struct TlsFront {
  TempDir dir;
  Pki pki{dir.path()};
  CertFiles cert = pki.issue("gateway", [] {
    CertSpec spec;
    spec.ips = {"127.0.0.1"};
    return spec;
  }());

  std::string config(const std::string& services_yaml) const {
    return fill(R"(listen:
  - address: "127.0.0.1:{PORT}"
    tls: {cert: "{C}", key: "{K}"}
workers: 1
access_log: "{ACCESS_LOG}"
)",
                {{"C", cert.cert}, {"K", cert.key}}) +
           services_yaml;
  }
};

// Over TLS too: what the client sends cannot be read without taking it from the request's
// reader, so its FIN or reset, seen in the TCP state, is what leaving means.
TEST(Connections, ATlsClientThatClosesWhileTheServiceWorksCancelsTheRequest) {
  SilentService svc;
  TlsFront front;
  Gateway gw(front.config(service_at(svc.url(), "20s")), Gateway::Options{.workers = 1, .add_header = false});
  GH_START(gw);
  {
    TlsClient c(gw.port(), TlsOptions{});
    ASSERT_TRUE(c.ok()) << c.error();
    ASSERT_TRUE(c.send(make_request("GET", "/slow-work")));
    ASSERT_TRUE(eventually([&] { return svc.heads() == 1; })) << gw.diagnostics();
    std::this_thread::sleep_for(std::chrono::milliseconds(250));  // the watch is on by now
  }  // close_notify, then the TCP close
  expect_request_cancelled(svc, gw, "/slow-work");

  // Gone without close_notify, before the first tick has looked: the same.
  {
    TlsClient c(gw.port(), TlsOptions{});
    ASSERT_TRUE(c.ok()) << c.error();
    ASSERT_TRUE(c.send(make_request("GET", "/slow-work-2")));
    ASSERT_TRUE(eventually([&] { return svc.heads() == 2; })) << gw.diagnostics();
    c.drop();
  }
  EXPECT_TRUE(eventually([&] { return svc.closed_by_gateway() == 2; }, 3s));
}

// A service that answers "answer to TARGET" after 450 ms.
void answer_slowly(Upstream& up) {
  up.set_handler([](const Request& r) {
    Reply reply = Reply::text("answer to " + r.target);
    reply.delay = std::chrono::milliseconds(450);
    return reply;
  });
}

// Over C (a Conn or a TlsClient): a request waited for, then one sent while the first is at the
// service and a third pipelined 250 ms later (two ticks look at the socket meanwhile); every
// answer comes, in order.
template <class Client>
void expect_waiting_and_pipelining_answered(Client& c) {
  ASSERT_TRUE(c.send(make_request("GET", "/one")));
  auto r = c.read_response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "answer to /one");
  ASSERT_TRUE(c.send(make_request("GET", "/two")));
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  ASSERT_TRUE(c.send(make_request("GET", "/three")));
  for (const char* path : {"/two", "/three"}) {
    r = c.read_response(5s);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_EQ(r->body, std::string("answer to ") + path);
  }
}

// A TLS client that waits, or pipelines its next request while one is at the service, is
// answered: its bytes are no sign of leaving, and the watch leaves them to the next read.
TEST(Connections, ATlsClientThatWaitsOrPipelinesIsAnswered) {
  Upstream up("svc");
  answer_slowly(up);
  TlsFront front;
  Gateway gw(front.config(one_service(up)), Gateway::Options{.workers = 1, .add_header = false});
  GH_START(gw);
  TlsClient c(gw.port(), TlsOptions{});
  ASSERT_TRUE(c.ok()) << c.error();
  expect_waiting_and_pipelining_answered(c);
}

// A client that waits, or pipelines its next request meanwhile, is never taken for gone.
TEST(Connections, AClientThatWaitsOrPipelinesIsAnswered) {
  Upstream up("svc");
  answer_slowly(up);
  Gateway gw(one_service(up));
  GH_START(gw);
  Conn c(gw.port());
  expect_waiting_and_pipelining_answered(c);
}

// With no memory for the event loop's watches (the fault point makes each allocation of one
// fail), connections go without them: a pooled connection the service ended, a client that
// leaves, a client that waits or pipelines are all handled as with them, by looking at once.
TEST(Connections, WithoutMemoryForWatchesEveryCaseIsStillRight) {
  const Env faults = {{"GATEHOUSE_FAULTS", "stream_op_alloc"}};
  expect_lingering_not_waited_on(Gateway::Options{.env = faults});

  SilentService svc;
  Gateway gw(service_at(svc.url(), "20s"), Gateway::Options{.workers = 1, .access_log_file = true, .env = faults});
  GH_START(gw);
  {
    Conn c(gw.port());
    ASSERT_TRUE(c.send(make_request("GET", "/slow-work")));
    ASSERT_TRUE(eventually([&] { return svc.heads() == 1; })) << gw.diagnostics();
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  expect_request_cancelled(svc, gw, "/slow-work");

  Upstream up("svc");
  answer_slowly(up);
  Gateway slow(one_service(up), Gateway::Options{.env = faults});
  GH_START(slow);
  Conn c(slow.port());
  expect_waiting_and_pipelining_answered(c);
}

TEST(Connections, ManyClientsAtOnce) {
  Upstream a("instance-1"), b("instance-2");
  a.set_handler(Upstream::echo_body());
  b.set_handler(Upstream::echo_body());
  Gateway gw(fill(R"(
services:
  svc: {instances: ["{A}", "{B}"]}
routes:
  - path: /
    service: svc
)",
                  {{"A", a.url()}, {"B", b.url()}}));
  GH_START(gw);
  std::atomic<int> ok{0};
  std::mutex mu;
  std::string first_failure;
  std::vector<std::thread> clients;
  for (int t = 0; t < 32; ++t) {
    clients.emplace_back([&, t] {
      Conn c(gw.port());
      for (int i = 0; i < 25; ++i) {
        const std::string body = "client " + std::to_string(t) + " request " + std::to_string(i);
        std::optional<Response> r;
        if (c.send(make_request("POST", "/c", {}, body))) r = c.read_response(10s);
        if (r && r->status == 200 && r->body == body) {
          ++ok;
        } else {
          std::lock_guard lock(mu);
          if (first_failure.empty()) first_failure = r ? r->describe() : "no response";
          return;
        }
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(ok.load(), 32 * 25) << first_failure;
  EXPECT_EQ(a.request_count() + b.request_count(), 32u * 25u);
}

TEST(Connections, WebSocketUpgradePassesThrough) {
  Upstream up("ws");
  up.set_handler([](const Request&) {
    Reply r;
    r.status = 101;
    r.reason = "Switching Protocols";
    r.headers.add("Upgrade", "websocket");
    r.headers.add("Connection", "Upgrade");
    r.headers.add("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    r.upgrade = true;
    return r;
  });
  Gateway gw(one_service(up));
  GH_START(gw);
  Conn c(gw.port());
  ASSERT_TRUE(c.send(make_request("GET", "/chat",
                                  {{"Upgrade", "websocket"},
                                   {"Connection", "Upgrade"},
                                   {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                                   {"Sec-WebSocket-Version", "13"}})));
  auto r = c.read_response(5s);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 101) << r->describe();
  EXPECT_TRUE(iequals(r->headers.value_or("Upgrade", ""), "websocket"));
  EXPECT_EQ(r->headers.value_or("Sec-WebSocket-Accept", ""), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  ASSERT_EQ(up.request_count(), 1u);
  const Request got = up.requests()[0];
  EXPECT_TRUE(iequals(got.headers.value_or("Upgrade", ""), "websocket")) << got.headers.to_string();
  EXPECT_NE(got.headers.value_or("Connection", "").find("pgrade"), std::string::npos) << got.headers.to_string();
  EXPECT_EQ(got.headers.value_or("Sec-WebSocket-Key", ""), "dGhlIHNhbXBsZSBub25jZQ==");

  // Bytes now flow both ways untouched.
  const std::string frame = "\x81\x05hello\x00\xff binary \r\n\r\n GET / HTTP/1.1"s;
  ASSERT_TRUE(c.send(frame));
  ASSERT_TRUE(eventually([&] {
    c.silent_for(10ms);
    return c.pending().size() >= frame.size();
  }, 3s)) << "echoed " << c.pending().size() << " of " << frame.size() << " bytes";
  EXPECT_EQ(c.pending(), frame);
}

TEST(Connections, Http10ClientGetsAnHttp10CompatibleResponse) {
  Upstream up("svc");
  const std::string big = pattern_body(200000, 8);
  up.set_handler([&](const Request&) {
    Reply r;
    r.body = big;
    r.chunked = true;  // the service answers chunked; an HTTP/1.0 client cannot read that
    return r;
  });
  Gateway gw(one_service(up));
  GH_START(gw);
  Conn c(gw.port());
  ASSERT_TRUE(c.send("GET /old HTTP/1.0\r\n\r\n"));  // no Host: fine in HTTP/1.0
  ASSERT_TRUE(c.wait_closed(5s)) << "HTTP/1.0 connection without keep-alive left open";
  auto r = c.read_response(1s);
  ASSERT_TRUE(r) << "unreadable response: " << c.pending().substr(0, 200);
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(r->chunked) << "chunked sent to an HTTP/1.0 client";
  EXPECT_TRUE(r->body == big);
}

TEST(Connections, CloseDelimitedServiceResponseIsRelayed) {
  Upstream up("svc");
  up.set_handler([](const Request&) {
    Reply r;
    r.raw = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nthe body ends when the connection does";
    return r;
  });
  Gateway gw(one_service(up));
  GH_START(gw);
  auto r = http_get(gw.port(), "/x");
  EXPECT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.body, "the body ends when the connection does");
}

// A client's end that arrives in the same segment as its bytes (read by the same receive as
// them): after a whole request, the request is answered or taken for gone, then the connection
// closes, within the linger (100 ms) and a little; after a part of a head, it closes at once.
TEST(Connections, AClientsEndThatComesWithItsBytesClosesTheConnection) {
  Upstream up("svc");
  Gateway gw(one_service(up, "limits: {header_timeout: 10s, idle_timeout: 30s}"));
  GH_START(gw);
  for (int i = 0; i < 3; ++i) {
    Conn c(gw.port());
    ASSERT_TRUE(c.send(make_request("GET", "/first")));
    ASSERT_TRUE(c.read_response());
    c.hold_sends();
    ASSERT_TRUE(c.send(make_request("GET", "/last")));
    c.shutdown_write();
    const auto t0 = Clock::now();
    EXPECT_TRUE(c.wait_closed(2s)) << "a connection whose client ended was kept";
    EXPECT_LT(Clock::now() - t0, 2s);
  }
  for (int i = 0; i < 3; ++i) {
    Conn c(gw.port());
    c.hold_sends();
    ASSERT_TRUE(c.send("GET /part HTTP/1.1\r\nHo"));
    c.shutdown_write();
    EXPECT_TRUE(c.wait_closed(1s)) << "a part of a head and the client's end waited for the header timeout";
    EXPECT_EQ(c.pending(), "");
  }
  EXPECT_EQ(http_get(gw.port(), "/after").status, 200);
}

TEST(Connections, IdleKeptAliveConnectionIsClosed) {
  Upstream up("svc");
  Gateway gw(one_service(up, "limits: {idle_timeout: 300ms}"));
  GH_START(gw);
  Conn c(gw.port());
  ASSERT_TRUE(c.send(make_request("GET", "/x")));
  ASSERT_TRUE(c.read_response());
  const auto t0 = Clock::now();
  EXPECT_TRUE(c.wait_closed(3s)) << "idle connection kept open";
  EXPECT_GE(Clock::now() - t0, 200ms);
}

}  // namespace
}  // namespace gh::integ
